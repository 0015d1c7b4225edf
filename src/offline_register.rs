//! `--register NAME`: creates a registered profile (§5.2) while no server
//! runs, so that the operator owns an administrator's name (`--admin`)
//! before anybody can connect with it. The password is read from standard
//! input, without echo on a terminal.

use lichat_tcp_server::engine::{Change, Config, Password, Profile, UNIX_TO_UNIVERSAL};
use lichat_tcp_server::protocol::is_valid_name;
use lichat_tcp_server::store::{self, NoNotify};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// §2.3.1 the shortest password accepted, as `register` has it.
const MIN_PASSWORD_CHARS: usize = 6;

/// Turns terminal echo off while alive.
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: tcgetattr/tcsetattr on standard input with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return NoEcho(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return NoEcho(None);
            }
            NoEcho(Some(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

fn read_password(name: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    let read = if stdin.is_terminal() {
        eprint!("Password for {name:?}: ");
        let _ = std::io::stderr().flush();
        let _guard = NoEcho::new();
        let r = stdin.lock().read_line(&mut line);
        eprintln!();
        r
    } else {
        stdin.lock().read_line(&mut line)
    };
    read.map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(password)
}

/// Registers `name` in the database under `data_dir`, or gives it a new
/// password; a line for the operator either way.
pub fn register(name: &str, config: &Config, data_dir: &Path) -> Result<String, String> {
    if !is_valid_name(name) {
        return Err(format!("--register: {name:?} is not a valid user name"));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        )
    })?;
    // Opened before asking, so that a running server is reported at once.
    let (mut store, snapshot) = store::open(data_dir, Arc::new(NoNotify)).map_err(|e| {
        if e.message == store::IN_USE {
            format!("{e}: stop the server before registering offline")
        } else {
            e.to_string()
        }
    })?;
    let password = read_password(name)?;
    let password = Password::new(&password, &config.salt, config.hash_iterations)
        .ok_or("the operating system gave no random bytes for the salt")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + UNIX_TO_UNIVERSAL;
    let existing = snapshot
        .profiles
        .into_iter()
        .find(|p| lichat_tcp_server::protocol::names_equal(&p.name, name));
    let replaced = existing.is_some();
    let profile = match existing {
        Some(p) => Profile { password, ..p },
        None => Profile {
            name: name.to_string(),
            password,
            registered_on: now,
            last_used: now,
            data: Default::default(),
        },
    };
    let shown = profile.name.clone();
    let ticket = store.submit(vec![Change::Profile(profile)]);
    while store.committed() < ticket {
        if let Some(cause) = store.failure() {
            return Err(format!("the profile could not be saved: {cause}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close();
    Ok(if replaced {
        format!("the password of {shown:?} was replaced")
    } else {
        format!("{shown:?} is registered")
    })
}
