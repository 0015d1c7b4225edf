//! shirakumo-channel-info (§6 of shirakumo.mess), with the `:icon` key of
//! shirakumo-icons (§16).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Config};
use lichat_tcp_server::protocol::payload::base64_encode;
use lichat_tcp_server::wire::{Known, Object, Value};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";

fn png_icon() -> String {
    format!("image/png {}", base64_encode(PNG))
}

fn key_of(o: &Object) -> Option<Known> {
    o.get(Known::KKey)
        .and_then(Value::as_symbol)
        .and_then(|s| s.known())
}

/// (key, text) of each set-channel-info reply.
fn infos(got: &[Object]) -> Vec<(Known, String)> {
    got.iter()
        .filter(|o| class(o) == Known::SSetChannelInfo)
        .map(|o| {
            (
                key_of(o).expect("a known key"),
                text(o, Known::KText).unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn connect_reply_advertises_channel_info_and_both_icon_spellings_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    let names = strings(&got[0], Known::KExtensions);
    for name in [
        "shirakumo-channel-info",
        "shirakumo-icons",
        "shirakumo-icon",
    ] {
        assert!(names.contains(&name.to_owned()), "{name}: {names:?}");
    }
}

#[test]
fn channel_info_6_step1_keys_t_on_a_fresh_channel_answers_every_key_empty() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(channel-info :id 7 :channel \"lobby\" :keys t)");
    assert_eq!(
        infos(&got),
        [
            (Known::KTitle, String::new()),
            (Known::KNews, String::new()),
            (Known::KTopic, String::new()),
            (Known::KRules, String::new()),
            (Known::KContact, String::new()),
            (Known::KUrl, String::new()),
            (Known::KIcon, String::new()),
        ]
    );
    for o in &got {
        assert_eq!(id(o), Some(7), "the request's id (6 step 1.2)");
        assert_eq!(text(o, Known::KChannel), Some("lobby"));
        assert_eq!(text(o, Known::KFrom), Some("Server"));
        assert!(o.get(Known::KClock).is_some());
    }
    // Without keys, as lichat-js sends it, the same.
    let got = h.expect_ok(2, "(channel-info :id 8 :channel \"lobby\")");
    assert_eq!(infos(&got).len(), 7);
}

#[test]
fn channel_info_6_step1_2_a_key_list_answers_those_keys_once_each() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(set-channel-info :id 4 :channel \"lobby\" :key :topic :text \"Cats\")",
    );
    h.take(2);
    let got = h.expect_ok(
        2,
        "(channel-info :id 5 :channel \"lobby\" :keys (:topic :title :topic))",
    );
    assert_eq!(
        infos(&got),
        [
            (Known::KTopic, "Cats".into()),
            (Known::KTitle, String::new())
        ]
    );
}

#[test]
fn channel_info_6_step1_1_unknown_key_gets_no_such_channel_info_with_the_key() {
    let mut h = Harness::lobby();
    let got = h.call(
        2,
        "(channel-info :id 5 :channel \"lobby\" :keys (:colour :title :colour))",
    );
    assert_eq!(
        classes_of(&got),
        [Known::SNoSuchChannelInfo, Known::SSetChannelInfo]
    );
    let f = &got[0];
    assert_eq!(update_id(f), Some(5));
    let key = f.get(Known::KKey).and_then(Value::as_symbol).unwrap();
    assert_eq!(key.name(), "colour");
    assert!(key.is_keyword());
}

#[test]
fn channel_info_6_bad_keys_field_and_too_long_lists_are_malformed() {
    let mut h = Harness::lobby();
    let got = h.call(2, "(channel-info :id 5 :channel \"lobby\" :keys \"title\")");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    let many = ":title ".repeat(33);
    let got = h.call(
        2,
        &format!("(channel-info :id 6 :channel \"lobby\" :keys ({many}))"),
    );
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
}

#[test]
fn channel_info_6_unknown_channel_is_no_such_channel_and_anonymous_ones_hide() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(channel-info :id 5 :channel \"nowhere\" :keys t)",
        Known::NoSuchChannel,
    );
    let join = h.expect_ok(1, "(create :id 6)");
    let anon = text(&join[0], Known::KChannel).unwrap().to_owned();
    // A member reads and sets its title (the registrant), outsiders learn nothing.
    h.expect_ok(
        1,
        &format!("(set-channel-info :id 7 :channel \"{anon}\" :key :title :text \"Secret\")"),
    );
    let got = h.expect_ok(
        1,
        &format!("(channel-info :id 8 :channel \"{anon}\" :keys (:title))"),
    );
    assert_eq!(infos(&got), [(Known::KTitle, "Secret".into())]);
    h.expect_failure(
        2,
        &format!("(channel-info :id 9 :channel \"{anon}\" :keys t)"),
        Known::NoSuchChannel,
    );
}

