//! Lichat over WebSocket (RFC 6455) against the real server on 127.0.0.1:
//! the upgrade with and without the `lichat` subprotocol, messages between
//! WebSocket and TCP clients, fragments, oversize and unmasked frames, a
//! malformed upgrade, and either framing on either port.
#![cfg(feature = "websocket")]

mod common;

use common::ws::{Ws, frame, request};
use common::{Server, class, clock, free_port, start, text};
use std::net::SocketAddr;

/// A server with a WebSocket port; returns it and that port's address.
fn ws_server(extra: &[&str]) -> (Server, SocketAddr) {
    let port = free_port().to_string();
    let mut args = vec!["--ws-port", port.as_str()];
    args.extend_from_slice(extra);
    let mut server = start(&args);
    let line = server.wait_log("listening for WebSocket on ");
    let addr = line
        .rsplit("on ")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (server, addr)
}

fn ws_client(server: &Server, addr: SocketAddr) -> Ws<std::net::TcpStream> {
    Ws::new(server.connect_to(addr))
}

#[test]
fn upgrade_answers_the_lichat_subprotocol_when_offered_rfc6455_4_2_2() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    let answer = c.upgrade(Some("lichat"));
    assert_eq!(
        answer.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(answer.header("sec-websocket-protocol"), Some("lichat"));
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    c.login("ann");
}

#[test]
fn upgrade_without_a_subprotocol_names_none_rfc6455_4_2_2() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    let answer = c.upgrade(None);
    assert_eq!(answer.header("sec-websocket-protocol"), None);
    c.login("ann");
}

#[test]
fn messages_go_both_ways_between_websocket_and_tcp_clients_3() {
    let (server, addr) = ws_server(&[]);
    let mut web = ws_client(&server, addr);
    web.upgrade(Some("lichat"));
    web.login("web");
    let mut tcp = server.login("tcp");
    tcp.update("create", ":channel \"lobby\"");
    tcp.recv_in("join", "lobby");
    web.send(&format!(
        "(join :id 7 :clock {} :from \"web\" :channel \"lobby\")",
        clock()
    ));
    loop {
        let j = web.recv_class("join");
        if text(&j, "channel") == Some("lobby") {
            break;
        }
    }
    tcp.recv_in("join", "lobby");
    tcp.message("lobby", "hello from tcp");
    let m = web.recv_class("message");
    assert_eq!(text(&m, "text"), Some("hello from tcp"));
    assert_eq!(text(&m, "from"), Some("tcp"));
    web.send(&format!(
        "(message :id 8 :clock {} :from \"web\" :channel \"lobby\" :text \"hello from web\")",
        clock()
    ));
    // The TCP client gets its own message back first.
    let mut m = tcp.recv_class("message");
    while text(&m, "from") == Some("tcp") {
        m = tcp.recv_class("message");
    }
    assert_eq!(text(&m, "text"), Some("hello from web"));
    assert_eq!(text(&m, "from"), Some("web"));
}

#[test]
fn fragmented_message_is_reassembled_and_pings_answered_between_rfc6455_5_4() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    c.upgrade(Some("lichat"));
    let connect = format!(
        "(connect :id 1 :clock {} :from \"frag\" :version \"2.0\")",
        clock()
    );
    let (a, b) = connect.as_bytes().split_at(10);
    c.send_frame(0x01, a);
    c.send_frame(0x89, b"are you there");
    // The last fragment has no NUL: the message's end ends the update.
    c.send_frame(0x80, b);
    let pong = c.frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (10, &b"are you there"[..])
    );
    let reply = c.recv();
    assert_eq!(class(&reply), "connect", "{reply:?}");
    assert_eq!(text(&reply, "from"), Some("frag"));
}

#[test]
fn frame_over_max_update_size_closes_with_1009_rfc6455_7_4_1() {
    let (server, addr) = ws_server(&["--max-update-size", "2048"]);
    let mut c = ws_client(&server, addr);
    c.upgrade(None);
    c.login("big");
    // Only the header: the server refuses before the payload.
    let mut header = vec![0x81, 0x80 | 126];
    header.extend_from_slice(&4000u16.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    c.send_raw(&header);
    assert_eq!(c.recv_close(), 1009);
}

#[test]
fn fragments_adding_up_past_the_limit_close_with_1009_rfc6455_7_4_1() {
    let (server, addr) = ws_server(&["--max-update-size", "2048"]);
    let mut c = ws_client(&server, addr);
    c.upgrade(None);
    c.login("frag");
    let piece = vec![b' '; 1000];
    c.send_frame(0x01, &piece);
    c.send_frame(0x00, &piece);
    assert_eq!(c.recv_close(), 1009);
}

#[test]
fn unmasked_frame_closes_with_1002_rfc6455_5_1() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    c.upgrade(None);
    c.send_raw(b"\x81\x05(a)\0\0");
    assert_eq!(c.recv_close(), 1002);
}

#[test]
fn close_frame_is_answered_with_the_same_code_rfc6455_5_5_1() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    c.upgrade(None);
    c.login("bye");
    c.send_raw(&frame(0x88, &1000u16.to_be_bytes()));
    assert_eq!(c.recv_close(), 1000);
}

#[test]
fn disconnect_over_websocket_ends_with_a_close_frame_4_3() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    c.upgrade(None);
    c.login("leaver");
    c.send(&format!(
        "(disconnect :id 9 :clock {} :from \"leaver\")",
        clock()
    ));
    assert_eq!(c.recv_close(), 1000);
}

#[test]
fn malformed_upgrade_is_refused_with_400_and_another_version_with_426_rfc6455_4_2_1() {
    let (server, addr) = ws_server(&[]);
    let mut c = ws_client(&server, addr);
    let no_key = request(None).replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    let answer = c.upgrade_with(&no_key);
    assert!(
        answer.status.starts_with("HTTP/1.1 400 "),
        "{}",
        answer.status
    );
    let mut c = ws_client(&server, addr);
    let v8 = request(None).replace("Version: 13", "Version: 8");
    let answer = c.upgrade_with(&v8);
    assert!(
        answer.status.starts_with("HTTP/1.1 426 "),
        "{}",
        answer.status
    );
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
}

#[test]
fn lichat_on_the_websocket_port_and_websocket_on_the_lichat_port_are_recognised() {
    let (server, addr) = ws_server(&[]);
    // `(` opens Lichat on the WebSocket port.
    let mut raw = server.connect_to(addr);
    use std::io::{Read, Write};
    raw.write_all(
        format!(
            "(connect :id 1 :clock {} :from \"plain\" :version \"2.0\")\0",
            clock()
        )
        .as_bytes(),
    )
    .expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.contains(&0) {
        let n = raw.read(&mut chunk).expect("a reply");
        assert!(n > 0, "closed");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        got.starts_with(b"(CONNECT") || got.starts_with(b"(connect"),
        "{got:?}"
    );
    // `GET ` opens WebSocket on the Lichat port.
    let mut c = ws_client(&server, server.addr);
    c.upgrade(Some("lichat"));
    c.login("web");
}
