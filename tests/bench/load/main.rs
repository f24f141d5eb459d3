//! The load generator behind `scripts/bench.sh`: many clients over real
//! WebSockets, and a Markdown report of what the server did under them. It
//! is not a test and asserts nothing; run it through bench.sh, which starts
//! the server(s), creates the agents' accounts and adds CPU and PostgreSQL
//! figures.
//!
//! Settings (environment):
//! - WORKLOAD: `bot` (default: each customer chats with the rule bot),
//!   `agents` (customers chat with agents, who answer every message),
//!   `idle` (SOCKETS customers each open a socket and a chat, then hold
//!   them: the server's memory per socket), `queue` (QUEUE customers wait
//!   for an agent, then the agents join at once: how fast the queue drains).
//! - BASE_URL, SERVER_PID; or, for several nodes, BASE_URLS and SERVER_PIDS
//!   (comma-separated, same order): clients are spread round-robin over
//!   them and each server's memory is reported. CROSS_NODE=1 (bot, agents):
//!   each customer starts its chat on one server and talks from a socket
//!   on the next, so every message crosses Redis.
//! - bot, agents: CUSTOMERS (200); MESSAGES (20 per customer) or
//!   DURATION_SECS (send until the time is up; throughput per second);
//!   RATE (unset: closed loop, each customer sends its next message once
//!   the last is acknowledged; set: open loop, RATE customer messages per
//!   second in all on a fixed schedule, at most 64 waiting per socket as
//!   the server allows, latency counted from each message's scheduled time
//!   so a stalled server shows instead of slowing the senders down).
//! - agents, queue: AGENT_USERNAMES (comma-separated) and AGENT_PASSWORD,
//!   accounts bench.sh creates.
//! - idle: SOCKETS (1000). queue: QUEUE (10000).
//! - CONNECT_CONCURRENCY (200): clients setting up at once, so the
//!   server's accept queue and the generator's sign-ins are not flooded.
//! - MARK_DIR: where the generator writes `start` and `end` (with the
//!   messages acknowledged) when the measurement begins and ends, so
//!   bench.sh measures CPU and PostgreSQL over exactly that span.
//!
//! Every message carries a fresh random `clientMsgId`, as the widget sends,
//! and its send time (µs on the generator's one clock) at the end of its
//! content, which the receiving socket turns into a delivery time.

mod chat;
mod crowd;
mod stats;
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Bot,
    Agents,
    Idle,
    Queue,
}

/// Where a run is; `Go` and `Stop` carry the `clock()` time the measurement began.
#[derive(Clone, Copy)]
pub enum Phase {
    Setup,
    Go(u64),
    Stop(u64),
}

pub struct Ctx {
    pub workload: Workload,
    pub bases: Vec<String>,
    pub pids: Vec<String>,
    pub http: reqwest::Client,
    pub customers: usize,
    pub messages: usize,
    pub duration: u64,
    /// Customer messages per second in all (open loop).
    pub rate: Option<f64>,
    pub cross_node: bool,
    pub agents: Vec<String>,
    pub agent_password: String,
    pub sockets: usize,
    pub queue: usize,
    /// Clients setting up at once.
    pub setup: Semaphore,
    pub concurrency: usize,
    pub marks: Option<PathBuf>,
}

impl Ctx {
    /// The server client `n` talks to.
    pub fn base(&self, n: usize) -> &str {
        &self.bases[n % self.bases.len()]
    }

