//! §5.5 server information retrieval.

use super::table;
use super::{Engine, Failure, Outbox, Request, send_to};
use crate::wire::{Known, Value};

impl Engine {
    /// §5.5.1 channels: the names of every channel whose rules allow the
    /// requester a `channels` update; with a `channel`, only its children
    /// (`shirakumo.mess` §5).
    pub(super) fn channels(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let name = self.state.user(req.user).name.clone();
        let parent = req
            .str_field(Known::KChannel)
            .and_then(|n| self.state.find_channel(n));
        let names: Vec<Value> = self
            .state
            .channel_ids()
            .filter(|&c| parent.is_none_or(|p| self.is_child_channel(c, p)))
            .filter(|&c| !self.state.channel(c).anonymous || self.state.in_channel(req.user, c))
            .filter(|&c| self.state.permitted(c, Known::Channels, &name))
            .map(|c| Value::string(self.state.channel(c).name.as_str()))
            .collect();
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::Channels);
        reply.set(Known::KChannels, Value::List(names));
        send_to(out, req.conn, &reply);
        Ok(())
    }

    /// §5.5.2 users: the names of the users in a channel the requester is in.
    pub(super) fn users(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let names: Vec<Value> = self
            .state
            .channel(chan)
            .members
            .iter()
            .map(|&u| Value::string(self.state.user(u).name.as_str()))
            .collect();
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::Users);
        reply.set(Known::KUsers, Value::List(names));
        send_to(out, req.conn, &reply);
        Ok(())
    }

    /// §5.5.3 user-info: connection count and whether a profile exists.
    pub(super) fn user_info(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let target = req.str_field(Known::KTarget).unwrap_or_default();
        let active = self.state.find_user(target);
        let profile = self.state.find_profile(target);
        if active.is_none() && profile.is_none() {
            return Err(no_such_user(target));
        }
        let connections = active.map_or(0, |u| self.state.user(u).conns.len() as u64);
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::UserInfo);
        reply.set(Known::KConnections, connections);
        reply.set(Known::KRegistered, Value::bool(profile.is_some()));
        // shirakumo-user-info (`shirakumo.mess` §14): registered users'
        // info, never what the request carried.
        reply.remove(Known::KInfo);
        if let Some(info) = self.user_info_field(target) {
            reply.set(Known::KInfo, info);
        }
        send_to(out, req.conn, &reply);
        Ok(())
    }

    /// §5.5.4 capabilities: the update types the requester may send to a
    /// channel it is in.
    pub(super) fn capabilities(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let name = self.state.user(req.user).name.clone();
        // Every class a rule governs that the rules permit (§2.5, with the
        // primary channel's rule where the channel has none), and the
        // connection upkeep that no rule governs.
        let permitted: Vec<Value> = table::handled()
            .filter(|d| {
                if d.checks.upkeep {
                    d.class != Known::Connect
                } else if d.checks.channel == super::registry::ChannelUse::Ignored {
                    // Checked against the primary channel wherever sent
                    // (§5.1.8), whatever the channel's own rules or roles.
                    self.state.permitted(self.state.primary, d.class, &name)
                } else {
                    self.state.permitted(chan, d.class, &name)
                }
            })
            .map(|d| Value::sym(d.class))
            .collect();
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::Capabilities);
        reply.set(Known::KPermitted, Value::List(permitted));
        send_to(out, req.conn, &reply);
        Ok(())
    }

    /// §5.5.5 server-info: the user's channels and registration time, and
    /// per connection its start time and IP address.
    pub(super) fn server_info(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let target = req.str_field(Known::KTarget).unwrap_or_default();
        let active = self.state.find_user(target);
        let profile = self.state.find_profile(target);
        if active.is_none() && profile.is_none() {
            return Err(no_such_user(target));
        }
        let pair = |k: Known, v: Value| Value::List(vec![Value::sym(k), v]);
        let channels = active.map_or_else(Vec::new, |u| {
            self.state
                .user(u)
                .channels
                .iter()
                .map(|&c| Value::string(self.state.channel(c).name.as_str()))
                .collect()
        });
        let registered_on = profile.map_or(Value::NIL, |p| Value::int(p.registered_on));
        let attributes = vec![
            pair(Known::Channels, Value::List(channels)),
            pair(Known::RegisteredOn, registered_on),
        ];
        let connections = active.map_or_else(Vec::new, |u| {
            self.state
                .user(u)
                .conns
                .iter()
                .filter_map(|&c| self.state.connection(c))
                .map(|c| {
                    Value::List(vec![
                        pair(Known::ConnectedOn, Value::int(c.opened)),
                        pair(Known::Ip, Value::string(c.ip.to_string())),
                        // shirakumo-ip (§10): IPv6, IPv4 mapped.
                        pair(Known::SIp, Value::string(super::ext::ipv6_text(c.ip))),
                    ])
                })
                .collect()
        });
        let mut reply = req.update.clone();
        super::retain_known_fields(&mut reply, Known::ServerInfo);
        reply.set(Known::KAttributes, Value::List(attributes));
        reply.set(Known::KConnections, Value::List(connections));
        send_to(out, req.conn, &reply);
        Ok(())
    }
}

fn no_such_user(name: &str) -> Failure {
    Failure::new(
        Known::NoSuchUser,
        format!("There is no user or profile named {name:?}."),
    )
}
