//! §1.1 Symbols: a package and a case-insensitive name.
//!
//! Symbols the server knows (the classes and fields of the core spec and the
//! Shirakumo extensions) are represented by [`Known`], a plain enum, so that
//! reading them allocates nothing and matching on them is an integer compare.
//! Any other symbol is carried inside the value that contains it and dropped
//! with it: nothing read from the wire is interned for the process lifetime.

use std::fmt;
use std::sync::OnceLock;

/// The package a known symbol lives in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Package {
    /// `lichat`: printed without prefix.
    Lichat,
    /// `keyword`: printed as `:name`.
    Keyword,
    /// `shirakumo`: the Shirakumo extensions' package.
    Shirakumo,
}

impl Package {
    /// The package's name in lower case.
    pub fn name(self) -> &'static str {
        match self {
            Package::Lichat => "lichat",
            Package::Keyword => "keyword",
            Package::Shirakumo => "shirakumo",
        }
    }

    /// The package named by an already lower-cased name, if known.
    pub(crate) fn from_lower(name: &str) -> Option<Package> {
        match name {
            "lichat" => Some(Package::Lichat),
            "keyword" => Some(Package::Keyword),
            "shirakumo" => Some(Package::Shirakumo),
            _ => None,
        }
    }
}

macro_rules! known_symbols {
    ($($pkg:ident $variant:ident $name:literal,)*) => {
        /// Every symbol the server knows, in its package.
        #[allow(missing_docs)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Known { $($variant,)* }

        impl Known {
            /// All known symbols.
            pub const ALL: &'static [Known] = &[$(Known::$variant,)*];

            /// The package of this symbol.
            pub fn package(self) -> Package {
                match self { $(Known::$variant => Package::$pkg,)* }
            }

            /// The lower-case name of this symbol.
            pub fn name(self) -> &'static str {
                match self { $(Known::$variant => $name,)* }
            }
        }
    };
}

