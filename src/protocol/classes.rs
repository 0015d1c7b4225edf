//! Update classes of `lichat.sexpr` and `shirakumo.sexpr`: the class
//! hierarchy and the fields the server checks on updates it accepts.

use crate::wire::{Known, Object, Value};

/// The type of a field, as far as the server checks it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `id`: any value but `NIL`.
    Id,
    /// `integer` / `time`.
    Integer,
    /// `string` (and `username`, `channelname`, `password`).
    Str,
    /// `symbol`.
    Symbol,
    /// `boolean`: `T` or `NIL`.
    Boolean,
    /// `(list string)`.
    StrList,
    /// `(list symbol)`.
    SymList,
    /// `(list list)`.
    ListList,
    /// `list`.
    List,
}

impl Ty {
    /// A short description for `malformed-update` texts.
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Id => "an ID",
            Ty::Integer => "an integer",
            Ty::Str => "a string",
            Ty::Symbol => "a symbol",
            Ty::Boolean => "T or NIL",
            Ty::StrList => "a list of strings",
            Ty::SymList => "a list of symbols",
            Ty::ListList => "a list of lists",
            Ty::List => "a list",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Id => !v.is_nil(),
            Ty::Integer => matches!(v, Value::Integer(_)),
            Ty::Str => matches!(v, Value::String(_)),
            Ty::Symbol => matches!(v, Value::Symbol(_)),
            Ty::Boolean => matches!(v, Value::Symbol(s) if s.is_t() || s.is_nil()),
            Ty::StrList => v
                .as_list()
                .is_some_and(|l| l.iter().all(|x| matches!(x, Value::String(_)))),
            Ty::SymList => v
                .as_list()
                .is_some_and(|l| l.iter().all(|x| matches!(x, Value::Symbol(_)))),
            Ty::ListList => v
                .as_list()
                .is_some_and(|l| l.iter().all(|x| x.as_list().is_some())),
            Ty::List => v.as_list().is_some(),
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Ty::StrList | Ty::SymList | Ty::ListList | Ty::List)
    }
}

/// One field of a class: its keyword, type and whether it may be omitted.
#[derive(Copy, Clone, Debug)]
pub struct Field {
    /// The field's keyword.
    pub key: Known,
    /// Its type.
    pub ty: Ty,
    /// False for fields that must be present (§1.4).
    pub optional: bool,
}

const fn req(key: Known, ty: Ty) -> Field {
    Field {
        key,
        ty,
        optional: false,
    }
}

const fn opt(key: Known, ty: Ty) -> Field {
    Field {
        key,
        ty,
        optional: true,
    }
}

use Known as K;

const UPDATE: [Field; 3] = [
    req(K::KId, Ty::Id),
    opt(K::KClock, Ty::Integer),
    opt(K::KFrom, Ty::Str),
];

macro_rules! fields {
    ($($f:expr),* $(,)?) => {{
        const F: &[Field] = &[UPDATE[0], UPDATE[1], UPDATE[2], $($f),*];
        F
    }};
}

/// The fields the server checks for an update class it accepts from
/// clients, inherited ones included; `None` for classes it does not accept.
///
/// Where `lichat.sexpr` marks a field required that only a reply carries
/// (`server-info`'s `attributes`), or that an extension made optional
/// (`channels`' `channel`), the request may omit it.
pub fn fields_of(class: Known) -> Option<&'static [Field]> {
    Some(match class {
        K::Ping | K::Pong | K::Disconnect => fields!(),
        K::Connect => fields!(
            opt(K::KPassword, Ty::Str),
            req(K::KVersion, Ty::Str),
            opt(K::KExtensions, Ty::StrList),
        ),
        K::Register => fields!(req(K::KPassword, Ty::Str)),
        K::Join | K::Leave => fields!(req(K::KChannel, Ty::Str)),
        K::Message => fields!(req(K::KChannel, Ty::Str), req(K::KText, Ty::Str)),
        K::Create => fields!(opt(K::KChannel, Ty::Str)),
        K::Kick | K::Pull => fields!(req(K::KChannel, Ty::Str), req(K::KTarget, Ty::Str)),
        K::Permissions => fields!(
            req(K::KChannel, Ty::Str),
            opt(K::KPermissions, Ty::ListList)
        ),
        K::Grant | K::Deny => fields!(
            req(K::KChannel, Ty::Str),
            req(K::KTarget, Ty::Str),
            req(K::KUpdate, Ty::Symbol),
        ),
        K::Users => fields!(req(K::KChannel, Ty::Str), opt(K::KUsers, Ty::StrList)),
        K::Channels => fields!(opt(K::KChannel, Ty::Str), opt(K::KChannels, Ty::StrList)),
        K::UserInfo => fields!(
            req(K::KTarget, Ty::Str),
            opt(K::KRegistered, Ty::Boolean),
            opt(K::KConnections, Ty::Integer),
        ),
        K::Capabilities => fields!(req(K::KChannel, Ty::Str), opt(K::KPermitted, Ty::SymList)),
        K::ServerInfo => fields!(
            req(K::KTarget, Ty::Str),
            opt(K::KAttributes, Ty::ListList),
            opt(K::KConnections, Ty::List),
        ),
        _ => return None,
    })
}

/// True if the server accepts updates of this class from clients.
pub fn is_update_class(class: Known) -> bool {
    fields_of(class).is_some()
}

