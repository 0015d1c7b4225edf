//! What the class table is made of: an entry per update class the server
//! handles (fields §1.4, handler, §5.1 checks, default rules §2.4–§2.5)
//! and an [`Extension`] grouping entries with the hooks it needs. The
//! table itself, and everything derived from it, is `table.rs`.

use super::state::{ChanId, UserId};
use super::{Engine, Failure, Outbox, Request};
use crate::protocol::{Field, Rule};
use crate::wire::{Known, Object};
use std::rc::Rc;

/// A handler: the update passed §5.1, the handler does the rest.
pub(crate) type Handler = fn(&mut Engine, &mut Request, &mut Outbox) -> Result<(), Failure>;

/// What §5.1.6 asks of the update's `channel` field.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChannelUse {
    /// Not looked at: the rules of the primary channel apply.
    Ignored,
    /// When present it must name an existing channel, whose rules apply;
    /// absent, the primary channel's rules apply.
    Existing,
    /// It must name an existing channel the sender is in (§5.4).
    Joined,
    /// It names a channel to make (§5.3.1): not looked up.
    New,
}

/// The §5.1 checks an update class is subject to.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Checks {
    /// Connection upkeep (`ping`, `pong`, `disconnect`, `connect`): only
    /// the name checks of §5.1.4–5 apply, no rule governs it.
    pub upkeep: bool,
    /// §5.1.6 the `channel` field.
    pub channel: ChannelUse,
    /// §5.1.7 the target must be a user on the server, not only a profile.
    pub target_active: bool,
    /// §5.1.7 does not apply: the target is any valid name (`shirakumo.mess`
    /// §7 `ban` and `unban` name users that need not exist).
    pub target_any: bool,
    /// §5.1.8 does not apply when the target is the sender itself.
    pub free_about_self: bool,
}

impl Checks {
    /// An update checked against the primary channel's rules.
    pub const SERVER: Checks = Checks {
        upkeep: false,
        channel: ChannelUse::Ignored,
        target_active: false,
        target_any: false,
        free_about_self: false,
    };
    /// An update to a channel the sender is in.
    pub const MEMBER: Checks = Checks {
        channel: ChannelUse::Joined,
        ..Checks::SERVER
    };
    /// Connection upkeep.
    pub const UPKEEP: Checks = Checks {
        upkeep: true,
        ..Checks::SERVER
    };
}

/// A default rule (§2.5) in one kind of channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum DefaultRule {
    /// No rule: the primary channel's rule applies (or none: refused).
    Unset,
    /// `T`.
    Anyone,
    /// `NIL`.
    NoOne,
    /// `(+ registrant)`.
    Registrant,
}

impl DefaultRule {
    /// The rule for a channel registered by `registrant`, if any.
    pub fn rule(self, registrant: &str) -> Option<Rule> {
        match self {
            DefaultRule::Unset => None,
            DefaultRule::Anyone => Some(Rule::anyone()),
            DefaultRule::NoOne => Some(Rule::no_one()),
            DefaultRule::Registrant => Some(Rule::only(registrant)),
        }
    }
}

/// The default rules of one class in the three kinds of channel.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Defaults {
    /// §2.4.1 in the primary channel (its registrant is the server user).
    pub primary: DefaultRule,
    /// §2.4 in a regular channel.
    pub regular: DefaultRule,
    /// §2.4.2 in an anonymous channel.
    pub anonymous: DefaultRule,
}

impl Defaults {
    /// No rule anywhere (connection upkeep).
    pub const NONE: Defaults = Defaults {
        primary: DefaultRule::Unset,
        regular: DefaultRule::Unset,
        anonymous: DefaultRule::Unset,
    };
}

/// Everything the server knows about one update class.
pub(crate) struct ClassDef {
    /// The class.
    pub class: Known,
    /// Its fields, inherited ones included, as the server checks them.
    pub fields: &'static [Field],
    /// What it does once the checks passed.
    pub handler: Handler,
    /// Which §5.1 checks apply.
    pub checks: Checks,
    /// Its default rules.
    pub rules: Defaults,
}

/// Called on a connection's `connect` once §4.1 steps 2–4 passed; a
/// failure refuses the connection.
pub(crate) type ConnectHook = fn(&Engine, &super::Connection, &Object) -> Result<(), Failure>;
/// Called on every update whose fields passed §1.4, before the server
/// fills in `clock` (§3): checks what an extension adds to classes it
/// does not own (markup's `rich`, sign's `signature`). A failure refuses
/// the update.
pub(crate) type CheckHook = fn(&Object, Known) -> Result<(), Failure>;
/// What a delivery hook decides about a channel update a user sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Distributed as usual (§3).
    Everyone,
    /// `shirakumo.mess` §9.1: sent back to its sender only.
    SenderOnly,
}
/// Called before a user's channel update is distributed (§3); a failure
/// refuses it (`shirakumo.mess` §8 pause, §9 quiet, §11 bridge, which
/// rewrites it).
pub(crate) type DeliveryHook = fn(&mut Engine, ChanId, &mut Request) -> Result<Delivery, Failure>;
/// Called per recipient of a channel update (§3): false skips it.
pub(crate) type RecipientHook = fn(&Engine, ChanId, &Object, UserId) -> bool;
/// Called once a channel update was distributed, with its printed bytes,
/// shared with the recipients.
pub(crate) type DistributedHook = fn(&mut Engine, ChanId, &Object, &Rc<[u8]>, &mut Outbox);
/// Called when a user joined a channel, after its `join` went out.
pub(crate) type JoinHook = fn(&mut Engine, UserId, ChanId, super::Time, &mut Outbox);

/// The points where an extension takes part in what the core does, each
/// called from the one place that does the thing.
#[derive(Copy, Clone)]
pub(crate) struct Hooks {
    /// §1.4 extra checks of an update's fields.
    pub check: Option<CheckHook>,
    /// §4.1 on connect (ip bans, blacklists, one-time passwords).
    pub on_connect: Option<ConnectHook>,
    /// §3 before a user's channel update is distributed (pause, quiet).
    pub delivery: Option<DeliveryHook>,
    /// §3 per recipient of a channel update (block).
    pub recipient: Option<RecipientHook>,
    /// After a channel update went out (backfill, history).
    pub distributed: Option<DistributedHook>,
    /// §5.4.1 on join (backfill replay, pause notice).
    pub on_join: Option<JoinHook>,
}

impl Hooks {
    /// Takes part nowhere.
    pub const NONE: Hooks = Hooks {
        check: None,
        on_connect: None,
        delivery: None,
        recipient: None,
        distributed: None,
        on_join: None,
    };
}

/// An extension: the names it is advertised under, its classes, its hooks.
pub(crate) struct Extension {
    /// The names in the `connect` reply's `:extensions` (§4.1.11); empty
    /// for the core protocol. Some extensions go by two spellings.
    pub names: &'static [&'static str],
    /// The update classes it adds.
    pub classes: &'static [ClassDef],
    /// Fields it adds to existing classes (`define-object-extension`):
    /// each applies to the named class and all its subclasses.
    pub fields: &'static [(Known, Field)],
    /// Where it takes part in the core's work.
    pub hooks: Hooks,
}

/// The three kinds of channel, for their default rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChannelKind {
    /// §2.4.1.
    Primary,
    /// §2.4.
    Regular,
    /// §2.4.2.
    Anonymous,
}
