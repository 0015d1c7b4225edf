//! shirakumo-server-management (§7 of shirakumo.mess) and the rights of
//! server administrators (`--admin`).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Snapshot};
use lichat_tcp_server::wire::Known;

/// root registered and logged in with its password on conn 9, ann on 1
/// (registrant of "lobby"), bob on 2 in "lobby", cat on 3.
fn with_admin() -> Harness {
    let mut h = Harness::with_admin();
    h.login(1, "ann");
    h.login(2, "bob");
    h.login(3, "cat");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    for c in [1, 2, 3, 8, 9] {
        h.take(c);
    }
    h
}

#[test]
fn admin_rights_need_a_password_login() {
    // The same name connected without a password (no profile yet).
    let mut h = Harness::with(admin_config());
    h.login(1, "root");
    h.login(2, "bob");
    h.take(1);
    h.expect_failure(
        1,
        "(kill :id 5 :target \"bob\")",
        Known::InsufficientPermissions,
    );
    // Registering on that connection does not make it a login either.
    h.expect_ok(1, "(register :id 6 :password \"rootpass\")");
    h.expect_failure(
        1,
        "(kill :id 7 :target \"bob\")",
        Known::InsufficientPermissions,
    );
    // A connection that logs in with the password has them.
    h.connect_with(3, "root", "rootpass");
    h.take(3);
    h.expect_ok(3, "(kill :id 8 :target \"bob\")");
    assert!(h.closed.contains(&2));
}

#[test]
fn admins_may_send_any_update_in_any_channel() {
    let mut h = with_admin();
    // lobby's rules give kick to ann only.
    h.expect_ok(9, "(join :id 5 :channel \"lobby\")");
    h.expect_ok(9, "(kick :id 6 :channel \"lobby\" :target \"bob\")");
    h.expect_ok(
        9,
        "(message :id 7 :channel \"Server\" :text \"maintenance at noon\")",
    );
}

#[test]
fn kill_7_is_for_admins_only() {
    let mut h = with_admin();
    h.expect_failure(
        1,
        "(kill :id 5 :target \"bob\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn kill_7_step1_the_target_must_be_on_the_server() {
    let mut h = with_admin();
    h.expect_failure(9, "(kill :id 5 :target \"nobody\")", Known::NoSuchUser);
}

#[test]
fn kill_7_step2_4_the_user_leaves_its_channels_and_is_disconnected() {
    let mut h = with_admin();
    let got = h.expect_ok(9, "(kill :id 5 :target \"bob\")");
    assert_eq!(classes_of(&got)[0], Known::SKill);
    assert!(h.closed.contains(&2), "bob's connection is closed");
    let ann = h.take(1);
    assert!(
        ann.iter()
            .any(|o| class(o) == Known::Leave && text(o, Known::KChannel) == Some("lobby")),
        "ann sees bob leave lobby: {ann:?}"
    );
}

#[test]
fn destroy_7_step1_is_checked_against_the_primary_channel() {
    let mut h = with_admin();
    // ann is lobby's registrant, but destroy is ruled by the primary channel.
    h.expect_failure(
        1,
        "(destroy :id 5 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn destroy_7_step2_an_unknown_channel_is_no_such_channel() {
    let mut h = with_admin();
    h.expect_failure(
        9,
        "(destroy :id 5 :channel \"nowhere\")",
        Known::NoSuchChannel,
    );
}

#[test]
fn destroy_7_step3_5_members_leave_and_the_channel_goes() {
    let mut h = with_admin();
    h.take_changes();
    let got = h.expect_ok(9, "(destroy :id 5 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SDestroy]);
    for c in [1, 2] {
        let got = h.take(c);
        assert!(
            got.iter()
                .any(|o| class(o) == Known::Leave && text(o, Known::KChannel) == Some("lobby")),
            "{c} is told it left: {got:?}"
        );
    }
    assert!(h.engine.channel("lobby").is_none());
    assert!(
        h.take_changes()
            .contains(&Change::DeleteChannel("lobby".into()))
    );
    h.expect_failure(
        1,
        "(message :id 6 :channel \"lobby\" :text \"hi\")",
        Known::NoSuchChannel,
    );
}

#[test]
fn ban_7_step1_4_blacklists_and_disconnects_the_user() {
    let mut h = with_admin();
    let got = h.expect_ok(9, "(ban :id 5 :target \"Bob\")");
    assert_eq!(classes_of(&got)[0], Known::SBan);
    assert!(h.closed.contains(&2));
    // §4.1 the step after 4.1.4: the name cannot connect again.
    h.open(4);
    let got = h.call(4, "(connect :id 1 :from \"BOB\" :version \"2.0\")");
    assert_eq!(classes_of(&got), [Known::TooManyConnections]);
    assert!(h.closed.contains(&4));
}

#[test]
fn unban_7_step1_2_and_blacklist_7_step1_2() {
    let mut h = with_admin();
    h.expect_ok(9, "(ban :id 5 :target \"bob\")");
    h.expect_ok(9, "(ban :id 6 :target \"cat\")");
    h.expect_ok(9, "(ban :id 7 :target \"nobody-yet\")");
    let got = h.expect_ok(9, "(blacklist :id 7)");
    assert_eq!(classes_of(&got), [Known::SBlacklist]);
    assert_eq!(
        strings(&got[0], Known::KTarget),
        ["bob", "cat", "nobody-yet"]
    );
    let got = h.expect_ok(9, "(unban :id 8 :target \"BOB\")");
    assert_eq!(classes_of(&got), [Known::SUnban]);
    let got = h.expect_ok(9, "(blacklist :id 9)");
    assert_eq!(strings(&got[0], Known::KTarget), ["cat", "nobody-yet"]);
    h.login(4, "bob");
}

#[test]
fn ban_7_blacklist_survives_a_restart() {
    let mut h = with_admin();
    h.take_changes();
    h.expect_ok(9, "(ban :id 5 :target \"bob\")");
    let lists: Vec<(String, String)> = h
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::List {
                list,
                item,
                present: true,
            } => Some((list, item)),
            _ => None,
        })
        .collect();
    assert_eq!(lists.len(), 1);
    let mut h2 = restarted(Snapshot {
        lists,
        ..Snapshot::default()
    });
    h2.open(1);
    let got = h2.call(1, "(connect :id 1 :from \"bob\" :version \"2.0\")");
    assert_eq!(classes_of(&got), [Known::TooManyConnections]);
}

#[test]
fn ban_7_confirmation_is_withdrawn_when_the_store_fails() {
    let mut h = with_admin();
    h.keep_unsettled = true;
    h.expect_ok(9, "(ban :id 5 :target \"cat\")");
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    h.login(4, "cat");
}
