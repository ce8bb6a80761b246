//! The log write-ahead log: every event an input acknowledges is in here,
//! fsynced, before the acknowledgement goes out, and the index is rebuilt from
//! it after a crash.
//!
//! Records are appended to segment files `wal/<base>.wal` (named by the global
//! byte position they start at) as `[len u32][crc32 u32][kind u8][payload]`,
//! little-endian. One writer thread owns the file: producers queue encoded
//! batches and wait for the position their batch ends at to become durable;
//! the writer takes everything queued, writes it with one `write`, calls
//! `fdatasync` once (group commit), wakes the waiters, and hands the batches
//! on, in order, to the indexer. A record at position `p` is in the index iff
//! `p < indexed` (the position stored in the index's last commit), so replay
//! after a restart starts there and nothing is indexed twice. Segments wholly
//! below `indexed` are deleted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use thiserror::Error;

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Header bytes before a record's payload: len, crc, kind.
const HEADER: usize = 9;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("wal io on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the wal is closed")]
    Closed,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

/// What one record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// An event: `ts_ms` (i64) then its JSON.
    Event = 1,
    /// A delete by document id (Elasticsearch `delete`): the id's bytes.
    Delete = 2,
    /// An event whose `_id` was generated on arrival (`Op::Add`'s `fresh`),
    /// laid out as `Event`.
    FreshEvent = 3,
}

/// Appends one record to `buf`.
pub fn encode(buf: &mut Vec<u8>, kind: Kind, head: &[u8], body: &[u8]) {
    let len = (1 + head.len() + body.len()) as u32;
    let mut crc = flate2::Crc::new();
    crc.update(&[kind as u8]);
    crc.update(head);
    crc.update(body);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.sum().to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(head);
    buf.extend_from_slice(body);
}

/// One decoded record and the position just past it.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub payload: Vec<u8>,
    pub end: u64,
}

/// A batch the writer made durable, handed to the consumer in order.
pub struct Durable<T> {
    pub item: T,
    /// The position just past the batch's last record.
    pub end: u64,
    /// The batch's encoded bytes.
    pub len: u64,
}

struct Queue<T> {
    /// Encoded bytes waiting for the writer, and the items they carry.
    bytes: Vec<u8>,
    items: Vec<(T, usize)>,
    /// Everything before this position is on disk.
    durable: u64,
    /// The position the queued bytes end at.
    queued_end: u64,
    closed: bool,
    failed: Option<String>,
}

/// The log, shared by every producer.
pub struct Wal<T> {
    queue: Mutex<Queue<T>>,
    /// Signalled when there is work for the writer.
    work: Condvar,
    /// Signalled when `durable` advances.
    done: Condvar,
}

impl<T: Send + 'static> Wal<T> {
    /// Queues one encoded batch and returns the position it ends at; wait for
    /// it with [`Wal::wait`] before acknowledging.
    pub fn submit(&self, encoded: &[u8], item: T) -> Result<u64, WalError> {
        let mut q = self.queue.lock().expect("wal lock poisoned");
        if q.closed {
            return Err(WalError::Closed);
        }
        q.bytes.extend_from_slice(encoded);
        q.queued_end += encoded.len() as u64;
        let end = q.queued_end;
        q.items.push((item, encoded.len()));
        self.work.notify_one();
        Ok(end)
    }

    /// Blocks until everything before `end` is durable.
    pub fn wait(&self, end: u64) -> Result<(), WalError> {
        let mut q = self.queue.lock().expect("wal lock poisoned");
        while q.durable < end {
            if let Some(e) = &q.failed {
                return Err(WalError::Io { path: PathBuf::from("wal"), source: std::io::Error::other(e.clone()) });
            }
            q = self.done.wait(q).expect("wal lock poisoned");
        }
        Ok(())
    }

    /// Stops taking batches; the writer writes what is queued and ends.
    pub fn close(&self) {
        self.queue.lock().expect("wal lock poisoned").closed = true;
        self.work.notify_all();
    }
}

