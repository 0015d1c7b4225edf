//! shirakumo-server-management (§7 of `shirakumo.mess`): `kill`,
//! `destroy`, `ban`, `unban` and `blacklist`, and the name blacklist
//! checked on connect. All of them are ruled by the primary channel,
//! whose registrant is the server user, so by default only server
//! administrators (`--admin`) may send them.
//!
//! The blacklist holds names folded for comparison (§2.2.1) and is
//! stored item by item; a `ban` is confirmed once stored. A `destroy`
//! takes effect at once: its reply does not wait for the store.

use crate::engine::connect::Close;
use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::Connection;
use crate::engine::{Change, Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, name_key, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Object, Value};

/// The name of the blacklist among the server-wide lists.
const BLACKLIST: &str = "blacklist";

/// Ruled by the primary channel only (§7 `destroy` step 1 for all).
const SERVER_ONLY: Defaults = Defaults {
    primary: R::Registrant,
    regular: R::Unset,
    anonymous: R::Unset,
};

/// `ban` and `unban` name users who need not be known to the server.
const ANY_NAME: Checks = Checks {
    target_any: true,
    ..Checks::SERVER
};

/// §7: the updates and the connect step.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-server-management"],
    hooks: Hooks {
        on_connect: Some(refuse_blacklisted),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SKill,
            fields: update_fields!(req(K::KTarget, Ty::Str)),
            handler: kill,
            // Step 1: the target must be a user on the server.
            checks: Checks {
                target_active: true,
                ..Checks::SERVER
            },
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SDestroy,
            fields: update_fields!(req(K::KChannel, Ty::Str)),
            handler: destroy,
            // Step 1: checked against the primary channel.
            checks: Checks::SERVER,
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SBan,
            fields: update_fields!(req(K::KTarget, Ty::Str)),
            handler: ban,
            checks: ANY_NAME,
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SUnban,
            fields: update_fields!(req(K::KTarget, Ty::Str)),
            handler: unban,
            checks: ANY_NAME,
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SBlacklist,
            fields: update_fields!(opt(K::KTarget, Ty::StrList)),
            handler: blacklist,
            checks: Checks::SERVER,
            rules: SERVER_ONLY,
        },
    ],
};

fn is_blacklisted(engine: &Engine, name: &str) -> bool {
    let key = name_key(name);
    engine.list_items(BLACKLIST).iter().any(|i| **i == *key)
}

/// §7 the step after §4.1.4.
fn refuse_blacklisted(engine: &Engine, _conn: &Connection, update: &Object) -> Result<(), Failure> {
    match update.get(K::KFrom).and_then(Value::as_str) {
        Some(name) if is_blacklisted(engine, name) => Err(Failure::new(
            K::TooManyConnections,
            format!("The name {name:?} is banned from this server."),
        )),
        _ => Ok(()),
    }
}

/// Closes every connection of the user named `name`, if it is on the
/// server: it leaves all its channels (§7 `kill` steps 2–3).
fn disconnect_user(engine: &mut Engine, name: &str, now: crate::engine::Time, out: &mut Outbox) {
    let Some(user) = engine.state.find_user(name) else {
        return;
    };
    if user == engine.state.server_user {
        return;
    }
    for conn in engine.state.user(user).conns.clone() {
        engine.drop_connection(conn, now, out, Close::WithDisconnect);
    }
}

/// §7 `kill` steps 1–4.
fn kill(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    if engine
        .state
        .find_user(&target)
        .is_some_and(|u| u == engine.state.server_user)
    {
        return Err(Failure::new(K::UpdateFailure, "The server user cannot be killed."));
    }
    // The reply goes first, in case the sender is the one killed.
    send_to(out, req.conn, &Engine::echo(req));
    disconnect_user(engine, &target, req.now, out);
    Ok(())
}

/// §7 `destroy` steps 2–5.
fn destroy(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = req.str_field(K::KChannel).unwrap_or_default().to_string();
    let Some(chan) = engine.state.find_channel(&name) else {
        return Err(Failure::new(
            K::NoSuchChannel,
            format!("There is no channel named {name:?}."),
        ));
    };
    if chan == engine.state.primary {
        return Err(Failure::new(
            K::UpdateFailure,
            "The primary channel cannot be destroyed.",
        ));
    }
    let stored = !engine.state.channel(chan).anonymous;
    let canonical = engine.state.channel(chan).name.clone();
    // Steps 3–4: each member gets its own leave, then the channel goes.
    engine.remove_unsaved_channel(chan, req.now, out);
    if stored {
        out.changes.push(Change::DeleteChannel(canonical.clone()));
    }
    log::info!("channel {canonical:?} destroyed");
    let mut reply = Engine::echo(req);
    reply.set(K::KChannel, canonical);
    send_to(out, req.conn, &reply);
    Ok(())
}

/// §7 `ban` steps 1–4.
fn ban(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    if crate::protocol::names_equal(&target, &engine.config.name) {
        return Err(Failure::new(K::UpdateFailure, "The server user cannot be banned."));
    }
    engine.refuse_while_store_fails()?;
    let key = name_key(&target);
    let before = engine.set_list_item(BLACKLIST, &key, true, out);
    let first = out.sends.len();
    send_to(out, req.conn, &Engine::echo(req));
    if !before {
        engine.confirm_list_item(out, first, req, BLACKLIST, &key, before);
    }
    disconnect_user(engine, &target, req.now, out);
    Ok(())
}

/// §7 `unban` steps 1–2.
fn unban(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    engine.refuse_while_store_fails()?;
    let key = name_key(&target);
    let before = engine.set_list_item(BLACKLIST, &key, false, out);
    let first = out.sends.len();
    send_to(out, req.conn, &Engine::echo(req));
    if before {
        engine.confirm_list_item(out, first, req, BLACKLIST, &key, before);
    }
    Ok(())
}

/// §7 `blacklist` steps 1–2.
fn blacklist(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let mut reply = Engine::echo(req);
    let names = engine
        .list_items(BLACKLIST)
        .iter()
        .map(|n| Value::string(n.as_str()))
        .collect();
    reply.set(K::KTarget, Value::List(names));
    send_to(out, req.conn, &reply);
    Ok(())
}
