//! A connected agent who never answers does not keep the customer: after
//! `AGENT_REPLY_TIMEOUT_MS` the chat goes back to the queue, ahead of chats
//! that came after it, and goes to another agent.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app_with, AppOptions};
use crate::queue::queued_customer;

#[tokio::test]
async fn an_unanswered_customer_goes_back_to_the_queue_ahead_of_newer_chats_and_to_another_agent() {
    let app = spawn_app_with(AppOptions::default().env("AGENT_REPLY_TIMEOUT_MS", "3000")).await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let mut alices = app.agent_socket(&alice).await;
    alices.ok("agent:join", "agent:joined", json!({})).await;

    let mut ann = queued_customer(&app, "Ann", "normal").await;
    let assigned = alices.push("session:assigned").await;
    assert_eq!(assigned["sessionId"].as_str(), Some(ann.session_id.as_str()));
    // A newer chat waits: Alice has no room.
    let ben = queued_customer(&app, "Ben", "normal").await;

    // Alice says nothing: Ann's chat is taken from her.
    let released = alices.push("session:released").await;
    assert_eq!(
        (released["sessionId"].as_str(), released["reason"].as_str()),
        (Some(ann.session_id.as_str()), Some("no_reply"))
    );
    let status = ann
        .socket
        .wait_for("back in the queue", |f| f["event"] == "status:changed" && f["data"]["status"] == "waiting")
        .await;
    assert!(status["data"]["queuePosition"].as_u64().is_some());
    ann.socket
        .wait_for("the apology", |f| {
            f["data"]["content"].as_str().is_some_and(|text| text.starts_with("Sorry for the wait"))
        })
        .await;

    // The board shows why; Ann is ahead of Ben, who asked later.
    let (_, queue) = app.get_as("/api/admin/queue", &admin.token).await;
    let waiting = queue["waiting"].as_array().expect("waiting");
    let ann_item = waiting.iter().find(|w| w["sessionId"] == ann.session_id.as_str());
    // Alice's freed slot may already have taken Ben (never Ann back): Ann waits, marked.
    let ann_item = ann_item.unwrap_or_else(|| panic!("Ann is not waiting: {queue}"));
    assert_eq!(ann_item["reason"], "no_reply");
    if let Some(ben_at) = waiting.iter().position(|w| w["sessionId"] == ben.session_id.as_str()) {
        let ann_at = waiting.iter().position(|w| w["sessionId"] == ann.session_id.as_str());
        assert!(ann_at < Some(ben_at), "Ann keeps her first place: {queue}");
    }

    // Bob joins and gets Ann; the history tells him why, and he answers in time.
    let bob = app.agent("bob", 1).await;
    let mut bobs = app.agent_socket(&bob).await;
    bobs.ok("agent:join", "agent:joined", json!({})).await;
    let taken = bobs.push("session:assigned").await;
    assert_eq!(taken["sessionId"].as_str(), Some(ann.session_id.as_str()));
    let history = taken["messages"].as_array().expect("messages");
    assert!(
        history.iter().any(|m| m["sender"] == "note"
            && m["content"] == "Alice did not answer in time; the chat went back to the queue."),
        "{history:?}"
    );
    bobs.ok(
        "agent:send_message",
        "message:sent",
        json!({ "sessionId": ann.session_id, "content": "Hi Ann, I'm on it", "clientMsgId": "b1" }),
    )
    .await;
    // Having answered, Bob keeps the chat past the timeout.
    let released = bobs.pushes_within("session:released", Duration::from_millis(4500)).await;
    assert!(released.is_empty(), "{released:?}");
    // The customer never saw the note.
    let notes: Vec<_> =
        ann.socket.frames_about(&ann.session_id).into_iter().filter(|f| f["data"]["sender"] == "note").collect();
    assert!(notes.is_empty(), "{notes:?}");
}
