//! statsd's threads: UDP receivers, TCP connections (newline framing as Etsy's
//! TCP server frames it) and the flusher that writes each interval into the
//! time-series store, plus DogStatsD events into the store's events.
//!
//! Everything funnels into one [`Aggregator`] behind a mutex, taken once per
//! packet. A flush takes the aggregate under the lock and writes it outside.

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::aggregate::Aggregator;
use super::wire::{self, Event, Line};
use crate::carbon::wire::canonical_name;
use crate::listen::{POLL, is_idle};
use crate::telemetry::accounts::{self, Account};
use crate::telemetry::{Counter, DropReason, InputStats, Registry};
use crate::tsdb::store::unix_now;
use crate::tsdb::{Incoming, Store};

/// The state all of statsd's threads share.
pub struct Statsd {
    aggregator: Mutex<Aggregator>,
    pub store: Arc<Store>,
    pub max_packet: usize,
    pub interval: Duration,
    /// The admin console's `health up|down`.
    pub healthy: AtomicBool,
    /// Process start, epoch seconds.
    pub started: i64,
    flushes: Counter,
    flush_errors: Counter,
    points: Counter,
    /// Flushed points of new series the store refused, by reason.
    refused_limit: Counter,
    refused_memory: Counter,
    events: Counter,
    /// The log store, when it runs: DogStatsD events go there too.
    logs: Option<Arc<crate::logs::pipeline::Logs>>,
    /// Events the log store refused (overloaded); UDP cannot wait.
    events_dropped: Counter,
}

impl Statsd {
    pub fn new(
        aggregator: Aggregator,
        store: Arc<Store>,
        max_packet: usize,
        interval: Duration,
        started: i64,
        registry: &Registry,
        logs: Option<Arc<crate::logs::pipeline::Logs>>,
    ) -> Statsd {
        Statsd {
            aggregator: Mutex::new(aggregator),
            store,
            max_packet,
            interval,
            healthy: AtomicBool::new(true),
            started,
            flushes: registry.counter("instantops_statsd_flushes_total", "statsd flushes written to the store.", &[]),
            flush_errors: registry.counter("instantops_statsd_flush_errors_total", "statsd flushes the store refused.", &[]),
            points: registry.counter("instantops_statsd_points_total", "Points statsd flushes wrote.", &[]),
            refused_limit: registry.counter(
                "instantops_statsd_points_refused_total",
                "Flushed points of new series the store refused, by reason.",
                &[("reason", "series_limit")],
            ),
            refused_memory: registry.counter(
                "instantops_statsd_points_refused_total",
                "Flushed points of new series the store refused, by reason.",
                &[("reason", "memory")],
            ),
            events: registry.counter("instantops_statsd_events_total", "DogStatsD events stored as Graphite events.", &[]),
            logs,
            events_dropped: registry.counter(
                "instantops_statsd_events_dropped_total",
                "DogStatsD events the log store refused while overloaded.",
                &[],
            ),
        }
    }

    /// The aggregate (a poisoned lock is taken over: its state is plain data).
    pub fn lock(&self) -> MutexGuard<'_, Aggregator> {
        self.aggregator.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One input: the shared state and that input's counters.
#[derive(Clone)]
pub struct Input {
    pub statsd: Arc<Statsd>,
    pub stats: Arc<InputStats>,
}

/// One packet (a datagram, or the complete lines of one TCP read).
pub fn handle(input: &Input, packet: &[u8]) {
    let _account = accounts::enter(Account::Statsd);
    let stats = &input.stats;
    let mut events: Vec<Event> = Vec::new();
    // One UTF-8 check for the whole packet; a packet that fails it is checked
    // line by line, so its good lines still count.
    let text = std::str::from_utf8(packet).ok();
    let decoded: Box<dyn Iterator<Item = Result<Line<'_>, wire::WireError>>> = match text {
        Some(text) => Box::new(wire::text_lines(text).map(wire::parse_text)),
        None => Box::new(wire::lines(packet).map(wire::parse_line)),
    };
    {
        let mut agg = input.statsd.lock();
        agg.packet(i64::from(unix_now()));
        for line in decoded {
            agg.line();
            match line {
                Ok(Line::Metric(metric)) => {
                    let applied = agg.apply(&metric, |e| stats.bad(e));
                    stats.received(applied.samples);
                    stats.dropped(DropReason::SeriesLimit, applied.over_limit);
                }
                Ok(Line::ServiceCheck(check)) => {
                    if agg.service_check(&check) {
                        stats.received(1);
                    } else {
                        stats.dropped(DropReason::SeriesLimit, 1);
                    }
                }
                Ok(Line::Event(event)) => events.push(event),
                Err(e) => {
                    agg.bad_line();
                    stats.bad(&e);
                }
            }
        }
    }
    for event in events {
        store_event(&input.statsd, &event);
        stats.received(1);
    }
}

