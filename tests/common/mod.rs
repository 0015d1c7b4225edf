//! Test helpers: run the built server on an ephemeral port and talk to it
//! over real TCP, one NUL-terminated update at a time.
//!
//! Every wait has a deadline; running into it fails the test.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

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
    let mut server = spawn(&temp_data_dir(), extra, Some(nofile));
    server.keep_data = false;
    server
}

/// Spawns the server on `data_dir`, which outlives it (for restarts).
pub fn start_in(data_dir: &std::path::Path, extra: &[&str]) -> Server {
    spawn(data_dir, extra, None)
}

fn spawn(data_dir: &std::path::Path, extra: &[&str], nofile: Option<u64>) -> Server {
    let data_dir = data_dir.to_owned();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"));
    if let Some(n) = nofile {
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
    ])
    .arg("--data-dir")
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

    /// A raw TCP connection, nothing sent yet.
    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("the server accepts");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
            name: String::new(),
            next_id: 1,
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
