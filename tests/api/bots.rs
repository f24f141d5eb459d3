//! The LLM bot and remote agents, against the stand-in in tests/standin: a
//! real HTTP server that speaks the OpenAI Chat Completions API (server-sent
//! events, tool calls) and the remote agents' contract of docs/BOTS.md.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::standin::StandIn;

const KEY: &str = "sk-standin-test";

fn llm_options(standin: &StandIn) -> AppOptions {
    AppOptions::default()
        .env("BOT", "llm")
        .env("LLM_BASE_URL", format!("{}/v1", standin.base_url))
        .env("LLM_API_KEY", KEY)
        .env("LLM_MODEL", "standin-1")
}

fn standin() -> StandIn {
    StandIn::start(0, Some(KEY.to_owned())).expect("the stand-in starts")
}

/// A customer's chat with the greeting read.
async fn chat(app: &TestApp, customer: &Person, start: Value) -> (WsClient, String) {
    let mut widget = app.customer_socket(customer).await;
    let created = widget.ok("customer:start_chat", "session:created", start).await;
    let id = created["sessionId"].as_str().expect("a session id").to_owned();
    widget.push("message:received").await; // the greeting
    (widget, id)
}

/// Sends the customer's words and waits for them to be stored (not for the bot).
async fn say(widget: &mut WsClient, id: &str, text: &str) {
    let client_msg_id = uuid::Uuid::new_v4().to_string();
    widget
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": text, "clientMsgId": client_msg_id }),
        )
        .await;
}

/// Sends the customer's words; returns the bot's draft deltas and its stored answer.
async fn ask(widget: &mut WsClient, id: &str, text: &str) -> (Vec<Value>, Value) {
    say(widget, id, text).await;
    bot_answer(widget).await
}

/// The bot's draft deltas and then its stored answer, as a socket receives them.
async fn bot_answer(widget: &mut WsClient) -> (Vec<Value>, Value) {
    let mut deltas = Vec::new();
    loop {
        let frame = widget
            .wait_for("the bot's answer", |frame| {
                frame["event"] == "message:delta"
                    || (frame["event"] == "message:received" && frame["data"]["sender"] == "bot")
            })
            .await;
        if frame["event"] == "message:delta" {
            deltas.push(frame["data"].clone());
        } else {
            return (deltas, frame["data"].clone());
        }
    }
}

fn joined(deltas: &[Value]) -> String {
    deltas.iter().map(|delta| delta["text"].as_str().unwrap_or_default()).collect()
}

/// The session's messages through the REST API, as `token` sees them.
async fn messages(app: &TestApp, id: &str, token: &str) -> Vec<Value> {
    let (status, page) = app.get_as(&format!("/api/sessions/{id}/messages"), token).await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().cloned().unwrap_or_default()
}

fn metric(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next().and_then(|value| value.parse::<f64>().ok()))
        .sum()
}

