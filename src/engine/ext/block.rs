//! shirakumo-block (§19 of `shirakumo.mess`): a registered user's block
//! list, kept with its profile (at most `max_rule_names` names, sorted so
//! that a lookup is a binary search). Channel updates from a blocked user
//! are not delivered to the blocker, whichever channel they go to.
//!
//! Delivery asks only about the members known to have a block list: the
//! users online whose profile had one when they arrived or who changed
//! theirs since. Without any, a recipient costs one test of an empty set.
//! The list itself is read from the profile, so that a change the store
//! could not save, and which was undone, stops applying at once.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::{ChanId, UserId};
use crate::engine::{Engine, Failure, Outbox, Request, Time};
use crate::protocol::{Ty, names_cmp, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Object, Value};
use std::collections::HashSet;

/// The key of the block list in a profile's [`crate::engine::ExtData`].
const KEY: &str = "shirakumo-block";

/// The users online that may have a block list.
#[derive(Default)]
struct Blockers(HashSet<UserId>);

const ANYONE: Defaults = Defaults {
    primary: R::Anyone,
    regular: R::Unset,
    anonymous: R::Unset,
};

/// §19: `block`, `unblock`, `blocked` and the delivery rule.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-block"],
    hooks: Hooks {
        recipient: Some(delivers),
        on_join: Some(arrived),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SBlock,
            fields: update_fields!(req(K::KTarget, Ty::Str)),
            handler: block,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
        ClassDef {
            class: K::SUnblock,
            fields: update_fields!(req(K::KTarget, Ty::Str)),
            handler: unblock,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
        ClassDef {
            class: K::SBlocked,
            fields: update_fields!(opt(K::KTarget, Ty::StrList)),
            handler: blocked,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
    ],
};

/// The block list of a profile, sorted by [`names_cmp`].
fn list<'a>(engine: &'a Engine, profile: &str) -> &'a [Value] {
    engine
        .state
        .find_profile(profile)
        .and_then(|p| p.data.get(KEY))
        .and_then(Value::as_list)
        .unwrap_or(&[])
}

/// Where `name` is, or would go, in a sorted block list.
fn search(list: &[Value], name: &str) -> Result<usize, usize> {
    list.binary_search_by(|v| names_cmp(v.as_str().unwrap_or_default(), name))
}

/// §19 delivery step 1.1: false when the recipient blocks the sender.
fn delivers(engine: &Engine, _chan: ChanId, update: &Object, user: UserId) -> bool {
    let Some(blockers) = engine.state.volatile.get::<Blockers>() else {
        return true;
    };
    if blockers.0.is_empty() || !blockers.0.contains(&user) {
        return true;
    }
    let Some(from) = update.get(K::KFrom).and_then(Value::as_str) else {
        return true;
    };
    search(list(engine, &engine.state.user(user).name), from).is_err()
}

/// Notes a user arriving on the server (its join to the primary channel)
/// whose profile has a block list; the id may have been another user's.
fn arrived(engine: &mut Engine, user: UserId, chan: ChanId, _now: Time, _out: &mut Outbox) {
    if chan != engine.state.primary {
        return;
    }
    let has_list = !list(engine, &engine.state.user(user).name).is_empty();
    let blockers = &mut engine.state.volatile.get_or_default::<Blockers>().0;
    if has_list {
        blockers.insert(user);
    } else {
        blockers.remove(&user);
    }
}

/// Step 1 of each handler: the sender's profile name.
fn profile_of(engine: &Engine, req: &Request) -> Result<String, Failure> {
    let name = engine.state.user(req.user).name.clone();
    match engine.state.find_profile(&name) {
        Some(_) => Ok(name),
        None => Err(Failure::new(
            K::NoSuchProfile,
            "Only registered users have a block list.",
        )),
    }
}

/// Stores a new block list, confirmed once stored, and answers on every
/// connection of the user.
fn change(
    engine: &mut Engine,
    req: &Request,
    name: &str,
    names: Vec<Value>,
    out: &mut Outbox,
) -> Result<(), Failure> {
    engine.refuse_while_store_fails()?;
    let value = if names.is_empty() {
        Value::NIL
    } else {
        engine
            .state
            .volatile
            .get_or_default::<Blockers>()
            .0
            .insert(req.user);
        Value::List(names)
    };
    let before = engine
        .set_profile_data(name, KEY, value, out)
        .unwrap_or(Value::NIL);
    let first = out.sends.len();
    engine.send_user(out, req.user, &Engine::echo(req));
    engine.confirm_profile_data(out, first, req, name, KEY, before);
    Ok(())
}

/// §19 `block` steps 1–3.
fn block(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    let mut names = list(engine, &name).to_vec();
    let Err(at) = search(&names, &target) else {
        engine.send_user(out, req.user, &Engine::echo(req));
        return Ok(());
    };
    let max = engine.config.max_rule_names;
    if names.len() >= max {
        return Err(Failure::new(
            K::UpdateFailure,
            format!("Your block list is full ({max} names)."),
        ));
    }
    names.insert(at, Value::string(target));
    change(engine, req, &name, names, out)
}

/// §19 `unblock` steps 1–3.
fn unblock(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    let mut names = list(engine, &name).to_vec();
    let Ok(at) = search(&names, &target) else {
        engine.send_user(out, req.user, &Engine::echo(req));
        return Ok(());
    };
    names.remove(at);
    change(engine, req, &name, names, out)
}

/// §19 `blocked` steps 1–3.
fn blocked(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let mut reply = Engine::echo(req);
    reply.set(K::KTarget, Value::List(list(engine, &name).to_vec()));
    crate::engine::send_to(out, req.conn, &reply);
    Ok(())
}
