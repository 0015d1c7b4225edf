//! Transports other than plain Lichat over TCP: TLS under the framing,
//! and the framings besides Lichat's own (HTTP, WebSocket), told apart by a
//! connection's first bytes (`GET ` opens HTTP, anything else is Lichat).
//! A connection of plain Lichat over TCP has no [`Transport`] and takes the
//! read and write paths of `conn.rs` unchanged; every other one carries its
//! state here, in its slab entry. The engine sees updates either way.
// Built without TLS or WebSocket, some of this is never used.
#![cfg_attr(not(all(feature = "tls", feature = "websocket")), allow(dead_code))]

use super::conn::{Phase, Reason, hand_over};
#[cfg(feature = "websocket")]
use super::http;
#[cfg(feature = "websocket")]
use super::ws;
use super::{READ_BUDGET, Server, UPDATE_BUDGET};
use crate::engine::{ConnId, Time};
use crate::timer::TimerId;
use log::debug;
#[cfg(feature = "websocket")]
use std::rc::Rc;

/// Seconds a connection may take from accepting to its first update's
/// framing being known and set up: the TLS handshake, the first bytes, an
/// HTTP request or WebSocket upgrade.
pub(crate) const SETUP_DEADLINE: u64 = 5;

/// A connection's transport state beyond plain TCP.
pub(super) struct Transport {
    /// TLS state, when the connection came to a TLS port.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Box<rustls::ServerConnection>>,
    /// The TLS handshake is not done: the connection counts against the
    /// cap on handshakes in flight.
    pub(super) handshaking: bool,
    /// `close_notify` was queued.
    pub(super) notified: bool,
    /// How the plaintext is framed.
    pub(super) framing: Framing,
    /// While the connection is being set up: its deadline.
    pub(super) deadline: Option<TimerId>,
}

/// How a connection's plaintext is framed.
pub(super) enum Framing {
    /// Nothing read yet: the first byte tells.
    Sniff,
    /// Lichat updates, each ended by NUL (§3.1).
    Lichat,
    /// An HTTP request head is being read.
    #[cfg(feature = "websocket")]
    Http(http::Request),
    /// WebSocket messages, one update each.
    #[cfg(feature = "websocket")]
    WebSocket(WebSocket),
    /// A payload of `shirakumo.mess` §12 being sent; what the client sends
    /// meanwhile is discarded.
    #[cfg(feature = "websocket")]
    Download(super::download::Download),
    /// An HTTP answer was sent or the framing failed: the rest is
    /// discarded.
    Done,
}

/// A connection's WebSocket state.
#[cfg(feature = "websocket")]
pub(super) struct WebSocket {
    pub(super) decoder: ws::Decoder,
    /// The last data byte handed on was a NUL: a message that ends here
    /// needs none added.
    ended_nul: bool,
    /// Raw bytes not yet decoded because the reader stopped (the
    /// connection waits for a password hash or used up its turn).
    pending: Vec<u8>,
    /// A close frame was queued: nothing more is sent.
    pub(super) close_sent: bool,
}

/// The kind of transport, as the metrics count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Tcp,
    WebSocket,
    Tls,
    WebSocketTls,
    /// Being set up, or answering HTTP.
    Other,
}

impl Transport {
    /// A transport with the given framing, and no TLS.
    pub(super) fn plain(framing: Framing) -> Transport {
        Transport {
            #[cfg(feature = "tls")]
            tls: None,
            handshaking: false,
            notified: false,
            framing,
            deadline: None,
        }
    }

