//! §4.1 connection establishment, §4.2 maintenance (ping, idle timeout,
//! flood) and §4.3 closure, driven without sockets.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Config;
use lichat_tcp_server::protocol::is_valid_name;
use lichat_tcp_server::wire::{Known, Value, read_object};

fn connect_update(id: u64, name: &str, version: &str) -> String {
    format!("(connect :id {id} :from \"{name}\" :version \"{version}\" :extensions ())")
}

#[test]
fn connect_replies_with_same_id_then_primary_join_then_welcome_4_1_11_to_14() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, &connect_update(77, "ann", "2.0"));
    assert_eq!(
        classes_of(&got),
        [Known::Connect, Known::Join, Known::Message],
        "{got:?}"
    );
    assert_eq!(id(&got[0]), Some(77));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&got[0], Known::KVersion), Some("2.0"));
    assert_eq!(text(&got[1], Known::KFrom), Some("ann"));
    assert_eq!(text(&got[1], Known::KChannel), Some("Server"));
    assert_eq!(text(&got[2], Known::KFrom), Some("Server"));
    assert_eq!(text(&got[2], Known::KChannel), Some("Server"));
    assert!(h.engine.is_established(1));
    assert!(!h.closed.contains(&1));
}

#[test]
fn connect_reply_name_is_the_users_actual_spelling_4_1_11() {
    let mut h = Harness::new();
    h.login(1, "Ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    let got = h.connect_with(2, "ANN", "secret1");
    assert_eq!(class(&got[0]), Known::Connect, "{got:?}");
    assert_eq!(text(&got[0], Known::KFrom), Some("Ann"));
}

#[test]
fn new_user_joining_the_primary_channel_is_announced_to_its_members_4_1_13_5_4_1() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    let got = h.take(1);
    assert_eq!(classes_of(&got), [Known::Join], "ann hears bob arrive");
    assert_eq!(text(&got[0], Known::KFrom), Some("bob"));
    assert_eq!(text(&got[0], Known::KChannel), Some("Server"));
}

#[test]
fn a_second_connection_of_a_user_is_not_a_new_join_4_1_12() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h.login(3, "bob");
    h.take(3);
    h.connect_with(2, "ann", "secret1");
    assert!(
        h.take(3).is_empty(),
        "ann was in the primary channel already"
    );
}

#[test]
fn last_connection_closing_sends_leave_of_the_primary_channel_to_its_members_4_3_4() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.take(1);
    h.expect_ok(2, "(disconnect :id 9)");
    let got = h.take(1);
    assert_eq!(classes_of(&got), [Known::Leave], "{got:?}");
    assert_eq!(text(&got[0], Known::KFrom), Some("bob"));
    assert_eq!(text(&got[0], Known::KChannel), Some("Server"));
}

