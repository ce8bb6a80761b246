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
    /// room for a reader that copies `CAP` bytes at once, and for the
    /// short-decimal writer's fixed 16-byte copies (up to byte 34).
    pub const CAP: usize = 40;

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
#[inline(always)]
pub fn repr_into(out: &mut [u8; Repr::CAP], v: f64) -> usize {
    match short_decimal(v, out) {
        Some(len) => len,
        None => repr_into_slow(out, v),
    }
}

#[cold]
#[inline(never)]
fn repr_into_slow(out: &mut [u8; Repr::CAP], v: f64) -> usize {
    let r = repr(v);
    *out = r.bytes;
    r.len
}

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
    // `digits` has 15 digits unless `e` was one too high at a boundary (14);
    // then it is the same decimal with one digit less.
    let (digits, e) = if digits < 100_000_000_000_000 { (digits * 10, e - 1) } else { (digits, e) };
    if e < -4 || digits < 100_000_000_000_000 {
        return None;
    }
    // The 15 digits and a zero as 16 ASCII bytes, then the point put in by
    // two fixed-size copies at offsets that depend on `e`, and the length cut
    // after the last nonzero digit: no loop or branch that depends on how
    // many digits the value has (those mispredict from point to point).
    let ten = digits * 10;
    let words = u128::from(eight_digits((ten / 100_000_000) as u32)) | (u128::from(eight_digits((ten % 100_000_000) as u32)) << 64);
    // The digit bytes are 0..=9, the first digit in the lowest byte: the
    // trailing zero digits are the zero bytes at the top. The text stays in a
    // register and is stored whole (16 bytes written as two halves and read
    // back as one would stall the store forwarding on every value).
    let significant = 16 - (words.leading_zeros() / 8) as usize;
    let ascii = words + ASCII_ZEROS;
    let sign = usize::from(v < 0.0);
    out[0] = b'-';
    let body = &mut out[sign..];
    if e >= 0 {
        // `ddd.ddd`: the integer digits, the point, the rest; at least one
        // digit after the point (the 16th digit is always a zero).
        let e = e as usize;
        body[..16].copy_from_slice(&ascii.to_le_bytes());
        body[e + 1] = b'.';
        body[e + 2..e + 18].copy_from_slice(&(ascii >> ((e + 1) * 8)).to_le_bytes());
        Some(sign + e + 2 + significant.saturating_sub(e + 1).max(1))
    } else {
        // `0.000ddd`.
        let zeros = (-e - 1) as usize;
        body[..8].copy_from_slice(b"0.000000");
        body[2 + zeros..2 + zeros + 16].copy_from_slice(&ascii.to_le_bytes());
        Some(sign + 2 + zeros + significant)
    }
}

/// `n`'s decimal digits written at the start of `out`; returns how many.
/// The JSON writer's timestamps: 10 digits each, written whole from a
/// register for any `n` below 10^16.
#[inline(always)]
pub fn digits_at_start(out: &mut [u8; 24], n: u64) -> usize {
    if n >= 10_000_000_000_000_000 {
        let mut buf = [0u8; 20];
        let len = digits_into(&mut buf, n);
        out[..len].copy_from_slice(&buf[20 - len..]);
        return len;
    }
    let words = u128::from(eight_digits((n / 100_000_000) as u32)) | (u128::from(eight_digits((n % 100_000_000) as u32)) << 64);
    // Leading zero digits are the zero bytes at the bottom; 0 is one digit.
    let lead = (words.trailing_zeros() / 8).min(15) as usize;
    out[..16].copy_from_slice(&((words + ASCII_ZEROS) >> (lead * 8)).to_le_bytes());
    16 - lead
}

/// The 4 decimal digits of `n < 10^4` as ASCII, leading zeros included, the
/// first digit in the lowest byte: `eight_digits`' last four.
#[inline(always)]
pub fn four_digits(n: u32) -> u32 {
    (eight_digits(n) >> 32) as u32 + 0x3030_3030
}

/// `'0'` in each of 16 bytes.
const ASCII_ZEROS: u128 = 0x3030_3030_3030_3030_3030_3030_3030_3030;

/// The 8 decimal digits of `n < 10^8` as byte values 0..=9 in a u64, the
/// first digit in the lowest byte (so `to_le_bytes` writes them in order),
/// computed in SIMD-within-a-register lanes: 4 + 4 digits, then 2 + 2 in each
/// half, then 1 + 1 in each quarter. Each step divides all lanes at once by
/// a multiply and shift that is exact for the lane's range.
#[inline(always)]
fn eight_digits(n: u32) -> u64 {
    let n = u64::from(n);
    let v = (n / 10_000) | ((n % 10_000) << 32);
    // n / 100 is (n * 5243) >> 19 for n < 43,699; lanes hold < 10,000.
    let hundreds = ((v * 5243) >> 19) & 0x0000_007f_0000_007f;
    let v = hundreds | ((v - hundreds * 100) << 16);
    // n / 10 is (n * 103) >> 10 for n < 179; lanes hold < 100.
    let tens = ((v * 103) >> 10) & 0x000f_000f_000f_000f;
    tens | ((v - tens * 10) << 8)
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
