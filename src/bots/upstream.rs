//! What an LLM server and a remote agent have in common: an HTTP upstream
//! that may be slow, fail or vanish. Each has a circuit breaker; a request
//! is tried again a bounded number of times with a growing pause, and every
//! outcome is counted in `/metrics`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::Breaker;
use crate::telemetry::Metrics;

/// Timeouts, retries and the breaker, shared by every upstream of a bot.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    /// From sending the request to the first token (an LLM) or the whole answer (an agent's default).
    pub first_token_timeout: Duration,
    /// The whole turn, retries included: past it the fallback answers.
    pub reply_timeout: Duration,
    pub retries: u32,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
}

/// Why an upstream gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Unreachable,
    Status(u16),
    /// The stream ended before the answer did.
    Dropped,
    /// The stream ended after part of the answer was shown: not tried again,
    /// or the customer would see it twice.
    DroppedAfterOutput,
    BadResponse(String),
    CircuitOpen,
}

impl Failure {
    /// A stable word for logs, metrics and the message's processing record.
    pub fn code(&self) -> String {
        match self {
            Failure::Timeout => "timeout".to_owned(),
            Failure::Unreachable => "unreachable".to_owned(),
            Failure::Status(status) => format!("status_{status}"),
            Failure::Dropped | Failure::DroppedAfterOutput => "stream_dropped".to_owned(),
            Failure::BadResponse(_) => "bad_response".to_owned(),
            Failure::CircuitOpen => "circuit_open".to_owned(),
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Failure::Timeout | Failure::Unreachable | Failure::Dropped => true,
            Failure::Status(status) => *status == 429 || *status >= 500,
            Failure::DroppedAfterOutput | Failure::BadResponse(_) | Failure::CircuitOpen => false,
        }
    }

    pub fn from_reqwest(error: &reqwest::Error) -> Failure {
        if error.is_timeout() {
            Failure::Timeout
        } else if error.is_connect() {
            Failure::Unreachable
        } else if error.is_decode() {
            Failure::BadResponse(error.to_string())
        } else {
            Failure::Dropped
        }
    }
}

pub struct Upstream {
    /// The label in `/metrics` and in processing records.
    pub name: String,
    pub url: String,
    breaker: Breaker,
    metrics: Arc<Metrics>,
}

impl Upstream {
    pub fn new(name: &str, url: &str, settings: &UpstreamSettings, metrics: Arc<Metrics>) -> Self {
        Upstream {
            name: name.to_owned(),
            url: url.to_owned(),
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
            metrics,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, the breaker opens
    /// or `retries` more tries are spent.
    pub async fn call<T, F, Fut>(&self, retries: u32, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut tries = 0;
        loop {
            if !self.breaker.allow() {
                self.count("circuit_open");
                return Err(Failure::CircuitOpen);
            }
            let started = Instant::now();
            // A try whose future is dropped (the turn timed out, the session
            // stopped) counts as a failed one, or a half-open breaker would wait for it.
            let mut unanswered = Unanswered { upstream: self, armed: true };
            let outcome = attempt().await;
            unanswered.armed = false;
            match outcome {
                Ok(value) => {
                    self.breaker.succeeded();
                    self.count("ok");
                    self.metrics.bot_latency.with_label_values(&[&self.name]).observe(started.elapsed().as_secs_f64());
                    return Ok(value);
                }
                Err(failure) => {
                    self.breaker.failed();
                    self.count(&failure.code());
                    log::warn!("bot upstream {}: {} (try {})", self.name, failure.code(), tries + 1);
                    if !failure.retryable() || tries >= retries {
                        return Err(failure);
                    }
                }
            }
            tokio::time::sleep(backoff(tries)).await;
            tries += 1;
        }
    }

    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    fn count(&self, outcome: &str) {
        self.metrics.bot_requests.with_label_values(&[&self.name, outcome]).inc();
    }

    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.metrics.bot_tokens.with_label_values(&[&self.name, "prompt"]).inc_by(prompt);
        self.metrics.bot_tokens.with_label_values(&[&self.name, "completion"]).inc_by(completion);
    }

    pub fn first_token(&self, after: Duration) {
        self.metrics.bot_first_token.with_label_values(&[&self.name]).observe(after.as_secs_f64());
    }

    /// POSTs `body` and reads a JSON answer, all within `timeout`.
    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, Failure> {
        let exchange = async {
            let response = client.post(&self.url).json(body).send().await.map_err(|e| Failure::from_reqwest(&e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(Failure::Status(status.as_u16()));
            }
            let mut body = Vec::new();
            let mut response = response;
            while let Some(chunk) = response.chunk().await.map_err(|e| Failure::from_reqwest(&e))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(Failure::BadResponse("the answer is too large".to_owned()));
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice(&body).map_err(|error| Failure::BadResponse(error.to_string()))
        };
        tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(Failure::Timeout))
    }
}

struct Unanswered<'a> {
    upstream: &'a Upstream,
    armed: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.upstream.breaker.failed();
            self.upstream.count("abandoned");
        }
    }
}

/// The most an upstream may send for one request: past it, `BadResponse`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// 250 ms, 500 ms, 1 s, … at most 4 s.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << tries.min(4)))
}

/// One HTTP client for every upstream of a bot: connections are reused.
pub fn client(settings: &UpstreamSettings) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}