#[tokio::test]
async fn an_llm_answer_streams_to_the_customer_in_deltas_and_is_stored_once() {
    let standin = standin();
    let prompt = std::env::temp_dir().join(format!("prompt-{}.txt", uuid::Uuid::new_v4()));
    std::fs::write(&prompt, "You are Penny, the assistant of Parcel & Co.").expect("write the prompt");
    let app = spawn_app_with(llm_options(&standin).env("LLM_SYSTEM_PROMPT_FILE", prompt.display().to_string())).await;
    let (_, info) = app.get_as("/api/info", "").await;
    assert_eq!(info["bot"], "llm");
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({ "botContext": "on the pricing page" })).await;

    let (deltas, answer) = ask(&mut widget, &id, "hello there").await;
    let expected = "You said: hello there. How else can I help?";
    assert!(deltas.len() >= 5, "the answer came in pieces as it was written: {deltas:?}");
    let draft_id = &deltas[0]["draftId"];
    assert!(deltas.iter().all(|delta| &delta["draftId"] == draft_id && delta["sessionId"] == id.as_str()));
    assert_eq!(joined(&deltas).trim(), expected);
    assert_eq!(answer["content"], expected, "the stored answer is what was streamed");
    assert_eq!(&answer["draftId"], draft_id, "the stored message replaces the draft");
    assert!(answer["seq"].as_i64().is_some());
    assert!(answer.get("bot").is_none(), "the customer is not shown the bot's workings: {answer}");
    let stored = app
        .settled_count(&format!(
            "SELECT count(*) FROM chat_messages WHERE sender_type = 'bot' AND content = '{expected}'"
        ))
        .await;
    assert_eq!(stored, 1, "stored once");

    // What the model was sent: the prompt file, the page's context, the tools, streaming.
    let request = standin.completions().pop().expect("a completion request");
    assert_eq!(request["model"], "standin-1");
    assert_eq!(request["stream"], true);
    let system = request["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(
        system.contains("You are Penny") && system.contains("on the pricing page") && system.contains("Ann"),
        "{system}"
    );
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["transfer_to_human", "search_faq"]);

    // The next turn carries the conversation so far, from memory.
    let (_, second) = ask(&mut widget, &id, "and what about tomorrow").await;
    assert_eq!(second["content"], "You said: and what about tomorrow. How else can I help?");
    let request = standin.completions().pop().expect("a second request");
    let said: Vec<(String, String)> = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .map(|message| {
            (
                message["role"].as_str().unwrap_or_default().to_owned(),
                message["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let greeting_and_turns = &said[said.len() - 3..];
    assert_eq!(
        greeting_and_turns,
        [
            ("user".to_owned(), "hello there".to_owned()),
            ("assistant".to_owned(), expected.to_owned()),
            ("user".to_owned(), "and what about tomorrow".to_owned()),
        ]
    );

    // Staff see what the bot did; the customer does not.
    let agent = app.staff("opal", "admin", 3).await;
    let shown = messages(&app, &id, &agent.token).await;
    let bot = shown.iter().find(|message| message["content"] == expected).expect("the answer");
    assert_eq!(bot["bot"]["processing"]["model"], "standin-1");
    assert!(bot["bot"]["processing"]["rounds"][0]["completionTokens"].as_u64() > Some(0), "{bot}");
    let seen_by_customer = messages(&app, &id, &ann.token).await;
    assert!(seen_by_customer.iter().all(|message| message.get("bot").is_none()));

    let metrics = app.metrics().await;
    assert!(metric(&metrics, "switchboard_bot_tokens_total", &["kind=\"completion\"", "upstream=\"llm\""]) > 0.0);
    assert!(metric(&metrics, "switchboard_bot_first_token_seconds_count", &["upstream=\"llm\""]) >= 2.0);
    assert_eq!(metric(&metrics, "switchboard_bot_requests_total", &["outcome=\"ok\"", "upstream=\"llm\""]), 2.0);
    let _ = std::fs::remove_file(prompt);
}

#[tokio::test]
async fn the_context_sent_to_the_model_keeps_the_newest_lines_within_the_token_budget() {
    let standin = standin();
    let app = spawn_app_with(llm_options(&standin).env("LLM_CONTEXT_TOKENS", "700")).await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;
    for n in 1..=5 {
        ask(&mut widget, &id, &format!("question {n} {}", "words ".repeat(40))).await;
    }
    let last = standin.completions().pop().expect("requests");
    let contents: Vec<&str> =
        last["messages"].as_array().into_iter().flatten().filter_map(|message| message["content"].as_str()).collect();
    let sent: usize = contents.iter().map(|content| content.len()).sum();
    assert!(sent / 4 < 900, "about {} tokens were sent for a budget of 700", sent / 4);
    assert!(contents.iter().any(|content| content.starts_with("question 5")), "the question itself");
    assert!(contents.iter().any(|content| content.starts_with("question 4")), "the newest history is kept");
    assert!(!contents.iter().any(|content| content.starts_with("question 1")), "the oldest is trimmed");
}

#[tokio::test]
async fn transfer_to_human_queues_the_chat_with_the_models_reason_and_never_a_higher_priority() {
    let standin = standin();
    let app = spawn_app_with(llm_options(&standin)).await;
    let alice = app.agent("alice", 5).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    // Away, so the chats stay on the board to be read, not assigned at once.
    desk.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;

    // The model asks for `high`; the host website made this customer `normal`.
    let bea = app.host_customer("Bea", "normal").await;
    let (mut widget, id) = chat(&app, &bea, json!({})).await;
    let (_, answer) = ask(&mut widget, &id, "let me talk to a human").await;
    assert_eq!(answer["content"], "Of course. I'm connecting you with a person now.", "the FAQ's handoff words");
    let status = widget.push("status:changed").await;
    assert_eq!(status["status"], "waiting");
    let board = desk.board_when("Bea's chat", |board| board.iter().any(|item| item["sessionId"] == id.as_str())).await;
    let item = board.iter().find(|item| item["sessionId"] == id.as_str()).expect("on the board");
    assert_eq!(item["reason"], "customer asked for a person");
    assert_eq!(item["priority"], "normal", "the model cannot raise the priority");

    // A model may lower it.
    let cy = app.host_customer("Cy", "high").await;
    let (mut widget, low) = chat(&app, &cy, json!({})).await;
    ask(&mut widget, &low, "a person whenever you can").await;
    let board = desk.board_when("Cy's chat", |board| board.iter().any(|item| item["sessionId"] == low.as_str())).await;
    let item = board.iter().find(|item| item["sessionId"] == low.as_str()).expect("on the board");
    assert_eq!(item["priority"], "low");
    let stored = app
        .count(&format!("SELECT count(*) FROM queue_entries WHERE session_id = '{low}' AND priority = 'low' AND reason = 'customer asked for a person'"))
        .await;
    assert_eq!(stored, 1);

    let shown = messages(&app, &id, &alice.token).await;
    let bot = shown.iter().rev().find(|message| message["sender"] == "bot").expect("the bot's answer");
    let call = &bot["bot"]["processing"]["rounds"][0]["toolCalls"][0];
    assert_eq!(call["name"], "transfer_to_human");
    assert_eq!(call["arguments"]["priority"], "high", "what the model asked is on record");
}

#[tokio::test]
async fn search_faq_is_answered_from_the_faq_file_and_the_final_answer_uses_it() {
    let standin = standin();
    let faq = std::env::temp_dir().join(format!("faq-{}.json", uuid::Uuid::new_v4()));
    let mut file: Value = serde_json::from_str(include_str!("../../src/bots/faq.json")).expect("the FAQ");
    file["entries"] = json!([{ "intent": "refunds", "keywords": ["refund", "money back"], "answer": "Refunds within 45 days, no questions asked." }]);
    std::fs::write(&faq, file.to_string()).expect("write the FAQ");
    let app = spawn_app_with(llm_options(&standin).env("BOT_FAQ_FILE", faq.display().to_string())).await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;

    let (_, answer) = ask(&mut widget, &id, "what is your refund policy?").await;
    assert_eq!(answer["content"], "From our help pages: [refunds] Refunds within 45 days, no questions asked.");

    let requests = standin.completions();
    assert_eq!(requests.len(), 2, "one to ask, one with the tool's result");
    let followup = requests[1]["messages"].as_array().cloned().unwrap_or_default();
    let call = followup
        .iter()
        .find(|message| message["role"] == "assistant" && message["tool_calls"].is_array())
        .expect("the call");
    assert_eq!(call["tool_calls"][0]["function"]["name"], "search_faq");
    let result = followup.iter().find(|message| message["role"] == "tool").expect("the tool's result");
    assert_eq!(result["tool_call_id"], call["tool_calls"][0]["id"]);
    assert!(result["content"].as_str().unwrap_or_default().contains("45 days"), "{result}");

    let admin = app.staff("root", "admin", 1).await;
    let shown = messages(&app, &id, &admin.token).await;
    let bot = shown.iter().rev().find(|message| message["sender"] == "bot").expect("the answer");
    let tool = &bot["bot"]["processing"]["rounds"][0]["toolCalls"][0];
    assert_eq!(tool["name"], "search_faq");
    assert_eq!(tool["arguments"]["query"], "refund policy");
    assert!(tool["result"].as_str().unwrap_or_default().contains("45 days"));
    let _ = std::fs::remove_file(faq);
}

#[tokio::test]
async fn a_slow_first_token_a_500_and_a_dropped_stream_each_end_in_the_rule_bots_answer_in_time() {
    let standin = standin();
    let app = spawn_app_with(
        llm_options(&standin)
            .env("BOT_FALLBACK", "rules")
            .env("BOT_FIRST_TOKEN_TIMEOUT_MS", "1000")
            .env("BOT_RETRIES", "1")
            .env("BOT_REPLY_TIMEOUT_MS", "6000")
            .env("BOT_BREAKER_FAILURES", "100"),
    )
    .await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;
    let shipping = "Orders ship within 1 business day.";
    // (the customer's words, why it failed, requests the model got: a failure before any text is tried again)
    for (text, failure, tries) in [
        ("slowpoke: when will my delivery arrive", "timeout", 2),
        ("explode: when will my delivery arrive", "status_500", 2),
        ("dropline: when will my delivery arrive", "stream_dropped", 1),
    ] {
        let before = standin.completions().len();
        let started = Instant::now();
        let (deltas, answer) = ask(&mut widget, &id, text).await;
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(6), "{text}: the fallback took {waited:?}");
        assert!(answer["content"].as_str().unwrap_or_default().starts_with(shipping), "{text}: {answer}");
        assert_eq!(standin.completions().len() - before, tries, "{text}");
        if failure == "stream_dropped" {
            assert_eq!(joined(&deltas), "Let me check that ", "the cut stream was shown as a draft");
            assert_eq!(answer["draftId"], deltas[0]["draftId"], "and the fallback answer replaces it");
        }
        let admin_view = app.count(&format!(
            "SELECT count(*) FROM chat_messages WHERE session_id = '{id}' AND processing->>'failure' = '{failure}' AND processing->>'fallback' = 'rules'"
        ))
        .await;
        assert_eq!(admin_view, 1, "{text}: the fallback and why are on record");
    }
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "switchboard_bot_fallbacks_total", &["bot=\"llm\""]), 3.0);
}

