//! The event loop: one thread, one `mio::Poll`, connections in a slab,
//! SIGINT/SIGTERM handling, and the clock: the engine is told the time
//! and decides the protocol's timeouts; the loop only keeps close
//! deadlines. One file per concern: accepting (`accept.rs`), a connection
//! and its read side (`conn.rs`), its write queue (`write_queue.rs`), the
//! replies held for a commit (`commit_gate.rs`), TLS and the framings
//! besides Lichat's (`transport.rs`, `tls.rs`, `ws.rs`, `http.rs`), the
//! metrics (`metrics.rs`).

mod accept;
mod commit_gate;
mod conn;
#[cfg(feature = "websocket")]
mod download;
pub mod hasher;
#[cfg(feature = "websocket")]
mod http;
mod metrics;
mod ratelog;
mod sockopt;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
mod write_queue;
#[cfg(feature = "websocket")]
mod ws;

use crate::engine::{ConfirmId, ConnEvent, ConnId, Engine, Outbox, Time, UNIX_TO_UNIVERSAL};
use crate::store::{self, Store, StoreError, Ticket};
use crate::timer::Wheel;
use conn::{Conn, Held, Phase, Reason};
use hasher::Hasher;
use log::{Level, debug, info};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use ratelog::RateLog;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings of the event loop; the defaults are the original server's.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// §4.1.1: connections allowed at once, in total.
    pub connection_limit: usize,
    /// §5.1.2: the longest update the server sends, in bytes, NUL
    /// excluded. It accepts updates up to [`RELAY_ROOM`] bytes shorter, so
    /// that what it adds when it relays one (`clock`, `from`, canonical
    /// names) never takes it past this limit.
    pub max_update_size: usize,
    /// Bytes a connection may have waiting to be written (beyond the
    /// buffer being written) before it is dropped as not reading: replies
    /// held for a commit and what waits behind them count, and so does
    /// [`BUFFER_COST`] for every waiting buffer.
    pub max_write_queue: usize,
    /// Address of the WebSocket listener (`--ws-port`), if any.
    pub ws_addr: Option<SocketAddr>,
    /// Certificate and key (`--tls-cert`, `--tls-key`): with them the TLS
    /// listeners are opened.
    pub tls_files: Option<TlsFiles>,
    /// Address of the Lichat-over-TLS listener (`--tls-port`), if any.
    pub tls_addr: Option<SocketAddr>,
    /// Address of the WebSocket-over-TLS listener (`--wss-port`), if any.
    pub wss_addr: Option<SocketAddr>,
    /// TLS handshakes in flight at most; connections to the TLS ports
    /// beyond that are closed at once.
    pub max_tls_handshakes: usize,
    /// `GET /metrics` answers with the metrics (`--metrics`).
    pub metrics: bool,
}

/// Where the certificate and key are (`--tls-cert`, `--tls-key`), PEM.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            addr: SocketAddr::from(([0, 0, 0, 0], 1111)),
            connection_limit: 100,
            max_update_size: 8 * 1024 * 1024,
            max_write_queue: 4 * 1024 * 1024,
            ws_addr: None,
            tls_files: None,
            tls_addr: None,
            wss_addr: None,
            max_tls_handshakes: 64,
            metrics: false,
        }
    }
}

/// Bytes the server may add to an update it relays: ` :clock` with 20
/// digits (28), ` :from` with a 32-character name of up to 4 bytes each
/// (137), and channel and target names respelled canonically (up to 128
/// more each), with room to spare.
pub const RELAY_ROOM: usize = 512;

impl Settings {
    /// §5.1.2 the longest update accepted from an established connection.
    pub fn max_input_size(&self) -> usize {
        self.max_update_size.saturating_sub(RELAY_ROOM)
    }
}

