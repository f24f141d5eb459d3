//! A stand-in for an OpenAI-compatible Chat Completions server and for the
//! remote NLU and domain agents, speaking their wire formats faithfully so the
//! integration and browser tests exercise the real client code paths
//! (SSE framing, tool-call deltas, usage chunks, errors, aborted streams).
//!
//! What it answers depends on words in the conversation ("explode",
//! "dropline", "refund", "flood", ...); see `decide` and the agent handlers.
//! Every request body is recorded so tests can assert what was sent.

// Each crate that includes this module (the API tests, the example binary)
// uses a different part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

const COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// Generous, so long conversations with tool results are never refused.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A running stand-in server; dropping it stops the server.
pub struct StandIn {
    /// "http://127.0.0.1:PORT"
    pub base_url: String,
    /// Every request body received, in order, as {"path": ..., "body": ...}.
    recorded: Arc<Mutex<Vec<Value>>>,
    handle: ServerHandle,
}

/// What the handlers share.
struct State {
    api_key: Option<String>,
    recorded: Arc<Mutex<Vec<Value>>>,
}

impl State {
    fn record(&self, path: &str, body: &Value) {
        self.recorded.lock().expect("recorded lock").push(json!({ "path": path, "body": body }));
    }
}

impl StandIn {
    /// Starts the server on 127.0.0.1:`port` (0 = any free port) on its own
    /// thread and returns once it is listening. With `api_key`, chat
    /// completions require `Authorization: Bearer KEY`.
    pub fn start(port: u16, api_key: Option<String>) -> std::io::Result<StandIn> {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(State { api_key, recorded: recorded.clone() });
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("standin".into()).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (server, port) = match bind(state, port) {
                    Ok(bound) => bound,
                    Err(err) => {
                        let _ = tx.send(Err(err));
                        return;
                    }
                };
                let _ = tx.send(Ok((port, server.handle())));
                if let Err(err) = server.await {
                    eprintln!("standin: server stopped with an error: {err}");
                }
            })
        })?;
        let (port, handle) = rx
            .recv()
            .map_err(|_| std::io::Error::other("standin: the server thread ended before it was listening"))??;
        Ok(StandIn { base_url: format!("http://127.0.0.1:{port}"), recorded, handle })
    }

    /// Every chat-completions request body received so far, in order.
    pub fn completions(&self) -> Vec<Value> {
        self.recorded_where(|path| path == COMPLETIONS_PATH).into_iter().map(|mut call| call["body"].take()).collect()
    }

    /// Every request body received by /nlu and /agents/* so far, as
    /// {"path": "...", "body": {...}}.
    pub fn agent_calls(&self) -> Vec<Value> {
        self.recorded_where(|path| path != COMPLETIONS_PATH)
    }

    fn recorded_where(&self, keep: impl Fn(&str) -> bool) -> Vec<Value> {
        let recorded = self.recorded.lock().expect("recorded lock");
        recorded.iter().filter(|call| keep(call["path"].as_str().unwrap_or_default())).cloned().collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Sends the stop command at once; the returned future only waits for it.
        drop(self.handle.stop(false));
    }
}

fn bind(state: web::Data<State>, port: u16) -> std::io::Result<(actix_web::dev::Server, u16)> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(COMPLETIONS_PATH, web::post().to(chat_completions))
            .route("/nlu", web::post().to(nlu))
            .route("/agents/{name}", web::post().to(agent))
            .route("/_recorded", web::get().to(recorded))
    })
    // Async handlers: one worker serves any number of slow requests.
    .workers(1)
    // The including process owns its signals (the test harness, or the
    // example, which should simply die when killed).
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", port))?;
    let port = server.addrs().first().map(|addr| addr.port()).unwrap_or(port);
    Ok((server.run(), port))
}

async fn recorded(state: web::Data<State>) -> HttpResponse {
    let recorded = state.recorded.lock().expect("recorded lock").clone();
    let (completions, agent_calls): (Vec<Value>, Vec<Value>) =
        recorded.into_iter().partition(|call| call["path"] == COMPLETIONS_PATH);
    let completions: Vec<Value> = completions.into_iter().map(|mut call| call["body"].take()).collect();
    HttpResponse::Ok().json(json!({ "completions": completions, "agentCalls": agent_calls }))
}