/// A DogStatsD event as a Graphite event (compat-spec 2.5): `what` the title,
/// `data` the text, tags the sender's plus alert type, priority, source and host.
fn store_event(statsd: &Statsd, event: &Event) {
    let mut tags = event.tags.clone();
    tags.push(format!("alert_type:{}", event.alert_type));
    tags.push(format!("priority:{}", event.priority));
    tags.extend(event.source_type.iter().map(|s| format!("source:{s}")));
    tags.extend(event.host.iter().map(|h| format!("host:{h}")));
    let body = serde_json::json!({ "what": event.title, "data": event.text, "tags": tags.join(" ") });
    let when = event.timestamp.unwrap_or_else(|| i64::from(unix_now()));
    match statsd.store.add_event(when, body.to_string().as_bytes()) {
        Ok(_) => statsd.events.inc(),
        Err(e) => tracing::error!(error = %e, "cannot store a DogStatsD event"),
    }
    if let Some(logs) = &statsd.logs {
        log_event(logs, statsd, event, when);
    }
}

/// A DogStatsD event as a log event: `message` the title, the rest as fields.
fn log_event(logs: &crate::logs::pipeline::Logs, statsd: &Statsd, event: &Event, when: i64) {
    use serde_json::Value;
    let mut fields = crate::logs::event::Fields::new();
    fields.insert("message".into(), Value::String(event.title.clone()));
    if !event.text.is_empty() {
        fields.insert("text".into(), Value::String(event.text.clone()));
    }
    fields.insert("type".into(), Value::String("dogstatsd_event".into()));
    fields.insert("alert_type".into(), Value::String(event.alert_type.clone()));
    fields.insert("priority".into(), Value::String(event.priority.clone()));
    for (k, v) in [("host", &event.host), ("aggregation_key", &event.aggregation_key), ("source_type_name", &event.source_type)] {
        if let Some(v) = v {
            fields.insert(k.into(), Value::String(v.clone()));
        }
    }
    fields.insert("tags".into(), Value::Array(event.tags.iter().cloned().map(Value::String).collect()));
    let parsed = crate::logs::event::Parsed { ts_ms: when.saturating_mul(1000), fields };
    let Ok(event) = crate::logs::event::IntoEvent::into_event(parsed, "statsd", None, usize::MAX) else { return };
    let op = crate::logs::pipeline::Op::add(event);
    if logs.admit().and_then(|()| logs.submit(vec![op])).is_err() {
        statsd.events_dropped.inc();
    }
}

