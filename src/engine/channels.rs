//! §5.3 channel creation and management, §5.4 channel interaction, and the
//! default permission rules (§2.4, §2.5).

use super::random::random_hex;
use super::registry::ChannelKind;
use super::state::{ChanId, Channel};
use super::table;
use super::undo::Undo;
use super::{Engine, Failure, Outbox, Request, Time, retain_known_fields, send_to};
use crate::protocol::{self, Rule};
use crate::wire::{Known, Object, Value};

impl Engine {
    /// Sends an update to every connection of every user in the channel,
    /// printed once (§3).
    /// Extensions may skip recipients (the recipient hooks) and see what
    /// went out (the distributed hooks); without any, it is a straight loop.
    pub(super) fn send_channel(&mut self, out: &mut Outbox, chan: ChanId, update: &Object) {
        let Some(bytes) = super::print_shared(update) else {
            return;
        };
        let hooks = table::hooks();
        let members = &self.state.channel(chan).members;
        out.sends.reserve(members.len());
        if hooks.recipient.is_empty() {
            for &user in members {
                for &conn in &self.state.user(user).conns {
                    out.sends.push((conn, bytes.clone()));
                }
            }
        } else {
            for &user in members {
                if hooks.recipient.iter().all(|h| h(self, chan, update, user)) {
                    for &conn in &self.state.user(user).conns {
                        out.sends.push((conn, bytes.clone()));
                    }
                }
            }
        }
        for hook in &hooks.distributed {
            hook(self, chan, update, &bytes, out);
        }
    }

    /// §5.4.1 a user became a member of a channel (join, pull, create, or
    /// the primary channel on connect): the join hooks run, after its
    /// `join` went out.
    pub(super) fn joined(
        &mut self,
        user: super::state::UserId,
        chan: ChanId,
        now: Time,
        out: &mut Outbox,
    ) {
        for hook in &table::hooks().on_join {
            hook(self, user, chan, now, out);
        }
    }

    /// Sends an update to every connection of one user (§3).
    pub(super) fn send_user(&self, out: &mut Outbox, user: super::state::UserId, update: &Object) {
        let Some(bytes) = super::print_shared(update) else {
            return;
        };
        for &conn in &self.state.user(user).conns {
            out.sends.push((conn, bytes.clone()));
        }
    }

    /// A `leave` update of `user_name` from `chan`.
    pub(super) fn leave_update(
        &mut self,
        user_name: &str,
        chan: ChanId,
        id: Option<Value>,
        now: Time,
    ) -> Object {
        self.presence_update(Known::Leave, user_name, chan, id, now)
    }

    /// A channel was removed (emptied anonymous, expired, destroyed, or
    /// never saved): what extensions keep of it goes (`shirakumo.mess` §1
    /// its backlog's share of the server-wide budget, §12 its payloads).
    pub(super) fn channel_removed(&mut self, c: &super::Channel, out: &mut Outbox) {
        super::ext::backfill::channel_removed(self, c);
        super::ext::link::channel_removed(self, c, out);
    }

    /// §2.4.2 an anonymous channel goes as soon as it is empty; regular
    /// ones wait for their lifetime (see `expire`).
    /// A regular channel that became empty records when, for its expiry.
    pub(super) fn drop_if_abandoned(&mut self, chan: ChanId, out: &mut Outbox) {
        let c = self.state.channel(chan);
        if !c.members.is_empty() {
            return;
        }
        if c.anonymous {
            if let Some(c) = self.state.remove_channel(chan) {
                self.channel_removed(&c, out);
            }
        } else {
            self.channel_changed(chan, out);
        }
    }

    fn require_room(&self, user: super::state::UserId, who: &str) -> Result<(), Failure> {
        if self.state.user(user).channels.len() >= self.config.max_channels_per_user {
            Err(Failure::new(
                Known::TooManyChannels,
                format!(
                    "{who} already inhabit{} {} channels.",
                    if who == "You" { "" } else { "s" },
                    self.config.max_channels_per_user
                ),
            ))
        } else {
            Ok(())
        }
    }