/// The longest update accepted before `connect` completes: a `connect`
/// update is small, and a stranger gets no more buffer than this.
pub(crate) const PRE_CONNECT_MAX: usize = 64 * 1024;
/// Size of the one read buffer shared by every connection.
pub(crate) const SCRATCH: usize = 64 * 1024;
/// Bytes read from one connection per loop turn before the others get
/// their turn (the rest is read on the next turn).
pub(crate) const READ_BUDGET: usize = 4 * SCRATCH;
/// Updates handled for one connection per loop turn: some cost
/// microseconds each (`create`), so bytes alone do not bound a turn.
pub(crate) const UPDATE_BUDGET: usize = 256;
/// Seconds a closing connection may take to drain its queue and see the
/// peer's end of stream.
pub(crate) const CLOSE_GRACE: u64 = 2;
/// How long shutdown waits for queued bytes to drain.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);
/// How long shutdown takes at most from the signal: the store's writer
/// gets what the drain left, and at least [`STORE_CLOSE_MIN`].
pub(crate) const SHUTDOWN_LIMIT: Duration = Duration::from_millis(950);
/// The least time the writer gets at shutdown for its last commit.
pub(crate) const STORE_CLOSE_MIN: Duration = Duration::from_millis(100);
/// How long commits may fail before the changes waiting for them are
/// reported as failed and undone, and new ones refused at once.
pub(crate) const STORE_FAILURE_GRACE: Duration = Duration::from_secs(5);
/// What one waiting buffer costs beyond its bytes, counted against
/// `--max-write-queue` so that many tiny buffers are bounded too: its slot
/// in the queue and, for a buffer of its own, the reference counts in front
/// of its bytes.
pub const BUFFER_COST: usize = 32;
/// Connections reset (closed with bytes still queued) per loop turn at
/// most; the rest wait for the next turns. The kernel frees a reset
/// socket's send buffer inside `close`, 20-40 µs for a full one: when many
/// are dropped in one turn, the others are not kept waiting for all of it.
pub(crate) const RESETS_PER_TURN: usize = 8;

pub(crate) const LISTENER: Token = Token(usize::MAX - 1);
pub(crate) const SIGNALS: Token = Token(usize::MAX - 2);
/// The store's writer (after a commit) and the hashing thread (with a
/// result) wake the loop through this token; mio allows one waker a poll.
pub(crate) const WAKE: Token = Token(usize::MAX - 3);

/// Tokens of the other listeners.
pub(crate) const WS_LISTENER: Token = Token(usize::MAX - 4);
pub(crate) const TLS_LISTENER: Token = Token(usize::MAX - 5);
pub(crate) const WSS_LISTENER: Token = Token(usize::MAX - 6);

/// Slots of the wheel of close deadlines: one per second.
const CLOSE_WHEEL_SLOTS: usize = 16;

/// What a listener serves: every one tells Lichat from HTTP/WebSocket by
/// the first bytes; the TLS ones speak TLS underneath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Port {
    /// `--port`: plain Lichat over TCP first.
    Lichat,
    /// `--ws-port`: WebSocket (or Lichat) over TCP.
    WebSocket,
    /// `--tls-port`, `--wss-port`: Lichat or WebSocket over TLS.
    Tls,
}

/// One listening socket.
pub(crate) struct Listener {
    socket: TcpListener,
    token: Token,
    port: Port,
    addr: SocketAddr,
}

