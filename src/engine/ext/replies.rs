//! shirakumo-replies (§21 of `shirakumo.mess`): a `message` may name the
//! message it answers in `reply-to`, `(username id)`. The server checks
//! its shape and passes it on.

use crate::engine::registry::{Extension, Hooks};
use crate::engine::Failure;
use crate::protocol::{Ty, is_a, opt};
use crate::wire::{Known as K, Object, Value};

/// §21: the `reply-to` field of `message` and its subclasses.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-replies"],
    hooks: Hooks {
        check: Some(check_reply_to),
        ..Hooks::NONE
    },
    fields: &[(K::Message, opt(K::KReplyTo, Ty::List))],
    classes: &[],
};

/// §21: `reply-to` is a list of a user name and an ID.
fn check_reply_to(update: &Object, class: K) -> Result<(), Failure> {
    if !is_a(class, K::Message) {
        return Ok(());
    }
    let Some(reply_to) = update.get(K::KReplyTo) else {
        return Ok(());
    };
    match reply_to.as_list() {
        Some([Value::String(name), id]) if crate::protocol::is_valid_name(name) && !id.is_nil() => {
            Ok(())
        }
        _ => Err(Failure::new(
            K::MalformedUpdate,
            "The field :reply-to must be a list of a user name and an ID.",
        )),
    }
}
