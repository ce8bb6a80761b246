//! statsd's management console on `statsd.admin` (Etsy's mgmt_console):
//! line commands `help`, `stats`, `counters`, `timers`, `gauges`,
//! `delcounters`/`deltimers`/`delgauges NAME...`, `health [up|down]`, `config`
//! and `quit`; anything else answers `ERROR`. Dumps are written as Node's
//! `util.inspect` writes an object (one line when it fits in 80 columns,
//! else one entry a line; Node also packs long numeric arrays in columns,
//! which this does not), numbers as JavaScript prints them, and end with
//! `END` and a blank line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};

use super::jsnum;
use super::listener::Statsd;
use crate::listen::is_idle;
use crate::tsdb::store::unix_now;

/// Longest command line read; a longer one closes the connection.
const MAX_COMMAND: usize = 64 << 10;

/// One console connection.
pub fn serve(mut stream: TcpStream, statsd: &std::sync::Arc<Statsd>, stopping: &AtomicBool) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if is_idle(&e) => {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let command = String::from_utf8_lossy(&line);
            let Some(reply) = answer(statsd, command.trim()) else { return };
            if stream.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
        if pending.len() > MAX_COMMAND {
            return;
        }
    }
}

/// The reply to one command; `None` closes the connection (`quit`).
pub fn answer(statsd: &Statsd, command: &str) -> Option<String> {
    let mut words = command.split_whitespace();
    let Some(verb) = words.next() else { return Some(String::new()) };
    let args: Vec<&str> = words.collect();
    let agg = || statsd.lock();
    Some(match verb {
        "help" => "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit\n\n".into(),
        "stats" => {
            let now = i64::from(unix_now());
            let a = agg();
            let status = a.status();
            format!(
                "uptime: {}\nmessages.last_msg_seen: {}\nmessages.bad_lines_seen: {}\ngraphite.last_flush: {}\ngraphite.last_exception: {}\ngraphite.flush_time: {}\ngraphite.flush_length: {}\nEND\n\n",
                now - statsd.started,
                now - a.last_message,
                a.bad_lines_total,
                now - status.last_flush,
                now - status.last_exception,
                jsnum::to_string(status.flush_ms.round()),
                status.flush_length,
            )
        }
        "counters" => {
            let a = agg();
            format!("{}\nEND\n\n", inspect(a.counters().map(|(k, v)| (k.to_string(), jsnum::to_string(v)))))
        }
        "gauges" => {
            let a = agg();
            format!("{}\nEND\n\n", inspect(a.gauges().map(|(k, v)| (k.to_string(), jsnum::to_string(v)))))
        }
        "timers" => {
            let a = agg();
            let entries = a.timers().map(|(k, t)| {
                let values: Vec<String> = t.exact_samples().iter().map(|v| jsnum::to_string(*v)).collect();
                (k.to_string(), inspect_list(&values))
            });
            format!("{}\nEND\n\n", inspect(entries))
        }
        "delcounters" | "deltimers" | "delgauges" => {
            let kind = &verb[3..];
            let mut out = String::new();
            let mut a = agg();
            for name in args {
                if a.delete(kind, name) {
                    out.push_str(&format!("deleted: {name}\n"));
                } else {
                    out.push_str(&format!("metric {name} not found\n"));
                }
            }
            out.push_str("END\n\n");
            out
        }
        "health" => {
            match args.first().map(|a| a.to_lowercase()).as_deref() {
                Some("up") => statsd.healthy.store(true, Ordering::Release),
                Some("down") => statsd.healthy.store(false, Ordering::Release),
                _ => {}
            }
            format!("health: {}\n", if statsd.healthy.load(Ordering::Acquire) { "up" } else { "down" })
        }
        "config" => {
            let a = agg();
            let s = a.settings();
            let thresholds: Vec<String> = s.thresholds.iter().map(|(p, _)| jsnum::to_string(*p)).collect();
            let entries = [
                ("flushInterval", jsnum::to_string(s.interval_s * 1000.0)),
                ("percentThreshold", inspect_list(&thresholds)),
                ("legacyNamespace", s.legacy_namespace.to_string()),
                ("deleteCounters", s.delete_counters.to_string()),
                ("deleteTimers", s.delete_timers.to_string()),
                ("deleteGauges", s.delete_gauges.to_string()),
                ("deleteSets", s.delete_sets.to_string()),
                ("gaugesMaxTTL", s.gauges_max_ttl.to_string()),
            ];
            format!("{}\nEND\n\n", inspect(entries.into_iter().map(|(k, v)| (k.to_string(), v))))
        }
        "quit" => return None,
        _ => "ERROR\n".into(),
    })
}

/// An object as `util.inspect` prints it: `{ key: value, ... }` on one line
/// when it fits, else one `key: value` a line indented by two.
fn inspect(entries: impl Iterator<Item = (String, String)>) -> String {
    let items: Vec<String> = entries.map(|(k, v)| format!("{}: {v}", key(&k))).collect();
    wrap(&items, "{", "}")
}

fn inspect_list(values: &[String]) -> String {
    wrap(values, "[", "]")
}

fn wrap(items: &[String], open: &str, close: &str) -> String {
    if items.is_empty() {
        return format!("{open}{close}");
    }
    // Node's isBelowBreakLength: entries plus separators within 80 columns.
    let total: usize = items.iter().map(String::len).sum::<usize>() + items.len() + open.len() + 10;
    if total <= 80 && !items.iter().any(|i| i.contains('\n')) {
        format!("{open} {} {close}", items.join(", "))
    } else {
        let body: Vec<String> = items.iter().map(|i| format!("  {}", i.replace('\n', "\n  "))).collect();
        format!("{open}\n{}\n{close}", body.join(",\n"))
    }
}

/// A key bare when it is an identifier, else in single quotes.
fn key(k: &str) -> String {
    let identifier = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier { k.to_string() } else { format!("'{}'", k.replace('\\', "\\\\").replace('\'', "\\'")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_like_node() {
        assert_eq!(inspect([("a".to_string(), "1".to_string()), ("b.c".to_string(), "2".to_string())].into_iter()), "{ a: 1, 'b.c': 2 }");
        let long: Vec<(String, String)> = (0..8).map(|i| (format!("statsd.metric_{i}"), i.to_string())).collect();
        let text = inspect(long.into_iter());
        assert!(text.starts_with("{\n  'statsd.metric_0': 0,\n"), "{text}");
        assert!(text.ends_with("\n}"), "{text}");
        assert_eq!(inspect_list(&["100".into(), "200".into()]), "[ 100, 200 ]");
        assert_eq!(inspect(std::iter::empty()), "{}");
    }
}
