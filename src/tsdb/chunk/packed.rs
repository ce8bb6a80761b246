//! The packed layout of an integer- or rational-mode chunk: each stream is
//! frame-of-reference bit-packed, that is written as its minimum and then, for
//! every value, its distance from that minimum in the same number of bits.
//!
//! Deflate codes the varint layout byte by byte with one Huffman table for all
//! of a varint's bytes, so a value spread evenly over a range pays for the
//! continuation bits and for mixing high and low bytes: 2.87 bytes a point on
//! uniform 3-decimal timings, whose entropy is 2.35. Packing pays the range's
//! bit width and nothing else (2.38 there), decodes with shifts instead of an
//! inflate, and loses to deflate wherever values repeat or cluster (gauges
//! walking in small steps, counters), so the encoder keeps whichever is smaller.
//! This module owns only that layout; which decimal form the values take is
//! `decimal.rs`'s, and the choice between layouts is the parent's.
//!
//! # Layout (after the format byte, whose low nibble is [`PACKED`])
//!
//! ```text
//! format byte  bits 3-0  14
//!              bits 5-4  order: 0 values as they are, 1 first differences,
//!                        2 differences of those
//!              bit 7     rational mode (divisor and correction streams follow)
//!              bit 6     the differences' frame has a common factor
//! u8           decimal scale, 0..=9
//! varint       n >= 1, the point count
//! varint       the first slot
//! frame        the n - 1 slot gaps (unsigned)
//! varints      the order's heads, zigzag: none (order 0), x0 (order 1),
//!              x0 and x1 - x0 (order 2), as many as there are points
//! frame        the remaining n - heads differences (signed); with bit 6 a
//!              factor frame
//! frame        rational mode only: the n divisors minus 1 (unsigned)
//! frame        rational mode only: the n corrections, zigzag-coded (unsigned)
//!
//! frame        varint base (the minimum; zigzag-coded in a signed stream),
//!              u8 width 0..=64, then ceil(len * width / 8) bytes: value i's
//!              distance from the base in bits [i * width, (i + 1) * width),
//!              least significant bit first
//! factor frame varint base, varint factor f >= 2, then as a frame: value i's
//!              distance from the base is f times the number packed
//! ```
//!
//! The factor is the greatest common divisor of the distances. Values counted
//! in pages or KiB (`/proc/meminfo`'s, written in bytes) move by multiples of
//! 1024 or 4096: on a real host's metrics (`servers.*` and `instantops.*`,
//! 10 s, BENCHMARKS.md) it took the packed values from 1.44 to 1.17 bytes a
//! point, and the fifteen series it helped most from 1.9-4.0 to 0.25-2.5.
//! A frame keeps its factor only where that makes it smaller.

use super::decimal::Rationals;
use super::{ChunkError, MAX_INFLATE_RATIO, MAX_SCALE, Reader, put_varint, varint_len, zigzag_decode, zigzag_encode};

/// The format byte's low nibble for this layout: past float mode's 15 would not
/// fit, and 10..=14 were left free for layouts like this one.
pub(super) const PACKED: u8 = 0x0E;
const ORDER_SHIFT: u8 = 4;
const ORDER_MASK: u8 = 0x30;
const RATIONAL: u8 = super::RATIONAL;
/// The format bit of a factor frame; deflated bodies never reach this layout.
const FACTORED: u8 = super::DEFLATED;
/// Maps an i64 onto u64 keeping its order, so a signed stream's minimum and
/// range are found with unsigned arithmetic.
const SIGN: u64 = 1 << 63;
/// The widest frame: a distance between two u64 keys.
const MAX_WIDTH: u8 = 64;
/// A constant stream packs to no bits at all, so the count alone does not bound
/// the output: like an inflated body, a packed chunk may expand at most
/// deflate's ceiling, 1032 points per input byte.
const MAX_POINTS_PER_BYTE: u64 = MAX_INFLATE_RATIO;