#[tokio::test]
async fn with_the_handoff_fallback_a_failing_model_sends_the_customer_to_a_person_and_the_breaker_opens() {
    let standin = standin();
    let app = spawn_app_with(
        llm_options(&standin)
            .env("BOT_FALLBACK", "handoff")
            .env("BOT_RETRIES", "0")
            .env("BOT_BREAKER_FAILURES", "2")
            .env("BOT_BREAKER_COOLDOWN_SECS", "600"),
    )
    .await;
    let alice = app.agent("alice", 5).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    // Away, so the chat stays on the board to be read, not assigned at once.
    desk.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;

    for n in 0..2 {
        let customer = app.visitor(&format!("C{n}")).await;
        let (mut widget, id) = chat(&app, &customer, json!({})).await;
        let (_, answer) = ask(&mut widget, &id, "explode please").await;
        assert!(answer["content"].as_str().unwrap_or_default().contains("passing you to a member of our team"));
        assert_eq!(widget.push("status:changed").await["status"], "waiting");
        let board =
            desk.board_when("the chat", |board| board.iter().any(|item| item["sessionId"] == id.as_str())).await;
        let item = board.iter().find(|item| item["sessionId"] == id.as_str()).expect("queued");
        assert_eq!(item["reason"], "bot_unavailable");
    }
    // Two failures in a row: the model is not asked for the cooldown.
    let (_, health) = app.get_health().await;
    assert_eq!(health["bot"], json!({ "kind": "llm", "status": "degraded" }));
    let before = standin.completions().len();
    let dan = app.visitor("Dan").await;
    let (mut widget, id) = chat(&app, &dan, json!({})).await;
    let (_, answer) = ask(&mut widget, &id, "hello").await;
    assert!(answer["content"].as_str().unwrap_or_default().contains("passing you to a member of our team"));
    assert_eq!(standin.completions().len(), before, "the open breaker kept the request from the model");
    let on_record = app
        .count(&format!(
            "SELECT count(*) FROM chat_messages WHERE session_id = '{id}' AND processing->>'failure' = 'circuit_open'"
        ))
        .await;
    assert_eq!(on_record, 1);
}

