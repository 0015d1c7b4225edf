//! The Shirakumo extensions (`shirakumo.mess`), one file each: its class
//! table entries, handlers, state and hooks, as one `EXTENSION` constant.
//! Naming an extension in the `extensions!` line below is all it takes to
//! route, check, rule and advertise it.

use super::registry::Extension;

/// Declares each extension's module and lists it, after the core
/// protocol, in [`ALL`].
macro_rules! extensions {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*

        /// The core protocol and every extension the server implements.
        pub(crate) const ALL: &[&Extension] = &[&super::core::CORE, $(&$name::EXTENSION),*];
    };
}

extensions![
    backfill,
    channel_info,
    channel_trees,
    edit,
    icons,
    markup,
    reactions,
    replies,
    sign,
    typing,
    user_info,
];