/// The smallest packed encoding of `points` (the whole chunk, format byte first)
/// over the three orders. `ints` are the points' values at `scale` (with
/// `rationals`' divisors and corrections in rational mode).
pub(super) fn encode(points: &[(u32, f64)], scale: usize, ints: &[i64], rationals: Option<&Rationals>) -> Vec<u8> {
    debug_assert!(!points.is_empty() && points.len() == ints.len());
    let gaps: Vec<u64> = points.windows(2).map(|w| u64::from(w[1].0.wrapping_sub(w[0].0).wrapping_sub(1))).collect();
    let (order, heads, rest, factor) = (0..=2u8)
        .map(|order| {
            let (heads, rest) = split(ints, order);
            let keys: Vec<u64> = rest.iter().map(|&x| key(x)).collect();
            // A factor of 2 or 3 on a few values can cost more than it saves.
            let plain = frame_len(&keys, true);
            let factor = common_factor(&keys);
            let (factor, len) = match (factor > 1).then(|| factored_frame_len(&keys, factor)) {
                Some(len) if len < plain => (factor, len),
                _ => (1, plain),
            };
            let heads_len: usize = heads.iter().map(|&h| varint_len(zigzag_encode(h))).sum();
            (order, heads, keys, factor, heads_len + len)
        })
        .min_by_key(|&(.., len)| len)
        .map(|(order, heads, keys, factor, _)| (order, heads, keys, factor))
        .expect("three orders");

    let mut out = Vec::with_capacity(16 + ints.len() * 3);
    let factored = if factor > 1 { FACTORED } else { 0 };
    out.push(PACKED | order << ORDER_SHIFT | factored | if rationals.is_some() { RATIONAL } else { 0 });
    // MAX_SCALE fits a byte.
    out.push(scale as u8);
    put_varint(&mut out, points.len() as u64);
    put_varint(&mut out, u64::from(points[0].0));
    put_frame(&mut out, &gaps, false);
    for h in heads {
        put_varint(&mut out, zigzag_encode(h));
    }
    put_factored_frame(&mut out, &rest, factor);
    if let Some(r) = rationals {
        put_frame(&mut out, &r.divisors.iter().map(|k| k - 1).collect::<Vec<_>>(), false);
        put_frame(&mut out, &r.corrections, false);
    }
    out
}

/// The heads and the stream of differences that `order` splits `ints` into.
fn split(ints: &[i64], order: u8) -> (Vec<i64>, Vec<i64>) {
    let heads = usize::from(order).min(ints.len());
    let mut diffs = ints.to_vec();
    // Each pass differences everything after its own head; values are within
    // +-2^53, so two passes stay within +-2^55.
    for pass in 0..heads {
        for i in (pass + 1..diffs.len()).rev() {
            diffs[i] -= diffs[i - 1];
        }
    }
    let rest = diffs.split_off(heads);
    (diffs, rest)
}

/// The integers (before scaling) and, in rational mode, the divisors and
/// corrections of a packed chunk; `rest` is everything after the format byte.
pub(super) struct Decoded {
    pub slots: Vec<u32>,
    pub scale: usize,
    pub ints: Vec<i64>,
    pub rational: Option<(Vec<u64>, Vec<u64>)>,
}

pub(super) fn decode(tag: u8, rest: &[u8]) -> Result<Decoded, ChunkError> {
    let order = (tag & ORDER_MASK) >> ORDER_SHIFT;
    if order > 2 {
        return Err(ChunkError::UnknownFormat(tag));
    }
    let mut reader = Reader { bytes: rest, pos: 0 };
    let scale = usize::from(reader.byte("decimal scale")?);
    if scale > MAX_SCALE {
        return Err(ChunkError::UnknownScale(scale));
    }
    let count = reader.varint("point count")?;
    let max = (rest.len() as u64).saturating_mul(MAX_POINTS_PER_BYTE);
    if count == 0 {
        return Err(ChunkError::EmptyPacked);
    }
    if count > max {
        return Err(ChunkError::CountTooLarge { count, len: rest.len(), max });
    }
    // count <= 1032 * input bytes, so every allocation below is bounded by the input.
    let n = usize::try_from(count).map_err(|_| ChunkError::CountTooLarge { count, len: rest.len(), max })?;

    let first = reader.varint("first slot")?;
    let mut slot = u32::try_from(first).map_err(|_| ChunkError::SlotOutOfRange { slot: first })?;
    let mut slots = Vec::with_capacity(n);
    slots.push(slot);
    for gap in read_frame(&mut reader, n - 1, false, "slot gaps")? {
        let next = u64::from(slot).saturating_add(gap).saturating_add(1);
        slot = u32::try_from(next).map_err(|_| ChunkError::SlotOutOfRange { slot: next })?;
        slots.push(slot);
    }

    let heads = usize::from(order).min(n);
    let mut ints = Vec::with_capacity(n);
    for _ in 0..heads {
        ints.push(zigzag_decode(reader.varint("head value")?));
    }
    let values = match tag & FACTORED {
        0 => read_frame(&mut reader, n - heads, true, "values")?,
        _ => read_factored_frame(&mut reader, n - heads)?,
    };
    ints.extend(values.into_iter().map(|k| (k ^ SIGN) as i64));
    // Undo the passes of `split`, innermost last, checking every sum.
    for pass in (0..heads).rev() {
        for i in pass + 1..n {
            ints[i] = ints[i].checked_add(ints[i - 1]).ok_or(ChunkError::ValueOutOfRange { index: i })?;
        }
    }

    let rational = if tag & RATIONAL != 0 {
        let divisors = read_frame(&mut reader, n, false, "divisors")?;
        let corrections = read_frame(&mut reader, n, false, "corrections")?;
        Some((divisors, corrections))
    } else {
        None
    };
    let trailing = rest.len() - reader.pos;
    if trailing != 0 {
        return Err(ChunkError::CountMismatch { count, trailing });
    }
    Ok(Decoded { slots, scale, ints, rational })
}