#[tokio::test]
async fn a_model_that_floods_its_answer_is_cut_at_a_messages_length() {
    let standin = standin();
    let app = spawn_app_with(llm_options(&standin)).await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;
    let (deltas, answer) = ask(&mut widget, &id, "flood me").await;
    let content = answer["content"].as_str().unwrap_or_default();
    assert_eq!(content.chars().count(), 4000, "cut at the longest a message may be");
    assert!(joined(&deltas).chars().count() <= 4000, "and no more was shown");
    assert!(deltas.len() <= 3, "the rest of the 600 KB was not read out: {} deltas", deltas.len());
    // The chat goes on.
    let (_, next) = ask(&mut widget, &id, "hello again").await;
    assert_eq!(next["content"], "You said: hello again. How else can I help?");
}

#[tokio::test]
async fn while_the_model_is_slow_the_customers_request_for_a_person_is_handled_at_once() {
    let standin = standin();
    let app = spawn_app_with(llm_options(&standin).env("BOT_FIRST_TOKEN_TIMEOUT_MS", "60000")).await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;
    say(&mut widget, &id, "slowpoke question").await;
    // The model has the question and is thinking (for 30 s).
    let asked = Instant::now();
    while standin.completions().is_empty() {
        assert!(asked.elapsed() < Duration::from_secs(10), "the model was never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let status = widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": id })).await;
    assert_eq!(status["status"], "waiting");
    assert!(started.elapsed() < Duration::from_secs(5), "the request waited {:?} for the model", started.elapsed());
    let late = widget.pushes_within("message:received", Duration::from_millis(500)).await;
    assert!(late.iter().all(|message| message["sender"] != "bot"), "{late:?}");
}