#[test]
fn refused_socket_gets_too_many_connections_without_update_id_4_1_1() {
    let mut h = Harness::new();
    let bytes = h.engine.too_many_connections(h.now);
    assert_eq!(bytes.last(), Some(&0));
    let f = read_object(&bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(class(&f), Known::TooManyConnections);
    assert_eq!(update_id(&f), None);
    assert_eq!(text(&f, Known::KFrom), Some("Server"));
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn incompatible_version_fails_with_compatible_versions_and_closes_4_1_2() {
    let mut h = Harness::new();
    h.open(1);
    let f = h.expect_failure(
        1,
        &connect_update(5, "ann", "3.0"),
        Known::IncompatibleVersion,
    );
    let versions = strings(&f, Known::KCompatibleVersions);
    assert!(versions.contains(&"2.0".to_owned()), "{versions:?}");
    assert!(versions.contains(&"1.0".to_owned()), "{versions:?}");
    assert!(h.closed.contains(&1));
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn every_listed_compatible_version_is_accepted_4_1_2() {
    let mut h = Harness::new();
    for (i, v) in ["2.0", "1.5", "1.4", "1.3", "1.2", "1.1", "1.0"]
        .iter()
        .enumerate()
    {
        h.open(i + 1);
        let got = h.call(i + 1, &connect_update(1, &format!("u{i}"), v));
        assert_eq!(class(&got[0]), Known::Connect, "version {v}: {got:?}");
    }
}

#[test]
fn missing_or_nil_from_gets_a_random_unused_valid_name_4_1_3() {
    let mut h = Harness::new();
    h.open(1);
    let a = h.call(1, "(connect :id 1 :version \"2.0\")");
    h.open(2);
    let b = h.call(2, "(connect :id 1 :from nil :version \"2.0\")");
    let a = text(&a[0], Known::KFrom).unwrap().to_owned();
    let b = text(&b[0], Known::KFrom).unwrap().to_owned();
    assert!(is_valid_name(&a) && is_valid_name(&b), "{a:?} {b:?}");
    assert_ne!(a.to_lowercase(), b.to_lowercase());
    assert_ne!(a, "Server");
    assert!(h.engine.is_established(1) && h.engine.is_established(2));
    // The generated name is a real user: others can see it.
    h.login(3, "ann");
    let info = h.expect_ok(3, &format!("(user-info :id 2 :target \"{a}\")"));
    assert_eq!(
        info[0].get(Known::KConnections).and_then(Value::as_u64),
        Some(1)
    );
}

#[test]
fn invalid_name_in_connect_fails_bad_name_and_closes_4_1_4() {
    for name in [" ann", "a  b", &"x".repeat(33)] {
        let mut h = Harness::new();
        h.open(1);
        h.expect_failure(1, &connect_update(9, name, "2.0"), Known::BadName);
        assert!(h.closed.contains(&1), "{name:?}");
        assert!(!h.engine.is_established(1));
    }
}

#[test]
fn name_of_an_active_user_fails_username_taken_and_closes_4_1_5() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.open(2);
    h.expect_failure(2, &connect_update(3, "ANN", "2.0"), Known::UsernameTaken);
    assert!(h.closed.contains(&2));
    h.open(3);
    h.expect_failure(3, &connect_update(4, "server", "2.0"), Known::UsernameTaken);
    assert!(h.closed.contains(&3));
    assert!(!h.closed.contains(&1));
}

#[test]
fn too_many_connections_for_one_user_fails_and_closes_4_1_8() {
    let mut h = Harness::with(Config {
        max_connections_per_user: 2,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    let got = h.connect_with(2, "ann", "secret1");
    assert_eq!(class(&got[0]), Known::Connect);
    h.open(3);
    let got = h.call(
        3,
        "(connect :id 8 :from \"ann\" :password \"secret1\" :version \"2.0\")",
    );
    assert_eq!(classes_of(&got), [Known::TooManyConnections]);
    // A plain failure (lichat.sexpr): it has no update-id slot.
    assert_eq!(got[0].get_raw(Known::KUpdateId), None);
    assert!(h.closed.contains(&3));
    assert!(h.engine.is_established(1) && h.engine.is_established(2));
}

#[test]
fn second_connection_ties_to_the_user_and_replays_joins_primary_first_4_1_9_10_12() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h.expect_ok(1, "(create :id 3 :channel \"lobby\")");
    h.expect_ok(1, "(create :id 4 :channel \"dev\")");
    let got = h.connect_with(2, "ann", "secret1");
    assert_eq!(
        classes_of(&got),
        [
            Known::Connect,
            Known::Join,
            Known::Join,
            Known::Join,
            Known::Message
        ],
        "{got:?}"
    );
    let joined: Vec<_> = got[1..4]
        .iter()
        .map(|j| text(j, Known::KChannel).unwrap())
        .collect();
    assert_eq!(joined, ["Server", "lobby", "dev"]);
    assert!(
        got[1..4]
            .iter()
            .all(|j| text(j, Known::KFrom) == Some("ann"))
    );
    // The replay is for the new connection only.
    assert!(h.take(1).is_empty());
    // Both connections act as ann and receive what ann receives.
    h.login(3, "bob");
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    // bob's arrival in the primary channel, then in lobby.
    assert_eq!(h.classes(1), [Known::Join, Known::Join]);
    assert_eq!(h.classes(2), [Known::Join, Known::Join]);
    h.send(2, "(message :id 6 :channel \"lobby\" :text \"from two\")");
    let b = h.take(3);
    assert_eq!(text(&b[0], Known::KFrom), Some("ann"));
    assert_eq!(h.classes(1), [Known::Message]);
    assert_eq!(h.classes(2), [Known::Message]);
}

#[test]
fn connect_on_an_established_connection_fails_already_connected_4_1() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_failure(
        1,
        &connect_update(12, "ann", "2.0"),
        Known::AlreadyConnected,
    );
    assert!(!h.closed.contains(&1));
    assert!(h.engine.is_established(1));
}

#[test]
fn update_other_than_connect_first_fails_invalid_update_and_closes_4_1() {
    let mut h = Harness::new();
    h.open(1);
    h.expect_failure(1, "(ping :id 3)", Known::InvalidUpdate);
    assert!(h.closed.contains(&1));
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn malformed_connect_closes_the_connection_4_1() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\")");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    assert!(h.closed.contains(&1));
}

#[test]
fn connect_timeout_closes_only_unestablished_connections_4_1() {
    let mut h = Harness::new();
    h.open(1);
    h.login(2, "ann");
    h.timer_connect(1);
    h.timer_connect(2);
    assert!(h.closed.contains(&1));
    assert!(!h.closed.contains(&2));
    assert!(h.take(1).is_empty(), "closed without a disconnect (4.3)");
    assert!(h.engine.is_established(2));
}

#[test]
fn ping_is_answered_with_pong_of_same_id_4_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    let got = h.expect_ok(1, "(ping :id 31)");
    assert_eq!(classes_of(&got), [Known::Pong]);
    assert_eq!(id(&got[0]), Some(31));
    assert!(h.call(1, "(pong :id 32)").is_empty());
}