    /// True when TLS records wait to be written.
    pub(super) fn wants_write(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.wants_write();
        }
        false
    }

    /// Writes the queue to the socket, through TLS if there is TLS.
    pub(super) fn write(
        &mut self,
        queue: &mut super::write_queue::WriteQueue,
        socket: &mut mio::net::TcpStream,
    ) -> std::io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return super::tls::flush(tls, queue, socket);
        }
        queue.write_to(socket).map(|_| ())
    }

    /// Whether sends from the engine go out on this connection now.
    pub(super) fn sends(&self) -> bool {
        match &self.framing {
            Framing::Lichat => true,
            #[cfg(feature = "websocket")]
            Framing::WebSocket(w) => !w.close_sent,
            _ => false,
        }
    }

    /// The kind, for the metrics.
    pub(super) fn kind(&self) -> Kind {
        #[cfg(feature = "tls")]
        let tls = self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        match (&self.framing, tls) {
            (Framing::Lichat, false) => Kind::Tcp,
            (Framing::Lichat, true) => Kind::Tls,
            #[cfg(feature = "websocket")]
            (Framing::WebSocket(_), false) => Kind::WebSocket,
            #[cfg(feature = "websocket")]
            (Framing::WebSocket(_), true) => Kind::WebSocketTls,
            _ => Kind::Other,
        }
    }

    /// Queues what ends the transport in order after the last bytes: a
    /// WebSocket close frame (1001 at shutdown), then TLS `close_notify`.
    /// True when something was queued.
    pub(super) fn finish(
        &mut self,
        queue: &mut super::write_queue::WriteQueue,
        shutdown: bool,
    ) -> bool {
        let _ = shutdown;
        #[cfg(feature = "websocket")]
        if let Framing::WebSocket(w) = &mut self.framing
            && !w.close_sent
        {
            w.close_sent = true;
            let code = if shutdown {
                ws::code::GOING_AWAY
            } else {
                ws::code::NORMAL
            };
            queue.push(Rc::from(ws::close_frame(code)));
            return true;
        }
        let _ = &queue;
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls
            && !self.notified
            && !self.handshaking
        {
            self.notified = true;
            tls.send_close_notify();
            return true;
        }
        false
    }
}

/// A buffer from the engine and its WebSocket framing.
#[cfg(feature = "websocket")]
type Framed = (Rc<[u8]>, Rc<[u8]>);

/// Frames the engine's shared buffers for WebSocket connections, once per
/// buffer: every WebSocket recipient of a broadcast queues the same framed
/// copy, as every TCP recipient queues the printed one.
#[derive(Default)]
pub(super) struct FrameCache {
    /// The last buffer framed (kept, so its address is not reused) and its
    /// framing.
    #[cfg(feature = "websocket")]
    last: Option<Framed>,
}

impl FrameCache {
    /// `bytes` framed as WebSocket text messages.
    #[cfg(feature = "websocket")]
    pub(super) fn frame(&mut self, bytes: &Rc<[u8]>) -> Rc<[u8]> {
        if let Some((src, framed)) = &self.last
            && Rc::ptr_eq(src, bytes)
        {
            return framed.clone();
        }
        let framed: Rc<[u8]> = Rc::from(ws::frame_updates(bytes));
        self.last = Some((bytes.clone(), framed.clone()));
        framed
    }

    /// Lets the last buffer go (at the end of a turn).
    pub(super) fn clear(&mut self) {
        #[cfg(feature = "websocket")]
        {
            self.last = None;
        }
    }
}

/// Whether the connection's reading goes on after a piece of plaintext.
enum Flow {
    Continue,
    Stop,
}

impl Server {
    /// [`Server::read`] for a connection with a [`Transport`]: gets the
    /// plaintext (decrypting TLS), frames it (sniffing the first bytes),
    /// and hands each update to the engine, within the same budgets.
    pub(super) fn read_framed(&mut self, key: ConnId, now: Time, tick: u64) {
        let mut bytes_left = READ_BUDGET;
        let mut updates_left = UPDATE_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.phase == Phase::Dead {
                return;
            }
            if conn.phase == Phase::Open {
                if conn.paused {
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
            #[cfg_attr(not(feature = "websocket"), allow(unused_variables))]
            let Some(t) = conn.transport.as_deref_mut() else {
                // Became plain Lichat over TCP.
                return self.read(key, now, tick);
            };
            // Bytes left undecoded when the reader stopped go first.
            #[cfg(feature = "websocket")]
            if conn.phase == Phase::Open
                && let Framing::WebSocket(w) = &mut t.framing
                && !w.pending.is_empty()
            {
                let pending = std::mem::take(&mut w.pending);
                let n = pending.len();
                self.scratch[..n].copy_from_slice(&pending);
                match self.on_plaintext(key, n, now, tick, &mut updates_left) {
                    Flow::Continue => continue,
                    Flow::Stop => return,
                }
            }
            if conn.peer_eof {
                return;
            }
            let got = self.fill(key);
            let n = match got {
                Got::Bytes(n) => n,
                Got::Blocked => return,
                Got::Eof => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        return;
                    };
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
                Got::Failed(reason) => {
                    match self.conns.get(key).map(|c| c.phase) {
                        Some(Phase::Open) => self.lost(key, now, tick, reason),
                        _ => self.kill(key),
                    }
                    return;
                }
            };
            self.bytes_in += n as u64;
            bytes_left = bytes_left.saturating_sub(n);
            let phase = self.conns.get(key).map(|c| c.phase);
            if phase != Some(Phase::Open) {
                // Closing: discard until the peer's end of stream.
                if bytes_left == 0 {
                    self.again.push(key);
                    return;
                }
                continue;
            }
            match self.on_plaintext(key, n, now, tick, &mut updates_left) {
                Flow::Continue => {}
                Flow::Stop => return,
            }
            if bytes_left == 0 || updates_left == 0 {
                self.again.push(key);
                return;
            }
        }
    }

