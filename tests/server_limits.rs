//! Limits over real TCP: connection limit (§4.1.1) and the write queue
//! limit for clients that stop reading.

mod common;

use common::{Gone, class, start, text};
use std::io::{ErrorKind, Read};
use std::time::Duration;

#[test]
fn connection_limit_refuses_with_too_many_connections_4_1_1() {
    let mut server = start(&["--connection-limit", "2"]);
    let a = server.connect();
    let _b = server.connect();
    let mut c = server.connect();
    let refusal = c.recv();
    assert_eq!(class(&refusal), "too-many-connections", "{refusal:?}");
    assert_eq!(c.try_recv(Duration::from_secs(5)).err(), Some(Gone::Closed));
    // A freed place can be taken again.
    drop(a);
    let line = server.wait_log("connection 0 from");
    assert!(line.contains("closed (by the peer)"), "{line}");
    let mut d = server.login("dora");
    let id = d.update("ping", "");
    assert_eq!(common::int(&d.recv_class("pong"), "id"), Some(id));
}

#[test]
fn non_reading_client_is_dropped_at_write_queue_limit_while_others_are_served() {
    let mut server = start(&[
        "--max-write-queue",
        "65536",
        "--flood-limit",
        "1000000",
        "--max-update-size",
        "200000",
    ]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    let mut carl = server.login("carl");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_class("join");
    for c in [&mut bob, &mut carl] {
        c.update("join", ":channel \"lobby\"");
        c.recv_class("join");
    }
    // Bob stops reading. Ann sends until the server gives up on him and
    // carl sees him leave (§4.3.4); ann and carl read every message.
    let big = "y".repeat(50_000);
    let mut sent = 0;
    let mut bob_left = false;
    while !bob_left {
        assert!(sent < 2000, "bob was never dropped");
        ann.message("lobby", &big);
        ann.recv_class("message");
        loop {
            let u = carl.recv();
            match class(&u).as_str() {
                "message" => break,
                "leave" if text(&u, "from") == Some("bob") => bob_left = true,
                _ => {}
            }
        }
        sent += 1;
    }
    let line = server.wait_log("over the limit");
    assert!(line.contains("connection 1 "), "{line}");
    ann.message("lobby", "still here");
    for c in [&mut ann, &mut carl] {
        let m = c.recv_class("message");
        assert_eq!(text(&m, "text"), Some("still here"));
    }
    // Bob finds his connection closed once he reads what was in flight.
    bob.recv_until_closed();
}

#[test]
fn finished_connection_stops_counting_once_its_last_bytes_are_sent_4_1_1() {
    let server = start(&["--connection-limit", "2"]);
    let mut ann = server.login("ann");
    let _bob = server.login("bob");
    let id = ann.update("disconnect", "");
    // Past bob's arrival in the primary channel.
    let echo = ann.recv_class("disconnect");
    assert_eq!(common::int(&echo, "id"), Some(id));
    // Ann keeps her socket open and does not read on: the server has sent
    // its last bytes to her, so her place is free at once.
    let mut carl = server.connect();
    let id = carl.id();
    carl.send(&format!(
        "(connect :id {id} :clock {} :from \"carl\" :version \"2.0\")",
        common::clock()
    ));
    let reply = carl.recv();
    assert_eq!(class(&reply), "connect", "{reply:?}");
    drop(ann);
}

#[test]
fn closed_connections_waiting_for_their_peers_stay_bounded_by_the_limit_4_1_1() {
    let server = start(&["--connection-limit", "2"]);
    let _ann = server.login("ann");
    let before = server.open_fds();
    // Twenty clients in turn take the free place, disconnect and keep
    // their sockets open: each would wait for its peer's end of stream
    // until the close deadline, but no more than the limit wait at once.
    let mut gone = Vec::new();
    for i in 0..20 {
        let mut c = server.login(&format!("user{i}"));
        c.update("disconnect", "");
        assert_eq!(class(&c.recv_class("disconnect")), "disconnect");
        gone.push(c);
    }
    let fds = server.open_fds();
    // Two linger; the last one to finish may still await its freeing at the
    // end of the server's loop turn.
    assert!(
        fds <= before + 3,
        "{fds} descriptors open, {before} with one client"
    );
}

#[test]
fn client_dropped_for_not_reading_is_reset_so_its_buffers_are_freed() {
    let mut server = start(&[
        "--max-write-queue",
        "65536",
        "--flood-limit",
        "1000000",
        "--max-update-size",
        "200000",
    ]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_class("join");
    bob.update("join", ":channel \"lobby\"");
    bob.recv_class("join");
    // Bob stops reading; ann sends until he leaves the channel.
    let big = "y".repeat(50_000);
    let mut bob_left = false;
    for _ in 0..2000 {
        ann.message("lobby", &big);
        loop {
            let u = ann.recv();
            match class(&u).as_str() {
                "message" => break,
                "leave" if text(&u, "from") == Some("bob") => bob_left = true,
                _ => {}
            }
        }
        if bob_left {
            break;
        }
    }
    assert!(bob_left, "bob was never dropped");
    server.wait_log("over the limit");
    // What was in flight is still readable; then the reset, not an orderly
    // end of stream that the kernel would hold the queue for.
    bob.stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
    let mut chunk = vec![0u8; 1 << 16];
    let end = loop {
        match bob.stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(e.kind()),
        }
    };
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
}

#[test]
fn many_clients_dropped_together_for_not_reading_are_all_reset() {
    let server = start(&[
        "--max-write-queue",
        "65536",
        "--flood-limit",
        "1000000",
        "--max-update-size",
        "200000",
    ]);
    let mut ann = server.login("ann");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_class("join");
    // More than are reset in one loop turn.
    let mut stalled: Vec<_> = (0..20)
        .map(|i| {
            let mut c = server.login(&format!("still{i}"));
            c.update("join", ":channel \"lobby\"");
            c.recv_class("join");
            c
        })
        .collect();
    let big = "y".repeat(50_000);
    let mut left = 0;
    for _ in 0..2000 {
        ann.message("lobby", &big);
        loop {
            let u = ann.recv();
            match class(&u).as_str() {
                "message" => break,
                "leave" if text(&u, "channel") == Some("lobby") => left += 1,
                _ => {}
            }
        }
        if left == stalled.len() {
            break;
        }
    }
    assert_eq!(left, stalled.len(), "not all were dropped");
    for c in &mut stalled {
        c.stream
            .set_read_timeout(Some(common::WAIT))
            .expect("timeout");
        let mut chunk = vec![0u8; 1 << 16];
        let end = loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e.kind()),
            }
        };
        assert_eq!(end, Err(ErrorKind::ConnectionReset), "{}", c.name);
    }
    // The server goes on serving.
    let id = ann.update("ping", "");
    assert_eq!(common::int(&ann.recv_class("pong"), "id"), Some(id));
    drop(server);
}
