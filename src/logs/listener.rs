//! The log inputs' sockets: syslog over UDP and TCP, logstash `json_lines`
//! over TCP, GELF over UDP, the Redis-protocol receiver, and the puller of
//! existing Redis lists. Each turns what it reads into events through the
//! pure decoders in `inputs/`, and hands them to [`Logs`] with the
//! acknowledgement its protocol has: TCP and RESP wait until the events are
//! durable before reading on or replying (so a slow index stops reading),
//! UDP submits and drops, counted, when the log is overloaded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::event::{IntoEvent, from_json_line};
use super::inputs::{gelf, resp, syslog};
use super::pipeline::{IngestError, Logs, Op};
use super::time::now_ms;
use crate::listen::{POLL, is_idle};
use crate::telemetry::accounts::{self, Account};
use crate::telemetry::{DropReason, InputStats};

/// What one input needs: the log, its counters and the size bounds.
#[derive(Clone)]
pub struct Input {
    pub logs: Arc<Logs>,
    pub stats: Arc<InputStats>,
    pub max_event: usize,
    pub max_fields: usize,
}

impl Input {
    /// One parsed event as an [`Op`], or counted as bad.
    pub fn op(&self, parsed: impl IntoEvent, peer: Option<&str>) -> Option<Op> {
        match parsed.into_event(self.stats.input(), peer, self.max_fields) {
            Ok(event) => Some(Op::add(event)),
            Err(e) => {
                self.stats.bad(&e);
                None
            }
        }
    }

    /// Submits `ops` for an input that can wait: while the log is overloaded
    /// it waits (the connection is not read meanwhile), until `stopping`.
    /// Returns the WAL position to wait for.
    fn submit_waiting(&self, ops: Vec<Op>, stopping: &AtomicBool) -> Option<u64> {
        if ops.is_empty() {
            return None;
        }
        while self.logs.admit().is_err() && !stopping.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.submit(ops)
    }

    /// Submits `ops` (admission already decided) and counts them.
    fn submit(&self, ops: Vec<Op>) -> Option<u64> {
        let n = ops.len() as u64;
        match self.logs.submit(ops) {
            Ok(end) => {
                self.stats.received(n);
                Some(end)
            }
            Err(e) => {
                self.stats.dropped(DropReason::Overload, n);
                tracing::warn!(input = self.stats.input(), error = %e, "log events refused");
                None
            }
        }
    }

    /// Submits without waiting (UDP): refused batches are dropped and counted.
    fn submit_or_drop(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let n = ops.len() as u64;
        match self.logs.admit().and_then(|()| self.logs.submit(ops)) {
            Ok(_) => self.stats.received(n),
            Err(IngestError::Memory) => self.stats.dropped(DropReason::Memory, n),
            Err(_) => self.stats.dropped(DropReason::Overload, n),
        }
    }

    /// Events from whole JSON documents (Redis elements): one or more each.
    fn json_values(&self, values: &[Vec<u8>]) -> Vec<Op> {
        let now = now_ms();
        values.iter().flat_map(|v| from_json_line(v, now)).filter_map(|parsed| self.op(parsed, None)).collect()
    }

    /// Submits `ops` (admission already decided) and waits until they are
    /// durable: false when they are not, and the sender must not be told so.
    fn durable(&self, ops: Vec<Op>) -> bool {
        if ops.is_empty() {
            return true;
        }
        match self.submit(ops) {
            Some(end) => self.wait(Some(end)),
            None => false,
        }
    }

    fn wait(&self, end: Option<u64>) -> bool {
        match end.map(|e| self.logs.wait(e)) {
            Some(Err(e)) => {
                tracing::warn!(input = self.stats.input(), error = %e, "log events not made durable");
                false
            }
            _ => true,
        }
    }
}

