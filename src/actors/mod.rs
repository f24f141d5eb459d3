//! The actors, one per file. `registry` routes; `session`, `agent` and `queue`
//! own the state of a chat, an agent and the handoff queue; the socket actors
//! speak the wire protocol; `persistence` stores messages and
//! `history_reader` reads them back for joining sockets.

pub mod agent;
pub mod agent_socket;
pub mod customer_socket;
pub mod history_reader;
pub mod mailer;
pub mod messages;
pub mod partner_socket;
pub mod persistence;
pub mod queue;
pub mod registry;
pub mod session;
pub mod socket;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter, ArbiterHandle};

use crate::bots::Bot;
use crate::db::Pool;
use history_reader::HistoryReader;
use persistence::MessageWriter;

/// The threads the chats' actors run on, one event loop each, taken in
/// turn: the sessions' work (the bot, the rules of a message, encoding
/// frames) uses every core instead of the one the registry runs on.
pub struct ActorThreads {
    arbiters: Vec<ArbiterHandle>,
    next: usize,
}

impl ActorThreads {
    /// `count` new threads (at least one).
    pub fn new(count: usize) -> Self {
        ActorThreads { arbiters: (0..count.max(1)).map(|_| Arbiter::new().handle()).collect(), next: 0 }
    }

    /// The thread for the next actor.
    pub fn take_turn(&mut self) -> &ArbiterHandle {
        let arbiter = &self.arbiters[self.next % self.arbiters.len()];
        self.next = self.next.wrapping_add(1);
        arbiter
    }
}

/// Timers that shape a chat's life; see the README's configuration table.
#[derive(Debug, Clone)]
pub struct Timing {
    /// A session whose customer has been gone this long closes as abandoned.
    pub abandon_after: Duration,
    /// How often to look for abandoned sessions.
    pub abandon_sweep: Duration,
    /// How long an agent who lost every socket keeps their sessions.
    pub agent_grace: Duration,
    /// A customer waiting this long for their agent's answer is given to another agent.
    pub agent_reply_timeout: Option<Duration>,
    /// A chat waiting this long while no agent is online is offered the offline form.
    pub offline_after_no_agent: Option<Duration>,
    /// How long an open session's actor stays up with nobody attached.
    pub session_idle: Duration,
    /// The same for a closed session.
    pub closed_session_idle: Duration,
    /// A typing indicator with no news expires after this.
    pub typing_timeout: Duration,
}

/// Allowances that protect the service from a flood.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages a session's people may send per minute, together.
    pub messages_per_minute: u32,
    /// Chats one customer may have open at once.
    pub open_chats_per_customer: u32,
    /// WebSockets one account may have open at once.
    pub sockets_per_account: usize,
}

/// At most `allowed` events in any minute: the one-minute window slides
/// with each event, so the next one after the allowance is refused until the
/// oldest in the window is a minute old.
#[derive(Debug)]
pub struct MinuteWindow {
    allowed: usize,
    recent: std::collections::VecDeque<std::time::Instant>,
}

impl MinuteWindow {
    const LENGTH: Duration = Duration::from_secs(60);

    pub fn new(allowed: u32) -> Self {
        MinuteWindow { allowed: allowed.max(1) as usize, recent: std::collections::VecDeque::new() }
    }

    /// Counts an event, or says how long until one would be allowed.
    pub fn admit(&mut self) -> Result<(), Duration> {
        match self.wait() {
            Some(wait) => Err(wait),
            None => {
                self.record();
                Ok(())
            }
        }
    }

    /// How long until the next event would be allowed, if it would not be now.
    pub fn wait(&mut self) -> Option<Duration> {
        let now = std::time::Instant::now();
        while self.recent.front().is_some_and(|at| now.duration_since(*at) >= Self::LENGTH) {
            self.recent.pop_front();
        }
        if self.recent.len() < self.allowed {
            return None;
        }
        let oldest = self.recent.front().copied().unwrap_or(now);
        Some(Self::LENGTH.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts an event whether or not it was allowed.
    pub fn record(&mut self) {
        if self.recent.len() >= self.allowed {
            self.recent.pop_front();
        }
        self.recent.push_back(std::time::Instant::now());
    }

    /// Did anything happen in the last minute?
    pub fn is_active(&self) -> bool {
        self.recent.back().is_some_and(|at| at.elapsed() < Self::LENGTH)
    }
}

/// What every chat actor needs.
#[derive(Clone)]
pub struct Services {
    pub pool: Pool,
    pub writer: Addr<MessageWriter>,
    pub history: Addr<HistoryReader>,
    pub bot: Arc<dyn Bot>,
    pub timing: Timing,
    pub limits: Limits,
    pub metrics: Arc<crate::telemetry::Metrics>,
    pub rate_limits: Arc<crate::rate_limits::RateLimits>,
    /// A participant's read receipt is written at most this often.
    pub receipt_write_interval: Duration,
    /// This node's name, with several nodes on Redis.
    pub node: Option<crate::cluster::NodeId>,
    /// Where chat events go for the webhooks that want them.
    pub webhooks: webhooks::Webhooks,
    /// Queues email (transcripts, offline replies) and has this node's mailer send it.
    pub outbox: crate::mail::Outbox,
}