    /// The creation quota: channels alive that this user, or anyone from
    /// this address, created.
    fn require_creation_quota(&self, req: &Request) -> Result<(), Failure> {
        let max = self.config.max_channels_per_creator;
        let name = &self.state.user(req.user).name;
        let from_addr = self
            .state
            .connection(req.conn)
            .map_or(0, |c| self.state.created_from(super::state::addr_key(c.ip)));
        if self.state.created_by(name) >= max || from_addr >= max {
            return Err(Failure::new(
                Known::TooManyChannels,
                format!(
                    "You, or your address, created {max} channels that still exist, \
                     the most one user or address may keep."
                ),
            ));
        }
        Ok(())
    }

    /// The update as distributed: known fields only, `from` and `clock`
    /// already filled in by §5.1.
    pub(crate) fn echo(req: &Request) -> Object {
        let mut update = req.update.clone();
        retain_known_fields(&mut update, req.class);
        update
    }

    /// §5.3.1 create.
    pub(super) fn create(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        // Step 1 (permission on the primary channel) was §5.1.8.
        let requested = req.str_field(Known::KChannel).map(str::to_owned);
        if let Some(name) = &requested {
            // Step 2.
            if self.state.find_channel(name).is_some() {
                return Err(Failure::new(
                    Known::ChannelnameTaken,
                    format!("A channel named {name:?} exists already."),
                ));
            }
            if name.starts_with('@') {
                return Err(Failure::new(
                    Known::BadName,
                    "Names starting with @ are reserved for anonymous channels.",
                ));
            }
        }
        // Step 3, and the server's own limits.
        self.require_room(req.user, "You")?;
        self.require_creation_quota(req)?;
        if self.state.channel_count() >= self.config.max_channels {
            return Err(Failure::new(
                Known::TooManyChannels,
                format!(
                    "The server holds its maximum of {} channels.",
                    self.config.max_channels
                ),
            ));
        }
        // Step 4: anonymous when no name is given.
        let registrant = self.state.user(req.user).name.clone();
        let (name, anonymous) = match requested {
            Some(n) => (n, false),
            None => loop {
                // §2.4.2: the name keeps the channel hidden, so it must
                // be unguessable; without OS randomness there is none.
                let Some(hex) = random_hex(12) else {
                    return Err(Failure::new(
                        Known::UpdateFailure,
                        "The server cannot get random bytes from its operating system \
                         to name an anonymous channel; try again later.",
                    ));
                };
                let n = format!("@{hex}");
                if self.state.find_channel(&n).is_none() {
                    break (n, true);
                }
            },
        };
        let kind = if anonymous {
            ChannelKind::Anonymous
        } else {
            ChannelKind::Regular
        };
        let rules = table::default_rules(kind, &registrant);
        let chan = self.state.add_channel(Channel {
            name,
            registrant: registrant.clone(),
            rules,
            anonymous,
            last_used: req.now,
            lifetime: self.config.channel_lifetime,
            members: Vec::new(),
            creator_addr: self
                .state
                .connection(req.conn)
                .map(|c| super::state::addr_key(c.ip)),
            data: Default::default(),
            backlog: Default::default(),
            volatile: Default::default(),
            emotes: Default::default(),
            roles: None,
        });
        // shirakumo-roles (`shirakumo.mess` §26): the default roles; not
        // in anonymous channels, whose fixed rules keep them hidden
        // (§2.4.2) and which an admin role would widen.
        if !anonymous {
            super::ext::roles::install_defaults(self, chan, &registrant);
        }
        // Step 5.
        self.state.join(req.user, chan);
        if !anonymous {
            self.channel_changed(chan, out);
        }
        // Step 6: a join with the create's ID.
        let first = out.sends.len();
        let join = self.join_update(&registrant, chan, Some(req.id()), req.now);
        // The creator is the only member; as a channel update the join
        // is seen by the extensions like any other.
        self.send_channel(out, chan, &join);
        if !anonymous {
            let name = self.state.channel(chan).name.clone();
            self.confirm(out, first, req.conn, req.id(), Undo::Channel { name });
        }
        self.joined(req.user, chan, req.now, out);
        Ok(())
    }

