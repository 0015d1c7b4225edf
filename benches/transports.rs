//! Transport benchmark against the real server binary over 127.0.0.1:
//! the same measures over plain TCP, WebSocket and TLS, in one run.
//!
//! 1. idle memory: the server's RSS growth with `TRANSPORT_IDLE` (10 000)
//!    connections of one transport that completed `connect`, read the
//!    primary channel's joins as they came, and then sit idle;
//! 2. fan-out: one channel of 1000 members of one transport, a plain TCP
//!    sender writing 100 messages a second for 5 s; the server's CPU per
//!    delivery, and its ratio to plain TCP's.
//!
//! Each transport gets a fresh server. Bounded in connections and time;
//! stops by itself. Needs about 10 100 file descriptors (`ulimit -n
//! 20000`). Run: `cargo bench --bench transports`. `TRANSPORT_KINDS=plain,ws,tls`
//! picks transports, `TRANSPORT_PHASES=memory,fanout` phases,
//! `TRANSPORT_SERVER=PATH` another server binary than this build's.

use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 1000;
const CHANNEL: &str = "load";
const UNIVERSAL: u64 = 2_208_988_800;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plain,
    Ws,
    Tls,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain TCP",
            Kind::Ws => "WebSocket",
            Kind::Tls => "Lichat over TLS",
        }
    }
}

fn clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + UNIVERSAL
}

/// A self-signed certificate for `localhost` and a client trusting it.
struct Cert {
    cert: PathBuf,
    key: PathBuf,
    client: Arc<rustls::ClientConfig>,
}