#[tokio::test]
async fn a_customer_who_resumes_mid_stream_gets_the_draft_so_far_and_the_answer_once() {
    let standin = standin();
    let app = spawn_app_with(llm_options(&standin)).await;
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({})).await;
    say(&mut widget, &id, "tell me a long story").await;
    // A few words in, the customer's other tab opens (or the page reloads).
    for _ in 0..4 {
        widget.push("message:delta").await;
    }
    let mut second = app.customer_socket(&ann).await;
    let resumed = second.ok("customer:resume", "session:resumed", json!({ "sessionId": id, "afterSeq": 0 })).await;
    let history = resumed["messages"].as_array().cloned().unwrap_or_default();
    assert!(history.iter().all(|message| message["sender"] != "bot" || message["seq"] == 1), "only the greeting yet");
    let catch_up = second.push("message:delta").await;
    assert!(
        catch_up["text"].as_str().unwrap_or_default().split_whitespace().count() >= 4,
        "the draft so far: {catch_up}"
    );
    let mut text = catch_up["text"].as_str().unwrap_or_default().to_owned();
    let answer = loop {
        let frame = second
            .wait_for("the rest", |frame| frame["event"] == "message:delta" || frame["event"] == "message:received")
            .await;
        if frame["event"] == "message:received" {
            break frame["data"].clone();
        }
        text.push_str(frame["data"]["text"].as_str().unwrap_or_default());
    };
    assert_eq!(answer["draftId"], catch_up["draftId"]);
    assert_eq!(
        answer["content"].as_str().map(str::trim),
        Some(text.trim()),
        "draft so far plus the rest is the answer"
    );
    let again = second.pushes_within("message:received", Duration::from_millis(800)).await;
    assert!(again.is_empty(), "the answer came once: {again:?}");
    let (_, first_answer) = bot_answer(&mut widget).await;
    assert_eq!(first_answer["messageId"], answer["messageId"]);
}

// ---- remote agents ----

