//! The series store on RocksDB, replacing carbon-cache and whisper: a series
//! catalog with a tag index, points in compressed chunks keyed by (series,
//! archive, time), carbon's retentions and whisper's rollups, and whisper's
//! read semantics. Only this folder names `rocksdb`.

pub mod chunk;
pub mod chunk_cache;
pub mod index;
pub mod keys;
pub mod limits;
pub mod rollup;
pub mod schema;
pub mod store;
pub mod value;

pub use store::{Incoming, Ingested, Store, Tuning};

/// A fetched series: `values[i]` is the value at `start + i * step`; `None` is
/// a gap. The range ends at `start + step * values.len()` (exclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub start: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(String),
}