#[test]
fn set_channel_info_6_step1_unknown_key_is_no_such_channel_info() {
    let mut h = Harness::lobby();
    let f = h.expect_failure(
        1,
        "(set-channel-info :id 5 :channel \"lobby\" :key :colour :text \"red\")",
        Known::SNoSuchChannelInfo,
    );
    assert_eq!(
        f.get(Known::KKey)
            .and_then(Value::as_symbol)
            .map(|s| s.name()),
        Some("colour")
    );
    let got = h.call(
        1,
        "(set-channel-info :id 6 :channel \"lobby\" :key \"title\" :text \"x\")",
    );
    assert_eq!(
        classes_of(&got),
        [Known::MalformedUpdate],
        "the key is a symbol"
    );
    assert!(h.take(2).is_empty());
}

#[test]
fn set_channel_info_6_step2_bad_values_are_malformed_channel_info() {
    let mut h = Harness::with(Config {
        max_channel_info_size: 100,
        max_icon_size: 64,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    let long = "x".repeat(101);
    let big_icon = format!("image/png {}", base64_encode(&[PNG, &[0; 64]].concat()));
    let gif_claimed_png = format!("image/gif {}", base64_encode(PNG));
    for (key, value) in [
        ("title", "two\nlines"),
        ("title", "bell\u{7}"),
        ("url", "not a url"),
        ("url", "example.org"),
        ("rules", long.as_str()),
        ("icon", "image/png"),
        ("icon", "image/png !!!!"),
        ("icon", "text/plain aGVsbG8="),
        ("icon", big_icon.as_str()),
        ("icon", gif_claimed_png.as_str()),
    ] {
        let f = h.expect_failure(
            1,
            &format!("(set-channel-info :id 5 :channel \"lobby\" :key :{key} :text \"{value}\")"),
            Known::SMalformedChannelInfo,
        );
        assert!(!text(&f, Known::KText).unwrap().is_empty());
    }
    let got = h.expect_ok(1, "(channel-info :id 6 :channel \"lobby\" :keys t)");
    assert!(
        infos(&got).iter().all(|(_, v)| v.is_empty()),
        "nothing was set"
    );
    // At the limits it is accepted.
    let at_limit = "x".repeat(100);
    h.expect_ok(
        1,
        &format!("(set-channel-info :id 7 :channel \"lobby\" :key :rules :text \"{at_limit}\")"),
    );
}

#[test]
fn set_channel_info_6_step3_4_is_stored_and_distributed_to_the_channel() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(
        1,
        "(set-channel-info :id 5 :channel \"LOBBY\" :key :topic :text \"All about cats\")",
    );
    assert_eq!(classes_of(&got), [Known::SSetChannelInfo]);
    assert_eq!(id(&got[0]), Some(5));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
    let to_bob = h.take(2);
    assert_eq!(to_bob, got, "bob, in the channel, gets the same update");
    assert!(h.take(3).is_empty(), "cat is not in the channel");
    let got = h.expect_ok(3, "(channel-info :id 6 :channel \"lobby\" :keys (:topic))");
    assert_eq!(infos(&got), [(Known::KTopic, "All about cats".into())]);
    // The empty text unsets it again.
    h.expect_ok(
        1,
        "(set-channel-info :id 7 :channel \"lobby\" :key :topic :text \"\")",
    );
    let got = h.expect_ok(3, "(channel-info :id 8 :channel \"lobby\" :keys (:topic))");
    assert_eq!(infos(&got), [(Known::KTopic, String::new())]);
}

#[test]
fn set_channel_info_6_by_default_only_the_registrant_sets_and_anyone_reads() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(set-channel-info :id 5 :channel \"lobby\" :key :topic :text \"mine\")",
        Known::InsufficientPermissions,
    );
    // Granted, bob may.
    h.expect_ok(
        1,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update set-channel-info)",
    );
    h.expect_ok(
        2,
        "(set-channel-info :id 7 :channel \"lobby\" :key :topic :text \"mine\")",
    );
    h.take(1);
    // The primary channel's info is the server user's.
    h.expect_failure(
        1,
        "(set-channel-info :id 8 :channel \"Server\" :key :topic :text \"x\")",
        Known::InsufficientPermissions,
    );
    let got = h.expect_ok(3, "(channel-info :id 9 :channel \"Server\" :keys (:topic))");
    assert_eq!(infos(&got), [(Known::KTopic, String::new())]);
}

