//! One accepted connection: its socket, reader, write queue and held
//! replies, its state from open to dead, and its read and write sides.

use super::transport::Transport;
use super::write_queue::WriteQueue;
use super::{BUFFER_COST, CLOSE_GRACE, READ_BUDGET, Server, UPDATE_BUDGET, sockopt};
use crate::engine::{ConfirmId, ConnEvent, ConnId, Engine, Outbox, Time};
use crate::timer::TimerId;
use crate::wire::{Object, ReadError, Reader};
use log::{debug, trace, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::ops::ControlFlow;
use std::rc::Rc;

/// Where a connection is between accepting and freeing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) enum Place {
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

/// One accepted socket. Holds no preallocated buffers: an idle connection
/// costs this struct and its reader's empty tail.
pub(super) struct Conn {
    pub(super) socket: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) reader: Reader,
    pub(super) queue: WriteQueue,
    pub(super) phase: Phase,
    pub(super) place: Place,
    /// Dead with bytes still queued: closing it resets the connection.
    pub(super) reset: bool,
    /// The engine waits for this connection's password hash: its updates
    /// stay unread until the engine says it is ready (§4.1.7, §5.2).
    pub(super) paused: bool,
    pub(super) writable_interest: bool,
    pub(super) dirty: bool,
    pub(super) peer_eof: bool,
    /// The close deadline of a closing connection.
    pub(super) close_timer: Option<TimerId>,
    pub(super) reason: Reason,
    /// Replies waiting for the commit of the durable change they confirm,
    /// and whatever was sent to this connection after them.
    pub(super) held: VecDeque<Held>,
    /// Bytes in `held`.
    pub(super) held_bytes: usize,
    /// TLS and framing state of a connection that is not plain Lichat
    /// over TCP (`transport.rs`); plain ones have none.
    pub(super) transport: Option<Box<Transport>>,
    /// Nothing was read yet on a plain connection: its first byte may
    /// open HTTP instead of Lichat.
    pub(super) sniff: bool,
}

/// A buffer held back from the write queue.
pub(super) struct Held {
    pub(super) bytes: Rc<[u8]>,
    /// The confirmation this buffer is (released once settled), or 0 for a
    /// buffer that only keeps its place behind one.
    pub(super) confirm: ConfirmId,
}

impl Conn {
    /// What `--max-write-queue` bounds: the bytes waiting beyond the buffer
    /// being written, held ones included, and [`BUFFER_COST`] for each
    /// waiting buffer.
    pub(super) fn waiting(&self) -> usize {
        let (bytes, buffers) = self.queue.waiting();
        bytes + self.held_bytes + (buffers + self.held.len()) * BUFFER_COST
    }
}

/// Why a connection went away, for the log line that reports its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "tls", feature = "websocket")), allow(dead_code))]
pub(super) enum Reason {
    /// The engine closed it: `disconnect`, a failed `connect`, ...
    Engine,
    PeerClosed,
    Error,
    WriteQueue,
    Shutdown,
    /// An HTTP request was answered.
    Answered,
    /// The peer broke TLS.
    Tls,
    /// The peer broke the WebSocket protocol.
    WebSocket,
    /// TLS handshake, first bytes or HTTP request not done in time.
    Setup,
    /// A download made no progress for its deadline.
    Stalled,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Engine => "by the server",
            Reason::PeerClosed => "by the peer",
            Reason::Error => "socket error",
            Reason::WriteQueue => "write queue over its limit",
            Reason::Shutdown => "server shutdown",
            Reason::Answered => "HTTP request answered",
            Reason::Tls => "TLS error",
            Reason::WebSocket => "WebSocket protocol error",
            Reason::Setup => "not set up in time",
            Reason::Stalled => "download stalled",
        })
    }
}

