//! §1 and §3.1 Reading updates: a pure parser over one NUL-terminated
//! update, and an incremental [`Reader`] that splits a byte stream at NUL.

use super::symbol::{Known, Package, Symbol, lower};
use super::value::{Integer, Object, ObjectError, Value};
use std::borrow::Cow;
use std::ops::ControlFlow;

/// Lists may nest at most this deep; deeper input is refused before any
/// recursion could overflow the stack (printing, comparing and dropping a
/// value all recurse).
pub const MAX_DEPTH: usize = 64;

/// Why an update could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// §5.1.2: the update exceeded the maximum size; it was skipped up to
    /// its NUL without being buffered.
    TooLong,
    /// The bytes are not UTF-8; `at` is the offset of the first bad byte.
    InvalidUtf8 {
        /// Byte offset within the update.
        at: usize,
    },
    /// The text does not follow the BNF of §1.
    Syntax {
        /// Byte offset within the update.
        at: usize,
        /// What was wrong there.
        what: &'static str,
    },
    /// Lists nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The expression is not an object (§1.2).
    Object(ObjectError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLong => f.write_str("the update is too long"),
            ReadError::InvalidUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
            ReadError::Syntax { at, what } => write!(f, "{what} at byte {at}"),
            ReadError::TooDeep => write!(f, "lists are nested deeper than {MAX_DEPTH}"),
            ReadError::Object(e) => e.fmt(f),
        }
    }
}

impl From<ObjectError> for ReadError {
    fn from(e: ObjectError) -> ReadError {
        ReadError::Object(e)
    }
}