/// The writer's side: the open segment.
pub struct Writer {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    /// Global position of the segment's first byte, and the next write's.
    base: u64,
    end: u64,
}

/// Opens the log in `dir`: returns the records at or past `from` (to replay),
/// and a writer appending after the last whole record (a torn tail from a
/// crash is cut off).
pub fn open(dir: &Path, from: u64) -> Result<(Vec<Record>, Writer), WalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let segments = segments(dir)?;
    let mut replay = Vec::new();
    let mut end = from;
    let mut last: Option<(u64, PathBuf)> = None;
    for (i, (base, path)) in segments.iter().enumerate() {
        let next_base = segments.get(i + 1).map(|s| s.0);
        if next_base.is_some_and(|n| n <= from) {
            continue;
        }
        let mut data = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut data)).map_err(io(path))?;
        let (records, valid) = decode_all(&data, *base);
        if (valid as usize) < data.len() {
            tracing::warn!(segment = %path.display(), kept = valid, cut = data.len() - valid as usize, "wal tail torn by a crash; cut off");
            let f = OpenOptions::new().write(true).open(path).map_err(io(path))?;
            f.set_len(valid).map_err(io(path))?;
            f.sync_all().map_err(io(path))?;
        }
        replay.extend(records.into_iter().filter(|r| r.end > from));
        end = end.max(base + valid);
        last = Some((*base, path.clone()));
    }
    let (base, path) = match last {
        Some((base, path)) if end - base < SEGMENT_BYTES => (base, path),
        _ => (end, segment_path(dir, end)),
    };
    let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
    sync_dir(dir)?;
    Ok((replay, Writer { dir: dir.to_owned(), file, path, base, end }))
}

impl Writer {
    /// The position the next record starts at.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Writes and fsyncs `bytes`, starting a new segment first when this one is full.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64, WalError> {
        if self.end - self.base >= SEGMENT_BYTES {
            let path = segment_path(&self.dir, self.end);
            self.file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
            sync_dir(&self.dir)?;
            self.path = path;
            self.base = self.end;
        }
        self.file.write_all(bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.end += bytes.len() as u64;
        Ok(self.end)
    }
}

/// Starts the writer thread: it drains `wal`'s queue into `writer`, and hands
/// each durable item to `consume` in order. Ends when the wal is closed and drained.
pub fn spawn<T: Send + 'static>(
    mut writer: Writer,
    mut consume: impl FnMut(Durable<T>) + Send + 'static,
) -> (Arc<Wal<T>>, std::thread::JoinHandle<()>) {
    let start = writer.end();
    let wal = Arc::new(Wal {
        queue: Mutex::new(Queue { bytes: Vec::new(), items: Vec::new(), durable: start, queued_end: start, closed: false, failed: None }),
        work: Condvar::new(),
        done: Condvar::new(),
    });
    let shared = wal.clone();
    let thread = std::thread::Builder::new()
        .name("logs-wal".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            let mut items = Vec::new();
            loop {
                {
                    let mut q = shared.queue.lock().expect("wal lock poisoned");
                    while q.bytes.is_empty() && !q.closed {
                        q = shared.work.wait_timeout(q, Duration::from_millis(200)).expect("wal lock poisoned").0;
                    }
                    if q.bytes.is_empty() && q.closed {
                        return;
                    }
                    std::mem::swap(&mut q.bytes, &mut bytes);
                    std::mem::swap(&mut q.items, &mut items);
                }
                let mut at = writer.end();
                match writer.append(&bytes) {
                    Ok(end) => {
                        {
                            let mut q = shared.queue.lock().expect("wal lock poisoned");
                            q.durable = end;
                        }
                        shared.done.notify_all();
                        for (item, len) in items.drain(..) {
                            at += len as u64;
                            consume(Durable { item, end: at, len: len as u64 });
                        }
                    }
                    Err(e) => {
                        // Nothing queued can be acknowledged any more: fail
                        // every waiter and refuse new batches.
                        tracing::error!(error = %e, "wal write failed; log ingest stops");
                        let mut q = shared.queue.lock().expect("wal lock poisoned");
                        q.failed = Some(e.to_string());
                        q.closed = true;
                        drop(q);
                        shared.done.notify_all();
                        return;
                    }
                }
                bytes.clear();
            }
        })
        .expect("cannot start the wal thread");
    (wal, thread)
}

