//! Bots answer customers before a person does. The session actor talks to a
//! `dyn Bot`, so a remote or LLM-backed bot can replace the built-in one.

mod rules;

use std::future::Future;
use std::pin::Pin;

pub use rules::{FaqFile, RuleBot};

/// What the bot knows when it answers.
pub struct BotTurn<'a> {
    pub customer_name: &'a str,
    pub bot_context: Option<&'a str>,
    pub text: &'a str,
}

#[derive(Debug, Clone)]
pub struct BotReply {
    pub content: String,
    pub intent: Option<String>,
    pub confidence: f32,
    /// False when the bot did not understand; twice in a row hands the chat to a person.
    pub understood: bool,
    /// True when the customer asked for a person.
    pub handoff: bool,
}

pub type BotFuture = Pin<Box<dyn Future<Output = BotReply> + Send>>;

pub trait Bot: Send + Sync {
    /// The name shown next to the bot's messages.
    fn name(&self) -> &str;
    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply;
    fn reply(&self, turn: BotTurn<'_>) -> BotFuture;
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

    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply {
        self.inner.greeting(customer_name, bot_context)
    }

    fn reply(&self, turn: BotTurn<'_>) -> BotFuture {
        let answer = self.inner.reply(turn);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer.await
        })
    }
}
