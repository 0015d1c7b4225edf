//! shirakumo-backfill (§1 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Config;
use lichat_tcp_server::wire::{Known, Value};

fn texts(got: &[lichat_tcp_server::wire::Object]) -> Vec<String> {
    got.iter()
        .filter_map(|o| text(o, Known::KText).map(str::to_owned))
        .collect()
}

#[test]
fn connect_reply_advertises_shirakumo_backfill_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-backfill".to_owned()));
}

#[test]
fn backfill_1_step1_outsider_gets_not_in_channel() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(message :id 4 :channel \"lobby\" :text \"secret\")");
    h.expect_failure(
        3,
        "(backfill :id 5 :channel \"lobby\")",
        Known::NotInChannel,
    );
}

#[test]
fn backfill_1_step2_3_sends_what_was_distributed_then_the_update() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(message :id 4 :channel \"lobby\" :text \"one\")");
    h.expect_ok(2, "(message :id 5 :channel \"lobby\" :text \"two\")");
    h.take(1);
    h.take(2);
    let got = h.expect_ok(2, "(backfill :id 6 :channel \"lobby\")");
    assert_eq!(
        classes_of(&got),
        [Known::Message, Known::Message, Known::SBackfill]
    );
    assert_eq!(texts(&got), ["one", "two"]);
    // Sent with the fields they first went out with.
    assert_eq!(id(&got[0]), Some(4));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert_eq!(id(&got[2]), Some(6));
    assert!(
        h.take(1).is_empty(),
        "the other member is not sent anything"
    );
}

#[test]
fn backfill_1_step2_never_sends_what_came_before_the_users_last_join() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(message :id 4 :channel \"lobby\" :text \"before\")");
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    h.take(1);
    h.take(2);
    h.expect_ok(1, "(message :id 6 :channel \"lobby\" :text \"after\")");
    h.take(3);
    let got = h.expect_ok(3, "(backfill :id 7 :channel \"lobby\")");
    // Its own join is not sent back either.
    assert_eq!(classes_of(&got), [Known::Message, Known::SBackfill]);
    assert_eq!(texts(&got), ["after"]);
    // Leaving and joining again starts afresh.
    h.expect_ok(3, "(leave :id 8 :channel \"lobby\")");
    h.expect_ok(3, "(join :id 9 :channel \"lobby\")");
    let got = h.expect_ok(3, "(backfill :id 10 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SBackfill]);
}

#[test]
fn backfill_1_step2_includes_others_joins_and_leaves_since_the_users_join() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 4 :channel \"lobby\")");
    h.expect_ok(3, "(leave :id 5 :channel \"lobby\")");
    h.take(2);
    let got = h.expect_ok(2, "(backfill :id 6 :channel \"lobby\")");
    assert_eq!(
        classes_of(&got)[got.len() - 3..],
        [Known::Join, Known::Leave, Known::SBackfill]
    );
    assert_eq!(text(&got[got.len() - 3], Known::KFrom), Some("cat"));
}

#[test]
fn backfill_1_step2_since_bounds_by_clock_and_nil_means_no_bound() {
    let mut h = Harness::lobby();
    let t = START;
    h.expect_ok(
        1,
        &format!(
            "(message :id 4 :clock {} :channel \"lobby\" :text \"old\")",
            t
        ),
    );
    h.expect_ok(
        1,
        &format!(
            "(message :id 5 :clock {} :channel \"lobby\" :text \"new\")",
            t + 100
        ),
    );
    h.take(2);
    let got = h.expect_ok(
        2,
        &format!("(backfill :id 6 :channel \"lobby\" :since {})", t + 50),
    );
    assert_eq!(texts(&got), ["new"]);
    let got = h.expect_ok(2, "(backfill :id 7 :channel \"lobby\" :since nil)");
    assert_eq!(texts(&got), ["old", "new"]);
}

#[test]
fn backfill_1_step2_goes_to_the_requesting_connection_only() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(message :id 4 :channel \"lobby\" :text \"hi\")");
    // A second connection of bob's.
    h.open(4);
    h.send(4, "(connect :id 1 :from \"bob\" :version \"2.0\")");
    h.take(4);
    h.take(2);
    let got = h.expect_ok(2, "(backfill :id 5 :channel \"lobby\")");
    assert_eq!(texts(&got), ["hi"]);
    assert!(h.take(4).is_empty());
}

