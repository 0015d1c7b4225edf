//! shirakumo-sign (§17 of `shirakumo.mess`): any update may carry a PGP
//! `signature`, which the server passes on. A signed update must carry
//! `from` and `clock` itself, and the server leaves `clock` as it is (it
//! fills in `clock` only where it is missing, signed or not).

use crate::engine::Failure;
use crate::engine::registry::{Extension, Hooks};
use crate::protocol::{Ty, opt};
use crate::wire::{Known as K, Object};

/// §17: the `signature` field of every update.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-sign"],
    hooks: Hooks {
        check: Some(check_signed),
        ..Hooks::NONE
    },
    fields: &[(K::Update, opt(K::KSignature, Ty::Str))],
    classes: &[],
};

/// §17: with a `signature`, missing `from` or `clock` is malformed.
fn check_signed(update: &Object, _class: K) -> Result<(), Failure> {
    if update.get(K::KSignature).is_none() {
        return Ok(());
    }
    for key in [K::KFrom, K::KClock] {
        if update.get(key).is_none() {
            return Err(Failure::new(
                K::MalformedUpdate,
                format!(
                    "A signed update must carry its :{} field (§17).",
                    key.name()
                ),
            ));
        }
    }
    Ok(())
}
