//! shirakumo-roles (§26 of `shirakumo.mess`): named sets of permissions
//! per channel, each with its members. A role grants (`T`) or denies
//! (`NIL`) update classes to its members; the channel's own rule decides
//! for a user it names, the roles decide for the others where any of
//! theirs has an entry, and the rule decides otherwise (§5.1.8).
//!
//! The roles are kept with the channel (its [`crate::engine::ExtData`],
//! stored for regular channels) and, for the permission check, in
//! [`Roles`] on the channel: `None` when it has none, so that a channel
//! without roles pays one test per check. With roles, a check looks only
//! at the roles that have an entry for the update's class, one name
//! lookup each.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::ChanId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to, table};
use crate::protocol::{Names, Ty, is_valid_name, names_equal, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};
use std::collections::HashMap;

/// §26: the key of the roles in a channel's [`crate::engine::ExtData`].
pub(crate) const KEY: &str = "shirakumo-roles";

/// §26: roles one channel holds at most: each is looked at by the checks of
/// the classes it has entries for, and all are rewritten on a change.
pub(crate) const MAX_ROLES: usize = 50;

/// §26 the default `admin` role's permissions (members: the creator).
const ADMIN: &[K] = &[
    K::Kick,
    K::Pull,
    K::SSetChannelInfo,
    K::SDestroy,
    K::SQuiet,
    K::SUnquiet,
    K::SQuieted,
    K::SBridge,
    K::Permissions,
];

/// §26 the default `moderator` role's permissions (no members).
const MODERATOR: &[K] = &[
    K::Kick,
    K::Pull,
    K::SSetChannelInfo,
    K::SQuiet,
    K::SUnquiet,
    K::SQuieted,
];

/// §26 a `role`: its name, its permission entries (class, granted) and
/// its members.
#[derive(Clone, Debug)]
struct Role {
    name: String,
    permissions: Vec<(K, bool)>,
    members: Names,
}

/// §26 the roles of a channel, indexed by class for the permission check.
#[derive(Clone, Debug, Default)]
pub(crate) struct Roles {
    roles: Vec<Role>,
    /// Per class: the roles with an entry for it, and whether it grants.
    by_class: HashMap<K, Vec<(usize, bool)>>,
}

impl Roles {
    fn index(roles: Vec<Role>) -> Roles {
        let mut by_class: HashMap<K, Vec<(usize, bool)>> = HashMap::new();
        for (i, role) in roles.iter().enumerate() {
            for &(class, grant) in &role.permissions {
                by_class.entry(class).or_default().push((i, grant));
            }
        }
        Roles { roles, by_class }
    }

    /// §5.1.8 as §26 steps 2–7 extend it: `Some(false)` when a role of
    /// `user` denies `class`, `Some(true)` when one grants it and none
    /// denies it, `None` when no role of the user has an entry for it.
    pub(crate) fn verdict(&self, class: K, user: &str) -> Option<bool> {
        let entries = self.by_class.get(&class)?;
        let mut granted = false;
        for &(i, grant) in entries {
            if self.roles[i].members.contains(user) {
                if !grant {
                    return Some(false);
                }
                granted = true;
            }
        }
        granted.then_some(true)
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.roles.iter().position(|r| names_equal(&r.name, name))
    }

    /// As stored: `((name ((class T) ...) (member ...)) ...)`.
    fn to_value(&self) -> Value {
        if self.roles.is_empty() {
            return Value::NIL;
        }
        Value::List(self.roles.iter().map(role_value).collect())
    }

    /// Reads what [`Roles::to_value`] wrote, dropping entries for classes
    /// this server does not handle and anything malformed.
    fn from_value(value: &Value) -> Roles {
        let mut roles: Vec<Role> = Vec::new();
        for item in value.as_list().unwrap_or(&[]) {
            let Some([name, perms, members]) = item.as_list() else {
                continue;
            };
            let Some(name) = name.as_str().filter(|n| is_valid_name(n)) else {
                continue;
            };
            if roles.iter().any(|r| names_equal(&r.name, name)) || roles.len() >= MAX_ROLES {
                continue;
            }
            let permissions = parse_permissions(perms).unwrap_or_default();
            let members = Names::from_list(
                members
                    .as_list()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|n| is_valid_name(n))
                    .map(str::to_owned),
            );
            roles.push(Role {
                name: name.to_owned(),
                permissions,
                members,
            });
        }
        Roles::index(roles)
    }
}

fn permissions_value(permissions: &[(K, bool)]) -> Value {
    Value::List(
        permissions
            .iter()
            .map(|&(class, grant)| Value::List(vec![Value::sym(class), Value::bool(grant)]))
            .collect(),
    )
}

fn role_value(role: &Role) -> Value {
    Value::List(vec![
        Value::string(role.name.as_str()),
        permissions_value(&role.permissions),
        Value::List(
            role.members
                .iter()
                .map(|m| Value::string(m.as_str()))
                .collect(),
        ),
    ])
}

