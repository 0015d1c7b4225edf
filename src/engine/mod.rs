//! The protocol engine (§2–§5), sans-IO: it takes (connection, update, now)
//! and returns what to send to which connections and which to close. It
//! opens no sockets and reads no clock.

use crate::wire::{Object, ReadError};
use std::net::IpAddr;
use std::rc::Rc;

/// Identifies a connection; the net layer uses its slab key.
pub type ConnId = usize;

/// Lichat time: seconds since 1900-01-01 00:00 UTC (§1).
pub type Time = u64;

/// Seconds between 1900-01-01 and 1970-01-01.
pub const UNIX_TO_UNIVERSAL: u64 = 2_208_988_800;

/// Engine settings; the defaults are the original server's.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's name: its user and primary channel carry it.
    pub name: String,
    /// §4.2 flood frame length in seconds.
    pub flood_frame: u64,
    /// §4.2 updates allowed per flood frame.
    pub flood_limit: u32,
    /// §4.1.8 connections allowed per user.
    pub max_connections_per_user: usize,
    /// §5.3.1.3 / §5.4.1.2 channels a user may inhabit.
    pub max_channels_per_user: usize,
    /// Server-wide salt mixed into every password hash.
    pub salt: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "Lichat".into(),
            flood_frame: 30,
            flood_limit: 40,
            max_connections_per_user: 20,
            max_channels_per_user: 50,
            salt: String::new(),
        }
    }
}

/// What the engine wants done: bytes to queue on connections, connections
/// to close once their queued bytes are written.
#[derive(Default, Debug)]
pub struct Outbox {
    /// Printed updates, each for one connection; a broadcast shares one
    /// buffer among all its recipients.
    pub sends: Vec<(ConnId, Rc<[u8]>)>,
    /// Connections to close after flushing what is queued for them. The
    /// engine has already forgotten them.
    pub closes: Vec<ConnId>,
}

impl Outbox {
    /// Empties the outbox, keeping its allocations.
    pub fn clear(&mut self) {
        self.sends.clear();
        self.closes.clear();
    }
}

/// The protocol engine: users, profiles, channels and every handler.
pub struct Engine {
    config: Config,
}

impl Engine {
    /// A new engine with the primary channel and server user in place.
    pub fn new(config: Config, _now: Time) -> Engine {
        Engine { config }
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A socket was accepted; the connection awaits its `connect` (§4.1).
    pub fn open(&mut self, _conn: ConnId, _ip: IpAddr, _now: Time) {}

    /// One update read from the connection (or the reader's error).
    pub fn handle(
        &mut self,
        _conn: ConnId,
        _update: Result<Object, ReadError>,
        _now: Time,
        _out: &mut Outbox,
    ) {
    }

    /// True once the connection completed §4.1.
    pub fn is_established(&self, _conn: ConnId) -> bool {
        false
    }

    /// §4.2: nothing heard from the connection for the ping interval; sends
    /// a `ping`.
    pub fn ping(&mut self, _conn: ConnId, _now: Time, _out: &mut Outbox) {}

    /// §4.2: nothing heard for the idle timeout: `connection-unstable`,
    /// `disconnect`, close.
    pub fn idle_timeout(&mut self, _conn: ConnId, _now: Time, _out: &mut Outbox) {}

    /// §4.1: no `connect` arrived in time; the connection is closed.
    pub fn connect_timeout(&mut self, _conn: ConnId, _now: Time, _out: &mut Outbox) {}

    /// §4.3 steps 3–4 for a connection the net layer lost or dropped (peer
    /// gone, write queue over its limit). Does nothing for an unknown id.
    pub fn closed(&mut self, _conn: ConnId, _now: Time, _out: &mut Outbox) {}

    /// Expires unused channels and profiles (§2.3, §2.4). Returns the next
    /// time it needs calling.
    pub fn expire(&mut self, now: Time, _out: &mut Outbox) -> Time {
        now + 3600
    }

    /// Server shutdown: a `disconnect` to every connection, all closed.
    pub fn shutdown(&mut self, _now: Time, _out: &mut Outbox) {}

    /// §4.1.1: the bytes of a `too-many-connections` failure, sent to a
    /// socket refused before it becomes a connection.
    pub fn too_many_connections(&self) -> Vec<u8> {
        Vec::new()
    }
}
