//! Carbon's listeners: plaintext over TCP and UDP, pickle over TCP. Each TCP
//! connection is served by its own blocking thread through `listen::accept`
//! (parsing is CPU work and the store's catalog lookups are RocksDB reads,
//! neither belongs on the async runtime).
//!
//! A bad line is counted and skipped; the lines around it are kept, and the
//! connection stays open. A line longer than `max_line` is dropped whole and
//! counted. A pickle frame longer than `max_pickle_frame` closes the
//! connection, as carbon does, since the stream cannot be resynchronised.

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::wire::{self, Point, Stamp};
use crate::listen::{POLL, is_idle};
use crate::telemetry::accounts::{self, Account};
use crate::telemetry::{DropReason, InputStats};
use crate::tsdb::store::unix_now;
use crate::tsdb::{Incoming, Store};

/// Bytes read per syscall on a plaintext connection.
const READ_CHUNK: usize = 256 << 10;

/// What a listener needs: the store, its counters and its limits.
#[derive(Clone)]
pub struct Sink {
    pub store: Arc<Store>,
    pub stats: Arc<InputStats>,
    pub max_line: usize,
    pub max_frame: usize,
    /// The memory budget's pressure flag (telemetry::memory).
    pub pressure: Arc<AtomicBool>,
}

impl Sink {
    /// Before a TCP read: while the process is at its memory pressure mark,
    /// the sender waits (TCP backpressure) instead of memory growing.
    /// False when the appliance is stopping.
    fn wait_for_memory(&self, stopping: &AtomicBool) -> bool {
        while self.pressure.load(Ordering::Relaxed) {
            if stopping.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stores parsed points; counts what the store refused.
    fn store(&self, points: &[Point<'_>]) {
        if points.is_empty() {
            return;
        }
        let now = unix_now();
        let batch: Vec<Incoming<'_>> = points
            .iter()
            .map(|p| Incoming {
                name: &p.name,
                ts: match p.stamp {
                    Stamp::Now => i64::from(now),
                    Stamp::At(t) => t,
                },
                value: p.value,
            })
            .collect();
        match self.store.ingest(&batch, now) {
            Ok(outcome) => {
                self.stats.received(outcome.accepted);
                self.stats.dropped(DropReason::TooOld, outcome.too_old);
                self.stats.dropped(DropReason::Future, outcome.future);
                self.stats.dropped(DropReason::SeriesLimit, outcome.refused_limit);
                self.stats.dropped(DropReason::Memory, outcome.refused_memory);
            }
            Err(e) => tracing::error!(input = self.stats.input(), error = %e, "cannot store points"),
        }
        // Past the head's bound, the connection flushes before reading more:
        // the sender is slowed down (TCP backpressure) instead of memory growing.
        if let Err(e) = self.store.flush_if_full(now) {
            tracing::error!(error = %e, "flush under backpressure failed");
        }
    }
}

/// Newline-delimited plaintext on one connection.
pub fn serve_plaintext(mut stream: TcpStream, sink: &Sink, stopping: &AtomicBool) {
    let _account = accounts::enter(Account::Tsdb);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0;
    let mut skipping = false; // inside an over-long line, until its newline
    loop {
        if filled == buf.len() {
            // No newline in a whole buffer: only possible in an over-long line.
            if !skipping {
                sink.stats.dropped(DropReason::TooLong, 1);
            }
            skipping = true;
            filled = 0;
        }
        if !sink.wait_for_memory(stopping) {
            break;
        }
        let n = match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_idle(&e) => {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        filled += n;
        let Some(last_newline) = buf[..filled].iter().rposition(|b| *b == b'\n') else { continue };
        let mut lines = &buf[..last_newline];
        if skipping {
            // The over-long line ends at the first newline; drop up to it.
            match lines.iter().position(|b| *b == b'\n') {
                Some(i) => lines = &lines[i + 1..],
                None => lines = &[],
            }
            skipping = false;
        }
        plaintext_lines(lines, sink);
        buf.copy_within(last_newline + 1..filled, 0);
        filled -= last_newline + 1;
    }
    // A last line without a newline still counts (carbon's line receiver
    // would drop it; senders that close without one expect it stored).
    if !skipping && filled > 0 {
        plaintext_lines(&buf[..filled], sink);
    }
}

/// Parses `\n`, `\r\n` or `\r` separated lines (Python's splitlines) and stores them.
pub fn plaintext_lines(bytes: &[u8], sink: &Sink) {
    let mut points = Vec::new();
    for line in bytes.split(|b| *b == b'\n' || *b == b'\r') {
        if line.is_empty() {
            continue;
        }
        if line.len() > sink.max_line {
            sink.stats.dropped(DropReason::TooLong, 1);
            continue;
        }
        match wire::parse_line(line) {
            Ok(Some(p)) => points.push(p),
            Ok(None) => {}
            Err(e) => sink.stats.bad(&e),
        }
    }
    sink.store(&points);
}

/// Length-prefixed pickle frames on one connection.
pub fn serve_pickle(mut stream: TcpStream, sink: &Sink, stopping: &AtomicBool) {
    let _account = accounts::enter(Account::Tsdb);
    loop {
        let mut len = [0u8; 4];
        if !sink.wait_for_memory(stopping) || !read_exact(&mut stream, &mut len, stopping) {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > sink.max_frame {
            sink.stats.bad(&format!(
                "pickle frame of {len} bytes is over carbon.max_pickle_frame ({} bytes); closing the connection",
                sink.max_frame
            ));
            return;
        }
        let mut payload = vec![0u8; len];
        if !read_exact(&mut stream, &mut payload, stopping) {
            return;
        }
        match wire::parse_pickle(&payload) {
            Ok(batch) => {
                for _ in 0..batch.skipped {
                    sink.stats.bad(&"pickle element is not (path, (timestamp, value))");
                }
                sink.store(&batch.points);
            }
            Err(e) => sink.stats.bad(&e),
        }
    }
}

/// Fills `buf` unless the peer closes or the appliance stops first.
fn read_exact(stream: &mut TcpStream, buf: &mut [u8], stopping: &AtomicBool) -> bool {
    let mut at = 0;
    while at < buf.len() {
        match stream.read(&mut buf[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if is_idle(&e) => {
                if stopping.load(Ordering::Acquire) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Plaintext datagrams, each holding one or more lines, on a blocking thread.
pub fn serve_udp(socket: UdpSocket, sink: &Sink, stop: &watch::Receiver<bool>) {
    let _account = accounts::enter(Account::Tsdb);
    if let Err(e) = socket.set_read_timeout(Some(POLL)) {
        tracing::error!(error = %e, "cannot set a read timeout on the carbon UDP socket");
        return;
    }
    // A datagram can carry at most 64 KiB.
    let mut buf = vec![0u8; 65_536];
    while !*stop.borrow() {
        match socket.recv(&mut buf) {
            Ok(n) if sink.pressure.load(Ordering::Relaxed) => {
                // No acknowledgement to withhold: shed, and count the lines.
                let lines = buf[..n].split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
                sink.stats.dropped(DropReason::Memory, lines as u64);
            }
            Ok(n) => plaintext_lines(&buf[..n], sink),
            Err(e) if is_idle(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "carbon UDP receive failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
