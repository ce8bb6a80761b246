//! Graphite's time specs (`from`, `until`, `now`, and the intervals functions
//! take), as graphite-web's `attime.py` reads them: epoch seconds, `YYYYMMDD`,
//! `HH:MM_YYYYMMDD`, `noon+yesterday`, `-1h30min`, month and weekday names,
//! plus ISO 8601 dates and times (`2024-05-01T12:00:00Z`), which graphite-web
//! does not read. All times are UTC: a `tz` parameter is accepted and ignored.

/// Seconds since the epoch.
pub type Epoch = i64;

const DAY: i64 = 86_400;
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
/// Weekday names from Sunday, as attime.py lists them.
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Why a time spec was refused; the message names the spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid time {spec:?}: {reason}")]
pub struct TimeError {
    pub spec: String,
    pub reason: String,
}

fn error(spec: &str, reason: impl Into<String>) -> TimeError {
    TimeError { spec: spec.to_string(), reason: reason.into() }
}

/// Parses a time spec relative to `now`.
pub fn parse(spec: &str, now: Epoch) -> Result<Epoch, TimeError> {
    if let Some(t) = iso8601(spec.trim()) {
        return Ok(t);
    }
    let s: String = spec.trim().to_lowercase().chars().filter(|c| !matches!(c, '_' | ',' | ' ')).collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let yyyymmdd = s.len() == 8
            && s[..4].parse::<i64>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<u32>().is_ok_and(|m| m < 13)
            && s[6..].parse::<u32>().is_ok_and(|d| d < 32);
        if !yyyymmdd {
            return s.parse::<i64>().map_err(|_| error(spec, "the number is too large"));
        }
    }
    let (reference, offset) = match (s.find('+'), s.find('-')) {
        (Some(i), _) | (None, Some(i)) => (&s[..i], &s[i..]),
        (None, None) => (&s[..], ""),
    };
    let base = reference_time(reference, now).map_err(|r| error(spec, r))?;
    let delta = offset_seconds(offset).map_err(|r| error(spec, r))?;
    Ok(base + delta)
}

/// A signed interval such as `-1h30min`, `5min` or `+2d`, in seconds (what
/// functions like `timeShift` and `summarize` take).
pub fn interval(spec: &str) -> Result<i64, TimeError> {
    let s: String = spec.trim().to_lowercase().chars().filter(|c| !matches!(c, '_' | ',' | ' ')).collect();
    if s.is_empty() {
        return Err(error(spec, "the interval is empty"));
    }
    offset_seconds(&s).map_err(|r| error(spec, r))
}

