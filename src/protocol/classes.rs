//! Update classes of `lichat.sexpr` and `shirakumo.sexpr`: the class
//! hierarchy, and field types and checks (§1.4). Which classes the server
//! handles, with which fields, is the engine's class table.

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

/// A field that must be present (§1.4).
pub const fn req(key: Known, ty: Ty) -> Field {
    Field {
        key,
        ty,
        optional: false,
    }
}

/// A field that may be omitted.
pub const fn opt(key: Known, ty: Ty) -> Field {
    Field {
        key,
        ty,
        optional: true,
    }
}

use Known as K;

/// §1.4 the fields of every update: `id`, `clock` and `from`.
pub const UPDATE_FIELDS: [Field; 3] = [
    req(K::KId, Ty::Id),
    opt(K::KClock, Ty::Integer),
    opt(K::KFrom, Ty::Str),
];

/// The fields of an update class: those of `update` (§1.4) followed by
/// the given ones, as a `&'static [Field]`.
#[macro_export]
macro_rules! update_fields {
    ($($f:expr),* $(,)?) => {{
        use $crate::protocol::{Field, UPDATE_FIELDS};
        const F: &[Field] = &[UPDATE_FIELDS[0], UPDATE_FIELDS[1], UPDATE_FIELDS[2], $($f),*];
        F
    }};
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
        | K::SInvalidOtpKey
        | K::SIdentityAlreadyUsed => &[K::UpdateFailure],
        K::SRole | K::SDeleteRole => &[K::SRoleUpdate],
        // A failure (it is sent back as one) that names its role.
        K::SNoSuchRole => &[K::SRoleUpdate, K::UpdateFailure],
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
}