/// Checks an update's fields (§1.4): a required field that is missing, or
/// any field of the wrong type, is returned with its expected type.
/// `NIL` counts as unset (§1.2), but stands for the empty list in a
/// required list field.
pub fn check_fields(fields: &[Field], update: &Object) -> Result<(), (Known, Ty)> {
    for f in fields {
        match update.get_raw(f.key) {
            None => {
                if !f.optional {
                    return Err((f.key, f.ty));
                }
            }
            Some(v) if v.is_nil() && !f.ty.is_list() => {
                if !f.optional {
                    return Err((f.key, f.ty));
                }
            }
            Some(v) => {
                if !f.ty.accepts(v) {
                    return Err((f.key, f.ty));
                }
            }
        }
    }
    Ok(())
}

/// The direct superclasses of a known class (`lichat.sexpr`,
/// `shirakumo.sexpr`); empty for `object` and for non-classes.
fn parents(class: Known) -> &'static [Known] {
    match class {
        K::Update => &[K::Object],
        K::Ping | K::Pong | K::Connect | K::Disconnect | K::Register => &[K::Update],
        K::ChannelUpdate | K::TargetUpdate | K::TextUpdate | K::Create => &[K::Update],
        K::Join | K::Leave | K::Permissions | K::Users | K::Channels | K::Capabilities => {
            &[K::ChannelUpdate]
        }
        K::Message => &[K::ChannelUpdate, K::TextUpdate],
        K::Kick | K::Pull | K::Grant | K::Deny => &[K::ChannelUpdate, K::TargetUpdate],
        K::UserInfo | K::ServerInfo => &[K::TargetUpdate],
        K::Failure | K::Warning => &[K::TextUpdate],
        K::MalformedUpdate
        | K::UpdateTooLong
        | K::ConnectionUnstable
        | K::TooManyConnections
        | K::UpdateFailure => &[K::Failure],
        K::InvalidUpdate
        | K::AlreadyConnected
        | K::UsernameMismatch
        | K::IncompatibleVersion
        | K::InvalidPassword
        | K::NoSuchProfile
        | K::UsernameTaken
        | K::NoSuchChannel
        | K::RegistrationRejected
        | K::AlreadyInChannel
        | K::NotInChannel
        | K::ChannelnameTaken
        | K::TooManyChannels
        | K::BadName
        | K::InsufficientPermissions
        | K::InvalidPermissions
        | K::NoSuchUser
        | K::TooManyUpdates
        | K::ClockSkewed => &[K::UpdateFailure],
        K::UpdatesThrottled => &[K::Warning],
        K::SBackfill
        | K::SData
        | K::SEmotes
        | K::SEmote
        | K::SChannelInfo
        | K::SDestroy
        | K::SPause
        | K::SQuieted
        | K::SBridge
        | K::SSearch
        | K::SReact
        | K::SLastRead
        | K::STyping
        | K::SRoleUpdate
        | K::SRoles => &[K::ChannelUpdate],
        K::SSetChannelInfo => &[K::ChannelUpdate, K::TextUpdate],
        K::SQuiet | K::SUnquiet => &[K::ChannelUpdate, K::TargetUpdate],
        K::SEdit => &[K::Message],
        K::SKill | K::SBan | K::SUnban | K::SAssumeIdentity | K::SBlock | K::SUnblock => {
            &[K::TargetUpdate]
        }
        K::SBlacklist
        | K::SIpBan
        | K::SIpUnban
        | K::SIpBlacklist
        | K::SShareIdentity
        | K::SUnshareIdentity
        | K::SListSharedIdentities
        | K::SBlocked => &[K::Update],
        K::SSetUserInfo => &[K::TextUpdate],
        K::SBadContentType
        | K::SEmoteListFull
        | K::SNoSuchParentChannel
        | K::SNoSuchChannelInfo
        | K::SMalformedChannelInfo
        | K::SBadIpFormat
        | K::SMalformedUserInfo
        | K::SNoSuchUserInfo
        | K::SInvalidOtpKey => &[K::UpdateFailure],
        K::SRole | K::SDeleteRole | K::SNoSuchRole => &[K::SRoleUpdate],
        K::SAssignRole | K::SRemoveRole => &[K::SRoleUpdate, K::TargetUpdate],
        _ => &[],
    }
}

/// True if `class` is `ancestor` or inherits from it.
pub fn is_a(class: Known, ancestor: Known) -> bool {
    class == ancestor || parents(class).iter().any(|&p| is_a(p, ancestor))
}

/// True for `update` and its subclasses (§5.1.3).
pub fn is_update(class: Known) -> bool {
    is_a(class, K::Update)
}

/// True for `failure` and its subclasses.
pub fn is_failure(class: Known) -> bool {
    is_a(class, K::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_matches_lichat_sexpr_1_4() {
        assert!(is_update(K::Message));
        assert!(is_a(K::Message, K::TextUpdate));
        assert!(is_a(K::NoSuchChannel, K::UpdateFailure));
        assert!(is_failure(K::NoSuchChannel));
        assert!(is_update(K::SEdit) && is_a(K::SEdit, K::Message));
        assert!(!is_update(K::Object));
        assert!(!is_update(K::KId));
        assert!(!is_update(K::T));
    }

    #[test]
    fn every_accepted_class_is_an_update_with_an_id_field_1_4() {
        for &k in Known::ALL {
            if let Some(fields) = fields_of(k) {
                assert!(is_update(k), "{k:?}");
                assert_eq!(fields[0].key, K::KId);
            }
        }
    }
}
