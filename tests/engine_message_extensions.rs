//! The extensions that add to `message` and other updates: edit (§4),
//! markup (§13), sign (§17), reactions (§20) and replies (§21) of
//! shirakumo.mess.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::{Known, Object, Value};

/// Sends `update` from ann (conn 1) to lobby and returns what bob got.
fn via_lobby(h: &mut Harness, update: &str) -> Vec<Object> {
    h.expect_ok(1, update);
    h.take(2)
}

/// A malformed-update reply, which is a failure without `update-id`.
fn expect_malformed(h: &mut Harness, update: &str) {
    let got = h.call(1, update);
    assert_eq!(classes_of(&got), [Known::MalformedUpdate], "{update}");
    assert!(h.take(2).is_empty(), "nothing distributed for {update}");
}

#[test]
fn connect_reply_advertises_each_extension_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    let names = strings(&got[0], Known::KExtensions);
    for ext in [
        "shirakumo-edit",
        "shirakumo-markup",
        "shirakumo-sign",
        "shirakumo-reactions",
        "shirakumo-replies",
    ] {
        assert!(names.contains(&ext.to_owned()), "{ext}: {names:?}");
    }
}

#[test]
fn edit_4_is_distributed_like_a_message() {
    let mut h = Harness::lobby();
    let got = via_lobby(&mut h, "(edit :id 4 :channel \"lobby\" :text \"fixed\")");
    assert_eq!(classes_of(&got), [Known::SEdit]);
    assert_eq!(text(&got[0], Known::KText), Some("fixed"));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    // An empty text (deletion) is an edit too.
    let got = via_lobby(
        &mut h,
        "(shirakumo:edit :id 4 :channel \"lobby\" :text \"\")",
    );
    assert_eq!(classes_of(&got), [Known::SEdit]);
}

#[test]
fn edit_4_checks_like_a_message() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(edit :id 4 :channel \"lobby\" :text \"x\")",
        Known::NotInChannel,
    );
    // `from` names the sender: nobody edits another's messages.
    h.expect_failure(
        1,
        "(edit :id 5 :from \"bob\" :channel \"lobby\" :text \"x\")",
        Known::UsernameMismatch,
    );
    let got = h.call(1, "(edit :id 6 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    h.expect_failure(
        1,
        "(edit :id 7 :channel \"Server\" :text \"x\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn replies_21_reply_to_is_passed_on() {
    let mut h = Harness::lobby();
    let got = via_lobby(
        &mut h,
        "(message :id 4 :channel \"lobby\" :text \"yes\" :reply-to (\"bob\" 3))",
    );
    assert_eq!(
        got[0].get(Known::KReplyTo),
        Some(&Value::List(vec![Value::string("bob"), Value::int(3)]))
    );
    let got = via_lobby(
        &mut h,
        "(edit :id 4 :channel \"lobby\" :text \"yes!\" shirakumo:reply-to (\"bob\" 3))",
    );
    assert!(got[0].get(Known::KReplyTo).is_some(), "edit is a message");
}

#[test]
fn replies_21_reply_to_must_be_a_name_and_an_id() {
    let mut h = Harness::lobby();
    for bad in [
        "\"bob\"",
        "(\"bob\")",
        "(3 \"bob\")",
        "(\"bob\" 3 4)",
        "(\"bob\" nil)",
    ] {
        expect_malformed(
            &mut h,
            &format!("(message :id 4 :channel \"lobby\" :text \"x\" :reply-to {bad})"),
        );
    }
}

#[test]
fn markup_13_rich_is_checked_and_passed_on() {
    let mut h = Harness::lobby();
    let rich = "(:g () (:p () \"a \" (:b () \"bold\")))";
    let got = via_lobby(
        &mut h,
        &format!("(message :id 4 :channel \"lobby\" :text \"a bold\" :rich {rich})"),
    );
    let back = got[0].get(Known::KRich).unwrap();
    assert_eq!(
        back,
        &lichat_tcp_server::wire::read_value(rich.as_bytes()).unwrap()
    );
    expect_malformed(
        &mut h,
        "(message :id 5 :channel \"lobby\" :text \"x\" :rich (:p () \"x\"))",
    );
    expect_malformed(
        &mut h,
        "(message :id 6 :channel \"lobby\" :text \"x\" :rich \"x\")",
    );
}

#[test]
fn markup_13_rich_is_only_a_field_of_text_updates() {
    let mut h = Harness::lobby();
    // Not a text-update: the field is dropped, not checked.
    let got = via_lobby(&mut h, "(typing :id 4 :channel \"lobby\" :rich 5)");
    assert_eq!(classes_of(&got), [Known::STyping]);
    assert!(got[0].get(Known::KRich).is_none());
}

#[test]
fn sign_17_signature_is_passed_on_and_clock_kept() {
    let mut h = Harness::lobby();
    let clock = START - 1000;
    let got = via_lobby(
        &mut h,
        &format!(
            "(message :id 4 :from \"ann\" :clock {clock} :channel \"lobby\" :text \"x\" :signature \"sig\")"
        ),
    );
    assert_eq!(text(&got[0], Known::KSignature), Some("sig"));
    assert_eq!(
        got[0].get(Known::KClock).and_then(Value::as_u64),
        Some(clock)
    );
}

#[test]
fn sign_17_signed_update_without_from_or_clock_is_malformed() {
    let mut h = Harness::lobby();
    expect_malformed(
        &mut h,
        "(message :id 4 :clock 5 :channel \"lobby\" :text \"x\" :signature \"s\")",
    );
    expect_malformed(
        &mut h,
        "(message :id 5 :from \"ann\" :channel \"lobby\" :text \"x\" :signature \"s\")",
    );
    expect_malformed(
        &mut h,
        "(message :id 6 :from \"ann\" :clock 5 :channel \"lobby\" :text \"x\" :signature 7)",
    );
}

#[test]
fn reactions_20_step3_react_is_distributed() {
    let mut h = Harness::lobby();
    let got = via_lobby(
        &mut h,
        "(react :id 4 :channel \"lobby\" :target \"bob\" :update-id 3 :emote \"👍\")",
    );
    assert_eq!(classes_of(&got), [Known::SReact]);
    assert_eq!(text(&got[0], Known::KEmote), Some("👍"));
    assert_eq!(update_id(&got[0]), Some(3));
    assert_eq!(text(&got[0], Known::KTarget), Some("bob"));
}

#[test]
fn reactions_20_step1_outsider_gets_not_in_channel() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(react :id 4 :channel \"lobby\" :target \"bob\" :update-id 3 :emote \"👍\")",
        Known::NotInChannel,
    );
}

#[test]
fn reactions_20_step2_emote_must_be_emoji() {
    let mut h = Harness::lobby();
    for bad in ["lol", "", "👍 and text"] {
        expect_malformed(
            &mut h,
            &format!(
                "(react :id 4 :channel \"lobby\" :target \"bob\" :update-id 3 :emote \"{bad}\")"
            ),
        );
    }
}
