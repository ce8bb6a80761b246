//! Log timestamps: epoch milliseconds in, RFC 3339 (UTC, milliseconds) out,
//! and the ISO 8601 / RFC 3339 forms senders use parsed back to milliseconds.

use crate::graphite::timespec::{civil_day, civil_from_days};

const DAY_MS: i64 = 86_400_000;

/// `2024-01-01T00:00:00.123Z`: the one form events are stored and returned in.
pub fn format_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_ms(&mut out, ms);
    out
}

/// [`format_ms`] appended to `out`.
pub fn push_ms(out: &mut String, ms: i64) {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let t = ms.rem_euclid(DAY_MS);
    let (h, min, s, frac) = (t / 3_600_000, t / 60_000 % 60, t / 1000 % 60, t % 1000);
    if !(0..=9999).contains(&y) {
        use std::fmt::Write as _;
        let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{frac:03}Z");
        return;
    }
    // Every event is stamped: digits by hand, not through the formatter.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [(0, 4, y), (5, 2, m), (8, 2, d), (11, 2, h), (14, 2, min), (17, 2, s), (20, 3, frac)] {
        let mut value = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&text).expect("ASCII digits"));
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 timestamp:
/// `YYYY-MM-DD[Tt ]HH:MM[:SS[.fraction]][Z|z|±HH[:]MM]`, or a bare date. A
/// missing zone means UTC. Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_prefix(s).filter(|(_, used)| *used == s.len()).map(|(ms, _)| ms)
}

/// [`parse_rfc3339`] of the longest timestamp at the start of `s`, with the
/// number of bytes it took (syslog headers carry more after it).
pub fn parse_prefix(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let day = civil_day(digits(0..4)?, digits(5..7)?, digits(8..10)?)?;
    let mut at = 10;
    let mut clock_ms = 0;
    if matches!(b.get(10), Some(b'T' | b't' | b' ')) && b.get(13) == Some(&b':') {
        let (h, m) = (digits(11..13)?, digits(14..16)?);
        at = 16;
        let mut sec = 0;
        let mut frac_ms = 0;
        if b.get(16) == Some(&b':') {
            sec = digits(17..19)?;
            at = 19;
            if matches!(b.get(19), Some(b'.' | b',')) {
                let n = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                let mut scaled = 0;
                for i in 0..3 {
                    scaled = scaled * 10 + b.get(20 + i).filter(|_| i < n).map_or(0, |c| i64::from(c - b'0'));
                }
                frac_ms = scaled;
                at = 20 + n;
            }
        }
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        clock_ms = (h * 3600 + m * 60 + sec) * 1000 + frac_ms;
    }
    let zone_s = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(at + 1..at + 3)?;
            let colon = usize::from(b.get(at + 3) == Some(&b':'));
            let m = digits(at + 3 + colon..at + 5 + colon)?;
            if h > 23 || m > 59 {
                return None;
            }
            at += 5 + colon;
            let z = h * 3600 + m * 60;
            if sign == b'+' { z } else { -z }
        }
        _ => 0,
    };
    Some((day * DAY_MS + clock_ms - zone_s * 1000, at))
}

/// Elasticsearch date math in epoch ms: an anchor (`now`, epoch ms, or an ISO
/// 8601 time followed by `||`), then any of `+N<unit>`, `-N<unit>` and
/// `/<unit>` (rounding) with units `y M w d h H m s`. A bare ISO time needs no
/// `||`. Rounding goes down, or, for the upper end of a range (`round_up`), to
/// the last millisecond of the unit, as Elasticsearch does.
pub fn parse_date_math(text: &str, now_ms: i64, round_up: bool) -> Option<i64> {
    let text = text.trim();
    let (mut t, mut rest) = if let Some(rest) = text.strip_prefix("now") {
        (now_ms, rest)
    } else if let Some((anchor, rest)) = text.split_once("||") {
        (parse_anchor(anchor)?, rest)
    } else {
        return parse_anchor(text);
    };
    while !rest.is_empty() {
        let op = rest.as_bytes()[0];
        rest = &rest[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = if digits == 0 { 1 } else { rest[..digits].parse().ok()? };
        let unit = *rest.as_bytes().get(digits)?;
        rest = &rest[digits + 1..];
        t = match op {
            b'+' => add_units(t, n, unit)?,
            b'-' => add_units(t, -n, unit)?,
            b'/' if digits == 0 => {
                let down = floor_unit(t, unit)?;
                if round_up { add_units(down, 1, unit)? - 1 } else { down }
            }
            _ => return None,
        };
    }
    Some(t)
}

/// Epoch ms digits, or an ISO 8601 time.
fn parse_anchor(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().enumerate().all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == b'-')) {
        return s.parse().ok();
    }
    parse_rfc3339(s)
}

