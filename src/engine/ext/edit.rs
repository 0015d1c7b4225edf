//! shirakumo-edit (§4 of `shirakumo.mess`): `edit` is a `message` that
//! replaces the text of an earlier one, handled exactly like `message`.
//! Since §5.1.5 makes `from` the sender, an edit can only name the
//! sender's own messages (by `from` and `id`).

use crate::engine::Engine;
use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::protocol::{Ty, req};
use crate::update_fields;
use crate::wire::Known as K;

/// §4: the `edit` update.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-edit"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[ClassDef {
        class: K::SEdit,
        fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KText, Ty::Str)),
        handler: Engine::message,
        checks: Checks::MEMBER,
        // Editing in the primary channel is for no one, as its messages
        // are the server's.
        rules: Defaults {
            primary: R::NoOne,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};
