//! Replies that confirm a durable change (§5.2 register, §5.3.1 create,
//! §5.3.2 permissions, grant, deny): which sends wait for the commit, and
//! what the engine undoes when the store cannot commit.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, ConfirmId, Engine, Outbox, Refusal};
use lichat_tcp_server::wire::{Known, Object, read_object};

const CAUSE: &str = "the disk is full";
const NOT_SAVED: &str = "The server could not save this change: the disk is full.";

fn failure_of(r: &Refusal) -> Object {
    read_object(&r.failure[..r.failure.len() - 1]).expect("a readable failure")
}

/// Classes of the updates received by `conn`, with their channels.
fn seen(h: &mut Harness, conn: usize) -> Vec<(Known, Option<String>, Option<String>)> {
    h.take(conn)
        .iter()
        .map(|o| {
            (
                class(o),
                text(o, Known::KFrom).map(str::to_owned),
                text(o, Known::KChannel).map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn create_then_message_in_one_read_confirms_only_the_creators_join_5_3_1() {
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    let ip = "192.0.2.1".parse().unwrap();
    let handle = |engine: &mut Engine, out: &mut Outbox, conn, text: &str| {
        engine.handle(conn, read_object(text.as_bytes()), START, out);
    };
    for (conn, name) in [(1, "ann"), (2, "bob")] {
        engine.open(conn, ip, START);
        let connect = format!("(connect :id 1 :from \"{name}\" :version \"2.0\")");
        handle(&mut engine, &mut out, conn, &connect);
    }
    handle(
        &mut engine,
        &mut out,
        1,
        "(create :id 2 :channel \"lobby\")",
    );
    handle(&mut engine, &mut out, 2, "(join :id 3 :channel \"lobby\")");
    engine.settle(ConfirmId::MAX);
    out.clear();
    // One read from ann: a create, then a message to another channel.
    handle(&mut engine, &mut out, 1, "(create :id 4 :channel \"den\")");
    handle(
        &mut engine,
        &mut out,
        1,
        "(message :id 5 :channel \"lobby\" :text \"hi\")",
    );
    let sent: Vec<(usize, Known)> = out
        .sends
        .iter()
        .map(|(conn, b)| (*conn, class(&read_object(&b[..b.len() - 1]).unwrap())))
        .collect();
    let mut all = sent.clone();
    all.sort();
    assert_eq!(
        all,
        [(1, Known::Join), (1, Known::Message), (2, Known::Message)]
    );
    // Only the join confirms; the message reaches bob without waiting.
    assert_eq!(out.confirms.len(), 1, "{:?}", out.confirms);
    assert_eq!(sent[out.confirms[0].0], (1, Known::Join));
}

#[test]
fn unsaved_create_is_undone_and_every_member_is_told_by_its_leave_5_3_1() {
    let mut h = Harness::lobby();
    h.keep_unsettled = true;
    h.expect_ok(1, "(create :id 10 :channel \"den\")");
    h.expect_ok(2, "(join :id 11 :channel \"den\")");
    h.take(1);
    h.take_changes();
    let refused = h.fail_pending(CAUSE);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].conn, 1);
    let f = failure_of(&refused[0]);
    assert_eq!(class(&f), Known::UpdateFailure);
    assert_eq!(update_id(&f), Some(10));
    assert_eq!(text(&f, Known::KText), Some(NOT_SAVED));
    let leave = |who: &str| (Known::Leave, Some(who.to_owned()), Some("den".to_owned()));
    assert_eq!(seen(&mut h, 1), [leave("ann")]);
    assert_eq!(seen(&mut h, 2), [leave("bob")]);
    assert!(h.engine.channel("den").is_none());
    assert_eq!(h.take_changes(), [Change::DeleteChannel("den".into())]);
    assert_eq!(h.engine.unsettled(), 0);
    h.expect_failure(2, "(join :id 12 :channel \"den\")", Known::NoSuchChannel);
    // Both are still in lobby.
    assert_eq!(
        classes_of(&h.call(2, "(message :id 13 :channel \"lobby\" :text \"m\")")),
        [Known::Message]
    );
}

#[test]
fn unsaved_registration_removes_the_new_profile_5_2() {
    let mut h = Harness::new();
    h.keep_unsettled = true;
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    assert!(h.engine.profile("ann").is_some());
    h.take_changes();
    let refused = h.fail_pending(CAUSE);
    let f = failure_of(&refused[0]);
    assert_eq!(class(&f), Known::RegistrationRejected);
    assert_eq!(update_id(&f), Some(2));
    assert_eq!(text(&f, Known::KText), Some(NOT_SAVED));
    assert!(h.engine.profile("ann").is_none());
    assert_eq!(h.take_changes(), [Change::DeleteProfile("ann".into())]);
    // The name is free again once ann is gone.
    h.lost(1);
    h.login(2, "ann");
}

#[test]
fn unsaved_password_change_restores_the_old_password_5_2_3() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    let old = h.engine.profile("ann").unwrap().password.clone();
    h.keep_unsettled = true;
    h.expect_ok(1, "(register :id 3 :password \"secret2\")");
    h.take_changes();
    let refused = h.fail_pending(CAUSE);
    assert_eq!(refused.len(), 1, "only the unsettled change");
    assert_eq!(update_id(&failure_of(&refused[0])), Some(3));
    let profile = h.engine.profile("ann").unwrap().clone();
    assert_eq!(profile.password, old);
    assert_eq!(h.take_changes(), [Change::Profile(profile)]);
    let got = h.connect_with(2, "ann", "secret1");
    assert_eq!(class(&got[0]), Known::Connect);
}

#[test]
fn unsaved_permissions_grant_and_deny_restore_the_previous_rules_5_3_2() {
    let mut h = Harness::lobby();
    let before = h.engine.channel("lobby").unwrap().rules.clone();
    h.keep_unsettled = true;
    h.expect_ok(
        1,
        "(permissions :id 20 :channel \"lobby\" :permissions ((message (+ \"ann\"))))",
    );
    h.expect_ok(
        1,
        "(deny :id 21 :channel \"lobby\" :target \"bob\" :update join)",
    );
    h.expect_ok(
        1,
        "(grant :id 22 :channel \"lobby\" :target \"cat\" :update kick)",
    );
    assert_ne!(h.engine.channel("lobby").unwrap().rules, before);
    // Each undo restores the rules its change found, newest first, so
    // the oldest restores what was there before all three.
    let refused = h.fail_pending(CAUSE);
    let ids: Vec<_> = refused
        .iter()
        .map(|r| (r.conn, update_id(&failure_of(r))))
        .collect();
    assert_eq!(ids, [(1, Some(20)), (1, Some(21)), (1, Some(22))]);
    assert!(
        refused
            .iter()
            .all(|r| class(&failure_of(r)) == Known::UpdateFailure)
    );
    assert_eq!(h.engine.channel("lobby").unwrap().rules, before);
    assert!(matches!(
        h.take_changes().last(),
        Some(Change::Channel(c)) if c.rules == before
    ));
}

#[test]
fn unsaved_create_and_rules_of_the_new_channel_leave_no_channel_5_3_1() {
    let mut h = Harness::lobby();
    h.keep_unsettled = true;
    h.expect_ok(1, "(create :id 30 :channel \"den\")");
    h.expect_ok(
        1,
        "(deny :id 31 :channel \"den\" :target \"bob\" :update join)",
    );
    let refused = h.fail_pending(CAUSE);
    assert_eq!(refused.len(), 2);
    assert!(h.engine.channel("den").is_none());
    assert_eq!(
        h.take_changes().last(),
        Some(&Change::DeleteChannel("den".into()))
    );
}

#[test]
fn settled_confirmations_are_not_undone() {
    let mut h = Harness::lobby();
    h.keep_unsettled = true;
    h.expect_ok(1, "(create :id 40 :channel \"den\")");
    let id = h.confirmations.last().expect("the join confirms").2;
    h.engine.settle(id);
    assert!(h.fail_pending(CAUSE).is_empty());
    assert!(h.engine.channel("den").is_some());
}

#[test]
fn while_the_store_fails_changes_that_need_a_confirmation_are_refused_at_once() {
    let mut h = Harness::lobby();
    h.take_changes();
    h.engine.set_store_failure(Some(CAUSE.into()));
    for (update, expected) in [
        ("(create :id 50 :channel \"den\")", Known::UpdateFailure),
        (
            "(register :id 51 :password \"secret1\")",
            Known::RegistrationRejected,
        ),
        (
            "(permissions :id 52 :channel \"lobby\" :permissions ((join nil)))",
            Known::UpdateFailure,
        ),
        (
            "(grant :id 53 :channel \"lobby\" :target \"cat\" :update kick)",
            Known::UpdateFailure,
        ),
        (
            "(deny :id 54 :channel \"lobby\" :target \"bob\" :update join)",
            Known::UpdateFailure,
        ),
    ] {
        let f = h.expect_failure(1, update, expected);
        assert_eq!(text(&f, Known::KText), Some(NOT_SAVED));
    }
    assert!(h.engine.channel("den").is_none());
    assert!(h.engine.profile("ann").is_none());
    assert!(h.take_changes().is_empty(), "nothing was changed");
    assert_eq!(h.jobs_run, 0, "no password was hashed");
    // What changes nothing durable still works.
    h.expect_ok(1, "(permissions :id 55 :channel \"lobby\")");
    assert_eq!(
        classes_of(&h.expect_ok(1, "(create :id 56)")),
        [Known::Join]
    );
    h.expect_ok(1, "(message :id 57 :channel \"lobby\" :text \"m\")");
    // Commits work again: so does create.
    h.engine.set_store_failure(None);
    assert_eq!(
        classes_of(&h.expect_ok(1, "(create :id 58 :channel \"den\")")),
        [Known::Join]
    );
}

#[test]
fn rules_of_channels_that_are_not_stored_confirm_nothing_2_4_2() {
    let mut h = Harness::lobby();
    h.keep_unsettled = true;
    let join = h.expect_ok(1, "(create :id 60)");
    let anonymous = text(&join[0], Known::KChannel).unwrap().to_owned();
    h.expect_ok(
        1,
        &format!("(grant :id 61 :channel \"{anonymous}\" :target \"bob\" :update join)"),
    );
    assert!(h.confirmations.is_empty(), "{:?}", h.confirmations);
    assert_eq!(h.engine.unsettled(), 0);
    // Nor are they refused while the store fails.
    h.engine.set_store_failure(Some(CAUSE.into()));
    h.expect_ok(
        1,
        &format!("(deny :id 62 :channel \"{anonymous}\" :target \"bob\" :update join)"),
    );
}