fn is_white(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// Bytes that end a name: the BNF's TERMINAL, white space and NUL.
fn ends_name(b: u8) -> bool {
    matches!(b, b':' | b'"' | b'.' | b'(' | b')' | 0) || is_white(b)
}

/// Bytes that may follow a number for it to be one.
fn ends_number(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'"' | 0) || is_white(b)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks (with its high bit) the first zero byte of `x`; bytes after a true
/// zero may be marked falsely, the first mark is always right.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Finds the first byte of `bytes` that `marks` flags, eight at a time.
fn find_by(
    bytes: &[u8],
    marks: impl Fn(u64) -> u64,
    is_match: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for c in &mut chunks {
        // `chunks_exact(8)` yields slices of exactly eight bytes.
        let word = u64::from_le_bytes(c.try_into().unwrap_or_default());
        let m = marks(word);
        if m != 0 {
            return Some(offset + (m.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| is_match(b))
        .map(|i| offset + i)
}

/// The offset of the first NUL: where an update ends (§3.1).
pub fn find_nul(bytes: &[u8]) -> Option<usize> {
    find_by(bytes, zero_bytes, |b| b == 0)
}

/// The offset of the first `"`, `\` or NUL: where a run of plain string
/// characters ends.
pub(crate) fn find_string_special(bytes: &[u8]) -> Option<usize> {
    find_by(
        bytes,
        |w| {
            zero_bytes(w)
                | zero_bytes(w ^ (ONES * u64::from(b'"')))
                | zero_bytes(w ^ (ONES * u64::from(b'\\')))
        },
        |b| matches!(b, b'"' | b'\\' | 0),
    )
}

fn syntax(at: usize, what: &'static str) -> ReadError {
    ReadError::Syntax { at, what }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn skip_white(&mut self) {
        while self.pos < self.bytes.len() && is_white(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Reads one expression with an explicit stack: no recursion. The
    /// elements of every open list share one scratch vector, and a list is
    /// moved into its own exactly-sized vector when it closes, so building
    /// a list costs one allocation however long it is.
    fn expr(&mut self) -> Result<Value, ReadError> {
        // Where each open list's elements start in `items`.
        let mut open = [0usize; MAX_DEPTH];
        let mut depth = 0;
        let mut items: Vec<Value> = Vec::new();
        loop {
            self.skip_white();
            let Some(b) = self.peek() else {
                return Err(syntax(
                    self.pos,
                    if depth == 0 {
                        "expected an expression"
                    } else {
                        "unclosed list"
                    },
                ));
            };
            let value = match b {
                b'(' => {
                    if depth >= MAX_DEPTH {
                        return Err(ReadError::TooDeep);
                    }
                    if depth == 0 {
                        items.reserve(16);
                    }
                    self.pos += 1;
                    open[depth] = items.len();
                    depth += 1;
                    continue;
                }
                b')' => {
                    if depth == 0 {
                        return Err(syntax(self.pos, "unbalanced ')'"));
                    }
                    depth -= 1;
                    self.pos += 1;
                    if depth == 0 {
                        // The outermost list owns the scratch vector.
                        return Ok(Value::List(std::mem::take(&mut items)));
                    }
                    Value::List(items.drain(open[depth]..).collect())
                }
                b'"' => self.string()?,
                b'0'..=b'9' | b'.' => self.number_or_symbol()?,
                0 => return Err(syntax(self.pos, "NUL inside an update")),
                _ => Value::Symbol(self.symbol()?),
            };
            if depth == 0 {
                return Ok(value);
            }
            items.push(value);
        }
    }

    fn string(&mut self) -> Result<Value, ReadError> {
        let start = self.pos;
        self.pos += 1;
        let mut owned: Option<String> = None;
        loop {
            let run = self.pos;
            let Some(len) = find_string_special(&self.bytes[run..]) else {
                return Err(syntax(start, "unterminated string"));
            };
            self.pos += len;
            match self.bytes[self.pos] {
                b'"' => {
                    let tail = &self.text[run..self.pos];
                    self.pos += 1;
                    return Ok(Value::String(match owned {
                        Some(mut s) => {
                            s.push_str(tail);
                            s
                        }
                        None => tail.to_owned(),
                    }));
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    match self.text[self.pos..].chars().next() {
                        None => return Err(syntax(start, "unterminated string")),
                        Some('\0') => return Err(syntax(self.pos, "NUL inside a string")),
                        Some(c) => {
                            s.push(c);
                            self.pos += c.len_utf8();
                        }
                    }
                }
                _ => return Err(syntax(self.pos, "NUL inside a string")),
            }
        }
    }

    fn number_or_symbol(&mut self) -> Result<Value, ReadError> {
        let start = self.pos;
        let mut end = start;
        while end < self.bytes.len() && self.bytes[end].is_ascii_digit() {
            end += 1;
        }
        let int_end = end;
        let has_dot = end < self.bytes.len() && self.bytes[end] == b'.';
        if has_dot {
            end += 1;
            while end < self.bytes.len() && self.bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        let terminated = end == self.bytes.len() || ends_number(self.bytes[end]);
        if !terminated {
            if has_dot {
                return Err(syntax(end, "a number must be followed by a delimiter"));
            }
            // Digits followed by name characters: a symbol such as `1a`.
            return Ok(Value::Symbol(self.symbol()?));
        }
        self.pos = end;
        if !has_dot {
            // The scan above found at least one digit and nothing else.
            return Integer::from_digits(&self.text[start..int_end])
                .map(Value::Integer)
                .ok_or_else(|| syntax(start, "expected a number"));
        }
        let text = &self.text[start..end];
        if text == "." {
            return Ok(Value::Float(0.0));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(syntax(start, "float out of range")),
        }
    }

    /// Reads a NAME: escapes resolved, not yet lower-cased.
    fn name(&mut self) -> Result<Cow<'a, str>, ReadError> {
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut run = start;
        while let Some(b) = self.peek() {
            if b == b'\\' {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&self.text[run..self.pos]);
                self.pos += 1;
                let c = match self.text[self.pos..].chars().next() {
                    None => return Err(syntax(self.pos, "escape character at end of update")),
                    Some('\0') => return Err(syntax(self.pos, "NUL inside a symbol")),
                    Some(c) => c,
                };
                s.push(c);
                self.pos += c.len_utf8();
                run = self.pos;
            } else if ends_name(b) {
                break;
            } else {
                self.pos += 1;
            }
        }
        let name = match owned {
            Some(mut s) => {
                s.push_str(&self.text[run..self.pos]);
                Cow::Owned(s)
            }
            None => Cow::Borrowed(&self.text[start..self.pos]),
        };
        if name.is_empty() {
            return Err(syntax(start, "expected a symbol name"));
        }
        Ok(name)
    }

    fn symbol(&mut self) -> Result<Symbol, ReadError> {
        if self.peek() == Some(b':') {
            self.pos += 1;
            let name = self.name()?;
            if self.peek() == Some(b':') {
                return Err(syntax(self.pos, "a keyword cannot have a package"));
            }
            return Ok(make_symbol(Ok(Package::Keyword), name));
        }
        let first = self.name()?;
        if self.peek() == Some(b':') {
            self.pos += 1;
            let second = self.name()?;
            if self.peek() == Some(b':') {
                return Err(syntax(self.pos, "a symbol has at most one package"));
            }
            return Ok(make_symbol(Err(first), second));
        }
        Ok(make_symbol(Ok(Package::Lichat), first))
    }
}

/// Makes the symbol read as `package:name`: the package is either one the
/// syntax implies (bare names, keywords) or a name as written. Known
/// symbols allocate nothing.
fn make_symbol(package: Result<Package, Cow<'_, str>>, name: Cow<'_, str>) -> Symbol {
    let name = into_lower(name);
    let package = match package {
        Ok(p) => {
            if let Some(k) = Known::lookup(p, &name) {
                return Symbol::Known(k);
            }
            // Clients write the extensions' symbols without their
            // package: a bare name the lichat package lacks may be a
            // shirakumo one.
            if p == Package::Lichat
                && let Some(k) = Known::lookup(Package::Shirakumo, &name)
            {
                return Symbol::Known(k);
            }
            Cow::Borrowed(p.name())
        }
        Err(written) => {
            let written = into_lower(written);
            if let Some(p) = Package::from_lower(&written)
                && let Some(k) = Known::lookup(p, &name)
            {
                return Symbol::Known(k);
            }
            written
        }
    };
    Symbol::Other(Box::new(super::symbol::OtherSymbol {
        package: package.into_owned().into_boxed_str(),
        name: name.into_owned().into_boxed_str(),
    }))
}

/// [`lower`] that keeps an owned or borrowed name as it is when it is
/// already in lower case.
fn into_lower(name: Cow<'_, str>) -> Cow<'_, str> {
    let lowered = match lower(&name) {
        Cow::Borrowed(_) => None,
        Cow::Owned(o) => Some(o),
    };
    match lowered {
        Some(o) => Cow::Owned(o),
        None => name,
    }
}

/// Reads one expression from `input`, which must hold exactly that
/// expression with optional white space around it, and no NUL.
pub fn read_value(input: &[u8]) -> Result<Value, ReadError> {
    let text = std::str::from_utf8(input).map_err(|e| ReadError::InvalidUtf8 {
        at: e.valid_up_to(),
    })?;
    let mut p = Parser {
        text,
        bytes: input,
        pos: 0,
    };
    let value = p.expr()?;
    p.skip_white();
    if p.pos != input.len() {
        return Err(syntax(p.pos, "unexpected text after the update"));
    }
    Ok(value)
}

/// Reads one update's text (without its NUL) and checks it is an object.
pub fn read_object(input: &[u8]) -> Result<Object, ReadError> {
    Ok(Object::from_value(read_value(input)?)?)
}

/// Result of [`read_update`]: httparse-style complete-or-partial.
#[derive(Debug, PartialEq)]
pub enum Status {
    /// An update ended at a NUL: its result and the bytes used, NUL included.
    Complete(Result<Object, ReadError>, usize),
    /// No NUL yet: more input is needed. Running out is not an error.
    Partial,
}

/// Reads the first update of `input` if its NUL has arrived. Never looks
/// past that NUL.
pub fn read_update(input: &[u8]) -> Status {
    match find_nul(input) {
        Some(end) => Status::Complete(read_object(&input[..end]), end + 1),
        None => Status::Partial,
    }
}

/// Incremental reader for one connection: splits a byte stream at NUL,
/// keeps only the unfinished tail of the current update, and never holds
/// more than the maximum update size.
#[derive(Debug)]
pub struct Reader {
    /// The unfinished tail of the current update; while `parked`, the raw
    /// bytes left over when the caller stopped reading.
    buf: Vec<u8>,
    max: usize,
    skipping: bool,
    parked: bool,
}

/// A buffer this large or larger is freed rather than kept after use, so an
/// idle connection does not pin the memory of its largest update.
const KEEP_CAPACITY: usize = 4096;

impl Reader {
    /// A reader that refuses updates longer than `max` bytes (NUL excluded).
    pub fn new(max: usize) -> Reader {
        Reader {
            buf: Vec::new(),
            max,
            skipping: false,
            parked: false,
        }
    }

    /// Changes the maximum update size, e.g. once a connection is
    /// established.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The maximum update size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes held: of the unfinished update, or parked.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True while bytes that [`Reader::feed_until`] stopped before wait
    /// for [`Reader::resume`].
    pub fn is_parked(&self) -> bool {
        self.parked
    }

    /// Capacity of the internal buffer, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True while the rest of a too-long update is being discarded.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    fn release(&mut self) {
        if self.buf.capacity() >= KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }

    /// Appends to the buffer, growing it at most to the maximum update
    /// size, so the capacity never exceeds the limit either. The caller
    /// has checked that the result fits.
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity() * 2).max(64).min(self.max);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Feeds bytes; calls `on_update` for each update completed by them, in
    /// order. Blank updates (only white space between two NULs) are skipped.
    /// An update that grows past the maximum is reported as
    /// [`ReadError::TooLong`] as soon as it does, and its remaining bytes
    /// are discarded up to its NUL.
    pub fn feed(&mut self, input: &[u8], mut on_update: impl FnMut(Result<Object, ReadError>)) {
        self.feed_until(input, |u| {
            on_update(u);
            ControlFlow::Continue(())
        });
    }

    /// Like [`Reader::feed`], but `on_update` may stop reading: the bytes
    /// after the update it stopped at are kept unparsed (parked) until
    /// [`Reader::resume`]. A caller that stops must not feed more bytes
    /// before resuming; the parked bytes are at most the input given.
    pub fn feed_until(
        &mut self,
        input: &[u8],
        mut on_update: impl FnMut(Result<Object, ReadError>) -> ControlFlow<()>,
    ) {
        debug_assert!(!self.parked, "feed_until while parked");
        if self.parked {
            // Keep the order of the bytes whatever the caller does.
            self.buf.extend_from_slice(input);
            return;
        }
        let mut stopped = false;
        let rest = self.scan(input, |u| {
            if on_update(u).is_break() {
                stopped = true;
            }
            stopped
        });
        if stopped && !rest.is_empty() {
            self.buf = rest.to_vec();
            self.parked = true;
        }
    }

    /// Reads on from the parked bytes, as [`Reader::feed_until`] would.
    pub fn resume(&mut self, on_update: impl FnMut(Result<Object, ReadError>) -> ControlFlow<()>) {
        if !self.parked {
            return;
        }
        let parked = std::mem::take(&mut self.buf);
        self.parked = false;
        self.feed_until(&parked, on_update);
    }

    /// Splits `input` into updates for `on_update` until it returns true
    /// (stop); returns the input not yet looked at.
    fn scan<'a>(
        &mut self,
        mut input: &'a [u8],
        mut on_update: impl FnMut(Result<Object, ReadError>) -> bool,
    ) -> &'a [u8] {
        while !input.is_empty() {
            if self.skipping {
                match find_nul(input) {
                    Some(i) => {
                        input = &input[i + 1..];
                        self.skipping = false;
                    }
                    None => return &[],
                }
                continue;
            }
            match find_nul(input) {
                Some(i) => {
                    let segment = &input[..i];
                    input = &input[i + 1..];
                    if self.buf.len() + segment.len() > self.max {
                        self.release();
                        if on_update(Err(ReadError::TooLong)) {
                            return input;
                        }
                    } else if self.buf.is_empty() {
                        if !segment.iter().all(|&b| is_white(b)) && on_update(read_object(segment))
                        {
                            return input;
                        }
                    } else {
                        self.append(segment);
                        let result = if self.buf.iter().all(|&b| is_white(b)) {
                            None
                        } else {
                            Some(read_object(&self.buf))
                        };
                        self.release();
                        if let Some(r) = result
                            && on_update(r)
                        {
                            return input;
                        }
                    }
                }
                None => {
                    if self.buf.len() + input.len() > self.max {
                        self.release();
                        self.skipping = true;
                        on_update(Err(ReadError::TooLong));
                    } else {
                        self.append(input);
                    }
                    return &[];
                }
            }
        }
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8], f: impl Fn(u8) -> bool) -> Option<usize> {
        bytes.iter().position(|&b| f(b))
    }

    #[test]
    fn word_at_a_time_search_finds_the_first_match_3_1() {
        let fill = [b'a', 0x80, 0x01, 0xff, b'"' ^ 0x80, 0x21, 0x5d];
        for len in 0..40 {
            for &f in &fill {
                let mut bytes = vec![f; len];
                assert_eq!(find_nul(&bytes), None);
                assert_eq!(find_string_special(&bytes), None);
                for at in 0..len {
                    for special in [0u8, b'"', b'\\'] {
                        bytes[at] = special;
                        if at + 1 < len {
                            bytes[at + 1] = 0;
                        }
                        assert_eq!(find_nul(&bytes), naive(&bytes, |b| b == 0));
                        assert_eq!(
                            find_string_special(&bytes),
                            naive(&bytes, |b| matches!(b, 0 | b'"' | b'\\')),
                        );
                        bytes.fill(f);
                    }
                }
            }
        }
    }

    #[test]
    fn reader_capacity_never_exceeds_the_maximum_5_1_2() {
        for max in [0, 1, 63, 64, 100, 1000, 4095] {
            let mut reader = Reader::new(max);
            for _ in 0..max + 10 {
                reader.feed(b"a", |_| {});
                assert!(reader.buffered() <= max);
                assert!(reader.capacity() <= max, "max {max}");
            }
        }
    }
}
