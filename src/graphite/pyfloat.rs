//! Numbers as Python prints them, for graphite-web's outputs: `repr(float)`
//! (JSON, raw and CSV values, names such as `scale(x,2.0)`), `%g` (legends),
//! and integer digits. It owns exactness against Python and the speed of the
//! JSON writer's per-point formatting; it knows nothing of series or HTTP.

use std::io::Write as _;

/// Python's `repr(float)`: shortest round-trip digits, `1.0`, `1e+16`, `1e-05`.
pub fn py_repr(v: f64) -> String {
    String::from_utf8(repr(v).as_bytes().to_vec()).expect("a float's repr is ascii")
}

/// `py_repr` appended to `out`.
pub fn write_py_repr(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(repr(v).as_bytes());
}

/// A float's repr in a fixed buffer: the JSON writer copies it into a point
/// with one fixed-size move instead of a copy of a length it learns late.
#[derive(Clone, Copy)]
pub struct Repr {
    bytes: [u8; Repr::CAP],
    len: usize,
}

impl Repr {
    /// The longest repr is 24 bytes (`-1.2345678901234567e+308`); the rest is
    /// room for a reader that copies `CAP` bytes at once.
    pub const CAP: usize = 32;

    fn new() -> Repr {
        Repr { bytes: [0; Repr::CAP], len: 0 }
    }

