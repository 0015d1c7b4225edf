//! §4.1 the connect timeout, §4.2 pings and idle timeouts, and the expiry
//! of profiles and channels (§2.3, §2.4), decided here from the time the
//! caller passes in: [`Engine::handle_timeout`] does what is due,
//! [`Engine::next_deadline`] says when to call it next.

use super::{ConnId, Engine, Outbox, Time};
use crate::timer::Wheel;

/// Slots of the timer wheel: one per second; timers further out wait for
/// their revolution.
const WHEEL_SLOTS: usize = 1024;

/// What a connection's one timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// §4.1: the `connect` must have arrived by now.
    Connect,
    /// §4.2: a ping or the idle timeout may be due.
    Activity,
}

/// The timers of every connection, and when expiry runs next.
pub(crate) struct Timers {
    wheel: Wheel<(ConnId, TimerKind)>,
    next_expire: Time,
    fired: Vec<(ConnId, TimerKind)>,
}

impl Timers {
    pub fn new(now: Time) -> Timers {
        Timers {
            wheel: Wheel::new(WHEEL_SLOTS, now),
            next_expire: now,
            fired: Vec::new(),
        }
    }
}

impl Engine {
    /// Sets the connection's one timer, replacing what it had.
    pub(super) fn arm(&mut self, conn: ConnId, at: Time, kind: TimerKind) {
        let Some(c) = self.state.connection_mut(conn) else {
            return;
        };
        if let Some(old) = c.timer.take() {
            self.timers.wheel.cancel(old);
        }
        c.timer = Some(self.timers.wheel.insert(at, (conn, kind)));
    }

    /// §4.1: a new connection has `connect_timeout` seconds to connect.
    pub(super) fn arm_connect_timeout(&mut self, conn: ConnId, now: Time) {
        let at = now + self.config.connect_timeout;
        self.arm(conn, at, TimerKind::Connect);
    }

    /// §4.2: once connected, the connection is watched for silence.
    pub(super) fn arm_activity(&mut self, conn: ConnId, now: Time) {
        let at = now + self.config.ping_interval.min(self.config.idle_timeout);
        self.arm(conn, at, TimerKind::Activity);
    }

    /// Forgets a closed connection's timer.
    pub(super) fn disarm(&mut self, timer: Option<crate::timer::TimerId>) {
        if let Some(t) = timer {
            self.timers.wheel.cancel(t);
        }
    }

    /// Does what is due at `now`: connect timeouts, pings, idle timeouts
    /// (§4.1, §4.2), and the expiry of profiles and channels.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Outbox) {
        let mut fired = std::mem::take(&mut self.timers.fired);
        self.timers.wheel.advance(now, &mut fired);
        for (conn, kind) in fired.drain(..) {
            let Some(c) = self.state.connection_mut(conn) else {
                continue;
            };
            c.timer = None;
            match kind {
                TimerKind::Connect => self.connect_timeout(conn, now, out),
                TimerKind::Activity => self.check_activity(conn, now, out),
            }
        }
        self.timers.fired = fired;
        if now >= self.timers.next_expire {
            self.timers.next_expire = self.expire(now, out);
        }
    }

    /// When [`Engine::handle_timeout`] has something to do next.
    pub fn next_deadline(&self) -> Time {
        let next = self.timers.next_expire;
        self.timers.wheel.next_due().map_or(next, |t| t.min(next))
    }

    /// §4.2: a ping after `ping_interval` seconds without an update, one
    /// per quiet spell; `connection-unstable` and the close after
    /// `idle_timeout` seconds.
    fn check_activity(&mut self, conn: ConnId, now: Time, out: &mut Outbox) {
        let Some(c) = self.state.connection_mut(conn) else {
            return;
        };
        let quiet = now.saturating_sub(c.last_activity);
        let last = c.last_activity;
        let (ping, idle) = (self.config.ping_interval, self.config.idle_timeout);
        if quiet >= idle {
            log::debug!("connection {conn}: idle for {quiet} s");
            self.idle_timeout(conn, now, out);
        } else if quiet >= ping {
            if c.pinged_for != Some(last) {
                c.pinged_for = Some(last);
                log::debug!("connection {conn}: ping after {quiet} s");
                self.ping(conn, now, out);
            }
            self.arm(conn, last + idle, TimerKind::Activity);
        } else {
            self.arm(conn, last + ping.min(idle), TimerKind::Activity);
        }
    }
}
