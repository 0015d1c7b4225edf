//! §2.5 permission rules.

use super::names::{is_valid_name, names_equal};
use crate::wire::{Known, Value};

/// §2.5 a permission rule: who may perform an update type on a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `(+ names)`: only these users; `NIL` is the empty inclusion.
    Include(Vec<String>),
    /// `(- names)`: anyone but these users; `T` is the empty exclusion.
    Exclude(Vec<String>),
}

/// Why a rule expression is not acceptable (§5.3.2.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// Not `T`, `NIL`, `(+ ...)` or `(- ...)`.
    Shape,
    /// A listed user name is not a string or not a valid name.
    BadName,
}

impl Rule {
    /// `T`: anyone.
    pub fn anyone() -> Rule {
        Rule::Exclude(Vec::new())
    }

    /// `NIL`: no one.
    pub fn no_one() -> Rule {
        Rule::Include(Vec::new())
    }

    /// `(+ name)`.
    pub fn only(name: &str) -> Rule {
        Rule::Include(vec![name.to_owned()])
    }

    /// Whether the named user may perform the update.
    pub fn allows(&self, user: &str) -> bool {
        match self {
            Rule::Include(names) => names.iter().any(|n| names_equal(n, user)),
            Rule::Exclude(names) => !names.iter().any(|n| names_equal(n, user)),
        }
    }

    fn add(names: &mut Vec<String>, user: &str) {
        if !names.iter().any(|n| names_equal(n, user)) {
            names.push(user.to_owned());
        }
    }

    fn remove(names: &mut Vec<String>, user: &str) {
        names.retain(|n| !names_equal(n, user));
    }

    /// §5.3.2 `grant`: `T` stays, `NIL` becomes `(+ user)`, an exclusion
    /// drops the user, an inclusion adds them.
    pub fn grant(&mut self, user: &str) {
        match self {
            Rule::Include(names) => Rule::add(names, user),
            Rule::Exclude(names) => Rule::remove(names, user),
        }
    }

    /// §5.3.2 `deny`: `T` becomes `(- user)`, `NIL` stays, an exclusion adds
    /// the user, an inclusion drops them.
    pub fn deny(&mut self, user: &str) {
        match self {
            Rule::Include(names) => Rule::remove(names, user),
            Rule::Exclude(names) => Rule::add(names, user),
        }
    }

    /// Parses a rule expression (§2.5 `EXPR`).
    pub fn from_value(value: &Value) -> Result<Rule, RuleError> {
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
                let mut names = Vec::with_capacity(items.len() - 1);
                for item in &items[1..] {
                    match item.as_str() {
                        Some(n) if is_valid_name(n) => Rule::add(&mut names, n),
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
        match r {
            Rule::Include(n) | Rule::Exclude(n) => n.iter().map(|s| s.as_str()).collect(),
        }
    }

    #[test]
    fn grant_follows_the_table_of_5_3_2() {
        let mut t = Rule::anyone();
        t.grant("ann");
        assert_eq!(t, Rule::anyone(), "1. T stays T");
        let mut nil = Rule::no_one();
        nil.grant("ann");
        assert_eq!(nil, Rule::only("ann"), "2. NIL becomes (+ user)");
        let mut ex = Rule::Exclude(vec!["ann".into(), "bob".into()]);
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
        assert_eq!(
            t,
            Rule::Exclude(vec!["ann".into()]),
            "1. T becomes (- user)"
        );
        let mut nil = Rule::no_one();
        nil.deny("ann");
        assert_eq!(nil, Rule::no_one(), "2. NIL stays NIL");
        let mut ex = Rule::Exclude(vec!["bob".into()]);
        ex.deny("ann");
        ex.deny("ANN");
        assert_eq!(names(&ex), ["bob", "ann"], "3. added once to the exclusion");
        let mut inc = Rule::Include(vec!["ann".into(), "bob".into()]);
        inc.deny("Ann");
        assert_eq!(names(&inc), ["bob"], "4. removed from the inclusion");
        assert!(matches!(inc, Rule::Include(_)));
    }

    #[test]
    fn rule_expressions_parse_and_print_2_5() {
        let plus = Value::List(vec![Value::sym(Known::Plus), Value::string("ann")]);
        let r = Rule::from_value(&plus).unwrap();
        assert!(r.allows("ANN") && !r.allows("bob"));
        assert_eq!(r.to_value(), plus);
        assert_eq!(Rule::from_value(&Value::T).unwrap().to_value(), Value::T);
        assert_eq!(
            Rule::from_value(&Value::NIL).unwrap().to_value(),
            Value::NIL
        );
        let minus_none = Value::List(vec![Value::sym(Known::Minus)]);
        assert_eq!(Rule::from_value(&minus_none).unwrap(), Rule::anyone());
        assert_eq!(
            Rule::from_value(&Value::List(vec![Value::sym(Known::Plus), Value::int(3)])),
            Err(RuleError::BadName)
        );
        assert_eq!(Rule::from_value(&Value::string("x")), Err(RuleError::Shape));
        assert_eq!(
            Rule::from_value(&Value::List(vec![Value::string("ann")])),
            Err(RuleError::Shape)
        );
    }
}
