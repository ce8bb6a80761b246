//! Axis scales and labels, ported from graphite-web's glyph.py: nice y steps with unit suffixes, and the x axis's time label formats.

use super::Area;
use super::raster::text_width;
use crate::graphite::timespec::civil_from_days;

/// glyph.py's tolerance for rounding in tick arithmetic.
pub(super) const EPSILON: f64 = 0.0001;
/// glyph.py's default `yDivisors`.
pub(super) const DIVISORS: [f64; 3] = [4.0, 5.0, 6.0];
/// glyph.py's `UnitSystems['si']`.
pub(super) const SI_UNITS: [(&str, f64); 5] = [("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];

/// A linear y axis as glyph.py's `_LinearAxisTics` chooses it.
pub(super) struct YAxis {
    pub(super) bottom: f64,
    pub(super) top: f64,
    /// (value, label) from bottom to top.
    pub(super) labels: Vec<(f64, String)>,
}

impl YAxis {
    /// `applySettings`, `chooseStep`, `chooseLimits` and `getLabelValues`.
    pub(super) fn new((data_min, data_max): (f64, f64), y_min: Option<f64>, y_max: Option<f64>) -> YAxis {
        // Bounded so that the range and the steps stay finite.
        let bound = |v: f64| v.clamp(-1e300, 1e300);
        let (mut min, mut max) = (bound(y_min.unwrap_or(data_min)), bound(y_max.unwrap_or(data_max)));
        if min >= max {
            let delta = |x: f64| if x.abs() < 1e-9 { 1.0 } else { 0.1 * x.abs() };
            match (y_min, y_max) {
                (Some(_), _) => max = min + delta(min),
                (None, Some(_)) => min = max - delta(max),
                (None, None) => {
                    let (d, mid) = (delta(min.abs().max(max.abs())), (min + max) / 2.0);
                    (min, max) = (mid - d, mid + d);
                }
            }
        }
        let step = choose_step(min, max);
        let bottom = if y_min.is_some() { min } else { step * (min / step + EPSILON).floor() };
        let mut top = if y_max.is_some() { max } else { step * (max / step - EPSILON).ceil() };
        if top == bottom {
            top += 1.0;
        }
        let first = step * (bottom / step - EPSILON).ceil();
        let labels = (0..)
            .map(|i| first + f64::from(i) * step)
            .take_while(|v| *v <= top + EPSILON * step)
            .map(|v| (v, make_label(v, step, top - bottom)))
            .collect();
        YAxis { bottom, top, labels }
    }

    pub(super) fn label_width(&self) -> f64 {
        self.labels.iter().map(|(_, l)| text_width(l)).fold(0.0, f64::max)
    }

    /// The pixel row of a value (`getYCoord`): scaled by the labels' range, or
    /// by the limits when there are no labels.
    pub(super) fn y(&self, value: f64, area: &Area) -> f64 {
        let (lo, hi) = match (self.labels.first(), self.labels.last()) {
            (Some((lo, _)), Some((hi, _))) if hi > lo => (*lo, *hi),
            _ => (self.bottom, self.top),
        };
        area.ymax - (value - lo) * (area.ymax - area.ymin) / (hi - lo)
    }
}

/// `chooseStep`: the 1-2-5 step whose 4, 5 or 6 divisions cover [min, max]
/// with the least slack.
pub(super) fn choose_step(min: f64, max: f64) -> f64 {
    let variance = max - min;
    let min_step = variance / 6.0;
    let mut exponent = (min_step.log10() - EPSILON).floor();
    let mut best: Option<(f64, f64)> = None; // (slop, step)
    loop {
        for mantissa in [1.0, 2.0, 5.0] {
            let step = mantissa * 10f64.powf(exponent);
            if step < min_step * (1.0 - EPSILON) {
                continue;
            }
            if let Some((slop, best_step)) = best
                && step * DIVISORS[0] >= 2.0 * slop + variance
            {
                return best_step;
            }
            for divisor in DIVISORS {
                let bottom = step * (min / step + EPSILON).floor();
                let top = bottom + step * divisor;
                if top >= max - EPSILON * step {
                    let slop = (top - max).max(min - bottom);
                    if best.is_none_or(|(best_slop, _)| slop < best_slop) {
                        best = Some((slop, step));
                    }
                }
            }
        }
        exponent += 1.0;
    }
}

/// `format_units` with the si system: the value scaled by the largest prefix
/// that both it and the step reach.
pub(super) fn format_units(v: f64, step: f64) -> (f64, &'static str) {
    let whole = |x: f64| if x - x.floor() < 1e-11 && v > 1.0 { x.floor() } else { x };
    match SI_UNITS.iter().find(|(_, size)| v.abs() >= *size && step >= *size) {
        Some((prefix, size)) => (whole(v / size), prefix),
        None => (whole(v), ""),
    }
}

/// `makeLabel` (values are always floats there, hence `%.1f` for big spans).
pub(super) fn make_label(value: f64, step: f64, span: f64) -> String {
    let (v, prefix) = format_units(value, step);
    let (span, span_prefix) = format_units(span, step);
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix} ") };
    if v < 0.1 {
        format!("{} {prefix}", fmt_g(v))
    } else if v < 1.0 {
        format!("{v:.2} {prefix}")
    } else if span > 3.0 || span_prefix != prefix {
        format!("{v:.1} {prefix}")
    } else if span > 0.1 {
        format!("{v:.2} {prefix}")
    } else {
        format!("{} {prefix}", fmt_g(v))
    }
}

/// Python's `"%g" % v`: 6 significant digits, trailing zeros dropped,
/// exponent form below 1e-4 and from 1e6.
pub(super) fn fmt_g(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |s: &str| s.trim_end_matches('0').trim_end_matches('.').to_string();
    if (-4..6).contains(&exponent) {
        trim(&format!("{v:.*}", (5 - exponent) as usize))
    } else {
        format!("{}e{}{:02}", trim(mantissa), if exponent < 0 { '-' } else { '+' }, exponent.abs())
    }
}

pub(super) const SEC: i64 = 1;
pub(super) const MIN: i64 = 60;
pub(super) const HOUR: i64 = 3600;
pub(super) const DAY: i64 = 86400;

/// One row of glyph.py's `xAxisConfigs`: grid and label spacing as (unit, step).
pub(super) struct XConf {
    pub(super) seconds: f64,
    pub(super) minor: (i64, f64),
    pub(super) major: (i64, f64),
    pub(super) label: (i64, f64),
    pub(super) format: &'static str,
    pub(super) max_interval: i64,
}

pub(super) const fn xc(
    seconds: f64,
    minor: (i64, f64),
    major: (i64, f64),
    label: (i64, f64),
    format: &'static str,
    max_interval: i64,
) -> XConf {
    XConf { seconds, minor, major, label, format, max_interval }
}

/// glyph.py's `xAxisConfigs` (DATE_FORMAT `%m/%d`).
pub(super) const X_CONFS: [XConf; 23] = [
    xc(0.0, (SEC, 5.0), (MIN, 1.0), (SEC, 5.0), "%H:%M:%S", 10 * MIN),
    xc(0.07, (SEC, 10.0), (MIN, 1.0), (SEC, 10.0), "%H:%M:%S", 20 * MIN),
    xc(0.14, (SEC, 15.0), (MIN, 1.0), (SEC, 15.0), "%H:%M:%S", 30 * MIN),
    xc(0.27, (SEC, 30.0), (MIN, 2.0), (MIN, 1.0), "%H:%M", 2 * HOUR),
    xc(0.5, (MIN, 1.0), (MIN, 2.0), (MIN, 1.0), "%H:%M", 2 * HOUR),
    xc(1.2, (MIN, 1.0), (MIN, 4.0), (MIN, 2.0), "%H:%M", 3 * HOUR),
    xc(2.0, (MIN, 1.0), (MIN, 10.0), (MIN, 5.0), "%H:%M", 6 * HOUR),
    xc(5.0, (MIN, 2.0), (MIN, 10.0), (MIN, 10.0), "%H:%M", 12 * HOUR),
    xc(10.0, (MIN, 5.0), (MIN, 20.0), (MIN, 20.0), "%H:%M", DAY),
    xc(30.0, (MIN, 10.0), (HOUR, 1.0), (HOUR, 1.0), "%H:%M", 2 * DAY),
    xc(60.0, (MIN, 30.0), (HOUR, 2.0), (HOUR, 2.0), "%H:%M", 2 * DAY),
    xc(100.0, (HOUR, 2.0), (HOUR, 4.0), (HOUR, 4.0), "%a %H:%M", 6 * DAY),
    xc(255.0, (HOUR, 6.0), (HOUR, 12.0), (HOUR, 12.0), "%m/%d %H:%M", 10 * DAY),
    xc(600.0, (HOUR, 6.0), (DAY, 1.0), (DAY, 1.0), "%m/%d", 14 * DAY),
    xc(1000.0, (HOUR, 12.0), (DAY, 1.0), (DAY, 1.0), "%m/%d", 365 * DAY),
    xc(2000.0, (DAY, 1.0), (DAY, 2.0), (DAY, 2.0), "%m/%d", 365 * DAY),
    xc(4000.0, (DAY, 2.0), (DAY, 4.0), (DAY, 4.0), "%m/%d", 365 * DAY),
    xc(8000.0, (DAY, 3.5), (DAY, 7.0), (DAY, 7.0), "%m/%d", 365 * DAY),
    xc(16000.0, (DAY, 7.0), (DAY, 14.0), (DAY, 14.0), "%m/%d", 365 * DAY),
    xc(32000.0, (DAY, 15.0), (DAY, 30.0), (DAY, 30.0), "%m/%d", 365 * DAY),
    xc(64000.0, (DAY, 30.0), (DAY, 60.0), (DAY, 60.0), "%m/%d %Y", i64::MAX),
    xc(100000.0, (DAY, 60.0), (DAY, 120.0), (DAY, 120.0), "%m/%d %Y", i64::MAX),
    xc(120000.0, (DAY, 120.0), (DAY, 240.0), (DAY, 240.0), "%m/%d %Y", i64::MAX),
];

/// The time axis (UTC): glyph.py's `setupXAxis`.
pub(super) struct XAxis {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) xmin: f64,
    /// Pixels per second.
    pub(super) scale: f64,
    pub(super) conf: &'static XConf,
}

