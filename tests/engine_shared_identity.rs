//! shirakumo-shared-identity (§15 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Engine, Snapshot};
use lichat_tcp_server::wire::{Known, Object, Value};

/// `lobby` with ann and bob registered; cat is not.
fn registered() -> Harness {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(register :id 3 :password \"secret!\")");
    h.expect_ok(2, "(register :id 4 :password \"secret!\")");
    h.take(1);
    h.take(2);
    h
}

/// ann shares a key; returns it.
fn share(h: &mut Harness) -> String {
    let id = h.fresh_id();
    let got = h.expect_ok(1, &format!("(share-identity :id {id})"));
    assert_eq!(classes_of(&got), [Known::SShareIdentity]);
    text(&got[0], Known::KKey).expect("the key").to_owned()
}

/// The (key, borrower) pairs of a `list-shared-identities` reply.
fn shares(o: &Object) -> Vec<(String, Option<String>)> {
    o.get(Known::KShares)
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .map(|s| {
            let s = s.as_list().expect("a share is a list");
            (
                s[0].as_str().unwrap().to_owned(),
                s[1].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn listed(h: &mut Harness, conn: usize) -> Object {
    let id = h.fresh_id();
    let got = h.expect_ok(conn, &format!("(list-shared-identities :id {id})"));
    assert_eq!(classes_of(&got), [Known::SListSharedIdentities]);
    got.into_iter().next().unwrap()
}

/// bob redeems ann's key.
fn assume(h: &mut Harness, key: &str) {
    let id = h.fresh_id();
    let got = h.expect_ok(
        2,
        &format!("(assume-identity :id {id} :target \"ann\" :key \"{key}\")"),
    );
    assert_eq!(classes_of(&got), [Known::SAssumeIdentity]);
}

fn message_as(h: &mut Harness, conn: usize, from: &str) -> Vec<Object> {
    let id = h.fresh_id();
    h.call(
        conn,
        &format!("(message :id {id} :from \"{from}\" :channel \"lobby\" :text \"hi\")"),
    )
}

#[test]
fn shared_identity_15_is_advertised() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-shared-identity".to_owned()));
}

#[test]
fn shared_identity_15_step1_of_each_update_unregistered_users_get_no_such_profile() {
    let mut h = registered();
    h.expect_failure(3, "(share-identity :id 5)", Known::NoSuchProfile);
    h.expect_failure(3, "(unshare-identity :id 6)", Known::NoSuchProfile);
    h.expect_failure(3, "(list-shared-identities :id 7)", Known::NoSuchProfile);
    h.expect_failure(
        3,
        "(assume-identity :id 8 :target \"ann\" :key \"0123456789abcdef\")",
        Known::NoSuchProfile,
    );
}

#[test]
fn share_identity_15_steps3_4_a_fresh_random_key_of_16_characters_or_more() {
    let mut h = registered();
    let a = share(&mut h);
    let b = share(&mut h);
    assert!(a.chars().count() >= 16, "{a:?}");
    assert_ne!(a, b);
    let got = listed(&mut h, 1);
    assert_eq!(shares(&got), [(a, None), (b, None)]);
}

#[test]
fn share_identity_15_step2_at_most_10_keys() {
    let mut h = registered();
    for _ in 0..10 {
        share(&mut h);
    }
    h.expect_failure(1, "(share-identity :id 99)", Known::SIdentityAlreadyUsed);
    assert_eq!(shares(&listed(&mut h, 1)).len(), 10);
}

#[test]
fn assume_identity_15_steps4_5_and_the_from_check_5_1_5() {
    let mut h = registered();
    // Before: bob may not send as ann.
    let got = message_as(&mut h, 2, "ann");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
    let key = share(&mut h);
    assume(&mut h, &key);
    let got = listed(&mut h, 1);
    assert_eq!(shares(&got), [(key, Some("bob".to_owned()))]);
    let got = listed(&mut h, 2);
    assert_eq!(strings(&got, Known::KIdentities), ["ann"]);
    // Now bob's message goes out from ann.
    h.take(1);
    let got = message_as(&mut h, 2, "ann");
    assert_eq!(classes_of(&got), [Known::Message]);
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    let seen = h.take(1);
    assert_eq!(text(&seen[0], Known::KFrom), Some("ann"));
    // Not as anyone else, and ann may not send as bob.
    let got = message_as(&mut h, 2, "cat");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
    let got = message_as(&mut h, 1, "bob");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
}

#[test]
fn assume_identity_15_updates_on_behalf_keep_the_senders_rights() {
    let mut h = registered();
    let key = share(&mut h);
    assume(&mut h, &key);
    // ann is lobby's registrant, bob is not: a kick as ann is still bob's.
    let id = h.fresh_id();
    h.expect_failure(
        2,
        &format!("(kick :id {id} :from \"ann\" :channel \"lobby\" :target \"bob\")"),
        Known::InsufficientPermissions,
    );
}

#[test]
fn assume_identity_15_step2_the_target_is_already_an_identity_or_the_user() {
    let mut h = registered();
    let key = share(&mut h);
    assume(&mut h, &key);
    let other = share(&mut h);
    h.expect_failure(
        2,
        &format!("(assume-identity :id 20 :target \"ann\" :key \"{other}\")"),
        Known::SIdentityAlreadyUsed,
    );
    h.expect_failure(
        1,
        &format!("(assume-identity :id 21 :target \"ann\" :key \"{other}\")"),
        Known::SIdentityAlreadyUsed,
    );
}

#[test]
fn assume_identity_15_step3_an_unknown_or_used_key_is_identity_already_used() {
    let mut h = registered();
    h.login(4, "dan");
    h.expect_ok(4, "(register :id 3 :password \"secret!\")");
    for conn in [1, 2, 3] {
        h.take(conn);
    }
    h.expect_failure(
        2,
        "(assume-identity :id 20 :target \"ann\" :key \"0123456789abcdef0123\")",
        Known::SIdentityAlreadyUsed,
    );
    let key = share(&mut h);
    // Another lender's key does not work for ann.
    h.expect_failure(
        2,
        &format!("(assume-identity :id 21 :target \"dan\" :key \"{key}\")"),
        Known::SIdentityAlreadyUsed,
    );
    h.expect_ok(
        4,
        &format!("(assume-identity :id 22 :target \"ann\" :key \"{key}\")"),
    );
    h.expect_failure(
        2,
        &format!("(assume-identity :id 23 :target \"ann\" :key \"{key}\")"),
        Known::SIdentityAlreadyUsed,
    );
    // §5.1.7: the target must exist.
    h.expect_failure(
        2,
        &format!("(assume-identity :id 24 :target \"nobody\" :key \"{key}\")"),
        Known::NoSuchUser,
    );
}

#[test]
fn unshare_identity_15_step3_one_key_is_withdrawn_and_its_borrower_loses_the_name() {
    let mut h = registered();
    let key = share(&mut h);
    let kept = share(&mut h);
    assume(&mut h, &key);
    let got = h.expect_ok(1, &format!("(unshare-identity :id 30 :key \"{key}\")"));
    assert_eq!(classes_of(&got), [Known::SUnshareIdentity]);
    assert_eq!(shares(&listed(&mut h, 1)), [(kept, None)]);
    assert!(strings(&listed(&mut h, 2), Known::KIdentities).is_empty());
    let got = message_as(&mut h, 2, "ann");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
    h.expect_failure(
        1,
        &format!("(unshare-identity :id 31 :key \"{key}\")"),
        Known::SIdentityAlreadyUsed,
    );
}

#[test]
fn unshare_identity_15_step2_without_a_key_every_share_goes() {
    let mut h = registered();
    h.login(4, "dan");
    h.expect_ok(4, "(register :id 3 :password \"secret!\")");
    for conn in [1, 2, 3] {
        h.take(conn);
    }
    let a = share(&mut h);
    let b = share(&mut h);
    share(&mut h);
    assume(&mut h, &a);
    h.expect_ok(
        4,
        &format!("(assume-identity :id 40 :target \"ann\" :key \"{b}\")"),
    );
    let got = h.expect_ok(1, "(unshare-identity :id 41)");
    assert_eq!(classes_of(&got), [Known::SUnshareIdentity]);
    assert!(shares(&listed(&mut h, 1)).is_empty());
    assert!(strings(&listed(&mut h, 2), Known::KIdentities).is_empty());
    assert!(strings(&listed(&mut h, 4), Known::KIdentities).is_empty());
    let got = message_as(&mut h, 2, "ann");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
}

#[test]
fn shared_identity_15_a_lender_whose_profile_is_gone_lends_nothing() {
    let mut h = registered();
    let key = share(&mut h);
    assume(&mut h, &key);
    // ann's profile expires while she is away; someone else takes the name.
    h.lost(1);
    h.now += 40 * 24 * 3600;
    h.expire();
    assert!(h.engine.profile("ann").is_none());
    h.take(2);
    let got = message_as(&mut h, 2, "ann");
    assert_eq!(classes_of(&got), [Known::UsernameMismatch]);
}

#[test]
fn shared_identity_15_shares_are_stored_with_the_profiles_across_a_restart() {
    let mut h = registered();
    let key = share(&mut h);
    assume(&mut h, &key);
    let mut profiles = std::collections::HashMap::new();
    for c in h.take_changes() {
        if let Change::Profile(p) = c {
            profiles.insert(p.name.clone(), p);
        }
    }
    let mut h2 = Harness::with(config());
    h2.engine = Engine::new(config(), h2.now);
    h2.engine.load(Snapshot {
        profiles: profiles.into_values().collect(),
        channels: Vec::new(),
        lists: Vec::new(),
        ..Default::default()
    });
    h2.connect_with(1, "ann", "secret!");
    h2.connect_with(2, "bob", "secret!");
    h2.take(1);
    h2.take(2);
    assert_eq!(shares(&listed(&mut h2, 1)), [(key, Some("bob".to_owned()))]);
    assert_eq!(strings(&listed(&mut h2, 2), Known::KIdentities), ["ann"]);
    h2.expect_ok(2, "(create :id 49 :channel \"room\")");
    let got = h2.call(
        2,
        "(message :id 50 :from \"ann\" :channel \"room\" :text \"x\")",
    );
    assert_eq!(classes_of(&got), [Known::Message]);
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
}

#[test]
fn assume_identity_15_a_share_the_store_could_not_save_is_undone_on_both_profiles() {
    let mut h = registered();
    let key = share(&mut h);
    h.keep_unsettled = true;
    assume(&mut h, &key);
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    h.take(2);
    assert_eq!(shares(&listed(&mut h, 1)), [(key.clone(), None)]);
    assert!(strings(&listed(&mut h, 2), Known::KIdentities).is_empty());
    // The key can be redeemed again.
    assume(&mut h, &key);
}