fn agents_file(standin: &StandIn) -> std::path::PathBuf {
    let url = |path: &str| format!("{}{path}", standin.base_url);
    let file = json!({
        "nlu": { "name": "nlu", "url": url("/nlu"), "timeoutMs": 1000 },
        "agents": [
            { "name": "slow-banking", "url": url("/agents/slow"), "intents": ["card_lost"], "timeoutMs": 500, "order": 1 },
            { "name": "banking", "url": url("/agents/banking"), "intents": ["card_lost", "account_balance"], "timeoutMs": 2000, "order": 2 },
            { "name": "general", "url": url("/agents/general"), "intents": [], "timeoutMs": 2000 }
        ],
        "fallback": ["general"],
        "minConfidence": 0.3
    });
    let path = std::env::temp_dir().join(format!("agents-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, file.to_string()).expect("write the agents file");
    path
}

#[tokio::test]
async fn remote_agents_answer_by_intent_fall_back_when_one_times_out_and_their_understanding_is_stored() {
    let standin = standin();
    let file = agents_file(&standin);
    let app =
        spawn_app_with(AppOptions::default().env("BOT", "remote").env("BOT_AGENTS_FILE", file.display().to_string()))
            .await;
    let (_, info) = app.get_as("/api/info", "").await;
    assert_eq!(info["bot"], "remote");
    let ann = app.visitor("Ann").await;
    let (mut widget, id) = chat(&app, &ann, json!({ "botContext": "premium account" })).await;

    // card_lost: the first agent for it times out, the next answers.
    let (_, answer) = ask(&mut widget, &id, "I lost my debit card").await;
    assert_eq!(answer["content"], "I've frozen your debit card. A new one is on its way.");
    // order_status has no agent: the fallback chain answers.
    let (_, answer) = ask(&mut widget, &id, "where is my pizza?").await;
    assert_eq!(answer["content"], "Your pizza left the oven 10 minutes ago.");
    // The NLU agent times out: no intent, and the fallback chain still answers.
    let (_, answer) = ask(&mut widget, &id, "nlu down, anyone there?").await;
    assert_eq!(answer["content"], "General help: I can tell you about orders, cards and balances.");

    let admin = app.staff("root", "admin", 1).await;
    let shown = messages(&app, &id, &admin.token).await;
    let card =
        shown.iter().find(|message| message["content"].as_str().is_some_and(|c| c.contains("frozen"))).expect("stored");
    assert_eq!(card["bot"]["intent"], "card_lost");
    assert_eq!(card["bot"]["entities"], json!({ "cardType": "debit" }));
    assert!((card["bot"]["confidence"].as_f64().unwrap_or_default() - 0.93).abs() < 1e-3, "{card}");
    let steps: Vec<(String, String)> = card["bot"]["processing"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| {
            (
                step["agent"].as_str().unwrap_or_default().to_owned(),
                step["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let steps: Vec<(&str, &str)> = steps.iter().map(|(agent, outcome)| (agent.as_str(), outcome.as_str())).collect();
    assert_eq!(steps, [("nlu", "ok"), ("slow-banking", "timeout"), ("banking", "ok")]);
    assert_eq!(card["bot"]["processing"]["answeredBy"], "banking");
    let pizza = shown
        .iter()
        .find(|message| message["content"].as_str().is_some_and(|c| c.contains("pizza left")))
        .expect("stored");
    assert_eq!(pizza["bot"]["intent"], "order_status");
    assert_eq!(pizza["bot"]["entities"], json!({ "item": "pizza" }));
    let lost = shown
        .iter()
        .find(|message| message["content"].as_str().is_some_and(|c| c.starts_with("General help")))
        .expect("stored");
    assert_eq!(
        lost["bot"]["processing"]["agents"][0],
        json!({ "agent": "nlu", "ms": lost["bot"]["processing"]["agents"][0]["ms"], "outcome": "timeout" })
    );
    assert!(messages(&app, &id, &ann.token).await.iter().all(|message| message.get("bot").is_none()));

    // What the agents were sent: the contract of docs/BOTS.md.
    let calls = standin.agent_calls();
    let banking = calls.iter().find(|call| call["path"] == "/agents/banking").expect("banking was asked");
    assert_eq!(banking["body"]["intent"], "card_lost");
    assert_eq!(banking["body"]["entities"], json!({ "cardType": "debit" }));
    assert_eq!(banking["body"]["botContext"], "premium account");
    assert_eq!(banking["body"]["sessionId"], id.as_str());
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_remote_agent_that_hands_over_queues_the_chat_with_its_reason() {
    let standin = standin();
    let file = agents_file(&standin);
    let app =
        spawn_app_with(AppOptions::default().env("BOT", "remote").env("BOT_AGENTS_FILE", file.display().to_string()))
            .await;
    let alice = app.agent("alice", 5).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    let bea = app.host_customer("Bea", "normal").await;
    let (mut widget, id) = chat(&app, &bea, json!({})).await;
    let (_, answer) = ask(&mut widget, &id, "my card was stolen, check my identity").await;
    assert_eq!(answer["content"], "I need a person to check your identity.");
    let board = desk.board_when("the chat", |board| board.iter().any(|item| item["sessionId"] == id.as_str())).await;
    let item = board.iter().find(|item| item["sessionId"] == id.as_str()).expect("queued");
    assert_eq!(item["reason"], "needs_identity_check");
    assert_eq!(item["priority"], "normal", "an agent cannot raise the priority either");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_bot_that_is_misconfigured_stops_start_up_with_a_clear_message() {
    for (env, expected) in [
        (vec![("BOT", "llm"), ("LLM_MODEL", "m")], "LLM_BASE_URL"),
        (vec![("BOT", "llm"), ("LLM_BASE_URL", "http://127.0.0.1:9/v1")], "LLM_MODEL"),
        (vec![("BOT", "remote")], "BOT_AGENTS_FILE"),
        (vec![("BOT", "remote"), ("BOT_AGENTS_FILE", "/nonexistent/agents.json")], "BOT_AGENTS_FILE cannot read"),
        (vec![("BOT", "clever")], "must be rules, llm or remote"),
        (vec![("BOT_FALLBACK", "silence")], "must be rules or handoff"),
    ] {
        let mut command = binary();
        command.arg("serve").env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none").env("JWT_SECRET", JWT_SECRET);
        for (key, value) in &env {
            command.env(key, value);
        }
        let output = command.output().await.expect("the binary runs");
        assert!(!output.status.success(), "{env:?} started");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(expected), "{env:?}: {said}");
    }
}
