//! The value types that config files spell as strings: sizes, durations and
//! listener addresses. Each parses from the config's text form, prints back to
//! it, and deserializes with serde so a bad value names itself in the error.
//!
//! Resolving a listener's host name and binding it is not done here: that is
//! the listener's job at start.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A byte count: an integer, or a number with a unit (`"512MiB"`, `"1GB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size as a `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    pub fn parse(text: &str) -> Result<Size, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        if num.is_empty() {
            return Err(format!("cannot parse size {text:?}: expected a number followed by a unit, like \"64MiB\""));
        }
        let multiplier: u64 = match unit {
            "" | "B" | "b" => 1,
            "K" | "KB" | "kB" | "kb" => 1_000,
            "M" | "MB" | "mb" => 1_000_000,
            "G" | "GB" | "gb" => 1_000_000_000,
            "T" | "TB" | "tb" => 1_000_000_000_000,
            "KiB" | "Ki" | "kib" => 1 << 10,
            "MiB" | "Mi" | "mib" => 1 << 20,
            "GiB" | "Gi" | "gib" => 1 << 30,
            "TiB" | "Ti" | "tib" => 1 << 40,
            _ => return Err(format!("cannot parse size {text:?}: unknown unit {unit:?} (use B, KB, MB, GB, KiB, MiB, GiB, TiB)")),
        };
        let value: f64 =
            num.parse().map_err(|_| format!("cannot parse size {text:?}: expected a number followed by a unit, like \"64MiB\""))?;
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("cannot parse size {text:?}: out of range"));
        }
        Ok(Size(bytes.round() as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (scale, unit) in UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or a byte count")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v).map(Size).map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A span of time: `"250ms"`, `"10s"`, `"5m"`/`"5min"`, `"2h"`, `"30d"`, `"1w"`,
/// `"1y"` (365 days, as carbon counts a year).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    pub fn get(self) -> Duration {
        self.0
    }

    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("cannot parse duration {text:?}: expected a number followed by a unit, like \"10s\""));
        }
        let seconds: f64 = match unit.trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            "y" | "year" | "years" => 31_536_000.0,
            "" => return Err(format!("cannot parse duration {text:?}: a unit is required, like \"10s\"")),
            other => return Err(format!("cannot parse duration {text:?}: unknown unit {other:?} (use ms, s, m, h, d, w, y)")),
        };
        let value: f64 =
            num.parse().map_err(|_| format!("cannot parse duration {text:?}: expected a number followed by a unit, like \"10s\""))?;
        let total = value * seconds;
        if !total.is_finite() || !(0.0..=1e12).contains(&total) {
            return Err(format!("cannot parse duration {text:?}: out of range"));
        }
        Ok(Span(Duration::from_secs_f64(total)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        const UNITS: [(u128, &str); 5] = [(604_800_000, "w"), (86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
        for (scale, unit) in UNITS {
            if ms >= scale && ms.is_multiple_of(scale) {
                return write!(f, "{}{unit}", ms / scale);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Where a listener binds: `"host:port"`, or `"off"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    /// Kept as text so host names resolve when the listener binds.
    At(String),
}

impl Listen {
    pub fn parse(text: &str) -> Result<Listen, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        let Some((host, port)) = t.rsplit_once(':') else {
            return Err(format!("cannot parse listener {text:?}: expected \"host:port\" or \"off\""));
        };
        if host.is_empty() {
            return Err(format!("cannot parse listener {text:?}: the host is empty (use 0.0.0.0 for every address)"));
        }
        if port.parse::<u16>().is_err() {
            return Err(format!("cannot parse listener {text:?}: port {port:?} is not a number from 0 to 65535"));
        }
        Ok(Listen::At(t.to_string()))
    }

    /// The address to bind, or `None` when the listener is off.
    pub fn addr(&self) -> Option<&str> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Off => f.write_str("off"),
            Listen::At(a) => f.write_str(a),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Listen::parse(&text).map_err(de::Error::custom)
    }
}

impl Serialize for Listen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_size(input: &str, expected: Result<u64, &str>) {
        let got = Size::parse(input).map(|s| s.0);
        match expected {
            Ok(n) => assert_eq!(got, Ok(n), "{input}"),
            Err(fragment) => {
                let err = got.expect_err(input);
                assert!(err.contains(fragment), "{input}: {err}");
            }
        }
    }

    #[test]
    fn sizes() {
        check_size("512MiB", Ok(512 << 20));
        check_size("1GB", Ok(1_000_000_000));
        check_size("1GiB", Ok(1 << 30));
        check_size("16KiB", Ok(16 << 10));
        check_size("0.5GiB", Ok(1 << 29));
        check_size("100", Ok(100));
        check_size(" 2 MiB ", Ok(2 << 20));
        check_size("12x", Err("unknown unit \"x\""));
        check_size("MiB", Err("expected a number"));
        check_size("-1MiB", Err("expected a number"));
    }

    fn check_span(input: &str, expected: Result<Duration, &str>) {
        let got = Span::parse(input).map(|s| s.0);
        match expected {
            Ok(d) => assert_eq!(got, Ok(d), "{input}"),
            Err(fragment) => {
                let err = got.expect_err(input);
                assert!(err.contains(fragment), "{input}: {err}");
            }
        }
    }

    #[test]
    fn spans() {
        check_span("10s", Ok(Duration::from_secs(10)));
        check_span("5m", Ok(Duration::from_secs(300)));
        check_span("5min", Ok(Duration::from_secs(300)));
        check_span("30d", Ok(Duration::from_secs(30 * 86_400)));
        check_span("250ms", Ok(Duration::from_millis(250)));
        check_span("1y", Ok(Duration::from_secs(365 * 86_400)));
        check_span("10", Err("a unit is required"));
        check_span("10 parsecs", Err("unknown unit \"parsecs\""));
    }

    #[test]
    fn display_round_trips() {
        for text in ["512MiB", "1GiB", "100B", "16KiB"] {
            assert_eq!(Size::parse(text).map(|s| s.to_string()), Ok(text.to_string()));
        }
        for text in ["10s", "5m", "30d", "1w", "250ms", "2h"] {
            assert_eq!(Span::parse(text).map(|s| s.to_string()), Ok(text.to_string()));
        }
    }

    #[test]
    fn listeners() {
        assert_eq!(Listen::parse("off"), Ok(Listen::Off));
        assert_eq!(Listen::parse("127.0.0.1:0"), Ok(Listen::At("127.0.0.1:0".into())));
        assert_eq!(Listen::parse("[::1]:8080"), Ok(Listen::At("[::1]:8080".into())));
        assert!(Listen::parse("8080").unwrap_err().contains("expected \"host:port\""));
        assert!(Listen::parse("localhost:99999").unwrap_err().contains("port \"99999\""));
        assert!(Listen::parse(":80").unwrap_err().contains("host is empty"));
    }
}