// ---------------------------------------------------------------------------
// Chat Completions
// ---------------------------------------------------------------------------

/// The OpenAI error envelope.
fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }))
}

async fn chat_completions(req: HttpRequest, body: Bytes, state: web::Data<State>) -> HttpResponse {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("We could not parse the JSON body of your request. ({err})");
            return openai_error(StatusCode::BAD_REQUEST, &message, "invalid_request_error", None);
        }
    };
    state.record(COMPLETIONS_PATH, &request);

    if let Some(key) = &state.api_key {
        let given = req.headers().get("authorization").and_then(|value| value.to_str().ok());
        if given != Some(format!("Bearer {key}").as_str()) {
            return openai_error(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided",
                "invalid_request_error",
                Some("invalid_api_key"),
            );
        }
    }
    let Some(messages) = request["messages"].as_array() else {
        let message = "you must provide a messages parameter";
        return openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", None);
    };

    let Decision::Answer(plan) = decide(&request, messages) else {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request.",
            "server_error",
            None,
        );
    };
    let meta = ResponseMeta {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: chrono::Utc::now().timestamp(),
        model: request["model"].as_str().unwrap_or("standin").to_string(),
        prompt_tokens: prompt_tokens(messages),
    };
    let reply = plan.reply.limited_to(max_tokens(&request));
    if request["stream"].as_bool().unwrap_or(false) {
        let include_usage = request["stream_options"]["include_usage"].as_bool().unwrap_or(false);
        stream_response(sse_steps(&meta, plan.delay, &reply, include_usage))
    } else {
        // Not streamed: no pacing, only the up-front delay.
        actix_web::rt::time::sleep(plan.delay).await;
        whole_response(&meta, &reply)
    }
}

/// Facts about one response that every chunk repeats.
struct ResponseMeta {
    id: String,
    created: i64,
    model: String,
    prompt_tokens: usize,
}

