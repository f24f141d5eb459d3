//! Private notes: staff write them in a chat; the customer never gets one,
//! over the socket, the REST history or a resume.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, WsClient};
use crate::resume::{assigned_chat, customer_token, Chat};

fn contents(messages: &serde_json::Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn staff_write_private_notes_that_the_customer_never_receives_by_any_path() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, ann, alice, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let mut supervisor = app.agent_socket(&admin).await;
    supervisor.ok("agent:join", "agent:joined", json!({})).await;

    // The agent writes a note over the socket: acknowledged after it is stored.
    let note = agent
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Refund approved by finance", "clientMsgId": "n1" }),
        )
        .await;
    let note_seq = note["seq"].as_i64().expect("seq");
    // An admin writes one over REST; the agent's socket gets it live, marked as a note.
    let (status, by_admin) = app
        .post_as(&format!("/api/sessions/{session_id}/notes"), &admin.token, json!({ "content": "VIP customer" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_admin}");
    let live = agent.wait_for("the admin's note", |f| f["data"]["content"] == "VIP customer").await;
    assert_eq!(live["event"], "message:received");
    assert_eq!(live["data"]["sender"], "note");
    assert_eq!(live["data"]["senderName"], "Root");

    // Then a message the customer does see: by the time it arrives, the notes would have.
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Your refund is on its way", "clientMsgId": "m1" }),
        )
        .await;
    customer.wait_for("the agent's message", |f| f["data"]["content"] == "Your refund is on its way").await;
    let received = customer.pushes_within("message:received", Duration::from_millis(300)).await;
    assert!(received.iter().all(|m| m["sender"] != "note"), "{received:?}");
    assert!(customer.frames_about(&session_id).iter().all(|f| f["data"]["sender"] != "note"));

    // The REST history: staff see the notes in order, the customer does not.
    let token = customer_token(&app, &ann).await;
    let (_, staff_page) = app.get_as(&format!("/api/sessions/{session_id}/messages?limit=100"), &alice.token).await;
    let staff_sees = contents(&staff_page["messages"]);
    assert!(staff_sees.ends_with(&[
        "Refund approved by finance".to_owned(),
        "VIP customer".to_owned(),
        "Your refund is on its way".to_owned()
    ]));
    let note_row = &staff_page["messages"].as_array().expect("messages")[staff_sees.len() - 3];
    assert_eq!((note_row["sender"].as_str(), note_row["seq"].as_i64()), (Some("note"), Some(note_seq)));
    assert_eq!(note_row["senderName"], "Alice");
    for path in ["messages?limit=100", "history?limit=100"] {
        let (status, page) = app.get_as(&format!("/api/sessions/{session_id}/{path}"), &token).await;
        assert_eq!(status, StatusCode::OK);
        let seen = contents(&page["messages"]);
        assert!(seen.contains(&"Your refund is on its way".to_owned()), "{path}: {seen:?}");
        assert!(
            !seen.iter().any(|text| text.contains("Refund approved") || text == "VIP customer"),
            "{path}: {seen:?}"
        );
    }
    let (_, history) = app.get_as(&format!("/api/sessions/{session_id}/history?limit=100"), &token).await;
    assert_eq!(history["total"].as_u64(), Some(history["messages"].as_array().map_or(0, Vec::len) as u64));
    let (_, resumed) = app.post_as(&format!("/api/sessions/{session_id}/resume"), &token, json!({})).await;
    assert!(contents(&resumed["history"]).iter().all(|text| text != "VIP customer"), "{resumed}");

    // A resume over a new socket: the messages, never the notes.
    let mut again = WsClient::connect(&app.ws_url("/ws/customer", &token)).await.expect("reconnect");
    let resumed =
        again.ok("customer:resume", "session:resumed", json!({ "sessionId": session_id, "afterSeq": 0 })).await;
    let seen = contents(&resumed["messages"]);
    assert!(seen.contains(&"Your refund is on its way".to_owned()));
    assert!(resumed["messages"].as_array().expect("messages").iter().all(|m| m["sender"] != "note"), "{seen:?}");
    drop(supervisor);
}

#[tokio::test]
async fn only_the_chats_agent_and_admins_write_notes() {
    let app = spawn_app().await;
    let Chat { mut customer, session_id, ann, .. } = assigned_chat(&app).await;
    let bob = app.agent("bob", 1).await;
    let mut bobs = app.agent_socket(&bob).await;
    let code = bobs
        .refused("agent:send_note", json!({ "sessionId": session_id, "content": "not mine", "clientMsgId": "b1" }))
        .await;
    assert_eq!(code, "forbidden");
    let (status, body) =
        app.post_as(&format!("/api/sessions/{session_id}/notes"), &bob.token, json!({ "content": "not mine" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let token = customer_token(&app, &ann).await;
    let (status, _) =
        app.post_as(&format!("/api/sessions/{session_id}/notes"), &token, json!({ "content": "let me in" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The customer's socket has no such event at all.
    let code = customer
        .refused("agent:send_note", json!({ "sessionId": session_id, "content": "x", "clientMsgId": "c1" }))
        .await;
    assert_eq!(code, "unknown_event");
    let (status, body) =
        app.post_as(&format!("/api/sessions/{session_id}/notes"), &bob.token, json!({ "content": "" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Why a chat was handed straight to a colleague stays in its history, as a
/// note the colleague reads and the customer never gets.
#[tokio::test]
async fn the_reason_for_a_direct_transfer_reaches_the_next_agent_as_a_note() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, .. } = assigned_chat(&app).await;
    let bob = app.agent("bob", 1).await;
    let mut bobs = app.agent_socket(&bob).await;
    bobs.ok("agent:join", "agent:joined", json!({})).await;
    agent
        .ok(
            "agent:transfer",
            "session:transferred",
            json!({ "sessionId": session_id, "toAgentId": bob.user_id, "reason": "needs a refund over 500" }),
        )
        .await;
    let assigned = bobs.push("session:assigned").await;
    let history = assigned["messages"].as_array().expect("messages");
    let note = history.iter().find(|m| m["sender"] == "note").expect("the transfer's note");
    assert_eq!(note["content"], "Alice passed the chat on: needs a refund over 500");
    assert_eq!(note["senderName"], "Alice");
    customer.wait_for("Bob joining", |f| f["data"]["content"] == "Bob joined the chat.").await;
    assert!(customer.frames_about(&session_id).iter().all(|f| f["data"]["sender"] != "note"));
    assert!(customer
        .pushes_within("message:received", Duration::from_millis(200))
        .await
        .iter()
        .all(|m| m["sender"] != "note"));
}
