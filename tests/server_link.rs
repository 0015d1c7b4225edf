//! shirakumo-link (`shirakumo.mess` §12) against the real server on
//! 127.0.0.1: a `data` update is saved, a `message` with its URL and
//! `link` goes out instead, and `GET` on that URL serves the payload with
//! its content type and file name; payloads go with their channel, and
//! the stored ones outlive a restart.
#![cfg(feature = "websocket")]

mod common;

use common::{Client, class, field, start, start_in, temp_data_dir, text};
use lichat_tcp_server::protocol::payload::base64_encode;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// An HTTP response: its head (status line and headers) and its body.
struct Response {
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn status(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `method path` to `addr` and reads the whole response, up to the
/// server's close.
fn http(addr: SocketAddr, method: &str, path: &str) -> Response {
    http_with(addr, method, path, "")
}

/// [`http`] with more header lines (each ending in CRLF).
fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Response {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("the answer, then the close");
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    Response {
        head: String::from_utf8(out[..end].to_vec()).expect("the head is text"),
        body: out[end + 4..].to_vec(),
    }
}

/// The path part of a payload URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    &rest[rest.find('/').expect("a path")..]
}

/// Bytes that are no text: every byte value, over and over.
fn binary(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn share(client: &mut Client, channel: &str, ty: &str, filename: &str, payload: &[u8]) -> u64 {
    client.update(
        "data",
        &format!(
            ":channel \"{channel}\" :content-type \"{ty}\" :filename \"{filename}\" :payload \"{}\"",
            base64_encode(payload)
        ),
    )
}

/// The connect reply's extension list holds `name`.
fn advertises(server: &common::Server, name: &str) -> bool {
    let mut c = server.connect();
    c.send("(connect :id 1 :from \"probe\" :version \"2.0\")");
    let reply = c.recv_class("connect");
    field(&reply, "extensions")
        .and_then(|v| v.as_list())
        .is_some_and(|l| l.iter().any(|e| e.as_str() == Some(name)))
}

#[test]
fn data_goes_out_as_a_link_message_and_get_serves_the_payload_12() {
    let server = start(&[]);
    assert!(advertises(&server, "shirakumo-link"));
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    bob.update("join", ":channel \"den\"");
    bob.recv_in("join", "den");
    ann.recv_in("join", "den");
    // Several chunks' worth, so the file is streamed.
    let payload = binary(300_000);
    let id = share(&mut ann, "den", "image/png", "café photo.png", &payload);
    // Steps 2–3: a message, to both, with the data update's id.
    let mut urls = Vec::new();
    for c in [&mut ann, &mut bob] {
        let m = c.recv_in("message", "den");
        assert_eq!(class(&m), "message");
        assert_eq!(field(&m, "id").and_then(|v| v.as_u64()), Some(id));
        assert_eq!(text(&m, "from"), Some("ann"));
        assert_eq!(text(&m, "link"), Some("image/png"));
        assert!(
            field(&m, "payload").is_none(),
            "step 4: the data is not sent"
        );
        urls.push(text(&m, "text").expect("the URL").to_owned());
    }
    assert_eq!(urls[0], urls[1]);
    let url = &urls[0];
    let port = server.addr.port();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/link/")),
        "{url}"
    );
    // At least 128 random bits: 32 hex digits.
    let name = url.rsplit('/').next().unwrap_or("");
    assert_eq!(name.len(), 32, "{url}");
    assert!(name.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");

    let got = http(server.addr, "GET", path_of(url));
    assert_eq!(got.status(), "HTTP/1.1 200 OK", "{}", got.head);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.header("content-length"), Some("300000"));
    assert_eq!(
        got.header("content-disposition"),
        Some("inline; filename=\"caf_ photo.png\"; filename*=UTF-8''caf%C3%A9%20photo.png")
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(got.body == payload, "the payload, byte for byte");

    let head = http(server.addr, "HEAD", path_of(url));
    assert_eq!(head.status(), "HTTP/1.1 200 OK");
    assert_eq!(head.header("content-length"), Some("300000"));
    assert!(head.body.is_empty());

    // Ranges (RFC 9110 §14), as a video player asks for them.
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    let part = http_with(
        server.addr,
        "GET",
        path_of(url),
        "Range: bytes=70000-70999\r\n",
    );
    assert_eq!(
        part.status(),
        "HTTP/1.1 206 Partial Content",
        "{}",
        part.head
    );
    assert_eq!(
        part.header("content-range"),
        Some("bytes 70000-70999/300000")
    );
    assert!(part.body == payload[70000..71000]);
    let tail = http_with(server.addr, "GET", path_of(url), "Range: bytes=-10\r\n");
    assert!(tail.body == payload[300000 - 10..]);
    let past = http_with(server.addr, "GET", path_of(url), "Range: bytes=300000-\r\n");
    assert_eq!(past.status(), "HTTP/1.1 416 Range Not Satisfiable");
    assert_eq!(past.header("content-range"), Some("bytes */300000"));

    // A second share of the same bytes gets a name of its own.
    share(&mut bob, "den", "image/png", "again.png", &payload);
    let again = text(&ann.recv_in("message", "den"), "text")
        .unwrap_or("")
        .to_owned();
    assert_ne!(&again, url);
}

#[test]
fn names_that_are_no_payloads_get_404_and_no_file_outside_is_reached_12() {
    let server = start(&[]);
    for path in [
        "/link/00000000000000000000000000000000",
        "/link/../lichat.db",
        "/link/%2e%2e%2flichat.db",
        "/link/",
        "/link/ABCDEF00000000000000000000000000",
    ] {
        let got = http(server.addr, "GET", path);
        assert_eq!(got.status(), "HTTP/1.1 404 Not Found", "{path}");
    }
}

#[test]
fn an_anonymous_channels_payloads_go_when_it_goes_12() {
    let server = start(&[]);
    let mut ann = server.login("ann");
    ann.update("create", "");
    let join = ann.recv_class("join");
    let channel = text(&join, "channel").expect("a channel").to_owned();
    share(&mut ann, &channel, "text/plain", "notes.txt", b"some notes");
    let url = text(&ann.recv_in("message", &channel), "text")
        .unwrap_or("")
        .to_owned();
    let got = http(server.addr, "GET", path_of(&url));
    assert_eq!(got.status(), "HTTP/1.1 200 OK");
    assert_eq!(got.body, b"some notes");
    // Empty, the anonymous channel is gone (§2.4.2) and its payloads go
    // with the next commit; a registration's reply waits for one.
    ann.update("leave", &format!(":channel \"{channel}\""));
    ann.recv_class("leave");
    ann.update("register", ":password \"hunter22\"");
    ann.recv_class("register");
    let got = http(server.addr, "GET", path_of(&url));
    assert_eq!(got.status(), "HTTP/1.1 404 Not Found");
}

#[test]
fn stored_payloads_outlive_a_restart_those_of_anonymous_channels_do_not_12() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    ann.update("register", ":password \"hunter22\"");
    ann.recv_class("register");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    share(
        &mut ann,
        "den",
        "application/pdf",
        "paper.pdf",
        &binary(5000),
    );
    let kept = text(&ann.recv_in("message", "den"), "text")
        .unwrap_or("")
        .to_owned();
    ann.update("create", "");
    let anonymous = text(&ann.recv_class("join"), "channel")
        .unwrap_or("")
        .to_owned();
    share(&mut ann, &anonymous, "text/plain", "", b"passing");
    let passing = text(&ann.recv_in("message", &anonymous), "text")
        .unwrap_or("")
        .to_owned();
    // The messages were the confirmations: kill at once.
    server.kill_now();
    drop(server);

    let server = start_in(&dir, &[]);
    let got = http(server.addr, "GET", path_of(&kept));
    assert_eq!(got.status(), "HTTP/1.1 200 OK", "{}", got.head);
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert_eq!(got.body, binary(5000));
    let got = http(server.addr, "GET", path_of(&passing));
    assert_eq!(got.status(), "HTTP/1.1 404 Not Found");
    let files = std::fs::read_dir(dir.join("links"))
        .expect("the links directory")
        .count();
    assert_eq!(files, 1, "only the kept payload's file is left");
}

#[test]
fn a_full_store_for_payloads_refuses_data_with_a_failure_saying_so_12() {
    let server = start(&["--max-link-bytes", "8192"]);
    let mut ann = server.login("ann");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    // 5000 bytes take two 4 KiB blocks: all there is.
    share(&mut ann, "den", "image/gif", "a.gif", &binary(5000));
    assert_eq!(class(&ann.recv_in("message", "den")), "message");
    let id = share(&mut ann, "den", "image/gif", "b.gif", b"GIF89a");
    let failure = ann.recv_class("update-failure");
    assert_eq!(
        field(&failure, "update-id").and_then(|v| v.as_u64()),
        Some(id)
    );
    let why = text(&failure, "text").unwrap_or("");
    assert!(why.contains("full"), "{why}");
}

#[test]
fn without_room_for_payloads_data_is_distributed_as_it_came_2_12() {
    let server = start(&["--max-link-bytes", "0"]);
    assert!(!advertises(&server, "shirakumo-link"));
    let mut ann = server.login("ann");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    share(&mut ann, "den", "image/png", "a.png", b"png?");
    let data = ann.recv_in("data", "den");
    assert_eq!(
        text(&data, "payload"),
        Some(base64_encode(b"png?").as_str())
    );
}

#[test]
fn link_url_prefix_sets_what_urls_start_with_12() {
    // A path without its final slash is taken as a directory.
    let server = start(&["--link-url-prefix", "https://files.example.org/lichat"]);
    let mut ann = server.login("ann");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    share(&mut ann, "den", "image/png", "a.png", b"png!");
    let url = text(&ann.recv_in("message", "den"), "text")
        .unwrap_or("")
        .to_owned();
    let name = url
        .strip_prefix("https://files.example.org/lichat/")
        .unwrap_or_else(|| panic!("{url}"));
    // The server still serves it under /link/.
    let got = http(server.addr, "GET", &format!("/link/{name}"));
    assert_eq!(got.body, b"png!");
}
