//! A socket-free harness around the engine: connections are numbers, and
//! what the engine sends is parsed back into objects per connection.
#![allow(dead_code)]

use lichat_tcp_server::engine::{
    Config, ConfirmId, ConnId, Engine, Outbox, Refusal, SearchDone, SearchJob, Time,
    UNIX_TO_UNIVERSAL,
};
use lichat_tcp_server::protocol::Rule;
use lichat_tcp_server::wire::{Known, Object, ReadError, Value, read_object};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// Runs one history search job.
pub type RunSearch = Box<dyn FnMut(&SearchJob) -> SearchDone>;

pub const START: Time = UNIX_TO_UNIVERSAL + 1_700_000_000;

pub struct Harness {
    pub engine: Engine,
    pub now: Time,
    out: Outbox,
    inbox: HashMap<ConnId, Vec<Object>>,
    pub closed: HashSet<ConnId>,
    /// Password jobs run so far.
    pub jobs_run: usize,
    events: Vec<lichat_tcp_server::engine::ConnEvent>,
    next_id: u64,
    /// Leave confirmations unsettled, as while the store has not
    /// committed them (by default they count as committed at once).
    pub keep_unsettled: bool,
    /// The confirming sends seen while `keep_unsettled`: the receiving
    /// connection, the update's class and the confirmation.
    pub confirmations: Vec<(ConnId, Known, ConfirmId)>,
    /// Runs the history searches (shirakumo §18) the engine hands out, as
    /// the net layer's search thread would; without one they find
    /// nothing, as without a store.
    pub searcher: Option<RunSearch>,
    /// Keep searches instead of running them (in `held_searches`).
    pub hold_searches: bool,
    pub held_searches: Vec<SearchJob>,
}

/// The test configuration with `root` as a server administrator.
pub fn admin_config() -> Config {
    Config {
        admins: vec!["root".into()],
        ..config()
    }
}

/// A fresh harness whose engine loaded `snapshot`, as after a restart.
pub fn restarted(snapshot: lichat_tcp_server::engine::Snapshot) -> Harness {
    let mut h = Harness::new();
    h.engine.load(snapshot);
    h
}

/// The last record of the profile `name` among `changes`.
pub fn last_profile(
    changes: Vec<lichat_tcp_server::engine::Change>,
    name: &str,
) -> lichat_tcp_server::engine::Profile {
    changes
        .into_iter()
        .rev()
        .find_map(|c| match c {
            lichat_tcp_server::engine::Change::Profile(p) if p.name == name => Some(p),
            _ => None,
        })
        .expect("the profile is written")
}

