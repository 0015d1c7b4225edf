//! §4 connections: establishment, maintenance and closure.

use super::profiles::HashWork;
use super::random::random_hex;
use super::state::UserId;
use super::{ConnEvent, ConnId, Engine, Failure, Outbox, Password, Request, Time, send_to};

/// How a connection is being closed (§4.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// Closed without a `disconnect` (refused during establishment, or
    /// the `disconnect` was already sent as a reply).
    Silent,
    /// A `disconnect` from the server precedes the close.
    WithDisconnect,
    /// The socket is gone already: nothing is sent, nothing to close.
    Gone,
    /// Server shutdown: a `disconnect`, the close, and no `leave` for
    /// anyone, since every connection is going.
    Shutdown,
}
use crate::protocol::{self, COMPATIBLE_VERSIONS, VERSION};
use crate::wire::{Known, Object, Value};

impl Engine {
    /// §4.1 connection establishment, steps 2–14 (step 1 is the net
    /// layer's: it refuses sockets over the connection limit).
    pub(super) fn connect(
        &mut self,
        conn: ConnId,
        mut update: Object,
        now: Time,
        out: &mut Outbox,
    ) {
        self.connect_checked(conn, &mut update, None, now, out);
    }

    /// §4.1 with the outcome of a password verification, once it is known.
    pub(super) fn connect_checked(
        &mut self,
        conn: ConnId,
        update: &mut Object,
        verified: Option<(&Password, bool)>,
        now: Time,
        out: &mut Outbox,
    ) {
        let id = update.get(Known::KId).cloned().unwrap_or(Value::NIL);
        match self.try_connect(conn, update, verified, now, out) {
            Ok(()) => {}
            Err(f) => {
                self.send_failure(conn, f, id, now, out);
                self.drop_connection(conn, now, out, Close::Silent);
            }
        }
    }