    /// Fixed text in the same shape (`null`, `1e9999`); at most `CAP` bytes.
    pub fn literal(text: &[u8]) -> Repr {
        let mut r = Repr::new();
        r.extend(text);
        r
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// All `CAP` bytes, the repr first (for a fixed-size copy), and its length.
    pub fn padded(&self) -> (&[u8; Repr::CAP], usize) {
        (&self.bytes, self.len)
    }
}

/// Python's `repr` of any float.
pub fn repr(v: f64) -> Repr {
    let mut r = Repr::new();
    if let Some(len) = short_decimal(v, &mut r.bytes) {
        r.len = len;
    } else if v.is_nan() {
        r.extend(b"nan");
    } else if v.is_infinite() {
        r.extend(if v > 0.0 { b"inf" } else { b"-inf" });
    } else {
        repr_from_digits(&mut r, v);
    }
    r
}

/// [`repr`] written at the start of `out`; returns its length. The JSON
/// writer's form: no `Repr` is built and copied for the common values.
pub fn repr_into(out: &mut [u8; Repr::CAP], v: f64) -> usize {
    if let Some(len) = short_decimal(v, out) {
        return len;
    }
    let r = repr(v);
    *out = r.bytes;
    r.len
}

/// 10^0 ..= 10^18 as integers.
const POW10_U64: [u64; 19] = {
    let mut table = [1u64; 19];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// 10^-4 ..= 10^15 (the negative ones rounded, as literals are).
const POW10_FROM_MINUS_4: [f64; 20] =
    [1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// 10^0 ..= 10^18, each exact as an f64 (every power up to 10^22 is).
const POW10: [f64; 19] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// `repr` of a value that is the nearest double to a decimal of at most 15
/// significant digits within [1e-4, 1e15), which is most of what carbon and
/// statsd store; `None` for any other value.
///
/// Such a decimal is the value's shortest round-trip form, so it is Python's
/// repr: two different decimals of at most 15 digits never round to the same
/// double (DBL_DIG is 15), so no shorter one can. Found with one multiply,
/// one division to check and integer digits, about half of what a general
/// shortest-digits search costs.
#[inline(always)]
fn short_decimal(v: f64, out: &mut [u8; Repr::CAP]) -> Option<usize> {
    let magnitude = v.abs();
    if !(1e-4..1e15).contains(&magnitude) {
        return None;
    }
    // The decimal exponent e of the leading digit, -4..=14, then the scale that
    // gives 15 significant digits. From the binary exponent, floor(log10 m) is
    // floor(e2 * log10(2)) or one more (78913 / 2^18 is log10(2) to 6 digits,
    // exact as a floor for these exponents). Misjudging e by one at a boundary
    // (1e-4 and the others are not exact) only moves the scale by one: the
    // `< 1e15` check keeps every accepted integer within 15 digits, where the
    // rounding below is exact (the product is off the true integer by well
    // under 0.5, and adding 0.5 to a value below 2^50 is exact).
    let e2 = ((magnitude.to_bits() >> 52) as i32) - 1023;
    let mut e = (e2 * 78913) >> 18;
    if magnitude >= POW10_FROM_MINUS_4[(e + 5) as usize] {
        e += 1;
    }
    let scale = (14 - e) as usize;
    // The cast truncates a positive value: rounding half up.
    // (Through i64: one conversion instruction where u64 takes several.)
    let digits = (magnitude * POW10[scale] + 0.5) as i64 as u64;
    if digits >= 1_000_000_000_000_000 || digits as f64 / POW10[scale] != magnitude {
        return None;
    }
    // Python writes the digits after the point up to the last nonzero one:
    // drop the integer's trailing zeros (at most 14, so 8 + 4 + 2 + 1 strips
    // any number of them; constant divisors compile to multiplications).
    let (mut digits, mut scale) = (digits, scale);
    if scale >= 8 && digits.is_multiple_of(100_000_000) {
        digits /= 100_000_000;
        scale -= 8;
    }
    if scale >= 4 && digits.is_multiple_of(10_000) {
        digits /= 10_000;
        scale -= 4;
    }
    if scale >= 2 && digits.is_multiple_of(100) {
        digits /= 100;
        scale -= 2;
    }
    if scale >= 1 && digits.is_multiple_of(10) {
        digits /= 10;
        scale -= 1;
    }
    // The integer part (at least `0`), the point, and the fraction padded with
    // leading zeros to the scale (a whole number gets `.0`), each written
    // right-aligned into a slice of a buffer of zeros. Small scales divide by
    // constants.
    let (int, fraction) = match scale {
        0 => (digits, 0),
        1 => (digits / 10, digits % 10),
        2 => (digits / 100, digits % 100),
        3 => (digits / 1000, digits % 1000),
        4 => (digits / 10_000, digits % 10_000),
        s => (digits / POW10_U64[s], digits % POW10_U64[s]),
    };
    *out = [b'0'; Repr::CAP];
    let mut n = usize::from(v < 0.0);
    out[0] = if n == 1 { b'-' } else { b'0' };
    let int_len = (int.max(1).ilog10() + 1) as usize;
    digits_into(&mut out[n..n + int_len], int);
    n += int_len;
    out[n] = b'.';
    n += 1;
    let fraction_len = scale.max(1);
    digits_into(&mut out[n..n + fraction_len], fraction);
    Some(n + fraction_len)
}

/// Python's float repr built from the shortest round-trip digits and the
/// exponent of the first (every finite value; `repr` takes a faster path
/// where it can).
///
/// The digits are ryu's, which are Python's: the shortest that round-trip,
/// then the closest, and on an exact tie the even one (1690060720831323.25
/// is `1690060720831323.2`). std's formatter rounds that tie up, so it is not
/// used here; `tests/it/python_repr.rs` compares against Python itself.
fn repr_from_digits(r: &mut Repr, v: f64) {
    if v.is_sign_negative() {
        r.push(b'-');
    }
    if v == 0.0 {
        r.extend(b"0.0");
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v.abs()).as_bytes();
    // ryu writes `1.2345e15`, `1e16`, `5e-324`, `0.0001` or `123.0`: the
    // significant digits wherever they stand, and an optional exponent.
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (&text[..e], std::str::from_utf8(&text[e + 1..]).ok().and_then(|x| x.parse::<i32>().ok()).unwrap_or(0)),
        None => (text, 0),
    };
    let int_len = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
    let mut all = [0u8; 40];
    let mut n = 0;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()).take(all.len()) {
        all[n] = b;
        n += 1;
    }
    let lead = all[..n].iter().take_while(|&&b| b == b'0').count();
    let end = n - all[..n].iter().rev().take_while(|&&b| b == b'0').count();
    let digits = &all[lead..end.max(lead)];
    let exp = exponent + int_len as i32 - 1 - lead as i32;
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        if point <= 0 {
            r.extend(b"0.");
            for _ in 0..-point {
                r.push(b'0');
            }
            r.extend(digits);
        } else if point as usize >= digits.len() {
            r.extend(digits);
            for _ in digits.len()..point as usize {
                r.push(b'0');
            }
            r.extend(b".0");
        } else {
            r.extend(&digits[..point as usize]);
            r.push(b'.');
            r.extend(&digits[point as usize..]);
        }
    } else {
        r.push(digits[0]);
        if digits.len() > 1 {
            r.push(b'.');
            r.extend(&digits[1..]);
        }
        r.push(b'e');
        r.push(if exp < 0 { b'-' } else { b'+' });
        let mut e = [0u8; 4];
        let len = digits_into(&mut e, u64::from(exp.unsigned_abs()));
        if len == 1 {
            r.push(b'0');
        }
        r.extend(&e[4 - len..]);
    }
}

