//! shirakumo-pause (§8 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::Known;

#[test]
fn pause_8_step1_2_sets_the_pause_and_is_distributed() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(pause :id 5 :channel \"lobby\" :by 10)");
    assert_eq!(classes_of(&got), [Known::SPause]);
    let bob = h.take(2);
    assert_eq!(classes_of(&bob), [Known::SPause]);
    assert_eq!(bob[0].get(Known::KBy).and_then(|v| v.as_u64()), Some(10));
}

#[test]
fn pause_8_is_for_the_registrant() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(pause :id 5 :channel \"lobby\" :by 10)",
        Known::InsufficientPermissions,
    );
}

#[test]
fn pause_8_delivery_step1_2_an_update_within_the_pause_is_too_many_updates() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(pause :id 5 :channel \"lobby\" :by 10)");
    h.take(2);
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"one\")");
    h.take(1);
    h.advance_to(h.now + 9);
    h.take(2);
    h.expect_failure(
        2,
        "(message :id 7 :channel \"lobby\" :text \"two\")",
        Known::TooManyUpdates,
    );
    assert!(h.take(1).is_empty(), "the update was dropped");
    h.advance_to(h.now + 1);
    h.take(2);
    h.expect_ok(2, "(message :id 8 :channel \"lobby\" :text \"three\")");
    assert_eq!(h.classes(1), [Known::Message]);
}

#[test]
fn pause_8_moderators_are_not_held_to_it() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(pause :id 5 :channel \"lobby\" :by 10)");
    h.expect_ok(1, "(message :id 6 :channel \"lobby\" :text \"one\")");
    h.expect_ok(1, "(message :id 7 :channel \"lobby\" :text \"two\")");
}

#[test]
fn pause_8_zero_lifts_it() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(pause :id 5 :channel \"lobby\" :by 10)");
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"one\")");
    h.expect_ok(1, "(pause :id 7 :channel \"lobby\" :by 0)");
    h.take(2);
    h.expect_ok(2, "(message :id 8 :channel \"lobby\" :text \"two\")");
}

#[test]
fn pause_8_join_step_a_joining_user_is_told_the_pause() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(pause :id 5 :channel \"lobby\" :by 30)");
    let got = h.expect_ok(3, "(join :id 6 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Join, Known::SPause]);
    assert_eq!(got[1].get(Known::KBy).and_then(|v| v.as_u64()), Some(30));
    assert_eq!(text(&got[1], Known::KChannel), Some("lobby"));
    // Without a pause nothing is sent.
    h.expect_ok(1, "(pause :id 7 :channel \"lobby\" :by 0)");
    h.expect_ok(3, "(leave :id 8 :channel \"lobby\")");
    let got = h.expect_ok(3, "(join :id 9 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Join]);
}

#[test]
fn pause_8_by_beyond_a_day_is_refused() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(pause :id 5 :channel \"lobby\" :by 86401)",
        Known::UpdateFailure,
    );
}
