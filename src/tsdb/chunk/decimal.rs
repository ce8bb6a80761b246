//! Which exact decimal (or rational) form a chunk's values take: the integer
//! and rational modes of the chunk format (see the parent module's docs). Pure
//! arithmetic on f64 bits; it decides nothing about how the integers are then
//! laid out in bytes.

use super::{MAX_DIVISOR, MAX_SCALE, MAX_SCALED, MAX_SCALED_INT, POW10, zigzag_encode};

/// The smallest decimal scale at which every value is an integer that scales back
/// bit-exactly, with those integers; `None` sends the chunk to float mode.
pub(super) fn scale_to_integers(points: &[(u32, f64)]) -> Option<(usize, Vec<i64>)> {
    let mut scale = 0;
    let mut ints = Vec::with_capacity(points.len());
    'scales: loop {
        ints.clear();
        for &(_, v) in points {
            match scaled(v, scale) {
                Some(i) => ints.push(i),
                None => {
                    // Every scale below the new one fails for this value, so the
                    // result stays the smallest; the scale only grows, so this ends.
                    scale = (scale + 1..=MAX_SCALE).find(|&s| scaled(v, s).is_some())?;
                    continue 'scales;
                }
            }
        }
        return Some((scale, ints));
    }
}

/// Rational mode's three value streams (see the module docs).
pub(super) struct Rationals {
    pub scale: usize,
    pub ints: Vec<i64>,
    pub divisors: Vec<u64>,
    pub corrections: Vec<u64>,
}

/// Like [`scale_to_integers`], with a divisor and a correction per value: each
/// value is `(integer / 10^scale) / k` for some k in 1..=MAX_DIVISOR, moved by the
/// correction's ulps. `None` when the chunk looks like floats: its first values
/// fit nothing, or half of them need a correction.
///
/// The integers should be alike from value to value, as deltas code them, so
/// the chunk settles on one denominator `10^scale * k` rather than each value's
/// own smallest: the average of six 2-decimal values is N / 600, which reduces
/// to N / 75 or N / 200 for some N but is always (N / 10^2) / 6. The
/// denominator is the least common multiple of the smallest ones of the first
/// values (when that stays within MAX_DIVISOR). A value off it by a few ulps
/// (a float sum's rounding) takes a correction; one far off (a window one point
/// short) is searched for, and its divisor is tried on later values too.
pub(super) fn scale_to_rationals(points: &[(u32, f64)]) -> Option<Rationals> {
    /// Values sampled for the denominator.
    const SAMPLE: usize = 8;
    /// Full searches (MAX_SCALE * MAX_DIVISOR tries, ~10 us) that may fail
    /// before the chunk stops searching and corrects every misfit.
    const SEARCHES: usize = 3;
    /// Failed searches for another divisor (MAX_DIVISOR tries, ~1 us each) before
    /// the chunk corrects every misfit.
    const REFITS: usize = 16;
    /// A correction of at most this many ulps is cheaper than a new divisor.
    const SMALL_ULPS: u64 = 64;

    let mut failed = 0;
    let mut search = |v: f64| {
        if failed >= SEARCHES {
            return None;
        }
        let hit = search_order().iter().find_map(|&(s, k)| rational(v, s, k).map(|_| (s, k)));
        failed += usize::from(hit.is_none());
        hit
    };
    // The sample's common denominator, as (scale, divisor).
    let mut common: Option<(usize, u64)> = None;
    for &(_, v) in points.iter().take(SAMPLE) {
        let Some((s, k)) = search(v) else { continue };
        common = Some(match common {
            None => (s, k),
            Some((cs, ck)) => {
                // Denominators m = k * 10^s; their lcm, split back into 10^scale * k.
                let (a, b) = (ck * 10u64.pow(cs as u32), k * 10u64.pow(s as u32));
                let (mut scale, mut k) = (0, a / gcd(a, b) * b);
                while k % 10 == 0 && scale < MAX_SCALE {
                    (scale, k) = (scale + 1, k / 10);
                }
                if k <= MAX_DIVISOR { (scale, k) } else { (cs, ck) }
            }
        });
    }
    let (scale, primary) = common?;
    let (mut secondary, mut refits) = (primary, 0);
    let mut out = Rationals {
        scale,
        ints: Vec::with_capacity(points.len()),
        divisors: Vec::with_capacity(points.len()),
        corrections: Vec::with_capacity(points.len()),
    };
    let ulps = |v: f64, i: i64, k: u64| zigzag_encode(v.to_bits().wrapping_sub(((i as f64 / POW10[scale]) / k as f64).to_bits()) as i64);
    for &(_, v) in points {
        let exact = [primary, secondary].into_iter().find_map(|k| rational(v, scale, k).map(|i| (i, k)));
        let (i, k) = exact
            .or_else(|| {
                let near = nearest(v, scale, primary);
                if ulps(v, near, primary) <= 2 * SMALL_ULPS {
                    // (zigzag doubles the magnitude)
                    return Some((near, primary));
                }
                // Another divisor at this scale (a window short of points), tried on later values too.
                if refits >= REFITS {
                    return None;
                }
                let hit = (1..=MAX_DIVISOR).find_map(|k| rational(v, scale, k).map(|i| (i, k)));
                refits += usize::from(hit.is_none());
                secondary = hit?.1;
                hit
            })
            .unwrap_or_else(|| {
                // The divisor with the smaller correction.
                let (a, b) = (nearest(v, scale, primary), nearest(v, scale, secondary));
                if ulps(v, a, primary) <= ulps(v, b, secondary) { (a, primary) } else { (b, secondary) }
            });
        out.ints.push(i);
        out.divisors.push(k);
        out.corrections.push(ulps(v, i, k));
    }
    let corrected = out.corrections.iter().filter(|&&c| c != 0).count();
    (corrected * 2 <= points.len()).then_some(out)
}