/// Parses a `permissions` field: `((class T|NIL) ...)`, each class one
/// the server handles and has rules for; a later entry for a class
/// replaces an earlier one. Linear in the field's length.
fn parse_permissions(value: &Value) -> Result<Vec<(K, bool)>, String> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<(K, bool)> = Vec::new();
    for entry in value.as_list().unwrap_or(&[]) {
        let Some([class, grant]) = entry.as_list() else {
            return Err("each permission is a list of an update class and T or NIL".into());
        };
        let Some(known) = class
            .as_symbol()
            .and_then(|s| s.known())
            .filter(|&k| table::is_ruled_class(k))
        else {
            return Err(format!("the server has no update class {class:?} to rule"));
        };
        let grant = match grant {
            g if g.is_nil() => false,
            Value::Symbol(s) if s.is_t() => true,
            _ => return Err(format!("the permission for {} is not T or NIL", known.name())),
        };
        match seen.get(&known) {
            Some(&i) => out[i].1 = grant,
            None => {
                seen.insert(known, out.len());
                out.push((known, grant));
            }
        }
    }
    Ok(out)
}

/// §26 the default roles of a new channel created by `creator`; their
/// entries are limited to the classes this server handles.
pub(crate) fn install_defaults(engine: &mut Engine, chan: ChanId, creator: &str) {
    let perms = |classes: &[K]| -> Vec<(K, bool)> {
        classes
            .iter()
            .filter(|&&k| table::is_ruled_class(k))
            .map(|&k| (k, true))
            .collect()
    };
    let roles = Roles::index(vec![
        Role {
            name: "admin".into(),
            permissions: perms(ADMIN),
            members: Names::from_list([creator.to_owned()]),
        },
        Role {
            name: "moderator".into(),
            permissions: perms(MODERATOR),
            members: Names::default(),
        },
    ]);
    let c = engine.state.channel_mut(chan);
    c.data.set(KEY, roles.to_value());
    c.roles = Some(Box::new(roles));
}

/// §26: rebuilds a channel's [`Roles`] from its stored data (at start-up, and
/// when an unsaved change is undone).
pub(crate) fn reindex(engine: &mut Engine, chan: ChanId) {
    let c = engine.state.channel_mut(chan);
    c.roles = c
        .data
        .get(KEY)
        .map(Roles::from_value)
        .filter(|r| !r.roles.is_empty())
        .map(Box::new);
}

/// Managing roles is moderation, but not in anonymous channels: their
/// rules are fixed to keep them hidden (§2.4.2), and a role could widen
/// them.
const MANAGE: Defaults = Defaults {
    primary: R::Registrant,
    regular: R::Registrant,
    anonymous: R::NoOne,
};

/// Listing roles is for anyone in the channel.
const LIST: Defaults = Defaults {
    primary: R::Anyone,
    regular: R::Anyone,
    anonymous: R::Anyone,
};

/// §26: `role`, `delete-role`, `assign-role`, `remove-role` and `roles`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-roles"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SRole,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KRole, Ty::Str),
                opt(K::KPermissions, Ty::ListList),
            ),
            handler: role,
            checks: Checks::MEMBER,
            rules: MANAGE,
        },
        ClassDef {
            class: K::SDeleteRole,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KRole, Ty::Str)),
            handler: delete_role,
            checks: Checks::MEMBER,
            rules: MANAGE,
        },
        ClassDef {
            class: K::SAssignRole,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KRole, Ty::Str),
                req(K::KTarget, Ty::Str),
            ),
            handler: assign_role,
            checks: Checks::MEMBER,
            rules: MANAGE,
        },
        ClassDef {
            class: K::SRemoveRole,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KRole, Ty::Str),
                req(K::KTarget, Ty::Str),
            ),
            handler: remove_role,
            checks: Checks::MEMBER,
            rules: MANAGE,
        },
        ClassDef {
            class: K::SRoles,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                opt(K::KTarget, Ty::Str),
                opt(K::KRoles, Ty::StrList),
            ),
            handler: roles,
            checks: Checks::MEMBER,
            rules: LIST,
        },
    ],
};

/// The channel's roles, a copy to change.
fn roles_of(engine: &Engine, chan: ChanId) -> Roles {
    engine
        .state
        .channel(chan)
        .roles
        .as_deref()
        .cloned()
        .unwrap_or_default()
}

/// The request's role name, checked as §26 asks (a user name's rules,
/// §2.2.1).
fn role_name(req: &Request) -> Result<String, Failure> {
    let name = req.str_field(K::KRole).unwrap_or_default();
    if !is_valid_name(name) {
        return Err(Failure::new(
            K::BadName,
            format!("{name:?} is not a valid role name."),
        ));
    }
    Ok(name.to_owned())
}

