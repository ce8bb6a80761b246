//! The appliance watching itself: the metric registry every subsystem counts
//! into, the process log, and the memory budget. It owns the `[log]` and
//! `[memory]` config sections.

pub mod accounts;
pub mod alloc;
pub mod events;
pub mod logging;
pub mod mapped;
pub mod memory;
pub mod registry;
pub mod scrape;
pub mod udp;

use serde::Deserialize;

use crate::config::{Problem, Size};

pub use events::{DropReason, InputStats};
pub use logging::{LogHandle, RateLimit};
pub use memory::Budget;
pub use registry::{Counter, Gauge, Registry};

/// The `[log]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogConfig {
    pub fn validate(&self) -> Vec<Problem> {
        match logging::parse_level(&self.level) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new("log.level", e)],
        }
    }
}

/// The `[memory]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    pub limit: Size,
}

impl MemoryConfig {
    pub fn validate(&self) -> Vec<Problem> {
        // Below this the fixed costs (RocksDB, Tantivy's minimum writer heap of
        // 15 MB per thread, buffers) no longer fit.
        const MIN: u64 = 128 << 20;
        if self.limit.bytes() < MIN {
            return vec![Problem::new("memory.limit", format!("{} is too small: at least 128MiB", self.limit))];
        }
        Vec::new()
    }
}
