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