/// Deletes the segments wholly before `indexed`; the newest segment (the one
/// being written) is always kept.
pub fn truncate_before(dir: &Path, indexed: u64) -> Result<(), WalError> {
    let segments = segments(dir)?;
    for pair in segments.windows(2) {
        let ((_, path), (next, _)) = (&pair[0], &pair[1]);
        if *next <= indexed {
            std::fs::remove_file(path).map_err(io(path))?;
        }
    }
    Ok(())
}

/// The records in `data` (a segment starting at global position `base`), and
/// how many bytes of it are whole, checksummed records.
fn decode_all(data: &[u8], base: u64) -> (Vec<Record>, u64) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= HEADER {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
        if len == 0 || data.len() - at - 8 < len {
            break;
        }
        let body = &data[at + 8..at + 8 + len];
        let mut check = flate2::Crc::new();
        check.update(body);
        if check.sum() != crc {
            break;
        }
        let kind = match body[0] {
            1 => Kind::Event,
            2 => Kind::Delete,
            3 => Kind::FreshEvent,
            _ => break,
        };
        at += 8 + len;
        records.push(Record { kind, payload: body[1..].to_vec(), end: base + at as u64 });
    }
    (records, at as u64)
}

fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let base = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".wal")).and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = base {
            found.push((base, path));
        }
    }
    found.sort();
    Ok(found)
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.wal"))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    crate::durable::sync_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Event, &i64::from(n).to_le_bytes(), format!("{{\"n\":{n}}}").as_bytes());
        buf
    }

    #[test]
    fn acknowledged_batches_replay_after_reopen_from_the_indexed_position() {
        let dir = tempfile::tempdir().unwrap();
        let (replay, writer) = open(dir.path(), 0).unwrap();
        assert!(replay.is_empty());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let (wal, thread) = spawn(writer, move |d: Durable<u32>| sink.lock().unwrap().push((d.item, d.end)));
        let mut ends = Vec::new();
        for n in 0..10 {
            let end = wal.submit(&event(n), n).unwrap();
            ends.push(end);
        }
        wal.wait(*ends.last().unwrap()).unwrap();
        wal.close();
        thread.join().unwrap();
        assert_eq!(*got.lock().unwrap(), (0..10).map(|n| (n, ends[n as usize])).collect::<Vec<_>>());
        // Indexed through the 4th record: replay starts at the 5th.
        let (replay, writer) = open(dir.path(), ends[3]).unwrap();
        assert_eq!(replay.len(), 6);
        assert_eq!(replay[0].payload[8..], *b"{\"n\":4}");
        assert_eq!(writer.end(), ends[9]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue_after_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut writer) = open(dir.path(), 0).unwrap();
        let first = writer.append(&event(1)).unwrap();
        let mut torn = event(2);
        torn.truncate(torn.len() - 3);
        writer.append(&torn).unwrap();
        drop(writer);
        let (replay, mut writer) = open(dir.path(), 0).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(writer.end(), first);
        writer.append(&event(3)).unwrap();
        let (replay, _) = open(dir.path(), 0).unwrap();
        assert_eq!(replay.len(), 2);
        assert_eq!(replay[1].payload[8..], *b"{\"n\":3}");
    }

    #[test]
    fn a_flipped_bit_ends_the_replay_at_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut writer) = open(dir.path(), 0).unwrap();
        writer.append(&event(1)).unwrap();
        writer.append(&event(2)).unwrap();
        drop(writer);
        let path = segment_path(dir.path(), 0);
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 2;
        data[last] ^= 1;
        std::fs::write(&path, data).unwrap();
        let (replay, _) = open(dir.path(), 0).unwrap();
        assert_eq!(replay.len(), 1);
    }
}