    /// §5.3.2 permissions: view, or change rule by rule.
    pub(super) fn permissions(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let rules: Vec<Value> = req
            .update
            .get(Known::KPermissions)
            .and_then(Value::as_list)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let before = (!rules.is_empty()).then(|| self.state.channel(chan).rules.clone());
        let max_names = self.config.max_rule_names;
        for rule in &rules {
            match parse_rule(rule, max_names) {
                Ok((class, r)) => self.state.channel_mut(chan).set_rule(class, r),
                Err(text) => {
                    // Step 1.2: reported, and the rule disregarded.
                    let f = self.failure(Known::InvalidPermissions, Some(req.id()), text, req.now);
                    send_to(out, req.conn, &f);
                }
            }
        }
        if !rules.is_empty() {
            self.channel_changed(chan, out);
        }
        let first = out.sends.len();
        let mut reply = Self::echo(req);
        reply.set(Known::KPermissions, self.rules_value(chan));
        send_to(out, req.conn, &reply);
        if let Some(before) = before {
            let name = self.state.channel(chan).name.clone();
            self.confirm(out, first, req.conn, req.id(), Undo::Rules { name, before });
        }
        Ok(())
    }

    /// The full rule set of a channel as a wire list.
    fn rules_value(&self, chan: ChanId) -> Value {
        Value::List(
            self.state
                .channel(chan)
                .rules
                .iter()
                .map(|(k, r)| Value::List(vec![Value::sym(*k), r.to_value()]))
                .collect(),
        )
    }

    /// §5.3.2 grant and deny.
    pub(super) fn grant_or_deny(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let class = req
            .update
            .get(Known::KUpdate)
            .and_then(Value::as_symbol)
            .and_then(|s| s.known())
            .filter(|&k| table::is_ruled_class(k));
        let Some(class) = class else {
            return Err(Failure::new(
                Known::InvalidPermissions,
                "The :update field must name an update class this server handles.",
            ));
        };
        let target = req.str_field(Known::KTarget).unwrap_or_default().to_owned();
        let primary = self.state.primary;
        let channel = self.state.channel(chan);
        let mut rule = channel
            .rule(class)
            .or_else(|| self.state.channel(primary).rule(class))
            .cloned()
            .unwrap_or_else(Rule::no_one);
        if req.class == Known::Grant {
            rule.grant(&target);
        } else {
            rule.deny(&target);
        }
        if rule.names().len() > self.config.max_rule_names {
            return Err(Failure::new(
                Known::InvalidPermissions,
                format!(
                    "The rule for {} already lists {} names, the most a rule may list.",
                    class.name(),
                    self.config.max_rule_names
                ),
            ));
        }
        let before = self.state.channel(chan).rules.clone();
        self.state.channel_mut(chan).set_rule(class, rule);
        self.channel_changed(chan, out);
        // "Sent back to the user": every connection of the user (§3).
        let first = out.sends.len();
        let reply = Self::echo(req);
        self.send_user(out, req.user, &reply);
        let name = self.state.channel(chan).name.clone();
        self.confirm(out, first, req.conn, req.id(), Undo::Rules { name, before });
        Ok(())
    }

    /// §5.4.1 join.
    pub(super) fn join(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        if self.state.in_channel(req.user, chan) {
            return Err(Failure::new(
                Known::AlreadyInChannel,
                format!("You are in {:?} already.", self.state.channel(chan).name),
            ));
        }
        self.require_room(req.user, "You")?;
        self.state.join(req.user, chan);
        let join = Self::echo(req);
        self.send_channel(out, chan, &join);
        self.joined(req.user, chan, req.now, out);
        Ok(())
    }

