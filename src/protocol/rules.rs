//! §2.5 permission rules.

use super::names::{NameKey, is_valid_name, name_key, names_equal};
use crate::wire::{Known, Value};
use std::collections::HashSet;

/// Lists up to this long are searched name by name; longer ones keep a
/// hash index so that checking a rule never scans thousands of names.
const SMALL: usize = 16;

/// §2.5 the user names of a rule, in the order given, each once
/// (case-insensitively, §2.2.1).
#[derive(Clone, Debug, Default)]
pub struct Names {
    list: Vec<String>,
    /// The names' keys, kept once the list is longer than `SMALL`.
    index: Option<HashSet<NameKey>>,
}

impl PartialEq for Names {
    fn eq(&self, other: &Names) -> bool {
        self.list == other.list
    }
}

impl Eq for Names {}

impl Names {
    /// The names from a list, duplicates dropped (the first spelling stays).
    pub fn from_list<I: IntoIterator<Item = String>>(names: I) -> Names {
        let mut n = Names::default();
        for name in names {
            n.add(&name);
        }
        n
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The names in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.list.iter()
    }

    /// The names as a vector, in order.
    pub fn to_vec(&self) -> Vec<String> {
        self.list.clone()
    }

    /// Whether `user` is among the names.
    pub fn contains(&self, user: &str) -> bool {
        match &self.index {
            Some(index) => index.contains(&name_key(user)),
            None => self.list.iter().any(|n| names_equal(n, user)),
        }
    }

    /// Adds `user` unless it is there; true if it was added.
    fn add(&mut self, user: &str) -> bool {
        if let Some(index) = &mut self.index {
            if !index.insert(name_key(user)) {
                return false;
            }
        } else if self.list.iter().any(|n| names_equal(n, user)) {
            return false;
        }
        self.list.push(user.to_owned());
        if self.index.is_none() && self.list.len() > SMALL {
            self.index = Some(self.list.iter().map(|n| name_key(n)).collect());
        }
        true
    }

    fn remove(&mut self, user: &str) {
        if let Some(index) = &mut self.index
            && !index.remove(&name_key(user))
        {
            return;
        }
        self.list.retain(|n| !names_equal(n, user));
    }
}

/// §2.5 a permission rule: who may perform an update type on a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `(+ names)`: only these users; `NIL` is the empty inclusion.
    Include(Names),
    /// `(- names)`: anyone but these users; `T` is the empty exclusion.
    Exclude(Names),
}

/// Why a rule expression is not acceptable (§5.3.2.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// Not `T`, `NIL`, `(+ ...)` or `(- ...)`.
    Shape,
    /// A listed user name is not a string or not a valid name.
    BadName,
    /// More names than the server keeps in one rule (the limit).
    TooManyNames(usize),
}

impl Rule {
    /// `T`: anyone.
    pub fn anyone() -> Rule {
        Rule::Exclude(Names::default())
    }

    /// `NIL`: no one.
    pub fn no_one() -> Rule {
        Rule::Include(Names::default())
    }

    /// `(+ name)`.
    pub fn only(name: &str) -> Rule {
        Rule::Include(Names::from_list([name.to_owned()]))
    }

    /// The names the rule lists, included or excluded.
    pub fn names(&self) -> &Names {
        match self {
            Rule::Include(n) | Rule::Exclude(n) => n,
        }
    }

    /// Whether the named user may perform the update.
    pub fn allows(&self, user: &str) -> bool {
        match self {
            Rule::Include(names) => !names.is_empty() && names.contains(user),
            Rule::Exclude(names) => names.is_empty() || !names.contains(user),
        }
    }

    /// §5.3.2 `grant`: `T` stays, `NIL` becomes `(+ user)`, an exclusion
    /// drops the user, an inclusion adds them.
    pub fn grant(&mut self, user: &str) {
        match self {
            Rule::Include(names) => {
                names.add(user);
            }
            Rule::Exclude(names) => names.remove(user),
        }
    }

    /// §5.3.2 `deny`: `T` becomes `(- user)`, `NIL` stays, an exclusion adds
    /// the user, an inclusion drops them.
    pub fn deny(&mut self, user: &str) {
        match self {
            Rule::Include(names) => names.remove(user),
            Rule::Exclude(names) => {
                names.add(user);
            }
        }
    }

    /// Parses a rule expression (§2.5 `EXPR`) listing at most `max_names`
    /// names; duplicates count once. Linear in the expression's length.
    pub fn from_value(value: &Value, max_names: usize) -> Result<Rule, RuleError> {
        match value {
            Value::Symbol(s) if s.is_t() => Ok(Rule::anyone()),
            Value::Symbol(s) if s.is_nil() => Ok(Rule::no_one()),
            Value::List(items) if items.is_empty() => Ok(Rule::no_one()),
            Value::List(items) => {
                let include = match items[0].as_symbol().and_then(|s| s.known()) {
                    Some(Known::Plus) => true,
                    Some(Known::Minus) => false,
                    _ => return Err(RuleError::Shape),
                };
                let mut names = Names::default();
                for item in &items[1..] {
                    match item.as_str() {
                        Some(n) if is_valid_name(n) => {
                            if names.add(n) && names.len() > max_names {
                                return Err(RuleError::TooManyNames(max_names));
                            }
                        }
                        _ => return Err(RuleError::BadName),
                    }
                }
                Ok(if include {
                    Rule::Include(names)
                } else {
                    Rule::Exclude(names)
                })
            }
            _ => Err(RuleError::Shape),
        }
    }

