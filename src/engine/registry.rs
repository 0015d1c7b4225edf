//! The one table of every update class the server handles: its fields
//! (§1.4), its handler, which §5.1 checks apply to it, its default rules
//! in primary, regular and anonymous channels (§2.4, §2.5), and the
//! extension it belongs to. Routing, field checks, default rule sets,
//! `capabilities` (§5.5.4) and the `:extensions` of the `connect` reply
//! (§4.1.11) are all read from here, so they cannot disagree.
//!
//! The core classes are one [`Extension`] without a name; each Shirakumo
//! extension is one file under `ext/` listed in [`EXTENSIONS`].

use super::ext;
use super::state::{ChanId, UserId};
use super::{Engine, Failure, Outbox, Request};
use crate::protocol::{Field, Rule};
use crate::wire::{Known, Object};
use std::rc::Rc;
use std::sync::OnceLock;

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
    /// §5.1.8 does not apply when the target is the sender itself.
    pub free_about_self: bool,
}

impl Checks {
    /// An update checked against the primary channel's rules.
    pub const SERVER: Checks = Checks {
        upkeep: false,
        channel: ChannelUse::Ignored,
        target_active: false,
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
    fn rule(self, registrant: &str) -> Option<Rule> {
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
/// Called per recipient of a channel update (§3): false skips it.
pub(crate) type RecipientHook = fn(&Engine, ChanId, &Object, UserId) -> bool;
/// Called once a channel update was distributed, with its printed bytes,
/// shared with the recipients.
pub(crate) type DistributedHook = fn(&mut Engine, ChanId, &Object, &Rc<[u8]>);
/// Called when a user joined a channel, after its `join` went out.
pub(crate) type JoinHook = fn(&mut Engine, UserId, ChanId, &mut Outbox);

/// The points where an extension takes part in what the core does, each
/// called from the one place that does the thing.
#[derive(Copy, Clone)]
pub(crate) struct Hooks {
    /// §4.1 on connect (ip bans, blacklists, one-time passwords).
    pub on_connect: Option<ConnectHook>,
    /// §3 per recipient of a channel update (quiet, block, pause).
    pub recipient: Option<RecipientHook>,
    /// After a channel update went out (backfill, history).
    pub distributed: Option<DistributedHook>,
    /// §5.4.1 on join (backfill replay, pause notice).
    pub on_join: Option<JoinHook>,
}

impl Hooks {
    /// Takes part nowhere.
    pub const NONE: Hooks = Hooks {
        on_connect: None,
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
    /// Where it takes part in the core's work.
    pub hooks: Hooks,
}

/// The core protocol and every extension the server implements.
pub(crate) const EXTENSIONS: &[&Extension] = ext::ALL;

/// The hooks of every extension, gathered once.
#[derive(Default)]
pub(crate) struct HookSet {
    pub on_connect: Vec<ConnectHook>,
    pub recipient: Vec<RecipientHook>,
    pub distributed: Vec<DistributedHook>,
    pub on_join: Vec<JoinHook>,
}

struct Table {
    by_class: Vec<Option<&'static ClassDef>>,
    hooks: HookSet,
    names: Vec<&'static str>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut by_class = vec![None; Known::ALL.len()];
        let mut hooks = HookSet::default();
        let mut names = Vec::new();
        for ext in EXTENSIONS {
            for def in ext.classes {
                debug_assert!(by_class[def.class as usize].is_none(), "{:?}", def.class);
                by_class[def.class as usize] = Some(def);
            }
            let h = ext.hooks;
            hooks.on_connect.extend(h.on_connect);
            hooks.recipient.extend(h.recipient);
            hooks.distributed.extend(h.distributed);
            hooks.on_join.extend(h.on_join);
            names.extend_from_slice(ext.names);
        }
        Table {
            by_class,
            hooks,
            names,
        }
    })
}

/// The entry of a class the server handles.
pub(crate) fn class_def(class: Known) -> Option<&'static ClassDef> {
    table().by_class[class as usize]
}

/// The fields of a class the server handles.
pub fn fields_of(class: Known) -> Option<&'static [Field]> {
    class_def(class).map(|d| d.fields)
}

/// Every class the server handles, in the order of [`Known::ALL`].
pub(crate) fn handled() -> impl Iterator<Item = &'static ClassDef> {
    table().by_class.iter().flatten().copied()
}

/// The hooks of all extensions.
pub(crate) fn hooks() -> &'static HookSet {
    &table().hooks
}

/// §4.1.11 the extension names advertised in the `connect` reply.
pub fn extension_names() -> &'static [&'static str] {
    &table().names
}

/// True for the classes a rule can be given for (§2.5): those the server
/// handles, connection upkeep excepted.
pub(crate) fn is_ruled_class(class: Known) -> bool {
    class_def(class).is_some_and(|d| !d.checks.upkeep)
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

/// The default rule set of a new channel of `kind` whose registrant is
/// `registrant`, in the table's order.
pub(crate) fn default_rules(kind: ChannelKind, registrant: &str) -> Vec<(Known, Rule)> {
    handled()
        .filter_map(|d| {
            let rule = match kind {
                ChannelKind::Primary => d.rules.primary,
                ChannelKind::Regular => d.rules.regular,
                ChannelKind::Anonymous => d.rules.anonymous,
            };
            rule.rule(registrant).map(|r| (d.class, r))
        })
        .collect()
}
