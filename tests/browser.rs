//! The server from a real browser: headless Chromium, driven by
//! chromedriver over the WebDriver HTTP API (W3C WebDriver), opens the
//! project's test page (tests/browser/index.html with its own small client,
//! tests/browser/lichat.js), which speaks Lichat over a WebSocket with the
//! `lichat` subprotocol: it connects, joins a channel that a pylichat client
//! over TCP made, and answers that client's message; then it shares an image
//! with a `data` update and shows it from the URL of the server's
//! `shirakumo-link` message (§12). A screenshot of the page is saved as
//! `<target dir>/browser-test.png`.
//!
//! It runs only with `LICHAT_BROWSER_TEST=1` (then a missing chromium or
//! chromedriver is a failure); otherwise it says so and passes.
#![cfg(feature = "websocket")]

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The first of `names` found on the PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Serves the files of tests/browser over HTTP/1.1 on 127.0.0.1 from a
/// thread, one request per connection; returns its address.
fn serve_page() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let addr = listener.local_addr().expect("its address");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the head.
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let (file, ty) = match path {
                "/" | "/index.html" => ("index.html", "text/html; charset=utf-8"),
                "/lichat.js" => ("lichat.js", "text/javascript; charset=utf-8"),
                _ => ("", ""),
            };
            let answer = match std::fs::read(dir.join(file)) {
                Ok(body) if !file.is_empty() => {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    a.extend(body);
                    a
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&answer);
        }
    });
    addr
}

/// One WebDriver command: `method` on `path` with a JSON body; returns
/// the answer's `value`, or panics with the driver's error.
fn webdriver(driver: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    eprintln!("webdriver: {method} {path}");
    let mut s = TcpStream::connect(driver).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(45)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {driver}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(body.as_bytes()).expect("send");
    // Up to the end of the head, then the body by its length (the driver
    // may keep the connection open).
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = s.read(&mut chunk).expect("the answer");
        assert!(n > 0, "{method} {path}: no answer");
        answer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut body = answer[end + 4..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut chunk).expect("the answer's body");
                assert!(n > 0, "{method} {path}: body cut short");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            s.read_to_end(&mut body).expect("the answer's body");
            if head.contains("transfer-encoding: chunked") {
                body = dechunk(&body);
            }
        }
    }
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&body)));
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(err) = value.get("error") {
        panic!("{method} {path}: {err}: {}", value["message"]);
    }
    value
}

/// The body of a chunked transfer coding (RFC 9112 §7.1).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[(eol + 4 + size).min(body.len())..];
    }
}

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session, deleted (its browser ended) when dropped.
struct Session(SocketAddr, String);

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect(self.0) {
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                self.1, self.0
            );
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.read(&mut [0u8; 1024]);
        }
    }
}

/// Starts chromedriver on a free port and waits for its "started" line.
fn start_chromedriver(driver: &Path) -> (Reaped, SocketAddr) {
    let port = common::free_port();
    let mut child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs: {e}", driver.display()));
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let child = Reaped(child);
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromedriver says it started");
        if line.contains("started successfully") {
            break;
        }
    }
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn browser_joins_over_websocket_and_exchanges_messages_with_pylichat() {
    // Runs only when demanded (`.ci/run` does): `cargo test` on a machine
    // without a browser still passes.
    if std::env::var("LICHAT_BROWSER_TEST")
        .ok()
        .is_none_or(|v| v != "1")
    {
        eprintln!(
            "skipped: set LICHAT_BROWSER_TEST=1 to run the browser test (needs chromium and \
             chromedriver: apt-get install -y chromium chromium-driver)"
        );
        return;
    }
    let (Some(chromium), Some(driver)) = (
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
        on_path(&["chromedriver"]),
    ) else {
        panic!(
            "LICHAT_BROWSER_TEST=1 but chromium or chromedriver is not on the PATH \
             (apt-get install -y chromium chromium-driver)"
        );
    };
    let python = common::pylichat_python();
    let ws_port = common::free_port().to_string();
    let mut server = common::start(&["--ws-port", &ws_port]);
    server.wait_log("listening for WebSocket on ");
    let page = serve_page();

    // The pylichat side makes the channel first.
    let mut peer = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/peer.py"
        ))
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .args(["browser", "webby"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut peer_out = BufReader::new(peer.stdout.take().expect("stdout"));
    let mut line = String::new();
    peer_out
        .read_line(&mut line)
        .expect("the peer's first line");
    assert_eq!(line.trim(), "ready", "pylichat peer not ready");

    let (_driver, driver_addr) = start_chromedriver(&driver);
    let profile = common::temp_data_dir();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "timeouts": {"script": 30000, "pageLoad": 30000},
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=900,600",
                     format!("--user-data-dir={}", profile.display())],
        },
    }}});
    let session = webdriver(driver_addr, "POST", "/session", Some(&caps));
    let id = session["sessionId"]
        .as_str()
        .expect("a session id")
        .to_owned();
    // The browser goes with its session, whatever happens below.
    let _session = Session(driver_addr, id.clone());
    let at = |p: &str| format!("/session/{id}{p}");
    let url = format!("http://{page}/index.html?ws={ws_port}&channel=browser&user=webby");
    webdriver(
        driver_addr,
        "POST",
        &at("/url"),
        Some(&json!({ "url": url })),
    );
    // Resolves when the page's state is final, by a MutationObserver.
    let wait_final = r#"
        const done = arguments[arguments.length - 1];
        const final = () => { const s = document.body.dataset.state || "";
                              return s === "linked" || s.startsWith("failed"); };
        const report = () => document.body.dataset.state + " | " +
                             document.getElementById("log").innerText;
        if (final()) { done(report()); return; }
        setTimeout(() => done(report()), 20000);
        new MutationObserver((m, o) => { if (final()) { o.disconnect(); done(report()); } })
          .observe(document.body, { attributes: true });"#;
    let state = webdriver(
        driver_addr,
        "POST",
        &at("/execute/async"),
        Some(&json!({"script": wait_final, "args": []})),
    );
    let received = webdriver(
        driver_addr,
        "POST",
        &at("/execute/sync"),
        Some(&json!({"script": "return document.body.dataset.received || null;", "args": []})),
    );
    let shot = webdriver(driver_addr, "GET", &at("/screenshot"), None);
    let png = lichat_tcp_server::protocol::payload::base64_decode(shot.as_str().expect("base64"))
        .expect("a base-64 screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = tmp.parent().unwrap_or(tmp).join("browser-test.png");
    std::fs::write(&file, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", file.display());
    let _ = std::fs::remove_dir_all(&profile);

    let status = peer.wait().expect("the peer ends");
    let mut rest = String::new();
    let _ = peer_out.read_to_string(&mut rest);
    let mut err = String::new();
    let _ = peer.stderr.take().map(|mut e| e.read_to_string(&mut err));
    let state = state.as_str().unwrap_or_default().to_owned();
    assert!(
        state.starts_with("linked |"),
        "page state: {state}; peer: {rest}{err}"
    );
    assert_eq!(received, json!("hello from pylichat"));
    assert!(
        status.success() && rest.contains("peer ok"),
        "pylichat peer failed: {rest}{err}\nserver log:\n{}",
        server.log().join("\n")
    );
}