    /// The rule as a wire expression: `T`, `NIL`, `(+ ...)` or `(- ...)`.
    pub fn to_value(&self) -> Value {
        let (marker, names) = match self {
            Rule::Exclude(n) if n.is_empty() => return Value::T,
            Rule::Include(n) if n.is_empty() => return Value::NIL,
            Rule::Include(n) => (Known::Plus, n),
            Rule::Exclude(n) => (Known::Minus, n),
        };
        let mut items = Vec::with_capacity(names.len() + 1);
        items.push(Value::sym(marker));
        items.extend(names.iter().map(|n| Value::string(n.as_str())));
        Value::List(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Rule) -> Vec<&str> {
        r.names().iter().map(|s| s.as_str()).collect()
    }

    fn parse(v: &Value) -> Result<Rule, RuleError> {
        Rule::from_value(v, usize::MAX)
    }

    fn list(names: &[&str]) -> Names {
        Names::from_list(names.iter().map(|n| n.to_string()))
    }

    #[test]
    fn grant_follows_the_table_of_5_3_2() {
        let mut t = Rule::anyone();
        t.grant("ann");
        assert_eq!(t, Rule::anyone(), "1. T stays T");
        let mut nil = Rule::no_one();
        nil.grant("ann");
        assert_eq!(nil, Rule::only("ann"), "2. NIL becomes (+ user)");
        let mut ex = Rule::Exclude(list(&["ann", "bob"]));
        ex.grant("ANN");
        assert_eq!(names(&ex), ["bob"], "3. removed from the exclusion");
        assert!(matches!(ex, Rule::Exclude(_)));
        let mut inc = Rule::only("bob");
        inc.grant("ann");
        inc.grant("Ann");
        assert_eq!(
            names(&inc),
            ["bob", "ann"],
            "4. added once to the inclusion"
        );
    }

    #[test]
    fn deny_follows_the_table_of_5_3_2() {
        let mut t = Rule::anyone();
        t.deny("ann");
        assert_eq!(t, Rule::Exclude(list(&["ann"])), "1. T becomes (- user)");
        let mut nil = Rule::no_one();
        nil.deny("ann");
        assert_eq!(nil, Rule::no_one(), "2. NIL stays NIL");
        let mut ex = Rule::Exclude(list(&["bob"]));
        ex.deny("ann");
        ex.deny("ANN");
        assert_eq!(names(&ex), ["bob", "ann"], "3. added once to the exclusion");
        let mut inc = Rule::Include(list(&["ann", "bob"]));
        inc.deny("Ann");
        assert_eq!(names(&inc), ["bob"], "4. removed from the inclusion");
        assert!(matches!(inc, Rule::Include(_)));
    }

    #[test]
    fn rule_expressions_parse_and_print_2_5() {
        let plus = Value::List(vec![Value::sym(Known::Plus), Value::string("ann")]);
        let r = parse(&plus).unwrap();
        assert!(r.allows("ANN") && !r.allows("bob"));
        assert_eq!(r.to_value(), plus);
        assert_eq!(parse(&Value::T).unwrap().to_value(), Value::T);
        assert_eq!(parse(&Value::NIL).unwrap().to_value(), Value::NIL);
        let minus_none = Value::List(vec![Value::sym(Known::Minus)]);
        assert_eq!(parse(&minus_none).unwrap(), Rule::anyone());
        assert_eq!(
            parse(&Value::List(vec![Value::sym(Known::Plus), Value::int(3)])),
            Err(RuleError::BadName)
        );
        assert_eq!(parse(&Value::string("x")), Err(RuleError::Shape));
        assert_eq!(
            parse(&Value::List(vec![Value::string("ann")])),
            Err(RuleError::Shape)
        );
    }

    fn plus(names: impl Iterator<Item = String>) -> Value {
        let mut items = vec![Value::sym(Known::Plus)];
        items.extend(names.map(Value::string));
        Value::List(items)
    }

    #[test]
    fn duplicate_names_count_once_in_any_case_2_5() {
        let v = plus(["ann", "ANN", "bob", "Ann"].iter().map(|n| n.to_string()));
        let r = parse(&v).unwrap();
        assert_eq!(names(&r), ["ann", "bob"]);
    }

    #[test]
    fn a_rule_over_the_name_limit_is_refused_5_3_2_1_2() {
        let v = plus((0..1001).map(|i| format!("user{i}")));
        assert_eq!(
            Rule::from_value(&v, 1000),
            Err(RuleError::TooManyNames(1000))
        );
        let dupes = plus((0..5000).map(|i| format!("user{}", i % 1000)));
        let r = Rule::from_value(&dupes, 1000).expect("1000 distinct names fit");
        assert_eq!(r.names().len(), 1000);
    }

    #[test]
    fn long_rules_answer_from_their_index_after_grant_and_deny_2_5() {
        let v = plus((0..100).map(|i| format!("User{i}")));
        let mut r = parse(&v).unwrap();
        assert!(r.allows("user7") && r.allows("USER99") && !r.allows("user100"));
        r.deny("user7");
        assert!(!r.allows("User7"));
        assert_eq!(r.names().len(), 99);
        r.grant("someone");
        r.grant("SOMEONE");
        assert!(r.allows("someone"));
        assert_eq!(r.names().len(), 100);
        let mut ex = Rule::Exclude(Names::from_list((0..100).map(|i| format!("x{i}"))));
        assert!(!ex.allows("X5") && ex.allows("y"));
        ex.grant("x5");
        assert!(ex.allows("x5"));
    }
}