known_symbols! {
    // lichat: booleans and permission-rule markers
    Lichat T "t",
    Lichat Nil "nil",
    Lichat Plus "+",
    Lichat Minus "-",
    // lichat: classes
    Lichat Object "object",
    Lichat Update "update",
    Lichat Ping "ping",
    Lichat Pong "pong",
    Lichat Connect "connect",
    Lichat Disconnect "disconnect",
    Lichat Register "register",
    Lichat ChannelUpdate "channel-update",
    Lichat TargetUpdate "target-update",
    Lichat TextUpdate "text-update",
    Lichat Join "join",
    Lichat Leave "leave",
    Lichat Message "message",
    Lichat Create "create",
    Lichat Kick "kick",
    Lichat Pull "pull",
    Lichat Permissions "permissions",
    Lichat Grant "grant",
    Lichat Deny "deny",
    Lichat Users "users",
    Lichat Channels "channels",
    Lichat UserInfo "user-info",
    Lichat Capabilities "capabilities",
    Lichat ServerInfo "server-info",
    Lichat Failure "failure",
    Lichat MalformedUpdate "malformed-update",
    Lichat UpdateTooLong "update-too-long",
    Lichat ConnectionUnstable "connection-unstable",
    Lichat TooManyConnections "too-many-connections",
    Lichat UpdateFailure "update-failure",
    Lichat InvalidUpdate "invalid-update",
    Lichat AlreadyConnected "already-connected",
    Lichat UsernameMismatch "username-mismatch",
    Lichat IncompatibleVersion "incompatible-version",
    Lichat InvalidPassword "invalid-password",
    Lichat NoSuchProfile "no-such-profile",
    Lichat UsernameTaken "username-taken",
    Lichat NoSuchChannel "no-such-channel",
    Lichat RegistrationRejected "registration-rejected",
    Lichat AlreadyInChannel "already-in-channel",
    Lichat NotInChannel "not-in-channel",
    Lichat ChannelnameTaken "channelname-taken",
    Lichat TooManyChannels "too-many-channels",
    Lichat BadName "bad-name",
    Lichat InsufficientPermissions "insufficient-permissions",
    Lichat InvalidPermissions "invalid-permissions",
    Lichat NoSuchUser "no-such-user",
    Lichat TooManyUpdates "too-many-updates",
    Lichat ClockSkewed "clock-skewed",
    Lichat Warning "warning",
    Lichat UpdatesThrottled "updates-throttled",
    // lichat: server-info attribute names
    Lichat RegisteredOn "registered-on",
    Lichat ConnectedOn "connected-on",
    Lichat Ip "ip",
    // keywords: fields of the core spec and the extensions
    Keyword KId "id",
    Keyword KClock "clock",
    Keyword KFrom "from",
    Keyword KPassword "password",
    Keyword KVersion "version",
    Keyword KExtensions "extensions",
    Keyword KChannel "channel",
    Keyword KTarget "target",
    Keyword KText "text",
    Keyword KPermissions "permissions",
    Keyword KUpdate "update",
    Keyword KUsers "users",
    Keyword KChannels "channels",
    Keyword KRegistered "registered",
    Keyword KConnections "connections",
    Keyword KPermitted "permitted",
    Keyword KAttributes "attributes",
    Keyword KUpdateId "update-id",
    Keyword KCompatibleVersions "compatible-versions",
    Keyword KSince "since",
    Keyword KContentType "content-type",
    Keyword KFilename "filename",
    Keyword KPayload "payload",
    Keyword KAllowedContentTypes "allowed-content-types",
    Keyword KNames "names",
    Keyword KName "name",
    Keyword KKeys "keys",
    Keyword KKey "key",
    Keyword KBy "by",
    Keyword KIp "ip",
    Keyword KMask "mask",
    Keyword KIdentities "identities",
    Keyword KResults "results",
    Keyword KOffset "offset",
    Keyword KQuery "query",
    Keyword KEmote "emote",
    // keywords: fields that extensions add to existing classes (clients
    // send them as keywords; `shirakumo:` keys are read as these)
    Keyword KRich "rich",
    Keyword KInfo "info",
    Keyword KSignature "signature",
    Keyword KReplyTo "reply-to",
    Keyword KOtpToken "otp-token",
    Keyword KOtpKey "otp-key",
    Keyword KLink "link",
    Keyword KBridge "bridge",
    Keyword KRole "role",
    Keyword KRoles "roles",
    Keyword KShares "shares",
    // keywords: channel-info keys (§6, §16)
    Keyword KTitle "title",
    Keyword KNews "news",
    Keyword KTopic "topic",
    Keyword KRules "rules",
    Keyword KContact "contact",
    Keyword KUrl "url",
    Keyword KIcon "icon",
    // keywords: user-info keys (§14)
    Keyword KBirthday "birthday",
    Keyword KLocation "location",
    Keyword KPublicKey "public-key",
    Keyword KRealName "real-name",
    Keyword KStatus "status",
    // shirakumo: classes and fields of the extensions
    Shirakumo SBackfill "backfill",
    Shirakumo SData "data",
    Shirakumo SBadContentType "bad-content-type",
    Shirakumo SEmotes "emotes",
    Shirakumo SEmote "emote",
    Shirakumo SEmoteListFull "emote-list-full",
    Shirakumo SEdit "edit",
    Shirakumo SNoSuchParentChannel "no-such-parent-channel",
    Shirakumo SChannelInfo "channel-info",
    Shirakumo SSetChannelInfo "set-channel-info",
    Shirakumo SNoSuchChannelInfo "no-such-channel-info",
    Shirakumo SMalformedChannelInfo "malformed-channel-info",
    Shirakumo SKill "kill",
    Shirakumo SDestroy "destroy",
    Shirakumo SBan "ban",
    Shirakumo SUnban "unban",
    Shirakumo SBlacklist "blacklist",
    Shirakumo SPause "pause",
    Shirakumo SQuiet "quiet",
    Shirakumo SUnquiet "unquiet",
    Shirakumo SQuieted "quieted",
    Shirakumo SIpBan "ip-ban",
    Shirakumo SIpUnban "ip-unban",
    Shirakumo SIpBlacklist "ip-blacklist",
    Shirakumo SBadIpFormat "bad-ip-format",
    Shirakumo SIp "ip",
    Shirakumo SBridge "bridge",
    Shirakumo SLink "link",
    Shirakumo SRich "rich",
    Shirakumo SSetUserInfo "set-user-info",
    Shirakumo SInfo "info",
    Shirakumo SMalformedUserInfo "malformed-user-info",
    Shirakumo SNoSuchUserInfo "no-such-user-info",
    Shirakumo SShareIdentity "share-identity",
    Shirakumo SUnshareIdentity "unshare-identity",
    Shirakumo SListSharedIdentities "list-shared-identities",
    Shirakumo SAssumeIdentity "assume-identity",
    Shirakumo SIdentityAlreadyUsed "identity-already-used",
    Shirakumo SSignature "signature",
    Shirakumo SSearch "search",
    Shirakumo SBlock "block",
    Shirakumo SUnblock "unblock",
    Shirakumo SBlocked "blocked",
    Shirakumo SReact "react",
    Shirakumo SReplyTo "reply-to",
    Shirakumo SLastRead "last-read",
    Shirakumo STyping "typing",
    Shirakumo SInvalidOtpKey "invalid-otp-key",
    Shirakumo SOtpToken "otp-token",
    Shirakumo SOtpKey "otp-key",
    Shirakumo SRoleUpdate "role-update",
    Shirakumo SRole "role",
    Shirakumo SDeleteRole "delete-role",
    Shirakumo SAssignRole "assign-role",
    Shirakumo SRemoveRole "remove-role",
    Shirakumo SRoles "roles",
    Shirakumo SNoSuchRole "no-such-role",
}

