//! §5.2 registration, §4.1.5–7 logging in to a profile, and the expiry of
//! profiles (§2.3) and channels (§2.4).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Config, THIRTY_DAYS};
use lichat_tcp_server::wire::Known;

fn login_update(id: u64, name: &str, password: &str) -> String {
    format!("(connect :id {id} :from \"{name}\" :password \"{password}\" :version \"2.0\")")
}

/// ann registered with "secret1".
fn registered() -> Harness {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h
}

// §5.2 register

#[test]
fn register_with_a_short_password_fails_registration_rejected_5_2_1() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_failure(
        1,
        "(register :id 5 :password \"12345\")",
        Known::RegistrationRejected,
    );
    assert!(h.engine.profile("ann").is_none());
    // Six characters count, not bytes.
    h.expect_ok(1, "(register :id 6 :password \"ääääää\")");
    assert!(h.engine.profile("ann").is_some());
}

#[test]
fn register_creates_the_profile_and_echoes_the_update_5_2_2_5() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.take(1);
    h.now += 10;
    let got = h.expect_ok(1, "(register :id 90 :password \"secret1\")");
    assert_eq!(classes_of(&got), [Known::Register]);
    assert_eq!(id(&got[0]), Some(90));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert!(h.take(2).is_empty());
    let p = h.engine.profile("ANN").expect("profile created");
    assert_eq!(p.name, "ann");
    assert_eq!(p.registered_on, h.now);
    // The profile secures the name: it now needs the password.
    h.send(1, "(disconnect :id 3)");
    h.open(3);
    h.expect_failure(
        3,
        "(connect :id 4 :from \"ann\" :version \"2.0\")",
        Known::UsernameTaken,
    );
    assert!(h.closed.contains(&3));
    let got = h.connect_with(4, "ann", "secret1");
    assert_eq!(class(&got[0]), Known::Connect);
}

#[test]
fn register_again_changes_the_password_5_2_3() {
    let mut h = registered();
    let first = h.engine.profile("ann").unwrap().clone();
    h.now += 5;
    h.expect_ok(1, "(register :id 3 :password \"secret2\")");
    let second = h.engine.profile("ann").unwrap().clone();
    assert_eq!(second.registered_on, first.registered_on);
    assert_ne!(second.password, first.password);
    h.open(2);
    h.expect_failure(
        2,
        &login_update(4, "ann", "secret1"),
        Known::InvalidPassword,
    );
    let got = h.connect_with(3, "ann", "secret2");
    assert_eq!(class(&got[0]), Known::Connect);
}

#[test]
fn stored_password_is_a_hash_not_the_password_5_2() {
    let h = registered();
    let p = h.engine.profile("ann").unwrap();
    assert_ne!(&p.password.hash[..7], b"secret1");
    assert!(p.password.verify("secret1", &h.engine.config().salt));
    assert!(!p.password.verify("secret2", &h.engine.config().salt));
}

// §4.1.5–7 logging in

#[test]
fn registered_name_without_password_fails_username_taken_4_1_5() {
    let mut h = registered();
    h.send(1, "(disconnect :id 3)");
    h.open(2);
    h.expect_failure(
        2,
        "(connect :id 7 :from \"Ann\" :version \"2.0\")",
        Known::UsernameTaken,
    );
    assert!(h.closed.contains(&2));
}

#[test]
fn password_for_an_unregistered_name_fails_no_such_profile_and_closes_4_1_6() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.open(2);
    h.expect_failure(2, &login_update(6, "bob", "secret1"), Known::NoSuchProfile);
    assert!(h.closed.contains(&2));
    // Also when the name is in use but not registered.
    h.open(3);
    h.expect_failure(3, &login_update(7, "ann", "secret1"), Known::NoSuchProfile);
    assert!(h.closed.contains(&3));
    assert!(h.engine.is_established(1));
}

#[test]
fn wrong_password_fails_invalid_password_and_closes_4_1_7() {
    let mut h = registered();
    h.open(2);
    h.expect_failure(
        2,
        &login_update(8, "ann", "secret9"),
        Known::InvalidPassword,
    );
    assert!(h.closed.contains(&2));
    h.send(1, "(disconnect :id 3)");
    h.open(3);
    h.expect_failure(
        3,
        &login_update(9, "ANN", "SECRET1"),
        Known::InvalidPassword,
    );
    assert!(h.closed.contains(&3));
}

#[test]
fn right_password_logs_in_even_while_the_name_is_active_4_1_7() {
    let mut h = registered();
    let got = h.connect_with(2, "ann", "secret1");
    assert_eq!(class(&got[0]), Known::Connect, "{got:?}");
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert!(
        got[0].get(Known::KPassword).is_none(),
        "the password is not echoed in connect"
    );
    assert!(h.engine.is_established(1) && h.engine.is_established(2));
}

