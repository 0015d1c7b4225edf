//! shirakumo-bridge (§11 of `shirakumo.mess`): a bridge relays what users
//! of another chat say, each update carrying the outside user's name in
//! `bridge`. The server swaps `bridge` and `from`, so the channel sees the
//! outside user as the sender and the bridge's own name in `bridge`.
//!
//! The field is kept on the updates that are distributed to the whole
//! channel (`message` and its subclasses, `data`, `react`, `typing`); the
//! others drop it, as the section allows. The outside name must be a valid
//! user name (§2.2.1); it may be the name of a user on the server, so a
//! channel that trusts a bridge should keep the `bridge` rule to it.

use crate::engine::core::MODERATION;
use crate::engine::registry::{ChannelUse, Checks, ClassDef, Delivery, Extension, Hooks};
use crate::engine::state::ChanId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, is_valid_name, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};

const BRIDGE: crate::protocol::Field = opt(K::KBridge, Ty::Str);

/// §11: the `bridge` field, the swap and the `bridge` update.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-bridge"],
    hooks: Hooks {
        delivery: Some(swap),
        ..Hooks::NONE
    },
    fields: &[
        (K::Message, BRIDGE),
        (K::SData, BRIDGE),
        (K::SReact, BRIDGE),
        (K::STyping, BRIDGE),
    ],
    classes: &[ClassDef {
        class: K::SBridge,
        fields: update_fields!(req(K::KChannel, Ty::Str)),
        handler: bridge,
        checks: Checks {
            channel: ChannelUse::Existing,
            ..Checks::SERVER
        },
        rules: MODERATION,
    }],
};

/// §11 steps 1.1–1.4 for an update that goes to the whole channel.
fn swap(engine: &mut Engine, chan: ChanId, req: &mut Request) -> Result<Delivery, Failure> {
    let Some(outside) = req.str_field(K::KBridge).map(str::to_string) else {
        return Ok(Delivery::Everyone);
    };
    let sender = engine.state.user(req.user).name.clone();
    // Step 1.1.
    if !engine.state.in_channel(req.user, chan) {
        return Err(Failure::new(
            K::NotInChannel,
            format!("You are not in {:?}.", engine.state.channel(chan).name),
        ));
    }
    // Step 1.2.
    if !engine.state.permitted(chan, K::SBridge, &sender) && !engine.is_admin(req.conn) {
        return Err(Failure::new(
            K::InsufficientPermissions,
            format!(
                "You may not bridge updates into {:?}.",
                engine.state.channel(chan).name
            ),
        ));
    }
    if !is_valid_name(&outside) {
        return Err(Failure::new(
            K::BadName,
            format!("The bridged name {outside:?} is not a valid name."),
        ));
    }
    // Step 1.3.
    req.update.set(K::KFrom, outside);
    req.update.set(K::KBridge, Value::string(sender));
    Ok(Delivery::Everyone)
}

/// §11 the `bridge` update: sent back.
fn bridge(_engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    send_to(out, req.conn, &Engine::echo(req));
    Ok(())
}