#[test]
fn ping_timer_sends_a_ping_from_the_server_4_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.timer_ping(1);
    let got = h.take(1);
    assert_eq!(classes_of(&got), [Known::Ping]);
    assert_eq!(text(&got[0], Known::KFrom), Some("Server"));
    assert!(id(&got[0]).is_some());
    assert!(!h.closed.contains(&1));
}

#[test]
fn idle_timeout_sends_connection_unstable_then_disconnect_then_closes_4_2_4_3() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(1);
    h.timer_idle(2);
    let got = h.take(2);
    assert_eq!(
        classes_of(&got),
        [Known::ConnectionUnstable, Known::Disconnect],
        "{got:?}"
    );
    assert_eq!(update_id(&got[0]), None);
    assert!(h.closed.contains(&2));
    let a = h.take(1);
    assert_eq!(classes_of(&a), [Known::Leave, Known::Leave]);
    assert!(a.iter().all(|l| text(l, Known::KFrom) == Some("bob")));
    assert!(a.iter().any(|l| text(l, Known::KChannel) == Some("lobby")));
}

#[test]
fn flood_limit_answers_the_reaching_update_and_drops_later_ones_4_2() {
    let mut h = Harness::with(Config {
        flood_limit: 5,
        flood_frame: 30,
        ..config()
    });
    h.now = h.now / 30 * 30;
    h.open(1);
    // connect is the first of the frame's updates.
    h.send(1, &connect_update(1, "ann", "2.0"));
    h.take(1);
    for i in 2..5 {
        assert_eq!(h.classes(1), [], "nothing pending");
        let got = h.expect_ok(1, &format!("(ping :id {i})"));
        assert_eq!(classes_of(&got), [Known::Pong]);
    }
    h.expect_failure(1, "(ping :id 5)", Known::TooManyUpdates);
    assert!(h.call(1, "(ping :id 6)").is_empty());
    assert!(
        h.call(1, "(message :id 7 :channel \"x\" :text \"y\")")
            .is_empty()
    );
    h.send(1, "(garbage");
    assert!(h.take(1).is_empty());
    assert!(!h.closed.contains(&1));
    // The next frame starts afresh.
    h.now += 29;
    assert!(h.call(1, "(ping :id 8)").is_empty());
    h.now += 1;
    let got = h.expect_ok(1, "(ping :id 9)");
    assert_eq!(classes_of(&got), [Known::Pong]);
}

#[test]
fn disconnect_is_echoed_then_closed_and_last_connection_leaves_channels_4_3() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(1);
    let got = h.call(2, "(disconnect :id 44)");
    assert_eq!(classes_of(&got), [Known::Disconnect]);
    assert_eq!(id(&got[0]), Some(44));
    assert!(h.closed.contains(&2));
    assert!(!h.engine.is_established(2));
    let a = h.take(1);
    assert_eq!(classes_of(&a), [Known::Leave, Known::Leave], "{a:?}");
    let mut left: Vec<_> = a.iter().map(|l| text(l, Known::KChannel)).collect();
    left.sort();
    assert_eq!(left, [Some("Server"), Some("lobby")]);
    // bob is gone: the name is free again.
    h.login(3, "bob");
}

