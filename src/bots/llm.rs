//! The LLM bot: a model behind the OpenAI-compatible Chat Completions API
//! (OpenAI itself, or vLLM, llama.cpp's server, Ollama) answers the
//! customer, streamed token by token, and may call two tools: `search_faq`,
//! so answers come from the company's own FAQ, and `transfer_to_human`.
//! When the model is slow, failing or gone the fallback answers instead.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::upstream::{client, Failure, Upstream, UpstreamSettings, MAX_RESPONSE_BYTES};
use super::{
    clip, decided_handoff, Bot, BotFuture, BotHandoff, BotReply, BotTurn, DraftSink, Fallback, Line, Understanding,
    MAX_REPLY_CHARS,
};
use crate::domain::SenderType;
use crate::telemetry::Metrics;

/// Rounds of tool calls a model may make before it must answer…
const MAX_TOOL_ROUNDS: usize = 3;
/// …and calls in one round.
const MAX_TOOL_CALLS: usize = 4;
/// A tool call's arguments longer than this are refused.
const MAX_ARGUMENTS_BYTES: usize = 4096;
/// FAQ articles a search returns to the model.
const SEARCH_RESULTS: usize = 3;

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are the customer-support assistant of this company, chatting with a \
customer on its website. Answer briefly and plainly. Before you answer a question about orders, shipping, returns, \
billing or accounts, call search_faq and answer from what it returns; never invent policies, prices or order \
details. If the customer asks for a person, is upset, or you cannot help, call transfer_to_human with a short \
reason.";

#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub system_prompt: String,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Prompt tokens the chat's history may take, roughly (4 characters a token).
    pub context_tokens: usize,
    pub upstream: UpstreamSettings,
}

pub struct LlmBot {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LlmSettings,
    client: reqwest::Client,
    upstream: Upstream,
    fallback: Fallback,
}

impl LlmBot {
    pub fn new(settings: LlmSettings, fallback: Fallback, metrics: Arc<Metrics>) -> Result<Self, String> {
        let url = format!("{}/chat/completions", settings.base_url.trim_end_matches('/'));
        let upstream = Upstream::new("llm", &url, &settings.upstream, metrics);
        Ok(LlmBot { inner: Arc::new(Inner { client: client(&settings.upstream)?, settings, upstream, fallback }) })
    }
}

impl Bot for LlmBot {
    fn name(&self) -> &str {
        self.inner.fallback.rules.name()
    }

    fn kind(&self) -> &'static str {
        "llm"
    }

    fn reads_history(&self) -> bool {
        true
    }

    fn degraded(&self) -> bool {
        self.inner.upstream.is_open()
    }

    /// The greeting costs no tokens: it is the FAQ's.
    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply {
        self.inner.fallback.rules.greeting(customer_name, bot_context)
    }

    fn reply(&self, turn: BotTurn) -> BotFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let deadline = inner.settings.upstream.reply_timeout;
            let outcome = tokio::time::timeout(deadline, inner.converse(&turn)).await;
            let (failure, processing) = match outcome {
                Ok(Ok(reply)) => return reply,
                Ok(Err((failure, processing))) => (failure.code(), processing),
                Err(_) => ("timeout".to_owned(), inner.processing()),
            };
            inner.fallback.reply("llm", &turn.text, &failure, processing)
        })
    }
}

/// The answer's text as shown so far, across the model's rounds.
struct Draft {
    sink: DraftSink,
    text: Mutex<String>,
}

impl Draft {
    /// Adds text to the answer; false once the answer is as long as a message may be.
    fn push(&self, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        let Ok(mut shown) = self.text.lock() else { return false };
        let room = MAX_REPLY_CHARS.saturating_sub(shown.chars().count());
        let text = clip(text, room);
        shown.push_str(&text);
        drop(shown);
        if !text.is_empty() {
            (self.sink)(&text);
        }
        room > text.chars().count()
    }

    fn text(&self) -> String {
        self.text.lock().map(|text| text.clone()).unwrap_or_default()
    }

    /// A new round's text starts a new paragraph.
    fn paragraph(&self) {
        if !self.text().trim().is_empty() {
            self.push("\n\n");
        }
    }
}

/// One finished completion of the model.
#[derive(Debug, Default)]
struct Completion {
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<String>,
    first_token: Option<Duration>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Debug, Default, Clone)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

// Servers differ in what they leave out and what they send as `null`: both mean none.
#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

type Failed = (Failure, Map<String, Value>);