#[test]
fn backfill_1_keeps_at_most_the_configured_count_and_bytes() {
    let mut h = Harness::with(Config {
        backfill_count: 3,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    for i in 0..10 {
        h.expect_ok(
            1,
            &format!("(message :id {} :channel \"lobby\" :text \"m{i}\")", 10 + i),
        );
    }
    assert_eq!(h.engine.channel("lobby").unwrap().backfill_held().0, 3);
    let got = h.expect_ok(1, "(backfill :id 30 :channel \"lobby\")");
    assert_eq!(texts(&got), ["m7", "m8", "m9"]);

    let mut h = Harness::with(Config {
        backfill_bytes: 1000,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    let long = "x".repeat(300);
    for i in 0..10 {
        h.expect_ok(
            1,
            &format!(
                "(message :id {} :channel \"lobby\" :text \"{long}\")",
                10 + i
            ),
        );
    }
    let (count, bytes) = h.engine.channel("lobby").unwrap().backfill_held();
    assert!(
        bytes <= 1000 && count == 2,
        "{count} updates, {bytes} bytes"
    );
}

#[test]
fn backfill_1_typing_notices_are_not_kept() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(typing :id 4 :channel \"lobby\")");
    h.take(2);
    let got = h.expect_ok(2, "(backfill :id 5 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SBackfill]);
}

#[test]
fn backfill_1_primary_channel_needs_its_registrant_by_default() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(backfill :id 4 :channel \"Server\")",
        Known::InsufficientPermissions,
    );
    let got = h.expect_ok(2, "(capabilities :id 5 :channel \"lobby\")");
    assert!(
        got[0]
            .get(Known::KPermitted)
            .and_then(Value::as_list)
            .unwrap()
            .contains(&Value::sym(Known::SBackfill))
    );
}

#[test]
fn backfill_1_all_channels_together_keep_at_most_the_total_oldest_anywhere_first() {
    let mut h = Harness::with(Config {
        backfill_total_bytes: 2000,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"quiet\")");
    h.expect_ok(1, "(create :id 3 :channel \"busy\")");
    let long = "x".repeat(300);
    h.expect_ok(
        1,
        &format!("(message :id 4 :channel \"quiet\" :text \"old {long}\")"),
    );
    for i in 0..20 {
        h.expect_ok(
            1,
            &format!(
                "(message :id {} :channel \"busy\" :text \"b{i} {long}\")",
                10 + i
            ),
        );
    }
    let (kept, bytes) = h.engine.backfill_held();
    assert!(bytes <= 2000, "{kept} updates, {bytes} bytes");
    let busy = h.engine.channel("busy").unwrap().backfill_held();
    let quiet = h.engine.channel("quiet").unwrap().backfill_held();
    assert_eq!((busy.0 + quiet.0, busy.1 + quiet.1), (kept, bytes));
    // The quiet channel's message was the oldest anywhere: it went first,
    // the busy channel keeps its newest.
    let got = h.expect_ok(1, "(backfill :id 40 :channel \"quiet\")");
    assert!(!texts(&got).iter().any(|t| t.starts_with("old")), "{got:?}");
    let got = h.expect_ok(1, "(backfill :id 41 :channel \"busy\")");
    let texts = texts(&got);
    assert!(
        texts.last().is_some_and(|t| t.starts_with("b19")),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.starts_with("b0 ")), "{texts:?}");
}

#[test]
fn backfill_1_a_removed_channels_updates_leave_the_total() {
    let mut h = Harness::new();
    h.login(1, "ann");
    // ann's join to the primary channel.
    let before = h.engine.backfill_held();
    let got = h.expect_ok(1, "(create :id 2)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_ok(
        1,
        &format!("(message :id 3 :channel \"{anon}\" :text \"hi\")"),
    );
    let (kept, bytes) = h.engine.backfill_held();
    assert!(
        kept >= before.0 + 2 && bytes > before.1,
        "its join and the message"
    );
    h.expect_ok(1, &format!("(leave :id 4 :channel \"{anon}\")"));
    assert!(
        h.engine.channel(&anon).is_none(),
        "empty, it is gone (2.4.2)"
    );
    assert_eq!(h.engine.backfill_held(), before);
}
