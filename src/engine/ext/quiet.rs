//! shirakumo-quiet (§9 of `shirakumo.mess`): a channel's quiet list. What
//! a quieted user sends to the channel goes back to that user only, so it
//! does not notice. The list is kept with the channel (stored for
//! regular channels), at most `max_rule_names` names long.
//!
//! Quiet applies to what a user says (`message`, `edit`, `data`, `react`,
//! `typing` and the other updates distributed on a user's behalf), not to
//! its joins and leaves, which the channel still sees.

use crate::engine::core::MODERATION;
use crate::engine::registry::{
    ChannelUse, Checks, ClassDef, Delivery, Extension, Hooks,
};
use crate::engine::state::ChanId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, names_equal, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};

/// The key of the quiet list in a channel's [`crate::engine::ExtData`].
const KEY: &str = "shirakumo-quiet";

const MODERATE: Checks = Checks {
    channel: ChannelUse::Existing,
    ..Checks::SERVER
};

/// §9: `quiet`, `unquiet` and `quieted`, and the delivery rule.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-quiet"],
    hooks: Hooks {
        delivery: Some(deliver),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SQuiet,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KTarget, Ty::Str)),
            handler: quiet,
            checks: MODERATE,
            rules: MODERATION,
        },
        ClassDef {
            class: K::SUnquiet,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KTarget, Ty::Str)),
            handler: unquiet,
            checks: MODERATE,
            rules: MODERATION,
        },
        ClassDef {
            class: K::SQuieted,
            fields: update_fields!(req(K::KChannel, Ty::Str), opt(K::KTarget, Ty::StrList)),
            handler: quieted,
            checks: MODERATE,
            rules: MODERATION,
        },
    ],
};

/// The names on a channel's quiet list.
fn list(engine: &Engine, chan: ChanId) -> &[Value] {
    engine
        .state
        .channel(chan)
        .data
        .get(KEY)
        .and_then(Value::as_list)
        .unwrap_or(&[])
}

fn is_quiet(engine: &Engine, chan: ChanId, name: &str) -> bool {
    list(engine, chan)
        .iter()
        .any(|n| n.as_str().is_some_and(|n| names_equal(n, name)))
}

/// §9 delivery steps 1–2.
fn deliver(engine: &mut Engine, chan: ChanId, req: &mut Request) -> Result<Delivery, Failure> {
    let sender = &engine.state.user(req.user).name;
    Ok(if is_quiet(engine, chan, sender) {
        Delivery::SenderOnly
    } else {
        Delivery::Everyone
    })
}

/// Replaces the quiet list, confirmed once stored, and answers.
fn change(
    engine: &mut Engine,
    req: &Request,
    chan: ChanId,
    names: Vec<Value>,
    out: &mut Outbox,
) -> Result<(), Failure> {
    engine.refuse_while_store_fails()?;
    let value = if names.is_empty() {
        Value::NIL
    } else {
        Value::List(names)
    };
    let before = engine.set_channel_data(chan, KEY, value, out);
    let first = out.sends.len();
    send_to(out, req.conn, &Engine::echo(req));
    engine.confirm_channel_data(out, first, req, chan, KEY, before);
    Ok(())
}

/// §9 `quiet` steps 1–2.
fn quiet(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    if is_quiet(engine, chan, &target) {
        send_to(out, req.conn, &Engine::echo(req));
        return Ok(());
    }
    let mut names = list(engine, chan).to_vec();
    if names.len() >= engine.config.max_rule_names {
        return Err(Failure::new(
            K::UpdateFailure,
            format!(
                "The quiet list of this channel is full ({} names).",
                engine.config.max_rule_names
            ),
        ));
    }
    names.push(Value::string(target));
    change(engine, req, chan, names, out)
}

/// §9 `unquiet` steps 1–2.
fn unquiet(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_string();
    if !is_quiet(engine, chan, &target) {
        send_to(out, req.conn, &Engine::echo(req));
        return Ok(());
    }
    let names = list(engine, chan)
        .iter()
        .filter(|n| !n.as_str().is_some_and(|n| names_equal(n, &target)))
        .cloned()
        .collect();
    change(engine, req, chan, names, out)
}

/// §9 `quieted` steps 1–2.
fn quieted(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let mut reply = Engine::echo(req);
    reply.set(K::KTarget, Value::List(list(engine, chan).to_vec()));
    send_to(out, req.conn, &reply);
    Ok(())
}