#[test]
fn set_channel_info_6_sender_outside_the_channel_gets_the_update_too() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(leave :id 5 :channel \"lobby\")");
    h.take(2);
    let got = h.expect_ok(
        1,
        "(set-channel-info :id 6 :channel \"lobby\" :key :news :text \"Hi\")",
    );
    assert_eq!(classes_of(&got), [Known::SSetChannelInfo]);
    assert_eq!(classes_of(&h.take(2)), [Known::SSetChannelInfo]);
}

#[test]
fn icons_16_channel_icon_is_set_read_and_removed() {
    let mut h = Harness::lobby();
    let icon = png_icon();
    h.expect_ok(
        1,
        &format!("(set-channel-info :id 5 :channel \"lobby\" :key :icon :text \"{icon}\")"),
    );
    assert_eq!(infos(&h.take(2)), [(Known::KIcon, icon.clone())]);
    let got = h.expect_ok(2, "(channel-info :id 6 :channel \"lobby\" :keys (:icon))");
    assert_eq!(infos(&got), [(Known::KIcon, icon.clone())]);
    let got = h.expect_ok(2, "(channel-info :id 7 :channel \"lobby\" :keys t)");
    assert!(infos(&got).contains(&(Known::KIcon, icon)));
    h.expect_ok(
        1,
        "(set-channel-info :id 8 :channel \"lobby\" :key :icon :text \"\")",
    );
    h.take(2);
    let got = h.expect_ok(2, "(channel-info :id 9 :channel \"lobby\" :keys (:icon))");
    assert_eq!(infos(&got), [(Known::KIcon, String::new())]);
}

#[test]
fn set_channel_info_6_step3_change_is_recorded_once_and_messages_joins_record_nothing() {
    let mut h = Harness::lobby();
    h.take_changes();
    let icon = png_icon();
    h.expect_ok(
        1,
        &format!("(set-channel-info :id 5 :channel \"lobby\" :key :icon :text \"{icon}\")"),
    );
    let changes = h.take_changes();
    assert_eq!(changes.len(), 1);
    let Change::Channel(record) = &changes[0] else {
        panic!("{changes:?}")
    };
    assert_eq!(
        record.data.get("shirakumo-icons").and_then(Value::as_str),
        Some(icon.as_str())
    );
    // Messages, joins and info requests do not touch the channel's row.
    h.expect_ok(2, "(message :id 6 :channel \"lobby\" :text \"hi\")");
    h.expect_ok(3, "(join :id 7 :channel \"lobby\")");
    h.expect_ok(3, "(channel-info :id 8 :channel \"lobby\" :keys t)");
    // The history (shirakumo §18) records the message apart from the row.
    assert!(
        h.take_changes()
            .iter()
            .all(|c| matches!(c, Change::History(_) | Change::Member(_)))
    );
}

#[test]
fn set_channel_info_6_unsaved_change_is_undone_and_refused() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(set-channel-info :id 4 :channel \"lobby\" :key :topic :text \"Old\")",
    );
    h.keep_unsettled = true;
    h.expect_ok(
        1,
        "(set-channel-info :id 5 :channel \"lobby\" :key :topic :text \"New\")",
    );
    assert!(
        h.confirmations
            .iter()
            .any(|&(conn, k, _)| conn == 1 && k == Known::SSetChannelInfo),
        "the reply waits for the store"
    );
    let refused = h.fail_pending("the disk is full");
    assert_eq!(refused.len(), 1);
    h.keep_unsettled = false;
    h.take(2);
    let got = h.expect_ok(2, "(channel-info :id 6 :channel \"lobby\" :keys (:topic))");
    assert_eq!(infos(&got), [(Known::KTopic, "Old".into())]);
    h.engine.set_store_failure(Some("the disk is full".into()));
    h.expect_failure(
        1,
        "(set-channel-info :id 7 :channel \"lobby\" :key :topic :text \"New\")",
        Known::UpdateFailure,
    );
}

#[test]
fn capabilities_lists_channel_info_for_members_and_set_channel_info_for_the_registrant_6() {
    let mut h = Harness::lobby();
    let syms = |o: &Object| -> Vec<Known> {
        o.get(Known::KPermitted)
            .and_then(Value::as_list)
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| v.as_symbol().and_then(|s| s.known()))
            .collect()
    };
    let ann = h.expect_ok(1, "(capabilities :id 5 :channel \"lobby\")");
    let bob = h.expect_ok(2, "(capabilities :id 6 :channel \"lobby\")");
    assert!(syms(&ann[0]).contains(&Known::SSetChannelInfo));
    assert!(syms(&ann[0]).contains(&Known::SChannelInfo));
    assert!(!syms(&bob[0]).contains(&Known::SSetChannelInfo));
    assert!(syms(&bob[0]).contains(&Known::SChannelInfo));
}