    /// Reads plaintext into the scratch buffer: from the socket, or through
    /// TLS. Notes a finished handshake and asks to write what TLS wants
    /// sent.
    fn fill(&mut self, key: ConnId) -> Got {
        let Some(conn) = self.conns.get_mut(key) else {
            return Got::Blocked;
        };
        let Some(t) = conn.transport.as_deref_mut() else {
            return Got::Blocked;
        };
        #[cfg(feature = "tls")]
        if let Some(tls) = t.tls.as_mut() {
            use super::tls::{Fill, fill};
            let got = fill(tls, &mut conn.socket, &mut self.scratch);
            let finished = t.handshaking && !tls.is_handshaking();
            let wants_write = tls.wants_write();
            if finished {
                t.handshaking = false;
                self.tls_handshakes -= 1;
                debug!("connection {key}: TLS handshake done");
            }
            if wants_write {
                self.mark_dirty(key);
            }
            return match got {
                Fill::Bytes(n) => Got::Bytes(n),
                Fill::Blocked => Got::Blocked,
                Fill::Eof => Got::Eof,
                Fill::Failed(e) => {
                    debug!("connection {key}: read failed: {e}");
                    Got::Failed(Reason::Error)
                }
                Fill::Refused(e) => {
                    debug!("connection {key}: TLS refused: {e}");
                    // Send the alert rustls queued, if the socket takes it.
                    if let Some(conn) = self.conns.get_mut(key)
                        && let Some(tls) =
                            conn.transport.as_deref_mut().and_then(|t| t.tls.as_mut())
                    {
                        let _ = tls.write_tls(&mut conn.socket);
                    }
                    Got::Failed(Reason::Tls)
                }
            };
        }
        let _ = t;
        use std::io::Read;
        loop {
            return match conn.socket.read(&mut self.scratch) {
                Ok(0) => Got::Eof,
                Ok(n) => Got::Bytes(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Got::Blocked,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {key}: read failed: {e}");
                    Got::Failed(Reason::Error)
                }
            };
        }
    }

