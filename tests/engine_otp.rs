//! shirakumo-otp (§24 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Engine, Snapshot, UNIX_TO_UNIVERSAL, base32_decode, totp};
use lichat_tcp_server::wire::Known;

/// RFC 6238's SHA-1 secret, "12345678901234567890", in base 32.
const KEY: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn secret() -> Vec<u8> {
    base32_decode(KEY).unwrap()
}

/// The code for the harness's clock, `steps` 30-second steps away.
fn code(h: &Harness, steps: i64) -> String {
    let unix = (h.now - UNIX_TO_UNIVERSAL) as i64 + steps * 30;
    format!("{:06}", totp(&secret(), unix as u64, 6))
}

/// ann registered with password "secret!" and the RFC key; conn 1 is
/// ann's, inboxes cleared.
fn with_key() -> Harness {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(
        1,
        &format!("(register :id 2 :password \"secret!\" :otp-key \"{KEY}\")"),
    );
    h
}

fn connect(
    h: &mut Harness,
    conn: usize,
    token: Option<&str>,
) -> Vec<lichat_tcp_server::wire::Object> {
    h.open(conn);
    let token = token
        .map(|t| format!(" :otp-token \"{t}\""))
        .unwrap_or_default();
    h.call(
        conn,
        &format!("(connect :id 1 :from \"ann\" :password \"secret!\" :version \"2.0\"{token})"),
    )
}

fn refused(h: &mut Harness, conn: usize, token: Option<&str>) {
    let got = connect(h, conn, token);
    assert_eq!(classes_of(&got), [Known::InvalidPassword], "{token:?}");
    assert!(h.closed.contains(&conn), "closed after {token:?}");
}

fn accepted(h: &mut Harness, conn: usize, token: Option<&str>) {
    let got = connect(h, conn, token);
    assert_eq!(
        got.first().map(class),
        Some(Known::Connect),
        "{token:?}: {got:?}"
    );
    assert!(!h.closed.contains(&conn));
}

#[test]
fn otp_24_totp_matches_the_rfc_6238_sha1_test_vectors() {
    let secret = b"12345678901234567890";
    for (time, eight) in [
        (59u64, 94287082u32),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ] {
        assert_eq!(totp(secret, time, 8), eight, "8 digits at {time}");
        assert_eq!(
            totp(secret, time, 6),
            eight % 1_000_000,
            "6 digits at {time}"
        );
    }
    assert_eq!(base32_decode(KEY).unwrap(), secret);
}

#[test]
fn otp_24_is_advertised() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-otp".to_owned()));
}

#[test]
fn register_24_step1_2_an_invalid_key_is_invalid_otp_key_and_changes_nothing() {
    let mut h = Harness::new();
    h.login(1, "ann");
    for key in ["not base32!", "GEZDGNBV", "0OOO1111GEZDGNBVGY3TQOJQ"] {
        h.expect_failure(
            1,
            &format!("(register :id 2 :password \"secret!\" :otp-key \"{key}\")"),
            Known::SInvalidOtpKey,
        );
    }
    assert!(h.engine.profile("ann").is_none(), "not registered either");
}

#[test]
fn register_24_steps1_2_a_key_is_stored_and_the_update_sent_back() {
    let mut h = Harness::new();
    h.login(1, "ann");
    let got = h.expect_ok(
        1,
        &format!("(register :id 2 :password \"secret!\" :otp-key \"{KEY}\")"),
    );
    assert_eq!(classes_of(&got), [Known::Register]);
    assert_eq!(text(&got[0], Known::KOtpKey), Some(KEY));
    h.lost(1);
    refused(&mut h, 2, None);
}

#[test]
fn connect_24_a_profile_with_a_key_needs_a_current_code() {
    let mut h = with_key();
    refused(&mut h, 2, None);
    refused(&mut h, 3, Some(""));
    refused(&mut h, 4, Some("12345"));
    refused(&mut h, 5, Some("abcdef"));
    let wrong = format!(
        "{:06}",
        (code(&h, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    refused(&mut h, 6, Some(&wrong));
    let now = code(&h, 0);
    let got = connect(&mut h, 7, Some(&now));
    assert_eq!(class(&got[0]), Known::Connect);
    assert!(
        got[0].get(Known::KOtpToken).is_none(),
        "the code is not echoed"
    );
    assert!(got[0].get(Known::KPassword).is_none());
}

#[test]
fn connect_24_one_step_of_tolerance_either_way() {
    let mut h = with_key();
    let before = code(&h, -1);
    accepted(&mut h, 2, Some(&before));
    let after = code(&h, 1);
    accepted(&mut h, 3, Some(&after));
    let far = code(&h, 2);
    refused(&mut h, 4, Some(&far));
    let long_ago = code(&h, -2);
    refused(&mut h, 5, Some(&long_ago));
}

#[test]
fn connect_24_a_code_logs_in_once() {
    let mut h = with_key();
    let now = code(&h, 0);
    accepted(&mut h, 2, Some(&now));
    refused(&mut h, 3, Some(&now));
    // Nor does an older one after a newer one was used.
    let mut h = with_key();
    let after = code(&h, 1);
    accepted(&mut h, 2, Some(&after));
    let now = code(&h, 0);
    refused(&mut h, 3, Some(&now));
    h.now += 60;
    let later = code(&h, 0);
    accepted(&mut h, 4, Some(&later));
}

#[test]
fn connect_24_the_code_is_checked_after_the_password_4_1_7() {
    let mut h = with_key();
    h.open(2);
    let now = code(&h, 0);
    let got = h.call(
        2,
        &format!(
            "(connect :id 1 :from \"ann\" :password \"wrong!\" :version \"2.0\" :otp-token \"{now}\")"
        ),
    );
    assert_eq!(classes_of(&got), [Known::InvalidPassword]);
    // The code was not spent on the wrong password.
    accepted(&mut h, 3, Some(&now));
}

#[test]
fn register_24_step1_1_an_empty_key_turns_otp_off() {
    let mut h = with_key();
    let got = h.expect_ok(1, "(register :id 3 :password \"secret!\" :otp-key \"\")");
    assert_eq!(classes_of(&got), [Known::Register]);
    accepted(&mut h, 2, None);
    // A register without otp-key leaves the key as it is.
    let mut h = with_key();
    h.expect_ok(1, "(register :id 3 :password \"secret!\")");
    refused(&mut h, 2, None);
}

#[test]
fn otp_24_the_key_is_stored_with_the_profile_across_a_restart() {
    let mut h = with_key();
    let record = h
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Profile(p) if p.name == "ann" => Some(p),
            _ => None,
        })
        .last()
        .expect("the key is written with the profile");
    let mut h2 = Harness::with(config());
    h2.engine = Engine::new(config(), h2.now);
    h2.engine.load(Snapshot {
        profiles: vec![record],
        channels: Vec::new(),
        lists: Vec::new(),
        ..Default::default()
    });
    refused(&mut h2, 1, None);
    let now = code(&h2, 0);
    accepted(&mut h2, 2, Some(&now));
}

#[test]
fn register_24_a_key_the_store_could_not_save_is_undone() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret!\")");
    h.keep_unsettled = true;
    h.expect_ok(
        1,
        &format!("(register :id 3 :password \"secret!\" :otp-key \"{KEY}\")"),
    );
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    accepted(&mut h, 2, None);
}