impl XAxis {
    pub(super) fn new(start: i64, end: i64, xmin: f64, graph_width: f64) -> XAxis {
        let range = (end - start) as f64;
        let per_pixel = range / graph_width;
        let conf = X_CONFS.iter().rev().find(|c| c.seconds <= per_pixel && c.max_interval as f64 >= range).unwrap_or(&X_CONFS[22]);
        XAxis { start, end, xmin, scale: graph_width / range, conf }
    }

    pub(super) fn x(&self, t: i64) -> f64 {
        self.xmin + (t - self.start) as f64 * self.scale
    }

    /// `find_x_times`: the first multiple of step (counted within the next
    /// larger unit) at or after the start, then every step until the end.
    pub(super) fn ticks(&self, unit: i64, step: f64) -> impl Iterator<Item = i64> + use<> {
        let t = self.start;
        let delta = (step * unit as f64) as i64;
        let step = step as i64;
        let mut first = match unit {
            SEC => t - t.rem_euclid(MIN) % step,
            MIN => t - t.rem_euclid(MIN) - (t.rem_euclid(HOUR) / MIN % step) * MIN,
            HOUR => t - t.rem_euclid(HOUR) - (t.rem_euclid(DAY) / HOUR % step) * HOUR,
            _ => t - t.rem_euclid(DAY),
        };
        if first < t {
            first += (t - first + delta - 1) / delta * delta;
        }
        let end = self.end;
        (0..).map(move |i| first + i * delta).take_while(move |x| *x < end)
    }
}

/// The subset of strftime that `xAxisConfigs` uses, in UTC.
pub(super) fn strftime(t: i64, format: &str) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = t.div_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let s = t.rem_euclid(DAY);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('H') => out.push_str(&format!("{:02}", s / HOUR)),
            Some('M') => out.push_str(&format!("{:02}", s / MIN % 60)),
            Some('S') => out.push_str(&format!("{:02}", s % 60)),
            Some('a') => out.push_str(WEEKDAYS[days.rem_euclid(7) as usize]),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('Y') => out.push_str(&format!("{y}")),
            other => out.extend(other),
        }
    }
    out
}
