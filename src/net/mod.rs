//! The event loop: one thread, one `mio::Poll`, connections in a slab,
//! a timer wheel for the connect timeout, pings, idle timeouts and close
//! deadlines, and SIGINT/SIGTERM handling. It decides when things happen;
//! the engine decides what is sent.

pub mod hasher;
mod ratelog;
mod sockopt;

use crate::engine::{ConfirmId, ConnId, Engine, Outbox, Time, UNIX_TO_UNIVERSAL};
use crate::store::{self, Store, StoreError, Ticket};
use crate::timer::{TimerId, Wheel};
use crate::wire::{Object, ReadError, Reader};
use hasher::Hasher;
use log::{Level, debug, info, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use ratelog::RateLog;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings of the event loop; the defaults are the original server's.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// §4.1: seconds allowed between accepting a socket and its `connect`.
    pub connect_timeout: u64,
    /// §4.2: seconds without an update before the server sends a `ping`.
    pub ping_interval: u64,
    /// §4.2: seconds without an update before the connection is dropped
    /// with `connection-unstable`.
    pub idle_timeout: u64,
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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            addr: SocketAddr::from(([0, 0, 0, 0], 1111)),
            connect_timeout: 10,
            ping_interval: 60,
            idle_timeout: 120,
            connection_limit: 100,
            max_update_size: 8 * 1024 * 1024,
            max_write_queue: 4 * 1024 * 1024,
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
const PRE_CONNECT_MAX: usize = 64 * 1024;
/// Size of the one read buffer shared by every connection.
const SCRATCH: usize = 64 * 1024;
/// Bytes read from one connection per loop turn before the others get
/// their turn (the rest is read on the next turn).
const READ_BUDGET: usize = 4 * SCRATCH;
/// Updates handled for one connection per loop turn: some cost
/// microseconds each (`create`), so bytes alone do not bound a turn.
const UPDATE_BUDGET: usize = 256;
/// Buffers handed to one `writev`.
const MAX_IOV: usize = 64;
/// Seconds a closing connection may take to drain its queue and see the
/// peer's end of stream.
const CLOSE_GRACE: u64 = 2;
/// How long shutdown waits for queued bytes to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);
/// How long shutdown takes at most from the signal: the store's writer
/// gets what the drain left, and at least [`STORE_CLOSE_MIN`].
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(950);
/// The least time the writer gets at shutdown for its last commit.
const STORE_CLOSE_MIN: Duration = Duration::from_millis(100);
/// How long commits may fail before the changes waiting for them are
/// reported as failed and undone, and new ones refused at once.
const STORE_FAILURE_GRACE: Duration = Duration::from_secs(5);
/// What one waiting buffer costs beyond its bytes, counted against
/// `--max-write-queue` so that many tiny buffers are bounded too: its slot
/// in the queue and, for a buffer of its own, the reference counts in front
/// of its bytes.
pub const BUFFER_COST: usize = 32;
/// Slots of the timer wheel: one per second, timers further out wait for
/// their revolution.
const WHEEL_SLOTS: usize = 1024;
/// A write queue that held more buffers than this is given back when empty.
const KEEP_QUEUE: usize = 16;
/// Connections reset (closed with bytes still queued) per loop turn at
/// most; the rest wait for the next turns. The kernel frees a reset
/// socket's send buffer inside `close`, 20-40 µs for a full one: when many
/// are dropped in one turn, the others are not kept waiting for all of it.
const RESETS_PER_TURN: usize = 8;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The store's writer (after a commit) and the hashing thread (with a
/// result) wake the loop through this token; mio allows one waker a poll.
const WAKE: Token = Token(usize::MAX - 3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading and writing normally.
    Open,
    /// The engine is done with it: drain the queue, shut down the write
    /// side, wait for the peer's end of stream (bounded by a deadline).
    Closing,
    /// Freed at the end of this loop turn; events for it are ignored.
    Dead,
}

/// What a connection holds of the server's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Open, or closing with bytes still to send: one of the
    /// `--connection-limit` places (§4.1.1).
    Counted,
    /// Closing with everything sent and the write side shut down, waiting
    /// for the peer's end of stream so that it sees an orderly close. Does
    /// not count against the limit; at most as many as the limit linger.
    Lingering,
    /// Dead: holds nothing.
    Released,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Connect timeout, ping or idle check, whichever is next.
    Check,
    /// A closing connection ran out of time.
    CloseDeadline,
}

