//! The appliance's own log: `tracing` to stderr, human-readable or JSON lines,
//! with a level that can be changed while running. Also [`RateLimit`], which
//! keeps bad-input warnings to at most one a second per source.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, reload};

use super::{LogConfig, LogFormat};

/// Changes the log level at run time.
#[derive(Clone)]
pub struct LogHandle {
    reload: Option<reload::Handle<LevelFilter, Registry>>,
}

impl LogHandle {
    /// A handle that changes nothing (when another subscriber was installed first).
    pub fn detached() -> LogHandle {
        LogHandle { reload: None }
    }

    pub fn level(&self) -> String {
        self.reload.as_ref().and_then(|h| h.clone_current()).map_or_else(|| "unknown".to_string(), |l| l.to_string().to_lowercase())
    }

    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = parse_level(level)?;
        match &self.reload {
            Some(h) => h.reload(filter).map_err(|e| format!("cannot change the log level: {e}")),
            None => Err("the log level is not adjustable in this process".into()),
        }
    }
}

pub fn parse_level(level: &str) -> Result<LevelFilter, String> {
    match level.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::OFF),
        "error" => Ok(LevelFilter::ERROR),
        "warn" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        other => Err(format!("unknown log level {other:?} (use off, error, warn, info, debug, trace)")),
    }
}

/// Installs the process-wide subscriber. Only the first call in a process wins.
pub fn init(config: &LogConfig) -> LogHandle {
    let level = parse_level(&config.level).unwrap_or(LevelFilter::INFO);
    let (filter, handle) = reload::Layer::new(level);
    let (text, json) = match config.format {
        LogFormat::Text => {
            // Colours only for a person at a terminal, never in files or journald.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            (Some(fmt::layer().with_writer(std::io::stderr).with_target(true).with_ansi(ansi)), None)
        }
        LogFormat::Json => (None, Some(fmt::layer().json().with_writer(std::io::stderr).with_current_span(false))),
    };
    match tracing_subscriber::registry().with(filter).with(text).with(json).try_init() {
        Ok(()) => LogHandle { reload: Some(handle) },
        Err(_) => LogHandle::detached(),
    }
}

/// Allows one event per second; the rest are only counted by the caller.
#[derive(Debug, Default)]
pub struct RateLimit {
    last_second: AtomicU64,
}

impl RateLimit {
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// True at most once per wall-clock second.
    pub fn allow(&self) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = self.last_second.load(Ordering::Relaxed);
        last != now && self.last_second.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// Cuts untrusted bytes to at most 200 for a log line, lossily decoded.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_once_per_second() {
        let r = RateLimit::new();
        let allowed = (0..1000).filter(|_| r.allow()).count();
        assert!((1..=2).contains(&allowed), "{allowed}");
    }

    #[test]
    fn excerpts_are_cut() {
        assert_eq!(excerpt(b"abc"), "abc");
        assert_eq!(excerpt(&[b'x'; 300]).chars().count(), 201);
    }
}
