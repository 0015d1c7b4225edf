//! §5.1 general update checks, steps 1–8 and their order, and §3's
//! filling-in of `from` and `clock` and printing of broadcasts.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Engine, Outbox};
use lichat_tcp_server::wire::{Known, ReadError, Value, read_object};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

/// ann and bob connected; ann created "lobby" and bob joined it.
fn lobby() -> Harness {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(1);
    h
}

fn still_works(h: &mut Harness, conn: usize) {
    assert!(!h.closed.contains(&conn));
    let got = h.expect_ok(conn, "(ping :id 999)");
    assert_eq!(classes_of(&got), [Known::Pong]);
}

#[test]
fn unparseable_update_fails_malformed_update_and_keeps_the_connection_5_1_1() {
    let mut h = lobby();
    for bad in [
        "(message :id",
        "\"just a string\"",
        "(:id 1)",
        "(message :id 1 :text)",
    ] {
        let got = h.call(1, bad);
        assert_eq!(classes_of(&got), [Known::MalformedUpdate], "{bad}: {got:?}");
        assert_eq!(update_id(&got[0]), None, "nothing parsed to refer to");
        assert_eq!(text(&got[0], Known::KFrom), Some("Server"));
        still_works(&mut h, 1);
    }
}

#[test]
fn unparseable_update_before_connect_closes_the_connection_5_1_1() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    assert!(h.closed.contains(&1));
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn missing_required_field_fails_malformed_update_naming_the_field_5_1_1() {
    let mut h = lobby();
    let got = h.call(1, "(message :id 5 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    let t = text(&got[0], Known::KText).unwrap();
    assert!(t.contains(":text") && t.contains("missing"), "{t}");
    let got = h.call(1, "(join :id 6)");
    let t = text(&got[0], Known::KText).unwrap();
    assert!(t.contains(":channel"), "{t}");
    assert!(h.take(2).is_empty(), "nothing was distributed");
    still_works(&mut h, 1);
}

#[test]
fn wrongly_typed_field_fails_malformed_update_naming_field_and_type_5_1_1() {
    let mut h = lobby();
    let got = h.call(1, "(message :id 5 :channel \"lobby\" :text 12)");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    let t = text(&got[0], Known::KText).unwrap();
    assert!(t.contains(":text") && t.contains("string"), "{t}");
    let got = h.call(1, "(join :id 6 :channel lobby)");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    let got = h.call(1, "(ping :id 7 :clock \"now\")");
    let t = text(&got[0], Known::KText).unwrap();
    assert!(t.contains(":clock") && t.contains("integer"), "{t}");
    assert!(h.take(2).is_empty());
}

#[test]
fn update_without_id_fails_malformed_update_5_1_1() {
    let mut h = lobby();
    let got = h.call(1, "(message :channel \"lobby\" :text \"hi\")");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    assert!(h.take(2).is_empty());
    let got = h.call(1, "(ping :id nil)");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
}

#[test]
fn too_long_update_fails_update_too_long_and_keeps_the_connection_5_1_2() {
    let mut h = lobby();
    h.send_err(1, ReadError::TooLong);
    let got = h.take(1);
    assert_eq!(classes_of(&got), [Known::UpdateTooLong]);
    assert_eq!(update_id(&got[0]), None);
    assert_eq!(text(&got[0], Known::KFrom), Some("Server"));
    still_works(&mut h, 1);
}

#[test]
fn unknown_class_fails_invalid_update_5_1_3() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(frobnicate :id 6 :channel \"lobby\")",
        Known::InvalidUpdate,
    );
    h.expect_failure(1, "(foo:bar :id 7)", Known::InvalidUpdate);
    still_works(&mut h, 1);
}

#[test]
fn class_that_is_not_an_update_fails_invalid_update_5_1_3() {
    let mut h = lobby();
    h.expect_failure(1, "(object :id 1)", Known::InvalidUpdate);
    h.expect_failure(1, "(t :id 2)", Known::InvalidUpdate);
    h.expect_failure(1, "(:join :id 3 :channel \"lobby\")", Known::InvalidUpdate);
    still_works(&mut h, 1);
}

#[test]
fn update_class_the_server_does_not_accept_fails_invalid_update_5_1_3() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(no-such-channel :id 4 :text \"x\" :update-id 3)",
        Known::InvalidUpdate,
    );
    h.expect_failure(1, "(update :id 5)", Known::InvalidUpdate);
    h.expect_failure(
        1,
        "(channel-update :id 6 :channel \"lobby\")",
        Known::InvalidUpdate,
    );
    assert!(h.take(2).is_empty());
    still_works(&mut h, 1);
}

