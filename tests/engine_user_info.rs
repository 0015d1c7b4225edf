//! shirakumo-user-info (§14 of shirakumo.mess), with the `:icon` key of
//! shirakumo-icons (§16).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Config};
use lichat_tcp_server::protocol::payload::base64_encode;
use lichat_tcp_server::wire::{Known, Object, Value};

const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0";

fn gif_icon() -> String {
    format!("image/gif {}", base64_encode(GIF))
}

/// The `info` field of a user-info reply as (key, text) pairs.
fn info(o: &Object) -> Option<Vec<(Known, String)>> {
    let list = o.get_raw(Known::KInfo)?.as_list()?;
    Some(
        list.iter()
            .map(|pair| {
                let pair = pair.as_list().expect("a pair");
                assert_eq!(pair.len(), 2, "{pair:?}");
                let key = pair[0].as_symbol().and_then(|s| s.known()).expect("a key");
                (key, pair[1].as_str().expect("a string").to_owned())
            })
            .collect(),
    )
}

/// ann registered (conn 1), bob a guest (conn 2).
fn registered() -> Harness {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h
}

#[test]
fn connect_reply_advertises_shirakumo_user_info_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-user-info".to_owned()));
}

#[test]
fn user_info_14_step1_unregistered_user_has_no_info_field() {
    let mut h = registered();
    let got = h.expect_ok(
        1,
        "(user-info :id 5 :target \"bob\" :info ((:status \"forged\")))",
    );
    assert_eq!(classes_of(&got), [Known::UserInfo]);
    assert!(got[0].get_raw(Known::KInfo).is_none(), "{:?}", got[0]);
}

#[test]
fn user_info_14_step2_registered_user_lists_the_keys_set() {
    let mut h = registered();
    let got = h.expect_ok(2, "(user-info :id 5 :target \"ann\")");
    assert_eq!(info(&got[0]), Some(vec![]), "registered, nothing set: ()");
    h.expect_ok(1, "(set-user-info :id 6 :key :status :text \"away\")");
    h.expect_ok(1, "(set-user-info :id 7 :key :real-name :text \"Ann A.\")");
    let got = h.expect_ok(2, "(user-info :id 8 :target \"ANN\")");
    assert_eq!(
        info(&got[0]),
        Some(vec![
            (Known::KRealName, "Ann A.".into()),
            (Known::KStatus, "away".into())
        ])
    );
    assert_eq!(got[0].get(Known::KRegistered), Some(&Value::T));
}

#[test]
fn set_user_info_14_step1_unregistered_sender_gets_no_such_profile() {
    let mut h = registered();
    h.expect_failure(
        2,
        "(set-user-info :id 5 :key :status :text \"away\")",
        Known::NoSuchProfile,
    );
}

#[test]
fn set_user_info_14_step2_unknown_key_is_no_such_user_info_with_the_key() {
    let mut h = registered();
    let f = h.expect_failure(
        1,
        "(set-user-info :id 5 :key :shoe-size :text \"38\")",
        Known::SNoSuchUserInfo,
    );
    let key = f.get(Known::KKey).and_then(Value::as_symbol).unwrap();
    assert_eq!(key.name(), "shoe-size");
    // A channel info key is not a user info key.
    h.expect_failure(
        1,
        "(set-user-info :id 6 :key :topic :text \"x\")",
        Known::SNoSuchUserInfo,
    );
}

#[test]
fn set_user_info_14_key_may_be_a_string_as_in_the_sexpr_file() {
    let mut h = registered();
    h.expect_ok(
        1,
        "(set-user-info :id 5 :key \"location\" :text \"Zurich\")",
    );
    h.expect_ok(
        1,
        "(set-user-info :id 6 :key \":BIRTHDAY\" :text \"1 April\")",
    );
    let got = h.expect_ok(1, "(user-info :id 7 :target \"ann\")");
    assert_eq!(
        info(&got[0]),
        Some(vec![
            (Known::KBirthday, "1 April".into()),
            (Known::KLocation, "Zurich".into())
        ])
    );
}

#[test]
fn set_user_info_14_step3_bad_values_are_malformed_user_info() {
    let mut h = Harness::with(Config {
        max_user_info_size: 50,
        max_icon_size: 16,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    let long = "x".repeat(51);
    let big = format!("image/gif {}", base64_encode(&[GIF, &[0; 8]].concat()));
    for (key, value) in [
        ("status", "one\ntwo"),
        ("contact", long.as_str()),
        ("icon", "image/gif"),
        ("icon", "image/bmp Qk0="),
        ("icon", big.as_str()),
    ] {
        h.expect_failure(
            1,
            &format!("(set-user-info :id 5 :key :{key} :text \"{value}\")"),
            Known::SMalformedUserInfo,
        );
    }
    let got = h.expect_ok(1, "(user-info :id 6 :target \"ann\")");
    assert_eq!(info(&got[0]), Some(vec![]));
}

#[test]
fn set_user_info_14_step4_5_is_sent_back_to_every_connection_of_the_user() {
    let mut h = registered();
    h.connect_with(3, "ann", "secret1");
    let got = h.expect_ok(
        1,
        "(set-user-info :id 5 :key :contact :text \"ann@example.org\")",
    );
    assert_eq!(classes_of(&got), [Known::SSetUserInfo]);
    assert_eq!(id(&got[0]), Some(5));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&got[0], Known::KText), Some("ann@example.org"));
    assert_eq!(h.take(3), got);
    assert!(h.take(2).is_empty(), "nobody else is told");
    // The empty text unsets it.
    h.expect_ok(1, "(set-user-info :id 6 :key :contact :text \"\")");
    let got = h.expect_ok(2, "(user-info :id 7 :target \"ann\")");
    assert_eq!(info(&got[0]), Some(vec![]));
}

#[test]
fn icons_16_user_icon_is_listed_in_user_info() {
    let mut h = registered();
    let icon = gif_icon();
    h.expect_ok(1, "(set-user-info :id 5 :key :status :text \"here\")");
    h.expect_ok(
        1,
        &format!("(set-user-info :id 6 :key :icon :text \"{icon}\")"),
    );
    let got = h.expect_ok(2, "(user-info :id 7 :target \"ann\")");
    assert_eq!(
        info(&got[0]),
        Some(vec![(Known::KStatus, "here".into()), (Known::KIcon, icon)])
    );
    h.expect_ok(1, "(set-user-info :id 8 :key :icon :text \"\")");
    let got = h.expect_ok(2, "(user-info :id 9 :target \"ann\")");
    assert_eq!(info(&got[0]), Some(vec![(Known::KStatus, "here".into())]));
}

#[test]
fn set_user_info_14_step4_is_recorded_with_the_profile_and_undone_if_unsaved() {
    let mut h = registered();
    h.take_changes();
    h.expect_ok(1, "(set-user-info :id 5 :key :status :text \"away\")");
    let changes = h.take_changes();
    assert!(
        matches!(&changes[..], [Change::Profile(p)] if p.data.get("shirakumo-user-info").is_some()),
        "{changes:?}"
    );
    h.keep_unsettled = true;
    h.expect_ok(1, "(set-user-info :id 6 :key :status :text \"back\")");
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    let got = h.expect_ok(2, "(user-info :id 7 :target \"ann\")");
    assert_eq!(info(&got[0]), Some(vec![(Known::KStatus, "away".into())]));
    h.engine.set_store_failure(Some("the disk is full".into()));
    h.expect_failure(
        1,
        "(set-user-info :id 8 :key :status :text \"back\")",
        Known::UpdateFailure,
    );
}