/// §26 `no-such-role`: an update failure that also names the channel and
/// the role, as the `role-update` it is.
fn no_such_role(engine: &mut Engine, req: &Request, role: &str, out: &mut Outbox) {
    let channel = req.str_field(K::KChannel).unwrap_or_default().to_owned();
    let mut f = engine.failure(
        K::SNoSuchRole,
        Some(req.id()),
        format!("The channel {channel:?} has no role named {role:?}."),
        req.now,
    );
    f.push(K::KChannel, channel);
    f.push(K::KRole, role);
    send_to(out, req.conn, &f);
}

/// Stores changed roles, confirmed with `reply` once stored.
fn change(
    engine: &mut Engine,
    req: &Request,
    chan: ChanId,
    roles: Roles,
    reply: &crate::wire::Object,
    out: &mut Outbox,
) -> Result<(), Failure> {
    engine.refuse_while_store_fails()?;
    let value = roles.to_value();
    let roles = Roles::index(roles.roles);
    engine.state.channel_mut(chan).roles = (!roles.roles.is_empty()).then(|| Box::new(roles));
    let before = engine.set_channel_data(chan, KEY, value, out);
    let first = out.sends.len();
    send_to(out, req.conn, reply);
    engine.confirm_channel_data(out, first, req, chan, KEY, before);
    Ok(())
}

/// §26 `role` steps 1–6 (step 1, membership, was §5.4).
fn role(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let name = role_name(req)?;
    let mut roles = roles_of(engine, chan);
    let found = roles.find(&name);
    let Some(perms) = req.update.get(K::KPermissions) else {
        // Step 2, or steps 5–6 without a change.
        let Some(i) = found else {
            no_such_role(engine, req, &name, out);
            return Ok(());
        };
        let mut reply = Engine::echo(req);
        reply.set(K::KRole, roles.roles[i].name.as_str());
        reply.set(K::KPermissions, permissions_value(&roles.roles[i].permissions));
        send_to(out, req.conn, &reply);
        return Ok(());
    };
    let permissions = parse_permissions(perms)
        .map_err(|e| Failure::new(K::InvalidPermissions, format!("Invalid permissions: {e}.")))?;
    // Steps 3–4.
    let i = match found {
        Some(i) => i,
        None => {
            if roles.roles.len() >= MAX_ROLES {
                return Err(Failure::new(
                    K::UpdateFailure,
                    format!("The channel has its maximum of {MAX_ROLES} roles."),
                ));
            }
            roles.roles.push(Role {
                name,
                permissions: Vec::new(),
                members: Names::default(),
            });
            roles.roles.len() - 1
        }
    };
    roles.roles[i].permissions = permissions;
    // Steps 5–6.
    let mut reply = Engine::echo(req);
    reply.set(K::KRole, roles.roles[i].name.as_str());
    reply.set(K::KPermissions, permissions_value(&roles.roles[i].permissions));
    change(engine, req, chan, roles, &reply, out)
}

/// §26 `delete-role` steps 1–4.
fn delete_role(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let name = role_name(req)?;
    let mut roles = roles_of(engine, chan);
    let Some(i) = roles.find(&name) else {
        no_such_role(engine, req, &name, out);
        return Ok(());
    };
    roles.roles.remove(i);
    let reply = Engine::echo(req);
    change(engine, req, chan, roles, &reply, out)
}

/// §26 `assign-role` (`add`) and `remove-role` steps 1–4.
fn membership(
    engine: &mut Engine,
    req: &mut Request,
    add: bool,
    out: &mut Outbox,
) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let name = role_name(req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_owned();
    let mut roles = roles_of(engine, chan);
    let Some(i) = roles.find(&name) else {
        no_such_role(engine, req, &name, out);
        return Ok(());
    };
    let reply = Engine::echo(req);
    let members = &roles.roles[i].members;
    if members.contains(&target) == add {
        // Already so: nothing to store.
        send_to(out, req.conn, &reply);
        return Ok(());
    }
    let max = engine.config.max_rule_names;
    let names: Vec<String> = if add {
        if members.len() >= max {
            return Err(Failure::new(
                K::UpdateFailure,
                format!("The role {name:?} has its maximum of {max} members."),
            ));
        }
        members.iter().cloned().chain([target]).collect()
    } else {
        members
            .iter()
            .filter(|m| !names_equal(m, &target))
            .cloned()
            .collect()
    };
    roles.roles[i].members = Names::from_list(names);
    change(engine, req, chan, roles, &reply, out)
}

/// §26 `assign-role`.
fn assign_role(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    membership(engine, req, true, out)
}

/// §26 `remove-role`.
fn remove_role(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    membership(engine, req, false, out)
}

/// §26 `roles` steps 1–4.
fn roles(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let target = req.str_field(K::KTarget);
    let names: Vec<Value> = engine
        .state
        .channel(chan)
        .roles
        .as_deref()
        .map(|r| {
            r.roles
                .iter()
                .filter(|role| target.is_none_or(|t| role.members.contains(t)))
                .map(|role| Value::string(role.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut reply = Engine::echo(req);
    reply.set(K::KRoles, Value::List(names));
    send_to(out, req.conn, &reply);
    Ok(())
}
