//! The server over real TCP: handshake, fan-out, framing, oversize and
//! malformed updates, flood protection.

mod common;

use common::{class, clock, int, start, text};

#[test]
fn handshake_replies_connect_join_and_welcome_message_4_1() {
    let server = start(&[]);
    let mut c = server.connect();
    c.send(&format!(
        "(connect :id 42 :clock {} :from \"ann\" :version \"2.0\")",
        clock()
    ));
    let reply = c.recv();
    assert_eq!(class(&reply), "connect", "{reply:?}");
    assert_eq!(int(&reply, "id"), Some(42));
    assert_eq!(text(&reply, "from"), Some("ann"));
    let join = c.recv();
    assert_eq!(class(&join), "join", "{join:?}");
    assert_eq!(text(&join, "channel"), Some("TestServer"));
    assert_eq!(text(&join, "from"), Some("ann"));
    let welcome = c.recv();
    assert_eq!(class(&welcome), "message", "{welcome:?}");
    assert_eq!(text(&welcome, "channel"), Some("TestServer"));
    assert_eq!(text(&welcome, "from"), Some("TestServer"));
}

#[test]
fn message_fans_out_to_every_channel_member_3() {
    let server = start(&[]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    let mut carl = server.login("carl");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_in("join", "lobby");
    for c in [&mut bob, &mut carl] {
        c.update("join", ":channel \"lobby\"");
        c.recv_in("join", "lobby");
    }
    let id = ann.message("lobby", "hello everyone");
    for c in [&mut ann, &mut bob, &mut carl] {
        let m = c.recv_class("message");
        assert_eq!(text(&m, "text"), Some("hello everyone"), "{m:?}");
        assert_eq!(text(&m, "from"), Some("ann"));
        assert_eq!(text(&m, "channel"), Some("lobby"));
        assert_eq!(int(&m, "id"), Some(id));
    }
}

#[test]
fn updates_split_byte_by_byte_are_read_whole_3_1() {
    let server = start(&[]);
    let mut c = server.connect();
    let mut bytes = format!(
        "(connect :id 5 :clock {} :from \"ann\" :version \"2.0\")",
        clock()
    )
    .into_bytes();
    bytes.push(0);
    bytes.extend_from_slice(b"(ping :id 6 :clock 3900000000)\0");
    for b in &bytes {
        c.send_raw(std::slice::from_ref(b));
    }
    let reply = c.recv();
    assert_eq!(class(&reply), "connect", "{reply:?}");
    let pong = c.recv_class("pong");
    assert_eq!(int(&pong, "id"), Some(6));
}

#[test]
fn several_updates_in_one_packet_are_all_answered_3_1() {
    let server = start(&[]);
    let mut c = server.login("ann");
    c.send_raw(b"(ping :id 100 :clock 3900000000)\0(ping :id 101 :clock 3900000000)\0");
    assert_eq!(int(&c.recv_class("pong"), "id"), Some(100));
    assert_eq!(int(&c.recv_class("pong"), "id"), Some(101));
}

#[test]
fn oversize_update_gets_update_too_long_and_connection_survives_5_1_2() {
    let server = start(&["--max-update-size", "2000"]);
    let mut c = server.login("ann");
    let long = "x".repeat(5000);
    c.message("TestServer", &long);
    c.recv_class("update-too-long");
    let id = c.update("ping", "");
    let pong = c.recv_class("pong");
    assert_eq!(int(&pong, "id"), Some(id));
}

#[test]
fn relayed_updates_stay_within_the_update_size_limit_5_1_2() {
    let limit = 4096;
    let server = start(&["--max-update-size", &limit.to_string()]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_in("join", "lobby");
    bob.update("join", ":channel \"lobby\"");
    bob.recv_in("join", "lobby");
    // The longest update a client may send: no :clock and no :from, a
    // channel name spelled in another case; the server adds and respells.
    let input = |text_len: usize| {
        format!(
            "(message :id 5 :channel \"LOBBY\" :text \"{}\")",
            "x".repeat(text_len)
        )
    };
    let fixed = input(0).len();
    // An update of exactly the limit would go out longer than it once
    // relayed: it is refused.
    ann.send(&input(limit - fixed));
    ann.recv_class("update-too-long");
    let longest = limit - lichat_tcp_server::net::RELAY_ROOM;
    ann.send(&input(longest - fixed));
    let relayed = bob.recv_class("message");
    let mut printed = Vec::new();
    lichat_tcp_server::wire::print_update(&relayed, &mut printed).unwrap();
    assert!(
        printed.len() - 1 <= limit,
        "{} bytes relayed",
        printed.len() - 1
    );
    assert!(
        relayed
            .get_raw(lichat_tcp_server::wire::Known::KClock)
            .is_some()
    );
    // One byte more is refused, and the connection stays.
    ann.send(&input(longest - fixed + 1));
    ann.recv_class("update-too-long");
    let id = ann.update("ping", "");
    assert_eq!(int(&ann.recv_class("pong"), "id"), Some(id));
}

#[test]
fn malformed_update_gets_malformed_update_and_connection_survives_3() {
    let server = start(&[]);
    let mut c = server.login("ann");
    c.send("(message :id 9 :text \"unterminated");
    c.recv_class("malformed-update");
    let id = c.update("ping", "");
    assert_eq!(int(&c.recv_class("pong"), "id"), Some(id));
}

#[test]
fn flood_gets_too_many_updates_4_2() {
    let server = start(&["--flood-limit", "5", "--flood-frame", "30"]);
    let mut c = server.login("ann");
    let mut burst = String::new();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = c.id();
        ids.push(id);
        burst.push_str(&format!("(ping :id {id} :clock {})\0", clock()));
    }
    c.send_raw(burst.as_bytes());
    let refusal = c.recv_class("too-many-updates");
    let about = int(&refusal, "update-id").expect("too-many-updates names the update");
    assert!(ids.contains(&about), "{refusal:?}");
}