fn reference_time(reference: &str, now: Epoch) -> Result<Epoch, String> {
    if reference.is_empty() || reference == "now" {
        return Ok(now);
    }
    let mut rest = reference;
    let (mut hour, mut minute) = (0i64, 0i64);
    if let Some(i) = rest.find(':').filter(|&i| (1..3).contains(&i)) {
        hour = rest[..i].parse().map_err(|_| format!("bad hour in {reference:?}"))?;
        let minutes = rest.get(i + 1..(i + 3).min(rest.len())).unwrap_or("");
        minute = minutes.parse().map_err(|_| format!("bad minutes in {reference:?}"))?;
        rest = rest.get(i + 3..).unwrap_or("");
        if let Some(r) = rest.strip_prefix("am") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("pm") {
            hour = (hour + 12) % 24;
            rest = r;
        }
    }
    if let Some(i) = rest.find("am").filter(|&i| (1..3).contains(&i)) {
        hour = rest[..i].parse().map_err(|_| format!("bad hour in {reference:?}"))?;
        rest = &rest[i + 2..];
    }
    if let Some(i) = rest.find("pm").filter(|&i| (1..3).contains(&i)) {
        hour = (rest[..i].parse::<i64>().map_err(|_| format!("bad hour in {reference:?}"))? + 12) % 24;
        rest = &rest[i + 2..];
    }
    for (word, h) in [("noon", 12), ("midnight", 0), ("teatime", 16)] {
        if let Some(r) = rest.strip_prefix(word) {
            (hour, minute) = (h, 0);
            rest = r;
            break;
        }
    }
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return Err(format!("no such time of day in {reference:?}"));
    }
    let today = now.div_euclid(DAY);
    let clock = hour * 3600 + minute * 60;
    let day = match rest {
        "yesterday" => today - 1,
        "today" | "" => today,
        "tomorrow" => today + 1,
        _ if rest.matches('/').count() == 2 => {
            let parts: Vec<&str> = rest.split('/').collect();
            let num = |s: &str| s.parse::<i64>().map_err(|_| format!("bad date {rest:?}"));
            let (m, d, mut y) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
            if y < 1900 {
                y += 1900;
            }
            if y < 1970 {
                y += 100;
            }
            civil_day(y, m, d).ok_or_else(|| format!("no such date {rest:?}"))?
        }
        _ if rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            let (y, m, d) = (rest[..4].parse().unwrap_or(0), rest[4..6].parse().unwrap_or(0), rest[6..].parse().unwrap_or(0));
            civil_day(y, m, d).ok_or_else(|| format!("no such date {rest:?}"))?
        }
        _ if rest.len() >= 3 && MONTHS.contains(&&rest[..3]) => {
            let month = MONTHS.iter().position(|m| *m == &rest[..3]).unwrap_or(0) as i64 + 1;
            let digits = rest.bytes().rev().take_while(u8::is_ascii_digit).count().min(2);
            if digits == 0 {
                return Err("day of month required after month name".to_string());
            }
            let d: i64 = rest[rest.len() - digits..].parse().unwrap_or(0);
            let (year, _, _) = civil_from_days(today);
            civil_day(year, month, d).ok_or_else(|| format!("no such date {rest:?}"))?
        }
        _ if rest.len() >= 3 && WEEKDAYS.contains(&&rest[..3]) => {
            // 1970-01-01 was a Thursday (index 4 from Sunday).
            let weekday = (today + 4).rem_euclid(7);
            let target = WEEKDAYS.iter().position(|d| *d == &rest[..3]).unwrap_or(0) as i64;
            today - (weekday - target).rem_euclid(7)
        }
        _ => return Err(format!("unknown day reference {reference:?}")),
    };
    Ok(day * DAY + clock)
}

fn offset_seconds(offset: &str) -> Result<i64, String> {
    if offset.is_empty() {
        return Ok(0);
    }
    let (sign, mut rest) = match offset.as_bytes()[0] {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        b'0'..=b'9' => (1, offset),
        _ => return Err(format!("invalid offset {offset:?}")),
    };
    if rest.is_empty() {
        return Err(format!("offset {offset:?} has no amount"));
    }
    let mut total = 0i64;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let num: i64 = rest[..digits].parse().map_err(|_| format!("offset {offset:?}: a number must come before each unit"))?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let seconds = unit_seconds(unit).ok_or_else(|| format!("unknown unit {unit:?} in {offset:?} (use s, min, h, d, w, mon or y)"))?;
        total = num.checked_mul(seconds).and_then(|s| total.checked_add(s)).ok_or_else(|| format!("offset {offset:?} is too large"))?;
    }
    Ok(sign * total)
}

/// attime.py's `getUnitString`, by prefix and in its order; `m` alone is no unit.
fn unit_seconds(unit: &str) -> Option<i64> {
    if unit.starts_with('s') {
        Some(1)
    } else if unit.starts_with("min") {
        Some(60)
    } else if unit.starts_with('h') {
        Some(3600)
    } else if unit.starts_with('d') {
        Some(DAY)
    } else if unit.starts_with('w') {
        Some(7 * DAY)
    } else if unit.starts_with("mon") {
        Some(30 * DAY)
    } else if unit.starts_with('y') {
        Some(365 * DAY)
    } else {
        None
    }
}

