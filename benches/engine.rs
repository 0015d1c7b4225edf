//! Engine throughput: one `message` into a channel of 1000 members, each a
//! delivery (printing included; a delivery is queuing the shared bytes for
//! one recipient). Also times one password verification (§5.2), which the
//! server runs on its hashing thread, and a `permissions` update listing
//! 20 000 names (§5.3.2), refused at the default limit of 1000 names per
//! rule and accepted with the limit raised: both are loop time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lichat_tcp_server::engine::{Config, Engine, Outbox, Password, UNIX_TO_UNIVERSAL};
use lichat_tcp_server::wire::read_object;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const MEMBERS: usize = 1000;

fn bench_config() -> Config {
    Config {
        name: "bench".into(),
        flood_limit: u32::MAX,
        ..Config::default()
    }
}

fn channel_of(members: usize) -> (Engine, Outbox) {
    channel_with(members, bench_config())
}

fn channel_with(members: usize, config: Config) -> (Engine, Outbox) {
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    let mut engine = Engine::new(config, now);
    let mut out = Outbox::default();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for conn in 0..members {
        engine.open(conn, ip, now);
        let connect = format!("(connect :id 1 :from \"user{conn}\" :version \"2.0\")");
        engine.handle(conn, read_object(connect.as_bytes()), now, &mut out);
        let enter = if conn == 0 {
            "(create :id 2 :channel \"room\")"
        } else {
            "(join :id 2 :channel \"room\")"
        };
        engine.handle(conn, read_object(enter.as_bytes()), now, &mut out);
        out.clear();
    }
    (engine, out)
}

fn fan_out(c: &mut Criterion) {
    let (mut engine, mut out) = channel_of(MEMBERS);
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    let message = read_object(
        b"(message :id 7 :clock 3900000000 :from \"user0\" :channel \"room\" :text \"hello, everyone in the room\")",
    )
    .expect("valid update");
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    group.bench_function("message_to_1000_members", |b| {
        b.iter(|| {
            engine.handle(0, Ok(message.clone()), now, &mut out);
            assert_eq!(out.sends.len(), MEMBERS);
            black_box(&out.sends);
            out.clear();
        })
    });
    group.finish();
}

fn password(c: &mut Criterion) {
    let stored = Password::new(
        "correct horse",
        "server salt",
        Config::default().hash_iterations,
    )
    .expect("OS randomness");
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("verify_default_iterations", |b| {
        b.iter(|| assert!(stored.verify(black_box("correct horse"), "server salt")))
    });
    group.finish();
}

fn big_permissions(c: &mut Criterion) {
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    let names: String = (0..20_000).map(|i| format!(" \"user{i}\"")).collect();
    let text = format!("(permissions :id 9 :channel \"room\" :permissions ((message (+{names}))))");
    let update = read_object(text.as_bytes()).expect("valid update");
    let mut group = c.benchmark_group("permissions");
    group.sample_size(20);
    for (label, max_rule_names) in [
        ("20000_names_refused_at_1000", 1000),
        ("20000_names_accepted", 100_000),
    ] {
        let (mut engine, mut out) = channel_with(
            1,
            Config {
                max_rule_names,
                ..bench_config()
            },
        );
        group.bench_function(label, |b| {
            b.iter(|| {
                engine.handle(0, Ok(update.clone()), now, &mut out);
                black_box(&out.sends);
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fan_out, password, big_permissions);
criterion_main!(benches);