fn make_cert() -> Cert {
    let dir = std::env::temp_dir().join(format!("lichat-transports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    let der: CertificateDer<'static> = made.cert.der().clone();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    Cert { cert, key, client }
}

struct ServerProcess {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ServerProcess {
    fn start(cert: &Cert) -> ServerProcess {
        let dir = std::env::temp_dir().join(format!(
            "lichat-transports-data-{}-{}",
            std::process::id(),
            free_port()
        ));
        let tls_port = free_port().to_string();
        // `TRANSPORT_SERVER=path` runs another build, to compare two.
        let mut cmd = Command::new(
            std::env::var_os("TRANSPORT_SERVER")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_lichat-tcp-server").into()),
        );
        cmd.args(["--port", "0", "--hostname", "127.0.0.1", "--name", "Bench"])
            .args(["--connection-limit", "20000"])
            .args(["--max-connections-per-ip", "0", "--ws-port", "0"])
            .args(["--wss-port", "0", "--tls-port", &tls_port])
            .arg("--tls-cert")
            .arg(&cert.cert)
            .arg("--tls-key")
            .arg(&cert.key)
            .args(["--max-tls-handshakes", "20000"])
            .args(["--ping-interval", "3600", "--idle-timeout", "7200"])
            .args(["--flood-limit", "1000000000"])
            .args(["--max-write-queue", "67108864"])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--log-level", "info"]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server runs");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let (mut plain, mut tls) = (None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            let addr = || {
                line.rsplit("on ")
                    .next()
                    .and_then(|a| a.trim().parse().ok())
            };
            if line.contains("listening on ") {
                plain = addr();
            } else if line.contains("listening for Lichat over TLS on ") {
                tls = addr();
            }
            if plain.is_some() && tls.is_some() {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        ServerProcess {
            child,
            plain: plain.expect("the server listens"),
            tls: tls.expect("the server listens for TLS"),
        }
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// A `kB` line of `/proc/PID/status`: `VmRSS:`, or its parts
    /// `RssAnon:` (heap and other private memory) and `RssFile:` (the
    /// binary's and libraries' pages as they are first used).
    fn status_kib(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    fn cpu(&self) -> Duration {
        let text = std::fs::read_to_string(format!("/proc/{}/schedstat", self.child.id()))
            .unwrap_or_default();
        Duration::from_nanos(
            text.split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client connection of some transport.
enum Conn {
    Plain(TcpStream),
    Ws(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn open(kind: Kind, server: &ServerProcess, cert: &Cert) -> Conn {
        match kind {
            Kind::Plain => {
                let s = TcpStream::connect(server.plain).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                Conn::Plain(s)
            }
            Kind::Ws => {
                let mut s = TcpStream::connect(server.plain).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                s.write_all(
                    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                      Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                      Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: lichat\r\n\r\n",
                )
                .expect("upgrade");
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    s.read_exact(&mut byte).expect("the upgrade answer");
                    head.push(byte[0]);
                }
                assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
                Conn::Ws(s)
            }
            Kind::Tls => {
                let tcp = TcpStream::connect(server.tls).expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                let name = ServerName::try_from("localhost").expect("name");
                let conn = rustls::ClientConnection::new(cert.client.clone(), name).expect("tls");
                let mut s = rustls::StreamOwned::new(conn, tcp);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).expect("the TLS handshake");
                }
                Conn::Tls(Box::new(s))
            }
        }
    }

    fn send(&mut self, text: &str) {
        let mut update = text.as_bytes().to_vec();
        update.push(0);
        match self {
            Conn::Plain(s) => s.write_all(&update).expect("send"),
            Conn::Ws(s) => {
                // A masked text frame (RFC 6455 §5.2), mask of zeros.
                let mut frame = vec![0x81];
                match update.len() {
                    n if n < 126 => frame.push(0x80 | n as u8),
                    n => {
                        frame.push(0x80 | 126);
                        frame.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                }
                frame.extend_from_slice(&[0, 0, 0, 0]);
                frame.extend_from_slice(&update);
                s.write_all(&frame).expect("send");
            }
            Conn::Tls(s) => {
                s.write_all(&update).expect("send");
                s.flush().expect("flush");
            }
        }
    }

    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) | Conn::Ws(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Reads until the payload seen so far contains `needle` (the bytes
    /// of WebSocket frames and TLS records are not parsed apart: the
    /// needle is plain text that appears in the update).
    fn wait_for(&mut self, needle: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 16384];
        self.socket()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        loop {
            assert!(Instant::now() < deadline, "no {:?} in time", needle);
            let n = match self {
                Conn::Plain(s) | Conn::Ws(s) => s.read(&mut chunk),
                Conn::Tls(s) => s.read(&mut chunk),
            };
            match n {
                Ok(0) => panic!("closed while waiting"),
                Ok(n) => {
                    seen.extend_from_slice(&chunk[..n]);
                    if seen.windows(needle.len()).any(|w| w == needle) {
                        return;
                    }
                    if seen.len() > 1 << 20 {
                        seen.drain(..seen.len() - needle.len());
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads what is there without blocking, decrypting TLS; bytes read.
    fn drain(&mut self, chunk: &mut [u8]) -> usize {
        let mut got = 0;
        loop {
            let r = match self {
                Conn::Plain(s) | Conn::Ws(s) => s.read(chunk),
                Conn::Tls(s) => s.read(chunk),
            };
            match r {
                Ok(0) => return got,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return got,
            }
        }
    }

    fn set_nonblocking(&self) {
        self.socket().set_nonblocking(true).expect("nonblocking");
    }
}

fn login(conn: &mut Conn, name: &str, channel: Option<&str>) {
    conn.send(&format!(
        "(connect :id 1 :clock {} :from \"{name}\" :version \"2.0\")",
        clock()
    ));
    conn.wait_for(b"Welcome to");
    if let Some(ch) = channel {
        conn.send(&format!(
            "(join :id 2 :clock {} :from \"{name}\" :channel \"{ch}\")",
            clock()
        ));
        conn.wait_for(format!(":from \"{name}\" :channel \"{ch}\"").as_bytes());
    }
}

/// Reads every connection until none has had anything for 300 ms.
fn drain_until_quiet(conns: &mut [Conn]) {
    let mut chunk = vec![0u8; 65536];
    let mut quiet_since = Instant::now();
    let began = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300) && began.elapsed().as_secs() < 120 {
        let got: usize = conns.iter_mut().map(|c| c.drain(&mut chunk)).sum();
        if got > 0 {
            quiet_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn idle_count() -> usize {
    std::env::var("TRANSPORT_IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Phase 1 for one transport: RSS growth per idle connection.
fn memory(kind: Kind, cert: &Cert) -> f64 {
    let server = ServerProcess::start(cert);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib();
    let anon_before = server.status_kib("RssAnon:");
    let n = idle_count();
    let began = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let batch = 500;
    while conns.len() < n {
        let start = conns.len();
        // A batch connects at once, as the load bench's clients do, so
        // the server sends their joins to the primary channel together.
        let mut fresh: Vec<Conn> = (start..(start + batch).min(n))
            .map(|i| {
                let mut c = Conn::open(kind, &server, cert);
                c.send(&format!(
                    "(connect :id 1 :clock {} :from \"idle{i}\" :version \"2.0\")",
                    clock()
                ));
                c
            })
            .collect();
        for c in fresh.iter_mut() {
            c.wait_for(b"Welcome to");
            c.set_nonblocking();
        }
        conns.append(&mut fresh);
        // The joins of the others to the primary channel, as clients read
        // them.
        drain_until_quiet(&mut conns);
    }
    drain_until_quiet(&mut conns);
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_kib();
    let anon_after = server.status_kib("RssAnon:");
    let anon = anon_after.saturating_sub(anon_before) as f64 / n as f64;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{}: {n} idle connections in {:.1} s; RSS {before} KiB -> {after} KiB, {per:.2} KiB per connection ({anon:.2} KiB of it anonymous memory, the rest pages of the binary and libraries)",
        kind.name(),
        began.elapsed().as_secs_f64()
    );
    per
}

/// Phase 2 for one transport: server CPU per delivery.
fn fanout(kind: Kind, cert: &Cert) -> f64 {
    let server = ServerProcess::start(cert);
    let mut sender = Conn::open(Kind::Plain, &server, cert);
    login(&mut sender, "sender", None);
    sender.send(&format!(
        "(create :id 3 :clock {} :from \"sender\" :channel \"{CHANNEL}\")",
        clock()
    ));
    sender.wait_for(format!(":channel \"{CHANNEL}\"").as_bytes());
    let mut members: Vec<Conn> = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let mut c = Conn::open(kind, &server, cert);
        login(&mut c, &format!("m{i}"), Some(CHANNEL));
        c.set_nonblocking();
        members.push(c);
        if i % 100 == 99 {
            drain_until_quiet(&mut members);
        }
    }
    sender.set_nonblocking();
    drain_until_quiet(&mut members);
    let mut chunk = vec![0u8; 65536];
    let _ = sender.drain(&mut chunk);
    // 100 messages a second for 5 s, members read as they come.
    let messages = 500;
    let cpu_before = server.cpu();
    let began = Instant::now();
    let text = "x".repeat(60);
    for k in 0..messages {
        let due = began + Duration::from_millis(10 * k as u64);
        while Instant::now() < due {
            for m in members.iter_mut() {
                m.drain(&mut chunk);
            }
            let _ = sender.drain(&mut chunk);
        }
        sender.send(&format!(
            "(message :id {} :clock {} :from \"sender\" :channel \"{CHANNEL}\" :text \"{text}\")",
            10 + k,
            clock()
        ));
    }
    drain_until_quiet(&mut members);
    let cpu = server.cpu().saturating_sub(cpu_before);
    let deliveries = messages * (MEMBERS + 1);
    let per = cpu.as_secs_f64() * 1e6 / deliveries as f64;
    println!(
        "{}: {messages} messages to {MEMBERS} members: server CPU {} ms, {per:.2} us a delivery",
        kind.name(),
        cpu.as_millis()
    );
    per
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let kinds: Vec<Kind> = std::env::var("TRANSPORT_KINDS")
        .unwrap_or_else(|_| "plain,ws,tls".into())
        .split(',')
        .filter_map(|k| match k.trim() {
            "plain" => Some(Kind::Plain),
            "ws" => Some(Kind::Ws),
            "tls" => Some(Kind::Tls),
            _ => None,
        })
        .collect();
    let phases = std::env::var("TRANSPORT_PHASES").unwrap_or_else(|_| "memory,fanout".into());
    let cert = make_cert();
    if phases.contains("memory") {
        println!("== idle memory per connection ==");
        for &k in &kinds {
            memory(k, &cert);
        }
    }
    if phases.contains("fanout") {
        println!("== fan-out: {MEMBERS} members, 100 messages/s for 5 s ==");
        let mut plain = None;
        for &k in &kinds {
            let per = fanout(k, &cert);
            if k == Kind::Plain {
                plain = Some(per);
            } else if let Some(p) = plain {
                println!(
                    "{}: {:.2} times plain TCP's CPU per delivery",
                    k.name(),
                    per / p
                );
            }
        }
    }
}
