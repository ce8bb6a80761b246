//! Carbon's pickle protocol: a restricted unpickler for the payload of one
//! length-prefixed frame, `[(path, (timestamp, value)), ...]`. It builds no
//! objects beyond strings, numbers, tuples and lists, refuses every opcode that
//! could import or call anything, and bounds its work by the payload size.
//! The frame's length prefix and size limit belong to the listener; the tests
//! live with the plaintext parser's in `wire.rs`, which re-exports this API.

use std::borrow::Cow;

use super::wire::{Point, WireError, canonical_name, parse_float, stamp};

/// Result of decoding one pickle frame payload (the bytes after the 4-byte length prefix).
#[derive(Debug, Default, PartialEq)]
pub struct PickleBatch {
    pub points: Vec<Point<'static>>,
    /// Elements without the `(path, (ts, value))` shape, whose numbers `float()`
    /// refuses, whose timestamp is not finite or beyond i64, or whose path is invalid.
    /// Elements with a NaN value are dropped without being counted, as in plaintext.
    pub skipped: usize,
}

/// Restricted unpickler: protocols 0..=5, only the opcodes listed in compat-spec 3.2; any other opcode (GLOBAL,
/// REDUCE, BUILD, STACK_GLOBAL, INST, OBJ, NEWOBJ, ...) → Err. Values and timestamps may be int/long/float/str/bytes,
/// coerced with Python float() semantics; a value that is NaN is skipped like plaintext. Bound the work: memo size,
/// stack depth and element count must be limited by the input size (no allocation bombs: e.g. a LONG4 or BINUNICODE8
/// length field larger than the remaining input is an error, not an allocation).
///
/// Each opcode adds at most one object and one stack slot, and memo indices must be
/// below the payload length, so memory is linear in the payload. Elements may be
/// tuples or lists at both levels, as carbon unpacks any iterable of two.
pub fn parse_pickle(payload: &[u8]) -> Result<PickleBatch, WireError> {
    // Objects are indexed by u32 and there is at most one per byte; u32::MAX marks an unset memo slot.
    if payload.len() >= u32::MAX as usize {
        return Err(WireError::PickleMalformed { reason: "the payload is 4 GiB or more", offset: 0 });
    }
    let mut unpickler = Unpickler { input: payload, ..Unpickler::default() };
    let root = unpickler.run()?;
    let objs = &unpickler.objs;
    let elements = match objs.get(root as usize) {
        Some(Obj::List(items)) => &items[..],
        Some(Obj::Tuple(items)) => &items[..],
        other => return Err(WireError::PickleNotList { found: other.map_or("missing", Obj::kind) }),
    };
    let mut batch = PickleBatch { points: Vec::with_capacity(elements.len()), skipped: 0 };
    for &element in elements {
        match decode_element(objs, element) {
            Some(Some(point)) => batch.points.push(point),
            Some(None) => {}
            None => batch.skipped += 1,
        }
    }
    Ok(batch)
}

