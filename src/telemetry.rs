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
    customer_connections: AtomicI64,
    agent_connections: AtomicI64,
}

impl Gauges {
    pub fn new() -> Arc<Self> {
        Arc::new(Gauges {
            started_at: Instant::now(),
            customer_connections: AtomicI64::new(0),
            agent_connections: AtomicI64::new(0),
        })
    }

    fn connections(&self, role: &str) -> &AtomicI64 {
        if role == "agent" {
            &self.agent_connections
        } else {
            &self.customer_connections
        }
    }

    pub fn connection_opened(&self, role: &str) {
        self.connections(role).fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, role: &str) {
        self.connections(role).fetch_sub(1, Ordering::Relaxed);
    }

    /// Open WebSocket connections, customers' and agents'.
    pub fn open_connections(&self) -> i64 {
        self.customer_connections.load(Ordering::Relaxed) + self.agent_connections.load(Ordering::Relaxed)
    }
}
