//! Test helpers: run the built server on an ephemeral port and talk to it
//! over real TCP, one NUL-terminated update at a time.
//!
//! Every wait has a deadline; running into it fails the test.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

#[cfg(feature = "websocket")]
pub mod ws;

use lichat_tcp_server::wire::{Object, Value, read_object};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// Seconds between 1900 and 1970.
const UNIVERSAL: u64 = 2_208_988_800;

/// Lichat universal time now.
pub fn clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + UNIVERSAL
}

/// A running server process; killed on drop.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    data_dir: std::path::PathBuf,
    /// Keep the data directory when dropped (restart tests own it).
    keep_data: bool,
}

/// A fresh, unique directory name under the system's temp directory.
pub fn temp_data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "lichat-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

/// Spawns the server binary with `extra` options after the test defaults.
pub fn start(extra: &[&str]) -> Server {
    let mut server = start_in(&temp_data_dir(), extra);
    server.keep_data = false;
    server
}

/// Spawns the server with at most `nofile` file descriptors
/// (`RLIMIT_NOFILE`), to run it out of them.
pub fn start_with_fd_limit(nofile: u64, extra: &[&str]) -> Server {
    let mut server = spawn(
        &temp_data_dir(),
        extra,
        Spawn {
            nofile: Some(nofile),
            ..Spawn::default()
        },
    );
    server.keep_data = false;
    server
}

/// Spawns the server on `data_dir`, which outlives it (for restarts).
pub fn start_in(data_dir: &std::path::Path, extra: &[&str]) -> Server {
    spawn(data_dir, extra, Spawn::default())
}

/// The control file of the store's test hook (`LICHAT_TEST_STORE_FAULTS`):
/// what it says applies to every commit the server attempts from then on.
pub struct Faults {
    path: std::path::PathBuf,
}

