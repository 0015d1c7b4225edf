//! Reconnect storm against the real server binary over 127.0.0.1: 10 000
//! clients connect as fast as the generator can open sockets, as they would
//! after a server restart. Every `connect` joins the primary channel, and
//! that `join` goes to everyone already in it (§4.1 step 13, §5.4.1), so the
//! storm costs the server about N²/2 deliveries.
//!
//! Prints the time until the last update arrived, the updates delivered,
//! the server's CPU time (from /proc) and its CPU per delivery. Bounded in
//! connections (`STORM_CLIENTS`, default 10 000) and time (60 s at most);
//! stops by itself. Needs about 10 100 file descriptors (`ulimit -n
//! 20000`). Run: `cargo bench --bench storm`.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 10_000;
/// Connections opened between two rounds of reading.
const BURST: usize = 250;
/// The storm is over once nothing arrived for this long.
const QUIET: Duration = Duration::from_millis(500);
/// The whole run stops after this long, finished or not.
const LIMIT: Duration = Duration::from_secs(60);
const UNIVERSAL: u64 = 2_208_988_800;

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl ServerProcess {
    fn start() -> ServerProcess {
        let dir = std::env::temp_dir().join(format!("lichat-storm-{}", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
            .args(["--port", "0", "--hostname", "127.0.0.1", "--name", "Storm"])
            .args(["--log-level", "info", "--connection-limit", "20000"])
            .args(["--max-connections-per-ip", "0", "--ws-port", "0"])
            .args(["--ping-interval", "3600", "--idle-timeout", "7200"])
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.trim().parse().ok();
                break;
            }
        }
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                // Connections opening and closing are logged at info; only
                // problems are worth showing.
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = addr.expect("the server reports its address");
        ServerProcess { child, addr, dir }
    }

    /// User plus system CPU time of the server process.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc stat is readable");
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
        let total = ticks(11) + ticks(12);
        let hz = 100; // USER_HZ on Linux
        Duration::from_millis(total * 1000 / hz)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + UNIVERSAL
}

struct Client {
    stream: TcpStream,
    updates: u64,
    closed: bool,
}

fn main() {
    let clients: usize = std::env::var("STORM_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLIENTS);
    println!("== reconnect storm: {clients} clients connect at once ==");
    let server = ServerProcess::start();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let mut all: Vec<Client> = Vec::with_capacity(clients);
    let mut total: u64 = 0;
    let mut bytes: u64 = 0;
    let cpu_before = server.cpu();
    let begin = Instant::now();
    let mut last_arrival = begin;
    let mut read_ready = |poll: &mut Poll,
                          events: &mut Events,
                          all: &mut Vec<Client>,
                          total: &mut u64,
                          bytes: &mut u64,
                          last: &mut Instant,
                          timeout: Duration| {
        poll.poll(events, Some(timeout)).expect("poll");
        for ev in events.iter() {
            let c = &mut all[ev.token().0];
            loop {
                match c.stream.read(&mut scratch) {
                    Ok(0) => {
                        c.closed = true;
                        break;
                    }
                    Ok(n) => {
                        let nuls = scratch[..n].iter().filter(|&&b| b == 0).count() as u64;
                        c.updates += nuls;
                        *total += nuls;
                        *bytes += n as u64;
                        *last = Instant::now();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.closed = true;
                        break;
                    }
                }
            }
        }
    };
    while all.len() < clients {
        let end = (all.len() + BURST).min(clients);
        for i in all.len()..end {
            let std = std::net::TcpStream::connect(server.addr)
                .unwrap_or_else(|e| panic!("connection {i}: {e} (ulimit -n 20000?)"));
            std.set_nodelay(true).expect("nodelay");
            let hello = format!(
                "(connect :id 1 :clock {} :from \"storm{i}\" :version \"2.0\")\0",
                clock()
            );
            (&std).write_all(hello.as_bytes()).expect("send connect");
            std.set_nonblocking(true).expect("nonblocking");
            let mut stream = TcpStream::from_std(std);
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .expect("register");
            all.push(Client {
                stream,
                updates: 0,
                closed: false,
            });
        }
        read_ready(
            &mut poll,
            &mut events,
            &mut all,
            &mut total,
            &mut bytes,
            &mut last_arrival,
            Duration::ZERO,
        );
    }
    let opened = begin.elapsed();
    // Read until every client has its connect reply, join and welcome, and
    // then nothing more arrives.
    while begin.elapsed() < LIMIT {
        read_ready(
            &mut poll,
            &mut events,
            &mut all,
            &mut total,
            &mut bytes,
            &mut last_arrival,
            Duration::from_millis(50),
        );
        let settled = all.iter().all(|c| c.updates >= 3 || c.closed);
        if settled && last_arrival.elapsed() >= QUIET {
            break;
        }
    }
    let cpu = server.cpu().saturating_sub(cpu_before);
    let took = last_arrival.duration_since(begin);
    let closed = all.iter().filter(|c| c.closed).count();
    let n = clients as u64;
    println!(
        "sockets opened in {:.2} s; last update after {:.2} s",
        opened.as_secs_f64(),
        took.as_secs_f64()
    );
    println!(
        "updates delivered: {total} ({:.1} MB); all joins to everyone would be {}",
        bytes as f64 / 1e6,
        2 * n + n * (n + 1) / 2
    );
    println!(
        "server CPU: {:.2} s, {:.3} us per delivered update; connections closed by the server: {closed}",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total.max(1) as f64
    );
}
