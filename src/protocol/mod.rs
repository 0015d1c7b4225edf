//! The protocol's vocabulary: update classes and their fields (§1.4,
//! `lichat.sexpr`), names (§2.2.1) and permission rules (§2.5). Touches no
//! server state.

mod classes;
mod names;
mod rules;

pub use classes::{
    Field, Ty, check_fields, fields_of, is_a, is_failure, is_update, is_update_class,
};
pub use names::{NameKey, is_valid_name, name_key, names_equal};
pub use rules::{Names, Rule, RuleError};

/// The protocol version this server speaks: the current one, which real
/// clients (pylichat 1.4) send.
pub const VERSION: &str = "2.0";

/// Versions accepted in `connect` (§4.1.2); anything else gets
/// `incompatible-version`.
pub const COMPATIBLE_VERSIONS: &[&str] = &["2.0", "1.5", "1.4", "1.3", "1.2", "1.1", "1.0"];
