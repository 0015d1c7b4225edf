//! §5.3 channel creation and management, §5.4 channel interaction, and the
//! default permission rules (§2.4, §2.5).

use super::random::random_hex;
use super::state::{ChanId, Channel};
use super::undo::Undo;
use super::{Engine, Failure, Outbox, Request, Time, retain_known_fields, send_to};
use crate::protocol::{self, Rule};
use crate::wire::{Known, Object, Value};

use Known as K;

/// Classes whose rules only the registrant holds by default in regular
/// and anonymous channels (moderation stays with the creator).
const MODERATION: &[Known] = &[K::Permissions, K::Kick, K::Grant, K::Deny];

/// Channel updates anyone in a regular channel may send by default.
const MEMBERSHIP: &[Known] = &[
    K::Join,
    K::Leave,
    K::Pull,
    K::Message,
    K::Users,
    K::Channels,
    K::Capabilities,
];

/// §2.5 the regular channel rule set: moderation to the registrant, the
/// rest to anyone. Only classes the server handles have rules, so that
/// `capabilities` (§5.5.4) and the rules always agree.
pub(crate) fn regular_rules(registrant: &str) -> Vec<(Known, Rule)> {
    let moderation = MODERATION.iter().map(|&k| (k, Rule::only(registrant)));
    let membership = MEMBERSHIP.iter().map(|&k| (k, Rule::anyone()));
    moderation.chain(membership).collect()
}

/// §2.4.2 the anonymous channel rule set: like a regular channel's, but
/// nobody may change the rules or join by themselves; members are pulled
/// in. Outsiders are refused everything before any rule is consulted
/// (see `general_checks`), which keeps the channel invisible to them.
pub(crate) fn anonymous_rules(registrant: &str) -> Vec<(Known, Rule)> {
    let mut rules = regular_rules(registrant);
    for (k, r) in rules.iter_mut() {
        if matches!(k, K::Permissions | K::Join) {
            *r = Rule::no_one();
        }
    }
    rules
}

/// §2.4.1 the primary channel's rules; its registrant is the server user,
/// so only the server (or an administrator it grants) may message or
/// moderate it. Channel-less updates are checked here (§5.1.8).
pub(crate) fn primary_rules(server: &str) -> Vec<(Known, Rule)> {
    let admin = || Rule::only(server);
    vec![
        (K::Permissions, admin()),
        (K::Create, Rule::anyone()),
        (K::Join, Rule::anyone()),
        (K::Leave, Rule::no_one()),
        (K::Kick, admin()),
        (K::Pull, Rule::no_one()),
        (K::Message, admin()),
        (K::Users, Rule::anyone()),
        (K::Channels, Rule::anyone()),
        (K::Grant, admin()),
        (K::Deny, admin()),
        (K::Register, Rule::anyone()),
        (K::UserInfo, Rule::anyone()),
        (K::Capabilities, Rule::anyone()),
        (K::ServerInfo, admin()),
    ]
}

/// True for the classes a rule can be given for (§2.5): those the server
/// handles and that are not connection upkeep, which no rule governs.
pub(crate) fn is_ruled_class(class: Known) -> bool {
    protocol::is_update_class(class)
        && !matches!(class, K::Connect | K::Ping | K::Pong | K::Disconnect)
}

impl Engine {
    /// Sends an update to every connection of every user in the channel,
    /// printed once (§3).
    pub(super) fn send_channel(&self, out: &mut Outbox, chan: ChanId, update: &Object) {
        let Some(bytes) = super::print_shared(update) else {
            return;
        };
        let members = &self.state.channel(chan).members;
        out.sends.reserve(members.len());
        for &user in members {
            for &conn in &self.state.user(user).conns {
                out.sends.push((conn, bytes.clone()));
            }
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

    /// §2.4.2 an anonymous channel goes as soon as it is empty; regular
    /// ones wait for their lifetime (see `expire`).
    /// A regular channel that became empty records when, for its expiry.
    pub(super) fn drop_if_abandoned(&mut self, chan: ChanId, out: &mut Outbox) {
        let c = self.state.channel(chan);
        if !c.members.is_empty() {
            return;
        }
        if c.anonymous {
            self.state.remove_channel(chan);
        } else {
            self.channel_changed(chan, out);
        }
    }

    fn require_member(&self, req: &Request, chan: ChanId) -> Result<(), Failure> {
        if self.state.in_channel(req.user, chan) {
            Ok(())
        } else {
            Err(Failure::new(
                Known::NotInChannel,
                format!("You are not in {:?}.", self.state.channel(chan).name),
            ))
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
    fn echo(req: &Request) -> Object {
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
        let rules = if anonymous {
            anonymous_rules(&registrant)
        } else {
            regular_rules(&registrant)
        };
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
        });
        // Step 5.
        self.state.join(req.user, chan);
        if !anonymous {
            self.channel_changed(chan, out);
        }
        // Step 6: a join with the create's ID.
        let first = out.sends.len();
        let join = self.join_update(&registrant, chan, Some(req.id()), req.now);
        self.send_user(out, req.user, &join);
        if !anonymous {
            let name = self.state.channel(chan).name.clone();
            self.confirm(out, first, req.conn, req.id(), Undo::Channel { name });
        }
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
            .filter(|&k| is_ruled_class(k));
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
        Ok(())
    }

    /// §5.4.2 leave.
    pub(super) fn leave(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        self.require_member(req, chan)?;
        let leave = Self::echo(req);
        self.send_channel(out, chan, &leave);
        self.state.part(req.user, chan, req.now);
        self.drop_if_abandoned(chan, out);
        Ok(())
    }

    /// §5.4.3 pull.
    pub(super) fn pull(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        self.require_member(req, chan)?;
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
        Ok(())
    }

    /// §5.4.4 kick.
    pub(super) fn kick(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let chan = self.channel_of(req)?;
        self.require_member(req, chan)?;
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
        let chan = self.channel_of(req)?;
        self.require_member(req, chan)?;
        let message = Self::echo(req);
        self.send_channel(out, chan, &message);
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
        .filter(|&k| is_ruled_class(k))
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