/// One accepted socket. Holds no preallocated buffers: an idle connection
/// costs this struct and its reader's empty tail.
struct Conn {
    socket: TcpStream,
    peer: SocketAddr,
    reader: Reader,
    queue: VecDeque<Rc<[u8]>>,
    /// Bytes of the front buffer already written.
    offset: usize,
    /// Bytes queued and not yet written.
    pending: usize,
    state: State,
    place: Place,
    /// Dead with bytes still queued: closing it resets the connection.
    reset: bool,
    established: bool,
    writable_interest: bool,
    dirty: bool,
    peer_eof: bool,
    opened: u64,
    /// Tick of the last complete update received.
    last_activity: u64,
    /// `last_activity` when the last ping was sent, so one ping goes out
    /// per quiet spell.
    pinged_for: Option<u64>,
    timer: Option<TimerId>,
    reason: Reason,
    /// Replies waiting for the commit of the durable change they confirm,
    /// and whatever was sent to this connection after them.
    held: VecDeque<Held>,
    /// Bytes in `held`.
    held_bytes: usize,
}

/// A buffer held back from the write queue.
struct Held {
    bytes: Rc<[u8]>,
    /// The confirmation this buffer is (released once settled), or 0 for a
    /// buffer that only keeps its place behind one.
    confirm: ConfirmId,
}

impl Conn {
    /// What `--max-write-queue` bounds: the bytes waiting beyond the buffer
    /// being written, held ones included, and [`BUFFER_COST`] for each
    /// waiting buffer.
    fn waiting(&self) -> usize {
        let head = self.queue.front().map_or(0, |b| b.len() - self.offset);
        let buffers = self.queue.len().saturating_sub(1) + self.held.len();
        self.pending - head + self.held_bytes + buffers * BUFFER_COST
    }
}

/// Why a connection went away, for the log line that reports its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    /// The engine closed it: `disconnect`, a failed `connect`, ...
    Engine,
    PeerClosed,
    Error,
    WriteQueue,
    ConnectTimeout,
    Idle,
    Shutdown,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Engine => "by the server",
            Reason::PeerClosed => "by the peer",
            Reason::Error => "socket error",
            Reason::WriteQueue => "write queue over its limit",
            Reason::ConnectTimeout => "no connect in time",
            Reason::Idle => "idle timeout",
            Reason::Shutdown => "server shutdown",
        })
    }
}

