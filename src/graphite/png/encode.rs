//! PNG encoding: IHDR, zlib IDAT with per-row filters, IEND, CRC32.

use std::io::Write;

use flate2::Crc;
use flate2::write::ZlibEncoder;

use super::raster::Canvas;

/// An 8-bit RGB PNG: IHDR, one zlib IDAT, IEND. Each row gets the filter
/// (none, sub or up) with the smallest sum of magnitudes, the usual heuristic.
pub(super) fn encode_png(canvas: &Canvas) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(canvas.width as u32).to_be_bytes());
    header.extend_from_slice(&(canvas.height as u32).to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, adaptive filters, no interlace
    chunk(&mut out, b"IHDR", &header);
    let mut zlib = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let stride = 3 * canvas.width as usize;
    let mut prior = vec![0u8; stride];
    for row in canvas.rgb.chunks(stride) {
        let filtered = filter_row(row, &prior);
        zlib.write_all(&filtered).expect("writing to a Vec");
        prior.copy_from_slice(row);
    }
    chunk(&mut out, b"IDAT", &zlib.finish().expect("writing to a Vec"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The filter type byte and the filtered row.
pub(super) fn filter_row(row: &[u8], prior: &[u8]) -> Vec<u8> {
    let sub = |i: usize| row[i].wrapping_sub(if i >= 3 { row[i - 3] } else { 0 });
    let up = |i: usize| row[i].wrapping_sub(prior[i]);
    let candidates: [Vec<u8>; 3] = [row.to_vec(), (0..row.len()).map(sub).collect(), (0..row.len()).map(up).collect()];
    let cost = |bytes: &Vec<u8>| bytes.iter().map(|b| u64::from((*b as i8).unsigned_abs())).sum::<u64>();
    let (kind, best) = (0u8..).zip(candidates).min_by_key(|(_, c)| cost(c)).unwrap_or_default();
    let mut out = Vec::with_capacity(row.len() + 1);
    out.push(kind);
    out.extend_from_slice(&best);
    out
}

pub(super) fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}