fn add_units(t: i64, n: i64, unit: u8) -> Option<i64> {
    let fixed = |ms: i64| n.checked_mul(ms).and_then(|d| t.checked_add(d));
    match unit {
        b's' => fixed(1000),
        b'm' => fixed(60_000),
        b'h' | b'H' => fixed(3_600_000),
        b'd' => fixed(DAY_MS),
        b'w' => fixed(7 * DAY_MS),
        b'M' => add_months(t, n),
        b'y' => add_months(t, n.checked_mul(12)?),
        _ => None,
    }
}

fn add_months(t: i64, n: i64) -> Option<i64> {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY_MS));
    let months = y.checked_mul(12)? + (m - 1) + n;
    let (y, m) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    // The 31st plus a month is the last day of a shorter month.
    let day = (0..4).find_map(|back| civil_day(y, m, d - back))?;
    Some(day * DAY_MS + t.rem_euclid(DAY_MS))
}

fn floor_unit(t: i64, unit: u8) -> Option<i64> {
    let floor = |ms: i64| t.div_euclid(ms) * ms;
    let days = t.div_euclid(DAY_MS);
    match unit {
        b's' => Some(floor(1000)),
        b'm' => Some(floor(60_000)),
        b'h' | b'H' => Some(floor(3_600_000)),
        b'd' => Some(floor(DAY_MS)),
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        b'w' => Some((days - (days + 3).rem_euclid(7)) * DAY_MS),
        b'M' => {
            let (y, m, _) = civil_from_days(days);
            Some(civil_day(y, m, 1)? * DAY_MS)
        }
        b'y' => {
            let (y, _, _) = civil_from_days(days);
            Some(civil_day(y, 1, 1)? * DAY_MS)
        }
        _ => None,
    }
}

/// The wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The hand-written digits are the formatter's, years 0 to 9999 and
        /// outside them.
        #[test]
        fn stamps_are_what_the_formatter_writes(ms in -70_000_000_000_000i64..260_000_000_000_000) {
            let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
            let t = ms.rem_euclid(DAY_MS);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                t / 3_600_000,
                t / 60_000 % 60,
                t / 1000 % 60,
                t % 1000
            );
            proptest::prop_assert_eq!(format_ms(ms), want);
        }
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_the_forms_senders_use() {
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.123Z"), Some(1_704_067_200_123));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.123456Z"), Some(1_704_067_200_123));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339("2024-01-01 00:00:00,5"), Some(1_704_067_200_500));
        assert_eq!(parse_rfc3339("2003-08-24T05:14:15.000003-07:00"), Some(1_061_727_255_000));
        assert_eq!(parse_rfc3339("2024-01-01T01:00:00+0100"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339("2024-01-01"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2024-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Zjunk"), None);
        assert_eq!(parse_prefix("2024-01-01T00:00:00Z host"), Some((1_704_067_200_000, 20)));
    }

    #[test]
    fn round_trips() {
        for ms in [0, 1, 999, 1_704_067_200_123, 4_102_444_799_999, -86_400_001] {
            assert_eq!(parse_rfc3339(&format_ms(ms)), Some(ms));
        }
    }
    #[test]
    fn date_math() {
        // 2024-05-15T13:45:30.250Z, a Wednesday.
        let now = 1_715_780_730_250;
        let day = 1_715_731_200_000;
        let m = |s: &str| parse_date_math(s, now, false);
        assert_eq!(m("now"), Some(now));
        assert_eq!(m("now-15m"), Some(now - 900_000));
        assert_eq!(m("now+1h"), Some(now + 3_600_000));
        assert_eq!(m("now/d"), Some(day));
        assert_eq!(parse_date_math("now/d", now, true), Some(day + 86_400_000 - 1));
        assert_eq!(m("now-1d/d"), Some(day - 86_400_000));
        assert_eq!(m("now/w"), Some(day - 2 * 86_400_000));
        assert_eq!(m("now/M"), Some(1_714_521_600_000));
        assert_eq!(m("now/y"), Some(1_704_067_200_000));
        assert_eq!(m("2024-01-31||+1M"), Some(parse_rfc3339("2024-02-29").unwrap()));
        assert_eq!(m("1704067200000"), Some(1_704_067_200_000));
        assert_eq!(m("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
        for bad in ["now-", "now-5x", "yesterday", "now/5d", ""] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }
}