impl Faults {
    /// A control file that asks for nothing yet.
    pub fn new() -> Faults {
        let path = std::env::temp_dir().join(format!(
            "lichat-faults-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let faults = Faults { path };
        faults.set("");
        faults
    }

    /// `full`: commits fail as on a full disk; `hold`: commits wait;
    /// anything else: commits work.
    pub fn set(&self, what: &str) {
        std::fs::write(&self.path, what).expect("write the fault file");
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Spawns the server on `data_dir` with its store's test hook reading
/// `faults`.
pub fn start_with_faults(data_dir: &std::path::Path, extra: &[&str], faults: &Faults) -> Server {
    spawn(
        data_dir,
        extra,
        Spawn {
            faults: Some(faults.path()),
            ..Spawn::default()
        },
    )
}

/// What to spawn the server with besides its options.
#[derive(Default)]
struct Spawn<'a> {
    /// The store's test hook reads this control file.
    faults: Option<&'a std::path::Path>,
    /// The descriptor limit (RLIMIT_NOFILE) to run under.
    nofile: Option<u64>,
}

fn spawn(data_dir: &std::path::Path, extra: &[&str], how: Spawn<'_>) -> Server {
    let data_dir = data_dir.to_owned();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"));
    if let Some(path) = how.faults {
        cmd.env("LICHAT_TEST_STORE_FAULTS", path);
    }
    if let Some(n) = how.nofile {
        use std::os::unix::process::CommandExt;
        let limit = libc::rlimit {
            rlim_cur: n as libc::rlim_t,
            rlim_max: n as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe and only reads `limit`,
        // which is copied into the closure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd.args([
        "--port",
        "0",
        "--hostname",
        "127.0.0.1",
        "--name",
        "TestServer",
    ]);
    // The other ports are off unless a test asks for them.
    for port in ["--ws-port", "--tls-port", "--wss-port"] {
        if !extra.contains(&port) {
            cmd.args([port, "0"]);
        }
    }
    // Every test client comes from 127.0.0.1: no per-address limit
    // unless the test sets one.
    if !extra.contains(&"--max-connections-per-ip") {
        cmd.args(["--max-connections-per-ip", "0"]);
    }
    cmd.arg("--data-dir")
        .arg(&data_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the server binary runs");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    // Drain stderr for the whole run so the server never blocks on it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log2.lock().expect("log lock").push(line.clone());
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        lines: rx,
        log,
        data_dir,
        keep_data: true,
    };
    let line = server.wait_log("listening on ");
    let addr = line
        .rsplit("listening on ")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    server.addr = addr;
    server
}

/// A port that was free a moment ago, for the listeners that take no
/// port 0 (`--ws-port`, `--tls-port`, `--wss-port`, where 0 turns them off).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Server {
    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no log line with {needle:?}; log: {:#?}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "server exited before logging {needle:?}; log: {:#?}",
                        self.log()
                    )
                }
            }
        }
    }

    /// The next log line, or `None` if none comes within `within`.
    pub fn next_log(&mut self, within: Duration) -> Option<String> {
        match self.lines.recv_timeout(within) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                panic!("server exited; log: {:#?}", self.log())
            }
        }
    }

    /// CPU time the server process has used, user and system, all threads
    /// (`/proc/PID/stat`).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("/proc/PID/stat is readable");
        // Fields after the command name, which is in parentheses: state is
        // the first, utime the 12th, stime the 13th.
        let rest = &stat[stat.rfind(')').expect("command name") + 2..];
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis((fields[11] + fields[12]) * 1000 / hz)
    }

    /// The number of file descriptors the server has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd is readable")
            .count()
    }

    /// Asserts a log line containing `needle` was printed, whether or not
    /// it was already consumed by [`Server::wait_log`].
    pub fn wait_log_in_past(&self, needle: &str) {
        assert!(
            self.log().iter().any(|l| l.contains(needle)),
            "no log line with {needle:?}: {:#?}",
            self.log()
        );
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// A raw TCP connection to another address of the server.
    pub fn connect_to(&self, addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).expect("the server accepts");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream
    }

    /// A raw TCP connection, nothing sent yet.
    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("the server accepts");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
            name: String::new(),
            next_id: 1,
            last_size: 0,
        }
    }

    /// A client that completed the §4.1 handshake as `name` with a
    /// password; the handshake's replies are consumed.
    pub fn login_with(&self, name: &str, password: &str) -> Client {
        let mut c = self.connect();
        c.name = name.to_owned();
        let id = c.id();
        c.send(&format!(
            "(connect :id {id} :clock {} :from \"{name}\" :password \"{password}\" :version \"2.0\")",
            clock()
        ));
        let reply = c.recv();
        assert_eq!(class(&reply), "connect", "handshake reply: {reply:?}");
        c.recv_class("message");
        c
    }

    /// A client that completed the §4.1 handshake as `name`, with the
    /// handshake's replies (up to the welcome message) consumed.
    pub fn login(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.name = name.to_owned();
        let id = c.id();
        c.send(&format!(
            "(connect :id {id} :clock {} :from \"{name}\" :version \"2.0\")",
            clock()
        ));
        let reply = c.recv();
        assert_eq!(class(&reply), "connect", "handshake reply: {reply:?}");
        // §4.1.14: the welcome message in the primary channel ends it.
        c.recv_class("message");
        c
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGKILL at once, straight from this process (no `kill` to spawn).
    pub fn kill_now(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        let _ = self.child.wait();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_data {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Why no update came.
#[derive(Debug, PartialEq)]
pub enum Gone {
    /// Nothing within the deadline.
    Timeout,
    /// End of stream or reset.
    Closed,
}

/// One client connection.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The user name it connected as.
    pub name: String,
    next_id: u64,
    /// Bytes of the last update received, its NUL included.
    pub last_size: usize,
}

impl Client {
    /// A fresh update id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends one update's text and its NUL.
    pub fn send(&mut self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next update, or why there is none within `within`.
    pub fn try_recv(&mut self, within: Duration) -> Result<Object, Gone> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let text: Vec<u8> = self.buf.drain(..=end).collect();
                self.last_size = text.len();
                let text = &text[..end];
                return Ok(read_object(text).unwrap_or_else(|e| {
                    panic!(
                        "server sent an unreadable update {:?}: {e}",
                        String::from_utf8_lossy(text)
                    )
                }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Gone::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Gone::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(Gone::Timeout);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Gone::Closed),
            }
        }
    }

    /// The next update; fails the test if none comes in time.
    pub fn recv(&mut self) -> Object {
        match self.try_recv(WAIT) {
            Ok(o) => o,
            Err(e) => panic!("{}: expected an update, got {e:?}", self.name),
        }
    }

    /// Skips updates until one of class `name` arrives and returns it.
    /// Receives updates until one of class `name` in `channel` arrives;
    /// skips the rest (joins of other users to the primary channel, ...).
    pub fn recv_in(&mut self, name: &str, channel: &str) -> Object {
        loop {
            let o = self.recv_class(name);
            if text(&o, "channel") == Some(channel) {
                return o;
            }
        }
    }

    pub fn recv_class(&mut self, name: &str) -> Object {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_recv(left) {
                Ok(o) if class(&o) == name => return o,
                Ok(o) => skipped.push(o),
                Err(e) => panic!(
                    "{}: expected a {name} update, got {e:?} after {skipped:#?}",
                    self.name
                ),
            }
        }
    }

    /// Reads until the server closes the connection; returns what came.
    pub fn recv_until_closed(&mut self) -> Vec<Object> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_recv(left) {
                Ok(o) => got.push(o),
                Err(Gone::Closed) => return got,
                Err(Gone::Timeout) => {
                    panic!("{}: connection still open; got {got:#?}", self.name)
                }
            }
        }
    }

    /// Sends a message to a channel.
    pub fn message(&mut self, channel: &str, text: &str) -> u64 {
        let id = self.id();
        let from = self.name.clone();
        self.send(&format!(
            "(message :id {id} :clock {} :from \"{from}\" :channel \"{channel}\" :text \"{text}\")",
            clock()
        ));
        id
    }

    /// Sends an update of class `class` with the given field text and its
    /// usual id, clock and from; returns the id.
    pub fn update(&mut self, class: &str, fields: &str) -> u64 {
        let id = self.id();
        let from = self.name.clone();
        self.send(&format!(
            "({class} :id {id} :clock {} :from \"{from}\" {fields})",
            clock()
        ));
        id
    }
}

