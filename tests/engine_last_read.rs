//! shirakumo-last-read (§22 of shirakumo.mess).
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
fn last_read_22_step1_unregistered_users_get_no_such_profile() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(last-read :id 5 :channel \"lobby\")",
        Known::NoSuchProfile,
    );
}

#[test]
fn last_read_22_step2_stores_and_sends_to_every_connection_of_the_user() {
    let mut h = registered_lobby();
    let got = h.connect_with(4, "ann", "secret!");
    assert_eq!(class(&got[0]), Known::Connect);
    h.take(4);
    let got = h.expect_ok(
        1,
        "(last-read :id 6 :channel \"lobby\" :target \"bob\" :update-id 77)",
    );
    assert_eq!(classes_of(&got), [Known::SLastRead]);
    let other = h.take(4);
    assert_eq!(
        classes_of(&other),
        [Known::SLastRead],
        "the other connection is told"
    );
    assert_eq!(update_id(&other[0]), Some(77));
    assert!(h.take(2).is_empty(), "nobody else is told");
}

#[test]
fn last_read_22_step3_fills_in_the_stored_entry_for_the_asking_connection() {
    let mut h = registered_lobby();
    h.expect_ok(
        1,
        "(last-read :id 6 :channel \"lobby\" :target \"bob\" :update-id 77)",
    );
    let got = h.expect_ok(1, "(last-read :id 7 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SLastRead]);
    assert_eq!(id(&got[0]), Some(7));
    assert_eq!(update_id(&got[0]), Some(77));
    assert_eq!(text(&got[0], Known::KTarget), Some("bob"));
}

#[test]
fn last_read_22_entering_a_channel_sets_the_entry_to_the_join() {
    let mut h = registered_lobby();
    h.expect_ok(1, "(create :id 8 :channel \"den\")");
    let got = h.expect_ok(1, "(last-read :id 9 :channel \"den\")");
    assert_eq!(update_id(&got[0]), Some(8), "the join had the create's id");
    assert_eq!(text(&got[0], Known::KTarget), Some("ann"));
    // A set entry is kept on entering again.
    h.expect_ok(
        1,
        "(last-read :id 10 :channel \"den\" :target \"ann\" :update-id 99)",
    );
    h.expect_ok(1, "(leave :id 11 :channel \"den\")");
    h.expect_ok(1, "(join :id 12 :channel \"den\")");
    let got = h.expect_ok(1, "(last-read :id 13 :channel \"den\")");
    assert_eq!(update_id(&got[0]), Some(99));
}

#[test]
fn last_read_22_outsiders_get_not_in_channel() {
    let mut h = registered_lobby();
    h.expect_ok(3, "(create :id 5 :channel \"den\")");
    h.expect_failure(1, "(last-read :id 6 :channel \"den\")", Known::NotInChannel);
}

#[test]
fn last_read_22_entries_survive_a_restart_with_the_profile() {
    let mut h = registered_lobby();
    h.take_changes();
    h.expect_ok(
        1,
        "(last-read :id 6 :channel \"lobby\" :target \"bob\" :update-id 77)",
    );
    let profile = last_profile(h.take_changes(), "ann");
    let mut h2 = restarted(Snapshot {
        profiles: vec![profile],
        ..Snapshot::default()
    });
    let got = h2.connect_with(1, "ann", "secret!");
    assert_eq!(class(&got[0]), Known::Connect);
    h2.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    let got = h2.expect_ok(1, "(last-read :id 3 :channel \"lobby\")");
    assert_eq!(update_id(&got[0]), Some(77));
}
