//! The byte encoding of one chunk: the points of one series in one archive over
//! one time window, as a sorted list of `(slot, value)` where `slot` is the point's
//! aligned timestamp divided by the archive step, minus the chunk's first slot.
//!
//! It owns the format and its compactness (about half a byte per point on a
//! 2-decimal gauge, see the `bytes_per_point` test) and decodes arbitrary bytes
//! without panicking and with allocation bounded by the input. It knows nothing of
//! keys, windows, series names, RocksDB or of what a slot means in seconds: the
//! store decides what goes into a chunk and where the chunk lives.
//!
//! # Format
//!
//! ```text
//! byte 0      format byte
//!             bit 7    integer mode: the body ends with a divisor per value
//!                      (rational mode); never set in float mode
//!             bit 6    the body is raw-deflated (RFC 1951), else stored as is
//!                      (in the packed layout, `packed.rs`: a common factor)
//!             bit 5    integer mode: differences are zigzag-coded (else they
//!                      are all >= 0 and stored as plain unsigned varints)
//!             bit 4    integer mode: values are delta-of-delta coded (else delta)
//!             bits 3-0 0..=9: integer mode with that decimal scale;
//!                      15: float mode (bits 5 and 4 then 0); 10..=14 reserved
//! varint      n, the point count; n = 0 ends the chunk
//! body        raw or deflated, exactly these n + n varints (4n in rational
//!             mode):
//!   slots     the first slot, then n - 1 gaps, each `slot - previous slot - 1`
//!   values    integer mode: the values scaled by 10^scale to integers within
//!             +-2^53, as first differences (delta) or differences of those
//!             (delta-of-delta), the value before the first taken as 0;
//!             float mode: each value's IEEE bits XOR the previous value's
//!             bits (the first XOR 0), as an unsigned varint
//!   divisors  rational mode only: each value's divisor k minus 1, k <= 256
//!   fixes     rational mode only: each value's correction c, zigzag-coded;
//!             the value's bits, as an integer, are those of
//!             `(integer / 10^scale) / k` (two f64 divisions) plus c (wrapping),
//!             which is c ulps away for values of one sign
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes).
//!
//! Choices, each measured (numbers in the `bytes_per_point` test and on
//! `DEFLATE_LEVEL`):
//! - Slot and value streams are kept apart so that deflate sees runs of alike
//!   bytes: a dense chunk's slot stream is all zeros and costs a few bytes.
//! - Slots are stored as gaps, not delta-of-delta: both are all zeros on dense
//!   runs, but an isolated missing slot is one nonzero gap against two nonzero
//!   delta-of-deltas (deflated, 13% smaller with 10% of slots missing, 16% with
//!   50%), and gaps cannot decode to unsorted slots.
//! - The encoder builds both the delta and the delta-of-delta body and keeps
//!   the smaller once deflated. Raw varint size is no guide: a smooth sine's two
//!   bodies are 1441 and 1442 bytes raw but deflate to 350 and 185, and over
//!   2,000 generated chunks of ten shapes picking by raw size cost 2.6% more.
//! - Decimal detection is exact, not approximate: a value goes to integer mode
//!   only if `decode`'s own division brings back its bits, so -0.0, NaN,
//!   infinities, subnormals and integers past 2^53 send the chunk to float mode.
//! - Rational mode exists for averages. A rollup archive's average (whisper's
//!   `sum / count`) or a statsd timer's mean of decimal inputs is almost never
//!   a short decimal, so it sent whole chunks to float mode at 4-8 bytes a
//!   point. Written as an integer over `10^scale * k`, with k the window's
//!   point count (a constant run that deflate all but erases), it codes like
//!   its inputs: 3.76 against 7.24 bytes a point on 1-minute averages of
//!   3-decimal noise, 1.71 against 5.35 on those of a 2-decimal walk, 3.10
//!   against 4.04 on statsd timer means (`bytes_per_point`); an encoder that
//!   knew each window's count did 3.57 and 1.64. Chunks of such values take
//!   130-190 us to encode against 45-75 us for decimal ones. The float sum
//!   before the division is sometimes an ulp off the decimal sum, so such a
//!   value keeps the nearest integer and a correction in ulps (a difference of
//!   bit patterns, not an XOR, which flips every mantissa bit between 20.75
//!   and the float just below it). It is exact: `decode`'s own arithmetic
//!   gives the bits the correction fixes.
//! - Float mode XORs with the previous value and trims leading zeros by the
//!   varint; on 720-point chunks that beat byte planes (shuffling each value's
//!   bytes into 8 streams) on statsd timer means (4.04 against 4.66-5.44 bytes a
//!   point) and lost on uniform noise (7.50 against 7.04-7.07), the worse case
//!   for planes being the commoner data.

use std::borrow::Cow;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use decimal::{Rationals, scale_to_integers, scale_to_rationals};

mod decimal;
mod packed;

