//! The class table: every update class the server handles, gathered
//! once from the core protocol and the extensions listed in `ext/`, and
//! what is derived from it (routing, fields, default rules, hooks, the
//! advertised extension names), so that none of these can disagree.

use super::ext;
use super::registry::{
    ChannelKind, CheckHook, ClassDef, ConnectHook, DeliveryHook, DistributedHook, Extension,
    JoinHook, RecipientHook,
};
use crate::protocol::{Field, Rule};
use crate::wire::Known;
use std::sync::OnceLock;

/// The core protocol and every extension the server implements.
const EXTENSIONS: &[&Extension] = ext::ALL;

/// The hooks of every extension, gathered once.
#[derive(Default)]
pub(crate) struct HookSet {
    pub check: Vec<CheckHook>,
    pub on_connect: Vec<ConnectHook>,
    pub delivery: Vec<DeliveryHook>,
    pub recipient: Vec<RecipientHook>,
    pub distributed: Vec<DistributedHook>,
    pub on_join: Vec<JoinHook>,
}

struct Table {
    by_class: Vec<Option<&'static ClassDef>>,
    /// Per class: its own fields, then those extensions add to it.
    fields: Vec<Option<Vec<Field>>>,
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
            hooks.check.extend(h.check);
            hooks.on_connect.extend(h.on_connect);
            hooks.delivery.extend(h.delivery);
            hooks.recipient.extend(h.recipient);
            hooks.distributed.extend(h.distributed);
            hooks.on_join.extend(h.on_join);
            names.extend_from_slice(ext.names);
        }
        let fields = by_class
            .iter()
            .map(|def| {
                def.map(|d| {
                    let mut fields = d.fields.to_vec();
                    for ext in EXTENSIONS {
                        for (class, field) in ext.fields {
                            if crate::protocol::is_a(d.class, *class)
                                && !fields.iter().any(|f| f.key == field.key)
                            {
                                fields.push(*field);
                            }
                        }
                    }
                    fields
                })
            })
            .collect();
        Table {
            by_class,
            fields,
            hooks,
            names,
        }
    })
}

/// The entry of a class the server handles.
pub(crate) fn class_def(class: Known) -> Option<&'static ClassDef> {
    table().by_class[class as usize]
}

/// The fields of a class the server handles, those extensions add to it
/// included.
pub fn fields_of(class: Known) -> Option<&'static [Field]> {
    table().fields[class as usize].as_deref()
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