    fn try_connect(
        &mut self,
        conn: ConnId,
        update: &mut Object,
        verified: Option<(&Password, bool)>,
        now: Time,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        // Step 2: version.
        let version = update
            .get(Known::KVersion)
            .and_then(Value::as_str)
            .unwrap_or("");
        if !COMPATIBLE_VERSIONS.contains(&version) {
            return Err(Failure::new(
                Known::IncompatibleVersion,
                format!("Version {version:?} is not supported; this server speaks {VERSION}."),
            ));
        }
        // Step 3: a random name when none is given.
        let name = match update.get(Known::KFrom).and_then(Value::as_str) {
            Some(n) => n.to_owned(),
            None => self.random_user_name(),
        };
        // Step 4: the name must be valid.
        if !protocol::is_valid_name(&name) {
            return Err(Failure::new(
                Known::BadName,
                format!("{name:?} is not a valid user name."),
            ));
        }
        // Extensions may refuse the connection here (ip bans, blacklists).
        if let Some(c) = self.state.connection(conn) {
            for hook in &super::table::hooks().on_connect {
                hook(self, c, update)?;
            }
        }
        let password = update.get(Known::KPassword).and_then(Value::as_str);
        // Past step 7 a password was verified.
        let authenticated = password.is_some();
        let existing = self.state.find_user(&name);
        match password {
            None => {
                // Step 5: the name must be free.
                if existing.is_some() || self.state.find_profile(&name).is_some() {
                    return Err(Failure::new(
                        Known::UsernameTaken,
                        format!("The name {name:?} is taken."),
                    ));
                }
            }
            Some(password) => {
                // Steps 6 and 7: the profile must exist and the password
                // match. Hashing is slow, so it is done off the loop: the
                // connection waits, and this runs again with the outcome.
                let Some(profile) = self.state.find_profile(&name) else {
                    return Err(Failure::new(
                        Known::NoSuchProfile,
                        format!("No profile is registered for {name:?}."),
                    ));
                };
                match verified {
                    // Verified against the hash the profile still has.
                    Some((hash, true)) if *hash == profile.password => {
                        // shirakumo-otp (`shirakumo.mess` §24): the
                        // one-time password, after step 7.
                        super::ext::otp::verify(self, &name, update, now)?;
                    }
                    Some((hash, false)) if *hash == profile.password => {
                        return Err(Failure::new(
                            Known::InvalidPassword,
                            "The password does not match.",
                        ));
                    }
                    // Not verified yet, or the password changed meanwhile.
                    _ => {
                        let work = HashWork::Verify(profile.password.clone());
                        let password = password.to_owned();
                        self.wait_for_hash(conn, password, work, update.clone(), out);
                        return Ok(());
                    }
                }
            }
        }
        // Step 8: connections per user.
        if let Some(u) = existing
            && self.state.user(u).conns.len() >= self.config.max_connections_per_user
        {
            return Err(Failure::new(
                Known::TooManyConnections,
                format!(
                    "{name:?} already has {} connections.",
                    self.config.max_connections_per_user
                ),
            ));
        }
        // Steps 9 and 10: create the user if needed and tie the connection.
        // A registered user keeps the spelling of its profile.
        let user = match existing {
            Some(u) => u,
            None => match self.state.find_profile(&name) {
                Some(p) => {
                    let registered = p.name.clone();
                    self.state.add_user(&registered)
                }
                None => self.state.add_user(&name),
            },
        };
        self.state.user_mut(user).conns.push(conn);
        if let Some(c) = self.state.connection_mut(conn) {
            c.user = Some(user);
            c.authenticated = authenticated;
        }
        self.arm_activity(conn, now);
        out.events.push(ConnEvent::Established(conn));
        if let Some(p) = self.state.find_profile_mut(&name) {
            p.last_used = now;
            self.profile_changed(&name, out);
        }
        let name = self.state.user(user).name.clone();
        // Step 11: the reply carries the user's actual name.
        update.set(Known::KFrom, name.as_str());
        update.set(Known::KVersion, VERSION);
        update.set(
            Known::KExtensions,
            Value::List(
                super::table::extension_names()
                    .iter()
                    .filter(|e| **e != super::ext::link::NAME || super::ext::link::enabled(self))
                    .map(|e| Value::string(*e))
                    .collect(),
            ),
        );
        update.remove(Known::KPassword);
        // `shirakumo.mess` §24: nor the one-time password.
        update.remove(Known::KOtpToken);
        super::retain_known_fields(update, Known::Connect);
        send_to(out, conn, update);
        if existing.is_some() {
            // Step 12: replay the joins, primary channel first (it is
            // always the user's first channel).
            let channels = self.state.user(user).channels.clone();
            for chan in channels {
                let join = self.join_update(&name, chan, None, now);
                send_to(out, conn, &join);
            }
        } else {
            // Step 13: join the primary channel; like any join (§5.4.1)
            // it goes to every member: to this connection now, to the
            // others at the end of the turn (presence.rs).
            let primary = self.state.primary;
            self.state.join(user, primary);
            let join = self.join_update(&name, primary, None, now);
            send_to(out, conn, &join);
            self.primary_presence(join, Some(user));
            self.joined(user, primary, now, out);
        }
        // Step 14: the welcome message from the primary user.
        let server = self.config.name.clone();
        let welcome = self
            .server_update(Known::Message, now)
            .with(Known::KChannel, server.as_str())
            .with(Known::KText, format!("Welcome to {server}, {name}!"));
        send_to(out, conn, &welcome);
        log::debug!("connection {conn} is user {name:?}");
        Ok(())
    }

    /// §4.1.3 a free name for a user that gave none. It need not be
    /// secret, only free: without OS randomness a counter serves.
    fn random_user_name(&mut self) -> String {
        loop {
            let suffix = random_hex(4).unwrap_or_else(|| {
                self.next_guest += 1;
                format!("{:08x}", self.next_guest)
            });
            let name = format!("Guest {suffix}");
            if self.state.find_user(&name).is_none() && self.state.find_profile(&name).is_none() {
                return name;
            }
        }
    }

    /// A `join` update of `user_name` into `chan`.
    pub(super) fn join_update(
        &mut self,
        user_name: &str,
        chan: super::state::ChanId,
        id: Option<Value>,
        now: Time,
    ) -> Object {
        self.presence_update(Known::Join, user_name, chan, id, now)
    }

    /// A `join` or `leave` of `user_name` for `chan`, with the given ID or
    /// a fresh one.
    pub(super) fn presence_update(
        &mut self,
        class: Known,
        user_name: &str,
        chan: super::state::ChanId,
        id: Option<Value>,
        now: Time,
    ) -> Object {
        let id = id.unwrap_or_else(|| self.fresh_id());
        Object::new(class)
            .with(Known::KId, id)
            .with(Known::KClock, now)
            .with(Known::KFrom, user_name)
            .with(Known::KChannel, self.state.channel(chan).name.as_str())
    }