/// carbon `MetricPickleReceiver.stringReceived`: `(metric, (ts, value)) = raw`, then
/// `float()` on both. None skips the element; Some(None) drops a NaN value uncounted.
fn decode_element(objs: &[Obj<'_>], index: u32) -> Option<Option<Point<'static>>> {
    let obj = |i: u32| objs.get(i as usize);
    let &[path, datapoint] = obj(index)?.items()? else { return None };
    let &[ts, value] = obj(datapoint)?.items()? else { return None };
    let (ts, value) = (obj(ts)?.to_float()?, obj(value)?.to_float()?);
    if value.is_nan() {
        return Some(None);
    }
    let stamp = stamp(ts)?;
    let path = match obj(path)? {
        Obj::Str(text) => text,
        Obj::Bytes(bytes) => std::str::from_utf8(bytes).ok()?,
        _ => return None,
    };
    let name = canonical_name(path).ok()?.into_owned();
    Some(Some(Point { name: Cow::Owned(name), value, stamp }))
}

/// The Python objects this unpickler can build. Containers refer to other objects by
/// index into `Unpickler::objs`, so a memoized list that is appended to later is seen
/// with its items wherever it is fetched, as in Python.
enum Obj<'a> {
    /// int, long, bool or float, as `float()` would return it.
    Num(f64),
    /// An int beyond the f64 range: `float()` raises OverflowError.
    HugeInt,
    None,
    Str(Cow<'a, str>),
    /// A unicode string Rust cannot hold (a lone surrogate, bad UTF-8): never a path
    /// nor a number, so its element is skipped.
    BadText,
    Bytes(Cow<'a, [u8]>),
    Tuple(Box<[u32]>),
    List(Vec<u32>),
}

impl Obj<'_> {
    fn items(&self) -> Option<&[u32]> {
        match self {
            Obj::Tuple(items) => Some(items),
            Obj::List(items) => Some(items),
            _ => None,
        }
    }

    /// Python `float(obj)`, None where it would raise.
    fn to_float(&self) -> Option<f64> {
        match self {
            Obj::Num(v) => Some(*v),
            Obj::Str(text) => parse_float(text),
            Obj::Bytes(bytes) => std::str::from_utf8(bytes).ok().and_then(parse_float),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Obj::Num(_) | Obj::HugeInt => "a number",
            Obj::None => "None",
            Obj::Str(_) | Obj::BadText => "a str",
            Obj::Bytes(_) => "bytes",
            Obj::Tuple(_) => "a tuple",
            Obj::List(_) => "a list",
        }
    }
}

/// Declares a constant per decoded opcode, and `opcode_name` for error messages.
macro_rules! opcodes {
    (decoded: $($name:ident = $byte:literal),*; refused: $($refused:ident = $refused_byte:literal),* $(,)?) => {
        $(const $name: u8 = $byte;)*
        fn opcode_name(op: u8) -> &'static str {
            match op { $($byte => stringify!($name),)* $($refused_byte => stringify!($refused),)* _ => "unknown" }
        }
    };
}

// Named as in CPython's Lib/pickle.py; compat-spec 3.2 lists the decoded ones.
opcodes! {
    decoded:
    MARK = b'(', STOP = b'.', PROTO = 0x80, FRAME = 0x95, NONE = b'N', NEWTRUE = 0x88, NEWFALSE = 0x89,
    INT = b'I', BININT = b'J', BININT1 = b'K', BININT2 = b'M', LONG = b'L', LONG1 = 0x8a, LONG4 = 0x8b,
    FLOAT = b'F', BINFLOAT = b'G', STRING = b'S', BINSTRING = b'T', SHORT_BINSTRING = b'U', BINBYTES = b'B',
    SHORT_BINBYTES = b'C', UNICODE = b'V', BINUNICODE = b'X', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d,
    EMPTY_LIST = b']', LIST = b'l', APPEND = b'a', APPENDS = b'e', EMPTY_TUPLE = b')', TUPLE = b't',
    TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, PUT = b'p', BINPUT = b'q', LONG_BINPUT = b'r', MEMOIZE = 0x94,
    GET = b'g', BINGET = b'h', LONG_BINGET = b'j';
    refused:
    GLOBAL = b'c', STACK_GLOBAL = 0x93, REDUCE = b'R', BUILD = b'b', INST = b'i', OBJ = b'o', NEWOBJ = 0x81,
    NEWOBJ_EX = 0x92, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, PERSID = b'P', BINPERSID = b'Q', DICT = b'd',
    EMPTY_DICT = b'}', SETITEM = b's', SETITEMS = b'u', EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91,
    BINBYTES8 = 0x8e, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98, POP = b'0', POP_MARK = b'1',
    DUP = b'2',
}

/// Highest pickle protocol (Python 3.8+).
const HIGHEST_PROTOCOL: u8 = 5;

#[derive(Default)]
struct Unpickler<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the opcode being decoded starts, for error messages.
    op_at: usize,
    objs: Vec<Obj<'a>>,
    stack: Vec<u32>,
    /// Stack lengths at each MARK; nothing below the last one may be popped.
    marks: Vec<usize>,
    /// Memo index -> object index, `u32::MAX` for unset.
    memo: Vec<u32>,
    /// Set memo slots: MEMOIZE stores at this index, as Python's `len(memo)`.
    memo_len: usize,
}

