//! `instantops bench statsd`: a real statsd load generator. It sends UDP
//! datagrams of `--per-packet` lines (counters with and without sample rates,
//! timers, gauges and sets over `--series` names, as apps send them) at a
//! total rate of metrics per second from several sender threads, then
//! reports what it sent. Receivers' own counters tell what arrived.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::splitmix::SplitMix;

/// Distinct datagrams each sender cycles through: with 30 lines each, more
/// than 100k lines, so every name of a 10k-series load recurs with new values.
const POOL: usize = 4096;

/// What to send and where.
#[derive(Clone, Debug)]
pub struct Plan {
    pub to: String,
    /// Metric lines per second in total; 0 sends as fast as the threads can.
    pub rate: u64,
    pub duration: Duration,
    pub per_packet: u64,
    pub series: u64,
    pub threads: u64,
    pub prefix: String,
}

/// What was sent.
#[derive(Debug, Default)]
pub struct Report {
    pub metrics: u64,
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams the local kernel refused to send (ENOBUFS and friends).
    pub send_errors: u64,
    pub secs: f64,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "sent {} metrics in {} datagrams ({:.1} MB) in {:.2} s: {:.0} metrics/s, {:.0} datagrams/s; {} send errors",
            self.metrics,
            self.datagrams,
            self.bytes as f64 / 1e6,
            self.secs,
            self.metrics as f64 / self.secs.max(1e-9),
            self.datagrams as f64 / self.secs.max(1e-9),
            self.send_errors
        )
    }
}

/// Appends one metric line for series `i`.
fn line(out: &mut Vec<u8>, prefix: &str, i: u64, rng: &mut SplitMix) {
    use std::io::Write as _;
    let _ = match i % 8 {
        // Counters, the commonest; one in four sampled at 10 %.
        0..=2 => write!(out, "{prefix}.counter.c{i}:{}|c", 1 + rng.below(5)),
        3 => write!(out, "{prefix}.counter.c{i}:1|c|@0.1"),
        // Timings in whole and fractional milliseconds.
        4 | 5 => write!(out, "{prefix}.timer.t{i}:{}.{}|ms", 5 + rng.below(500), rng.below(10)),
        6 => write!(out, "{prefix}.gauge.g{i}:{}|g", rng.below(10_000)),
        _ => write!(out, "{prefix}.set.s{i}:user{}|s", rng.below(1000)),
    };
}

/// Runs the plan and reports.
pub fn run(plan: &Plan) -> Result<Report, String> {
    let threads = plan.threads.max(1);
    let per_packet = plan.per_packet.max(1);
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for t in 0..threads {
        let plan = plan.clone();
        workers.push(std::thread::spawn(move || -> Result<Report, String> {
            let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("cannot open a UDP socket: {e}"))?;
            socket.connect(&plan.to).map_err(|e| format!("cannot reach {}: {e}", plan.to))?;
            let mut rng = SplitMix(0x57A7 ^ t);
            let my_rate = plan.rate as f64 / threads as f64;
            let mut report = Report::default();
            // Datagrams are made before the clock starts and sent in turn, so
            // the sender's cost is the sending, not the formatting (it shares
            // the machine with the receiver under test).
            let mut next = t;
            let pool: Vec<Vec<u8>> = (0..POOL)
                .map(|_| {
                    let mut packet = Vec::with_capacity(2048);
                    for k in 0..per_packet {
                        if k > 0 {
                            packet.push(b'\n');
                        }
                        line(&mut packet, &plan.prefix, next % plan.series.max(1), &mut rng);
                        next += threads;
                    }
                    packet
                })
                .collect();
            let mut cycle = pool.iter().cycle();
            // Datagrams between clock reads and pacing: about a millisecond's
            // worth, so a paced load is smooth (bursts would overflow a small
            // receive buffer at rates the receiver keeps up with); 64 unpaced.
            let burst = if plan.rate == 0 { 64 } else { ((my_rate / per_packet as f64 / 1000.0).ceil() as usize).clamp(1, 64) };
            let begun = Instant::now();
            while Instant::now() < deadline {
                for _ in 0..burst {
                    let packet = cycle.next().expect("a cycle never ends");
                    match socket.send(packet) {
                        Ok(_) => {
                            report.metrics += per_packet;
                            report.datagrams += 1;
                            report.bytes += packet.len() as u64;
                        }
                        Err(_) => report.send_errors += 1,
                    }
                }
                if plan.rate > 0 {
                    let due = Duration::from_secs_f64(report.metrics as f64 / my_rate);
                    if let Some(ahead) = due.checked_sub(begun.elapsed()) {
                        std::thread::sleep(ahead);
                    }
                }
            }
            Ok(report)
        }));
    }
    let mut total = Report::default();
    for w in workers {
        let r = w.join().map_err(|_| "a sender thread panicked".to_string())??;
        total.metrics += r.metrics;
        total.datagrams += r.datagrams;
        total.bytes += r.bytes;
        total.send_errors += r.send_errors;
    }
    total.secs = started.elapsed().as_secs_f64();
    Ok(total)
}
