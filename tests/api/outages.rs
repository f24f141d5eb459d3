//! The database goes away for a while: nothing stays broken once it is back.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app_with, AppOptions};
use crate::queue::queued_customer;

#[tokio::test]
async fn an_agent_who_joins_during_a_database_outage_can_join_once_it_returns() {
    let app = spawn_app_with(AppOptions::default()).await;
    let alice = app.agent("alice", 2).await;
    let mut desk = app.agent_socket(&alice).await;

    app.db.set_reachable(false).await;
    let refused = desk.refused("agent:join", json!({})).await;
    assert_eq!(refused, "database_unavailable");

    app.db.set_reachable(true).await;
    let joined = desk.ok("agent:join", "agent:joined", json!({})).await;
    assert_eq!(joined["agent"]["name"], "Alice");
    assert_eq!(joined["agent"]["maxConcurrent"], 2);
    // And the queue can give her a chat.
    let _waiting = queued_customer(&app, "Ann", "normal").await;
    desk.push("session:assigned").await;
}

#[tokio::test]
async fn a_grace_period_that_ends_during_an_outage_requeues_the_chats_when_the_database_returns() {
    let app = spawn_app_with(AppOptions::default().env("AGENT_GRACE_MS", "1000")).await;
    let alice = app.agent("alice", 1).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    let mut waiting = queued_customer(&app, "Ann", "normal").await;
    desk.push("session:assigned").await;
    waiting.socket.push("status:changed").await; // assigned

    app.db.set_reachable(false).await;
    desk.close().await;
    // The grace period ends while the database is away.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.db.set_reachable(true).await;

    let changed = waiting.socket.push("status:changed").await;
    assert_eq!(changed["status"], "waiting", "{changed}");
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT status, assigned_agent_id IS NULL FROM chat_sessions WHERE id = $1",
            &[&waiting.session_id.parse::<uuid::Uuid>().expect("uuid")],
        )
        .await
        .expect("the session");
    assert_eq!((row.get::<_, String>(0), row.get::<_, bool>(1)), ("waiting".to_owned(), true));
    // Her presence is stored as offline, not left online.
    let mut presence = String::new();
    for _ in 0..50 {
        presence =
            client.query_one("SELECT status FROM users WHERE id = $1", &[&alice.user_id]).await.expect("alice").get(0);
        if presence == "offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(presence, "offline");
}
