//! Accepting connections (§4.1.1): the connection limit, refusals, and
//! running out of descriptors without spinning or flooding the log.

use super::conn::{Conn, Phase, Place, Reason};
use super::write_queue::WriteQueue;
use super::{PRE_CONNECT_MAX, Server, sockopt};
use crate::engine::Time;
use crate::wire::Reader;
use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};

impl Server {
    /// Accepts every pending connection. After a failure (out of
    /// descriptors) the listener's events are ignored until the retry one
    /// tick later, which accepts whatever queued up meanwhile: the loop
    /// neither spins nor retries on every turn.
    pub(super) fn accept(&mut self, now: Time, tick: u64) {
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
                    // shirakumo.mess §10: a banned address is dropped
                    // before anything is set up for it.
                    if self.engine.address_banned(peer.ip()) {
                        drop(socket);
                        if self.refusals.event(tick) {
                            info!("dropped {peer}: the address is banned");
                        }
                        continue;
                    }
                    if self.counted >= self.settings.connection_limit {
                        self.refuse(socket, peer, now, tick, "connection limit reached");
                        continue;
                    }
                    if !self.engine.address_has_room(peer.ip()) {
                        self.refuse(socket, peer, now, tick, "too many connections from it");
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
                    entry.insert(Conn {
                        socket,
                        peer,
                        reader: Reader::new(PRE_CONNECT_MAX.min(self.settings.max_input_size())),
                        queue: WriteQueue::default(),
                        phase: Phase::Open,
                        place: Place::Counted,
                        reset: false,
                        paused: false,
                        writable_interest: false,
                        dirty: false,
                        peer_eof: false,
                        close_timer: None,
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
    pub(super) fn refuse(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        now: Time,
        tick: u64,
        why: &str,
    ) {
        let refusal = self.engine.too_many_connections(now);
        let _ = socket.write(&refusal);
        let _ = socket.shutdown(Shutdown::Write);
        if self.refusals.event(tick) {
            info!("refused {peer}: {why}");
        }
    }
}