impl<'a> Unpickler<'a> {
    /// Runs to STOP and returns the object it pops.
    fn run(&mut self) -> Result<u32, WireError> {
        loop {
            self.op_at = self.pos;
            let Some(&op) = self.input.get(self.pos) else {
                return Err(self.malformed("no STOP opcode before the end"));
            };
            self.pos += 1;
            // Arms that build an object yield it to push; the others `continue`.
            let obj = match op {
                STOP => return self.pop(),
                PROTO => {
                    let version = self.byte()?;
                    if version > HIGHEST_PROTOCOL {
                        return Err(WireError::PickleProtocol { version, offset: self.op_at });
                    }
                    continue;
                }
                FRAME => {
                    // A frame only groups opcodes for buffered reading: check its length, read on.
                    let len = u64::from_le_bytes(self.array()?);
                    if len > self.rest().len() as u64 {
                        return Err(self.truncated());
                    }
                    continue;
                }
                MARK => {
                    self.marks.push(self.stack.len());
                    continue;
                }
                APPEND => {
                    let item = self.pop()?;
                    self.top_list()?.push(item);
                    continue;
                }
                APPENDS => {
                    let items = self.pop_mark()?;
                    self.top_list()?.extend(items);
                    continue;
                }
                PUT | BINPUT | LONG_BINPUT | MEMOIZE => {
                    let index = match op {
                        PUT => self.text_index()?,
                        BINPUT => u64::from(self.byte()?),
                        LONG_BINPUT => u64::from(u32::from_le_bytes(self.array()?)),
                        _ => self.memo_len as u64,
                    };
                    let top = self.top()?;
                    self.memo_put(index, top)?;
                    continue;
                }
                GET | BINGET | LONG_BINGET => {
                    let index = match op {
                        GET => self.text_index()?,
                        BINGET => u64::from(self.byte()?),
                        _ => u64::from(u32::from_le_bytes(self.array()?)),
                    };
                    match usize::try_from(index).ok().and_then(|i| self.memo.get(i)).copied() {
                        Some(obj) if obj != u32::MAX => self.stack.push(obj),
                        _ => return Err(self.malformed("a memo key is not set")),
                    }
                    continue;
                }
                EMPTY_LIST => Obj::List(Vec::new()),
                EMPTY_TUPLE => Obj::Tuple(Box::default()),
                LIST => Obj::List(self.pop_mark()?),
                TUPLE => Obj::Tuple(self.pop_mark()?.into()),
                TUPLE1 | TUPLE2 | TUPLE3 => Obj::Tuple(self.pop_n(usize::from(op - TUPLE1) + 1)?.into()),
                NONE => Obj::None,
                NEWTRUE => Obj::Num(1.0),
                NEWFALSE => Obj::Num(0.0),
                BININT => Obj::Num(f64::from(i32::from_le_bytes(self.array()?))),
                BININT1 => Obj::Num(f64::from(self.byte()?)),
                BININT2 => Obj::Num(f64::from(u16::from_le_bytes(self.array()?))),
                BINFLOAT => Obj::Num(f64::from_be_bytes(self.array()?)),
                INT | LONG => {
                    let line = self.line()?;
                    // Python 2 writes longs as `L123L`.
                    let digits = if op == LONG { line.strip_suffix(b"L").unwrap_or(line) } else { line };
                    text_int(digits).ok_or_else(|| self.malformed("cannot parse an INT or LONG argument"))?
                }
                LONG1 | LONG4 => {
                    let len = if op == LONG1 { u64::from(self.byte()?) } else { self.signed_len()? };
                    long_to_float(self.take(len)?)
                }
                FLOAT => {
                    let v = std::str::from_utf8(self.line()?).ok().and_then(parse_float);
                    Obj::Num(v.ok_or_else(|| self.malformed("cannot parse a FLOAT argument"))?)
                }
                STRING => {
                    let inner = match self.line()? {
                        [q @ (b'\'' | b'"'), inner @ .., last] if q == last => inner,
                        _ => return Err(self.malformed("the STRING argument is not quoted")),
                    };
                    Obj::Bytes(escape_decode(inner).ok_or_else(|| self.malformed("bad escape in a STRING argument"))?)
                }
                BINSTRING | SHORT_BINSTRING | BINBYTES | SHORT_BINBYTES => {
                    let len = match op {
                        BINSTRING => self.signed_len()?,
                        BINBYTES => u64::from(u32::from_le_bytes(self.array()?)),
                        _ => u64::from(self.byte()?),
                    };
                    Obj::Bytes(Cow::Borrowed(self.take(len)?))
                }
                UNICODE => raw_unicode_escape(self.line()?).ok_or_else(|| self.malformed("bad escape in a UNICODE argument"))?,
                BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 => {
                    let len = match op {
                        SHORT_BINUNICODE => u64::from(self.byte()?),
                        BINUNICODE => u64::from(u32::from_le_bytes(self.array()?)),
                        _ => u64::from_le_bytes(self.array()?),
                    };
                    std::str::from_utf8(self.take(len)?).map_or(Obj::BadText, |s| Obj::Str(Cow::Borrowed(s)))
                }
                _ => return Err(WireError::PickleOpcode { opcode: op, name: opcode_name(op), offset: self.op_at }),
            };
            self.push(obj);
        }
    }