#[test]
fn right_password_logs_in_a_registered_user_who_is_offline_4_1_9() {
    let mut h = registered();
    h.send(1, "(disconnect :id 3)");
    let got = h.connect_with(2, "ann", "secret1");
    assert_eq!(
        classes_of(&got),
        [Known::Connect, Known::Join, Known::Message]
    );
}

// §2.3 / §5.2.4 profile expiry

#[test]
fn profile_lives_thirty_days_after_its_user_was_last_on_the_server_5_2_4() {
    let mut h = registered();
    h.now += 3 * THIRTY_DAYS;
    h.expire();
    assert!(
        h.engine.profile("ann").is_some(),
        "active users keep theirs"
    );
    h.send(1, "(disconnect :id 3)");
    let left = h.now;
    h.now = left + THIRTY_DAYS - 1;
    let next = h.expire();
    assert!(h.engine.profile("ann").is_some());
    assert!(next <= left + THIRTY_DAYS, "next expiry at {next}");
    h.now = left + THIRTY_DAYS;
    h.expire();
    assert!(h.engine.profile("ann").is_none());
    // The name is free again.
    h.login(2, "ann");
}

#[test]
fn logging_in_again_restarts_the_profiles_lifetime_5_2_4() {
    let mut h = registered();
    h.send(1, "(disconnect :id 3)");
    h.now += THIRTY_DAYS - 10;
    h.connect_with(2, "ann", "secret1");
    h.send(2, "(disconnect :id 4)");
    h.now += THIRTY_DAYS - 10;
    h.expire();
    assert!(h.engine.profile("ann").is_some());
    h.now += 10;
    h.expire();
    assert!(h.engine.profile("ann").is_none());
}

// §2.4 channel expiry

#[test]
fn empty_regular_channel_lives_thirty_days_2_4() {
    let mut h = Harness::new();
    h.login(1, "ann");
    // Registered: an unregistered creator's channel lives an hour.
    h.expect_ok(1, "(register :id 1 :password \"secret1\")");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.now += 2 * THIRTY_DAYS;
    h.expire();
    assert!(
        h.engine.channel("lobby").is_some(),
        "inhabited channels stay"
    );
    h.expect_ok(1, "(leave :id 3 :channel \"lobby\")");
    let emptied = h.now;
    h.now = emptied + THIRTY_DAYS - 1;
    h.expire();
    assert!(h.engine.channel("lobby").is_some(), "still joinable");
    h.expect_ok(1, "(join :id 4 :channel \"lobby\")");
    h.send(1, "(disconnect :id 5)");
    let emptied = h.now;
    h.now = emptied + THIRTY_DAYS;
    h.expire();
    assert!(h.engine.channel("lobby").is_none());
    assert!(
        h.engine.channel("Server").is_some(),
        "the primary channel stays"
    );
    h.login(2, "bob");
    h.expect_failure(2, "(join :id 6 :channel \"lobby\")", Known::NoSuchChannel);
    h.expect_ok(2, "(create :id 7 :channel \"lobby\")");
}

#[test]
fn anonymous_channel_is_removed_as_soon_as_it_is_empty_2_4_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.take(1);
    let got = h.expect_ok(1, "(create :id 2)");
    let a = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_ok(1, &format!("(pull :id 3 :channel \"{a}\" :target \"bob\")"));
    h.expect_ok(1, &format!("(leave :id 4 :channel \"{a}\")"));
    assert!(h.engine.channel(&a).is_some(), "bob is still there");
    h.expect_ok(2, &format!("(leave :id 5 :channel \"{a}\")"));
    assert!(h.engine.channel(&a).is_none());
    h.expect_failure(
        2,
        &format!("(message :id 6 :channel \"{a}\" :text \"x\")"),
        Known::NoSuchChannel,
    );
    // Also when its last member disconnects.
    let got = h.expect_ok(2, "(create :id 7)");
    let b = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.send(2, "(disconnect :id 8)");
    assert!(h.engine.channel(&b).is_none());
}

#[test]
fn register_beyond_the_server_profile_limit_is_rejected_5_2_1() {
    let mut h = Harness::with(Config {
        max_profiles: 1,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    let f = h.expect_failure(
        2,
        "(register :id 3 :password \"secret2\")",
        Known::RegistrationRejected,
    );
    assert!(text(&f, Known::KText).unwrap().contains("maximum"));
    assert!(h.engine.profile("bob").is_none());
    // An existing profile may still change its password.
    h.expect_ok(1, "(register :id 4 :password \"secret3\")");
}