impl Server {
    /// Reads what the socket has (up to the per-turn budgets), feeds the
    /// connection's reader and hands each update to the engine. Reading
    /// stops at the update that makes the connection wait for a password
    /// hash, that closes it, or that uses up its update budget; the bytes
    /// after it stay unparsed in the reader until it goes on.
    pub(super) fn read(&mut self, key: ConnId, now: Time, tick: u64) {
        let mut bytes_left = READ_BUDGET;
        let mut updates_left = UPDATE_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.phase == Phase::Dead {
                return;
            }
            if conn.transport.is_some() {
                return self.read_framed(key, now, tick);
            }
            if conn.phase == Phase::Open {
                if conn.paused {
                    // Read on once the engine is ready for it.
                    return;
                }
                if conn.reader.is_parked() {
                    let engine = &mut self.engine;
                    let outbox = &mut self.outbox;
                    let counted = &mut self.updates_in;
                    conn.reader.resume(|update| {
                        hand_over(engine, outbox, key, update, now, &mut updates_left, counted)
                    });
                    let parked = conn.reader.is_parked();
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
                    match conn.phase {
                        Phase::Open => {
                            debug!("connection {key}: end of stream from {}", conn.peer);
                            self.lost(key, now, tick, Reason::PeerClosed);
                        }
                        Phase::Closing => {
                            if conn.queue.is_empty() {
                                self.kill(key);
                            }
                        }
                        Phase::Dead => {}
                    }
                    return;
                }
                Ok(n) => {
                    bytes_left = bytes_left.saturating_sub(n);
                    self.bytes_in += n as u64;
                    if conn.sniff {
                        conn.sniff = false;
                        #[cfg(feature = "websocket")]
                        if conn.phase == Phase::Open && super::http::opens_http(self.scratch[0]) {
                            // HTTP on the Lichat port: the general path.
                            self.begin_setup(key, tick);
                            self.take_plaintext(key, n, now, tick);
                            continue;
                        }
                    }
                    if conn.phase != Phase::Open {
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
                    let counted = &mut self.updates_in;
                    conn.reader.feed_until(&self.scratch[..n], |update| {
                        hand_over(engine, outbox, key, update, now, &mut updates_left, counted)
                    });
                    let parked = conn.reader.is_parked();
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
                    let state = conn.phase;
                    if state == Phase::Open {
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
    /// turn, or once the engine is ready for it again.
    pub(super) fn again_unless_waiting(&mut self, key: ConnId) {
        let ready = self
            .conns
            .get(key)
            .is_some_and(|c| c.phase == Phase::Open && !c.paused);
        if ready {
            self.again.push(key);
        }
    }

    /// The net layer lost or dropped an open connection: tell the engine
    /// (§4.3 steps 3–4) and close the socket.
    pub(super) fn lost(&mut self, key: ConnId, now: Time, tick: u64, reason: Reason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        debug!("connection {key} from {}: {reason}", conn.peer);
        conn.reason = reason;
        match reason {
            // The peer only closed its side, or the connection ends with
            // an answer to flush: flush what is queued, then close (bounded
            // by the close deadline).
            Reason::PeerClosed | Reason::Answered | Reason::WebSocket => {
                self.begin_close(key, tick)
            }
            _ => self.kill(key),
        }
        self.engine.closed(key, now, &mut self.outbox);
        self.apply_outbox(tick);
    }

    /// Marks a connection for freeing at the end of the turn; its place
    /// is free at once. One that still had bytes queued (dropped for not
    /// reading, or out of time to drain) is reset when closed, so that the
    /// kernel does not keep its send buffer for a peer that does not read.
    pub(super) fn kill(&mut self, key: ConnId) {
        if let Some(conn) = self.conns.get_mut(key)
            && conn.phase != Phase::Dead
        {
            if conn.queue.pending() > 0 {
                conn.reset = true;
                if let Err(e) = sockopt::reset_on_close(&conn.socket) {
                    debug!("connection {key}: cannot set SO_LINGER: {e}");
                }
            }
            conn.phase = Phase::Dead;
            conn.queue.clear();
            conn.held = VecDeque::new();
            conn.held_bytes = 0;
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
    pub(super) fn sent_last_bytes(&mut self, key: ConnId) {
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
    pub(super) fn begin_close(&mut self, key: ConnId, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        conn.phase = Phase::Closing;
        // Whatever it sent after the update that closed it is not read.
        conn.reader = Reader::new(0);
        if let Some(old) = conn.close_timer.take() {
            self.close_wheel.cancel(old);
        }
        conn.close_timer = Some(self.close_wheel.insert(tick + CLOSE_GRACE, key));
        self.mark_dirty(key);
    }

    pub(super) fn mark_dirty(&mut self, key: ConnId) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.dirty
            && conn.phase != Phase::Dead
        {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Writes every connection with pending bytes; repeats while dropping a
    /// connection makes the engine send more.
    pub(super) fn flush_dirty(&mut self, now: Time, tick: u64) {
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

    pub(super) fn flush(&mut self, key: ConnId, now: Time, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase == Phase::Dead {
            return;
        }
        let before = conn.queue.pending();
        let written = match conn.transport.as_deref_mut() {
            None => conn.queue.write_to(&mut conn.socket).map(|_| ()),
            Some(t) => t.write(&mut conn.queue, &mut conn.socket),
        };
        self.bytes_out += (before - conn.queue.pending()) as u64;
        if let Err(e) = written {
            debug!("connection {key}: write failed: {e}");
            self.write_failed(key, now, tick);
            return;
        }
        let waiting = conn.waiting();
        if waiting > self.settings.max_write_queue {
            warn!(
                "connection {key} from {}: {waiting} bytes waiting to be written ({} held for a \
                 commit), over the limit of {}; dropped",
                conn.peer, conn.held_bytes, self.settings.max_write_queue
            );
            self.write_queue_drops += 1;
            match conn.phase {
                Phase::Open => self.lost(key, now, tick, Reason::WriteQueue),
                _ => self.kill(key),
            }
            return;
        }
        let tls_pending = conn
            .transport
            .as_deref()
            .is_some_and(Transport::wants_write);
        #[cfg(feature = "websocket")]
        if conn.queue.is_empty()
            && !tls_pending
            && conn.phase == Phase::Open
            && conn
                .transport
                .as_deref()
                .is_some_and(Transport::downloading)
        {
            if self.refill(key, now, tick) {
                self.flush(key, now, tick);
            }
            return;
        }
        if conn.queue.is_empty() && !tls_pending {
            if conn.phase == Phase::Closing
                && conn.held.is_empty()
                && let Some(t) = conn.transport.as_deref_mut()
                && t.finish(&mut conn.queue, self.shutting_down)
            {
                // A close frame or close_notify to send first.
                return self.flush(key, now, tick);
            }
            if conn.writable_interest {
                conn.writable_interest = false;
                let _ = self.poll.registry().reregister(
                    &mut conn.socket,
                    Token(key),
                    Interest::READABLE,
                );
            }
            if conn.phase == Phase::Closing && conn.held.is_empty() {
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

    pub(super) fn write_failed(&mut self, key: ConnId, now: Time, tick: u64) {
        match self.conns.get(key).map(|c| c.phase) {
            Some(Phase::Open) => self.lost(key, now, tick, Reason::Error),
            Some(Phase::Closing) => self.kill(key),
            _ => {}
        }
    }
}

/// Hands one update to the engine; says whether to read on: not once the
/// connection waits for a password hash, is closed, or has used up its
/// update budget for this turn.
pub(super) fn hand_over(
    engine: &mut Engine,
    outbox: &mut Outbox,
    key: ConnId,
    update: Result<Object, ReadError>,
    now: Time,
    updates_left: &mut usize,
    counted: &mut u64,
) -> ControlFlow<()> {
    log_update(key, &update);
    *counted += 1;
    let (events, closes) = (outbox.events.len(), outbox.closes.len());
    engine.handle(key, update, now, outbox);
    *updates_left = updates_left.saturating_sub(1);
    let waits = outbox.events[events..].contains(&ConnEvent::Waiting(key));
    let closed = outbox.closes[closes..].contains(&key);
    if *updates_left == 0 || waits || closed {
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