fn peer_host(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

/// Syslog over UDP: one message a datagram (RFC 5426).
pub fn serve_syslog_udp(socket: UdpSocket, input: &Input, stop: &watch::Receiver<bool>) {
    let _account = accounts::enter(Account::Logs);
    let decode = |input: &Input, datagram: &[u8], peer: SocketAddr, _: Instant| {
        let parsed = syslog::parse(datagram, now_ms());
        input.op(parsed, Some(&peer_host(&peer)))
    };
    serve_udp(socket, input, stop, decode, |_, _| {});
}

/// GELF over UDP: plain, gzip, zlib, chunked; incomplete messages expire.
pub fn serve_gelf_udp(socket: UdpSocket, input: &Input, stop: &watch::Receiver<bool>) {
    let _account = accounts::enter(Account::Logs);
    let chunks = std::cell::RefCell::new(gelf::Chunks::new(input.max_event, 4096, Duration::from_secs(5)));
    let mut last_expiry = Instant::now();
    let decode = |input: &Input, datagram: &[u8], peer: SocketAddr, now: Instant| match gelf::datagram(
        &mut chunks.borrow_mut(),
        datagram,
        now,
        now_ms(),
        input.max_event,
        input.max_fields,
    ) {
        Ok(Some(parsed)) => input.op(parsed, Some(&peer_host(&peer))),
        Ok(None) => None,
        Err(e) => {
            input.stats.bad(&e);
            None
        }
    };
    let tick = |input: &Input, now: Instant| {
        if now.duration_since(last_expiry) >= Duration::from_secs(1) {
            last_expiry = now;
            input.stats.dropped(DropReason::Incomplete, chunks.borrow_mut().expire(now) as u64);
        }
    };
    serve_udp(socket, input, stop, decode, tick);
}

/// The UDP receive loop: datagrams read in a burst go to the log as one
/// batch; `tick` runs after each burst and each idle poll (time-based work).
fn serve_udp(
    socket: UdpSocket,
    input: &Input,
    stop: &watch::Receiver<bool>,
    mut decode: impl FnMut(&Input, &[u8], SocketAddr, Instant) -> Option<Op>,
    mut tick: impl FnMut(&Input, Instant),
) {
    if let Err(e) = socket.set_read_timeout(Some(POLL)) {
        tracing::error!(input = input.stats.input(), error = %e, "cannot set a read timeout on a log UDP socket");
        return;
    }
    let mut buf = vec![0u8; 65_536];
    let mut batch = Vec::new();
    while !*stop.borrow() {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                if let Some(op) = decode(input, &buf[..n], peer, Instant::now()) {
                    batch.push(op);
                }
                // Drain what is already queued without blocking, then submit once.
                if socket.set_nonblocking(true).is_ok() {
                    while batch.len() < 512 {
                        let Ok((n, peer)) = socket.recv_from(&mut buf) else { break };
                        if let Some(op) = decode(input, &buf[..n], peer, Instant::now()) {
                            batch.push(op);
                        }
                    }
                    let _ = socket.set_nonblocking(false);
                }
                input.submit_or_drop(std::mem::take(&mut batch));
                tick(input, Instant::now());
            }
            Err(e) if is_idle(&e) => tick(input, Instant::now()),
            Err(e) => {
                tracing::warn!(input = input.stats.input(), error = %e, "log UDP receive failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Syslog over TCP: octet-counted or trailer-framed messages (RFC 6587).
pub fn serve_syslog_tcp(stream: TcpStream, input: &Input, stopping: &AtomicBool) {
    let _account = accounts::enter(Account::Logs);
    let peer = stream.peer_addr().map(|a| peer_host(&a)).ok();
    let mut framer = syslog::Framer::new(input.max_event);
    serve_stream(stream, input, stopping, |input, data, ops, closing| {
        framer.push(data);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Ok(frame) => ops.extend(input.op(syslog::parse(&frame, now_ms()), peer.as_deref())),
                Err(e) => {
                    input.stats.bad(&e);
                    return false;
                }
            }
        }
        if closing && let Some(frame) = framer.finish() {
            ops.extend(input.op(syslog::parse(&frame, now_ms()), peer.as_deref()));
        }
        true
    });
}

/// logstash `json_lines` over TCP: one JSON document a line.
pub fn serve_json_tcp(stream: TcpStream, input: &Input, stopping: &AtomicBool) {
    let _account = accounts::enter(Account::Logs);
    let peer = stream.peer_addr().map(|a| peer_host(&a)).ok();
    let mut lines = Lines::new(input.max_event);
    serve_stream(stream, input, stopping, |input, data, ops, closing| {
        lines.push(data, closing, |line| match line {
            Ok(line) => {
                for parsed in from_json_line(line, now_ms()) {
                    ops.extend(input.op(parsed, peer.as_deref()));
                }
            }
            Err(len) => input.stats.bad(&format!("json line of {len} bytes is over logs.max_event {}", input.max_event)),
        });
        true
    });
}

/// Reads a stream and feeds `decode` until EOF, an error or a stop. Each
/// read's events are submitted; the read after waits for the submission
/// before it, so one batch is in flight while the next is read and nothing
/// read is lost on an orderly close. `decode` returns false to close.
fn serve_stream(
    mut stream: TcpStream,
    input: &Input,
    stopping: &AtomicBool,
    mut decode: impl FnMut(&Input, &[u8], &mut Vec<Op>, bool) -> bool,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut in_flight: Option<u64> = None;
    loop {
        let (data, closing) = match stream.read(&mut buf) {
            Ok(0) => (&[][..], true),
            Ok(n) => (&buf[..n], false),
            Err(e) if is_idle(&e) => {
                if stopping.load(Ordering::Acquire) {
                    (&[][..], true)
                } else {
                    continue;
                }
            }
            Err(_) => (&[][..], true),
        };
        let mut ops = Vec::new();
        let keep = decode(input, data, &mut ops, closing);
        let end = input.submit_waiting(ops, stopping);
        if !input.wait(in_flight.take()) {
            return;
        }
        in_flight = end;
        if closing || !keep {
            input.wait(in_flight);
            return;
        }
    }
}

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` is
/// trimmed) without holding more than `max` bytes of one line.
pub struct Lines {
    buf: Vec<u8>,
    max: usize,
    /// Bytes of an over-long line being skipped until its end.
    skipping: Option<usize>,
    first: bool,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines { buf: Vec::new(), max, skipping: None, first: true }
    }

    /// Feeds `data`; each complete line (or `Err(length)` of an over-long
    /// one) goes to `each`. At `end`, a final unterminated line is flushed.
    pub fn push(&mut self, mut data: &[u8], end: bool, mut each: impl FnMut(Result<&[u8], usize>)) {
        if self.first && !data.is_empty() {
            self.first = false;
            data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        }
        while !data.is_empty() {
            let nl = data.iter().position(|b| *b == b'\n');
            let (part, rest) = match nl {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (data, &[][..]),
            };
            if let Some(skipped) = self.skipping.as_mut() {
                *skipped += part.len();
                if nl.is_some() {
                    each(Err(*skipped));
                    self.skipping = None;
                }
            } else if self.buf.len() + part.len() > self.max {
                let len = self.buf.len() + part.len();
                self.buf.clear();
                if nl.is_some() {
                    each(Err(len));
                } else {
                    self.skipping = Some(len);
                }
            } else if nl.is_some() {
                if self.buf.is_empty() {
                    emit(part, &mut each);
                } else {
                    self.buf.extend_from_slice(part);
                    let line = std::mem::take(&mut self.buf);
                    emit(&line, &mut each);
                }
            } else {
                self.buf.extend_from_slice(part);
            }
            data = rest;
        }
        if end {
            if let Some(skipped) = self.skipping.take() {
                each(Err(skipped));
            }
            let line = std::mem::take(&mut self.buf);
            emit(&line, &mut each);
        }
    }
}

fn emit(line: &[u8], each: &mut impl FnMut(Result<&[u8], usize>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        each(Ok(line));
    }
}

/// The Redis-protocol receiver: RPUSH / LPUSH / PUBLISH of JSON events to any
/// key, answered once they are durable.
pub fn serve_resp(mut stream: TcpStream, input: &Input, stopping: &AtomicBool) {
    let _account = accounts::enter(Account::Logs);
    struct Sink<'a> {
        input: &'a Input,
    }
    impl resp::Sink for Sink<'_> {
        fn push(&mut self, _key: &[u8], values: &[Vec<u8>]) -> Result<u64, String> {
            self.input.logs.admit_within(Duration::from_secs(5)).map_err(|e| e.to_string())?;
            let ops = self.input.json_values(values);
            let n = ops.len() as u64;
            if !self.input.durable(ops) {
                return Err("the log store did not take the events; retry".into());
            }
            Ok(n.min(values.len() as u64))
        }
    }
    let mut session = resp::Session::new(None);
    let mut sink = Sink { input };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_idle(&e) => {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        let mut used = 0;
        let mut close = false;
        // Every complete command in the buffer, answered in order with one write.
        loop {
            match resp::parse(&buf[used..], input.max_event, 1 << 20) {
                Ok(Some((args, consumed))) => {
                    used += consumed;
                    if !args.is_empty() && resp::dispatch(&mut session, &args, &mut sink, &mut out) == resp::After::Close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    input.stats.bad(&e);
                    resp::error(&mut out, &e.to_string());
                    close = true;
                    break;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
        if close {
            return;
        }
    }
}

/// Pulls events from an existing Redis list (`[[logs.redis]]`), at least
/// once: a batch is read with LRANGE, made durable here, and only then
/// removed from Redis with LTRIM.
pub fn pull_redis(url: &str, key: &str, input: &Input, stop: &watch::Receiver<bool>) {
    let _account = accounts::enter(Account::Logs);
    const BATCH: isize = 500;
    while !*stop.borrow() {
        let connection = redis::Client::open(url).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
        let mut con = match connection {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(url, key, error = %e, "cannot connect to redis; retrying in 1 s");
                sleep_unless_stopped(stop, Duration::from_secs(1));
                continue;
            }
        };
        tracing::info!(url, key, "pulling log events from redis");
        while !*stop.borrow() {
            let values: Vec<Vec<u8>> = match redis::cmd("LRANGE").arg(key).arg(0).arg(BATCH - 1).query(&mut con) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(url, key, error = %e, "redis LRANGE failed; reconnecting");
                    break;
                }
            };
            if values.is_empty() {
                sleep_unless_stopped(stop, Duration::from_millis(100));
                continue;
            }
            while input.logs.admit().is_err() && !*stop.borrow() {
                std::thread::sleep(Duration::from_millis(5));
            }
            // Only what is durable here leaves Redis.
            if !input.durable(input.json_values(&values)) {
                sleep_unless_stopped(stop, Duration::from_secs(1));
                continue;
            }
            if let Err(e) = redis::cmd("LTRIM").arg(key).arg(values.len()).arg(-1).query::<()>(&mut con) {
                // The batch stays in Redis and comes again: at least once.
                tracing::warn!(url, key, error = %e, "redis LTRIM failed; the batch will be read again");
                break;
            }
        }
    }
}

fn sleep_unless_stopped(stop: &watch::Receiver<bool>, total: Duration) {
    let until = Instant::now() + total;
    while !*stop.borrow() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20).min(total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            lines.push(c, i + 1 == chunks.len(), |l| out.push(l.map(<[u8]>::to_vec)));
        }
        out
    }

    #[test]
    fn lines_across_reads_with_crlf_bom_and_a_final_unterminated_line() {
        let got = split(&[b"\xEF\xBB\xBF{\"a\":1}\r\n{\"b\"", b":2}\n\n{\"c\":3}"], 100);
        assert_eq!(got, vec![Ok(b"{\"a\":1}".to_vec()), Ok(b"{\"b\":2}".to_vec()), Ok(b"{\"c\":3}".to_vec())]);
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_the_next_line_is_kept() {
        let got = split(&[b"0123456789", b"0123456789\nok\n", b""], 8);
        assert_eq!(got, vec![Err(20), Ok(b"ok".to_vec())]);
    }
}