#[test]
fn class_is_checked_before_fields_5_1_3() {
    let mut h = lobby();
    // No required field of any sort, but the class alone is wrong.
    h.expect_failure(1, "(frobnicate :id 8 :text 5)", Known::InvalidUpdate);
}

#[test]
fn invalid_name_in_from_channel_or_target_fails_bad_name_5_1_4() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(message :id 5 :from \" ann\" :channel \"lobby\" :text \"x\")",
        Known::BadName,
    );
    h.expect_failure(1, "(join :id 6 :channel \"a  b\")", Known::BadName);
    h.expect_failure(1, "(create :id 7 :channel \"lobby \")", Known::BadName);
    h.expect_failure(
        1,
        "(kick :id 8 :channel \"lobby\" :target \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\")",
        Known::BadName,
    );
    h.expect_failure(1, "(user-info :id 9 :target \"\")", Known::BadName);
    assert!(h.take(2).is_empty());
}

#[test]
fn from_naming_another_user_fails_username_mismatch_5_1_5() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(message :id 5 :from \"bob\" :channel \"lobby\" :text \"x\")",
        Known::UsernameMismatch,
    );
    assert!(h.take(2).is_empty());
    h.expect_failure(1, "(ping :id 6 :from \"nobody\")", Known::UsernameMismatch);
}

#[test]
fn from_matching_case_insensitively_or_absent_is_accepted_and_filled_in_5_1_5_3() {
    let mut h = lobby();
    h.expect_ok(
        1,
        "(message :id 5 :from \"ANN\" :channel \"lobby\" :text \"x\")",
    );
    h.expect_ok(1, "(message :id 6 :channel \"lobby\" :text \"y\")");
    let got = h.take(2);
    assert_eq!(got.len(), 2);
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"), "canonical name");
    assert_eq!(text(&got[1], Known::KFrom), Some("ann"));
}

#[test]
fn channel_that_does_not_exist_fails_no_such_channel_5_1_6() {
    let mut h = lobby();
    h.expect_failure(1, "(join :id 5 :channel \"nowhere\")", Known::NoSuchChannel);
    h.expect_failure(
        1,
        "(message :id 6 :channel \"nowhere\" :text \"x\")",
        Known::NoSuchChannel,
    );
    h.expect_failure(
        1,
        "(users :id 7 :channel \"nowhere\")",
        Known::NoSuchChannel,
    );
    h.expect_failure(
        1,
        "(permissions :id 8 :channel \"nowhere\")",
        Known::NoSuchChannel,
    );
    // create names a channel that must not exist.
    h.expect_ok(1, "(create :id 9 :channel \"nowhere\")");
}

#[test]
fn channel_names_match_case_insensitively_and_are_sent_on_canonically_5_1_6() {
    let mut h = lobby();
    h.expect_ok(2, "(message :id 5 :channel \"LoBbY\" :text \"x\")");
    let got = h.take(1);
    assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
}

#[test]
fn target_that_does_not_exist_fails_no_such_user_5_1_7() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(kick :id 5 :channel \"lobby\" :target \"ghost\")",
        Known::NoSuchUser,
    );
    h.expect_failure(
        1,
        "(pull :id 6 :channel \"lobby\" :target \"ghost\")",
        Known::NoSuchUser,
    );
    h.expect_failure(1, "(user-info :id 7 :target \"ghost\")", Known::NoSuchUser);
    h.expect_failure(
        1,
        "(grant :id 8 :channel \"lobby\" :target \"ghost\" :update message)",
        Known::NoSuchUser,
    );
    assert!(h.take(2).is_empty());
}

#[test]
fn update_the_channel_does_not_permit_fails_insufficient_permissions_5_1_8() {
    let mut h = lobby();
    // The primary channel: only the server may message; no one may leave.
    h.expect_failure(
        1,
        "(message :id 5 :channel \"Server\" :text \"x\")",
        Known::InsufficientPermissions,
    );
    h.expect_failure(
        1,
        "(leave :id 6 :channel \"Server\")",
        Known::InsufficientPermissions,
    );
    // A regular channel: only the registrant kicks.
    h.expect_failure(
        2,
        "(kick :id 7 :channel \"lobby\" :target \"ann\")",
        Known::InsufficientPermissions,
    );
    assert!(h.take(1).is_empty());
}