/// Longest name a known symbol may have: names are compared as four
/// words.
const MAX_KNOWN_NAME: usize = 32;

/// Slots of the open-addressing table; a power of two, well over twice the
/// number of known symbols.
const SLOTS: usize = 512;

/// A name packed into words, zero-padded, for comparing in four steps.
type Key = [u64; MAX_KNOWN_NAME / 8];

/// Packs a name into words straight from the slice (a detour through a
/// byte buffer would stall on store forwarding).
#[inline]
fn key_of(name: &[u8]) -> Option<Key> {
    if name.len() > MAX_KNOWN_NAME {
        return None;
    }
    let mut key = [0u64; MAX_KNOWN_NAME / 8];
    for (i, word) in key.iter_mut().enumerate() {
        let start = i * 8;
        if start >= name.len() {
            break;
        }
        *word = load_word(&name[start..]);
    }
    Some(key)
}

/// Up to the first eight bytes of `b`, little-endian, zero-padded.
fn load_word(b: &[u8]) -> u64 {
    let u32_at = |i: usize| {
        // Callers pass `i + 4 <= b.len()`.
        u64::from(u32::from_le_bytes(
            b[i..i + 4].try_into().unwrap_or_default(),
        ))
    };
    match b.len() {
        0 => 0,
        1..=3 => {
            let n = b.len();
            u64::from(b[0])
                | u64::from(b[n / 2]) << (n / 2 * 8)
                | u64::from(b[n - 1]) << ((n - 1) * 8)
        }
        4..=7 => {
            let n = b.len();
            u32_at(0) | u32_at(n - 4) << ((n - 4) * 8)
        }
        _ => u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
    }
}

#[inline]
fn slot_of(package: Package, len: usize, key: &Key) -> usize {
    let mixed = key[0] ^ key[1].rotate_left(19) ^ key[2].rotate_left(38) ^ key[3].rotate_left(57);
    let h = (mixed ^ ((len as u64) << 3) ^ package as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The known-symbol table: a fixed open-addressing table built once, so a
/// lookup is one multiply and a few word compares, and never allocates.
struct Table {
    /// Per slot, `Known` index + 1; 0 marks an empty slot.
    slots: [u16; SLOTS],
    /// Per `Known` index: its package, name length and packed name.
    keys: Vec<(Package, usize, Key)>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Table {
            slots: [0; SLOTS],
            keys: Vec::with_capacity(Known::ALL.len()),
        };
        assert!(
            Known::ALL.len() < SLOTS / 2,
            "the known-symbol table is too full"
        );
        for (i, &k) in Known::ALL.iter().enumerate() {
            let name = k.name().as_bytes();
            let key = key_of(name).expect("known names fit MAX_KNOWN_NAME");
            table.keys.push((k.package(), name.len(), key));
            let mut slot = slot_of(k.package(), name.len(), &key);
            while table.slots[slot] != 0 {
                slot = (slot + 1) % SLOTS;
            }
            table.slots[slot] = (i + 1) as u16;
        }
        table
    })
}

impl Known {
    /// Looks up a known symbol by package and already lower-cased name.
    pub fn lookup(package: Package, lower_name: &str) -> Option<Known> {
        let name = lower_name.as_bytes();
        let key = key_of(name)?;
        let [w0, w1, w2, w3] = key;
        let table = table();
        let mut slot = slot_of(package, name.len(), &key);
        loop {
            let index = usize::from(table.slots[slot]).checked_sub(1)?;
            // Slots hold indices into `keys` and `Known::ALL`, built together.
            let (p, len, k) = &table.keys[index];
            if *len == name.len()
                && k[0] == w0
                && k[1] == w1
                && k[2] == w2
                && k[3] == w3
                && *p == package
            {
                return Some(Known::ALL[index]);
            }
            slot = (slot + 1) % SLOTS;
        }
    }
}

