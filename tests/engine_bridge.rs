//! shirakumo-bridge (§11 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::Known;

#[test]
fn bridge_11_step1_3_4_swaps_bridge_and_from_and_distributes() {
    let mut h = Harness::lobby();
    // ann is lobby's registrant: the bridge rule is hers.
    let got = h.expect_ok(
        1,
        "(message :id 5 :channel \"lobby\" :text \"hi from irc\" :bridge \"zed\")",
    );
    assert_eq!(classes_of(&got), [Known::Message]);
    let bob = h.take(2);
    assert_eq!(classes_of(&bob), [Known::Message]);
    assert_eq!(text(&bob[0], Known::KFrom), Some("zed"));
    assert_eq!(text(&bob[0], Known::KBridge), Some("ann"));
    assert_eq!(text(&bob[0], Known::KText), Some("hi from irc"));
}

#[test]
fn bridge_11_step1_2_needs_the_bridge_permission() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(message :id 5 :channel \"lobby\" :text \"spoof\" :bridge \"ann\")",
        Known::InsufficientPermissions,
    );
    assert!(h.take(1).is_empty());
    h.expect_ok(
        1,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update bridge)",
    );
    h.take(1);
    h.expect_ok(
        2,
        "(message :id 7 :channel \"lobby\" :text \"relayed\" :bridge \"zed\")",
    );
    assert_eq!(text(&h.take(1)[0], Known::KFrom), Some("zed"));
}

#[test]
fn bridge_11_step1_1_outsiders_get_not_in_channel() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(message :id 5 :channel \"lobby\" :text \"x\" :bridge \"zed\")",
        Known::NotInChannel,
    );
}

#[test]
fn bridge_11_the_bridged_name_must_be_valid_2_2_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(message :id 5 :channel \"lobby\" :text \"x\" :bridge \" \")",
        Known::BadName,
    );
}

#[test]
fn bridge_11_without_the_field_updates_are_as_usual() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(message :id 5 :channel \"lobby\" :text \"plain\")");
    let bob = h.take(2);
    assert_eq!(text(&bob[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&bob[0], Known::KBridge), None);
}

#[test]
fn bridge_11_other_updates_drop_the_field() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 5 :channel \"lobby\" :bridge \"zed\")");
    let ann = h.take(1);
    assert_eq!(text(&ann[0], Known::KFrom), Some("cat"));
    assert_eq!(text(&ann[0], Known::KBridge), None);
}

#[test]
fn bridge_update_11_is_sent_back() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(bridge :id 5 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SBridge]);
    assert_eq!(id(&got[0]), Some(5));
    h.expect_failure(
        2,
        "(bridge :id 6 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
}
