//! Numbers as Etsy statsd (JavaScript) reads and writes them: `Number(string)`
//! decides what a sample's value is and whether a line is valid, and
//! `Number#toString` is how the admin console prints values. Pure functions.

/// JavaScript's `Number(s)`: surrounding whitespace ignored, the empty string
/// is 0, decimal literals with an optional sign and exponent, `Infinity`,
/// and unsigned `0x`/`0o`/`0b` integers; anything else is NaN.
pub fn number(s: &str) -> f64 {
    // Most values are short unsigned integers: exact as f64 below 10^15.
    if !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64;
    }
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let bytes = t.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'0' {
        let radix = match bytes[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return radix_integer(&t[2..], radix);
        }
    }
    if decimal_literal(bytes) { t.parse::<f64>().unwrap_or(f64::NAN) } else { f64::NAN }
}

/// JavaScript's `isNaN(s)` negated on a non-empty string: statsd's `isNumber`.
pub fn is_number(s: &str) -> bool {
    !s.is_empty() && !number(s).is_nan()
}

/// Digits of one radix, as a float (JavaScript keeps them as a double too).
fn radix_integer(digits: &str, radix: u32) -> f64 {
    let mut value = 0.0f64;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => value = value * f64::from(radix) + f64::from(d),
            None => return f64::NAN,
        }
    }
    value
}

/// `[+-]? (digits (. digits?)? | . digits) ([eE] [+-]? digits)?`: the syntax
/// JavaScript accepts and Rust's parser also reads the same way (Rust would
/// also take `inf` and `nan`, which JavaScript does not).
fn decimal_literal(b: &[u8]) -> bool {
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'+' | b'-')));
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

/// JavaScript's `Number#toString()`: the shortest round-trip digits (ryu's,
/// the same choice as JavaScript's), fixed notation from 1e-7 up to 1e21 with
/// no `.0` on whole numbers, exponent notation outside (`1e+21`, `1.5e-7`).
pub fn to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v.abs());
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len());
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0');
    // n: the position of the decimal point relative to the digits, as ECMA-262's
    // Number::toString defines it (value = 0.digits * 10^n).
    let n = exponent + int_len as i32 - lead as i32;
    let k = digits.len() as i32;
    let sign = if v < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let mantissa = if k == 1 { digits.to_string() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{mantissa}e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: f64) {
        let got = number(input);
        assert!(got == expected || (got.is_nan() && expected.is_nan()), "Number({input:?}) = {got}, want {expected}");
    }

    #[test]
    fn numbers_as_javascript_reads_them() {
        check("1", 1.0);
        check(" 12 ", 12.0);
        check("", 0.0);
        check("  ", 0.0);
        check("-1.5", -1.5);
        check("+5", 5.0);
        check(".5", 0.5);
        check("5.", 5.0);
        check("1e3", 1000.0);
        check("1E-2", 0.01);
        check("0x1A", 26.0);
        check("0b101", 5.0);
        check("0o17", 15.0);
        check("Infinity", f64::INFINITY);
        check("-Infinity", f64::NEG_INFINITY);
        check("abc", f64::NAN);
        check("12abc", f64::NAN);
        check("1e", f64::NAN);
        check(".", f64::NAN);
        check("-0x10", f64::NAN);
        check("inf", f64::NAN);
        check("nan", f64::NAN);
        check("NaN", f64::NAN);
        check("1_000", f64::NAN);
        check("0x", f64::NAN);
        assert!(!is_number(""));
        assert!(is_number(" "));
        assert!(is_number("0x10"));
        assert!(!is_number("x"));
    }

    #[test]
    fn strings_as_javascript_writes_them() {
        for (v, text) in [
            (5.0, "5"),
            (0.5, "0.5"),
            (-2.0, "-2"),
            (81.64965809277261, "81.64965809277261"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0, "0"),
            (-0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (2.5e-300, "2.5e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(to_string(v), text, "{v:e}");
        }
    }
}
