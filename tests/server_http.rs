//! HTTP on the server's ports against the real server on 127.0.0.1:
//! `GET /metrics` with `--metrics` (Prometheus text), 404 otherwise,
//! bounded requests, and slow requests timing out.
#![cfg(feature = "websocket")]

mod common;

use common::start;
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

/// Sends `request` on a new connection to `addr` and reads the whole
/// answer, up to the server's close.
fn fetch(server: &common::Server, request: &[u8]) -> String {
    let mut s = server.connect_to(server.addr);
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("the answer, then the close");
    String::from_utf8(out).expect("text")
}

/// The value of a sample line `name value` in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn metrics_scrape_counts_connections_users_updates_and_bytes() {
    let server = start(&["--metrics"]);
    let mut ann = server.login("ann");
    let _bob = server.login("bob");
    ann.message("TestServer", "hi");
    ann.update("ping", "");
    ann.recv_class("pong");
    let answer = fetch(&server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(length, body.len());
    assert_eq!(
        sample(body, "lichat_connections{transport=\"tcp\"}"),
        Some(2.0),
        "{body}"
    );
    // The scrape's own connection is being answered.
    assert_eq!(
        sample(body, "lichat_connections{transport=\"setup\"}"),
        Some(1.0)
    );
    assert_eq!(sample(body, "lichat_users"), Some(3.0), "ann, bob, server");
    assert_eq!(sample(body, "lichat_channels"), Some(1.0));
    assert!(sample(body, "lichat_updates_received_total").unwrap_or(0.0) >= 4.0);
    assert!(sample(body, "lichat_updates_sent_total").unwrap_or(0.0) >= 4.0);
    assert!(sample(body, "lichat_deliveries_total").unwrap_or(0.0) >= 4.0);
    assert!(sample(body, "lichat_bytes_received_total").unwrap_or(0.0) > 100.0);
    assert!(sample(body, "lichat_bytes_sent_total").unwrap_or(0.0) > 100.0);
    assert_eq!(sample(body, "lichat_write_queue_drops_total"), Some(0.0));
    assert_eq!(sample(body, "lichat_flood_drops_total"), Some(0.0));
    assert!(body.contains("# TYPE lichat_store_commit_seconds histogram"));
    assert!(sample(body, "lichat_store_commit_seconds_count").is_some());
}

#[test]
fn metrics_are_404_without_the_option_and_other_paths_always() {
    let server = start(&[]);
    let answer = fetch(&server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    let server = start(&["--metrics"]);
    let answer = fetch(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[test]
fn oversize_request_head_gets_431() {
    let server = start(&["--metrics"]);
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 9000));
    let answer = fetch(&server, &request);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

#[test]
fn slow_request_is_dropped_at_the_setup_deadline() {
    let server = start(&["--metrics"]);
    let mut s = server.connect_to(server.addr);
    s.set_read_timeout(Some(common::WAIT * 2))
        .expect("read timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\n").expect("send");
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => panic!("an answer to half a request: {:?}", &buf[..n]),
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
}
