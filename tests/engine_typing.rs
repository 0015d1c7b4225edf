//! shirakumo-typing (§23 of shirakumo.mess), the worked example of an
//! extension added through the class table.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::{Known, Value};

#[test]
fn connect_reply_advertises_shirakumo_typing_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-typing".to_owned()));
}

#[test]
fn typing_is_distributed_to_every_member_of_the_channel_23_1() {
    let mut h = Harness::lobby();
    // Clients write the class without its package.
    h.send(1, "(typing :id 5 :channel \"lobby\")");
    for conn in [1, 2] {
        let got = h.take(conn);
        assert_eq!(classes_of(&got), [Known::STyping], "connection {conn}");
        assert_eq!(id(&got[0]), Some(5));
        assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
        assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
        assert!(got[0].get(Known::KClock).is_some());
    }
    assert!(h.take(3).is_empty(), "cat is not in lobby");
}

#[test]
fn typing_into_a_channel_one_is_not_in_fails_not_in_channel_23() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(shirakumo:typing :id 6 :channel \"lobby\")",
        Known::NotInChannel,
    );
    h.expect_failure(
        3,
        "(typing :id 7 :channel \"nowhere\")",
        Known::NoSuchChannel,
    );
    assert!(h.take(1).is_empty() && h.take(2).is_empty());
}

#[test]
fn typing_follows_the_channels_rules_and_shows_in_capabilities_23_2_5() {
    let mut h = Harness::lobby();
    let caps = |h: &mut Harness, conn| {
        let got = h.expect_ok(conn, "(capabilities :id 8 :channel \"lobby\")");
        got[0]
            .get(Known::KPermitted)
            .and_then(Value::as_list)
            .unwrap()
            .contains(&Value::sym(Known::STyping))
    };
    assert!(caps(&mut h, 2), "anyone may type in a regular channel");
    h.expect_ok(
        1,
        "(deny :id 9 :channel \"lobby\" :target \"bob\" :update typing)",
    );
    assert!(!caps(&mut h, 2));
    h.expect_failure(
        2,
        "(typing :id 10 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
    // In the primary channel, like message, only the server user may.
    h.expect_failure(
        2,
        "(typing :id 11 :channel \"Server\")",
        Known::InsufficientPermissions,
    );
}
