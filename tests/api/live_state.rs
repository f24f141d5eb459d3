//! Live state has one writer: REST changes reach the live chat and the live
//! agent at once, through their actors.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, TestApp};
use crate::queue::queued_customer;

async fn live_session_actors(app: &TestApp) -> i64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("switchboard_live_actors{kind=\"session\"} "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the live session actor gauge")
}

#[tokio::test]
async fn clearing_messages_over_rest_is_seen_live_and_the_count_follows() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let id = widget.start_chat().await;
    widget.push("message:received").await; // the greeting
    widget
        .ok("customer:send_message", "message:sent", json!({ "sessionId": id, "content": "hello", "clientMsgId": "1" }))
        .await;
    widget.push("message:received").await; // the bot's answer

    let (status, body) = app.delete_as(&format!("/api/sessions/{id}/messages"), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let cleared = widget.push("messages:cleared").await;
    assert_eq!(cleared["sessionId"], id.as_str());
    let (_, session) = app.get_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(session["messageCount"], 0, "{session}");

    widget
        .ok("customer:send_message", "message:sent", json!({ "sessionId": id, "content": "again", "clientMsgId": "2" }))
        .await;
    let resumed = widget.ok("customer:resume", "session:resumed", json!({ "sessionId": id, "afterSeq": 0 })).await;
    let contents: Vec<&str> =
        resumed["messages"].as_array().expect("messages").iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents.first(), Some(&"again"), "only what came after the clearing: {contents:?}");
}

#[tokio::test]
async fn an_admins_capacity_change_applies_to_the_live_agent_at_once_and_join_cannot_exceed_it() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    let _first = queued_customer(&app, "Ann", "normal").await;
    desk.push("session:assigned").await;
    let second = queued_customer(&app, "Bea", "normal").await;

    // At capacity: picking up another by hand is refused.
    let refused = desk.refused("agent:pickup_session", json!({ "sessionId": second.session_id })).await;
    assert_eq!(refused, "agent_unavailable");

    // The admin gives her room for two: the live agent follows, and the waiting chat comes.
    let (status, body) = app
        .patch_as(&format!("/api/admin/agents/{}", alice.user_id), &admin.token, json!({ "maxConcurrent": 2 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updated = desk.push("agent:updated").await;
    assert_eq!(updated["agent"]["maxConcurrent"], 2, "{updated}");
    let assigned = desk.push("session:assigned").await;
    assert_eq!(assigned["sessionId"], second.session_id.as_str());

    // Her own join cannot raise what the admin set; it may lower it.
    let mut other_tab = app.agent_socket(&alice).await;
    let code = other_tab.refused("agent:join", json!({ "maxConcurrent": 5 })).await;
    assert_eq!(code, "invalid_payload");
    let joined = other_tab.ok("agent:join", "agent:joined", json!({ "maxConcurrent": 2 })).await;
    assert_eq!(joined["agent"]["maxConcurrent"], 2);
    let (_, stored) = app.get_as("/api/admin/agents", &admin.token).await;
    let row = stored.as_array().expect("agents").iter().find(|a| a["name"] == "Alice").expect("alice").clone();
    assert_eq!(row["maxConcurrent"], 2, "{row}");
}

#[tokio::test]
async fn a_session_woken_over_rest_leaves_memory_after_the_idle_time() {
    let app = spawn_app_with(AppOptions::default().env("SESSION_IDLE_SECS", "1")).await;
    let ann = app.visitor("Ann").await;
    for _ in 0..3 {
        let (status, body) = app.post_as("/api/sessions", &ann.token, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(live_session_actors(&app).await, 3);
    let mut live = 3;
    for _ in 0..50 {
        live = live_session_actors(&app).await;
        if live == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live, 0, "session actors woken over REST stay in memory");
}