    /// §4.3 a `disconnect` from the client: answered, then closed.
    pub(super) fn disconnect(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::Disconnect);
        send_to(out, req.conn, &reply);
        self.drop_connection(req.conn, req.now, out, Close::Silent);
        Ok(())
    }

    /// §4.3 closure: a `disconnect` if asked (step 1), the close (step
    /// 2) unless the socket is gone already, the connection leaves its user (step 3), a user without
    /// connections leaves all its channels (step 4).
    pub(super) fn drop_connection(
        &mut self,
        conn: ConnId,
        now: Time,
        out: &mut Outbox,
        how: Close,
    ) {
        let Some(c) = self.state.remove_connection(conn) else {
            return;
        };
        self.disarm(c.timer);
        if matches!(how, Close::WithDisconnect | Close::Shutdown) {
            let d = self.server_update(Known::Disconnect, now);
            send_to(out, conn, &d);
        }
        if how != Close::Gone {
            out.closes.push(conn);
        }
        let Some(user) = c.user else {
            return;
        };
        let u = self.state.user_mut(user);
        u.conns.retain(|&x| x != conn);
        if u.conns.is_empty() {
            self.user_leaves_everything(user, now, how != Close::Shutdown, out);
        }
    }

    /// §4.3.4 a user without connections leaves every channel; the others
    /// see its `leave` when `announce` is set. Then the user object goes;
    /// its profile stays.
    fn user_leaves_everything(
        &mut self,
        user: UserId,
        now: Time,
        announce: bool,
        out: &mut Outbox,
    ) {
        let name = self.state.user(user).name.clone();
        let channels = self.state.user(user).channels.clone();
        for chan in channels {
            self.state.part(user, chan, now);
            if announce {
                let leave = self.leave_update(&name, chan, None, now);
                if chan == self.state.primary {
                    self.primary_presence(leave, None);
                } else {
                    self.send_channel(out, chan, &leave);
                }
            }
            self.drop_if_abandoned(chan, out);
        }
        self.state.remove_user(user);
        if let Some(p) = self.state.find_profile_mut(&name) {
            p.last_used = now;
            self.profile_changed(&name, out);
        }
        log::debug!("user {name:?} left");
    }

    /// §4.2: nothing heard from the connection for the ping interval.
    pub fn ping(&mut self, conn: ConnId, now: Time, out: &mut Outbox) {
        if self.state.connection(conn).is_some() {
            let ping = self.server_update(Known::Ping, now);
            send_to(out, conn, &ping);
        }
    }

    /// §4.2: nothing heard for the idle timeout: `connection-unstable`,
    /// then `disconnect`, then the close.
    pub fn idle_timeout(&mut self, conn: ConnId, now: Time, out: &mut Outbox) {
        if self.state.connection(conn).is_none() {
            return;
        }
        let f = self.failure(
            Known::ConnectionUnstable,
            None,
            "Nothing was heard from this connection for too long.",
            now,
        );
        send_to(out, conn, &f);
        self.drop_connection(conn, now, out, Close::WithDisconnect);
    }

    /// §4.1: no `connect` arrived in time; the connection is closed.
    pub fn connect_timeout(&mut self, conn: ConnId, now: Time, out: &mut Outbox) {
        if self
            .state
            .connection(conn)
            .is_some_and(|c| c.user.is_none())
        {
            self.drop_connection(conn, now, out, Close::Silent);
        }
    }

    /// §4.3 steps 3–4 for a connection the net layer lost or dropped (peer
    /// gone, write queue over its limit). Does nothing for an unknown id.
    pub fn closed(&mut self, conn: ConnId, now: Time, out: &mut Outbox) {
        self.drop_connection(conn, now, out, Close::Gone);
    }

    /// Server shutdown: a `disconnect` to every connection, all closed.
    /// Nobody is told of anyone's `leave`: everyone is leaving, and with
    /// N users that would be N² updates.
    pub fn shutdown(&mut self, now: Time, out: &mut Outbox) {
        let conns: Vec<ConnId> = self.state.connection_ids().collect();
        for conn in conns {
            self.drop_connection(conn, now, out, Close::Shutdown);
        }
    }
}