#[test]
fn closing_one_of_two_connections_keeps_the_user_in_its_channels_4_3_3() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h.expect_ok(1, "(create :id 3 :channel \"lobby\")");
    h.connect_with(2, "ann", "secret1");
    h.login(3, "bob");
    h.expect_ok(3, "(join :id 4 :channel \"lobby\")");
    h.take(1);
    h.take(2);
    h.send(2, "(disconnect :id 5)");
    assert!(h.closed.contains(&2));
    assert!(h.take(3).is_empty(), "ann did not leave");
    let info = h.expect_ok(3, "(user-info :id 6 :target \"ann\")");
    assert_eq!(
        info[0].get(Known::KConnections).and_then(Value::as_u64),
        Some(1)
    );
    h.send(3, "(message :id 7 :channel \"lobby\" :text \"hi\")");
    assert_eq!(h.classes(1), [Known::Message]);
}

#[test]
fn lost_socket_sends_nothing_but_the_user_leaves_4_3_3_4() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(1);
    h.lost(2);
    assert!(h.take(2).is_empty());
    assert!(!h.closed.contains(&2), "the socket is gone already");
    assert_eq!(h.classes(1), [Known::Leave, Known::Leave]);
    h.expect_failure(1, "(user-info :id 4 :target \"bob\")", Known::NoSuchUser);
}

#[test]
fn shutdown_disconnects_and_closes_every_connection_4_3_1_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.take(1);
    h.open(3);
    h.shutdown();
    // Only the disconnect: nobody hears of anyone's leave at shutdown.
    for c in [1, 2, 3] {
        assert_eq!(h.classes(c), [Known::Disconnect], "connection {c}");
        assert!(h.closed.contains(&c));
    }
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn unreadable_update_at_the_flood_limit_does_not_start_silent_dropping_4_2() {
    let mut h = Harness::with(Config {
        flood_limit: 3,
        flood_frame: 30,
        ..config()
    });
    h.now = h.now / 30 * 30;
    h.open(1);
    h.send(1, &connect_update(1, "ann", "2.0"));
    h.take(1);
    h.expect_ok(1, "(ping :id 2)");
    // The third update of the frame is unreadable: it cannot be referred
    // to, so it is answered as such and the next update is the one that
    // reaches the limit and announces the throttling.
    let got = h.call(1, "(ping :id");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    h.expect_failure(1, "(ping :id 4)", Known::TooManyUpdates);
    assert!(h.call(1, "(ping :id 5)").is_empty());
}

/// Every update in the bytes sent to `conn`, in order (a buffer may hold
/// several).
fn updates_to(out: &lichat_tcp_server::engine::Outbox, conn: usize) -> Vec<(Known, String)> {
    out.sends
        .iter()
        .filter(|(c, _)| *c == conn)
        .flat_map(|(_, b)| {
            b.split(|&x| x == 0)
                .filter(|u| !u.is_empty())
                .map(|u| read_object(u).unwrap())
                .collect::<Vec<_>>()
        })
        .map(|o| (class(&o), text(&o, Known::KFrom).unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn primary_joins_and_leaves_of_one_turn_reach_members_once_each_in_order_4_1_13_4_3_4() {
    use lichat_tcp_server::engine::{Engine, Outbox};
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    let ip = "192.0.2.1".parse().unwrap();
    let connect = |name: &str| {
        read_object(format!("(connect :id 1 :from \"{name}\" :version \"2.0\")").as_bytes())
    };
    engine.open(1, ip, START);
    engine.handle(1, connect("ann"), START, &mut out);
    engine.end_turn(&mut out);
    out.clear();
    // One turn: bob and cat arrive, bob leaves again.
    for (conn, name) in [(2, "bob"), (3, "cat")] {
        engine.open(conn, ip, START);
        engine.handle(conn, connect(name), START, &mut out);
    }
    engine.handle(2, read_object(b"(disconnect :id 2)"), START, &mut out);
    engine.end_turn(&mut out);
    let ann: Vec<_> = out.sends.iter().filter(|(c, _)| *c == 1).collect();
    assert_eq!(ann.len(), 1, "one shared buffer for a member from before");
    assert_eq!(
        updates_to(&out, 1),
        [
            (Known::Join, "bob".to_owned()),
            (Known::Join, "cat".to_owned()),
            (Known::Leave, "bob".to_owned())
        ]
    );
    // cat saw its own join in its connect sequence, then only what came
    // after it.
    let cat = updates_to(&out, 3);
    assert_eq!(
        cat.iter().filter(|u| u.0 == Known::Join).count(),
        1,
        "{cat:?}"
    );
    assert_eq!(cat.last(), Some(&(Known::Leave, "bob".to_owned())));
    assert!(
        !cat.contains(&(Known::Join, "bob".to_owned())),
        "bob came before cat"
    );
}