/// The lower-case class name of an update.
pub fn class(o: &Object) -> String {
    o.class.name().to_ascii_lowercase()
}

/// A field's value by keyword name.
pub fn field<'a>(o: &'a Object, name: &str) -> Option<&'a Value> {
    o.fields
        .iter()
        .find(|(k, _)| k.name().eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A string field's value.
pub fn text<'a>(o: &'a Object, name: &str) -> Option<&'a str> {
    field(o, name).and_then(|v| v.as_str())
}

/// An integer field's value.
pub fn int(o: &Object, name: &str) -> Option<u64> {
    field(o, name).and_then(|v| v.as_u64())
}

/// The pylichat release the interoperability tests drive.
pub const PYLICHAT: &str = "pylichat==1.4";

/// Longest time provisioning may take: waiting for another test binary
/// that is provisioning, making the virtualenv, and the pip install.
const PROVISION_DEADLINE: Duration = Duration::from_secs(600);

/// A Python interpreter that can `import pylichat` (release [`PYLICHAT`]),
/// for tests that drive the server with the real Python client.
///
/// It is the interpreter of a virtualenv at `<target dir>/pyenv`, made with
/// `python3 -m venv` and filled with `pip install pylichat==1.4` the first
/// time (that needs python3 with its venv module and access to the package
/// index), and reused afterwards once its interpreter imports that release.
/// Test binaries running at once take turns through the lock file
/// `<target dir>/pyenv.lock`. When no virtualenv can be made but the system's
/// `python3` already imports pylichat, that one is used. Otherwise the test
/// fails with one line saying what to install.
pub fn pylichat_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        // CARGO_TARGET_TMPDIR is `<target dir>/tmp`.
        let target = tmp.parent().unwrap_or(tmp);
        let base = std::ffi::OsStr::new("python3");
        provision_pylichat(base, &target.join("pyenv")).or_else(|why| {
            if imports_pylichat(std::path::Path::new(base), None) {
                eprintln!("using python3's own pylichat, as no virtualenv could be made: {why}");
                Ok(base.into())
            } else {
                Err(why)
            }
        })
    });
    match found {
        Ok(python) => python.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// Makes sure `venv` is a virtualenv, made with the interpreter `base`,
/// whose interpreter imports [`PYLICHAT`], and returns that interpreter.
/// The error is one line: what to install, then what went wrong.
pub fn provision_pylichat(
    base: &std::ffi::OsStr,
    venv: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let deadline = Instant::now() + PROVISION_DEADLINE;
    let fail = |what: String| {
        format!(
            "the pylichat tests need python3 with venv and network access to PyPI for {PYLICHAT}: \
             install python3 and python3-venv, or run `python3 -m pip install {PYLICHAT}` ({what})"
        )
    };
    let python = venv.join("bin").join("python");
    let version = PYLICHAT.rsplit("==").next();
    if imports_pylichat(&python, version) {
        return Ok(python);
    }
    if let Some(dir) = venv.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    }
    let lock_path = venv.with_extension("lock");
    let lock = lock_exclusive(&lock_path, deadline).map_err(fail)?;
    // Another test binary may have made it while this one waited.
    if imports_pylichat(&python, version) {
        return Ok(python);
    }
    // Whatever is there is unfinished or stale (a run killed while
    // installing, another release): start over.
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(|e| fail(format!("{}: {e}", venv.display())))?;
    }
    let shown = base.to_string_lossy();
    let mut make = Command::new(base);
    make.arg("-m").arg("venv").arg(venv);
    hand_down(&mut make, &lock);
    run_until(&mut make, deadline).map_err(|e| {
        fail(match e {
            Run::Spawn(e) => format!("cannot run {shown}: {e}"),
            other => format!("`{shown} -m venv` {other}"),
        })
    })?;
    let mut install = Command::new(&python);
    install.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
        PYLICHAT,
    ]);
    hand_down(&mut install, &lock);
    run_until(&mut install, deadline).map_err(|e| fail(format!("`pip install {PYLICHAT}` {e}")))?;
    if imports_pylichat(&python, version) {
        Ok(python)
    } else {
        Err(fail(format!(
            "{} cannot import pylichat after installing it",
            python.display()
        )))
    }
}

