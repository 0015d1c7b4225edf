//! The core protocol's update classes (`lichat.sexpr`) in the class
//! table: fields, handlers (in the files of their spec areas), §5.1
//! checks and default rules (§2.4, §2.5).
//!
//! Where `lichat.sexpr` marks a field required that only a reply carries
//! (`server-info`'s `attributes`), or that an extension made optional
//! (`channels`' `channel`), the request may omit it.

use super::registry::{ChannelUse, Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use super::{Engine, Failure, Outbox, Request};
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::Known as K;

/// A rule in regular and anonymous channels alike.
const fn everywhere(primary: R, channel: R) -> Defaults {
    Defaults {
        primary,
        regular: channel,
        anonymous: channel,
    }
}

/// Moderation: the registrant everywhere (the server user in the
/// primary channel).
pub(crate) const MODERATION: Defaults = everywhere(R::Registrant, R::Registrant);

/// Checked against the primary channel's rules only (§5.1.8).
const fn server(primary: R) -> Defaults {
    Defaults {
        primary,
        regular: R::Unset,
        anonymous: R::Unset,
    }
}

/// The core protocol.
pub(crate) const CORE: Extension = Extension {
    names: &[],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::Ping,
            fields: update_fields!(),
            handler: Engine::ping_update,
            checks: Checks::UPKEEP,
            rules: Defaults::NONE,
        },
        ClassDef {
            class: K::Pong,
            fields: update_fields!(),
            handler: Engine::pong_update,
            checks: Checks::UPKEEP,
            rules: Defaults::NONE,
        },
        ClassDef {
            class: K::Connect,
            fields: update_fields!(
                opt(K::KPassword, Ty::Str),
                req(K::KVersion, Ty::Str),
                opt(K::KExtensions, Ty::StrList),
            ),
            handler: Engine::connect_again,
            checks: Checks::UPKEEP,
            rules: Defaults::NONE,
        },
        ClassDef {
            class: K::Disconnect,
            fields: update_fields!(),
            handler: Engine::disconnect,
            checks: Checks::UPKEEP,
            rules: Defaults::NONE,
        },
        ClassDef {
            class: K::Register,
            fields: update_fields!(req(K::KPassword, Ty::Str)),
            handler: Engine::register,
            checks: Checks::SERVER,
            rules: server(R::Anyone),
        },
        ClassDef {
            class: K::Join,
            fields: update_fields!(req(K::KChannel, Ty::Str)),
            handler: Engine::join,
            checks: Checks {
                channel: ChannelUse::Existing,
                ..Checks::SERVER
            },
            // Anonymous channels are entered by being pulled in (§2.4.2).
            rules: Defaults {
                primary: R::Anyone,
                regular: R::Anyone,
                anonymous: R::NoOne,
            },
        },
        ClassDef {
            class: K::Leave,
            fields: update_fields!(req(K::KChannel, Ty::Str)),
            handler: Engine::leave,
            checks: Checks::MEMBER,
            // Nobody leaves the primary channel but by disconnecting.
            rules: everywhere(R::NoOne, R::Anyone),
        },
        ClassDef {
            class: K::Message,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KText, Ty::Str)),
            handler: Engine::message,
            checks: Checks::MEMBER,
            rules: everywhere(R::Registrant, R::Anyone),
        },
        ClassDef {
            class: K::Create,
            fields: update_fields!(opt(K::KChannel, Ty::Str)),
            handler: Engine::create,
            checks: Checks {
                channel: ChannelUse::New,
                ..Checks::SERVER
            },
            // The primary channel's rule makes top-level channels; a
            // channel's own rule makes its children (`shirakumo.mess` §5),
            // its registrant's by default.
            rules: Defaults {
                primary: R::Anyone,
                regular: R::Registrant,
                anonymous: R::Unset,
            },
        },
        ClassDef {
            class: K::Kick,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KTarget, Ty::Str)),
            handler: Engine::kick,
            checks: Checks {
                target_active: true,
                ..Checks::MEMBER
            },
            rules: MODERATION,
        },
        ClassDef {
            class: K::Pull,
            fields: update_fields!(req(K::KChannel, Ty::Str), req(K::KTarget, Ty::Str)),
            handler: Engine::pull,
            checks: Checks {
                target_active: true,
                ..Checks::MEMBER
            },
            rules: everywhere(R::NoOne, R::Anyone),
        },
        ClassDef {
            class: K::Permissions,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                opt(K::KPermissions, Ty::ListList)
            ),
            handler: Engine::permissions,
            checks: Checks {
                channel: ChannelUse::Existing,
                ..Checks::SERVER
            },
            // Nobody changes an anonymous channel's rules (§2.4.2).
            rules: Defaults {
                primary: R::Registrant,
                regular: R::Registrant,
                anonymous: R::NoOne,
            },
        },
        ClassDef {
            class: K::Grant,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KTarget, Ty::Str),
                req(K::KUpdate, Ty::Symbol),
            ),
            handler: Engine::grant_or_deny,
            checks: Checks {
                channel: ChannelUse::Existing,
                ..Checks::SERVER
            },
            rules: MODERATION,
        },
        ClassDef {
            class: K::Deny,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KTarget, Ty::Str),
                req(K::KUpdate, Ty::Symbol),
            ),
            handler: Engine::grant_or_deny,
            checks: Checks {
                channel: ChannelUse::Existing,
                ..Checks::SERVER
            },
            rules: MODERATION,
        },
        ClassDef {
            class: K::Users,
            fields: update_fields!(req(K::KChannel, Ty::Str), opt(K::KUsers, Ty::StrList)),
            handler: Engine::users,
            checks: Checks::MEMBER,
            rules: everywhere(R::Anyone, R::Anyone),
        },
        ClassDef {
            class: K::Channels,
            fields: update_fields!(opt(K::KChannel, Ty::Str), opt(K::KChannels, Ty::StrList)),
            handler: Engine::channels,
            checks: Checks {
                channel: ChannelUse::Existing,
                ..Checks::SERVER
            },
            rules: everywhere(R::Anyone, R::Anyone),
        },
        ClassDef {
            class: K::UserInfo,
            fields: update_fields!(
                req(K::KTarget, Ty::Str),
                opt(K::KRegistered, Ty::Boolean),
                opt(K::KConnections, Ty::Integer),
            ),
            handler: Engine::user_info,
            checks: Checks::SERVER,
            rules: server(R::Anyone),
        },
        ClassDef {
            class: K::Capabilities,
            fields: update_fields!(req(K::KChannel, Ty::Str), opt(K::KPermitted, Ty::SymList)),
            handler: Engine::capabilities,
            checks: Checks::MEMBER,
            rules: everywhere(R::Anyone, R::Anyone),
        },
        ClassDef {
            class: K::ServerInfo,
            fields: update_fields!(
                req(K::KTarget, Ty::Str),
                opt(K::KAttributes, Ty::ListList),
                opt(K::KConnections, Ty::List),
            ),
            handler: Engine::server_info,
            // It reveals addresses: the server user's by default, but
            // asking about oneself reveals nothing new.
            checks: Checks {
                free_about_self: true,
                ..Checks::SERVER
            },
            rules: server(R::Registrant),
        },
    ],
};

impl Engine {
    /// §4.2: a ping is answered with a pong of the same ID.
    fn ping_update(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let pong = crate::wire::Object::new(K::Pong)
            .with(K::KId, req.id())
            .with(K::KClock, req.now)
            .with(K::KFrom, self.config.name.as_str());
        super::send_to(out, req.conn, &pong);
        Ok(())
    }

    /// §4.2: a pong needs no answer.
    fn pong_update(&mut self, _req: &mut Request, _out: &mut Outbox) -> Result<(), Failure> {
        Ok(())
    }

    /// §4.1: `connect` on a connection that completed it already.
    fn connect_again(&mut self, _req: &mut Request, _out: &mut Outbox) -> Result<(), Failure> {
        Err(Failure::new(
            K::AlreadyConnected,
            "This connection has already completed connect.",
        ))
    }
}