/// `YYYY-MM-DD`, optionally `THH:MM[:SS]` and `Z` or `+HH:MM`.
fn iso8601(s: &str) -> Option<Epoch> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit())).and_then(|p| p.parse::<i64>().ok());
    let day = civil_day(num(0..4)?, num(5..7)?, num(8..10)?)?;
    let mut rest = &s[10..];
    let mut clock = 0;
    if let Some(r) = rest.strip_prefix(['T', 't', ' ']) {
        let t = r.as_bytes();
        if t.len() < 5 || t[2] != b':' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| {
            r.clone().all(|i| t.get(i).is_some_and(u8::is_ascii_digit)).then(|| r.fold(0i64, |a, i| a * 10 + i64::from(t[i] - b'0')))
        };
        let (h, m) = (n(0..2)?, n(3..5)?);
        let mut used = 5;
        let mut sec = 0;
        if t.get(5) == Some(&b':') {
            sec = n(6..8)?;
            used = 8;
            // Fractions of a second are dropped.
            if t.get(8) == Some(&b'.') {
                used = 9 + t[9..].iter().take_while(|c| c.is_ascii_digit()).count();
            }
        }
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        clock = h * 3600 + m * 60 + sec;
        rest = &r[used..];
    }
    let zone = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let z = rest.as_bytes();
            let sign = match z.first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: Vec<i64> =
                z[1..].iter().filter(|c| **c != b':').map(|c| c.is_ascii_digit().then(|| i64::from(c - b'0'))).collect::<Option<_>>()?;
            if digits.len() != 4 {
                return None;
            }
            sign * ((digits[0] * 10 + digits[1]) * 3600 + (digits[2] * 10 + digits[3]) * 60)
        }
    };
    Some(day * DAY + clock - zone)
}

/// Days since 1970-01-01 of a proleptic Gregorian date, if it exists.
pub fn civil_day(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (graphite-web's CSV timestamps).
pub fn format_utc(t: Epoch) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-15 (a Wednesday) 13:45:30 UTC.
    const NOW: i64 = 1_715_780_730;
    const MIDNIGHT: i64 = 1_715_731_200;

    #[test]
    fn specs() {
        let ok = |s: &str, want: i64| assert_eq!(parse(s, NOW), Ok(want), "{s}");
        ok("now", NOW);
        ok("", NOW);
        ok("-1h", NOW - 3600);
        ok("-15min", NOW - 900);
        ok("now-1h", NOW - 3600);
        ok("-1h30min", NOW - 5400);
        ok("+2d", NOW + 2 * DAY);
        ok("-1mon", NOW - 30 * DAY);
        ok("-1y", NOW - 365 * DAY);
        ok("-2w", NOW - 14 * DAY);
        ok("1700000000", 1_700_000_000);
        ok("20240101", 1_704_067_200);
        // Month 13 or a year before 1901: epoch seconds.
        ok("20241301", 20_241_301);
        ok("12345678", 12_345_678);
        ok("04:00_20110501", 1_304_222_400);
        ok("12/31/09", 1_262_217_600);
        ok("yesterday", MIDNIGHT - DAY);
        ok("today", MIDNIGHT);
        ok("tomorrow", MIDNIGHT + DAY);
        ok("noon", MIDNIGHT + 12 * 3600);
        ok("noonyesterday", MIDNIGHT - DAY + 12 * 3600);
        ok("6pmtoday", MIDNIGHT + 18 * 3600);
        ok("teatime", MIDNIGHT + 16 * 3600);
        ok("monday", MIDNIGHT - 2 * DAY);
        ok("wednesday", MIDNIGHT);
        ok("jan15", 1_705_276_800);
        ok("january1", 1_704_067_200);
        ok("2024-05-01", 1_714_521_600);
        ok("2024-05-01T12:00:00Z", 1_714_564_800);
        ok("2024-05-01T12:00:00.250+02:00", 1_714_557_600);
        ok("-1 h", NOW - 3600);
        let bad = |s: &str, fragment: &str| {
            let e = parse(s, NOW).expect_err(s).to_string();
            assert!(e.contains(fragment), "{s}: {e}");
        };
        bad("-5m", "unknown unit \"m\"");
        // attime.py reads "+yesterday" as an offset and fails on it too.
        bad("noon+yesterday", "a number must come before");
        bad("-h", "a number must come before");
        bad("-", "has no amount");
        bad("blursday", "unknown day reference");
        bad("feb", "day of month required");
        bad("13/45/2020", "no such date");
        bad("25:00", "no such time of day");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval("5min"), Ok(300));
        assert_eq!(interval("-1d"), Ok(-DAY));
        assert_eq!(interval("1h30min"), Ok(5400));
        assert!(interval("5m").is_err());
        assert!(interval("").is_err());
    }

    #[test]
    fn calendar() {
        for day in [-800_000, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(civil_day(y, m, d), Some(day));
        }
        assert_eq!(civil_day(2023, 2, 29), None);
        assert_eq!(format_utc(1_714_564_800), "2024-05-01 12:00:00");
    }
}