/// Whether `python` runs and imports pylichat, of release `version` if
/// given.
fn imports_pylichat(python: &std::path::Path, version: Option<&str>) -> bool {
    let check = match version {
        Some(v) => format!(
            "import pylichat, importlib.metadata as m, sys; sys.exit(m.version('pylichat') != {v:?})"
        ),
        None => "import pylichat".to_owned(),
    };
    let mut cmd = Command::new(python);
    cmd.args(["-c", &check]);
    run_until(&mut cmd, Instant::now() + WAIT * 6).is_ok()
}

/// Why a command run by [`run_until`] did not succeed.
enum Run {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It exited unsuccessfully, with the last line it wrote to stderr.
    Failed(ExitStatus, String),
    /// It was still running at the deadline and was killed.
    Late,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::Spawn(e) => write!(f, "could not start: {e}"),
            Run::Failed(status, last) => write!(f, "failed ({status}): {last}"),
            Run::Late => write!(f, "did not finish in time"),
        }
    }
}

/// Runs `cmd` without stdin, killing it if it is still running at
/// `deadline`.
fn run_until(cmd: &mut Command, deadline: Instant) -> Result<(), Run> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Run::Spawn)?;
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(out) => out,
        Err(_) => {
            // Not reaped yet (the waiting thread has not returned), so the
            // id is still this child's.
            // SAFETY: kill(2) with a plain pid and signal number.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = rx.recv();
            return Err(Run::Late);
        }
    };
    let out = out.map_err(Run::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message");
    Err(Run::Failed(out.status, last.to_owned()))
}

/// Lets the child run by `cmd` inherit the lock file `lock`, so that the
/// lock stays held while that child lives even if this process is killed
/// first: no other run starts over in the directory it is still writing.
fn hand_down(cmd: &mut Command, lock: &std::fs::File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = lock.as_raw_fd();
    // SAFETY: fcntl(2) is async-signal-safe, as code between fork and exec
    // must be; it clears close-on-exec in the child only.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes an exclusive `flock` on `path` (created if missing), waiting for
/// other holders until `deadline`. The kernel drops the lock when the file
/// is closed or its process dies, so a killed run leaves no stale lock.
fn lock_exclusive(path: &std::path::Path, deadline: Instant) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{shown}: {e}"))?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let got = loop {
            // SAFETY: flock(2) on a descriptor this thread owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break Ok(file);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                break Err(e);
            }
        };
        // If nobody waits any more, dropping the file releases the lock.
        let _ = tx.send(got);
    });
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(format!("cannot lock {shown}: {e}")),
        Err(_) => Err(format!("another test run held {shown} too long")),
    }
}
