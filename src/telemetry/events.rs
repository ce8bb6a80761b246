//! Typed ingest events that count and log in one place, so every input reports
//! accepted, bad and dropped input the same way (as vector's internal_events).
//! Bad input is routine: it is counted always and logged at most once a second
//! per input, with the offending bytes cut to 200.

use std::fmt::Display;

use super::logging::RateLimit;
use super::registry::{Counter, Gauge, Registry};

/// Why accepted-looking input was not stored.
#[derive(Clone, Copy, Debug)]
pub enum DropReason {
    /// Older than the series' longest retention.
    TooOld,
    /// More than the allowed skew in the future.
    Future,
    /// Longer than the configured line / frame / datagram limit.
    TooLong,
    /// Received while the appliance could not keep up (UDP only).
    Overload,
    /// A new series past a configured bound on series held (statsd.max_series).
    SeriesLimit,
    /// Part of a message that never completed (GELF chunks past their timeout).
    Incomplete,
    /// Received while the process was at the pressure mark of memory.limit
    /// (inputs without acknowledgement; the others push back instead).
    Memory,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::TooOld => "too_old",
            DropReason::Future => "future",
            DropReason::TooLong => "too_long",
            DropReason::Overload => "overload",
            DropReason::SeriesLimit => "series_limit",
            DropReason::Incomplete => "incomplete",
            DropReason::Memory => "memory",
        }
    }
}

/// The counters of one input (one listener).
pub struct InputStats {
    input: &'static str,
    received: Counter,
    bad: Counter,
    dropped: [Counter; 7],
    connections: Gauge,
    limiter: RateLimit,
}

impl InputStats {
    pub fn new(registry: &Registry, input: &'static str) -> InputStats {
        let labels = [("input", input)];
        let dropped = [
            DropReason::TooOld,
            DropReason::Future,
            DropReason::TooLong,
            DropReason::Overload,
            DropReason::SeriesLimit,
            DropReason::Incomplete,
            DropReason::Memory,
        ]
        .map(|r| {
            registry.counter(
                "instantops_dropped_total",
                "Input refused after parsing, by input and reason.",
                &[("input", input), ("reason", r.label())],
            )
        });
        InputStats {
            input,
            received: registry.counter("instantops_received_total", "Points, samples or events accepted, by input.", &labels),
            bad: registry.counter(
                "instantops_bad_lines_total",
                "Lines, frames or events that could not be parsed (bad_lines_seen), by input.",
                &labels,
            ),
            dropped,
            connections: registry.gauge("instantops_connections", "Open connections, by input.", &labels),
            limiter: RateLimit::new(),
        }
    }

    pub fn input(&self) -> &'static str {
        self.input
    }

    pub fn received(&self, n: u64) {
        self.received.add(n);
    }

    /// One bad line or frame: counted, and logged at most once a second.
    pub fn bad(&self, error: &dyn Display) {
        self.bad.inc();
        if self.limiter.allow() {
            tracing::warn!(input = self.input, error = %error, total = self.bad.get(), "bad input skipped (logged at most once a second)");
        }
    }

    /// `n` items parsed but not stored.
    pub fn dropped(&self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        self.dropped[reason as usize].add(n);
        if self.limiter.allow() {
            tracing::warn!(input = self.input, reason = reason.label(), count = n, "input dropped (logged at most once a second)");
        }
    }

    pub fn connection_opened(&self) {
        self.connections.add(1);
    }

    pub fn connection_closed(&self) {
        self.connections.add(-1);
    }

    pub fn bad_total(&self) -> u64 {
        self.bad.get()
    }
}