/// Datagrams on a blocking thread until `stop`. A datagram longer than
/// `max_packet` is dropped whole and counted.
pub fn serve_udp(socket: UdpSocket, input: &Input, stop: &watch::Receiver<bool>) {
    if let Err(e) = socket.set_read_timeout(Some(POLL)) {
        tracing::error!(error = %e, "cannot set a read timeout on the statsd UDP socket");
        return;
    }
    // One byte past the limit tells a datagram at the limit from a longer one;
    // no datagram exceeds 64 KiB.
    let mut buf = vec![0u8; (input.statsd.max_packet + 1).min(65_536)];
    while !*stop.borrow() {
        match socket.recv(&mut buf) {
            Ok(n) if n > input.statsd.max_packet => input.stats.dropped(DropReason::TooLong, 1),
            Ok(n) => handle(input, &buf[..n]),
            Err(e) if is_idle(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "statsd UDP receive failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// One TCP connection: each read's complete lines are one packet, the rest
/// waits for its newline, and what is left without one at close is dropped
/// (Etsy's TCP server). A line longer than `max_packet` is dropped and counted.
pub fn serve_tcp(mut stream: TcpStream, input: &Input, stopping: &AtomicBool) {
    let max = input.statsd.max_packet;
    let mut buf = vec![0u8; max.max(64 << 10)];
    let (mut filled, mut skipping) = (0, false);
    loop {
        if filled == buf.len() {
            // No newline in a full buffer: an over-long line, dropped up to its newline.
            if !skipping {
                input.stats.dropped(DropReason::TooLong, 1);
            }
            (skipping, filled) = (true, 0);
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
        let new = filled..filled + n;
        filled += n;
        let Some(last) = buf[new].iter().rposition(|b| *b == b'\n').map(|i| i + filled - n) else { continue };
        let mut packet = &buf[..last + 1];
        if skipping {
            let end = packet.iter().position(|b| *b == b'\n').map_or(packet.len(), |i| i + 1);
            packet = &packet[end..];
            skipping = false;
        }
        let (kept, long): (Vec<&[u8]>, usize) = split_long(packet, max);
        if long > 0 {
            input.stats.dropped(DropReason::TooLong, long as u64);
        }
        if !kept.is_empty() {
            handle(input, &kept.concat());
        }
        buf.copy_within(last + 1..filled, 0);
        filled -= last + 1;
    }
}

/// The lines of `packet` no longer than `max`, and how many were longer.
fn split_long(packet: &[u8], max: usize) -> (Vec<&[u8]>, usize) {
    if packet.len() <= max {
        return (vec![packet], 0);
    }
    let mut long = 0;
    let kept = packet
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| {
            let ok = line.len() <= max + 1;
            long += usize::from(!ok);
            ok
        })
        .collect();
    (kept, long)
}

/// Flushes every interval, aligned to the start (as Etsy's `setInterval`),
/// and once more on stop when anything arrived since the last flush, so the
/// current interval is not lost. (An empty stop flush would only overwrite
/// the last flush's slot with zeros: a flush lands on its time rounded to the
/// archive's step, which a flush moments earlier may share.)
pub fn flush_loop(statsd: &Statsd, stop: &watch::Receiver<bool>) {
    let begun = Instant::now();
    let mut tick = 1u32;
    loop {
        let due = begun + statsd.interval * tick;
        loop {
            if *stop.borrow() {
                if statsd.lock().has_input() {
                    flush(statsd);
                }
                return;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        }
        flush(statsd);
        // A flush that overran skips the ticks it missed instead of bunching.
        let elapsed = begun.elapsed().as_nanos() / statsd.interval.as_nanos().max(1);
        tick = u32::try_from(elapsed).unwrap_or(u32::MAX).saturating_add(1).max(tick + 1);
    }
}

/// Points a statsd flush hands the store at a time.
const FLUSH_SLICE: usize = 8192;

/// One flush: the aggregate under the lock, the store write outside it.
pub fn flush(statsd: &Statsd) {
    let _account = accounts::enter(Account::Statsd);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Only the taking holds the lock; names and timer fields are computed after.
    let snapshot = statsd.lock().take(now_ms);
    let flushed = snapshot.flushed();
    let started = Instant::now();
    let mut skipped = 0;
    let mut ok = true;
    // Into the store a slice at a time, flushing the store's head whenever it
    // is full, as the carbon TCP inputs do: a flush names every key (a timer
    // gives fourteen), and whole it was the process's largest transient.
    for slice in flushed.points.chunks(FLUSH_SLICE) {
        let names: Vec<Option<std::borrow::Cow<'_, str>>> = slice.iter().map(|(name, _)| canonical_name(name).ok()).collect();
        skipped += names.iter().filter(|n| n.is_none()).count();
        let batch: Vec<Incoming<'_>> = slice
            .iter()
            .zip(&names)
            // NaN is no value (carbon drops it); a name carbon would refuse is skipped.
            .filter_map(|((_, value), name)| {
                Some(Incoming { name: name.as_deref()?, ts: flushed.timestamp, value: *value }).filter(|_| !value.is_nan())
            })
            .collect();
        let now = unix_now();
        match statsd.store.ingest(&batch, now) {
            Ok(outcome) => {
                statsd.points.add(outcome.accepted);
                statsd.refused_limit.add(outcome.refused_limit);
                statsd.refused_memory.add(outcome.refused_memory);
                if outcome.refused_limit + outcome.refused_memory > 0 {
                    tracing::warn!(
                        series_limit = outcome.refused_limit,
                        memory = outcome.refused_memory,
                        "the store refused points of new statsd series"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store a statsd flush");
                ok = false;
            }
        }
        if let Err(e) = statsd.store.flush_if_full(now) {
            tracing::error!(error = %e, "cannot flush the store's head during a statsd flush");
            ok = false;
        }
    }
    if skipped > 0 {
        tracing::warn!(skipped, "statsd names that are not valid Graphite paths were not stored");
    }
    if !ok {
        statsd.flush_errors.inc();
    }
    statsd.flushes.inc();
    statsd.lock().record_write(started.elapsed().as_secs_f64() * 1000.0, flushed.length, ok, flushed.timestamp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_split_off() {
        let (kept, long) = split_long(b"a:1|c\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:1|c\nc:1|c\n", 10);
        assert_eq!((kept, long), (vec![&b"a:1|c\n"[..], b"c:1|c\n"], 1));
    }
}
