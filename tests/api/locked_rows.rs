//! One chat's row locked by someone else stalls that chat only.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, AppOptions, WsClient};

const STATEMENT_TIMEOUT_MS: u64 = 3000;

#[tokio::test]
async fn a_locked_session_row_delays_only_its_own_messages_and_its_sender_gets_a_clear_error() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("DATABASE_STATEMENT_TIMEOUT_MS", STATEMENT_TIMEOUT_MS.to_string())
            .env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000"),
    )
    .await;
    let mut chats: Vec<(WsClient, String)> = Vec::new();
    for n in 0..5 {
        let person = app.visitor(&format!("Customer {n}")).await;
        let mut socket = app.customer_socket(&person).await;
        let session_id = socket.start_chat().await;
        socket.push("message:received").await; // the bot's greeting
        chats.push((socket, session_id));
    }
    assert_eq!(app.get_health().await.1["writer"]["status"], "up");

    // Another connection holds the first chat's row, as a long report or a
    // stuck migration would.
    let locker = app.db.client().await;
    locker.batch_execute("BEGIN").await.expect("begin");
    let locked_id: uuid::Uuid = chats[0].1.parse().expect("uuid");
    locker.execute("SELECT 1 FROM chat_sessions WHERE id = $1 FOR UPDATE", &[&locked_id]).await.expect("lock the row");

    let (mut locked_socket, locked_session) = chats.remove(0);
    let started = Instant::now();
    let stuck_ref = locked_socket
        .send(
            "customer:send_message",
            json!({ "sessionId": locked_session, "content": "is anyone there?", "clientMsgId": "stuck-1" }),
        )
        .await;

    // The locked chat's own requests are not held up behind its stuck message.
    let typing = locked_socket.request("customer:typing", json!({ "sessionId": locked_session })).await;
    assert_eq!(typing["event"], "ack", "{typing}");
    assert!(
        started.elapsed() < Duration::from_millis(STATEMENT_TIMEOUT_MS),
        "the chat's typing waited for its stuck message"
    );

    // Every other chat is acknowledged while the locked one still waits.
    for round in 0..3 {
        for (socket, session_id) in chats.iter_mut() {
            let data = json!({ "sessionId": session_id, "content": "hello", "clientMsgId": format!("ok-{round}") });
            socket.ok("customer:send_message", "message:sent", data).await;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(STATEMENT_TIMEOUT_MS),
        "the other chats were acknowledged only after the locked one gave up"
    );
    // Meanwhile /health says the writer is degraded (the database itself is up).
    let (status, health) = loop {
        let (status, health) = app.get_health().await;
        if health["writer"]["status"] != "up" || started.elapsed() > Duration::from_millis(STATEMENT_TIMEOUT_MS) {
            break (status, health);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, StatusCode::OK, "the database is up: {health}");
    assert_eq!(health["writer"]["status"], "degraded", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");

    // The locked chat's sender gets a clear error within the statement timeout, never an ack.
    let reply = locked_socket.reply(&stuck_ref).await;
    let waited = started.elapsed();
    assert_eq!(reply["event"], "error", "{reply}");
    assert_eq!(reply["data"]["code"], "storage_timeout", "{reply}");
    assert!(waited < Duration::from_millis(STATEMENT_TIMEOUT_MS + 2000), "the error came after {waited:?}");
    let stored = app.count("SELECT count(*) FROM chat_messages WHERE client_msg_id = 'stuck-1'").await;
    assert_eq!(stored, 0, "a refused message is not stored");
    let metrics = app.metrics().await;
    assert!(metrics.contains("switchboard_writer_failures_total{reason=\"timed_out\"}"), "{metrics}");

    // Once the row is free the same message goes through, once.
    locker.batch_execute("ROLLBACK").await.expect("rollback");
    let sent = locked_socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": locked_session, "content": "is anyone there?", "clientMsgId": "stuck-1" }),
        )
        .await;
    assert!(sent["seq"].as_i64().expect("seq") > 0);
    let stored = app.count("SELECT count(*) FROM chat_messages WHERE client_msg_id = 'stuck-1'").await;
    assert_eq!(stored, 1);
}
