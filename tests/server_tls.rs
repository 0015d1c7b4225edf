//! Lichat and WebSocket over TLS against the real server on 127.0.0.1,
//! with a certificate made in the test: handshake, messages with a TCP
//! client, the handshake deadline, bad files, and SIGHUP reloading the
//! certificate without dropping connections.
#![cfg(feature = "tls")]

mod common;

use common::{Server, WAIT, class, clock, free_port, start, temp_data_dir, text};
use lichat_tcp_server::wire::{Object, read_object};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A self-signed certificate for `localhost` in PEM files.
struct Cert {
    der: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

impl Cert {
    fn new() -> Cert {
        let dir = temp_data_dir();
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let mut c = Cert {
            der: CertificateDer::from(Vec::new()),
            cert,
            key,
        };
        c.renew();
        c
    }

    /// Makes a new certificate and key in the same files.
    fn renew(&mut self) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        std::fs::write(&self.cert, made.cert.pem()).expect("write cert");
        std::fs::write(&self.key, made.signing_key.serialize_pem()).expect("write key");
        self.der = made.cert.der().clone();
    }

    /// A client that trusts only this certificate.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

struct TlsServer {
    server: Server,
    tls: SocketAddr,
    wss: SocketAddr,
}

fn addr_in(line: &str) -> SocketAddr {
    line.rsplit("on ")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

fn tls_server(cert: &Cert, extra: &[&str]) -> TlsServer {
    let (tls_port, wss_port) = (free_port().to_string(), free_port().to_string());
    let mut args = vec![
        "--tls-port",
        &tls_port,
        "--wss-port",
        &wss_port,
        "--tls-cert",
        cert.cert.to_str().expect("path"),
        "--tls-key",
        cert.key.to_str().expect("path"),
    ];
    args.extend_from_slice(extra);
    let mut server = start(&args);
    let tls = addr_in(&server.wait_log("listening for Lichat over TLS on "));
    let wss = addr_in(&server.wait_log("listening for WebSocket over TLS on "));
    TlsServer { server, tls, wss }
}

/// A TLS connection with its handshake done.
fn connect_tls(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> Tls {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("the TLS handshake");
    }
    s
}

/// Lichat over a TLS stream.
struct Client {
    s: Tls,
    buf: Vec<u8>,
}

impl Client {
    fn send(&mut self, text: &str) {
        self.s.write_all(text.as_bytes()).expect("send");
        self.s.write_all(b"\0").expect("send");
        self.s.flush().expect("flush");
    }

    fn recv(&mut self) -> Object {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let bytes: Vec<u8> = self.buf.drain(..=end).collect();
                return read_object(&bytes[..end]).expect("a readable update");
            }
            assert!(Instant::now() < deadline, "no update in time");
            let mut chunk = [0u8; 16384];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("closed"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn recv_class(&mut self, name: &str) -> Object {
        loop {
            let o = self.recv();
            if class(&o) == name {
                return o;
            }
        }
    }

    fn login(s: Tls, name: &str) -> Client {
        let mut c = Client { s, buf: Vec::new() };
        c.send(&format!(
            "(connect :id 1 :clock {} :from \"{name}\" :version \"2.0\")",
            clock()
        ));
        let reply = c.recv();
        assert_eq!(class(&reply), "connect", "{reply:?}");
        c.recv_class("message");
        c
    }
}

#[test]
fn lichat_over_tls_handshakes_and_exchanges_messages_with_a_tcp_client() {
    let cert = Cert::new();
    let s = tls_server(&cert, &[]);
    let mut secure = Client::login(connect_tls(&cert.client(), s.tls), "secure");
    let mut plain = s.server.login("plain");
    plain.update("create", ":channel \"lobby\"");
    plain.recv_in("join", "lobby");
    secure.send(&format!(
        "(join :id 2 :clock {} :from \"secure\" :channel \"lobby\")",
        clock()
    ));
    while text(&secure.recv_class("join"), "channel") != Some("lobby") {}
    plain.recv_in("join", "lobby");
    plain.message("lobby", "over tcp");
    let m = secure.recv_class("message");
    assert_eq!(text(&m, "text"), Some("over tcp"));
    secure.send(&format!(
        "(message :id 3 :clock {} :from \"secure\" :channel \"lobby\" :text \"over tls\")",
        clock()
    ));
    loop {
        let m = plain.recv_class("message");
        if text(&m, "from") == Some("secure") {
            assert_eq!(text(&m, "text"), Some("over tls"));
            break;
        }
    }
}

#[cfg(feature = "websocket")]
#[test]
fn websocket_over_tls_upgrades_and_logs_in() {
    let cert = Cert::new();
    let s = tls_server(&cert, &[]);
    let mut ws = common::ws::Ws::new(connect_tls(&cert.client(), s.wss));
    let answer = ws.upgrade(Some("lichat"));
    assert_eq!(answer.header("sec-websocket-protocol"), Some("lichat"));
    ws.login("webber");
    ws.send(&format!("(ping :id 5 :clock {})", clock()));
    let pong = ws.recv_class("pong");
    assert_eq!(common::int(&pong, "id"), Some(5));
}

#[test]
fn stalled_handshake_is_dropped_at_the_deadline() {
    let cert = Cert::new();
    let s = tls_server(&cert, &[]);
    let mut stalled = TcpStream::connect(s.tls).expect("connect");
    // Half a record header, then nothing.
    stalled.write_all(&[0x16, 0x03]).expect("send");
    stalled
        .set_read_timeout(Some(WAIT * 2))
        .expect("read timeout");
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let end = loop {
        match stalled.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let took = start.elapsed();
    assert!(
        !matches!(&end, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "still open after {took:?}"
    );
    assert!(took.as_secs_f64() >= 4.0, "dropped too early: {took:?}");
    // The server still serves others.
    Client::login(connect_tls(&cert.client(), s.tls), "after");
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let mut cert = Cert::new();
    let mut s = tls_server(&cert, &[]);
    let old = cert.client();
    let mut kept = Client::login(connect_tls(&old, s.tls), "kept");
    cert.renew();
    s.server.signal("HUP");
    s.server.wait_log("reloaded the certificate");
    // New connections get the new certificate; the open one goes on.
    Client::login(connect_tls(&cert.client(), s.tls), "fresh");
    kept.send(&format!("(ping :id 9 :clock {})", clock()));
    assert_eq!(common::int(&kept.recv_class("pong"), "id"), Some(9));
}

#[test]
fn missing_or_bad_certificate_files_exit_1_naming_the_file() {
    let cert = Cert::new();
    let missing = cert.cert.with_file_name("missing.pem");
    let garbage = cert.cert.with_file_name("garbage.pem");
    std::fs::write(&garbage, "not a pem file").expect("write");
    for (c, k, named) in [
        (&missing, &cert.key, &missing),
        (&cert.cert, &garbage, &garbage),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
            .args(["--port", "0", "--ws-port", "0", "--hostname", "127.0.0.1"])
            .arg("--data-dir")
            .arg(temp_data_dir())
            .arg("--tls-cert")
            .arg(c)
            .arg("--tls-key")
            .arg(k)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&named.display().to_string()),
            "names {}: {stderr}",
            named.display()
        );
    }
}