/// Why a byte string is not a chunk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChunkError {
    #[error("cannot decode chunk: the input ends inside the {what}")]
    Truncated { what: &'static str },
    #[error("cannot decode chunk: the varint for the {what} is longer than 10 bytes or overflows 64 bits")]
    BadVarint { what: &'static str },
    #[error("cannot decode chunk: unknown format byte 0x{0:02x}")]
    UnknownFormat(u8),
    #[error("cannot decode chunk: inflate failed: {0}")]
    Inflate(String),
    #[error("cannot decode chunk: it claims {count} points but its {len} body bytes can hold at most {max}")]
    CountTooLarge { count: u64, len: usize, max: u64 },
    #[error("cannot decode chunk: {trailing} bytes left over after the {count} points it claims")]
    CountMismatch { count: u64, trailing: usize },
    #[error("cannot decode chunk: slot {slot} does not fit in 32 bits")]
    SlotOutOfRange { slot: u64 },
    #[error("cannot decode chunk: point {index}'s scaled integer leaves +-2^53")]
    ValueOutOfRange { index: usize },
    #[error("cannot decode chunk: divisor {divisor} is past the largest, {MAX_DIVISOR}")]
    DivisorOutOfRange { divisor: u64 },
    #[error("cannot decode chunk: a packed chunk holds no points (an empty chunk is not packed)")]
    EmptyPacked,
    #[error("cannot decode chunk: decimal scale {0} is past the largest, {MAX_SCALE}")]
    UnknownScale(usize),
    #[error("cannot decode chunk: the {what} are packed {width} bits wide, past 64")]
    BadWidth { what: &'static str, width: u8 },
    #[error("cannot decode chunk: a factor frame's factor is {factor}, below 2")]
    BadFactor { factor: u64 },
}

/// Format byte bits; see the module docs.
const RATIONAL: u8 = 0x80;
const DEFLATED: u8 = 0x40;
const ZIGZAG: u8 = 0x20;
const DELTA_OF_DELTA: u8 = 0x10;
const SCALE_MASK: u8 = 0x0F;
/// The low nibble that marks float mode: past the largest scale, 9, with room between.
const FLOAT_MODE: u8 = 0x0F;

/// Largest decimal scale tried: 10^9 keeps nanounit resolution and still leaves
/// values up to 2^53 / 10^9 (about 9 million) in integer mode.
const MAX_SCALE: usize = 9;
/// 10^0 ..= 10^9, each exact as an f64; decoding divides by them.
const POW10: [f64; MAX_SCALE + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Integers up to 2^53 are exact in an f64, so scaling them back loses nothing.
const MAX_SCALED_INT: i64 = 1 << 53;
const MAX_SCALED: f64 = MAX_SCALED_INT as f64;

/// Deflate level, measured on 720-point chunks (see `bytes_per_point`): bytes per
/// point at levels 1 / 6 / 9, then encode time per chunk with the compressor's
/// setup left out (it adds 30-60 us whatever the level):
/// 2-decimal gauge  0.526 / 0.537 / 0.537   31 / 40 / 42 us
/// integer counter  0.894 / 0.890 / 0.890   26 / 38 / 38 us
/// constant         0.040 / 0.033 / 0.036   22 / 22 / 29 us
/// noisy floats     7.514 / 7.524 / 7.524   51 / 68 / 69 us
/// timer means      4.325 / 4.061 / 4.058   28 / 99 / 121 us
/// Level 9 buys nothing over 6. Level 1 is 2% smaller on gauges but 6% larger on
/// timer means, and float series cost 4-8 bytes a point against 0.5-1 for decimal
/// ones, so they weigh most on disk; a chunk is encoded once, at compaction, where
/// level 6's 7-10 M points/s (setup included) is ample, and decoding is as fast
/// at every level.
const DEFLATE_LEVEL: u32 = 6;
/// zlib's documented ceiling on the deflate expansion ratio (a 258-byte match per
/// two bits, rounded up): no valid stream inflates past 1032 times its size.
const MAX_INFLATE_RATIO: u64 = 1032;
/// The fewest raw body bytes a point takes: a 1-byte slot varint and a 1-byte value varint.
const MIN_POINT_BYTES: u64 = 2;
/// The most raw body bytes a point takes: a 5-byte slot varint (32 bits) and a 10-byte value varint (64 bits),
/// plus in rational mode a divisor varint of up to 2 bytes (divisors stay within `MAX_DIVISOR`) and a
/// correction varint.
const MAX_POINT_BYTES: u64 = 15;
const MAX_RATIONAL_POINT_BYTES: u64 = MAX_POINT_BYTES + 2 + MAX_VARINT_BYTES as u64;
/// The largest divisor the encoder tries: a rollup window's point count (6 for
/// 10 s -> 1 m, 60 for 1 m -> 1 h) or a statsd timer's sample count. A value
/// that fits no divisor costs a search of `MAX_DIVISOR * 10` tries (~10 us).
const MAX_DIVISOR: u64 = 256;
/// A 64-bit varint needs at most ceil(64 / 7) bytes.
const MAX_VARINT_BYTES: usize = 10;

/// How integer-mode values become a stream of differences.
#[derive(Clone, Copy)]
enum Order {
    Delta,
    DeltaOfDelta,
}

/// Encodes points sorted by slot, slots unique (the caller guarantees it).
/// The output is self-describing: its first byte is the format byte.
pub fn encode(points: &[(u32, f64)]) -> Vec<u8> {
    Encoder::default().encode(points)
}

/// An encoder that keeps its deflate state between chunks: miniz_oxide's
/// ~300 KB state costs about as much to set up as a chunk costs to compress,
/// so callers that encode many chunks (RocksDB's merges) keep one.
#[derive(Default)]
pub struct Encoder {
    compressor: Option<Compress>,
}

impl Encoder {
    /// See [`encode`].
    pub fn encode(&mut self, points: &[(u32, f64)]) -> Vec<u8> {
        self.encode_as(points, true)
    }

    /// A valid chunk of `points` without the costly searches: no deflate and
    /// no rational divisors (such values take float mode). For points a later
    /// merge will encode again: in a 100k-series carbon flood, compaction
    /// re-encoding open chunks thoroughly was what throttled ingest.
    pub fn quick(&mut self, points: &[(u32, f64)]) -> Vec<u8> {
        self.encode_as(points, false)
    }

    fn encode_as(&mut self, points: &[(u32, f64)], thorough: bool) -> Vec<u8> {
        debug_assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "chunk points must be sorted by slot with unique slots");
        let mut slots = Vec::with_capacity(points.len() + 8);
        let mut previous: Option<u32> = None;
        for &(slot, _) in points {
            let field = match previous {
                None => u64::from(slot),
                // Sorted and unique, so the gap is at least 1; a wrap in release builds
                // would only mean the caller broke the contract.
                Some(p) => u64::from(slot.wrapping_sub(p).wrapping_sub(1)),
            };
            put_varint(&mut slots, field);
            previous = Some(slot);
        }

        // Each candidate is a format byte (without DEFLATED) and a raw body; the
        // packed layout, when there is one, is a whole chunk to beat.
        let mut candidates: Vec<(u8, Vec<u8>)> = Vec::with_capacity(2);
        let mut packed = None;
        if let Some((scale, ints)) = scale_to_integers(points) {
            integer_candidates(&slots, scale, &ints, None, &mut candidates);
            packed = (!points.is_empty()).then(|| packed::encode(points, scale, &ints, None));
        } else if let Some(rationals) = thorough.then(|| scale_to_rationals(points)).flatten() {
            integer_candidates(&slots, rationals.scale, &rationals.ints, Some(&rationals), &mut candidates);
            packed = Some(packed::encode(points, rationals.scale, &rationals.ints, Some(&rationals)));
        } else {
            let mut body = Vec::with_capacity(slots.len() + 8 * points.len());
            body.extend_from_slice(&slots);
            let mut previous_bits = 0u64;
            for &(_, v) in points {
                put_varint(&mut body, v.to_bits() ^ previous_bits);
                previous_bits = v.to_bits();
            }
            candidates.push((FLOAT_MODE, body));
        }

        let compressor = &mut self.compressor;
        let header = 1 + varint_len(points.len() as u64);
        // The body a varint candidate must stay under to beat the packed chunk.
        let packed_bound = packed.as_ref().map_or(usize::MAX, |p| p.len().saturating_sub(header));
        let mut best: Option<(u8, Cow<'_, [u8]>)> = None;
        for (tag, body) in &candidates {
            // A candidate is kept only if strictly smaller than the best so far, so
            // the compressor may give up at that size. On a tie the earlier (delta) stays.
            let bound = best.as_ref().map_or(packed_bound, |(_, b)| b.len());
            let deflated = if thorough { deflate(compressor, body, bound.min(body.len())) } else { None };
            let (tag, stored) = match deflated {
                Some(packed) => (tag | DEFLATED, Cow::Owned(packed)),
                None => (*tag, Cow::Borrowed(body.as_slice())),
            };
            if stored.len() < bound {
                best = Some((tag, stored));
            }
        }
        let Some((tag, stored)) = best else {
            return packed.expect("only a packed chunk bounds the varint candidates");
        };

        let mut out = Vec::with_capacity(header + stored.len());
        out.push(tag);
        put_varint(&mut out, points.len() as u64);
        out.extend_from_slice(&stored);
        out
    }
}

/// Pushes the delta and the delta-of-delta body of integer (or, with divisors,
/// rational) mode.
fn integer_candidates(slots: &[u8], scale: usize, ints: &[i64], rationals: Option<&Rationals>, candidates: &mut Vec<(u8, Vec<u8>)>) {
    for order in [Order::Delta, Order::DeltaOfDelta] {
        let diffs = differences(ints, order);
        let zigzag = diffs.iter().any(|&d| d < 0);
        let mut body = Vec::with_capacity(slots.len() + 3 * diffs.len());
        body.extend_from_slice(slots);
        for d in diffs {
            // Nonnegative streams skip zigzag: a counter's increments of 0..127
            // then take one byte instead of two past 63.
            put_varint(&mut body, if zigzag { zigzag_encode(d) } else { d as u64 });
        }
        let mut rational_bit = 0;
        if let Some(rationals) = rationals {
            rational_bit = RATIONAL;
            for &k in &rationals.divisors {
                put_varint(&mut body, k - 1);
            }
            for &c in &rationals.corrections {
                put_varint(&mut body, c);
            }
        }
        let order_bit = if matches!(order, Order::DeltaOfDelta) { DELTA_OF_DELTA } else { 0 };
        let zigzag_bit = if zigzag { ZIGZAG } else { 0 };
        // MAX_SCALE fits the nibble, so the cast keeps every bit.
        candidates.push((scale as u8 | order_bit | zigzag_bit | rational_bit, body));
    }
}

/// Decodes a chunk back to its points, values bit-exact. Never panics; allocates
/// at most a bounded multiple of the input's size.
pub fn decode(bytes: &[u8]) -> Result<Vec<(u32, f64)>, ChunkError> {
    let (&tag, rest) = bytes.split_first().ok_or(ChunkError::Truncated { what: "format byte" })?;
    let scale = tag & SCALE_MASK;
    let integer = match scale {
        packed::PACKED => {
            let packed::Decoded { slots, scale, ints, rational } = packed::decode(tag, rest)?;
            let mut points: Vec<(u32, f64)> = slots.into_iter().map(|s| (s, 0.0)).collect();
            let (divisors, corrections) = rational.unzip();
            to_floats(&mut points, &ints, scale, divisors.as_deref(), corrections.as_deref())?;
            return Ok(points);
        }
        0..=9 => true,
        FLOAT_MODE if tag & (ZIGZAG | DELTA_OF_DELTA | RATIONAL) == 0 => false,
        _ => return Err(ChunkError::UnknownFormat(tag)),
    };
    let rational = tag & RATIONAL != 0;
    let mut header = Reader { bytes: rest, pos: 0 };
    let count = header.varint("point count")?;
    let rest = &rest[header.pos..];
    if count == 0 {
        return if rest.is_empty() { Ok(Vec::new()) } else { Err(ChunkError::CountMismatch { count, trailing: rest.len() }) };
    }

    let deflated = tag & DEFLATED != 0;
    let ratio = if deflated { MAX_INFLATE_RATIO } else { 1 };
    let max = (rest.len() as u64).saturating_mul(ratio) / MIN_POINT_BYTES;
    if count > max {
        return Err(ChunkError::CountTooLarge { count, len: rest.len(), max });
    }
    let body: Cow<'_, [u8]> = if deflated {
        let per_point = if rational { MAX_RATIONAL_POINT_BYTES } else { MAX_POINT_BYTES };
        let limit =
            usize::try_from(count.saturating_mul(per_point)).map_err(|_| ChunkError::CountTooLarge { count, len: rest.len(), max })?;
        let body = inflate(rest, limit)?;
        if count > body.len() as u64 / MIN_POINT_BYTES {
            return Err(ChunkError::Truncated { what: "inflated body" });
        }
        Cow::Owned(body)
    } else {
        Cow::Borrowed(rest)
    };
    // count <= body length / 2 here, so the allocation is bounded by the body.
    let n = usize::try_from(count).map_err(|_| ChunkError::CountTooLarge { count, len: rest.len(), max })?;

    let mut reader = Reader { bytes: &body, pos: 0 };
    let mut points = Vec::with_capacity(n);
    let mut slot = reader.varint("first slot")?;
    if slot > u64::from(u32::MAX) {
        return Err(ChunkError::SlotOutOfRange { slot });
    }
    // The check above and the one in the loop keep every slot within u32.
    points.push((slot as u32, 0.0));
    for _ in 1..n {
        let gap = reader.varint("slot gap")?;
        slot = slot.saturating_add(gap).saturating_add(1);
        if slot > u64::from(u32::MAX) {
            return Err(ChunkError::SlotOutOfRange { slot });
        }
        points.push((slot as u32, 0.0));
    }

    if integer {
        let zigzag = tag & ZIGZAG != 0;
        let delta_of_delta = tag & DELTA_OF_DELTA != 0;
        let (mut value, mut delta) = (0i64, 0i64);
        let mut ints = Vec::with_capacity(n);
        for index in 0..n {
            let field = reader.varint("value")?;
            let diff =
                if zigzag { zigzag_decode(field) } else { i64::try_from(field).map_err(|_| ChunkError::ValueOutOfRange { index })? };
            let step = if delta_of_delta { delta.checked_add(diff) } else { Some(diff) };
            let next =
                step.and_then(|s| value.checked_add(s).map(|v| (s, v))).filter(|&(_, v)| (-MAX_SCALED_INT..=MAX_SCALED_INT).contains(&v));
            (delta, value) = next.ok_or(ChunkError::ValueOutOfRange { index })?;
            ints.push(value);
        }
        let (mut divisors, mut corrections) = (None, None);
        if rational {
            divisors = Some((0..n).map(|_| reader.varint("divisor")).collect::<Result<Vec<_>, _>>()?);
            corrections = Some((0..n).map(|_| reader.varint("correction")).collect::<Result<Vec<_>, _>>()?);
        }
        to_floats(&mut points, &ints, usize::from(scale), divisors.as_deref(), corrections.as_deref())?;
    } else {
        let mut bits = 0u64;
        for point in points.iter_mut() {
            bits ^= reader.varint("value")?;
            point.1 = f64::from_bits(bits);
        }
    }
    let trailing = body.len() - reader.pos;
    if trailing != 0 {
        return Err(ChunkError::CountMismatch { count, trailing });
    }
    Ok(points)
}

/// Integer-mode values as floats: each integer over 10^scale, then in rational
/// mode over its divisor (stored minus 1) and moved by its zigzag-coded
/// correction in ulps; the same arithmetic as the encoder's, so bits come back.
fn to_floats(
    points: &mut [(u32, f64)],
    ints: &[i64],
    scale: usize,
    divisors: Option<&[u64]>,
    corrections: Option<&[u64]>,
) -> Result<(), ChunkError> {
    let p = POW10[scale];
    for (index, (point, &i)) in points.iter_mut().zip(ints).enumerate() {
        if !(-MAX_SCALED_INT..=MAX_SCALED_INT).contains(&i) {
            return Err(ChunkError::ValueOutOfRange { index });
        }
        point.1 = i as f64 / p;
    }
    for (point, &k) in points.iter_mut().zip(divisors.unwrap_or_default()) {
        if k >= MAX_DIVISOR {
            return Err(ChunkError::DivisorOutOfRange { divisor: k.saturating_add(1) });
        }
        point.1 /= (k + 1) as f64;
    }
    for (point, &c) in points.iter_mut().zip(corrections.unwrap_or_default()) {
        point.1 = f64::from_bits(point.1.to_bits().wrapping_add(zigzag_decode(c) as u64));
    }
    Ok(())
}

/// First differences, or differences of those, each element's predecessor taken as 0.
/// Inputs are within +-2^53, so no step overflows.
fn differences(ints: &[i64], order: Order) -> Vec<i64> {
    let (mut previous, mut previous_delta) = (0i64, 0i64);
    ints.iter()
        .map(|&x| {
            let delta = x - previous;
            previous = x;
            match order {
                Order::Delta => delta,
                Order::DeltaOfDelta => {
                    let dod = delta - previous_delta;
                    previous_delta = delta;
                    dod
                }
            }
        })
        .collect()
}

/// The raw-deflated form of `raw`, only if shorter than `bound` bytes; the
/// compressor is made on first use and reset for each later one.
fn deflate(compressor: &mut Option<Compress>, raw: &[u8], bound: usize) -> Option<Vec<u8>> {
    // A body of a byte or two cannot shrink; skip the compressor's setup.
    if raw.len() < 3 || bound < 2 {
        return None;
    }
    let compressor = match compressor {
        Some(c) => {
            c.reset();
            c
        }
        None => compressor.insert(Compress::new(Compression::new(DEFLATE_LEVEL), false)),
    };
    // Room for one byte less than the bound: a longer stream would not be kept,
    // so the compressor may stop there.
    let mut out = Vec::with_capacity(bound - 1);
    match compressor.compress_vec(raw, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) if out.len() < bound => Some(out),
        _ => None,
    }
}

/// Inflates a raw deflate stream that must end exactly at the end of `input` and
/// inflate to at most `limit` bytes; the buffer grows with the output, never past
/// the limit.
fn inflate(input: &[u8], limit: usize) -> Result<Vec<u8>, ChunkError> {
    // One byte of room past the limit lets the stream's end show before the buffer
    // fills, so a body of exactly `limit` bytes is told apart from a longer one.
    let cap = limit.saturating_add(1);
    let mut out = Vec::with_capacity(cap.min(input.len().saturating_mul(8).max(256)));
    let mut inflater = Decompress::new(false);
    loop {
        let (consumed, produced) = (inflater.total_in(), out.len());
        let rest = input.get(usize::try_from(consumed).unwrap_or(usize::MAX)..).unwrap_or_default();
        // Not `Finish`: with it miniz_oxide wants the whole output from the first call.
        let status = inflater.decompress_vec(rest, &mut out, FlushDecompress::None).map_err(|e| ChunkError::Inflate(e.to_string()))?;
        if let Status::StreamEnd = status {
            break;
        }
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return Err(ChunkError::Inflate(format!("body inflates past {limit} bytes, the most its point count allows")));
            }
            let grow = out.capacity().min(cap - out.len());
            out.reserve_exact(grow);
        } else if inflater.total_in() == consumed && out.len() == produced {
            // Room for output, yet no progress and no end: the input ran out.
            return Err(ChunkError::Truncated { what: "deflated body" });
        }
    }
    let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
    if consumed != input.len() {
        return Err(ChunkError::Inflate(format!("{} bytes after the end of the deflate stream", input.len().saturating_sub(consumed))));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &'static str) -> Result<u8, ChunkError> {
        let &byte = self.bytes.get(self.pos).ok_or(ChunkError::Truncated { what })?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ChunkError> {
        let bytes = self.bytes.get(self.pos..).and_then(|rest| rest.get(..len)).ok_or(ChunkError::Truncated { what })?;
        self.pos += len;
        Ok(bytes)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let &byte = self.bytes.get(self.pos).ok_or(ChunkError::Truncated { what })?;
            self.pos += 1;
            // The tenth byte carries bit 63 only.
            if i == MAX_VARINT_BYTES - 1 && byte > 1 {
                return Err(ChunkError::BadVarint { what });
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::BadVarint { what })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).div_ceil(7).max(1)
}

fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn zigzag_decode(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix;
    use proptest::prelude::*;

    /// Round-trips `points` bit-exactly and compares the encoding's description
    /// (see `describe`) with `expected`.
    fn check(points: &[(u32, f64)], expected: &str) {
        let bytes = encode(points);
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{expected}: {e}"));
        assert_eq!(bits(&back), bits(points), "{expected}");
        assert_eq!(describe(&bytes), expected);
    }

    /// The mode a format byte names, then the whole encoding in hex when the body
    /// is stored raw (our own bytes, pinned), or just `deflated` (those bytes are
    /// the deflate implementation's).
    fn describe(bytes: &[u8]) -> String {
        let tag = bytes[0];
        let mode = match tag & SCALE_MASK {
            FLOAT_MODE => "float".to_string(),
            packed::PACKED => format!(
                "{}/{} packed {}{}",
                if tag & RATIONAL != 0 { "rat" } else { "int" },
                bytes[1],
                ["plain", "delta", "dod"][usize::from(tag >> 4 & 3)],
                if tag & DEFLATED != 0 { " factored" } else { "" }
            ),
            scale => format!(
                "{}/{scale} {} {}",
                if tag & RATIONAL != 0 { "rat" } else { "int" },
                if tag & DELTA_OF_DELTA != 0 { "dod" } else { "delta" },
                if tag & ZIGZAG != 0 { "zigzag" } else { "unsigned" }
            ),
        };
        if tag & DEFLATED != 0 && tag & SCALE_MASK != packed::PACKED {
            format!("{mode} deflated")
        } else if tag & SCALE_MASK == packed::PACKED && bytes.len() > 32 {
            format!("{mode}, {} bytes", bytes.len())
        } else {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("{mode}: {}", hex.join(" "))
        }
    }

    fn bits(points: &[(u32, f64)]) -> Vec<(u32, u64)> {
        points.iter().map(|&(s, v)| (s, v.to_bits())).collect()
    }

    fn dense(values: &[f64]) -> Vec<(u32, f64)> {
        values.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect()
    }

    #[test]
    fn encodings() {
        check(&[], "int/0 delta unsigned: 00 00");
        check(&[(0, 1.0)], "int/0 delta unsigned: 00 01 00 01");
        check(&[(7, -3.0)], "int/0 delta zigzag: 20 01 07 05");
        check(&[(0, 20.5)], "int/1 delta unsigned: 01 01 00 cd 01");
        check(&[(0, 20.05), (1, 20.1), (2, 20.0)], "int/2 delta zigzag: 22 03 00 00 00 aa 1f 0a 13");
        check(&dense(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), "int/0 packed delta: 1e 00 08 00 00 00 00 02 00");
        check(&dense(&(0..720).map(|i| f64::from(i * 10)).collect::<Vec<_>>()), "int/0 packed delta: 1e 00 d0 05 00 00 00 00 14 00");
        check(&dense(&(0..720).map(|i| f64::from(2000 + (i % 7)) / 100.0).collect::<Vec<_>>()), "int/2 delta zigzag deflated");
        // 0.1 + 0.2 is 0.30000000000000004, which happens to be 2.7 / 9.
        check(&[(0, 0.1 + 0.2)], "rat/1 delta unsigned: 81 01 00 1b 08 00");
        check(&[(0, std::f64::consts::PI)], "float: 0f 01 00 98 da 90 a2 b5 bf c8 84 40");
        // Averages: 1/3 = (1 / 10^0) / 3, 2/3 likewise; 20.05 / 3 = 401 / 60, so
        // it and 7 share (n / 10^1) / 6.
        check(&[(0, 1.0 / 3.0), (1, 2.0 / 3.0)], "rat/0 delta unsigned: 80 02 00 00 01 01 02 02 00 00");
        check(&[(0, 20.05 / 3.0), (1, 7.0)], "rat/1 delta unsigned: 81 02 00 00 91 03 13 05 05 00 00");
        // One misfit in two still codes as a correction; two in three go to float.
        check(&[(0, 1.0 / 3.0), (1, std::f64::consts::PI)], "rat/0 delta unsigned: 80 02 00 00 01 08 02 02 00 b0 b4 a1 c4 ea fe 90 01");
        check(
            &[(0, 1.0 / 3.0), (1, std::f64::consts::PI), (2, std::f64::consts::E)],
            "float: 0f 03 00 00 00 d5 aa d5 aa d5 aa d5 ea 3f cd f0 c5 88 e0 95 9d ee 7f f1 f4 c1 fa 9d de a7 06",
        );
        check(&[(0, 1.0 / 257.0)], "float: 0f 01 00 a0 c0 ff 80 fe 83 f8 b7 3f");
        check(&[(0, 1.0 / 256.0)], "int/8 delta unsigned: 08 01 00 e1 eb 17");
        check(&[(0, 1.0 / 255.0)], "rat/0 delta unsigned: 80 01 00 01 fe 01 00");
        check(&[(0, 1e-9), (1, 123456.789)], "int/9 delta unsigned: 09 02 00 00 01 bf de b6 b0 88 89 1c");
        check(&[(0, 1e-10)], "rat/9 delta unsigned: 89 01 00 01 09 00");
        check(&[(0, 9007199254740992.0), (1, -9007199254740992.0)], "int/0 delta zigzag deflated");
        check(&[(0, 9007199254740994.0)], "float deflated");
        check(&[(0, -0.0)], "float deflated");
        check(&[(0, 0.0), (1, -0.0), (2, f64::INFINITY), (3, f64::NEG_INFINITY), (4, f64::NAN)], "float deflated");
        check(
            &[(0, f64::from_bits(0x7ff0_dead_beef_0001)), (9, f64::from_bits(1)), (10, f64::MIN_POSITIVE / 2.0), (11, -f64::NAN)],
            "float deflated",
        );
        check(
            &[(0, 1.0), (5, 1.0), (6, 1.0), (100, 1.0), (u32::MAX, 1.0)],
            "int/0 delta unsigned: 00 05 00 04 00 5d 9a ff ff ff 0f 01 00 00 00 00",
        );
        check(&(0..10_000u32).map(|i| (i + i / 13, f64::from(i % 977) * 0.25)).collect::<Vec<_>>(), "int/2 delta zigzag deflated");
    }

    /// Decodes `bytes`, which must fail with a message containing `fragment`.
    /// Byte counts of the kernel's, moving by whole pages: the packed values
    /// are the pages, not the bytes, and they come back bit-exact.
    #[test]
    fn values_in_whole_pages_are_packed_by_their_common_factor() {
        let mut pages: i64 = 4_630_000;
        let mut x = 0x9E37_79B9u64;
        let points: Vec<(u32, f64)> = (0..360u32)
            .map(|slot| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                pages += (x >> 33) as i64 % 2001 - 1000;
                (slot, (pages * 4096) as f64)
            })
            .collect();
        let bytes = encode(&points);
        assert!(describe(&bytes).contains("factored"), "{}", describe(&bytes));
        assert_eq!(bits(&decode(&bytes).unwrap()), bits(&points));
        // Steps within +-1000 pages: 11 bits a point (and a few bytes of
        // header), where the bytes' steps would take 23.
        assert!(bytes.len() <= 360 * 11 / 8 + 24, "{} bytes", bytes.len());
        // One value off the page grid and the factor is gone.
        let mut off = points.clone();
        off[100].1 += 1.0;
        let unfactored = encode(&off);
        assert!(!describe(&unfactored).contains("factored"));
        // (Deflate finds some of the zero low bits, not all: 893 against 515.)
        assert!(unfactored.len() > bytes.len() * 3 / 2, "{} against {}", unfactored.len(), bytes.len());
    }

    fn check_error(bytes: &[u8], fragment: &str) {
        let err = decode(bytes).expect_err(fragment).to_string();
        assert!(err.starts_with("cannot decode chunk: ") && err.contains(fragment), "{bytes:02x?}: {err}");
    }

    #[test]
    fn errors() {
        check_error(&[], "input ends inside the format byte");
        check_error(&[0x00], "input ends inside the point count");
        check_error(&[0x8f, 0x00], "unknown format byte 0x8f");
        check_error(&[0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x00], "divisor 257 is past the largest, 256");
        check_error(&[0x80, 0x01, 0x00, 0x01], "input ends inside the divisor");
        check_error(&[0x80, 0x01, 0x00, 0x01, 0x00], "input ends inside the correction");
        check_error(&[0x0a, 0x00], "unknown format byte 0x0a");
        check_error(&[0x1f, 0x00], "unknown format byte 0x1f");
        check_error(&[0x00, 0x00, 0x00], "1 bytes left over after the 0 points");
        check_error(&[0x00, 0x01, 0x00], "claims 1 points but its 1 body bytes can hold at most 0");
        check_error(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00], "claims 4294967295 points but its 2 body bytes can hold at most 1");
        check_error(
            &[0x40, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00],
            "claims 4294967295 points but its 2 body bytes can hold at most 1032",
        );
        check_error(&[0x00, 0x01, 0x00, 0x01, 0x00], "1 bytes left over after the 1 points");
        check_error(&[0x00, 0x02, 0x00, 0x00, 0x80, 0x80], "input ends inside the value");
        check_error(&[0x00, 0x02, 0x00, 0x80, 0x80, 0x80], "input ends inside the slot gap");
        check_error(
            &[0x0f, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            "varint for the value is longer than 10 bytes",
        );
        check_error(
            &[0x0f, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            "varint for the value is longer than 10 bytes",
        );
        check_error(&[0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00], "slot 4294967296 does not fit in 32 bits");
        check_error(&[0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x00], "slot 4294967296 does not fit in 32 bits");
        check_error(&[0x00, 0x01, 0x00, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], "point 0's scaled integer leaves +-2^53");
        check_error(
            &[0x00, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            "point 0's scaled integer leaves +-2^53",
        );
        check_error(
            &[0x30, 0x02, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x02],
            "point 1's scaled integer leaves +-2^53",
        );
        check_error(&[0x40, 0x01, 0x00, 0x00], "input ends inside the deflated body");
        // Packed layout.
        check_error(&[0x0e], "input ends inside the decimal scale");
        check_error(&[0x0e, 0x0a, 0x01], "decimal scale 10 is past the largest, 9");
        check_error(&[0x0e, 0x00, 0x00], "a packed chunk holds no points");
        check_error(&[0x3e, 0x00, 0x01], "unknown format byte 0x3e");
        check_error(&[0x4e, 0x00, 0x01], "input ends inside the first slot");
        check_error(&[0x4e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01], "a factor frame's factor is 1, below 2");
        check_error(&[0x4e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], "input ends inside the factored values");
        let factor = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        let overflow: Vec<u8> = [&[0x4e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00][..], &factor, &[0x00, 0x02, 0x03]].concat();
        check_error(&overflow, "point 0's scaled integer leaves +-2^53");
        check_error(
            &[0x0e, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
            "claims 4294967295 points but its 7 body bytes can hold at most 7224",
        );
        check_error(&[0x0e, 0x00, 0x01], "input ends inside the first slot");
        check_error(&[0x0e, 0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10], "slot 4294967296 does not fit in 32 bits");
        check_error(&[0x0e, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00], "slot 4294967296 does not fit in 32 bits");
        check_error(&[0x0e, 0x00, 0x01, 0x00, 0x00, 0x41], "the slot gaps are packed 65 bits wide, past 64");
        check_error(&[0x0e, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x08, 0x01], "input ends inside the values");
        check_error(&[0x0e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0xff], "1 bytes left over after the 1 points");
        check_error(&[0x1e, 0x00, 0x01, 0x00, 0x00, 0x00], "input ends inside the head value");
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let overflow: Vec<u8> = [&[0x2e, 0x00, 0x03, 0x00, 0x00, 0x00][..], &max, &max, &[0x00, 0x00]].concat();
        check_error(&overflow, "point 1's scaled integer leaves +-2^53");
        check_error(
            &[0x0e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x00],
            "point 0's scaled integer leaves +-2^53",
        );
        check_error(&[0x8e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00], "input ends inside the divisors");
        check_error(
            &[0x8e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x80, 0x02, 0x00, 0x00, 0x00],
            "divisor 257 is past the largest, 256",
        );
        check_error(&[0x40, 0x01, 0x07, 0x00], "inflate failed");
    }

    #[test]
    fn deflated_bodies_are_bounded_by_the_count() {
        // A short cycle: deflate's matches beat packing's 3 bits a point.
        let points = dense(&(0..1000).map(|i| f64::from(i % 7)).collect::<Vec<_>>());
        let mut bytes = encode(&points);
        assert_eq!(bytes[0] & DEFLATED, DEFLATED);
        // Claim fewer points than the body holds: 999 * 15 bytes is still more than
        // the body, so the leftover is found after parsing.
        bytes[1..3].copy_from_slice(&[0xe7, 0x07]);
        assert_eq!(decode(&bytes), Err(ChunkError::CountMismatch { count: 999, trailing: 2 }));
        // Claim so few that the inflated body overruns the limit.
        let mut bytes = encode(&points);
        bytes.splice(1..3, [0x03]);
        assert!(matches!(decode(&bytes), Err(ChunkError::Inflate(m)) if m.contains("past 45 bytes")));
        // Garbage after the deflate stream.
        let mut bytes = encode(&points);
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(ChunkError::Inflate(m)) if m.contains("1 bytes after")));
    }

    /// A data shape to measure, with the coding it must get (as `describe` names
    /// it) and the bytes/point it must stay under.
    struct Shape {
        name: &'static str,
        mode: &'static str,
        bound: f64,
        points: Vec<(u32, f64)>,
    }

    /// 720 points (2 h at 10 s) of each shape a store sees. Decimal values are made
    /// as a parser makes them, integer / 10^d, not by float arithmetic.
    fn shapes() -> Vec<Shape> {
        const N: usize = 720;
        let mut r = SplitMix(42);
        let mut walk = 2000i64;
        let gauge: Vec<f64> = (0..N)
            .map(|_| {
                walk += r.below(11) as i64 - 5;
                walk as f64 / 100.0
            })
            .collect();
        let mut total = 0u64;
        let counter: Vec<f64> = (0..N)
            .map(|_| {
                total += r.below(100);
                total as f64
            })
            .collect();
        let mut total = 0u64;
        let resets: Vec<f64> = (0..N)
            .map(|_| {
                total = if r.below(200) == 0 { 0 } else { total + r.below(100) };
                total as f64
            })
            .collect();
        let noisy: Vec<f64> = (0..N).map(|_| r.unit()).collect();
        // The bench generator's timings: uniform 50.000..500.000 ms, 3 decimals.
        let timings: Vec<f64> = (0..N).map(|_| (50_000 + r.below(450_001)) as f64 / 1000.0).collect();
        // A 1-minute rollup archive: whisper's average (a float sum, then / count)
        // of six 10 s points, or of five when one is missing, over 6 * N inputs.
        let average = |inputs: Vec<f64>, r: &mut SplitMix| -> Vec<f64> {
            inputs
                .chunks(6)
                .map(|w| {
                    let known = if r.below(10) == 0 { &w[1..] } else { w };
                    known.iter().sum::<f64>() / known.len() as f64
                })
                .collect()
        };
        let inputs = (0..6 * N).map(|_| (50_000 + r.below(450_001)) as f64 / 1000.0).collect();
        let timing_averages = average(inputs, &mut r);
        let inputs = (0..6 * N)
            .map(|_| {
                walk += r.below(11) as i64 - 5;
                walk as f64 / 100.0
            })
            .collect();
        let gauge_averages = average(inputs, &mut r);
        // Etsy statsd's timer mean: sum / count of a flush's integer milliseconds.
        let timers: Vec<f64> = (0..N)
            .map(|_| {
                let count = 1 + r.below(20);
                let sum: u64 = (0..count).map(|_| 50 + r.below(101)).sum();
                sum as f64 / count as f64
            })
            .collect();
        // A smooth daily-cycle-like gauge, where delta-of-delta wins.
        let sine: Vec<f64> = (0..N).map(|i| ((i as f64 / 50.0).sin() * 1000.0).round() / 100.0).collect();
        let gappy: Vec<(u32, f64)> = dense(&gauge).into_iter().filter(|_| r.below(10) != 0).collect();
        // /proc/meminfo's MemFree in bytes: whole 4 KiB pages, moving by up to
        // +-1000 pages each sample.
        let mut pages = 4_630_000i64;
        let free_bytes: Vec<f64> = (0..N)
            .map(|_| {
                pages += r.below(2001) as i64 - 1000;
                (pages * 4096) as f64
            })
            .collect();
        // Upper bounds with headroom over the measured value (in the comment),
        // tight enough to catch a regression of the coding.
        let shape = |name, mode, bound, points| Shape { name, mode, bound, points };
        vec![
            shape("2-decimal random walk", "int/2 packed delta", 1.0, dense(&gauge)), // 0.515 (deflated: 0.537)
            shape("2-decimal, 10% of slots missing", "int/2 delta zigzag", 1.0, gappy), // 0.687
            shape("2-decimal smooth sine", "int/2 dod zigzag", 1.0, dense(&sine)),    // 0.261
            shape("integer counter", "int/0 packed delta", 1.5, dense(&counter)),     // 0.889 (deflated: 0.890)
            shape("counter with resets", "int/0 dod zigzag", 1.5, dense(&resets)),    // 1.110
            shape("constant", "int/0 packed plain", 0.02, dense(&[42.0; N])),         // 0.013 (deflated: 0.033)
            shape("noisy floats in [0, 1)", "float", 9.0, dense(&noisy)),             // 7.524
            shape("statsd timer means", "rat/", 3.5, dense(&timers)),                 // 3.099 (float: 4.043)
            shape("3-decimal uniform timings", "int/3 packed plain", 2.5, dense(&timings)), // 2.390 (deflated: 2.867)
            shape("1 m averages of those", "rat/", 3.6, dense(&timing_averages)),     // 3.397 (deflated 3.757, float 7.236)
            shape("1 m averages of the walk", "rat/2", 2.0, dense(&gauge_averages)),  // 1.706 (float: 5.350)
            shape("free memory in bytes, whole pages", "int/0 packed delta factored", 1.6, dense(&free_bytes)), // 1.403
        ]
    }

    #[test]
    fn bytes_per_point() {
        // Every row is printed before any is judged, so one run shows them all.
        let mut wrong = Vec::new();
        for Shape { name, mode, bound, points } in shapes() {
            let bytes = encode(&points);
            let per_point = bytes.len() as f64 / points.len() as f64;
            eprintln!("{name:32} {:4} points {:5} bytes {per_point:.3} bytes/point ({})", points.len(), bytes.len(), describe(&bytes));
            if per_point >= bound || !describe(&bytes).starts_with(mode) {
                wrong.push(format!("{name}: {per_point:.3} bytes/point as {}, want < {bound} as {mode}", describe(&bytes)));
            }
            assert_eq!(bits(&decode(&bytes).expect(name)), bits(&points), "{name}");
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        // Tiny chunks pay only the format byte and the count.
        for (n, bound) in [(1, 5), (2, 7), (3, 9)] {
            let points: Vec<(u32, f64)> = (0..n).map(|i| (i, 20.0 + f64::from(i) / 100.0)).collect();
            let len = encode(&points).len();
            eprintln!("{n} point(s) of a 2-decimal gauge: {len} bytes");
            assert!(len <= bound, "{n} points: {len} bytes");
        }
    }

    fn sorted_slots(max_len: usize) -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::btree_set(0..=100_000u32, 0..max_len).prop_map(|s| s.into_iter().collect())
    }

    /// Values as a store sees them: 2-decimal random walks, counters, noisy floats.
    fn realistic_values() -> impl Strategy<Value = Vec<f64>> {
        prop_oneof![
            (-100_000i64..100_000, proptest::collection::vec(-500i64..=500, 0..300)).prop_map(|(start, steps)| {
                steps
                    .iter()
                    .scan(start, |w, s| {
                        *w += s;
                        Some(*w as f64 / 100.0)
                    })
                    .collect()
            }),
            proptest::collection::vec(0u64..1_000_000, 0..300).prop_map(|incs| {
                incs.iter()
                    .scan(0u64, |c, i| {
                        *c += i;
                        Some(*c as f64)
                    })
                    .collect()
            }),
            // Rollup averages of 3-decimal values over windows of 1..=8 points.
            proptest::collection::vec(proptest::collection::vec(-1_000_000i64..1_000_000, 1..=8), 0..300).prop_map(|windows| {
                windows.iter().map(|w| w.iter().map(|&i| i as f64 / 1000.0).sum::<f64>() / w.len() as f64).collect()
            }),
            (any::<f64>(), proptest::collection::vec(-1.0f64..1.0, 0..300)).prop_map(|(base, noise)| {
                let base = if base.is_finite() { base } else { 0.0 };
                noise.iter().map(|n| base + n * base.abs().max(1.0)).collect()
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_bits_round_trip(slots in sorted_slots(300), raw in proptest::collection::vec(any::<u64>(), 300)) {
            let points: Vec<(u32, f64)> = slots.iter().zip(&raw).map(|(&s, &b)| (s, f64::from_bits(b))).collect();
            prop_assert_eq!(bits(&decode(&encode(&points)).expect("own encoding")), bits(&points));
        }

        #[test]
        fn realistic_round_trip(slots in sorted_slots(300), values in realistic_values()) {
            let points: Vec<(u32, f64)> = slots.iter().zip(&values).map(|(&s, &v)| (s, v)).collect();
            prop_assert_eq!(bits(&decode(&encode(&points)).expect("own encoding")), bits(&points));
        }

        #[test]
        fn packed_layout_round_trips(
            slots in sorted_slots(300),
            ints in prop_oneof![
                proptest::collection::vec(-MAX_SCALED_INT..=MAX_SCALED_INT, 300),
                proptest::collection::vec(-1000i64..1000, 300),
                proptest::collection::vec(0i64..3, 300),
                proptest::collection::vec(-1000i64..1000, 300).prop_map(|v| v.into_iter().map(|x| x * 4096 + 7).collect()),
            ],
            scale in 0..=MAX_SCALE,
        ) {
            prop_assume!(!slots.is_empty());
            let points: Vec<(u32, f64)> = slots.iter().map(|&s| (s, 0.0)).collect();
            let ints = &ints[..slots.len()];
            let bytes = packed::encode(&points, scale, ints, None);
            let expected: Vec<(u32, f64)> = slots.iter().zip(ints).map(|(&s, &i)| (s, i as f64 / POW10[scale])).collect();
            prop_assert_eq!(bits(&decode(&bytes).expect("own encoding")), bits(&expected));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn bodies_after_a_valid_header_never_panic(tag in 0u8..0x80, count in 0u8..0x80, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let bytes: Vec<u8> = [tag, count].into_iter().chain(body).collect();
            // (A packed chunk's second byte is its scale, not its count.)
            if let Ok(points) = decode(&bytes) && tag & SCALE_MASK != packed::PACKED {
                prop_assert_eq!(points.len(), usize::from(count));
            }
        }

        #[test]
        fn damaged_encodings_never_panic(values in realistic_values(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
            let bytes = encode(&dense(&values));
            // Every strict prefix is missing something the count promised.
            prop_assert!(decode(&bytes[..cut.index(bytes.len())]).is_err());
            let mut mutated = bytes.clone();
            let at = flip.0.index(mutated.len());
            mutated[at] ^= flip.1;
            if let Ok(points) = decode(&mutated) {
                prop_assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "decoded slots must stay sorted and unique");
            }
        }
    }
}