/// The server: listener, connections, engine and timers.
pub struct Server {
    poll: Poll,
    listeners: Vec<Listener>,
    signals: Signals,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    engine: Engine,
    outbox: Outbox,
    /// The most sends the outbox held this turn, for
    /// [`Outbox::shrink_after_turn`].
    turn_sends: usize,
    /// Close deadlines of closing connections (the engine keeps the
    /// protocol's timers).
    close_wheel: Wheel<ConnId>,
    fired: Vec<ConnId>,
    settings: Settings,
    start: Instant,
    /// Lichat universal time at `start`: the loop's clock is this plus the
    /// monotonic time since, so timeouts never jump with the wall clock.
    start_universal: Time,
    scratch: Box<[u8]>,
    dirty: Vec<ConnId>,
    again: Vec<ConnId>,
    /// Downloads that used up their turn's budget (`download.rs`).
    refills: Vec<ConnId>,
    reap: Vec<ConnId>,
    store: Option<Store>,
    hasher: Hasher,
    /// `shirakumo.mess` §18 the search thread, with the store.
    searcher: Option<store::history::Searcher>,
    /// Searches answered at once, without a store: no history.
    unanswered: Vec<crate::engine::SearchDone>,
    waker: Arc<mio::Waker>,
    /// Connections with held replies.
    held_conns: Vec<ConnId>,
    /// Confirmations not yet settled, oldest first, with the ticket of the
    /// batch holding their change.
    confirming: VecDeque<(ConfirmId, Ticket)>,
    /// Commits have failed for [`STORE_FAILURE_GRACE`]: the engine refuses
    /// changes that need a confirmation.
    store_down: bool,
    /// The data directory, once the store is open: `shirakumo.mess` §12
    /// payloads are served from it.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    data_dir: Option<std::path::PathBuf>,
    shutting_down: bool,
    /// Connections holding a place under `--connection-limit`.
    counted: usize,
    /// Closing connections that have sent everything and wait for the
    /// peer's end of stream.
    lingering: usize,
    /// Accepting failed (out of descriptors, typically): not again before
    /// this tick.
    accept_retry: Option<u64>,
    refusals: RateLog,
    accept_failures: RateLog,
    /// Deadlines of connections being set up (TLS handshake, HTTP).
    setup_wheel: Wheel<ConnId>,
    /// TLS settings, replaced on SIGHUP; connections keep theirs.
    #[cfg(feature = "tls")]
    tls_config: Option<Arc<rustls::ServerConfig>>,
    /// TLS handshakes in flight.
    tls_handshakes: usize,
    frame_cache: transport::FrameCache,
    /// Counters for the metrics: bytes read and written, updates handed to
    /// the engine, buffers queued on connections, clients dropped at the
    /// write-queue limit.
    bytes_in: u64,
    bytes_out: u64,
    updates_in: u64,
    deliveries: u64,
    write_queue_drops: u64,
    started: Instant,
    /// With `--metrics`: commit latency and updates sent.
    metrics: Option<Box<metrics::Metrics>>,
}

/// The current Lichat universal time (§1): seconds since 1900.
pub fn universal_now() -> Time {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    unix + UNIX_TO_UNIVERSAL
}

