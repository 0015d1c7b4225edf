//! §2.2.1 user and channel names.

use unicode_general_category::{GeneralCategory as G, get_general_category};

/// Longest name in characters (§2.2.1).
pub const MAX_NAME_CHARS: usize = 32;

fn allowed(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    matches!(
        get_general_category(c),
        // Letter
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            // Mark
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark
            // Number
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
            // Punctuation
            | G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation
            // Symbol
            | G::MathSymbol
            | G::CurrencySymbol
            | G::ModifierSymbol
            | G::OtherSymbol
    )
}

/// §2.2.1: 1 to 32 characters from the categories L, M, N, P, S or U+0020,
/// not starting or ending with a space, no two spaces in a row.
pub fn is_valid_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with(' ') || name.ends_with(' ') || name.contains("  ") {
        return false;
    }
    let mut count = 0;
    for c in name.chars() {
        count += 1;
        if count > MAX_NAME_CHARS || !allowed(c) {
            return false;
        }
    }
    true
}

/// A name folded for comparison: two names are the same when their keys
/// are equal (§2.2.1: same length, code points equal case-insensitively).
pub type NameKey = Box<str>;

fn fold(c: char) -> char {
    // Simple per-code-point folding keeps the length rule of §2.2.1: a
    // character whose lower case is several code points stays as it is.
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The comparison key of a name.
pub fn name_key(name: &str) -> NameKey {
    if name
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        return name.into();
    }
    name.chars().map(fold).collect::<String>().into_boxed_str()
}

/// §2.2.1 name equality without allocating.
pub fn names_equal(a: &str, b: &str) -> bool {
    let mut a = a.chars();
    let mut b = b.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y || fold(x) == fold(y) => {}
            _ => return false,
        }
    }
}

/// An order of names consistent with [`names_equal`] (§2.2.1), without
/// allocating: names equal under it compare `Equal`.
pub fn names_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.chars().map(fold).cmp(b.chars().map(fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cmp_agrees_with_names_equal_2_2_1() {
        use std::cmp::Ordering::*;
        assert_eq!(names_cmp("Ann", "aNN"), Equal);
        assert_eq!(names_cmp("ann", "bob"), Less);
        assert_eq!(names_cmp("Bob", "ann"), Greater);
        assert_eq!(names_cmp("ann", "anne"), Less);
    }

    #[test]
    fn names_follow_length_category_and_space_rules_2_2_1() {
        assert!(is_valid_name("ann"));
        assert!(is_valid_name("Ann Lee"));
        assert!(is_valid_name("日本語"));
        assert!(is_valid_name("a-b_c!?"));
        assert!(is_valid_name("€ + ½"));
        assert!(is_valid_name(&"x".repeat(32)));
        assert!(!is_valid_name(&"x".repeat(33)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(" ann"));
        assert!(!is_valid_name("ann "));
        assert!(!is_valid_name("a  b"));
        assert!(!is_valid_name("a\tb"));
        assert!(!is_valid_name("a\u{200b}b")); // format character, category Cf
        assert!(!is_valid_name("a\u{a0}b")); // no-break space is Zs, not U+0020
        assert!(!is_valid_name("a\u{e000}")); // private use
    }

    #[test]
    fn names_compare_case_insensitively_2_2_1() {
        assert!(names_equal("Ann", "aNN"));
        assert!(names_equal("ÄRGER", "ärger"));
        assert!(!names_equal("ann", "anna"));
        assert_eq!(name_key("ÄRGER"), name_key("ärger"));
        assert_eq!(&*name_key("Bob"), "bob");
    }
}
