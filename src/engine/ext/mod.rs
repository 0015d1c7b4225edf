//! The Shirakumo extensions (`shirakumo.mess`), one file each: its class
//! table entries, handlers, state and hooks, as one `EXTENSION` constant.
//! Naming an extension in the `extensions!` line below is all it takes to
//! route, check, rule and advertise it.

use super::registry::Extension;

/// Declares each extension's module and lists it, after the core
/// protocol, in [`ALL`].
macro_rules! extensions {
    ($($name:ident),* $(,)?) => {
        $(pub(super) mod $name;)*

        /// The core protocol and every extension the server implements.
        pub(crate) const ALL: &[&Extension] = &[&super::core::CORE, $(&$name::EXTENSION),*];
    };
}

extensions![
    backfill,
    block,
    bridge,
    channel_info,
    channel_trees,
    data,
    edit,
    emotes,
    history,
    icons,
    ip,
    last_read,
    link,
    markup,
    otp,
    pause,
    quiet,
    reactions,
    replies,
    roles,
    server_management,
    shared_identity,
    sign,
    typing,
    user_info,
];

pub(crate) use data::DEFAULT_DATA_TYPES;

/// §10 of `shirakumo.mess`: a connection's address as the `shirakumo:ip`
/// attribute has it.
pub(crate) fn ipv6_text(ip: std::net::IpAddr) -> String {
    self::ip::as_ipv6(ip).to_string()
}