/// A symbol that is not in the known table: owned by the value holding it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OtherSymbol {
    /// Lower-cased package name.
    pub package: Box<str>,
    /// Lower-cased symbol name.
    pub name: Box<str>,
}

/// §1.1 A symbol: a known one, or any other carried by value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Symbol {
    /// A symbol of the server's known table.
    Known(Known),
    /// Any other symbol, never interned.
    Other(Box<OtherSymbol>),
}

impl From<Known> for Symbol {
    fn from(k: Known) -> Symbol {
        Symbol::Known(k)
    }
}

/// Lower-cases a name the way §1.1 compares names.
pub fn lower(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        if name.is_ascii() {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Owned(name.to_lowercase())
        }
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

impl Symbol {
    /// Makes a symbol from a package and name in any case (§1.1).
    pub fn new(package: &str, name: &str) -> Symbol {
        let package = lower(package);
        let name = lower(name);
        if let Some(p) = Package::from_lower(&package)
            && let Some(k) = Known::lookup(p, &name)
        {
            return Symbol::Known(k);
        }
        Symbol::Other(Box::new(OtherSymbol {
            package: package.into_owned().into_boxed_str(),
            name: name.into_owned().into_boxed_str(),
        }))
    }

    /// A keyword (package `keyword`) of the given name.
    pub fn keyword(name: &str) -> Symbol {
        Symbol::new("keyword", name)
    }

    /// A symbol of the `lichat` package.
    pub fn lichat(name: &str) -> Symbol {
        Symbol::new("lichat", name)
    }

    /// The lower-case package name.
    pub fn package(&self) -> &str {
        match self {
            Symbol::Known(k) => k.package().name(),
            Symbol::Other(o) => &o.package,
        }
    }

    /// The lower-case symbol name.
    pub fn name(&self) -> &str {
        match self {
            Symbol::Known(k) => k.name(),
            Symbol::Other(o) => &o.name,
        }
    }

    /// The known symbol, if this is one.
    pub fn known(&self) -> Option<Known> {
        match self {
            Symbol::Known(k) => Some(*k),
            Symbol::Other(_) => None,
        }
    }

    /// True for symbols of the `keyword` package.
    pub fn is_keyword(&self) -> bool {
        self.package() == "keyword"
    }

    /// True for `lichat:t`.
    pub fn is_t(&self) -> bool {
        matches!(self, Symbol::Known(Known::T))
    }

    /// True for `lichat:nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Symbol::Known(Known::Nil))
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.package(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_unique_per_package_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for &k in Known::ALL {
            assert!(seen.insert((k.package(), k.name())), "duplicate {k:?}");
            assert_eq!(k.name(), lower(k.name()));
            assert_eq!(Known::lookup(k.package(), k.name()), Some(k));
        }
    }

    #[test]
    fn load_word_packs_any_short_slice_1_1() {
        let bytes = b"abcdefghij";
        for len in 0..=10 {
            let mut padded = [0u8; 8];
            let n = len.min(8);
            padded[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(
                load_word(&bytes[..len]),
                u64::from_le_bytes(padded),
                "{len}"
            );
        }
    }

    #[test]
    fn lookup_refuses_names_that_are_not_known_1_1() {
        assert_eq!(Known::lookup(Package::Lichat, ""), None);
        assert_eq!(Known::lookup(Package::Lichat, "messag"), None);
        assert_eq!(Known::lookup(Package::Lichat, "messagee"), None);
        assert_eq!(Known::lookup(Package::Keyword, "message"), None);
        assert_eq!(Known::lookup(Package::Lichat, "id"), None);
        assert_eq!(Known::lookup(Package::Shirakumo, &"x".repeat(33)), None);
        assert_eq!(
            Known::lookup(Package::Lichat, "insufficient-permissions"),
            Some(Known::InsufficientPermissions)
        );
    }

    #[test]
    fn symbol_new_folds_case_and_finds_known_symbols_1_1() {
        assert_eq!(
            Symbol::new("LICHAT", "Message"),
            Symbol::Known(Known::Message)
        );
        assert_eq!(Symbol::keyword("ID"), Symbol::Known(Known::KId));
        let other = Symbol::new("Foo", "BAR");
        assert_eq!(other.package(), "foo");
        assert_eq!(other.name(), "bar");
        assert!(other.known().is_none());
    }
}