    fn malformed(&self, reason: &'static str) -> WireError {
        WireError::PickleMalformed { reason, offset: self.op_at }
    }

    fn truncated(&self) -> WireError {
        WireError::PickleTruncated { offset: self.op_at }
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    /// The next `len` bytes; a length beyond the input is an error before any allocation.
    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        let rest = self.rest();
        let len = usize::try_from(len).ok().filter(|&len| len <= rest.len()).ok_or_else(|| self.truncated())?;
        self.pos += len;
        Ok(&rest[..len])
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N as u64)?;
        bytes.try_into().map_err(|_| self.truncated())
    }

    /// The 4-byte signed length of BINSTRING and LONG4.
    fn signed_len(&mut self) -> Result<u64, WireError> {
        let len = i32::from_le_bytes(self.array()?);
        u64::try_from(len).map_err(|_| self.malformed("a length is negative"))
    }

    /// A text argument up to its newline, which is consumed and not returned.
    fn line(&mut self) -> Result<&'a [u8], WireError> {
        let rest = self.rest();
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.truncated());
        };
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    fn text_index(&mut self) -> Result<u64, WireError> {
        let line = self.line()?;
        let index = std::str::from_utf8(line).ok().and_then(|s| s.trim().parse().ok());
        index.ok_or_else(|| self.malformed("cannot parse a memo key"))
    }

    fn push(&mut self, obj: Obj<'a>) {
        // Below u32::MAX: at most one object per opcode byte, checked in parse_pickle.
        self.stack.push(self.objs.len() as u32);
        self.objs.push(obj);
    }

    /// The lowest stack slot the current MARK lets opcodes touch.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<u32, WireError> {
        match self.stack.pop() {
            Some(obj) if self.stack.len() >= self.fence() => Ok(obj),
            _ => Err(self.malformed("the stack is empty")),
        }
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<u32>, WireError> {
        match self.stack.len().checked_sub(n) {
            Some(at) if at >= self.fence() => Ok(self.stack.split_off(at)),
            _ => Err(self.malformed("the stack is empty")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<u32>, WireError> {
        match self.marks.pop() {
            Some(at) if at <= self.stack.len() => Ok(self.stack.split_off(at)),
            _ => Err(self.malformed("there is no MARK")),
        }
    }

    fn top(&self) -> Result<u32, WireError> {
        match self.stack.last() {
            Some(&obj) if self.stack.len() > self.fence() => Ok(obj),
            _ => Err(self.malformed("the stack is empty")),
        }
    }

    fn top_list(&mut self) -> Result<&mut Vec<u32>, WireError> {
        let top = self.top()?;
        let error = self.malformed("the APPEND target is not a list");
        match self.objs.get_mut(top as usize) {
            Some(Obj::List(items)) => Ok(items),
            _ => Err(error),
        }
    }

    fn memo_put(&mut self, index: u64, obj: u32) -> Result<(), WireError> {
        // A real pickle has fewer memo entries than bytes; anything larger is a bomb.
        let index = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.input.len())
            .ok_or_else(|| self.malformed("a memo key is larger than the payload"))?;
        if index >= self.memo.len() {
            self.memo.resize(index + 1, u32::MAX);
        }
        if self.memo[index] == u32::MAX {
            self.memo_len += 1;
        }
        self.memo[index] = obj;
        Ok(())
    }
}

/// The argument of INT (`I42`, and `I01` / `I00` for the booleans) or LONG: a decimal
/// integer as Python's `int()` reads it, kept as the float it converts to.
fn text_int(digits: &[u8]) -> Option<Obj<'static>> {
    let text = std::str::from_utf8(digits).ok()?.trim();
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    // An integer's decimal text parses to the correctly rounded float, as Python's
    // float(int) gives; too many digits for f64 is Python's OverflowError.
    // `+ 0.0` turns `-0` into 0.0, as an int has no negative zero.
    let v = parse_float(text)? + 0.0;
    Some(if v.is_finite() { Obj::Num(v) } else { Obj::HugeInt })
}