impl Inner {
    fn processing(&self) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("bot".to_owned(), "llm".into());
        record.insert("model".to_owned(), self.settings.model.clone().into());
        record
    }

    /// Asks the model, runs its tool calls, and asks again until it answers.
    async fn converse(&self, turn: &BotTurn) -> Result<BotReply, Failed> {
        let started = Instant::now();
        let mut record = self.processing();
        let mut rounds = Vec::new();
        let mut messages = self.prompt(turn);
        record.insert("contextMessages".to_owned(), (messages.len() - 2).into());
        let draft = Draft { sink: turn.draft.clone(), text: Mutex::new(String::new()) };
        for _ in 0..=MAX_TOOL_ROUNDS {
            draft.paragraph();
            let round_started = Instant::now();
            let completion =
                match self.upstream.call(self.settings.upstream.retries, || self.complete(&messages, &draft)).await {
                    Ok(completion) => completion,
                    Err(failure) => {
                        record.insert("rounds".to_owned(), Value::Array(rounds));
                        return Err((failure, record));
                    }
                };
            self.upstream.tokens(completion.prompt_tokens, completion.completion_tokens);
            let mut round = json!({
                "ms": round_started.elapsed().as_millis() as u64,
                "firstTokenMs": completion.first_token.map(|after| after.as_millis() as u64),
                "finishReason": completion.finish_reason,
                "promptTokens": completion.prompt_tokens,
                "completionTokens": completion.completion_tokens,
            });
            if completion.tool_calls.is_empty() {
                rounds.push(round);
                record.insert("rounds".to_owned(), Value::Array(rounds));
                record.insert("ms".to_owned(), (started.elapsed().as_millis() as u64).into());
                let content = draft.text().trim().to_owned();
                if content.is_empty() {
                    return Err((Failure::BadResponse("an empty answer".to_owned()), record));
                }
                return Ok(answer(content, None, record));
            }
            let mut calls = Vec::new();
            let mut results = Vec::new();
            for call in &completion.tool_calls {
                let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
                if call.name == "transfer_to_human" {
                    let handoff = transfer(&arguments);
                    calls.push(json!({ "name": call.name, "arguments": arguments }));
                    round["toolCalls"] = Value::Array(calls);
                    rounds.push(round);
                    record.insert("rounds".to_owned(), Value::Array(rounds));
                    record.insert("ms".to_owned(), (started.elapsed().as_millis() as u64).into());
                    let content = self.fallback.words_or_handoff(&draft.text());
                    return Ok(answer(content, Some(handoff), record));
                }
                let result = self.run_tool(&call.name, &arguments);
                calls.push(json!({ "name": call.name, "arguments": arguments, "result": result }));
                results.push((call.clone(), result));
            }
            round["toolCalls"] = Value::Array(calls);
            rounds.push(round);
            messages.push(json!({
                "role": "assistant",
                "content": Value::Null,
                "tool_calls": results.iter().map(|(call, _)| json!({
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments },
                })).collect::<Vec<_>>(),
            }));
            for (call, result) in results {
                messages.push(json!({ "role": "tool", "tool_call_id": call.id, "content": result }));
            }
        }
        record.insert("rounds".to_owned(), Value::Array(rounds));
        Err((Failure::BadResponse("too many tool calls".to_owned()), record))
    }

    fn run_tool(&self, name: &str, arguments: &Value) -> String {
        match name {
            "search_faq" => {
                let query = arguments.get("query").and_then(Value::as_str).unwrap_or_default();
                let found: Vec<String> = self
                    .fallback
                    .rules
                    .search(query)
                    .into_iter()
                    .take(SEARCH_RESULTS)
                    .map(|(entry, _)| format!("[{}] {}", entry.intent, entry.answer))
                    .collect();
                if found.is_empty() {
                    "No article matches. Do not guess: say you don't know, or offer a person.".to_owned()
                } else {
                    found.join("\n")
                }
            }
            other => format!("There is no tool called {other}."),
        }
    }

    /// The system prompt, the history that fits the budget, and the customer's words.
    fn prompt(&self, turn: &BotTurn) -> Vec<Value> {
        let mut system = self.settings.system_prompt.clone();
        // The name is the customer's own words: quoted and cut, never instructions.
        system.push_str(&format!("\n\nThe customer gave their name as {:?}.", clip(&turn.customer_name, 80)));
        if let Some(context) = turn.bot_context.as_deref().filter(|context| !context.trim().is_empty()) {
            system.push_str(&format!("\nWhat the website says about this customer or page: {context}"));
        }
        let budget =
            self.settings.context_tokens.saturating_sub(estimate_tokens(&system) + estimate_tokens(&turn.text));
        let mut messages = vec![json!({ "role": "system", "content": system })];
        for line in recent_within(&turn.history, budget) {
            let role = if line.sender == SenderType::Customer { "user" } else { "assistant" };
            messages.push(json!({ "role": role, "content": line.content }));
        }
        messages.push(json!({ "role": "user", "content": turn.text }));
        messages
    }

    fn request_body(&self, messages: &[Value]) -> Value {
        json!({
            "model": self.settings.model,
            "messages": messages,
            "tools": tools(),
            "stream": true,
            "stream_options": { "include_usage": true },
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        })
    }

    /// One streamed completion: text goes to the draft as it comes.
    async fn complete(&self, messages: &[Value], draft: &Draft) -> Result<Completion, Failure> {
        let sent = Instant::now();
        let patience = self.settings.upstream.first_token_timeout;
        let mut request = self.upstream_request().json(&self.request_body(messages));
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        // The first token is due `patience` after the request, headers included.
        let first_due = tokio::time::Instant::now() + patience;
        let response = tokio::time::timeout_at(first_due, request.send())
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(|error| Failure::from_reqwest(&error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let mut received = 0usize;
        let bytes = response.bytes_stream().map(move |chunk| {
            // A body cut short reads as a decoding error to reqwest: for us it is a dropped stream.
            let chunk = chunk.map_err(|_| Failure::Dropped)?;
            received += chunk.len();
            if received > MAX_RESPONSE_BYTES {
                return Err(Failure::BadResponse("the answer is too large".to_owned()));
            }
            Ok(chunk)
        });
        let mut events = bytes.eventsource();
        let mut completion = Completion::default();
        let mut shown_any = false;
        let mut done = false;
        loop {
            // After the first token, a pause as long as `patience` means the stream is stuck.
            let due = if completion.first_token.is_some() { tokio::time::Instant::now() + patience } else { first_due };
            let next = match tokio::time::timeout_at(due, events.next()).await {
                Ok(next) => next,
                Err(_) if shown_any => return Err(Failure::DroppedAfterOutput),
                Err(_) => return Err(Failure::Timeout),
            };
            let event = match next {
                None => break,
                Some(Ok(event)) => event,
                Some(Err(eventsource_stream::EventStreamError::Transport(Failure::BadResponse(why)))) => {
                    return Err(Failure::BadResponse(why))
                }
                Some(Err(_)) if shown_any => return Err(Failure::DroppedAfterOutput),
                Some(Err(_)) => return Err(Failure::Dropped),
            };
            if event.data.trim() == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Chunk =
                serde_json::from_str(&event.data).map_err(|error| Failure::BadResponse(error.to_string()))?;
            if let Some(error) = chunk.error {
                return Err(Failure::BadResponse(error.to_string()));
            }
            if let Some(usage) = chunk.usage {
                completion.prompt_tokens = usage.prompt_tokens.unwrap_or_default();
                completion.completion_tokens = usage.completion_tokens.unwrap_or_default();
            }
            let mut full = false;
            for choice in chunk.choices.unwrap_or_default() {
                let delta = choice.delta.unwrap_or_default();
                let calls = delta.tool_calls.unwrap_or_default();
                let has_token = delta.content.as_deref().is_some_and(|text| !text.is_empty()) || !calls.is_empty();
                if has_token && completion.first_token.is_none() {
                    completion.first_token = Some(sent.elapsed());
                    self.upstream.first_token(sent.elapsed());
                }
                if let Some(text) = delta.content {
                    shown_any |= !text.is_empty();
                    full |= !draft.push(&text);
                }
                for call in calls {
                    merge_tool_call(&mut completion.tool_calls, call)?;
                }
                if choice.finish_reason.is_some() {
                    completion.finish_reason = choice.finish_reason;
                }
            }
            if full {
                // As long as a message may be: the rest is not read.
                completion.finish_reason = Some("length".to_owned());
                break;
            }
        }
        // A stream may end without `[DONE]` once it said why it finished; without either it was cut.
        if !done && completion.finish_reason.is_none() {
            return Err(if shown_any { Failure::DroppedAfterOutput } else { Failure::Dropped });
        }
        Ok(completion)
    }

    fn upstream_request(&self) -> reqwest::RequestBuilder {
        self.client.post(&self.upstream.url)
    }
}

fn answer(content: String, handoff: Option<BotHandoff>, record: Map<String, Value>) -> BotReply {
    BotReply {
        content,
        understanding: Understanding::default(),
        understood: true,
        handoff,
        processing: Some(Value::Object(record)),
    }
}

/// `transfer_to_human`'s arguments: a reason (cleaned and cut) and maybe a priority.
fn transfer(arguments: &Value) -> BotHandoff {
    let text = |key: &str| arguments.get(key).and_then(Value::as_str);
    decided_handoff(text("reason"), text("priority"), "bot_transferred")
}

/// Streamed tool calls come in pieces keyed by index: the first names the
/// function, the rest carry its arguments bit by bit.
fn merge_tool_call(calls: &mut Vec<ToolCall>, delta: ToolCallDelta) -> Result<(), Failure> {
    if delta.index >= MAX_TOOL_CALLS {
        return Err(Failure::BadResponse(format!("more than {MAX_TOOL_CALLS} tool calls")));
    }
    while calls.len() <= delta.index {
        calls.push(ToolCall::default());
    }
    let call = &mut calls[delta.index];
    if let Some(id) = delta.id {
        call.id = id;
    }
    if let Some(function) = delta.function {
        if let Some(name) = function.name {
            call.name.push_str(&name);
        }
        if let Some(arguments) = function.arguments {
            call.arguments.push_str(&arguments);
        }
    }
    if call.name.len() + call.arguments.len() > MAX_ARGUMENTS_BYTES {
        return Err(Failure::BadResponse("a tool call's arguments are too long".to_owned()));
    }
    Ok(())
}

fn tools() -> Value {
    json!([
        {
            "type": "function",
            "function": {
                "name": "transfer_to_human",
                "description": "Hand the conversation to a human support agent.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "reason": { "type": "string", "description": "Why a person is needed, in a few words." },
                        "priority": { "type": "string", "enum": ["low", "normal", "high"], "description": "How urgent it is." }
                    },
                    "required": ["reason"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "search_faq",
                "description": "Search the company's help articles; answer from what it returns.",
                "parameters": {
                    "type": "object",
                    "properties": { "query": { "type": "string", "description": "What to look for." } },
                    "required": ["query"]
                }
            }
        }
    ])
}

/// Roughly four characters a token, plus a few for the message's framing.
fn estimate_tokens(text: &str) -> usize {
    text.chars().count() / 4 + 4
}

/// The newest lines of `history` whose tokens fit `budget`, oldest first.
fn recent_within(history: &[Line], budget: usize) -> &[Line] {
    let mut used = 0;
    let mut start = history.len();
    for (index, line) in history.iter().enumerate().rev() {
        used += estimate_tokens(&line.content);
        if used > budget {
            break;
        }
        start = index;
    }
    &history[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line { sender: SenderType::Customer, content: text.to_owned() }
    }

    #[test]
    fn the_history_keeps_the_newest_lines_that_fit_the_budget() {
        let history: Vec<Line> = (0..10).map(|n| line(&format!("{n}{}", "x".repeat(39)))).collect();
        // Each line is 40 characters: 14 tokens.
        let kept = recent_within(&history, 45);
        assert_eq!(kept.len(), 3);
        assert!(kept[0].content.starts_with('7') && kept[2].content.starts_with('9'));
        assert!(recent_within(&history, 5).is_empty());
        assert_eq!(recent_within(&history, 10_000).len(), 10);
    }

    #[test]
    fn streamed_tool_call_pieces_are_put_together() {
        let mut calls = Vec::new();
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            function: Some(FunctionDelta { name: name.map(str::to_owned), arguments: Some(arguments.to_owned()) }),
        };
        merge_tool_call(&mut calls, piece(0, Some("call_1"), Some("search_faq"), "")).expect("a call");
        merge_tool_call(&mut calls, piece(0, None, None, "{\"query\":")).expect("a piece");
        merge_tool_call(&mut calls, piece(0, None, None, "\"refunds\"}")).expect("a piece");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "call_1");
        assert_eq!(calls[0].name, "search_faq");
        assert_eq!(calls[0].arguments, "{\"query\":\"refunds\"}");
        assert!(merge_tool_call(&mut calls, piece(1_000_000_000, None, None, "")).is_err(), "a wild index is refused");
        assert!(
            merge_tool_call(&mut calls, piece(0, None, None, &"x".repeat(5000))).is_err(),
            "as are endless arguments"
        );
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn a_transfer_reason_is_cleaned_and_its_priority_read() {
        let handoff = transfer(&json!({ "reason": "needs\u{202e} a refund", "priority": "low" }));
        let low = Some(crate::domain::Priority::Low);
        assert_eq!(handoff, BotHandoff::Decided { reason: "needs a refund".to_owned(), priority: low });
        let handoff = transfer(&json!({ "reason": "x".repeat(500), "priority": "urgent!!" }));
        let BotHandoff::Decided { reason, priority } = handoff else { panic!("a decided handoff") };
        assert_eq!(reason.chars().count(), super::super::MAX_REASON_CHARS);
        assert_eq!(priority, None);
    }
}