pub fn config() -> Config {
    Config {
        name: "Server".into(),
        hash_iterations: 10,
        ..Config::default()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(config())
    }

    pub fn with(config: Config) -> Harness {
        Harness {
            engine: Engine::new(config, START),
            now: START,
            out: Outbox::default(),
            inbox: HashMap::new(),
            closed: HashSet::new(),
            jobs_run: 0,
            events: Vec::new(),
            next_id: 1000,
            keep_unsettled: false,
            confirmations: Vec::new(),
            searcher: None,
            hold_searches: false,
            held_searches: Vec::new(),
        }
    }

    fn collect(&mut self) {
        // Password jobs run here, as the net layer's hashing thread would.
        self.jobs_run += self.out.jobs.len();
        self.engine.complete_jobs(self.now, &mut self.out);
        // As the net layer does after each batch of input.
        self.engine.end_turn(&mut self.out);
        while !self.out.searches.is_empty() {
            let jobs = std::mem::take(&mut self.out.searches);
            if self.hold_searches {
                self.held_searches.extend(jobs);
                break;
            }
            for job in jobs {
                let done = match &mut self.searcher {
                    Some(run) => run(&job),
                    None => SearchDone::empty(&job),
                };
                self.engine.search_done(done, self.now, &mut self.out);
            }
        }
        let mut confirms = self.out.confirms.iter().peekable();
        for (i, (conn, bytes)) in self.out.sends.drain(..).enumerate() {
            assert_eq!(bytes.last(), Some(&0), "every update ends with NUL (3.1)");
            let obj =
                read_object(&bytes[..bytes.len() - 1]).expect("the engine prints readable updates");
            if let Some(&(_, id)) = confirms.next_if(|c| c.0 == i) {
                self.confirmations.push((conn, class(&obj), id));
            }
            self.inbox.entry(conn).or_default().push(obj);
        }
        for conn in self.out.closes.drain(..) {
            self.closed.insert(conn);
        }
        self.events.append(&mut self.out.events);
        // Confirmations count as committed at once, as without a store.
        self.out.confirms.clear();
        if !self.keep_unsettled {
            self.confirmations.clear();
            self.engine.settle(ConfirmId::MAX);
        }
    }

    pub fn open(&mut self, conn: ConnId) {
        self.open_from(conn, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    /// Opens `conn` as accepted from `ip`.
    pub fn open_from(&mut self, conn: ConnId, ip: IpAddr) {
        self.engine.open(conn, ip, self.now);
    }

    /// Opens `conn` from `ip` and completes §4.1 as `name`.
    pub fn login_from(&mut self, conn: ConnId, name: &str, ip: &str) {
        self.open_from(conn, ip.parse().expect("an IP address"));
        self.send(
            conn,
            &format!("(connect :id 1 :from \"{name}\" :version \"2.0\")"),
        );
        let got = self.classes(conn);
        assert_eq!(got.first(), Some(&Known::Connect), "{name}: {got:?}");
    }

    /// Sends raw update text (without NUL) on a connection.
    pub fn send(&mut self, conn: ConnId, text: &str) {
        let update = read_object(text.as_bytes());
        self.engine.handle(conn, update, self.now, &mut self.out);
        self.collect();
    }

    /// Sends an object.
    pub fn send_obj(&mut self, conn: ConnId, obj: Object) {
        self.engine.handle(conn, Ok(obj), self.now, &mut self.out);
        self.collect();
    }

    /// Everything received by `conn` since the last call.
    pub fn take(&mut self, conn: ConnId) -> Vec<Object> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Classes received by `conn` since the last call.
    pub fn classes(&mut self, conn: ConnId) -> Vec<Known> {
        self.take(conn)
            .iter()
            .map(|o| o.class.known().expect("known class"))
            .collect()
    }

    pub fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// ann (conn 1, registrant of "lobby") and bob (conn 2) in "lobby";
    /// cat (conn 3) connected but outside it. Inboxes are cleared.
    pub fn lobby() -> Harness {
        let mut h = Harness::new();
        h.login(1, "ann");
        h.login(2, "bob");
        h.login(3, "cat");
        h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
        h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
        h.take(1);
        h
    }

    /// `root` registered (conn 8) and logged in with its password on
    /// conn 9 under [`admin_config`]; inboxes cleared.
    pub fn with_admin() -> Harness {
        let mut h = Harness::with(admin_config());
        h.login(8, "root");
        h.expect_ok(8, "(register :id 2 :password \"rootpass\")");
        let got = h.connect_with(9, "root", "rootpass");
        assert_eq!(got.first().map(class), Some(Known::Connect), "{got:?}");
        h.take(8);
        h
    }

    /// Opens `conn` and completes §4.1 as `name`; clears its inbox.
    pub fn login(&mut self, conn: ConnId, name: &str) {
        self.open(conn);
        self.send(
            conn,
            &format!("(connect :id 1 :from \"{name}\" :version \"2.0\" :extensions ())"),
        );
        let got = self.classes(conn);
        assert_eq!(
            got.first(),
            Some(&Known::Connect),
            "{name} connects: {got:?}"
        );
    }

    pub fn call(&mut self, conn: ConnId, update: &str) -> Vec<Object> {
        self.send(conn, update);
        self.take(conn)
    }

    /// Moves the clock to `now` and lets the engine do what is due then
    /// (§4.1 connect timeout, §4.2 pings and idle timeouts, expiry).
    pub fn advance_to(&mut self, now: Time) {
        self.now = now;
        self.engine.handle_timeout(now, &mut self.out);
        self.collect();
    }

    /// The events the engine reported since the last call.
    pub fn take_events(&mut self) -> Vec<lichat_tcp_server::engine::ConnEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn timer_ping(&mut self, conn: ConnId) {
        self.engine.ping(conn, self.now, &mut self.out);
        self.collect();
    }

    pub fn timer_idle(&mut self, conn: ConnId) {
        self.engine.idle_timeout(conn, self.now, &mut self.out);
        self.collect();
    }

    pub fn timer_connect(&mut self, conn: ConnId) {
        self.engine.connect_timeout(conn, self.now, &mut self.out);
        self.collect();
    }

    pub fn lost(&mut self, conn: ConnId) {
        self.engine.closed(conn, self.now, &mut self.out);
        self.collect();
    }

    pub fn expire(&mut self) -> Time {
        let next = self.engine.expire(self.now, &mut self.out);
        self.collect();
        next
    }

    /// Feeds the results of held searches back.
    pub fn search_done(&mut self, done: SearchDone) {
        self.engine.search_done(done, self.now, &mut self.out);
        self.collect();
    }

    /// Durable changes recorded since the last call.
    pub fn take_changes(&mut self) -> Vec<lichat_tcp_server::engine::Change> {
        std::mem::take(&mut self.out.changes)
    }

    /// Hands the engine a reader error instead of an update.
    pub fn send_err(&mut self, conn: ConnId, err: ReadError) {
        self.engine.handle(conn, Err(err), self.now, &mut self.out);
        self.collect();
    }

    /// Opens `conn` and connects as `name` with `password`; returns the
    /// replies (the harness does not check them).
    pub fn connect_with(&mut self, conn: ConnId, name: &str, password: &str) -> Vec<Object> {
        self.open(conn);
        self.call(
            conn,
            &format!("(connect :id 1 :from \"{name}\" :password \"{password}\" :version \"2.0\")"),
        )
    }

    /// Sends `update` and expects exactly one reply: an update failure of
    /// `expected` from the server whose `update-id` is the update's `id`.
    pub fn expect_failure(&mut self, conn: ConnId, update: &str, expected: Known) -> Object {
        let sent = read_object(update.as_bytes()).expect("the test's update parses");
        let got = self.call(conn, update);
        assert_eq!(got.len(), 1, "one reply to {update}: {got:?}");
        let f = got.into_iter().next().unwrap();
        assert_eq!(class(&f), expected, "reply to {update}: {f:?}");
        assert_eq!(
            f.get(Known::KUpdateId),
            sent.get(Known::KId),
            "update-id of the reply to {update}"
        );
        assert_eq!(text(&f, Known::KFrom), Some("Server"));
        assert!(text(&f, Known::KText).is_some_and(|t| !t.is_empty()));
        f
    }

    /// Sends `update` and returns the replies, asserting none is a failure.
    pub fn expect_ok(&mut self, conn: ConnId, update: &str) -> Vec<Object> {
        let got = self.call(conn, update);
        for o in &got {
            assert!(
                !lichat_tcp_server::protocol::is_failure(class(o)),
                "{update} failed: {o:?}"
            );
        }
        got
    }

    /// The store cannot commit: the engine withdraws every unsettled
    /// confirmation; what it sends is collected as usual.
    pub fn fail_pending(&mut self, cause: &str) -> Vec<Refusal> {
        let refused = self.engine.fail_pending(cause, self.now, &mut self.out);
        self.collect();
        refused
    }

    pub fn shutdown(&mut self) {
        self.engine.shutdown(self.now, &mut self.out);
        self.collect();
    }
}

pub fn class(o: &Object) -> Known {
    o.class.known().expect("known class")
}

pub fn text(o: &Object, key: Known) -> Option<&str> {
    o.get(key).and_then(Value::as_str)
}

pub fn strings(o: &Object, key: Known) -> Vec<String> {
    o.get(key)
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

pub fn update_id(o: &Object) -> Option<u64> {
    o.get(Known::KUpdateId).and_then(Value::as_u64)
}

pub fn id(o: &Object) -> Option<u64> {
    o.get(Known::KId).and_then(Value::as_u64)
}

/// The rule for `update` in the `permissions` field of a `permissions` reply.
pub fn rule_in(reply: &Object, update: Known) -> Option<Rule> {
    reply
        .get(Known::KPermissions)?
        .as_list()?
        .iter()
        .filter_map(Value::as_list)
        .find(|r| r.first().and_then(Value::as_symbol).and_then(|s| s.known()) == Some(update))
        .map(|r| Rule::from_value(&r[1], usize::MAX).expect("the server prints valid rules"))
}

/// The classes of a list of updates.
pub fn classes_of(objs: &[Object]) -> Vec<Known> {
    objs.iter().map(class).collect()
}