/// The server: listener, connections, engine and timers.
pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    signals: Signals,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    engine: Engine,
    outbox: Outbox,
    wheel: Wheel<(ConnId, Kind)>,
    fired: Vec<(ConnId, Kind)>,
    settings: Settings,
    start: Instant,
    scratch: Box<[u8]>,
    dirty: Vec<ConnId>,
    again: Vec<ConnId>,
    reap: Vec<ConnId>,
    next_expire: Time,
    store: Option<Store>,
    hasher: Hasher,
    waker: Arc<mio::Waker>,
    /// Connections with held replies.
    held_conns: Vec<ConnId>,
    /// Confirmations not yet settled, oldest first, with the ticket of the
    /// batch holding their change.
    confirming: VecDeque<(ConfirmId, Ticket)>,
    /// Commits have failed for [`STORE_FAILURE_GRACE`]: the engine refuses
    /// changes that need a confirmation.
    store_down: bool,
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
        let mut listener = TcpListener::bind(settings.addr)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        let hasher = Hasher::start(waker.clone())?;
        let now = universal_now();
        Ok(Server {
            poll,
            listener: Some(listener),
            signals,
            local_addr,
            conns: Slab::new(),
            engine,
            outbox: Outbox::default(),
            wheel: Wheel::new(WHEEL_SLOTS, 0),
            fired: Vec::new(),
            settings,
            start: Instant::now(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            dirty: Vec::new(),
            again: Vec::new(),
            reap: Vec::new(),
            next_expire: now,
            store: None,
            hasher,
            waker,
            held_conns: Vec::new(),
            confirming: VecDeque::new(),
            store_down: false,
            shutting_down: false,
            counted: 0,
            lingering: 0,
            accept_retry: None,
            refusals: RateLog::new(Level::Info, "refused: connection limit reached"),
            accept_failures: RateLog::new(Level::Warn, "accept failed"),
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
        self.store = Some(store);
        Ok(())
    }

    /// Hands this turn's durable changes to the store (one batch, one
    /// ticket), settles the confirmations whose commit has completed and
    /// releases the replies behind them. Once commits have failed for
    /// [`STORE_FAILURE_GRACE`], the confirmations still waiting are
    /// withdrawn: the engine undoes their changes and each reply is
    /// replaced by a failure naming the cause.
    fn commit_and_release(&mut self, now: Time, tick: u64) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        // A confirmation always waits for a batch that is submitted, even
        // if that batch turned out empty.
        let unsubmitted = self
            .confirming
            .back()
            .is_some_and(|c| c.1 >= store.next_ticket());
        if !self.outbox.changes.is_empty() || unsubmitted {
            store.submit(std::mem::take(&mut self.outbox.changes));
        }
        let committed = store.committed();
        let mut settled = None;
        while let Some(&(id, ticket)) = self.confirming.front()
            && ticket <= committed
        {
            settled = Some(id);
            self.confirming.pop_front();
        }
        if let Some(id) = settled {
            self.engine.settle(id);
        }
        let down = store
            .failing_for()
            .is_some_and(|d| d >= STORE_FAILURE_GRACE);
        if down != self.store_down {
            self.store_down = down;
            let cause = if down { store.failure() } else { None };
            match &cause {
                Some(c) => warn!(
                    "database {}: commits have failed for {} s ({c}); changes that need a \
                     confirmation are refused until commits succeed",
                    store.path().display(),
                    STORE_FAILURE_GRACE.as_secs()
                ),
                None => info!(
                    "database {}: commits succeed again; changes are accepted",
                    store.path().display()
                ),
            }
            self.engine.set_store_failure(cause);
        }
        if down && !self.confirming.is_empty() {
            self.withdraw_confirmations(now, tick);
        }
        self.release();
    }

    /// Moves held buffers whose confirmation is settled (and those behind
    /// them that only kept their place) to the write queues.
    fn release(&mut self) {
        if self.held_conns.is_empty() {
            return;
        }
        let oldest = self.confirming.front().map_or(ConfirmId::MAX, |c| c.0);
        let mut waiting = std::mem::take(&mut self.held_conns);
        waiting.retain(|&key| {
            let Some(conn) = self.conns.get_mut(key) else {
                return false;
            };
            let mut moved = false;
            while conn
                .held
                .front()
                .is_some_and(|h| h.confirm == 0 || h.confirm < oldest)
            {
                if let Some(h) = conn.held.pop_front() {
                    conn.held_bytes -= h.bytes.len();
                    conn.pending += h.bytes.len();
                    conn.queue.push_back(h.bytes);
                    moved = true;
                }
            }
            if moved && !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
            if conn.held.is_empty() {
                conn.held = VecDeque::new();
                false
            } else {
                true
            }
        });
        self.held_conns = waiting;
    }

    /// The store cannot commit: every unsettled confirmation is withdrawn.
    /// On the connection that asked, the held reply becomes the failure
    /// (keeping its place); its copies on the user's other connections
    /// are dropped. The engine's undo (its `leave`s and durable changes)
    /// is queued like any other output.
    fn withdraw_confirmations(&mut self, now: Time, tick: u64) {
        let cause = self
            .store
            .as_ref()
            .and_then(Store::failure)
            .unwrap_or_else(|| "the database cannot be written".to_owned());
        let first = self.confirming.front().map_or(ConfirmId::MAX, |c| c.0);
        self.confirming.clear();
        let refusals = self.engine.fail_pending(&cause, now, &mut self.outbox);
        for &key in &self.held_conns {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let mut bytes = conn.held_bytes;
            conn.held.retain_mut(|h| {
                if h.confirm < first {
                    return true;
                }
                bytes -= h.bytes.len();
                match refusals.binary_search_by_key(&h.confirm, |r| r.id) {
                    Ok(i) if refusals[i].conn == key => {
                        h.bytes = refusals[i].failure.clone();
                        h.confirm = 0;
                        bytes += h.bytes.len();
                        true
                    }
                    _ => false,
                }
            });
            conn.held_bytes = bytes;
        }
        self.apply_outbox(tick);
    }

    /// Writes the last changes and waits at most `limit` for the writer to
    /// commit them (it gives up at once while commits fail, logging what
    /// was not saved).
    fn close_store(&mut self, limit: Duration) {
        if let Some(mut store) = self.store.take() {
            if !self.outbox.changes.is_empty() {
                store.submit(std::mem::take(&mut self.outbox.changes));
            }
            store.close_within(limit);
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of open connections, closing ones included.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The engine, e.g. to save its state after [`Server::run`] returns.
    pub fn engine(&self) -> &Engine {
        &self.engine
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
            let now = universal_now();
            // Connections that used up their budget last turn read on
            // after this turn's events; those that use it up now wait for
            // the next turn.
            let again = std::mem::take(&mut self.again);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now, tick),
                    // Commits and password results are picked up below.
                    WAKE => {}
                    SIGNALS => {
                        if self.signals.pending().next().is_some() && !self.shutting_down {
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
                self.accept(now, tick);
            }
            self.refusals.summarize(tick);
            self.accept_failures.summarize(tick);
            for key in again {
                self.read(key, now, tick);
            }
            self.finish_jobs(now, tick);
            self.timers(now, tick);
            if now >= self.next_expire && !self.shutting_down {
                self.next_expire = self.engine.expire(now, &mut self.outbox);
                self.apply_outbox(tick);
            }
            self.commit_and_release(now, tick);
            self.flush_dirty(now, tick);
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

    fn tick(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.start).as_secs()
    }

    fn poll_timeout(&self, shutdown_deadline: Option<Instant>) -> Option<Duration> {
        if !self.again.is_empty() || !self.reap.is_empty() {
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

    /// Accepts every pending connection. After a failure (out of
    /// descriptors) the listener's events are ignored until the retry one
    /// tick later, which accepts whatever queued up meanwhile: the loop
    /// neither spins nor retries on every turn.
    fn accept(&mut self, now: Time, tick: u64) {
        if self.shutting_down || self.accept_retry.is_some_and(|at| tick < at) {
            return;
        }
        self.accept_retry = None;
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return;
            };
            match listener.accept() {
                Ok((mut socket, peer)) => {
                    if self.counted >= self.settings.connection_limit {
                        self.refuse(socket, peer, now, tick);
                        continue;
                    }
                    if let Err(e) = socket.set_nodelay(true) {
                        debug!("{peer}: cannot set TCP_NODELAY: {e}");
                    }
                    if let Err(e) = sockopt::cap_send_buffer(&socket) {
                        debug!("{peer}: cannot set SO_SNDBUF: {e}");
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut socket, Token(key), Interest::READABLE)
                    {
                        warn!("{peer}: cannot register the socket: {e}");
                        continue;
                    }
                    let timer = self
                        .wheel
                        .insert(tick + self.settings.connect_timeout, (key, Kind::Check));
                    entry.insert(Conn {
                        socket,
                        peer,
                        reader: Reader::new(PRE_CONNECT_MAX.min(self.settings.max_input_size())),
                        queue: VecDeque::new(),
                        offset: 0,
                        pending: 0,
                        state: State::Open,
                        place: Place::Counted,
                        reset: false,
                        established: false,
                        writable_interest: false,
                        dirty: false,
                        peer_eof: false,
                        opened: tick,
                        last_activity: tick,
                        pinged_for: None,
                        timer: Some(timer),
                        reason: Reason::Engine,
                        held: VecDeque::new(),
                        held_bytes: 0,
                    });
                    self.counted += 1;
                    self.engine.open(key, peer.ip(), now);
                    info!("connection {key} opened from {peer}");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer gave up before it was accepted: the next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors or the like: try again next tick.
                    if self.accept_failures.event(tick) {
                        warn!("accept failed: {e}; retrying once a second");
                    }
                    self.accept_retry = Some(tick + 1);
                    break;
                }
            }
        }
    }

    /// §4.1.1: a connection over the limit gets `too-many-connections` and
    /// is closed at once, without building a connection. Best effort: one
    /// nonblocking write, then the write side is shut down.
    fn refuse(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Time, tick: u64) {
        let refusal = self.engine.too_many_connections(now);
        let _ = socket.write(&refusal);
        let _ = socket.shutdown(Shutdown::Write);
        if self.refusals.event(tick) {
            info!("refused {peer}: connection limit reached");
        }
    }

    /// Reads what the socket has (up to the per-turn budgets), feeds the
    /// connection's reader and hands each update to the engine. Reading
    /// stops at the update that makes the connection wait for a password
    /// hash, that closes it, or that uses up its update budget; the bytes
    /// after it stay unparsed in the reader until it goes on.
    fn read(&mut self, key: ConnId, now: Time, tick: u64) {
        let mut bytes_left = READ_BUDGET;
        let mut updates_left = UPDATE_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.state == State::Dead {
                return;
            }
            if conn.state == State::Open {
                if self.engine.is_waiting(key) {
                    // finish_jobs reads on once the hash is in.
                    return;
                }
                if conn.reader.is_parked() {
                    let engine = &mut self.engine;
                    let outbox = &mut self.outbox;
                    let mut got = false;
                    conn.reader.resume(|update| {
                        got = true;
                        hand_over(engine, outbox, key, update, now, &mut updates_left)
                    });
                    let parked = conn.reader.is_parked();
                    if got {
                        conn.last_activity = tick;
                        self.note_established(key, tick);
                    }
                    self.apply_outbox(tick);
                    if parked {
                        self.again_unless_waiting(key);
                        return;
                    }
                    continue;
                }
            }
            if conn.peer_eof {
                return;
            }
            match conn.socket.read(&mut self.scratch) {
                Ok(0) => {
                    conn.peer_eof = true;
                    match conn.state {
                        State::Open => {
                            debug!("connection {key}: end of stream from {}", conn.peer);
                            self.lost(key, now, tick, Reason::PeerClosed);
                        }
                        State::Closing => {
                            if conn.queue.is_empty() {
                                self.kill(key);
                            }
                        }
                        State::Dead => {}
                    }
                    return;
                }
                Ok(n) => {
                    bytes_left = bytes_left.saturating_sub(n);
                    if conn.state != State::Open {
                        // Closing: discard until the peer's end of stream,
                        // within the same per-turn budget.
                        if bytes_left == 0 {
                            self.again.push(key);
                            return;
                        }
                        continue;
                    }
                    let engine = &mut self.engine;
                    let outbox = &mut self.outbox;
                    let mut got = false;
                    conn.reader.feed_until(&self.scratch[..n], |update| {
                        got = true;
                        hand_over(engine, outbox, key, update, now, &mut updates_left)
                    });
                    let parked = conn.reader.is_parked();
                    if got {
                        conn.last_activity = tick;
                        self.note_established(key, tick);
                    }
                    self.apply_outbox(tick);
                    if parked {
                        self.again_unless_waiting(key);
                        return;
                    }
                    if bytes_left == 0 || updates_left == 0 {
                        self.again.push(key);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {key}: read failed: {e}");
                    let state = conn.state;
                    if state == State::Open {
                        self.lost(key, now, tick, Reason::Error);
                    } else {
                        self.kill(key);
                    }
                    return;
                }
            }
        }
    }

    /// A connection stopped reading with bytes parked: it goes on next
    /// turn, or once its password hash is in (finish_jobs).
    fn again_unless_waiting(&mut self, key: ConnId) {
        let open = self.conns.get(key).is_some_and(|c| c.state == State::Open);
        if open && !self.engine.is_waiting(key) {
            self.again.push(key);
        }
    }

    /// Once the engine has established a connection: the full update size
    /// applies, and the timer turns from connect timeout to ping checks.
    fn note_established(&mut self, key: ConnId, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.established || !self.engine.is_established(key) {
            return;
        }
        conn.established = true;
        conn.reader.set_max(self.settings.max_input_size());
        debug!("connection {key}: established");
        let at = tick + self.settings.ping_interval;
        if let Some(old) = conn.timer.take() {
            self.wheel.cancel(old);
        }
        conn.timer = Some(self.wheel.insert(at, (key, Kind::Check)));
    }

    /// Feeds finished password jobs to the engine and resumes reading the
    /// connections that no longer wait.
    fn finish_jobs(&mut self, now: Time, tick: u64) {
        while let Some((key, job, done)) = self.hasher.try_recv() {
            self.engine.job_done(key, job, done, now, &mut self.outbox);
            self.note_established(key, tick);
            self.apply_outbox(tick);
            if self.conns.contains(key) && !self.engine.is_waiting(key) {
                self.again.push(key);
            }
        }
    }

    /// The net layer lost or dropped an open connection: tell the engine
    /// (§4.3 steps 3–4) and close the socket.
    fn lost(&mut self, key: ConnId, now: Time, tick: u64, reason: Reason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        debug!("connection {key} from {}: {reason}", conn.peer);
        conn.reason = reason;
        match reason {
            // The peer only closed its side: flush what is queued, then
            // close (bounded by the close deadline).
            Reason::PeerClosed => self.begin_close(key, tick),
            _ => self.kill(key),
        }
        self.engine.closed(key, now, &mut self.outbox);
        self.apply_outbox(tick);
    }

    /// Marks a connection for freeing at the end of the turn; its place
    /// is free at once. One that still had bytes queued (dropped for not
    /// reading, or out of time to drain) is reset when closed, so that the
    /// kernel does not keep its send buffer for a peer that does not read.
    fn kill(&mut self, key: ConnId) {
        if let Some(conn) = self.conns.get_mut(key)
            && conn.state != State::Dead
        {
            if conn.pending > 0 {
                conn.reset = true;
                if let Err(e) = sockopt::reset_on_close(&conn.socket) {
                    debug!("connection {key}: cannot set SO_LINGER: {e}");
                }
            }
            conn.state = State::Dead;
            conn.queue = VecDeque::new();
            conn.held = VecDeque::new();
            conn.held_bytes = 0;
            conn.pending = 0;
            match conn.place {
                Place::Counted => self.counted -= 1,
                Place::Lingering => self.lingering -= 1,
                Place::Released => {}
            }
            conn.place = Place::Released;
            self.reap.push(key);
        }
    }

    /// A closing connection has sent its last bytes: shut down the write
    /// side and give its place back (§4.1.1). The socket lingers until the
    /// peer's end of stream or the close deadline, so that the peer sees an
    /// orderly close, unless the peer is gone already, the server is
    /// shutting down, or as many as the connection limit linger already
    /// (the descriptors they hold stay bounded).
    fn sent_last_bytes(&mut self, key: ConnId) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.place == Place::Counted {
            let _ = conn.socket.shutdown(Shutdown::Write);
            conn.place = Place::Lingering;
            self.counted -= 1;
            self.lingering += 1;
        }
        if conn.peer_eof || self.shutting_down || self.lingering > self.settings.connection_limit {
            self.kill(key);
        }
    }

    /// Starts closing: drain the queue, then shut down and wait briefly for
    /// the peer's end of stream.
    fn begin_close(&mut self, key: ConnId, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        conn.state = State::Closing;
        // Whatever it sent after the update that closed it is not read.
        conn.reader = Reader::new(0);
        if let Some(old) = conn.timer.take() {
            self.wheel.cancel(old);
        }
        conn.timer = Some(
            self.wheel
                .insert(tick + CLOSE_GRACE, (key, Kind::CloseDeadline)),
        );
        self.mark_dirty(key);
    }

    fn mark_dirty(&mut self, key: ConnId) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.dirty
            && conn.state != State::Dead
        {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Queues the engine's sends and starts the closes it asked for.
    fn apply_outbox(&mut self, tick: u64) {
        for job in self.outbox.jobs.drain(..) {
            self.hasher.submit(job);
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
            if conn.state == State::Dead || bytes.is_empty() {
                continue;
            }
            if confirm != 0 || !conn.held.is_empty() {
                if conn.held.is_empty() {
                    self.held_conns.push(key);
                }
                conn.held_bytes += bytes.len();
                conn.held.push_back(Held { bytes, confirm });
            } else {
                conn.pending += bytes.len();
                conn.queue.push_back(bytes);
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

    /// Writes every connection with pending bytes; repeats while dropping a
    /// connection makes the engine send more.
    fn flush_dirty(&mut self, now: Time, tick: u64) {
        while !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            for &key in &dirty {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.dirty = false;
                }
                self.flush(key, now, tick);
            }
            if self.dirty.is_empty() {
                // Keep the allocation for the next turn.
                self.dirty = dirty;
                self.dirty.clear();
            }
        }
    }

    fn flush(&mut self, key: ConnId, now: Time, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == State::Dead {
            return;
        }
        while !conn.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (i, buf) in conn.queue.iter().take(MAX_IOV).enumerate() {
                let start = if i == 0 { conn.offset } else { 0 };
                slices[i] = IoSlice::new(&buf[start..]);
                count = i + 1;
            }
            // One buffer goes out with `send`, which skips the iovec import
            // and file-position lock that `writev` costs on every call.
            let written = if count == 1 {
                conn.socket.write(&slices[0])
            } else {
                conn.socket.write_vectored(&slices[..count])
            };
            match written {
                Ok(0) => {
                    debug!("connection {key}: write returned 0");
                    self.write_failed(key, now, tick);
                    return;
                }
                Ok(mut n) => {
                    conn.pending -= n;
                    while n > 0 {
                        let Some(front) = conn.queue.front() else {
                            break;
                        };
                        let rest = front.len() - conn.offset;
                        if n >= rest {
                            n -= rest;
                            conn.queue.pop_front();
                            conn.offset = 0;
                        } else {
                            conn.offset += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {key}: write failed: {e}");
                    self.write_failed(key, now, tick);
                    return;
                }
            }
        }
        let waiting = conn.waiting();
        if waiting > self.settings.max_write_queue {
            warn!(
                "connection {key} from {}: {waiting} bytes waiting to be written ({} held for a \
                 commit), over the limit of {}; dropped",
                conn.peer, conn.held_bytes, self.settings.max_write_queue
            );
            match conn.state {
                State::Open => self.lost(key, now, tick, Reason::WriteQueue),
                _ => self.kill(key),
            }
            return;
        }
        if conn.queue.is_empty() {
            if conn.queue.capacity() > KEEP_QUEUE {
                conn.queue = VecDeque::new();
            }
            if conn.writable_interest {
                conn.writable_interest = false;
                let _ = self.poll.registry().reregister(
                    &mut conn.socket,
                    Token(key),
                    Interest::READABLE,
                );
            }
            if conn.state == State::Closing && conn.held.is_empty() {
                self.sent_last_bytes(key);
            }
            return;
        }
        if !conn.writable_interest {
            conn.writable_interest = true;
            let _ = self.poll.registry().reregister(
                &mut conn.socket,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            );
        }
    }

    fn write_failed(&mut self, key: ConnId, now: Time, tick: u64) {
        match self.conns.get(key).map(|c| c.state) {
            Some(State::Open) => self.lost(key, now, tick, Reason::Error),
            Some(State::Closing) => self.kill(key),
            _ => {}
        }
    }

    /// Fires due timers: connect timeout, ping, idle timeout, close
    /// deadlines. Each connection has at most one timer; activity does not
    /// touch it, the check re-arms it from the last activity instead.
    fn timers(&mut self, now: Time, tick: u64) {
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(tick, &mut fired);
        for (key, kind) in fired.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.timer = None;
            match kind {
                Kind::CloseDeadline => {
                    if conn.state == State::Closing {
                        debug!("connection {key}: close deadline passed");
                        self.kill(key);
                    }
                }
                Kind::Check => {
                    if conn.state == State::Open {
                        self.check(key, now, tick);
                        self.apply_outbox(tick);
                    }
                }
            }
        }
        self.fired = fired;
    }

    fn check(&mut self, key: ConnId, now: Time, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let s = &self.settings;
        if !conn.established {
            if self.engine.is_established(key) {
                conn.established = true;
                conn.reader.set_max(s.max_input_size());
            } else {
                let deadline = conn.opened + s.connect_timeout;
                if tick >= deadline {
                    debug!("connection {key} from {}: no connect in time", conn.peer);
                    conn.reason = Reason::ConnectTimeout;
                    self.engine.connect_timeout(key, now, &mut self.outbox);
                    self.ensure_closed(key, now);
                } else {
                    conn.timer = Some(self.wheel.insert(deadline, (key, Kind::Check)));
                }
                return;
            }
        }
        let quiet = tick.saturating_sub(conn.last_activity);
        if quiet >= s.idle_timeout {
            debug!("connection {key} from {}: idle for {quiet} s", conn.peer);
            conn.reason = Reason::Idle;
            self.engine.idle_timeout(key, now, &mut self.outbox);
            self.ensure_closed(key, now);
        } else if quiet >= s.ping_interval {
            if conn.pinged_for != Some(conn.last_activity) {
                conn.pinged_for = Some(conn.last_activity);
                debug!("connection {key}: ping after {quiet} s");
                self.engine.ping(key, now, &mut self.outbox);
            }
            let at = conn.last_activity + s.idle_timeout;
            conn.timer = Some(self.wheel.insert(at, (key, Kind::Check)));
        } else {
            let at = conn.last_activity + s.ping_interval.min(s.idle_timeout);
            conn.timer = Some(self.wheel.insert(at, (key, Kind::Check)));
        }
    }

    /// After a timeout the engine is expected to list the connection in its
    /// closes; if it did not, forget it in the engine and close it anyway.
    fn ensure_closed(&mut self, key: ConnId, now: Time) {
        if !self.outbox.closes.contains(&key) {
            debug!("connection {key}: the engine kept a timed-out connection; closing it");
            self.engine.closed(key, now, &mut self.outbox);
            self.outbox.closes.push(key);
        }
    }

    fn begin_shutdown(&mut self, now: Time) {
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for (_, conn) in self.conns.iter_mut() {
            if conn.state == State::Open {
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
            .filter(|(_, c)| c.state == State::Open)
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
                Some(conn) if conn.state == State::Dead => {
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
            if let Some(t) = conn.timer.take() {
                self.wheel.cancel(t);
            }
            let _ = self.poll.registry().deregister(&mut conn.socket);
            info!(
                "connection {key} from {} closed ({})",
                conn.peer, conn.reason
            );
        }
    }
}

/// Hands one update to the engine; says whether to read on: not once the
/// connection waits for a password hash, is closed, or has used up its
/// update budget for this turn.
fn hand_over(
    engine: &mut Engine,
    outbox: &mut Outbox,
    key: ConnId,
    update: Result<Object, ReadError>,
    now: Time,
    updates_left: &mut usize,
) -> ControlFlow<()> {
    log_update(key, &update);
    engine.handle(key, update, now, outbox);
    *updates_left = updates_left.saturating_sub(1);
    if *updates_left == 0 || engine.is_waiting(key) || !engine.is_open(key) {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

fn log_update(key: ConnId, update: &Result<Object, ReadError>) {
    match update {
        Ok(object) => trace!("connection {key}: received {object:?}"),
        Err(e) => debug!("connection {key}: unreadable update: {e}"),
    }
}
