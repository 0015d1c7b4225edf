//! shirakumo-typing (§23 of `shirakumo.mess`): a member tells the channel
//! that it is typing; clients clear the notice after 5 seconds.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::{Engine, Failure, Outbox, Request};
use crate::protocol::{Ty, req};
use crate::update_fields;
use crate::wire::Known as K;

/// §23: the `typing` update.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-typing"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[ClassDef {
        class: K::STyping,
        fields: update_fields!(req(K::KChannel, Ty::Str)),
        handler: typing,
        checks: Checks::MEMBER,
        // Like `message`: members of a channel, the server user in the
        // primary channel.
        rules: Defaults {
            primary: R::Registrant,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};

/// §23.1: the update is distributed to all users in the channel.
fn typing(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    engine.distribute(req, out)
}