/// What to answer, before it is framed as JSON or SSE.
enum Reply {
    /// Plain text, sent as these chunks `gap` apart when streamed.
    Text { chunks: Vec<String>, gap: Duration, finish_reason: &'static str },
    /// One function call; `arguments` is the JSON string OpenAI sends.
    ToolCall { name: &'static str, arguments: String },
    /// The connection dies mid-answer.
    Drop { chunks: Vec<String> },
}

/// A 500 (the customer said "explode"), or an answer.
enum Decision {
    ServerError,
    Answer(Plan),
}

struct Plan {
    /// Before the first chunk (headers are already sent when streaming).
    delay: Duration,
    reply: Reply,
}

const WORD_GAP: Duration = Duration::from_millis(20);
const STORY_GAP: Duration = Duration::from_millis(150);
const SLOWPOKE_DELAY: Duration = Duration::from_secs(30);

const LONG_STORY: &str = "Once upon a time a parcel left our warehouse on a rainy Monday. \
    It travelled by truck, then by train, then by boat across the bay. \
    On Thursday it reached your door, a little damp but whole, and the courier smiled.";

/// Decides the answer from the last message and the last user text.
fn decide(request: &Value, messages: &[Value]) -> Decision {
    let last_role = messages.last().and_then(|message| message["role"].as_str()).unwrap_or_default();
    if last_role == "tool" {
        let tool_output = messages.last().map(message_text).unwrap_or_default();
        let answer = format!("From our help pages: {}", truncate_chars(&tool_output, 300));
        return Decision::Answer(Plan { delay: Duration::ZERO, reply: text_reply(&answer, WORD_GAP) });
    }

    let user_text =
        messages.iter().rev().find(|message| message["role"] == "user").map(message_text).unwrap_or_default();
    let said = user_text.to_lowercase();
    if said.contains("explode") {
        return Decision::ServerError;
    }
    // A slow first token, then the answer the rest of the text asks for.
    let delay = if said.contains("slowpoke") { SLOWPOKE_DELAY } else { Duration::ZERO };
    let offers = |name: &str| offers_tool(request, name);

    let reply = if said.contains("dropline") {
        Reply::Drop { chunks: vec!["Let me ".into(), "check that ".into()] }
    } else if (said.contains("human") || said.contains("person")) && offers("transfer_to_human") {
        let priority = if said.contains("whenever") { "low" } else { "high" };
        // Written out so the keys keep OpenAI's (the prompt's) order.
        let arguments = format!(r#"{{"reason":"customer asked for a person","priority":"{priority}"}}"#);
        Reply::ToolCall { name: "transfer_to_human", arguments }
    } else if said.contains("refund") && offers("search_faq") {
        Reply::ToolCall { name: "search_faq", arguments: r#"{"query":"refund policy"}"#.to_string() }
    } else if said.contains("long story") {
        text_reply(LONG_STORY, STORY_GAP)
    } else if said.contains("flood") {
        // A server gone wrong: 600 KB of answer in 300 chunks, within any max_tokens.
        Reply::Text { chunks: vec!["flood ".repeat(333); 300], gap: Duration::ZERO, finish_reason: "stop" }
    } else {
        text_reply(&format!("You said: {user_text}. How else can I help?"), WORD_GAP)
    };
    Decision::Answer(Plan { delay, reply })
}

/// Plain text split into chunks of one word plus its trailing space.
fn text_reply(text: &str, gap: Duration) -> Reply {
    let chunks = text.split_inclusive(' ').map(str::to_string).collect();
    Reply::Text { chunks, gap, finish_reason: "stop" }
}

impl Reply {
    /// Honours `max_tokens` the way OpenAI does: the answer stops short and
    /// finish_reason says "length". (One chunk counts as one token here.)
    fn limited_to(self, max_tokens: Option<usize>) -> Reply {
        match (self, max_tokens) {
            (Reply::Text { mut chunks, gap, .. }, Some(max)) if chunks.len() > max => {
                chunks.truncate(max);
                Reply::Text { chunks, gap, finish_reason: "length" }
            }
            (reply, _) => reply,
        }
    }

    fn completion_tokens(&self) -> usize {
        match self {
            Reply::Text { chunks, .. } | Reply::Drop { chunks } => chunks.len(),
            Reply::ToolCall { arguments, .. } => (arguments.len() / 4).max(1),
        }
    }
}

fn offers_tool(request: &Value, name: &str) -> bool {
    request["tools"].as_array().is_some_and(|tools| tools.iter().any(|tool| tool["function"]["name"] == name))
}

fn max_tokens(request: &Value) -> Option<usize> {
    let limit = request["max_completion_tokens"].as_u64().or_else(|| request["max_tokens"].as_u64())?;
    usize::try_from(limit).ok()
}

/// A message's text: a plain string, or the text parts of a content array.
fn message_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// Roughly OpenAI's count: four characters a token.
fn prompt_tokens(messages: &[Value]) -> usize {
    let chars: usize = messages.iter().map(|message| message_text(message).chars().count()).sum();
    (chars / 4).max(1)
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn usage(meta: &ResponseMeta, reply: &Reply) -> Value {
    let completion_tokens = reply.completion_tokens();
    json!({
        "prompt_tokens": meta.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": meta.prompt_tokens + completion_tokens,
    })
}

fn new_tool_call_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("call_{}", &hex[..24])
}

/// The `stream: false` answer: one chat.completion object.
fn whole_response(meta: &ResponseMeta, reply: &Reply) -> HttpResponse {
    let (message, finish_reason) = match reply {
        Reply::Text { chunks, finish_reason, .. } => {
            (json!({ "role": "assistant", "content": chunks.concat(), "refusal": null }), *finish_reason)
        }
        Reply::ToolCall { name, arguments } => {
            let call = json!({
                "id": new_tool_call_id(),
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            });
            (json!({ "role": "assistant", "content": null, "tool_calls": [call], "refusal": null }), "tool_calls")
        }
        Reply::Drop { .. } => {
            // Headers and a first fragment, then the connection dies.
            let fragment = format!("{{\"id\":\"{}\",\"object\":\"chat.completion\",", meta.id);
            let steps = VecDeque::from([Step::Send(fragment), Step::Wait(WORD_GAP), Step::Abort]);
            return HttpResponse::Ok().content_type("application/json").streaming(play(steps));
        }
    };
    HttpResponse::Ok().json(json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason }],
        "usage": usage(meta, reply),
    }))
}

