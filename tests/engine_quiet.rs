//! shirakumo-quiet (§9 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Snapshot};
use lichat_tcp_server::wire::Known;

#[test]
fn quiet_9_is_advertised_and_ruled_for_the_registrant() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-quiet".to_owned()));
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(quiet :id 5 :channel \"lobby\" :target \"ann\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn quiet_9_step1_2_the_quieted_users_updates_go_back_to_it_alone() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"bob\")");
    assert_eq!(classes_of(&got), [Known::SQuiet]);
    assert_eq!(id(&got[0]), Some(5));
    h.take(2);
    let got = h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"spam\")");
    assert_eq!(
        classes_of(&got),
        [Known::Message],
        "bob sees his own message"
    );
    assert!(h.take(1).is_empty(), "ann is not sent bob's message");
    // Delivery step 2: others are unaffected.
    h.expect_ok(1, "(message :id 7 :channel \"lobby\" :text \"hello\")");
    assert_eq!(h.classes(2), [Known::Message]);
}

#[test]
fn quiet_9_applies_to_other_channel_updates_but_not_to_joins() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"cat\")");
    h.expect_ok(3, "(join :id 6 :channel \"lobby\")");
    assert_eq!(h.classes(1), [Known::Join], "the channel sees cat join");
    h.take(2);
    h.expect_ok(3, "(typing :id 7 :channel \"lobby\")");
    assert!(h.take(1).is_empty());
    assert!(h.take(2).is_empty());
}

#[test]
fn unquiet_9_step1_2_removes_the_user_from_the_list() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"bob\")");
    let got = h.expect_ok(1, "(unquiet :id 6 :channel \"lobby\" :target \"BOB\")");
    assert_eq!(classes_of(&got), [Known::SUnquiet]);
    h.take(2);
    h.expect_ok(2, "(message :id 7 :channel \"lobby\" :text \"back\")");
    assert_eq!(h.classes(1), [Known::Message]);
}

#[test]
fn quieted_9_step1_2_lists_the_quiet_list() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(quieted :id 5 :channel \"lobby\")");
    assert!(strings(&got[0], Known::KTarget).is_empty());
    h.expect_ok(1, "(quiet :id 6 :channel \"lobby\" :target \"bob\")");
    h.expect_ok(1, "(quiet :id 7 :channel \"lobby\" :target \"cat\")");
    // Quieting twice lists the name once.
    h.expect_ok(1, "(quiet :id 8 :channel \"lobby\" :target \"Bob\")");
    let got = h.expect_ok(1, "(quieted :id 9 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SQuieted]);
    assert_eq!(strings(&got[0], Known::KTarget), ["bob", "cat"]);
}

#[test]
fn quiet_9_target_must_exist_5_1_7() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(quiet :id 5 :channel \"lobby\" :target \"nobody\")",
        Known::NoSuchUser,
    );
}

#[test]
fn quiet_9_list_survives_a_restart_with_the_channel() {
    let mut h = Harness::lobby();
    h.take_changes();
    h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"bob\")");
    let record = h
        .take_changes()
        .into_iter()
        .find_map(|c| match c {
            Change::Channel(r) if r.name == "lobby" => Some(r),
            _ => None,
        })
        .expect("the quiet list is written with the channel");
    let mut h2 = restarted(Snapshot {
        channels: vec![record],
        ..Snapshot::default()
    });
    h2.login(1, "ann");
    h2.login(2, "bob");
    h2.expect_ok(1, "(join :id 5 :channel \"lobby\")");
    h2.expect_ok(2, "(join :id 6 :channel \"lobby\")");
    h2.take(1);
    h2.expect_ok(
        2,
        "(message :id 7 :channel \"lobby\" :text \"still quiet\")",
    );
    assert!(h2.take(1).is_empty());
}

#[test]
fn quiet_9_confirmation_is_withdrawn_when_the_store_fails() {
    let mut h = Harness::lobby();
    h.keep_unsettled = true;
    h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"bob\")");
    let refused = h.fail_pending("the disk is full");
    assert_eq!(refused.len(), 1);
    h.keep_unsettled = false;
    h.take(2);
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"not quiet\")");
    assert_eq!(h.classes(1), [Known::Message], "the quiet was undone");
}
