//! Logging and the live gauges that /health and, later, /metrics report.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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
    /// WebSocket connections the HTTP layer still holds, whether or not
    /// their socket actor is still running.
    wires: AtomicI64,
}

impl Gauges {
    pub fn new() -> Arc<Self> {
        Arc::new(Gauges {
            started_at: Instant::now(),
            customer_connections: AtomicI64::new(0),
            agent_connections: AtomicI64::new(0),
            wires: AtomicI64::new(0),
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

    pub fn wire_opened(&self) {
        self.wires.fetch_add(1, Ordering::Relaxed);
    }

    pub fn wire_closed(&self) {
        self.wires.fetch_sub(1, Ordering::Relaxed);
    }

    /// WebSocket connections still open at the TCP level.
    pub fn open_wires(&self) -> i64 {
        self.wires.load(Ordering::Relaxed)
    }

    /// Open WebSocket connections, customers' and agents'.
    pub fn open_connections(&self) -> i64 {
        self.customer_connections.load(Ordering::Relaxed) + self.agent_connections.load(Ordering::Relaxed)
    }
}

/// Prometheus metrics. Counters and histograms are recorded where things
/// happen; gauges that mirror live state are filled in when scraped.
pub struct Metrics {
    registry: prometheus::Registry,
    pub connections: prometheus::IntGaugeVec,
    pub live_actors: prometheus::IntGaugeVec,
    pub messages: prometheus::IntCounterVec,
    pub queue_length: prometheus::IntGaugeVec,
    pub queue_wait_seconds: prometheus::Histogram,
    pub writer_batch_size: prometheus::Histogram,
    pub writer_commit_seconds: prometheus::Histogram,
    /// Age of the oldest message the writer has not answered yet.
    pub writer_lag_seconds: prometheus::Gauge,
    /// Sessions whose messages wait because another transaction holds their row.
    pub writer_locked_sessions: prometheus::IntGauge,
    /// Messages the writer answered with an error, by why.
    pub writer_failures: prometheus::IntCounterVec,
    /// Requests to a bot's upstreams (the LLM, remote agents), by outcome.
    pub bot_requests: prometheus::IntCounterVec,
    pub bot_tokens: prometheus::IntCounterVec,
    /// Time to a good answer from an upstream, retries included.
    pub bot_latency: prometheus::HistogramVec,
    pub bot_first_token: prometheus::HistogramVec,
    /// Bot turns the fallback answered, by bot and why.
    pub bot_fallbacks: prometheus::IntCounterVec,
    /// Webhook attempts by outcome (delivered, retry, failed), and deliveries dropped at the bound.
    pub webhook_deliveries: prometheus::IntCounterVec,
    created: Instant,
    /// When the writer last failed a message, in ms since `created`; 0 for never.
    writer_last_failure_ms: AtomicU64,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
        let registry = prometheus::Registry::new();
        let connections =
            IntGaugeVec::new(Opts::new("switchboard_connections", "Open WebSocket connections"), &["role"])?;
        let live_actors =
            IntGaugeVec::new(Opts::new("switchboard_live_actors", "Session and agent actors in memory"), &["kind"])?;
        let messages =
            IntCounterVec::new(Opts::new("switchboard_messages_total", "Messages stored, by sender"), &["sender"])?;
        let queue_length =
            IntGaugeVec::new(Opts::new("switchboard_queue_length", "Sessions waiting for an agent"), &["priority"])?;
        let queue_wait_seconds = Histogram::with_opts(
            HistogramOpts::new("switchboard_queue_wait_seconds", "Time from asking for a person to being assigned")
                .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]),
        )?;
        let writer_batch_size = Histogram::with_opts(
            HistogramOpts::new("switchboard_writer_batch_size", "Messages per transaction of the message writer")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
        )?;
        let writer_commit_seconds = Histogram::with_opts(
            HistogramOpts::new("switchboard_writer_commit_seconds", "Time to store one batch of messages")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(live_actors.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(queue_length.clone()))?;
        registry.register(Box::new(queue_wait_seconds.clone()))?;
        registry.register(Box::new(writer_batch_size.clone()))?;
        let writer_lag_seconds = prometheus::Gauge::new(
            "switchboard_writer_lag_seconds",
            "How long the oldest message not yet stored has waited",
        )?;
        let writer_locked_sessions = prometheus::IntGauge::new(
            "switchboard_writer_locked_sessions",
            "Sessions whose messages wait because another transaction holds their row",
        )?;
        let writer_failures = IntCounterVec::new(
            Opts::new("switchboard_writer_failures_total", "Messages the writer could not store, by reason"),
            &["reason"],
        )?;
        registry.register(Box::new(writer_commit_seconds.clone()))?;
        registry.register(Box::new(writer_lag_seconds.clone()))?;
        registry.register(Box::new(writer_failures.clone()))?;
        registry.register(Box::new(writer_locked_sessions.clone()))?;
        let bot_requests = IntCounterVec::new(
            Opts::new("switchboard_bot_requests_total", "Requests to the bot's upstreams, by upstream and outcome"),
            &["upstream", "outcome"],
        )?;
        let bot_tokens = IntCounterVec::new(
            Opts::new("switchboard_bot_tokens_total", "Tokens the LLM reported using, by kind"),
            &["upstream", "kind"],
        )?;
        let seconds = vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];
        let bot_latency = HistogramVec::new(
            HistogramOpts::new("switchboard_bot_latency_seconds", "Time to a good answer from a bot upstream")
                .buckets(seconds.clone()),
            &["upstream"],
        )?;
        let bot_first_token = HistogramVec::new(
            HistogramOpts::new("switchboard_bot_first_token_seconds", "Time to the LLM's first token").buckets(seconds),
            &["upstream"],
        )?;
        let bot_fallbacks = IntCounterVec::new(
            Opts::new("switchboard_bot_fallbacks_total", "Bot turns answered by the fallback, by bot and failure"),
            &["bot", "failure"],
        )?;
        registry.register(Box::new(bot_requests.clone()))?;
        registry.register(Box::new(bot_tokens.clone()))?;
        registry.register(Box::new(bot_latency.clone()))?;
        registry.register(Box::new(bot_first_token.clone()))?;
        registry.register(Box::new(bot_fallbacks.clone()))?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "switchboard_webhook_deliveries_total",
                "Webhook attempts by outcome (delivered, retry, failed) and deliveries dropped (dropped)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        Ok(Arc::new(Metrics {
            bot_requests,
            bot_tokens,
            bot_latency,
            bot_first_token,
            bot_fallbacks,
            webhook_deliveries,
            registry,
            connections,
            live_actors,
            messages,
            queue_length,
            queue_wait_seconds,
            writer_batch_size,
            writer_commit_seconds,
            writer_lag_seconds,
            writer_failures,
            writer_locked_sessions,
            created: Instant::now(),
            writer_last_failure_ms: AtomicU64::new(0),
        }))
    }

    /// Counts `count` messages the writer failed to store.
    pub fn writer_failed(&self, reason: &str, count: usize) {
        self.writer_failures.with_label_values(&[reason]).inc_by(count as u64);
        let now = self.created.elapsed().as_millis().max(1) as u64;
        self.writer_last_failure_ms.store(now, Ordering::Relaxed);
    }

    /// The writer is degraded while messages wait long or for a locked row, or failed lately.
    pub fn writer_degraded(&self) -> bool {
        const LAG: f64 = 1.0;
        const RECENT_MS: u64 = 10_000;
        let last_failure = self.writer_last_failure_ms.load(Ordering::Relaxed);
        let failed_lately =
            last_failure > 0 && (self.created.elapsed().as_millis() as u64).saturating_sub(last_failure) < RECENT_MS;
        self.writer_lag_seconds.get() > LAG || self.writer_locked_sessions.get() > 0 || failed_lately
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Gauges {
    pub fn by_role(&self) -> [(&'static str, i64); 2] {
        [
            ("customer", self.customer_connections.load(Ordering::Relaxed)),
            ("agent", self.agent_connections.load(Ordering::Relaxed)),
        ]
    }
}
