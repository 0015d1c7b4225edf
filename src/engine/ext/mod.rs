//! The Shirakumo extensions (`shirakumo.mess`), one file each: its class
//! table entries, handlers, state and hooks. Listing an extension in
//! [`ALL`] is all it takes to route, check, rule and advertise it.

mod typing;

use super::registry::Extension;

/// The core protocol and every extension the server implements.
pub(crate) const ALL: &[&Extension] = &[&super::core::CORE, &typing::TYPING];
