//! Bots answer customers before a person does. The session actor talks to a
//! `dyn Bot`, so the built-in rule bot, an LLM (`llm`) and a pipeline of
//! remote agents (`remote`) are interchangeable (`BOT=rules|llm|remote`).

mod breaker;
mod llm;
mod remote;
mod rules;
mod upstream;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{Priority, SenderType};

pub use llm::{LlmBot, LlmSettings, DEFAULT_SYSTEM_PROMPT};
pub use remote::{AgentsFile, RemoteBot};
pub use rules::{FaqFile, RuleBot};
pub use upstream::UpstreamSettings;

/// One earlier message of the chat, as a bot sees it.
#[derive(Debug, Clone)]
pub struct Line {
    pub sender: SenderType,
    pub content: String,
}

/// Takes the text of the answer as it is generated; the session shows it to
/// the chat as `message:delta` frames.
pub type DraftSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What the bot knows when it answers.
pub struct BotTurn {
    pub session_id: uuid::Uuid,
    pub customer_name: String,
    pub bot_context: Option<String>,
    pub text: String,
    /// Earlier messages of the chat, oldest first, without `text`.
    pub history: Vec<Line>,
    pub draft: DraftSink,
}

/// Why a bot hands the chat to a person, when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotHandoff {
    /// The customer asked, in words, for a person.
    CustomerAsked,
    /// The bot (a model's tool call, a remote agent) decided to.
    Decided { reason: String, priority: Option<Priority> },
    /// The bot's upstream failed and the fallback is a person.
    Unavailable,
}

/// What the bot understood of the customer's message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Understanding {
    pub intent: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub entities: Option<serde_json::Value>,
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct BotReply {
    pub content: String,
    pub understanding: Understanding,
    /// False when the bot did not understand; twice in a row hands the chat to a person.
    pub understood: bool,
    pub handoff: Option<BotHandoff>,
    /// How the answer came about (tool calls, agents asked, timings), stored with the message.
    pub processing: Option<serde_json::Value>,
}

impl BotReply {
    pub fn confidence(&self) -> f32 {
        self.understanding.confidence.unwrap_or(0.0)
    }
}

pub type BotFuture = Pin<Box<dyn Future<Output = BotReply> + Send>>;

pub trait Bot: Send + Sync {
    /// The name shown next to the bot's messages.
    fn name(&self) -> &str;
    /// `rules`, `llm` or `remote`, as `/api/info` and `/health` show it.
    fn kind(&self) -> &'static str;
    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply;
    fn reply(&self, turn: BotTurn) -> BotFuture;
    /// True while an upstream is refused by its circuit breaker.
    fn degraded(&self) -> bool {
        false
    }
    /// Does the bot read the chat so far (`BotTurn::history`)? Sessions keep
    /// it in memory only for bots that do.
    fn reads_history(&self) -> bool {
        false
    }
}

/// What a bot whose upstream fails does instead (`BOT_FALLBACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackMode {
    /// The rule bot answers from the FAQ.
    Rules,
    /// The chat goes to a person with reason `bot_unavailable`.
    Handoff,
}

/// The longest answer a bot's upstream may give (a message's own limit).
pub const MAX_REPLY_CHARS: usize = 4000;
/// A handoff reason longer than this is cut.
pub const MAX_REASON_CHARS: usize = 200;

/// The answer when the upstream failed: never silence.
#[derive(Clone)]
pub struct Fallback {
    pub mode: FallbackMode,
    pub rules: Arc<RuleBot>,
    pub metrics: Arc<crate::telemetry::Metrics>,
}

impl Fallback {
    /// `bot` failed for `failure`; both are counted and kept in the message's processing.
    pub fn reply(
        &self,
        bot: &str,
        text: &str,
        failure: &str,
        mut processing: serde_json::Map<String, serde_json::Value>,
    ) -> BotReply {
        self.metrics.bot_fallbacks.with_label_values(&[bot, failure]).inc();
        processing.insert("failure".to_owned(), failure.into());
        let mut reply = match self.mode {
            FallbackMode::Rules => {
                processing.insert("fallback".to_owned(), "rules".into());
                self.rules.answer(text)
            }
            FallbackMode::Handoff => {
                processing.insert("fallback".to_owned(), "handoff".into());
                BotReply {
                    content: "I can't answer that right now, so I'm passing you to a member of our team.".to_owned(),
                    understanding: Understanding::default(),
                    understood: true,
                    handoff: Some(BotHandoff::Unavailable),
                    processing: None,
                }
            }
        };
        reply.processing = Some(serde_json::Value::Object(processing));
        reply
    }
}

impl Fallback {
    /// What a bot handing over says when its upstream said nothing: the FAQ's words.
    pub fn words_or_handoff(&self, said: &str) -> String {
        let said = said.trim();
        if said.is_empty() {
            self.rules.faq().handoff.clone()
        } else {
            clip(said, MAX_REPLY_CHARS)
        }
    }
}

/// A model's or an agent's call for a person: the reason cleaned of
/// invisible characters and cut, the priority if it is one.
pub fn decided_handoff(reason: Option<&str>, priority: Option<&str>, unnamed: &str) -> BotHandoff {
    let reason: String = reason.unwrap_or_default().chars().filter(|c| !crate::domain::is_unprintable(*c)).collect();
    let reason = clip(reason.trim(), MAX_REASON_CHARS);
    BotHandoff::Decided {
        reason: if reason.is_empty() { unnamed.to_owned() } else { reason },
        priority: priority.and_then(|text| text.parse::<Priority>().ok()),
    }
}

/// A bot that answers like `inner`, but only after `delay`, as a remote
/// model does (`BOT_REPLY_DELAY_MS`).
pub struct Delayed<B> {
    pub inner: B,
    pub delay: std::time::Duration,
}

impl<B: Bot> Bot for Delayed<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn reads_history(&self) -> bool {
        self.inner.reads_history()
    }

    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply {
        self.inner.greeting(customer_name, bot_context)
    }

    fn reply(&self, turn: BotTurn) -> BotFuture {
        let answer = self.inner.reply(turn);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer.await
        })
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}
