//! How chats end, and what happens to clients that misbehave.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, WsClient};
use crate::queue::queued_customer;

#[tokio::test]
async fn the_bot_hands_over_after_failing_to_understand_twice_in_a_row() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    let session_id = customer.start_chat().await;
    customer.push("message:received").await;

    let say = |text: &str, id: &str| json!({ "sessionId": session_id, "content": text, "clientMsgId": id });
    customer.ok("customer:send_message", "message:sent", say("How long does shipping take?", "1")).await;
    let answer = customer.push("message:received").await;
    assert!(answer["content"].as_str().unwrap_or_default().contains("business day"), "{answer}");

    customer.ok("customer:send_message", "message:sent", say("blorp", "2")).await;
    customer.push("message:received").await;
    // One miss is not enough to leave the bot.
    assert!(customer.pushes_within("status:changed", Duration::from_millis(300)).await.is_empty());
    customer.ok("customer:send_message", "message:sent", say("zzzk qwv", "3")).await;
    customer.push("message:received").await;
    assert_eq!(customer.push("status:changed").await["status"], "waiting");

    let reason: Option<String> = app
        .db
        .client()
        .await
        .query_one("SELECT reason FROM queue_entries WHERE session_id = $1::text::uuid", &[&session_id])
        .await
        .expect("queued")
        .get(0);
    assert_eq!(reason.as_deref(), Some("bot_could_not_help"));
}

#[tokio::test]
async fn a_customer_who_ends_the_chat_leaves_the_queue() {
    let app = spawn_app().await;
    let mut waiting = queued_customer(&app, "Ann", "normal").await;
    let closed =
        waiting.socket.ok("customer:end_chat", "session:closed", json!({ "sessionId": waiting.session_id })).await;
    assert_eq!(closed["reason"], "customer_ended");
    let code = waiting
        .socket
        .refused(
            "customer:send_message",
            json!({ "sessionId": waiting.session_id, "content": "hello?", "clientMsgId": "x" }),
        )
        .await;
    assert_eq!(code, "session_closed");

    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    assert_eq!(agent.push("queue:update").await["sessions"], json!([]));
    assert!(agent.pushes_within("session:assigned", Duration::from_millis(300)).await.is_empty());
    let active: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM queue_entries WHERE is_active", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(active, 0);
}

#[tokio::test]
async fn a_session_whose_customer_stays_away_closes_as_abandoned() {
    let app = spawn_app_with(AppOptions::default().env("ABANDON_AFTER_SECS", "1").env("ABANDON_SWEEP_MS", "200")).await;
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let waiting = queued_customer(&app, "Ann", "normal").await;
    agent.push("session:assigned").await;
    waiting.socket.close().await;

    let closed = agent.push("session:closed").await;
    assert_eq!(closed["reason"], "abandoned");
    let row = app
        .db
        .client()
        .await
        .query_one("SELECT status, ended_reason FROM chat_sessions WHERE id = $1::text::uuid", &[&waiting.session_id])
        .await
        .expect("session");
    assert_eq!((row.get::<_, String>(0), row.get::<_, Option<String>>(1)), ("closed".into(), Some("abandoned".into())));
}

#[tokio::test]
async fn a_connected_customer_is_not_abandoned_however_quiet() {
    let app = spawn_app_with(AppOptions::default().env("ABANDON_AFTER_SECS", "1").env("ABANDON_SWEEP_MS", "200")).await;
    let mut waiting = queued_customer(&app, "Ann", "normal").await;
    assert!(waiting.socket.pushes_within("session:closed", Duration::from_millis(2500)).await.is_empty());
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_on_purpose() {
    let app = spawn_app_with(
        AppOptions::default().env("OUTBOUND_BACKLOG_BYTES", "65536").env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000"),
    )
    .await;
    let ann = app.visitor("Ann").await;
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let mut customer = app.customer_socket(&ann).await;
    let session_id = customer.start_chat().await;
    customer.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    agent.push("session:assigned").await;
    customer.close().await;

    // Another socket of the customer's with a tiny receive window, which never reads. of the customer's with a tiny receive window, which never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().expect("address");
    let stream = socket.connect(address).await.expect("connect");
    let url = app.ws_url("/ws/customer", &ann.token);
    let (slow, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.expect("upgrade");
    let mut slow = WsClient::from_socket(slow);
    slow.ok("customer:resume", "session:resumed", json!({ "sessionId": session_id, "afterSeq": 1_000_000 })).await;

    let total = 1500;
    agent.send_many("agent:send_message", &session_id, total, "bulk", &"y".repeat(4000)).await;
    let close = slow.closed_by_server().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
    assert!(app.log().contains("unread"), "the disconnect is logged");
    // Everyone else carries on.
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "still here", "clientMsgId": "after" }),
        )
        .await;
    let mut back = app.customer_socket(&ann).await;
    let resumed =
        back.ok("customer:resume", "session:resumed", json!({ "sessionId": session_id, "afterSeq": 0 })).await;
    let agent_messages =
        resumed["messages"].as_array().expect("messages").iter().filter(|m| m["sender"] == "agent").count();
    assert_eq!(agent_messages, total + 1, "every message was stored");
}

#[tokio::test]
async fn a_bot_that_takes_three_seconds_does_not_delay_the_customers_other_requests() {
    let app = spawn_app_with(AppOptions::default().env("BOT_REPLY_DELAY_MS", "3000")).await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let id = widget.start_chat().await;
    widget.push("message:received").await; // the greeting
    widget
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": "where is my parcel?", "clientMsgId": "1" }),
        )
        .await;

    // The bot is thinking; the customer types and then asks for a person.
    let started = std::time::Instant::now();
    widget.ok("customer:typing", "ack", json!({ "sessionId": id })).await;
    let status = widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": id })).await;
    let waited = started.elapsed();
    assert_eq!(status["status"], "waiting");
    assert!(waited < Duration::from_millis(2500), "the requests waited {waited:?} for the bot");

    // The bot's late answer is dropped: the chat is with the queue now.
    let late = widget.pushes_within("message:received", Duration::from_millis(4000)).await;
    assert!(late.iter().all(|message| message["sender"] != "bot"), "the bot still answered: {late:?}");
}
