//! The protocol's vocabulary: update classes and their fields (§1.4,
//! `lichat.sexpr`), names (§2.2.1), permission rules (§2.5) and
//! base-64 payloads (`shirakumo.mess` §2, §3, §16). Touches no
//! server state.

mod classes;
mod names;
pub mod payload;
mod rules;

pub use classes::{Field, Ty, UPDATE_FIELDS, check_fields, is_a, is_failure, is_update, opt, req};
pub use names::{NameKey, is_valid_name, name_key, names_cmp, names_equal};
pub use rules::{Names, Rule, RuleError};

/// The protocol version this server speaks: the current one, which real
/// clients (pylichat 1.4) send.
pub const VERSION: &str = "2.0";

/// Versions accepted in `connect` (§4.1.2); anything else gets
/// `incompatible-version`.
pub const COMPATIBLE_VERSIONS: &[&str] = &["2.0", "1.5", "1.4", "1.3", "1.2", "1.1", "1.0"];