    /// Frames `n` bytes of plaintext at the start of the scratch buffer.
    fn on_plaintext(
        &mut self,
        key: ConnId,
        n: usize,
        now: Time,
        tick: u64,
        updates_left: &mut usize,
    ) -> Flow {
        let Some(conn) = self.conns.get_mut(key) else {
            return Flow::Stop;
        };
        let Some(t) = conn.transport.as_deref_mut() else {
            return Flow::Stop;
        };
        if n == 0 {
            return Flow::Continue;
        }
        if let Framing::Sniff = t.framing {
            #[cfg(feature = "websocket")]
            if super::http::opens_http(self.scratch[0]) {
                t.framing = Framing::Http(http::Request::default());
            }
            if let Framing::Sniff = t.framing {
                t.framing = Framing::Lichat;
                self.set_up(key);
            }
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return Flow::Stop;
        };
        match conn.transport.as_deref_mut().map(|t| &mut t.framing) {
            None | Some(Framing::Lichat) => {
                let engine = &mut self.engine;
                let outbox = &mut self.outbox;
                let counted = &mut self.updates_in;
                conn.reader.feed_until(&self.scratch[..n], |update| {
                    hand_over(engine, outbox, key, update, now, updates_left, counted)
                });
                let parked = conn.reader.is_parked();
                self.apply_outbox(tick);
                if parked {
                    self.again_unless_waiting(key);
                    return Flow::Stop;
                }
                Flow::Continue
            }
            #[cfg(feature = "websocket")]
            Some(Framing::Http(req)) => {
                let metrics = self.settings.metrics;
                match req.feed(&self.scratch[..n], metrics) {
                    http::Route::Partial => Flow::Continue,
                    http::Route::Upgrade { answer, rest } => {
                        debug!("connection {key}: WebSocket upgrade");
                        let limit = self.settings.max_input_size() + 1;
                        if let Some(t) = conn.transport.as_deref_mut() {
                            t.framing = Framing::WebSocket(WebSocket {
                                decoder: ws::Decoder::new(limit),
                                ended_nul: true,
                                pending: Vec::new(),
                                close_sent: false,
                            });
                        }
                        conn.queue.push(Rc::from(answer));
                        self.mark_dirty(key);
                        self.set_up(key);
                        self.on_ws(key, rest, n, now, tick, updates_left)
                    }
                    http::Route::Metrics => {
                        let body = self.render_metrics();
                        let answer =
                            http::response("200 OK", "text/plain; version=0.0.4", &body, "");
                        self.answer(key, answer, now, tick)
                    }
                    http::Route::Link { name, body, range } => {
                        if let Some(id) = conn
                            .transport
                            .as_deref_mut()
                            .and_then(|t| t.deadline.take())
                        {
                            self.setup_wheel.cancel(id);
                        }
                        self.serve_payload(key, &name, (body, range), now, tick);
                        Flow::Stop
                    }
                    http::Route::Answer(answer) => self.answer(key, answer, now, tick),
                }
            }
            #[cfg(feature = "websocket")]
            Some(Framing::WebSocket(_)) => self.on_ws(key, 0, n, now, tick, updates_left),
            #[cfg(feature = "websocket")]
            Some(Framing::Download(_)) => Flow::Continue,
            Some(Framing::Sniff) | Some(Framing::Done) => Flow::Continue,
        }
    }

    /// A plain connection whose first byte opens HTTP: it gets a
    /// transport, and the setup deadline.
    #[cfg(feature = "websocket")]
    pub(super) fn begin_setup(&mut self, key: ConnId, tick: u64) {
        let deadline = self.setup_wheel.insert(tick + SETUP_DEADLINE + 1, key);
        if let Some(conn) = self.conns.get_mut(key) {
            let mut t = Transport::plain(Framing::Sniff);
            t.deadline = Some(deadline);
            conn.transport = Some(Box::new(t));
        }
    }

    /// Frames `n` bytes of plaintext read by the plain path.
    #[cfg(feature = "websocket")]
    pub(super) fn take_plaintext(&mut self, key: ConnId, n: usize, now: Time, tick: u64) {
        let mut updates_left = UPDATE_BUDGET;
        let _ = self.on_plaintext(key, n, now, tick, &mut updates_left);
    }

    /// The setup deadline of a connection passed: drop it if it is still
    /// being set up.
    pub(super) fn setup_expired(&mut self, key: ConnId, now: Time, tick: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(t) = conn.transport.as_deref_mut() else {
            return;
        };
        if t.deadline.take().is_some() && conn.phase == Phase::Open {
            #[cfg(feature = "websocket")]
            if t.downloading() {
                self.lost(key, now, tick, Reason::Stalled);
                return;
            }
            debug!("connection {key} from {}: not set up in time", conn.peer);
            self.lost(key, now, tick, Reason::Setup);
        }
    }

