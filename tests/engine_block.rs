//! shirakumo-block (§19 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Snapshot;
use lichat_tcp_server::wire::Known;

/// `lobby` with ann registered.
fn registered_lobby() -> Harness {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(register :id 3 :password \"secret!\")");
    h.take(1);
    h
}

#[test]
fn block_19_step1_unregistered_users_get_no_such_profile() {
    let mut h = Harness::lobby();
    h.expect_failure(2, "(block :id 5 :target \"ann\")", Known::NoSuchProfile);
    h.expect_failure(2, "(unblock :id 6 :target \"ann\")", Known::NoSuchProfile);
    h.expect_failure(2, "(blocked :id 7)", Known::NoSuchProfile);
}

#[test]
fn block_19_delivery_updates_from_a_blocked_user_do_not_reach_the_blocker() {
    let mut h = registered_lobby();
    let got = h.expect_ok(1, "(block :id 5 :target \"bob\")");
    assert_eq!(classes_of(&got), [Known::SBlock]);
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"hi ann\")");
    assert!(h.take(1).is_empty(), "ann blocks bob");
    // Others still get bob's updates, and bob gets ann's.
    h.expect_ok(3, "(join :id 7 :channel \"lobby\")");
    h.take(2);
    h.take(3);
    h.expect_ok(2, "(message :id 8 :channel \"lobby\" :text \"hi cat\")");
    assert_eq!(h.classes(3), [Known::Message]);
    h.expect_ok(1, "(message :id 9 :channel \"lobby\" :text \"hello\")");
    assert_eq!(h.classes(2), [Known::Message]);
}

#[test]
fn block_19_step2_names_compare_case_insensitively_and_are_listed_once() {
    let mut h = registered_lobby();
    h.expect_ok(1, "(block :id 5 :target \"bob\")");
    h.expect_ok(1, "(block :id 6 :target \"BOB\")");
    h.expect_ok(1, "(block :id 7 :target \"cat\")");
    let got = h.expect_ok(1, "(blocked :id 8)");
    assert_eq!(classes_of(&got), [Known::SBlocked]);
    assert_eq!(strings(&got[0], Known::KTarget), ["bob", "cat"]);
}

#[test]
fn unblock_19_step2_3_lets_updates_through_again() {
    let mut h = registered_lobby();
    h.expect_ok(1, "(block :id 5 :target \"bob\")");
    let got = h.expect_ok(1, "(unblock :id 6 :target \"Bob\")");
    assert_eq!(classes_of(&got), [Known::SUnblock]);
    h.expect_ok(2, "(message :id 7 :channel \"lobby\" :text \"back\")");
    assert_eq!(h.classes(1), [Known::Message]);
    let got = h.expect_ok(1, "(blocked :id 8)");
    assert!(strings(&got[0], Known::KTarget).is_empty());
}

#[test]
fn block_19_target_must_exist_5_1_7() {
    let mut h = registered_lobby();
    h.expect_failure(1, "(block :id 5 :target \"nobody\")", Known::NoSuchUser);
}

#[test]
fn block_19_a_block_the_store_could_not_save_stops_applying() {
    let mut h = registered_lobby();
    h.keep_unsettled = true;
    h.expect_ok(1, "(block :id 5 :target \"bob\")");
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    h.take(1);
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"hi\")");
    assert_eq!(h.classes(1), [Known::Message]);
}

#[test]
fn block_19_list_survives_a_restart_with_the_profile() {
    let mut h = registered_lobby();
    h.take_changes();
    h.expect_ok(1, "(block :id 5 :target \"bob\")");
    let profile = last_profile(h.take_changes(), "ann");
    let mut h2 = restarted(Snapshot {
        profiles: vec![profile],
        ..Snapshot::default()
    });
    let got = h2.connect_with(1, "ann", "secret!");
    assert_eq!(class(&got[0]), Known::Connect);
    h2.login(2, "bob");
    h2.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h2.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h2.take(1);
    h2.expect_ok(2, "(message :id 4 :channel \"lobby\" :text \"hi\")");
    assert!(h2.take(1).is_empty(), "the block holds after the restart");
}
