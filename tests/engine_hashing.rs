//! Password hashing leaves the engine as jobs (§4.1.7, §5.2): a connection
//! waiting for one is answered only when the result is fed back, and what
//! it sent meanwhile is handled afterwards, in order.

mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Engine, HashDone, Outbox};
use lichat_tcp_server::wire::{Known, Object, read_object};

fn upd(text: &str) -> Result<Object, lichat_tcp_server::wire::ReadError> {
    read_object(text.as_bytes())
}

fn classes(out: &mut Outbox, conn: usize) -> Vec<Known> {
    let got = out
        .sends
        .iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, b)| class(&read_object(&b[..b.len() - 1]).unwrap()))
        .collect();
    out.sends.clear();
    got
}

/// Sends ann's password login on `conn`; its verification becomes a job.
fn login_as_ann(engine: &mut Engine, out: &mut Outbox, conn: usize, password: &str) {
    let connect =
        format!("(connect :id 1 :from \"ann\" :password \"{password}\" :version \"2.0\")");
    engine.handle(conn, upd(&connect), START, out);
}

/// An engine where "ann" is registered and has logged out again.
fn with_profile() -> (Engine, Outbox) {
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    let ip = "192.0.2.1".parse().unwrap();
    engine.open(1, ip, START);
    engine.handle(
        1,
        upd("(connect :id 1 :from \"ann\" :version \"2.0\")"),
        START,
        &mut out,
    );
    engine.handle(
        1,
        upd("(register :id 2 :password \"secret1\")"),
        START,
        &mut out,
    );
    engine.complete_jobs(START, &mut out);
    engine.handle(1, upd("(disconnect :id 3)"), START, &mut out);
    out.sends.clear();
    out.closes.clear();
    (engine, out)
}

#[test]
fn login_waits_for_its_password_job_and_defers_later_updates_4_1_7() {
    let (mut engine, mut out) = with_profile();
    engine.open(2, "192.0.2.2".parse().unwrap(), START);
    login_as_ann(&mut engine, &mut out, 2, "secret1");
    assert_eq!(out.jobs.len(), 1, "the verification leaves the engine");
    assert!(classes(&mut out, 2).is_empty(), "nothing is answered yet");
    assert!(engine.is_waiting(2) && !engine.is_established(2));
    // Sent before the verification finished: handled after it, in order.
    engine.handle(2, upd("(create :id 2 :channel \"den\")"), START, &mut out);
    engine.handle(2, upd("(ping :id 3)"), START, &mut out);
    assert!(classes(&mut out, 2).is_empty());
    let job = out.jobs.pop().unwrap();
    engine.job_done(2, job.id, job.run(), START, &mut out);
    assert_eq!(
        classes(&mut out, 2),
        [
            Known::Connect,
            Known::Join,
            Known::Message,
            Known::Join,
            Known::Pong
        ]
    );
    assert!(engine.is_established(2) && !engine.is_waiting(2));
}

#[test]
fn wrong_password_fails_once_its_job_reports_4_1_7() {
    let (mut engine, mut out) = with_profile();
    engine.open(2, "192.0.2.2".parse().unwrap(), START);
    engine.handle(
        2,
        upd("(connect :id 1 :from \"ann\" :password \"nope-nope\" :version \"2.0\")"),
        START,
        &mut out,
    );
    let job = out.jobs.pop().unwrap();
    engine.job_done(2, job.id, job.run(), START, &mut out);
    assert_eq!(classes(&mut out, 2), [Known::InvalidPassword]);
    assert_eq!(out.closes, [2]);
}

#[test]
fn register_reply_waits_for_the_hash_then_confirms_5_2_5() {
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    engine.open(1, "192.0.2.1".parse().unwrap(), START);
    engine.handle(
        1,
        upd("(connect :id 1 :from \"bob\" :version \"2.0\")"),
        START,
        &mut out,
    );
    out.sends.clear();
    engine.handle(
        1,
        upd("(register :id 2 :password \"secret1\")"),
        START,
        &mut out,
    );
    assert!(classes(&mut out, 1).is_empty());
    assert!(
        engine.profile("bob").is_none(),
        "no profile before the hash"
    );
    assert!(out.confirms.is_empty());
    let job = out.jobs.pop().unwrap();
    engine.job_done(1, job.id, job.run(), START, &mut out);
    assert_eq!(classes(&mut out, 1), [Known::Register]);
    assert!(
        !out.confirms.is_empty(),
        "the reply confirms a durable change"
    );
    assert!(engine.profile("bob").is_some());
}

