//! Sockets have caps, per account and in all, that refuse clearly and keep the server answering.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, AppOptions, TestApp, WsClient};

/// The status and error code of an upgrade the server refused.
pub(crate) async fn refused_upgrade(url: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("a JSON error body");
            (response.status().as_u16(), body["error"].as_str().unwrap_or_default().to_owned())
        }
        Err(other) => panic!("not an HTTP refusal: {other}"),
    }
}

async fn wait_for_sockets(app: &TestApp, expected: i64) {
    for _ in 0..100 {
        if app.open_sockets().await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/health never counted {expected} sockets");
}

#[tokio::test]
async fn one_account_cannot_open_more_sockets_than_its_cap() {
    let app = spawn_app_with(AppOptions::default().env("SOCKETS_PER_ACCOUNT", "3")).await;
    let eve = app.visitor("Eve").await;
    let mut open: Vec<WsClient> = Vec::new();
    for _ in 0..3 {
        open.push(app.customer_socket(&eve).await);
    }
    let url = app.ws_url("/ws/customer", &eve.token);
    assert_eq!(refused_upgrade(&url).await, (429, "too_many_sockets".to_owned()));
    // Someone else is not affected.
    let ann = app.visitor("Ann").await;
    let mut other = app.customer_socket(&ann).await;
    other.ok("customer:start_chat", "session:created", json!({})).await;
    // Closing one makes room for one.
    open.pop().expect("a socket").close().await;
    wait_for_sockets(&app, 3).await;
    let mut again = app.customer_socket(&eve).await;
    again.ok("customer:start_chat", "session:created", json!({})).await;
}

#[tokio::test]
async fn with_every_socket_taken_the_server_refuses_more_and_still_answers_health_and_sign_ins() {
    let app = spawn_app_with(AppOptions::default().env("MAX_SOCKETS", "4")).await;
    let alice = app.agent("alice", 1).await;
    let mut open = Vec::new();
    for n in 0..4 {
        let visitor = app.visitor(&format!("Visitor {n}")).await;
        open.push(app.customer_socket(&visitor).await);
    }
    wait_for_sockets(&app, 4).await;
    let late = app.visitor("Late").await;
    assert_eq!(refused_upgrade(&app.ws_url("/ws/customer", &late.token)).await, (503, "server_full".to_owned()));
    let (status, health) = app.get_health().await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let signed_in =
        app.post_json("/auth/login", &json!({ "username": "alice", "password": "correct-horse-battery" })).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let body: serde_json::Value = signed_in.json().await.expect("JSON");
    assert_eq!(body["userId"], alice.user_id.to_string());
}

#[tokio::test]
async fn the_server_raises_its_open_file_limit_to_the_most_allowed() {
    let app = spawn_app_with(AppOptions::default()).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", app.pid())).expect("the process limits");
    let line = limits.lines().find(|line| line.starts_with("Max open files")).expect("the open-files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.first(), numbers.get(1), "soft and hard limits: {line}");
    assert!(app.log().contains("WebSockets"), "the socket ceiling is logged");
}

#[tokio::test]
async fn a_socket_with_too_many_requests_waiting_is_refused_more_until_they_are_answered() {
    let app = spawn_app_with(AppOptions::default()).await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let id = widget.start_chat().await;

    // With the database away every resume waits about a second, one after
    // the other: the socket's requests pile up on the server.
    app.db.set_reachable(false).await;
    let mut refs = Vec::new();
    for _ in 0..100 {
        refs.push(widget.send("customer:resume", json!({ "sessionId": id, "afterSeq": 0 })).await);
    }
    let mut refused = 0;
    for reference in refs.iter().skip(64) {
        let reply = widget.reply(reference).await;
        assert_eq!(reply["data"]["code"], "rate_limited", "{reply}");
        assert_eq!(reply["data"]["retryAfter"], 1, "{reply}");
        refused += 1;
    }
    assert_eq!(refused, 36, "beyond 64 waiting requests each one is refused at once");
    app.db.set_reachable(true).await;
}