/// An i64 as an order-preserving u64.
fn key(x: i64) -> u64 {
    x as u64 ^ SIGN
}

/// The minimum of `keys` and the bits each distance from it takes.
fn frame(keys: &[u64]) -> (u64, u8) {
    let min = keys.iter().copied().min().unwrap_or(0);
    let max = keys.iter().copied().max().unwrap_or(0);
    // At most 64, so the cast keeps it.
    (min, (64 - (max - min).leading_zeros()) as u8)
}

/// A frame's base as written: zigzag-coded in a signed stream, so a small
/// negative minimum takes a byte or two, not ten.
fn base_field(base: u64, signed: bool) -> u64 {
    if signed { zigzag_encode((base ^ SIGN) as i64) } else { base }
}

fn frame_len(keys: &[u64], signed: bool) -> usize {
    let (base, width) = frame(keys);
    varint_len(base_field(base, signed)) + 1 + (keys.len() * usize::from(width)).div_ceil(8)
}

fn put_frame(out: &mut Vec<u8>, keys: &[u64], signed: bool) {
    let (base, width) = frame(keys);
    put_varint(out, base_field(base, signed));
    out.push(width);
    // width <= 64 and fewer than 8 bits wait, so the accumulator never overflows.
    let (mut acc, mut bits) = (0u128, 0u32);
    for &k in keys {
        acc |= u128::from(k - base) << bits;
        bits += u32::from(width);
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// The greatest common divisor of the signed keys' distances from their
/// minimum (0 when they are all equal, 1 when they share no factor).
fn common_factor(keys: &[u64]) -> u64 {
    let (base, _) = frame(keys);
    keys.iter().fold(0, |g, &k| gcd(g, k - base))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What [`put_factored_frame`] writes with `factor` >= 2, counted without
/// dividing: the quotients' frame has base 0 and the width of the largest.
fn factored_frame_len(keys: &[u64], factor: u64) -> usize {
    let (base, _) = frame(keys);
    let max = keys.iter().copied().max().unwrap_or(base) - base;
    let quotient_width = 64 - (max / factor).leading_zeros() as usize;
    varint_len(base_field(base, true)) + varint_len(factor) + 1 + 1 + (keys.len() * quotient_width).div_ceil(8)
}

/// The signed `keys` as a plain frame, or with `factor` >= 2 (a divisor of
/// every distance from their minimum) as a factor frame.
fn put_factored_frame(out: &mut Vec<u8>, keys: &[u64], factor: u64) {
    if factor < 2 {
        return put_frame(out, keys, true);
    }
    let (base, _) = frame(keys);
    put_varint(out, base_field(base, true));
    put_varint(out, factor);
    let quotients: Vec<u64> = keys.iter().map(|&k| (k - base) / factor).collect();
    put_frame(out, &quotients, false);
}

/// Reads a factor frame of `len` signed values, as keys.
fn read_factored_frame(reader: &mut Reader<'_>, len: usize) -> Result<Vec<u64>, ChunkError> {
    const WHAT: &str = "factored values";
    let base = (zigzag_decode(reader.varint(WHAT)?) as u64) ^ SIGN;
    let factor = reader.varint(WHAT)?;
    if factor < 2 {
        return Err(ChunkError::BadFactor { factor });
    }
    read_frame(reader, len, false, WHAT)?
        .into_iter()
        .enumerate()
        .map(|(index, q)| q.checked_mul(factor).and_then(|d| base.checked_add(d)).ok_or(ChunkError::ValueOutOfRange { index }))
        .collect()
}

/// Reads a frame of `len` values; a signed stream's values come back as keys.
fn read_frame(reader: &mut Reader<'_>, len: usize, signed: bool, what: &'static str) -> Result<Vec<u64>, ChunkError> {
    let field = reader.varint(what)?;
    let base = if signed { (zigzag_decode(field) as u64) ^ SIGN } else { field };
    let width = reader.byte(what)?;
    if width > MAX_WIDTH {
        return Err(ChunkError::BadWidth { what, width });
    }
    // len <= 1032 * input bytes and width <= 64: no overflow.
    let bytes = reader.take((len * usize::from(width)).div_ceil(8), what)?;
    let mask = if width == MAX_WIDTH { u64::MAX } else { (1u64 << width) - 1 };
    let (mut acc, mut bits, mut next) = (0u128, 0u32, bytes.iter());
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        while bits < u32::from(width) {
            // The length check above guarantees the bytes are there.
            acc |= u128::from(*next.next().expect("frame bytes checked")) << bits;
            bits += 8;
        }
        out.push(base.wrapping_add(acc as u64 & mask));
        acc >>= width;
        bits -= u32::from(width);
    }
    Ok(out)
}
