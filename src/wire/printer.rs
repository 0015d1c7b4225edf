//! §1 Printing values to the wire, per the BNF.

use super::reader::find_string_special;
use super::symbol::{Known, Package, Symbol};
use super::value::{Integer, Object, Value};

/// Why a value cannot be put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrintError {
    /// §1.3: a symbol containing NUL may not be put on the wire.
    NulInSymbol,
    /// A symbol or package with an empty name has no wire form.
    EmptyName,
    /// The BNF has no sign, exponent, infinity or NaN: only non-negative
    /// finite floats can be printed.
    UnprintableFloat,
}

impl std::fmt::Display for PrintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrintError::NulInSymbol => "a symbol contains a NUL character",
            PrintError::EmptyName => "a symbol or package name is empty",
            PrintError::UnprintableFloat => "a float is negative or not finite",
        })
    }
}

/// Appends `value` to `out` in wire syntax. On error `out` may hold a
/// partial print; callers discard it.
pub fn print_value(value: &Value, out: &mut Vec<u8>) -> Result<(), PrintError> {
    match value {
        Value::Symbol(s) => print_symbol(s, out),
        Value::String(s) => {
            print_string(s, out);
            Ok(())
        }
        Value::Integer(i) => {
            print_integer(i, out);
            Ok(())
        }
        Value::Float(f) => print_float(*f, out),
        Value::List(items) => {
            out.push(b'(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                print_value(item, out)?;
            }
            out.push(b')');
            Ok(())
        }
    }
}

/// Appends an object in wire syntax, without the terminating NUL.
pub fn print_object(object: &Object, out: &mut Vec<u8>) -> Result<(), PrintError> {
    out.push(b'(');
    print_symbol(&object.class, out)?;
    for (k, v) in &object.fields {
        out.push(b' ');
        print_symbol(k, out)?;
        out.push(b' ');
        print_value(v, out)?;
    }
    out.push(b')');
    Ok(())
}

/// Appends an update: the object followed by NUL (§3.1). On error nothing
/// is appended.
pub fn print_update(object: &Object, out: &mut Vec<u8>) -> Result<(), PrintError> {
    let start = out.len();
    match print_object(object, out) {
        Ok(()) => {
            out.push(0);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Prints an update into a fresh buffer.
pub fn update_to_vec(object: &Object) -> Result<Vec<u8>, PrintError> {
    let mut out = Vec::with_capacity(128);
    print_update(object, &mut out)?;
    Ok(out)
}

/// Appends a symbol: lichat symbols bare, keywords with `:`, others with
/// their package prefix (§1.1), names in lower case with terminals escaped.
pub fn print_symbol(symbol: &Symbol, out: &mut Vec<u8>) -> Result<(), PrintError> {
    match symbol {
        Symbol::Known(k) => {
            print_known(*k, out);
            Ok(())
        }
        Symbol::Other(o) => {
            match &*o.package {
                "lichat" => {}
                "keyword" => out.push(b':'),
                p => {
                    print_name(p, out)?;
                    out.push(b':');
                }
            }
            print_name(&o.name, out)
        }
    }
}

fn print_known(k: Known, out: &mut Vec<u8>) {
    match k.package() {
        Package::Lichat => {}
        Package::Keyword => out.push(b':'),
        Package::Shirakumo => out.extend_from_slice(b"shirakumo:"),
    }
    out.extend_from_slice(k.name().as_bytes());
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        ':' | ' ' | '"' | '.' | '(' | ')' | '\\' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r'
    )
}

fn print_name(name: &str, out: &mut Vec<u8>) -> Result<(), PrintError> {
    if name.is_empty() {
        return Err(PrintError::EmptyName);
    }
    if name.contains('\0') {
        return Err(PrintError::NulInSymbol);
    }
    // A name made only of digits would read back as a number.
    let numeric = name.bytes().all(|b| b.is_ascii_digit());
    let mut buf = [0u8; 4];
    for (i, c) in name.chars().enumerate() {
        if needs_escape(c) || (numeric && i == 0) {
            out.push(b'\\');
        }
        let lowered = c.to_lowercase();
        for lc in lowered {
            out.extend_from_slice(lc.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(())
}

/// Appends a string with `"` and `\` escaped and NUL removed (§1.3).
pub fn print_string(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = find_string_special(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        if b != 0 {
            out.push(b'\\');
            out.push(b);
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends the decimal digits of an integer.
pub fn print_integer(i: &Integer, out: &mut Vec<u8>) {
    match i {
        Integer::Small(n) => print_u64(*n, out),
        Integer::Big(digits) => out.extend_from_slice(digits.as_bytes()),
    }
}

/// Appends the decimal digits of a `u64`.
pub fn print_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[pos..]);
}

fn print_float(f: f64, out: &mut Vec<u8>) -> Result<(), PrintError> {
    if !f.is_finite() || f.is_sign_negative() {
        return Err(PrintError::UnprintableFloat);
    }
    // Display gives the shortest digits that read back to the same f64,
    // and never an exponent.
    let text = f.to_string();
    out.extend_from_slice(text.as_bytes());
    if !text.contains('.') {
        out.extend_from_slice(b".0");
    }
    Ok(())
}
