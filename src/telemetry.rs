//! Logging and the live gauges that /health and, later, /metrics report.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Logs go to stderr; `RUST_LOG` picks the level, `info` by default.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// Counters shared by every worker thread. Atomics, not a locked map: each is
/// one number that many threads bump.
#[derive(Debug)]
pub struct Gauges {
    pub started_at: Instant,
    open_connections: AtomicI64,
}

impl Gauges {
    pub fn new() -> Arc<Self> {
        Arc::new(Gauges { started_at: Instant::now(), open_connections: AtomicI64::new(0) })
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }
}
