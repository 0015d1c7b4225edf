//! §1 The value model: symbols, strings, numbers and lists.

use super::symbol::{Known, Package, Symbol};

/// An integer as read from the wire: any length, never negative (the BNF has
/// no sign). Numbers that do not fit in `u64` keep their decimal digits so
/// that an ID a client sent prints back byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Integer {
    /// Fits in 64 bits.
    Small(u64),
    /// Decimal digits, without leading zeros, of a number above `u64::MAX`.
    Big(Box<str>),
}

impl Integer {
    /// The integer written by a non-empty run of ASCII decimal digits, with
    /// leading zeros dropped; `None` if `digits` is empty or holds anything
    /// but `0-9`. A value that fits in `u64` is always `Small`, so equal
    /// numbers compare equal.
    pub fn from_digits(digits: &str) -> Option<Integer> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        Some(match trimmed.parse::<u64>() {
            Ok(n) => Integer::Small(n),
            Err(_) if trimmed.is_empty() => Integer::Small(0),
            Err(_) => Integer::Big(trimmed.into()),
        })
    }
}

/// §1 An s-expression value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A symbol, including `T` and `NIL`.
    Symbol(Symbol),
    /// A string; NUL characters are filtered when printed (§1.3).
    String(String),
    /// A non-negative integer.
    Integer(Integer),
    /// A non-negative, finite float.
    Float(f64),
    /// A list (the empty list is distinct from `NIL` in this model, but
    /// [`Value::is_nil`] treats both as null).
    List(Vec<Value>),
}

impl Value {
    /// `lichat:t`.
    pub const T: Value = Value::Symbol(Symbol::Known(Known::T));
    /// `lichat:nil`.
    pub const NIL: Value = Value::Symbol(Symbol::Known(Known::Nil));

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An integer value.
    pub fn int(n: u64) -> Value {
        Value::Integer(Integer::Small(n))
    }

    /// A known symbol value.
    pub fn sym(k: Known) -> Value {
        Value::Symbol(Symbol::Known(k))
    }

    /// A boolean as `T` or `NIL`.
    pub fn bool(b: bool) -> Value {
        if b { Value::T } else { Value::NIL }
    }

    /// True for `NIL` and the empty list: §1.2 treats both as unset.
    pub fn is_nil(&self) -> bool {
        match self {
            Value::Symbol(s) => s.is_nil(),
            Value::List(l) => l.is_empty(),
            _ => false,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The symbol, if this is one.
    pub fn as_symbol(&self) -> Option<&Symbol> {
        match self {
            Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The integer as `u64`, if this is an integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Integer(Integer::Small(n)) => Some(*n),
            _ => None,
        }
    }

    /// The elements, if this is a list; `NIL` counts as the empty list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            Value::Symbol(s) if s.is_nil() => Some(&[]),
            _ => None,
        }
    }
}

impl From<Symbol> for Value {
    fn from(s: Symbol) -> Value {
        Value::Symbol(s)
    }
}

impl From<Known> for Value {
    fn from(k: Known) -> Value {
        Value::sym(k)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::int(n)
    }
}

/// Why a value is not a well-formed object (§1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// The update is not a list.
    NotAList,
    /// The list is empty: no class symbol.
    Empty,
    /// The first element is not a symbol.
    ClassNotSymbol,
    /// A key has no value after it.
    OddFields,
    /// The key at this position (counting the class as 0) is not a keyword.
    KeyNotKeyword(usize),
}

impl std::fmt::Display for ObjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectError::NotAList => f.write_str("an update must be a list"),
            ObjectError::Empty => f.write_str("an update must start with its class symbol"),
            ObjectError::ClassNotSymbol => {
                f.write_str("the first element of an update must be a symbol")
            }
            ObjectError::OddFields => f.write_str("the last field key has no value"),
            ObjectError::KeyNotKeyword(i) => {
                write!(f, "element {i} is in a key position but is not a keyword")
            }
        }
    }
}

/// §1.2 An object: a class symbol and keyword/value fields, in wire order.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The class symbol.
    pub class: Symbol,
    /// The fields: each key is a keyword or another package's symbol.
    pub fields: Vec<(Symbol, Value)>,
}

impl Object {
    /// An object of a known class with no fields yet.
    pub fn new(class: impl Into<Symbol>) -> Object {
        Object {
            class: class.into(),
            fields: Vec::new(),
        }
    }

    /// Adds a field; builder style.
    pub fn with(mut self, key: impl Into<Symbol>, value: impl Into<Value>) -> Object {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// Adds a field in place.
    pub fn push(&mut self, key: impl Into<Symbol>, value: impl Into<Value>) {
        self.fields.push((key.into(), value.into()));
    }

    /// The first value of a field; `NIL` counts as unset (§1.2).
    pub fn get(&self, key: Known) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| *k == Symbol::Known(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil())
    }

    /// The first value of a field, `NIL` included.
    pub fn get_raw(&self, key: Known) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| *k == Symbol::Known(key))
            .map(|(_, v)| v)
    }

    /// Sets a field, replacing the first occurrence or appending.
    pub fn set(&mut self, key: Known, value: impl Into<Value>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|(k, _)| *k == Symbol::Known(key))
        {
            Some(slot) => slot.1 = value,
            None => self.fields.push((Symbol::Known(key), value)),
        }
    }

    /// Removes every occurrence of a field.
    pub fn remove(&mut self, key: Known) {
        self.fields.retain(|(k, _)| *k != Symbol::Known(key));
    }

    /// Checks a value against §1.2 and turns it into an object.
    ///
    /// Field keys must be symbols of the `keyword` package, or of another
    /// package (§6 lets extensions add fields named by their own package's
    /// symbols, e.g. `shirakumo:signature`), but never `lichat` symbols.
    pub fn from_value(value: Value) -> Result<Object, ObjectError> {
        let Value::List(items) = value else {
            return Err(ObjectError::NotAList);
        };
        let mut iter = items.into_iter();
        let class = match iter.next() {
            None => return Err(ObjectError::Empty),
            Some(Value::Symbol(s)) => s,
            Some(_) => return Err(ObjectError::ClassNotSymbol),
        };
        let mut fields = Vec::with_capacity(iter.len() / 2);
        let mut index = 1;
        while let Some(key) = iter.next() {
            let key = match key {
                // Extension fields are keywords on the wire (`:rich`);
                // one written with its package (`shirakumo:rich`) is the
                // same field.
                Value::Symbol(Symbol::Known(k)) if k.package() == Package::Shirakumo => {
                    Symbol::Known(Known::lookup(Package::Keyword, k.name()).unwrap_or(k))
                }
                Value::Symbol(s) if s.package() != "lichat" => s,
                _ => return Err(ObjectError::KeyNotKeyword(index)),
            };
            let Some(value) = iter.next() else {
                return Err(ObjectError::OddFields);
            };
            fields.push((key, value));
            index += 2;
        }
        Ok(Object { class, fields })
    }

    /// The object as a plain list value.
    pub fn into_value(self) -> Value {
        let mut items = Vec::with_capacity(1 + self.fields.len() * 2);
        items.push(Value::Symbol(self.class));
        for (k, v) in self.fields {
            items.push(Value::Symbol(k));
            items.push(v);
        }
        Value::List(items)
    }
}