#[test]
fn channel_less_update_is_checked_against_the_primary_channel_5_1_8() {
    let mut h = lobby();
    // server-info about someone else: the primary channel's rule (server only).
    h.expect_failure(
        1,
        "(server-info :id 5 :target \"bob\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn bad_name_comes_before_username_mismatch_5_1_4_5() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(message :id 5 :from \"b  ob\" :channel \"lobby\" :text \"x\")",
        Known::BadName,
    );
}

#[test]
fn username_mismatch_comes_before_no_such_channel_5_1_5_6() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(message :id 5 :from \"bob\" :channel \"nowhere\" :text \"x\")",
        Known::UsernameMismatch,
    );
}

#[test]
fn no_such_channel_comes_before_no_such_user_5_1_6_7() {
    let mut h = lobby();
    h.expect_failure(
        1,
        "(kick :id 5 :channel \"nowhere\" :target \"ghost\")",
        Known::NoSuchChannel,
    );
}

#[test]
fn no_such_user_comes_before_insufficient_permissions_5_1_7_8() {
    let mut h = lobby();
    // bob may not kick in lobby, but the target's absence is reported first.
    h.expect_failure(
        2,
        "(kick :id 5 :channel \"lobby\" :target \"ghost\")",
        Known::NoSuchUser,
    );
}

#[test]
fn insufficient_permissions_comes_before_the_handlers_own_checks_5_1_8() {
    let mut h = lobby();
    h.login(3, "cat");
    // cat is not in lobby (not-in-channel) but may not kick anyway.
    h.expect_failure(
        3,
        "(kick :id 5 :channel \"lobby\" :target \"bob\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn absent_clock_is_substituted_and_present_clock_kept_3() {
    let mut h = lobby();
    h.now += 1234;
    h.send(1, "(message :id 5 :channel \"lobby\" :text \"x\")");
    h.send(
        1,
        "(message :id 6 :clock 3900000000 :channel \"lobby\" :text \"y\")",
    );
    let got = h.take(2);
    assert_eq!(
        got[0].get(Known::KClock).and_then(Value::as_u64),
        Some(h.now)
    );
    assert_eq!(
        got[1].get(Known::KClock).and_then(Value::as_u64),
        Some(3_900_000_000)
    );
}

#[test]
fn distributed_update_keeps_only_known_fields_of_its_class_3() {
    let mut h = lobby();
    h.send(
        1,
        "(message :id 5 :channel \"lobby\" :text \"x\" :password \"leak\" :bogus 1 :target \"bob\")",
    );
    let got = h.take(2);
    assert_eq!(got.len(), 1);
    let keys: Vec<_> = got[0]
        .fields
        .iter()
        .map(|(k, _)| k.name().to_owned())
        .collect();
    for k in ["id", "clock", "from", "channel", "text"] {
        assert!(keys.iter().any(|x| x == k), "{keys:?} lacks {k}");
    }
    for k in ["password", "bogus", "target"] {
        assert!(!keys.iter().any(|x| x == k), "{keys:?} has {k}");
    }
}

#[test]
fn broadcast_is_printed_once_and_shared_by_all_recipients_3() {
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let send = |engine: &mut Engine, out: &mut Outbox, conn: usize, text: &str| {
        out.clear();
        engine.handle(conn, read_object(text.as_bytes()), START, out);
    };
    for (conn, name) in [(1, "ann"), (2, "bob"), (3, "cat")] {
        engine.open(conn, ip, START);
        send(
            &mut engine,
            &mut out,
            conn,
            &format!("(connect :id 1 :from \"{name}\" :version \"2.0\")"),
        );
    }
    send(
        &mut engine,
        &mut out,
        1,
        "(create :id 2 :channel \"lobby\")",
    );
    send(&mut engine, &mut out, 2, "(join :id 3 :channel \"lobby\")");
    send(&mut engine, &mut out, 3, "(join :id 4 :channel \"lobby\")");
    send(
        &mut engine,
        &mut out,
        2,
        "(message :id 5 :channel \"lobby\" :text \"hi\")",
    );
    let mut conns: Vec<_> = out.sends.iter().map(|(c, _)| *c).collect();
    conns.sort();
    assert_eq!(conns, [1, 2, 3]);
    let first = &out.sends[0].1;
    assert!(out.sends.iter().all(|(_, b)| Rc::ptr_eq(b, first)));
    assert!(first.starts_with(b"(message ") || first.starts_with(b"(MESSAGE "));
}