// ---------------------------------------------------------------------------
// Server-sent events
// ---------------------------------------------------------------------------

/// One step of a scripted response body.
enum Step {
    Wait(Duration),
    Send(String),
    /// Ends the body with an error, which makes actix drop the connection
    /// without the terminating chunk: the client sees a truncated transfer.
    Abort,
}

fn stream_response(steps: VecDeque<Step>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(play(steps))
}

/// Plays the script as a body stream, sleeping where it says so.
fn play(steps: VecDeque<Step>) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(steps, |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Wait(duration) => actix_web::rt::time::sleep(duration).await,
                Step::Send(text) => return Some((Ok(Bytes::from(text)), steps)),
                Step::Abort => {
                    let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "standin: dropline");
                    return Some((Err(err), steps));
                }
            }
        }
    })
}

/// Builds the SSE events for one chat.completion.chunk stream.
struct ChunkWriter<'a> {
    meta: &'a ResponseMeta,
    include_usage: bool,
    steps: VecDeque<Step>,
}

impl ChunkWriter<'_> {
    fn chunk(&mut self, delta: Value, finish_reason: Option<&str>) {
        let mut chunk = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        // With include_usage OpenAI puts "usage": null on every chunk but the last.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        self.data(&chunk.to_string());
    }

    fn data(&mut self, data: &str) {
        self.steps.push_back(Step::Send(format!("data: {data}\n\n")));
    }

    fn wait(&mut self, duration: Duration) {
        if !duration.is_zero() {
            self.steps.push_back(Step::Wait(duration));
        }
    }

    /// The finish chunk, the usage chunk if asked for, and [DONE].
    fn finish(&mut self, finish_reason: &str, usage: Value) {
        self.chunk(json!({}), Some(finish_reason));
        if self.include_usage {
            let chunk = json!({
                "id": self.meta.id,
                "object": "chat.completion.chunk",
                "created": self.meta.created,
                "model": self.meta.model,
                "choices": [],
                "usage": usage,
            });
            self.data(&chunk.to_string());
        }
        self.data("[DONE]");
    }
}

fn sse_steps(meta: &ResponseMeta, delay: Duration, reply: &Reply, include_usage: bool) -> VecDeque<Step> {
    let mut out = ChunkWriter { meta, include_usage, steps: VecDeque::new() };
    out.wait(delay);
    // Real servers send comments to keep proxies from timing out; clients
    // must skip them.
    out.steps.push_back(Step::Send(": keep-alive\n\n".into()));
    match reply {
        Reply::Text { chunks, gap, finish_reason } => {
            out.chunk(json!({ "role": "assistant", "content": "" }), None);
            for chunk in chunks {
                out.wait(*gap);
                out.chunk(json!({ "content": chunk }), None);
            }
            out.wait(*gap);
            out.finish(finish_reason, usage(meta, reply));
        }
        Reply::ToolCall { name, arguments } => {
            let call = json!({
                "index": 0,
                "id": new_tool_call_id(),
                "type": "function",
                "function": { "name": name, "arguments": "" },
            });
            out.chunk(json!({ "role": "assistant", "content": null, "tool_calls": [call] }), None);
            for piece in split_arguments(arguments) {
                out.wait(WORD_GAP);
                out.chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }), None);
            }
            out.wait(WORD_GAP);
            out.finish("tool_calls", usage(meta, reply));
        }
        Reply::Drop { chunks } => {
            out.chunk(json!({ "role": "assistant", "content": "" }), None);
            for chunk in chunks {
                out.wait(WORD_GAP);
                out.chunk(json!({ "content": chunk }), None);
            }
            // Let the chunks reach the client before the connection dies.
            out.wait(Duration::from_millis(50));
            out.steps.push_back(Step::Abort);
        }
    }
    out.steps
}

