//! shirakumo-last-read (§22 of `shirakumo.mess`): per registered user and
//! channel, the message last read, shared by all of the user's
//! connections and kept with the profile. A profile keeps entries for at
//! most four times `max_channels_per_user` channels; entries of channels
//! that no longer exist go first, then the oldest. Leaving a channel
//! keeps its entry, so that it still holds when the user comes back.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::ChanId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, names_equal, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Object, Value};
use std::rc::Rc;

/// The key of the entries in a profile's [`crate::engine::ExtData`]:
/// a list of `(channel update-id target)`.
const KEY: &str = "shirakumo-last-read";

/// §22: the `last-read` update, and the entry set on entering a channel.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-last-read"],
    hooks: Hooks {
        distributed: Some(entered),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[ClassDef {
        class: K::SLastRead,
        fields: update_fields!(
            req(K::KChannel, Ty::Str),
            opt(K::KTarget, Ty::Str),
            opt(K::KUpdateId, Ty::Id),
        ),
        handler: last_read,
        checks: Checks::MEMBER,
        rules: Defaults {
            primary: R::Anyone,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};

/// The entries of a profile, `(channel update-id target)` each.
fn entries<'a>(engine: &'a Engine, profile: &str) -> &'a [Value] {
    engine
        .state
        .find_profile(profile)
        .and_then(|p| p.data.get(KEY))
        .and_then(Value::as_list)
        .unwrap_or(&[])
}

/// The `(update-id target)` of the entry for `channel`.
fn entry<'a>(entries: &'a [Value], channel: &str) -> Option<(&'a Value, &'a Value)> {
    entries.iter().find_map(|e| match e.as_list()? {
        [c, id, target] if c.as_str().is_some_and(|c| names_equal(c, channel)) => {
            Some((id, target))
        }
        _ => None,
    })
}

/// The entries with the one for `channel` set, within the bound.
fn with_entry(engine: &Engine, profile: &str, channel: &str, id: Value, target: &str) -> Value {
    let max = engine.config.max_channels_per_user.saturating_mul(4).max(1);
    let mut list: Vec<Value> = entries(engine, profile)
        .iter()
        .filter(|e| {
            !e.as_list()
                .and_then(|l| l.first())
                .and_then(Value::as_str)
                .is_some_and(|c| names_equal(c, channel))
        })
        .cloned()
        .collect();
    if list.len() >= max {
        list.retain(|e| {
            e.as_list()
                .and_then(|l| l.first())
                .and_then(Value::as_str)
                .is_some_and(|c| engine.state.find_channel(c).is_some())
        });
    }
    while list.len() >= max {
        list.remove(0);
    }
    list.push(Value::List(vec![
        Value::string(channel),
        id,
        Value::string(target),
    ]));
    Value::List(list)
}

/// §22 the last paragraph: entering a channel sets the entry to the
/// `join`, unless one is set.
fn entered(
    engine: &mut Engine,
    chan: ChanId,
    update: &Object,
    _bytes: &Rc<[u8]>,
    out: &mut Outbox,
) {
    if update.class.known() != Some(K::Join) {
        return;
    }
    let (Some(from), Some(id)) = (
        update.get(K::KFrom).and_then(Value::as_str),
        update.get(K::KId),
    ) else {
        return;
    };
    let channel = engine.state.channel(chan).name.clone();
    if engine.state.find_profile(from).is_none()
        || entry(entries(engine, from), &channel).is_some()
    {
        return;
    }
    let value = with_entry(engine, from, &channel, id.clone(), from);
    let from = from.to_string();
    engine.set_profile_data(&from, KEY, value, out);
}

/// §22 steps 1–3.
fn last_read(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = engine.state.user(req.user).name.clone();
    // Step 1.
    if engine.state.find_profile(&name).is_none() {
        return Err(Failure::new(
            K::NoSuchProfile,
            "Only registered users have a last-read message.",
        ));
    }
    let channel = req.str_field(K::KChannel).unwrap_or_default().to_string();
    let id = req.update.get(K::KUpdateId).cloned();
    let target = req.str_field(K::KTarget).map(str::to_string);
    match (id, target) {
        // Step 2.
        (Some(id), Some(target)) => {
            engine.refuse_while_store_fails()?;
            let value = with_entry(engine, &name, &channel, id, &target);
            let before = engine
                .set_profile_data(&name, KEY, value, out)
                .unwrap_or(Value::NIL);
            let first = out.sends.len();
            engine.send_user(out, req.user, &Engine::echo(req));
            engine.confirm_profile_data(out, first, req, &name, KEY, before);
        }
        // Step 3.
        _ => {
            let mut reply = Engine::echo(req);
            match entry(entries(engine, &name), &channel) {
                Some((id, target)) => {
                    reply.set(K::KUpdateId, id.clone());
                    reply.set(K::KTarget, target.clone());
                }
                None => {
                    reply.remove(K::KUpdateId);
                    reply.remove(K::KTarget);
                }
            }
            send_to(out, req.conn, &reply);
        }
    }
    Ok(())
}