/// A LONG1 / LONG4 argument: little-endian two's complement of any length, rounded
/// to the nearest float (ties to even) as Python's `float(int)` does.
fn long_to_float(bytes: &[u8]) -> Obj<'static> {
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    if bytes.len() <= 8 {
        let mut le = [if negative { 0xff } else { 0 }; 8];
        le[..bytes.len()].copy_from_slice(bytes);
        return Obj::Num(i64::from_le_bytes(le) as f64);
    }
    // Magnitude, little-endian: negate a negative number (invert, add one).
    let mut magnitude = bytes.to_vec();
    if negative {
        let mut carry = true;
        for b in &mut magnitude {
            let (sum, overflow) = (!*b).overflowing_add(u8::from(carry));
            *b = sum;
            carry = carry && overflow;
        }
    }
    let Some(top) = magnitude.iter().rposition(|&b| b != 0) else {
        return Obj::Num(0.0);
    };
    let bits = top * 8 + (8 - magnitude[top].leading_zeros() as usize);
    // 2^1024 and above cannot be a float; Python raises OverflowError.
    if bits > 1024 {
        return Obj::HugeInt;
    }
    let bit = |i: usize| magnitude.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1);
    let shift = bits.saturating_sub(64);
    let mut window = (0..64).rev().fold(0u64, |acc, i| acc << 1 | u64::from(bit(shift + i)));
    // Any 1 below the window only breaks ties; bit 0 is far below the f64 rounding point.
    if (0..shift).any(bit) {
        window |= 1;
    }
    let scale = f64::from_bits((1023 + shift as u64) << 52);
    let v = window as f64 * scale;
    match (v.is_finite(), negative) {
        (false, _) => Obj::HugeInt,
        (true, true) => Obj::Num(-v),
        (true, false) => Obj::Num(v),
    }
}

/// Python's `codecs.escape_decode`, which reads the STRING argument: `\n`-style
/// escapes, `\ooo` octal (truncated to a byte), `\xhh`; unknown escapes stay as written.
fn escape_decode(text: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !text.contains(&b'\\') {
        return Some(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let [c, tail @ ..] = rest {
        rest = tail;
        if *c != b'\\' {
            out.push(*c);
            continue;
        }
        let [e, tail @ ..] = rest else { return None };
        rest = tail;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(*e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                // Up to three digits; CPython keeps the low byte of `\777`.
                let more = rest.iter().take(2).take_while(|d| (b'0'..=b'7').contains(*d)).count();
                let (digits, tail) = rest.split_at(more);
                let v = digits.iter().fold(u32::from(e - b'0'), |v, d| v * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                rest = tail;
            }
            b'x' => {
                let [h, l, tail @ ..] = rest else { return None };
                out.push(hex(*h)? << 4 | hex(*l)?);
                rest = tail;
            }
            _ => out.extend([b'\\', *e]),
        }
    }
    Some(Cow::Owned(out))
}

/// Python's `raw-unicode-escape` decoding, which reads the UNICODE argument: bytes are
/// Latin-1 except `\uXXXX` and `\UXXXXXXXX`; a backslash escapes only `u` and `U`, and
/// `\\` is two literal backslashes.
fn raw_unicode_escape(text: &[u8]) -> Option<Obj<'_>> {
    if text.is_ascii() && !text.contains(&b'\\') {
        return std::str::from_utf8(text).ok().map(|s| Obj::Str(Cow::Borrowed(s)));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut surrogate = false;
    while let [c, tail @ ..] = rest {
        rest = tail;
        let digits = match (c, rest) {
            (b'\\', [b'u', ..]) => 4,
            (b'\\', [b'U', ..]) => 8,
            (b'\\', [next, tail @ ..]) => {
                out.push('\\');
                out.push(char::from(*next));
                rest = tail;
                continue;
            }
            _ => {
                out.push(char::from(*c));
                continue;
            }
        };
        let hex_digits = rest.get(1..1 + digits)?;
        rest = &rest[1 + digits..];
        let code = hex_digits.iter().try_fold(0u32, |acc, &h| Some(acc << 4 | u32::from(hex(h)?)))?;
        if code > 0x10ffff {
            return None;
        }
        // Python holds a lone surrogate; Rust's str cannot.
        match char::from_u32(code) {
            Some(c) => out.push(c),
            None => surrogate = true,
        }
    }
    Some(if surrogate { Obj::BadText } else { Obj::Str(Cow::Owned(out)) })
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}