/// Splits a JSON arguments string the way OpenAI streams it, in pieces that
/// are not JSON on their own: `{"query":` / `"refund policy"` / `}`.
fn split_arguments(arguments: &str) -> Vec<String> {
    let Some(colon) = arguments.find(':') else {
        return vec![arguments.to_string()];
    };
    let (head, rest) = arguments.split_at(colon + 1);
    match rest.len().checked_sub(1) {
        Some(last) if last > 0 => {
            let (middle, tail) = rest.split_at(last);
            vec![head.to_string(), middle.to_string(), tail.to_string()]
        }
        _ => vec![head.to_string(), rest.to_string()],
    }
}

// ---------------------------------------------------------------------------
// Remote NLU and domain agents
// ---------------------------------------------------------------------------

const AGENT_DELAY: Duration = Duration::from_secs(10);

/// Parses and records an agent request.
fn agent_request(path: &str, body: &[u8], state: &State) -> serde_json::Result<Value> {
    let request = serde_json::from_slice(body)?;
    state.record(path, &request);
    Ok(request)
}

fn bad_json(err: serde_json::Error) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": format!("invalid JSON: {err}") }))
}

fn lowercase_text(request: &Value) -> String {
    request["text"].as_str().unwrap_or_default().to_lowercase()
}

async fn nlu(body: Bytes, state: web::Data<State>) -> HttpResponse {
    let request = match agent_request("/nlu", &body, &state) {
        Ok(request) => request,
        Err(err) => return bad_json(err),
    };
    let text = lowercase_text(&request);
    if text.contains("nlu down") {
        // Longer than any sane NLU timeout.
        actix_web::rt::time::sleep(AGENT_DELAY).await;
    }
    HttpResponse::Ok().json(understand(&text))
}

fn understand(text: &str) -> Value {
    if text.contains("card") && (text.contains("lost") || text.contains("stolen")) {
        let entities = if text.contains("debit") { json!({ "cardType": "debit" }) } else { json!({}) };
        json!({ "intent": "card_lost", "entities": entities, "confidence": 0.82 })
    } else if text.contains("balance") {
        json!({ "intent": "account_balance", "entities": {}, "confidence": 0.9 })
    } else if text.contains("pizza") {
        json!({ "intent": "order_status", "entities": { "item": "pizza" }, "confidence": 0.75 })
    } else {
        json!({ "intent": null, "entities": {}, "confidence": 0.1 })
    }
}

async fn agent(name: web::Path<String>, body: Bytes, state: web::Data<State>) -> HttpResponse {
    let path = format!("/agents/{name}");
    let request = match agent_request(&path, &body, &state) {
        Ok(request) => request,
        Err(err) => return bad_json(err),
    };
    match name.as_str() {
        "banking" => HttpResponse::Ok().json(banking(&request)),
        "general" => HttpResponse::Ok().json(general(&request)),
        "slow" => {
            actix_web::rt::time::sleep(AGENT_DELAY).await;
            HttpResponse::Ok().json(json!({ "reply": "too late", "confidence": 1.0 }))
        }
        "broken" => HttpResponse::InternalServerError().json(json!({ "error": "boom" })),
        _ => HttpResponse::NotFound().json(json!({ "error": format!("no agent called {name}") })),
    }
}

fn banking(request: &Value) -> Value {
    // Identity checks win over any intent: the bot must hand over.
    if lowercase_text(request).contains("identity") {
        return json!({
            "reply": "I need a person to check your identity.",
            "handoff": { "reason": "needs_identity_check", "priority": "high" },
            "confidence": 0.9,
        });
    }
    match request["intent"].as_str() {
        Some("card_lost") => {
            let card = match request["entities"]["cardType"].as_str() {
                Some(kind) => format!("{kind} card"),
                None => "card".to_string(),
            };
            json!({ "reply": format!("I've frozen your {card}. A new one is on its way."), "confidence": 0.93 })
        }
        Some("account_balance") => json!({ "reply": "Your balance is 1,234.56 EUR.", "confidence": 0.95 }),
        _ => json!({ "reply": "Banking can't help with that.", "confidence": 0.2 }),
    }
}

fn general(request: &Value) -> Value {
    if lowercase_text(request).contains("pizza") {
        json!({ "reply": "Your pizza left the oven 10 minutes ago.", "confidence": 0.8 })
    } else {
        json!({ "reply": "General help: I can tell you about orders, cards and balances.", "confidence": 0.6 })
    }
}