    /// The connection's framing is known and set up: its deadline is
    /// over, and plain Lichat over TCP goes back to the plain path.
    fn set_up(&mut self, key: ConnId) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(t) = conn.transport.as_deref_mut() else {
            return;
        };
        if t.handshaking {
            return;
        }
        if let Some(id) = t.deadline.take() {
            self.setup_wheel.cancel(id);
        }
        #[cfg(feature = "tls")]
        let tls = t.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        if !tls && matches!(t.framing, Framing::Lichat) {
            conn.transport = None;
        }
    }

    /// Sends an HTTP answer and closes the connection (for other modules).
    #[cfg(feature = "websocket")]
    pub(super) fn answer_and_close(&mut self, key: ConnId, answer: Vec<u8>, now: Time, tick: u64) {
        let _ = self.answer(key, answer, now, tick);
    }

    /// Sends an HTTP answer and closes the connection.
    #[cfg(feature = "websocket")]
    fn answer(&mut self, key: ConnId, answer: Vec<u8>, now: Time, tick: u64) -> Flow {
        if let Some(conn) = self.conns.get_mut(key) {
            if let Some(t) = conn.transport.as_deref_mut() {
                t.framing = Framing::Done;
                if let Some(id) = t.deadline.take() {
                    self.setup_wheel.cancel(id);
                }
            }
            conn.queue.push(Rc::from(answer));
        }
        self.lost(key, now, tick, Reason::Answered);
        Flow::Stop
    }

    /// Decodes WebSocket frames in `scratch[from..to]`.
    #[cfg(feature = "websocket")]
    fn on_ws(
        &mut self,
        key: ConnId,
        from: usize,
        to: usize,
        now: Time,
        tick: u64,
        updates_left: &mut usize,
    ) -> Flow {
        let mut pos = from;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return Flow::Stop;
            };
            if conn.phase != Phase::Open {
                return Flow::Stop;
            }
            let Some(Framing::WebSocket(w)) = conn.transport.as_deref_mut().map(|t| &mut t.framing)
            else {
                return Flow::Stop;
            };
            let at = pos;
            let (used, event) = w.decoder.next(&mut self.scratch[at..to]);
            pos += used;
            let data = match event {
                None => return Flow::Continue,
                Some(ws::Event::Data(r)) => {
                    let data = at + r.start..at + r.end;
                    if let Some(&last) = self.scratch[data.clone()].last() {
                        w.ended_nul = last == 0;
                    }
                    data
                }
                Some(ws::Event::MessageEnd) => {
                    if w.ended_nul {
                        continue;
                    }
                    w.ended_nul = true;
                    // One update per message: end it if the client did not.
                    let engine = &mut self.engine;
                    let outbox = &mut self.outbox;
                    let counted = &mut self.updates_in;
                    conn.reader.feed_until(b"\0", |u| {
                        hand_over(engine, outbox, key, u, now, updates_left, counted)
                    });
                    self.apply_outbox(tick);
                    if *updates_left == 0 {
                        self.park_ws(key, pos, to);
                        return Flow::Stop;
                    }
                    continue;
                }
                Some(ws::Event::Ping) => {
                    let pong = Rc::from(ws::pong_frame(w.decoder.control()));
                    conn.queue.push(pong);
                    self.mark_dirty(key);
                    continue;
                }
                Some(ws::Event::Close(code)) => {
                    debug!("connection {key}: WebSocket close {code}");
                    w.close_sent = true;
                    conn.queue.push(Rc::from(ws::close_frame(code)));
                    self.lost(key, now, tick, Reason::PeerClosed);
                    return Flow::Stop;
                }
                Some(ws::Event::Fail(code)) => {
                    debug!("connection {key}: WebSocket protocol error, closing with {code}");
                    w.close_sent = true;
                    conn.queue.push(Rc::from(ws::close_frame(code)));
                    self.lost(key, now, tick, Reason::WebSocket);
                    return Flow::Stop;
                }
            };
            let engine = &mut self.engine;
            let outbox = &mut self.outbox;
            let counted = &mut self.updates_in;
            conn.reader.feed_until(&self.scratch[data], |update| {
                hand_over(engine, outbox, key, update, now, updates_left, counted)
            });
            let parked = conn.reader.is_parked();
            self.apply_outbox(tick);
            if parked || *updates_left == 0 {
                self.park_ws(key, pos, to);
                return Flow::Stop;
            }
        }
    }

    /// The reader stopped: keep the undecoded bytes for later.
    #[cfg(feature = "websocket")]
    fn park_ws(&mut self, key: ConnId, pos: usize, to: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && conn.phase == Phase::Open
            && let Some(Framing::WebSocket(w)) =
                conn.transport.as_deref_mut().map(|t| &mut t.framing)
        {
            w.pending.extend_from_slice(&self.scratch[pos..to]);
        }
        self.again_unless_waiting(key);
    }
}

/// What a read from the connection gave.
enum Got {
    Bytes(usize),
    Blocked,
    Eof,
    Failed(Reason),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_state_stays_small_beside_tls() {
        // A WebSocket connection pays for this box, not for TLS state.
        assert!(
            std::mem::size_of::<Transport>() <= 192,
            "{}",
            std::mem::size_of::<Transport>()
        );
    }
}
