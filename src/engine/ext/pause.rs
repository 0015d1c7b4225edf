//! shirakumo-pause (§8 of `shirakumo.mess`): a channel's pause, in
//! seconds, between two updates of one user. It is kept with the channel
//! (stored for regular channels); the time of each member's last update
//! is kept only while the server runs. Users who may send `pause` in the
//! channel (its moderators) are not held to it.

use crate::engine::core::MODERATION;
use crate::engine::registry::{ChannelUse, Checks, ClassDef, Delivery, Extension, Hooks};
use crate::engine::state::{ChanId, UserId};
use crate::engine::{Engine, Failure, Outbox, Request, Time};
use crate::protocol::{Ty, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};
use std::collections::HashMap;

/// The key of the pause in a channel's [`crate::engine::ExtData`].
const KEY: &str = "shirakumo-pause";

/// The longest pause accepted: a day.
pub const MAX_PAUSE: u64 = 24 * 3600;

/// §8 the channel's "last update list".
#[derive(Default)]
struct LastUpdates(HashMap<UserId, Time>);

/// §8: the `pause` update, the delivery rule and the notice on join.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-pause"],
    hooks: Hooks {
        delivery: Some(deliver),
        on_join: Some(joined),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[ClassDef {
        class: K::SPause,
        fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KBy, Ty::Integer)),
        handler: pause,
        checks: Checks {
            channel: ChannelUse::Existing,
            ..Checks::SERVER
        },
        rules: MODERATION,
    }],
};

/// The channel's pause in seconds; 0 when none is set.
fn pause_of(engine: &Engine, chan: ChanId) -> u64 {
    engine
        .state
        .channel(chan)
        .data
        .get(KEY)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// §8 delivery steps 1–2.
fn deliver(engine: &mut Engine, chan: ChanId, req: &mut Request) -> Result<Delivery, Failure> {
    let pause = pause_of(engine, chan);
    if pause == 0 {
        return Ok(Delivery::Everyone);
    }
    let name = &engine.state.user(req.user).name;
    if engine.state.permitted(chan, K::SPause, name) {
        return Ok(Delivery::Everyone);
    }
    let members = engine.state.channel(chan).members.len();
    let now = req.now;
    let last = &mut engine
        .state
        .channel_mut(chan)
        .volatile
        .get_or_default::<LastUpdates>()
        .0;
    // Step 1: closer to now than the pause.
    if let Some(&at) = last.get(&req.user)
        && now.saturating_sub(at) < pause
    {
        return Err(Failure::new(
            K::TooManyUpdates,
            format!(
                "This channel allows one update every {pause} seconds; wait {} more.",
                pause - now.saturating_sub(at)
            ),
        ));
    }
    // Step 2. Entries older than the pause say nothing: they go once
    // there are many more than members.
    if last.len() > 2 * members + 64 {
        last.retain(|_, at| now.saturating_sub(*at) < pause);
    }
    last.insert(req.user, now);
    Ok(Delivery::Everyone)
}

/// §8 the extra step of §5.4.1: a joining user learns of the pause.
fn joined(engine: &mut Engine, user: UserId, chan: ChanId, now: Time, out: &mut Outbox) {
    let pause = pause_of(engine, chan);
    if pause == 0 {
        return;
    }
    let name = engine.state.channel(chan).name.clone();
    let update = engine
        .server_update(K::SPause, now)
        .with(K::KChannel, name.as_str())
        .with(K::KBy, pause);
    engine.send_user(out, user, &update);
}

/// §8 `pause` steps 1–2.
fn pause(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let by = req.update.get(K::KBy).and_then(Value::as_u64);
    let Some(by) = by.filter(|&by| by <= MAX_PAUSE) else {
        return Err(Failure::new(
            K::UpdateFailure,
            format!("The pause (:by) must be between 0 and {MAX_PAUSE} seconds."),
        ));
    };
    engine.refuse_while_store_fails()?;
    let value = if by == 0 { Value::NIL } else { Value::int(by) };
    let before = engine.set_channel_data(chan, KEY, value, out);
    if by == 0 {
        engine.state.channel_mut(chan).volatile.remove::<LastUpdates>();
    }
    let update = Engine::echo(req);
    let first = out.sends.len();
    engine.send_channel(out, chan, &update);
    engine.confirm_channel_data(out, first, req, chan, KEY, before);
    Ok(())
}
