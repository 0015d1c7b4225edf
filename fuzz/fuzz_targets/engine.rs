//! Drives the protocol engine with arbitrary sequences of connections,
//! updates (well-formed, half-formed and raw bytes), disconnects and time
//! passing, as the net layer would, and checks after every step:
//!
//! - the engine never panics;
//! - everything it sends is a readable update ending in NUL, addressed to
//!   a connection that is open;
//! - it never sends to a connection after closing it;
//! - its connection count matches the connections open;
//! - users, channels and profiles stay within the configured caps.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use lichat_tcp_server::engine::{Config, Engine, Outbox, Time, UNIX_TO_UNIVERSAL};
use lichat_tcp_server::wire::{Known, Object, Package, Value, read_object};
use std::net::{IpAddr, Ipv4Addr};

const CONNS: usize = 6;
const START: Time = UNIX_TO_UNIVERSAL + 1_700_000_000;

/// Names and channel names the inputs pick from, so that updates often
/// refer to users and channels that exist.
const NAMES: &[&str] = &[
    "ann", "bob", "Ann", "Server", "lobby", "@lobby", "", " ann", "a\u{301}", "ann bob",
];

#[derive(Arbitrary, Debug)]
enum Op {
    Open(u8),
    /// The peer vanished (§4.3).
    Close(u8),
    /// Bytes through the reader, as one update.
    Raw(u8, Vec<u8>),
    /// An update of a known class with chosen fields; `:id`, `:clock` and
    /// `:from` (the connection's last `connect` name) filled in unless the
    /// flags say otherwise.
    Update {
        conn: u8,
        class: u16,
        fields: Vec<(u16, Val)>,
        flags: u8,
    },
    /// Time passes; the timers the net layer runs fire.
    Tick(u16, u8),
}

#[derive(Arbitrary, Debug)]
enum Val {
    Name(u8),
    Text(String),
    Int(u64),
    Sym(u16),
    List(Vec<Val>),
}

fn value(v: &Val, depth: usize) -> Value {
    match v {
        Val::Name(i) => Value::string(NAMES[*i as usize % NAMES.len()]),
        Val::Text(s) => Value::string(s.as_str()),
        Val::Int(n) => Value::int(*n),
        Val::Sym(i) => Value::sym(Known::ALL[*i as usize % Known::ALL.len()]),
        Val::List(items) if depth < 4 => {
            Value::List(items.iter().take(8).map(|v| value(v, depth + 1)).collect())
        }
        Val::List(_) => Value::List(Vec::new()),
    }
}

struct Driver {
    engine: Engine,
    out: Outbox,
    now: Time,
    open: [bool; CONNS],
    names: [Option<String>; CONNS],
    next_id: u64,
    config: Config,
}

impl Driver {
    /// Checks what the last call produced and applies its closes.
    fn settle(&mut self) {
        self.engine.complete_jobs(self.now, &mut self.out);
        for (conn, bytes) in &self.out.sends {
            assert!(*conn < CONNS && self.open[*conn], "send to closed {conn}");
            assert_eq!(bytes.last(), Some(&0), "an update ends with NUL");
            let obj = read_object(&bytes[..bytes.len() - 1]);
            assert!(
                obj.is_ok(),
                "unreadable: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        for &conn in &self.out.closes {
            assert!(self.open[conn], "closing {conn} twice");
            self.open[conn] = false;
            self.names[conn] = None;
        }
        self.out.clear();
        let open = self.open.iter().filter(|&&o| o).count();
        assert_eq!(self.engine.connection_count(), open);
        // The primary channel is not counted against the cap.
        assert!(self.engine.channel_names().len() <= self.config.max_channels + 1);
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Open(c) => {
                let c = *c as usize % CONNS;
                if !self.open[c] {
                    self.open[c] = true;
                    self.engine
                        .open(c, IpAddr::V4(Ipv4Addr::new(192, 0, 2, c as u8)), self.now);
                }
            }
            Op::Close(c) => {
                let c = *c as usize % CONNS;
                if self.open[c] {
                    self.open[c] = false;
                    self.names[c] = None;
                    self.engine.closed(c, self.now, &mut self.out);
                }
            }
            Op::Raw(c, bytes) => {
                let c = *c as usize % CONNS;
                if self.open[c] {
                    let text: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
                    self.engine
                        .handle(c, read_object(&text), self.now, &mut self.out);
                }
            }
            Op::Update {
                conn,
                class,
                fields,
                flags,
            } => {
                let c = *conn as usize % CONNS;
                if !self.open[c] {
                    return;
                }
                let classes: Vec<Known> = Known::ALL
                    .iter()
                    .copied()
                    .filter(|k| k.package() != Package::Keyword)
                    .collect();
                let keys: Vec<Known> = Known::ALL
                    .iter()
                    .copied()
                    .filter(|k| k.package() == Package::Keyword)
                    .collect();
                let class = classes[*class as usize % classes.len()];
                let mut obj = Object::new(class);
                if flags & 1 == 0 {
                    self.next_id += 1;
                    obj.push(Known::KId, Value::int(self.next_id));
                }
                if flags & 2 == 0 {
                    obj.push(Known::KClock, Value::int(self.now));
                }
                if flags & 4 == 0 {
                    if let Some(name) = &self.names[c] {
                        obj.push(Known::KFrom, Value::string(name.as_str()));
                    }
                }
                if class == Known::Connect && flags & 8 == 0 {
                    obj.push(Known::KVersion, Value::string("2.0"));
                }
                for (k, v) in fields.iter().take(12) {
                    let key = keys[*k as usize % keys.len()];
                    // Skip a duplicate key: the reader rejects those before
                    // the engine sees them.
                    if obj.get_raw(key).is_none() {
                        obj.push(key, value(v, 0));
                    }
                }
                if class == Known::Connect {
                    self.names[c] = obj
                        .get_raw(Known::KFrom)
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                // Through the printer and the reader, as from a socket.
                let mut bytes = Vec::new();
                if lichat_tcp_server::wire::print_object(&obj, &mut bytes).is_ok() {
                    self.engine
                        .handle(c, read_object(&bytes), self.now, &mut self.out);
                }
            }
            Op::Tick(secs, which) => {
                self.now += u64::from(*secs);
                for c in 0..CONNS {
                    if !self.open[c] {
                        continue;
                    }
                    match (which >> (c % 4)) & 3 {
                        0 => self.engine.ping(c, self.now, &mut self.out),
                        1 => self.engine.idle_timeout(c, self.now, &mut self.out),
                        2 => self.engine.connect_timeout(c, self.now, &mut self.out),
                        _ => {}
                    }
                    self.settle();
                }
                self.engine.expire(self.now, &mut self.out);
            }
        }
        self.settle();
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let config = Config {
        name: "Server".into(),
        hash_iterations: 1,
        flood_limit: 1000,
        max_connections_per_user: 2,
        max_channels_per_user: 3,
        max_channels: 4,
        max_profiles: 3,
        profile_lifetime: 3600,
        channel_lifetime: 600,
        ..Config::default()
    };
    let mut d = Driver {
        engine: Engine::new(config.clone(), START),
        out: Outbox::default(),
        now: START,
        open: [false; CONNS],
        names: Default::default(),
        next_id: 0,
        config,
    };
    for op in ops.iter().take(256) {
        d.step(op);
    }
    d.engine.shutdown(d.now, &mut d.out);
    d.settle();
    assert_eq!(d.engine.connection_count(), 0);
});