/// Two ASCII digits for each of 0..100.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `n`'s decimal digits right-aligned into `buf` (which must hold
/// them) and returns how many there are.
#[inline(always)]
pub fn digits_into(buf: &mut [u8], mut n: u64) -> usize {
    let mut at = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        at -= 2;
        buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    buf.len() - at
}

/// Appends the decimal digits of `n` (what `write!` does, without its
/// formatting machinery).
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let len = digits_into(&mut buf, n);
    out.extend_from_slice(&buf[buf.len() - len..]);
}

/// Python's `%g` (6 significant digits, trailing zeros trimmed).
pub fn py_g(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let s = format!("{:.5e}", v);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = (5 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, v);
        trim_zeros(&fixed)
    } else {
        let mut out = trim_zeros(mantissa).into_bytes();
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        String::from_utf8(out).expect("ascii")
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_formats() {
        for (v, repr) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e300, "1.5e+300"),
            (0.30000000000000004, "0.30000000000000004"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.00010000000000000002, "0.00010000000000000002"),
            (9.99e-5, "9.99e-05"),
            (123.456e10, "1234560000000.0"),
            // Exact ties between two shortest candidates go to the even digit,
            // as Python's dtoa does (std's formatter rounds these up): 1690060720831323.25
            // and the others, written as exact quotients.
            (6760242883325293.0 / 4.0, "1690060720831323.2"),
            (-4026269610870709.0 / 4.0, "-1006567402717677.2"),
            (1864927124118369.0 / 8.0, "233115890514796.12"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e22, "1e+22"),
            (123456789.0 / 7.0, "17636684.14285714"),
        ] {
            assert_eq!(py_repr(v), repr, "{v}");
        }
        for (v, g) in [
            (2.0, "2"),
            (0.5, "0.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.25, "-3.25"),
        ] {
            assert_eq!(py_g(v), g, "{v}");
        }
    }

    fn digits_repr(v: f64) -> String {
        let mut r = Repr::new();
        repr_from_digits(&mut r, v);
        String::from_utf8(r.as_bytes().to_vec()).expect("ascii")
    }

    #[test]
    fn fast_repr_agrees_with_the_digit_construction() {
        let mut r = crate::splitmix::SplitMix(7);
        for _ in 0..200_000 {
            let v = f64::from_bits(r.next());
            if v.is_finite() && (v == 0.0 || (1e-4..1e16).contains(&v.abs())) {
                assert_eq!(py_repr(v), digits_repr(v), "{v:e}");
            }
            let decimal = (r.below(2_000_000_000) as f64 - 1e9) / 10f64.powi(r.below(8) as i32);
            assert_eq!(py_repr(decimal), digits_repr(decimal), "{decimal:e}");
            // Up to 17 significant digits at every scale the short-decimal path takes.
            let digits = 1 + r.below(17) as u32;
            let wide = r.below(10u64.pow(digits)) as f64 / 10f64.powi(r.below(20) as i32);
            assert_eq!(py_repr(wide), digits_repr(wide), "{wide:e}");
            assert_eq!(py_repr(-wide), digits_repr(-wide), "{wide:e}");
        }
    }
}