#[test]
fn result_for_a_closed_connection_or_an_old_job_is_ignored() {
    let (mut engine, mut out) = with_profile();
    let ip = "192.0.2.2".parse().unwrap();
    engine.open(2, ip, START);
    login_as_ann(&mut engine, &mut out, 2, "secret1");
    let job = out.jobs.pop().unwrap();
    engine.closed(2, START, &mut out);
    // The slot is reused by a new connection before the result arrives.
    engine.open(2, ip, START);
    engine.job_done(2, job.id, job.run(), START, &mut out);
    assert!(classes(&mut out, 2).is_empty());
    assert!(!engine.is_established(2));
    // A stale id for a connection that waits for another job changes nothing.
    login_as_ann(&mut engine, &mut out, 2, "secret1");
    let current = out.jobs.pop().unwrap();
    engine.job_done(
        2,
        current.id + 100,
        HashDone::Created(job_password()),
        START,
        &mut out,
    );
    assert!(engine.is_waiting(2));
    engine.job_done(2, current.id, current.run(), START, &mut out);
    assert_eq!(classes(&mut out, 2)[0], Known::Connect);
}

fn job_password() -> lichat_tcp_server::engine::Password {
    lichat_tcp_server::engine::Password::new("whatever", "", 1).expect("OS randomness")
}

#[test]
fn password_changed_while_verifying_is_verified_again_4_1_7() {
    let (mut engine, mut out) = with_profile();
    let ip = "192.0.2.2".parse().unwrap();
    engine.open(2, ip, START);
    login_as_ann(&mut engine, &mut out, 2, "secret1");
    let first = out.jobs.pop().unwrap();
    // Meanwhile ann, logged in elsewhere, changes the password.
    engine.open(3, ip, START);
    login_as_ann(&mut engine, &mut out, 3, "secret1");
    let login = out.jobs.pop().unwrap();
    engine.job_done(3, login.id, login.run(), START, &mut out);
    engine.handle(
        3,
        upd("(register :id 2 :password \"another1\")"),
        START,
        &mut out,
    );
    engine.complete_jobs(START, &mut out);
    out.sends.clear();
    // The first verification matched the old hash: it must not count.
    engine.job_done(2, first.id, first.run(), START, &mut out);
    assert!(classes(&mut out, 2).is_empty());
    assert_eq!(out.jobs.len(), 1, "verified again against the new hash");
    engine.complete_jobs(START, &mut out);
    assert_eq!(classes(&mut out, 2), [Known::InvalidPassword]);
}

#[test]
fn harness_runs_one_job_per_password_use() {
    let mut h = Harness::new();
    h.login(1, "cy");
    h.call(1, "(register :id 2 :password \"secret1\")");
    h.connect_with(2, "cy", "secret1");
    assert_eq!(h.jobs_run, 2);
}

#[test]
fn registration_without_os_randomness_for_the_salt_is_rejected_5_2_3() {
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    engine.open(1, "192.0.2.1".parse().unwrap(), START);
    engine.handle(
        1,
        upd("(connect :id 1 :from \"ann\" :version \"2.0\")"),
        START,
        &mut out,
    );
    out.sends.clear();
    engine.handle(
        1,
        upd("(register :id 7 :password \"secret1\")"),
        START,
        &mut out,
    );
    let job = out.jobs.pop().expect("the hash leaves the engine");
    // The hashing thread found no randomness for the salt.
    engine.job_done(1, job.id, HashDone::NoRandomness, START, &mut out);
    let got: Vec<Object> = out
        .sends
        .iter()
        .map(|(_, b)| read_object(&b[..b.len() - 1]).unwrap())
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(class(&got[0]), Known::RegistrationRejected);
    assert_eq!(update_id(&got[0]), Some(7));
    assert!(engine.profile("ann").is_none(), "nothing was registered");
    assert!(out.changes.is_empty(), "nothing to store");
}
