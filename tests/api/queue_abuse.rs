//! A visitor cannot buy their way up the queue, flood it, or bury the agents' desks.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions};

#[tokio::test]
async fn a_visitors_own_priority_is_ignored_and_a_host_signed_priority_counts() {
    let app = spawn_app().await;
    let eve = app.visitor("Eve").await;
    let mut widget = app.customer_socket(&eve).await;
    let created = widget.ok("customer:start_chat", "session:created", json!({ "priority": "high" })).await;
    assert_eq!(created["session"]["priority"], "normal", "{created}");
    let (status, rest) = app.post_as("/api/sessions", &eve.token, json!({ "priority": "high" })).await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["priority"], "normal");

    // A customer whose host website signed `priority: high` gets it, and keeps it across a refresh.
    let vip = app.host_customer("Vera", "high").await;
    let mut vip_widget = app.customer_socket(&vip).await;
    let created = vip_widget.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(created["session"]["priority"], "high", "{created}");
    let (status, refreshed) = app.post_as("/auth/refresh", &vip.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let token = refreshed["token"].as_str().expect("token");
    let (_, again) = app.post_as("/api/sessions", token, json!({})).await;
    assert_eq!(again["priority"], "high", "{again}");
}

#[tokio::test]
async fn a_customer_past_the_open_chat_cap_is_refused_with_a_clear_code() {
    let app = spawn_app_with(AppOptions::default().env("OPEN_CHATS_PER_CUSTOMER", "2")).await;
    let eve = app.visitor("Eve").await;
    let mut widget = app.customer_socket(&eve).await;
    let first = widget.ok("customer:start_chat", "session:created", json!({})).await;
    widget.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(widget.refused("customer:start_chat", json!({})).await, "too_many_open_chats");
    let (status, body) = app.post_as("/api/sessions", &eve.token, json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_open_chats");
    // Many at once cannot slip past it either.
    let attempts = join_all((0..10).map(|_| app.post_as("/api/sessions", &eve.token, json!({})))).await;
    assert!(attempts.iter().all(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(app.count("SELECT count(*) FROM chat_sessions").await, 2);
    // Ending one makes room for one more; another customer is not affected.
    widget.ok("customer:end_chat", "session:closed", json!({ "sessionId": first["sessionId"] })).await;
    widget.ok("customer:start_chat", "session:created", json!({})).await;
    let ann = app.visitor("Ann").await;
    let (status, _) = app.post_as("/api/sessions", &ann.token, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn an_agent_with_a_thousand_waiting_chats_gets_one_board_and_then_small_changes() {
    const CHATS: usize = 1000;
    let app = spawn_app_with(
        AppOptions::default()
            .env("OPEN_CHATS_PER_CUSTOMER", CHATS.to_string())
            .env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000"),
    )
    .await;
    let bob = app.agent("bob", 5).await;
    let mut desk = app.agent_socket(&bob).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    desk.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;

    let flooder = app.visitor("Flood").await;
    for chunk in (0..CHATS).collect::<Vec<_>>().chunks(50) {
        join_all(chunk.iter().map(|_| async {
            let (status, session) = app.post_as("/api/sessions", &flooder.token, json!({})).await;
            assert_eq!(status, StatusCode::CREATED, "{session}");
            let id = session["sessionId"].as_str().expect("id").to_owned();
            let (status, queued) =
                app.post_as(&format!("/api/sessions/{id}/transfer"), &flooder.token, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{queued}");
        }))
        .await;
        // The desk reads as it goes, as a browser would (and answers the server's pings).
        let _ = desk.pushes_within("agent:status", std::time::Duration::from_millis(20)).await;
    }

    let board = desk.board_when("every waiting chat", |board| board.len() == CHATS).await;
    assert_eq!(board.len(), CHATS);
    let snapshots = desk.board_frames.iter().filter(|(event, _)| event == "queue:update").count();
    assert_eq!(snapshots, 1, "the whole board is sent once, at join");
    let changes: Vec<usize> =
        desk.board_frames.iter().filter(|(event, _)| event == "queue:changed").map(|(_, size)| *size).collect();
    let largest = changes.iter().copied().max().unwrap_or_default();
    let total: usize = changes.iter().sum();
    eprintln!("{} change frames, {total} bytes in all, the largest {largest} bytes", changes.len());
    assert!(largest < 4096, "a change frame of {largest} bytes");
    assert!(total < CHATS * 2048, "{total} bytes of changes for {CHATS} chats");
}