impl Server {
    /// Binds the listener and sets up signal handling; the server does not
    /// accept until [`Server::run`].
    pub fn bind(settings: Settings, engine: Engine) -> io::Result<Server> {
        let poll = Poll::new()?;
        #[cfg(feature = "tls")]
        let tls_config = match &settings.tls_files {
            Some(files) => {
                Some(tls::load(files).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?)
            }
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        if settings.tls_files.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this server was built without TLS (feature tls)",
            ));
        }
        let mut wanted = vec![(settings.addr, LISTENER, Port::Lichat)];
        if let Some(addr) = settings.ws_addr {
            wanted.push((addr, WS_LISTENER, Port::WebSocket));
        }
        if settings.tls_files.is_some() {
            if let Some(addr) = settings.tls_addr {
                wanted.push((addr, TLS_LISTENER, Port::Tls));
            }
            if let Some(addr) = settings.wss_addr {
                wanted.push((addr, WSS_LISTENER, Port::Tls));
            }
        }
        let mut listeners = Vec::new();
        for (addr, token, port) in wanted {
            let mut socket = TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            let addr = socket.local_addr()?;
            poll.registry()
                .register(&mut socket, token, Interest::READABLE)?;
            listeners.push(Listener {
                socket,
                token,
                port,
                addr,
            });
        }
        let local_addr = listeners[0].addr;
        let settings_metrics = settings.metrics;
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        let hasher = Hasher::start(waker.clone())?;
        Ok(Server {
            poll,
            listeners,
            signals,
            local_addr,
            conns: Slab::new(),
            engine,
            outbox: Outbox::default(),
            turn_sends: 0,
            close_wheel: Wheel::new(CLOSE_WHEEL_SLOTS, 0),
            fired: Vec::new(),
            settings,
            start: Instant::now(),
            start_universal: universal_now(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            dirty: Vec::new(),
            again: Vec::new(),
            refills: Vec::new(),
            reap: Vec::new(),
            store: None,
            hasher,
            searcher: None,
            unanswered: Vec::new(),
            waker,
            held_conns: Vec::new(),
            confirming: VecDeque::new(),
            store_down: false,
            data_dir: None,
            shutting_down: false,
            counted: 0,
            lingering: 0,
            accept_retry: None,
            refusals: RateLog::new(Level::Info, "refused: connection limit reached"),
            accept_failures: RateLog::new(Level::Warn, "accept failed"),
            setup_wheel: Wheel::new(CLOSE_WHEEL_SLOTS, 0),
            #[cfg(feature = "tls")]
            tls_config,
            tls_handshakes: 0,
            frame_cache: transport::FrameCache::default(),
            bytes_in: 0,
            bytes_out: 0,
            updates_in: 0,
            deliveries: 0,
            write_queue_drops: 0,
            started: Instant::now(),
            metrics: settings_metrics.then(Box::default),
        })
    }

    /// Opens the durable store in `dir` and loads its profiles and
    /// channels into the engine. Without a store nothing survives a
    /// restart and confirmations are sent at once.
    pub fn open_store(&mut self, dir: &Path) -> Result<(), StoreError> {
        let (store, snapshot) = store::open(dir, self.waker.clone())?;
        info!(
            "loaded {} profile(s) and {} channel(s) from {}",
            snapshot.profiles.len(),
            snapshot.channels.len(),
            store.path().display()
        );
        self.engine.load(snapshot);
        store.set_history_days(self.engine.config().history_days);
        self.searcher = Some(store::history::Searcher::start(dir, self.waker.clone())?);
        self.store = Some(store);
        self.data_dir = Some(dir.to_owned());
        Ok(())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the listener for `port` (with port 0, the one
    /// picked): `"ws"`, `"tls"` or `"wss"`.
    pub fn listener_addr(&self, port: &str) -> Option<SocketAddr> {
        let token = match port {
            "ws" => WS_LISTENER,
            "tls" => TLS_LISTENER,
            "wss" => WSS_LISTENER,
            _ => LISTENER,
        };
        self.listeners
            .iter()
            .find(|l| l.token == token)
            .map(|l| l.addr)
    }

    /// Number of open connections, closing ones included.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The engine, e.g. to save its state after [`Server::run`] returns.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// `shirakumo.mess` §12: what the URLs of shared files start with
    /// (see [`Engine::set_link_url_prefix`]).
    pub fn set_link_url_prefix(&mut self, prefix: String) {
        self.engine.set_link_url_prefix(prefix);
    }

    /// Serves until SIGINT or SIGTERM; then sends `disconnect` to every
    /// connection, flushes for a bounded time and returns.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut shutdown_deadline: Option<Instant> = None;
        let mut signalled: Option<Instant> = None;
        loop {
            let timeout = self.poll_timeout(shutdown_deadline);
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.close_store(SHUTDOWN_LIMIT);
                return Err(e);
            }
            let instant = Instant::now();
            let tick = self.tick(instant);
            let now = self.universal(instant);
            // Connections that used up their budget last turn read on
            // after this turn's events; those that use it up now wait for
            // the next turn.
            let again = std::mem::take(&mut self.again);
            for event in events.iter() {
                match event.token() {
                    token @ (LISTENER | WS_LISTENER | TLS_LISTENER | WSS_LISTENER) => {
                        self.accept(Some(token), now, tick)
                    }
                    // Commits and password results are picked up below.
                    WAKE => {}
                    SIGNALS => {
                        let mut stop = false;
                        for signal in self.signals.pending() {
                            if signal == SIGHUP {
                                self.reload_tls();
                            } else {
                                stop = true;
                            }
                        }
                        if stop && !self.shutting_down {
                            info!("signal received: disconnecting every connection");
                            self.begin_shutdown(now);
                            shutdown_deadline = Some(instant + SHUTDOWN_GRACE);
                            signalled = Some(instant);
                        }
                    }
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(key, now, tick);
                        }
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                    }
                }
            }
            if self.accept_retry.is_some_and(|at| tick >= at) {
                self.accept(None, now, tick);
            }
            self.refusals.summarize(tick);
            self.accept_failures.summarize(tick);
            for key in again {
                self.read(key, now, tick);
            }
            self.finish_jobs(now, tick);
            self.timers(now, tick);
            self.engine.end_turn(&mut self.outbox);
            self.apply_outbox(tick);
            self.commit_and_release(now, tick);
            #[cfg(feature = "websocket")]
            self.resume_downloads();
            self.flush_dirty(now, tick);
            self.frame_cache.clear();
            self.outbox
                .shrink_after_turn(std::mem::take(&mut self.turn_sends));
            if let Some(m) = self.metrics.as_deref_mut() {
                m.end_turn();
            }
            self.reap();
            if let Some(deadline) = shutdown_deadline
                && (self.conns.is_empty() || Instant::now() >= deadline)
            {
                info!(
                    "shut down; {} connection(s) not fully flushed",
                    self.conns.len()
                );
                let left = signalled.map_or(SHUTDOWN_LIMIT, |at| {
                    (at + SHUTDOWN_LIMIT).saturating_duration_since(Instant::now())
                });
                self.close_store(left.max(STORE_CLOSE_MIN));
                return Ok(());
            }
        }
    }

    /// SIGHUP: reads the certificate and key again; new connections get
    /// them, open ones keep what they have. A bad file keeps the old ones.
    fn reload_tls(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(files) = &self.settings.tls_files {
            match tls::load(files) {
                Ok(config) => {
                    self.tls_config = Some(config);
                    info!(
                        "SIGHUP: reloaded the certificate from {}",
                        files.cert.display()
                    );
                }
                Err(e) => log::error!("SIGHUP: keeping the certificate in use: {e}"),
            }
            return;
        }
        info!("SIGHUP: no certificate to reload");
    }

    fn tick(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.start).as_secs()
    }

    /// The loop's Lichat universal time (§1) at `instant`.
    fn universal(&self, instant: Instant) -> Time {
        self.start_universal + self.tick(instant)
    }

    fn poll_timeout(&self, shutdown_deadline: Option<Instant>) -> Option<Duration> {
        if !self.again.is_empty()
            || !self.refills.is_empty()
            || !self.reap.is_empty()
            || !self.unanswered.is_empty()
        {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        if let Some(deadline) = shutdown_deadline {
            return Some(
                deadline
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(20)),
            );
        }
        // Wake at the next tick boundary: timers, expiry and accept retries
        // all have one-second resolution.
        let next_tick = self.start + Duration::from_secs(self.tick(now) + 1);
        Some(next_tick.saturating_duration_since(now))
    }

    /// Feeds finished password jobs to the engine; it says which
    /// connections are ready to be read again.
    fn finish_jobs(&mut self, now: Time, tick: u64) {
        while let Some((key, job, done)) = self.hasher.try_recv() {
            self.engine.job_done(key, job, done, now, &mut self.outbox);
            self.apply_outbox(tick);
        }
        let mut done = std::mem::take(&mut self.unanswered);
        done.extend(std::iter::from_fn(|| {
            self.searcher.as_ref().and_then(|s| s.try_recv())
        }));
        for result in done {
            self.engine.search_done(result, now, &mut self.outbox);
            self.apply_outbox(tick);
        }
    }

    /// Acts on the engine's output: connection events, password jobs,
    /// sends (through the commit gate) and closes.
    fn apply_outbox(&mut self, tick: u64) {
        self.turn_sends = self.turn_sends.max(self.outbox.sends.len());
        for job in self.outbox.jobs.drain(..) {
            self.hasher.submit(job);
        }
        for job in self.outbox.searches.drain(..) {
            match &self.searcher {
                Some(s) => s.submit(job),
                None => {
                    self.unanswered.push(crate::engine::SearchDone::empty(&job));
                }
            }
        }
        for event in self.outbox.events.drain(..) {
            let (ConnEvent::Established(key) | ConnEvent::Waiting(key) | ConnEvent::Ready(key)) =
                event;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match event {
                ConnEvent::Established(_) => {
                    conn.reader.set_max(self.settings.max_input_size());
                    debug!("connection {key}: established");
                }
                ConnEvent::Waiting(_) => conn.paused = true,
                ConnEvent::Ready(_) => {
                    conn.paused = false;
                    self.again.push(key);
                }
            }
        }
        // Without a store nothing waits: confirmations are settled at once.
        let ticket = self.store.as_ref().map(Store::next_ticket);
        if ticket.is_none() {
            self.outbox.changes.clear();
            if let Some(&(_, last)) = self.outbox.confirms.last() {
                self.engine.settle(last);
            }
            self.outbox.confirms.clear();
        }
        // A reply confirming a durable change waits for the commit of the
        // batch this turn's changes go into; anything sent to the same
        // connection after it waits too, so nothing is reordered. Sends to
        // other connections go out at once.
        let confirms = std::mem::take(&mut self.outbox.confirms);
        let mut next = 0;
        for (i, (key, bytes)) in self.outbox.sends.drain(..).enumerate() {
            let mut confirm = 0;
            if confirms.get(next).is_some_and(|c| c.0 == i) {
                confirm = confirms[next].1;
                next += 1;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.phase == Phase::Dead || bytes.is_empty() {
                continue;
            }
            let bytes = match conn.transport.as_deref() {
                None => bytes,
                Some(t) if !t.sends() => continue,
                #[cfg(feature = "websocket")]
                Some(t) if matches!(t.framing, transport::Framing::WebSocket(_)) => {
                    self.frame_cache.frame(&bytes)
                }
                Some(_) => bytes,
            };
            self.deliveries += 1;
            if let Some(m) = self.metrics.as_deref_mut() {
                m.sent(&bytes);
            }
            if confirm != 0 || !conn.held.is_empty() {
                if conn.held.is_empty() {
                    self.held_conns.push(key);
                }
                conn.held_bytes += bytes.len();
                conn.held.push_back(Held { bytes, confirm });
            } else {
                conn.queue.push(bytes);
            }
            // Flushing also checks the limit, which held bytes count in.
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
        if let Some(ticket) = ticket {
            for &(_, id) in &confirms {
                if self.confirming.back().is_none_or(|c| c.0 < id) {
                    self.confirming.push_back((id, ticket));
                }
            }
        }
        self.outbox.confirms = confirms;
        self.outbox.confirms.clear();
        let closes = std::mem::take(&mut self.outbox.closes);
        for &key in &closes {
            if let Some(conn) = self.conns.get(key) {
                debug!("connection {key} from {}: closed by the engine", conn.peer);
            }
            self.begin_close(key, tick);
        }
        self.outbox.closes = closes;
        self.outbox.closes.clear();
    }

    /// Fires the close deadlines of closing connections that ran out of
    /// time, and lets the engine do what is due: connect timeouts, pings,
    /// idle timeouts (§4.1, §4.2), expiry.
    fn timers(&mut self, now: Time, tick: u64) {
        let mut fired = std::mem::take(&mut self.fired);
        self.close_wheel.advance(tick, &mut fired);
        for key in fired.drain(..) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.close_timer = None;
                if conn.phase == Phase::Closing {
                    debug!("connection {key}: close deadline passed");
                    self.kill(key);
                }
            }
        }
        self.setup_wheel.advance(tick, &mut fired);
        for key in fired.drain(..) {
            self.setup_expired(key, now, tick);
        }
        self.fired = fired;
        if !self.shutting_down && now >= self.engine.next_deadline() {
            self.engine.handle_timeout(now, &mut self.outbox);
            self.apply_outbox(tick);
        }
    }

    fn begin_shutdown(&mut self, now: Time) {
        self.shutting_down = true;
        for mut listener in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut listener.socket);
        }
        for (_, conn) in self.conns.iter_mut() {
            if conn.phase == Phase::Open {
                conn.reason = Reason::Shutdown;
            }
        }
        self.engine.shutdown(now, &mut self.outbox);
        let tick = self.tick(Instant::now());
        self.apply_outbox(tick);
        // Anything the engine did not close is closed now.
        let open: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Open)
            .map(|(k, _)| k)
            .collect();
        for key in open {
            self.begin_close(key, tick);
        }
    }

    /// Frees connections marked dead during this turn, and those left
    /// from earlier turns; resets beyond [`RESETS_PER_TURN`] wait for the
    /// next turn (which then comes without waiting).
    fn reap(&mut self) {
        let mut resets = 0;
        let mut i = 0;
        while i < self.reap.len() {
            let key = self.reap[i];
            match self.conns.get(key) {
                Some(conn) if conn.phase == Phase::Dead => {
                    if conn.reset {
                        if resets == RESETS_PER_TURN {
                            i += 1;
                            continue;
                        }
                        resets += 1;
                    }
                }
                _ => {
                    self.reap.swap_remove(i);
                    continue;
                }
            }
            self.reap.swap_remove(i);
            let mut conn = self.conns.remove(key);
            if let Some(t) = conn.close_timer.take() {
                self.close_wheel.cancel(t);
            }
            if let Some(t) = conn.transport.as_deref_mut() {
                if let Some(id) = t.deadline.take() {
                    self.setup_wheel.cancel(id);
                }
                if t.handshaking {
                    self.tls_handshakes -= 1;
                }
            }
            let _ = self.poll.registry().deregister(&mut conn.socket);
            info!(
                "connection {key} from {} closed ({})",
                conn.peer, conn.reason
            );
        }
    }
}
