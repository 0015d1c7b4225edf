//! Accepting connections (§4.1.1): the connection limit, refusals, and
//! running out of descriptors without spinning or flooding the log.

use super::conn::{Conn, Phase, Place, Reason};
use super::transport::{Framing, SETUP_DEADLINE, Transport};
use super::write_queue::WriteQueue;
use super::{PRE_CONNECT_MAX, Port, Server, sockopt};
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
    /// `token` names the listener that is ready; `None` tries them all.
    pub(super) fn accept(&mut self, token: Option<Token>, now: Time, tick: u64) {
        if self.shutting_down || self.accept_retry.is_some_and(|at| tick < at) {
            return;
        }
        self.accept_retry = None;
        for i in 0..self.listeners.len() {
            if token.is_none_or(|t| t == self.listeners[i].token) {
                self.accept_on(i, now, tick);
            }
        }
    }

    fn accept_on(&mut self, index: usize, now: Time, tick: u64) {
        let port = self.listeners[index].port;
        loop {
            let Some(listener) = self.listeners.get_mut(index) else {
                return;
            };
            match listener.socket.accept() {
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
                        self.refuse_on(port, socket, peer, now, tick, "connection limit reached");
                        continue;
                    }
                    if !self.engine.address_has_room(peer.ip()) {
                        self.refuse_on(
                            port,
                            socket,
                            peer,
                            now,
                            tick,
                            "too many connections from it",
                        );
                        continue;
                    }
                    let transport = match self.new_transport(port, tick) {
                        Ok(t) => t,
                        Err(why) => {
                            if self.refusals.event(tick) {
                                info!("refused {peer}: {why}");
                            }
                            continue;
                        }
                    };
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
                        transport,
                        sniff: port == Port::Lichat,
                    });
                    if let Some(t) = self.conns[key].transport.as_deref_mut() {
                        t.deadline = Some(self.setup_wheel.insert(tick + SETUP_DEADLINE + 1, key));
                        self.tls_handshakes += usize::from(t.handshaking);
                    }
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

    /// The transport a connection to `port` starts with: none for plain
    /// Lichat, TLS state for the TLS ports (unless too many handshakes are
    /// in flight).
    fn new_transport(&mut self, port: Port, tick: u64) -> Result<Option<Box<Transport>>, String> {
        let _ = tick;
        match port {
            Port::Lichat => Ok(None),
            Port::WebSocket => Ok(Some(Box::new(Transport::plain(Framing::Sniff)))),
            Port::Tls => {
                #[cfg(feature = "tls")]
                {
                    if self.tls_handshakes >= self.settings.max_tls_handshakes {
                        return Err(format!(
                            "{} TLS handshakes in flight already",
                            self.tls_handshakes
                        ));
                    }
                    let Some(config) = &self.tls_config else {
                        return Err("no TLS settings".into());
                    };
                    let tls = super::tls::accept(config).map_err(|e| e.to_string())?;
                    let mut t = Transport::plain(Framing::Sniff);
                    t.tls = Some(Box::new(tls));
                    t.handshaking = true;
                    Ok(Some(Box::new(t)))
                }
                #[cfg(not(feature = "tls"))]
                Err("built without TLS".into())
            }
        }
    }

    /// [`Server::refuse`] on the plain Lichat port; elsewhere the framing
    /// is not known yet, so the socket is only closed.
    fn refuse_on(
        &mut self,
        port: Port,
        socket: TcpStream,
        peer: SocketAddr,
        now: Time,
        tick: u64,
        why: &str,
    ) {
        if port == Port::Lichat {
            self.refuse(socket, peer, now, tick, why);
        } else if self.refusals.event(tick) {
            info!("refused {peer}: {why}");
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