/// The integer nearest `v * k * 10^scale` within +-2^53 (0 for NaN).
fn nearest(v: f64, scale: usize, k: u64) -> i64 {
    // `as` saturates and maps NaN to 0; the clamp keeps decode's range check happy.
    ((v * k as f64 * POW10[scale]).round() as i64).clamp(-MAX_SCALED_INT, MAX_SCALED_INT)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Every (scale, divisor) pair, smallest denominator `k * 10^scale` first, and
/// on a tie the finer scale: 20.05 is 2005 / 10^2 / 1, not 401 / 10^1 / 2.
fn search_order() -> &'static [(usize, u64)] {
    static ORDER: std::sync::OnceLock<Vec<(usize, u64)>> = std::sync::OnceLock::new();
    ORDER.get_or_init(|| {
        let mut pairs: Vec<(usize, u64)> = (0..=MAX_SCALE).flat_map(|s| (1..=MAX_DIVISOR).map(move |k| (s, k))).collect();
        pairs.sort_by_key(|&(s, k)| (k * 10u64.pow(s as u32), std::cmp::Reverse(s)));
        pairs
    })
}

/// `v` as an integer over `10^scale * k`, if `decode`'s two divisions bring back
/// its exact bits.
fn rational(v: f64, scale: usize, k: u64) -> Option<i64> {
    let p = POW10[scale];
    let kf = k as f64;
    let r = (v * kf * p).round();
    if r.is_nan() || r.abs() > MAX_SCALED {
        return None;
    }
    let i = r as i64;
    // v * k * 10^scale is rounded twice, so the integer may be one off.
    [i, i - 1, i + 1].into_iter().find(|&i| i.abs() <= MAX_SCALED_INT && ((i as f64 / p) / kf).to_bits() == v.to_bits())
}

/// `v` times 10^scale as an integer within +-2^53, if dividing it back by 10^scale
/// (what `decode` does) gives `v`'s exact bits. Rejects NaN, infinities and -0.0
/// (which comes back as +0.0).
fn scaled(v: f64, scale: usize) -> Option<i64> {
    let p = POW10[scale];
    let r = (v * p).round();
    if r.is_nan() || r.abs() > MAX_SCALED {
        return None;
    }
    let i = r as i64;
    ((i as f64 / p).to_bits() == v.to_bits()).then_some(i)
}