    /// Tells bench.sh the measurement began or ended, and waits (a few
    /// seconds at most) until it has read the counters: the generator's own
    /// CPU is among them, and it may exit right after the end.
    pub async fn mark(&self, name: &str, acked: Option<u64>) {
        let Some(dir) = &self.marks else { return };
        let content = acked.map(|acked| format!("acked {acked}\n")).unwrap_or_default();
        if let Err(error) = std::fs::write(dir.join(name), content) {
            eprintln!("load: cannot write the {name} mark: {error}");
            return;
        }
        let taken = dir.join(format!("{name}.taken"));
        for _ in 0..300 {
            if taken.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Why clients failed, counted by reason, so ten thousand of one kind stay one line.
#[derive(Default)]
pub struct Failures {
    pub count: usize,
    reasons: BTreeMap<String, usize>,
}

impl Failures {
    pub fn add(&mut self, reason: String) {
        self.count += 1;
        *self.reasons.entry(wire::cut(&reason).to_owned()).or_default() += 1;
    }

    pub fn add_option(&mut self, reason: Option<String>) {
        if let Some(reason) = reason {
            self.add(reason);
        }
    }

    /// Waits for every run and returns those that ended with a result, with
    /// their index; a run that failed, or whose result names a failure
    /// (`failure` takes it out), is counted here.
    pub async fn collect<T>(
        &mut self,
        runs: Vec<tokio::task::JoinHandle<Result<T, String>>>,
        failure: impl Fn(&mut T) -> Option<String>,
    ) -> Vec<(usize, T)> {
        let mut done = Vec::with_capacity(runs.len());
        for (index, run) in runs.into_iter().enumerate() {
            match run.await {
                Ok(Ok(mut result)) => {
                    self.add_option(failure(&mut result));
                    done.push((index, result));
                }
                Ok(Err(error)) => self.add(error),
                Err(error) => self.add(error.to_string()),
            }
        }
        done
    }

    pub fn print(&self, who: &str) {
        for (reason, count) in self.reasons.iter().take(8) {
            eprintln!("load: {count} {who}(s) failed: {reason}");
        }
    }

    /// The commonest reason, for the report.
    pub fn commonest(&self) -> String {
        self.reasons.iter().max_by_key(|(_, count)| **count).map(|(reason, _)| reason.clone()).unwrap_or_default()
    }
}

/// Waits for the measurement to start, reading (and so answering pings) meanwhile.
pub async fn wait_go(socket: &mut wire::Socket, phase: &mut watch::Receiver<Phase>) -> Result<u64, String> {
    loop {
        match *phase.borrow_and_update() {
            Phase::Go(at) => return Ok(at),
            Phase::Stop(_) => return Err("stopped before the start".to_owned()),
            Phase::Setup => {}
        }
        tokio::select! {
            changed = phase.changed() => changed.map_err(|_| "the generator stopped".to_owned())?,
            frame = socket.next() => match frame {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(format!("read: {error}")),
                None => return Err("closed before the start".to_owned()),
            },
        }
    }
}

/// Counts clients reporting the end of their setup (true: ready) until
/// `expected` have, or ten minutes have passed; returns (ready, failed).
/// Progress goes to stderr.
pub async fn wait_ready(ready: &mut mpsc::UnboundedReceiver<bool>, expected: usize, what: &str) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    let started = std::time::Instant::now();
    let mut told = started;
    while ok + failed < expected && started.elapsed() < Duration::from_secs(600) {
        match tokio::time::timeout(Duration::from_secs(1), ready.recv()).await {
            Ok(Some(true)) => ok += 1,
            Ok(Some(false)) => failed += 1,
            Ok(None) => break,
            Err(_) => {}
        }
        if told.elapsed() >= Duration::from_secs(10) {
            told = std::time::Instant::now();
            eprintln!(
                "load: {ok} of {expected} {what}, {failed} failed, after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    (ok, failed)
}

fn setting(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().unwrap_or_else(|_| {
            eprintln!("load: {name} must be a whole number, not {value:?}");
            std::process::exit(2)
        }),
        _ => default,
    }
}

/// A comma-separated list from `plural`, or the single value of `single`.
fn list(plural: &str, single: &str) -> Vec<String> {
    let value = std::env::var(plural).or_else(|_| std::env::var(single)).unwrap_or_default();
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    stats::clock();
    let bases = list("BASE_URLS", "BASE_URL");
    if bases.is_empty() {
        println!("load: BASE_URL is not set; run scripts/bench.sh");
        return;
    }
    let workload = match std::env::var("WORKLOAD").unwrap_or_default().as_str() {
        "" | "bot" => Workload::Bot,
        "agents" => Workload::Agents,
        "idle" => Workload::Idle,
        "queue" => Workload::Queue,
        other => {
            eprintln!("load: WORKLOAD must be bot, agents, idle or queue, not {other:?}");
            std::process::exit(2)
        }
    };
    let mut pids = list("SERVER_PIDS", "SERVER_PID");
    if pids.is_empty() {
        pids.push(String::new());
    }
    let http = match reqwest::Client::builder().pool_max_idle_per_host(64).timeout(wire::SETUP_TIMEOUT).build() {
        Ok(http) => http,
        Err(error) => {
            eprintln!("load: no HTTP client: {error}");
            std::process::exit(1)
        }
    };
    let rate = setting("RATE", 0);
    let ctx = Arc::new(Ctx {
        workload,
        cross_node: setting("CROSS_NODE", 0) == 1 && bases.len() > 1,
        bases,
        pids,
        http,
        customers: setting("CUSTOMERS", 200).max(1),
        messages: setting("MESSAGES", 20),
        duration: setting("DURATION_SECS", 0) as u64,
        rate: (rate > 0).then_some(rate as f64),
        agents: list("AGENT_USERNAMES", "AGENT_USERNAME"),
        agent_password: std::env::var("AGENT_PASSWORD").unwrap_or_default(),
        sockets: setting("SOCKETS", 1000),
        queue: setting("QUEUE", 10_000),
        setup: Semaphore::new(setting("CONNECT_CONCURRENCY", 200).max(1)),
        concurrency: setting("CONNECT_CONCURRENCY", 200).max(1),
        marks: std::env::var_os("MARK_DIR").map(PathBuf::from),
    });
    if matches!(workload, Workload::Agents | Workload::Queue) && ctx.agents.is_empty() {
        eprintln!("load: this workload needs AGENT_USERNAMES and AGENT_PASSWORD (bench.sh creates them)");
        std::process::exit(2)
    }
    match workload {
        Workload::Bot | Workload::Agents => chat::run(ctx).await,
        Workload::Idle => crowd::idle(ctx).await,
        Workload::Queue => crowd::queue(ctx).await,
    }
}