    /// §5.4.2 leave.
    pub(super) fn leave(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let leave = Self::echo(req);
        self.send_channel(out, chan, &leave);
        self.state.part(req.user, chan, req.now);
        self.drop_if_abandoned(chan, out);
        Ok(())
    }

    /// §5.4.3 pull.
    pub(super) fn pull(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let target_name = req.str_field(Known::KTarget).unwrap_or_default().to_owned();
        let Some(target) = self.state.find_user(&target_name) else {
            return Err(Failure::new(
                Known::NoSuchUser,
                format!("There is no user named {target_name:?}."),
            ));
        };
        if self.state.in_channel(target, chan) {
            return Err(Failure::new(
                Known::AlreadyInChannel,
                format!(
                    "{target_name:?} is in {:?} already.",
                    self.state.channel(chan).name
                ),
            ));
        }
        self.require_room(target, &format!("{target_name:?}"))?;
        self.state.join(target, chan);
        let join = self.join_update(&target_name, chan, Some(req.id()), req.now);
        self.send_channel(out, chan, &join);
        self.joined(target, chan, req.now, out);
        Ok(())
    }

    /// §5.4.4 kick.
    pub(super) fn kick(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let target_name = req.str_field(Known::KTarget).unwrap_or_default().to_owned();
        let target = self
            .state
            .find_user(&target_name)
            .filter(|&t| self.state.in_channel(t, chan));
        let Some(target) = target else {
            return Err(Failure::new(
                Known::NotInChannel,
                format!(
                    "{target_name:?} is not in {:?}.",
                    self.state.channel(chan).name
                ),
            ));
        };
        let kick = Self::echo(req);
        self.send_channel(out, chan, &kick);
        let leave = self.leave_update(&target_name, chan, None, req.now);
        self.send_channel(out, chan, &leave);
        self.state.part(target, chan, req.now);
        self.drop_if_abandoned(chan, out);
        Ok(())
    }

    /// §5.4.5 message.
    pub(super) fn message(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        self.distribute(req, out)
    }

    /// §3 sends the update, as distributed, to every member of its
    /// channel: `message` and the extensions' channel updates.
    pub(crate) fn distribute(
        &mut self,
        req: &mut Request,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        let mut delivery = super::registry::Delivery::Everyone;
        for hook in &table::hooks().delivery {
            if hook(self, chan, req)? == super::registry::Delivery::SenderOnly {
                delivery = super::registry::Delivery::SenderOnly;
            }
        }
        let update = Self::echo(req);
        match delivery {
            super::registry::Delivery::Everyone => self.send_channel(out, chan, &update),
            super::registry::Delivery::SenderOnly => self.send_user(out, req.user, &update),
        }
        Ok(())
    }
}

/// §2.5 `RULE ::= (type EXPR)`: the class must be an update class.
fn parse_rule(rule: &Value, max_names: usize) -> Result<(Known, Rule), String> {
    let items = match rule.as_list() {
        Some(items) if items.len() == 2 => items,
        _ => return Err("A rule must be a list of an update type and an expression.".into()),
    };
    let class = items[0]
        .as_symbol()
        .and_then(|s| s.known())
        .filter(|&k| table::is_ruled_class(k))
        .ok_or_else(|| {
            format!(
                "{:?} does not name an update type this server handles.",
                items[0]
            )
        })?;
    let r = Rule::from_value(&items[1], max_names).map_err(|e| match e {
        protocol::RuleError::TooManyNames(max) => format!(
            "The rule for {} lists more than {max} names, the most a rule may list.",
            class.name()
        ),
        protocol::RuleError::Shape => format!(
            "The rule for {} must be T, NIL, (+ name...) or (- name...).",
            class.name()
        ),
        protocol::RuleError::BadName => {
            format!(
                "The rule for {} lists something that is not a user name.",
                class.name()
            )
        }
    })?;
    Ok((class, r))
}
