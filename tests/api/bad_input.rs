//! Bad input gets a clear error code, stores nothing, and the socket keeps working.

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{spawn_app, TestApp, WsClient};

async fn message_count(app: &TestApp) -> i64 {
    app.db.client().await.query_one("SELECT count(*) FROM chat_messages", &[]).await.expect("count").get(0)
}

#[tokio::test]
async fn each_kind_of_bad_frame_gets_its_code_and_the_connection_still_works() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut socket = app.customer_socket(&ann).await;
    let session_id = socket.start_chat().await;
    socket.push("message:received").await;
    let stored = message_count(&app).await;

    socket.send_text("{not json").await;
    let error = socket.push("error").await;
    assert_eq!(error["code"], "invalid_json");

    let cases = [
        (json!({ "event": "customer:dance", "ref": "x1" }), "unknown_event"),
        (json!({ "event": "agent:join", "ref": "x2" }), "unknown_event"),
        (json!({ "ref": "x3", "data": {} }), "invalid_frame"),
        (
            json!({ "event": "customer:send_message", "ref": "x4", "data": { "sessionId": session_id } }),
            "invalid_payload",
        ),
        (
            json!({ "event": "customer:send_message", "ref": "x5", "data": { "sessionId": 42, "content": "hi", "clientMsgId": "a" } }),
            "invalid_payload",
        ),
        (
            json!({ "event": "customer:send_message", "ref": "x6", "data": { "sessionId": session_id, "content": "x".repeat(4001), "clientMsgId": "a" } }),
            "content_too_long",
        ),
        (
            json!({ "event": "customer:send_message", "ref": "x7", "data": { "sessionId": session_id, "content": "   ", "clientMsgId": "a" } }),
            "content_empty",
        ),
        (
            json!({ "event": "customer:send_message", "ref": "x8", "data": { "sessionId": uuid::Uuid::new_v4(), "content": "hi", "clientMsgId": "a" } }),
            "session_not_found",
        ),
        (
            json!({ "event": "customer:mark_read", "ref": "x9", "data": { "sessionId": session_id, "upToSeq": 999 } }),
            "invalid_payload",
        ),
        (json!({ "event": "customer:typing", "ref": "x10", "data": "nope" }), "invalid_frame"),
    ];
    for (frame, code) in cases {
        let reference = frame["ref"].as_str().expect("ref").to_owned();
        socket.send_text(frame.to_string()).await;
        let reply = socket.reply(&reference).await;
        assert_eq!(reply["event"], "error", "{frame}");
        assert_eq!(reply["data"]["code"], code, "{frame}");
        assert!(reply["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(message_count(&app).await, stored, "nothing was stored");

    // Still connected and working.
    let sent = socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "shipping?", "clientMsgId": "ok-1" }),
        )
        .await;
    assert_eq!(sent["seq"], 2);
}

#[tokio::test]
async fn a_customer_cannot_touch_another_customers_session() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let bea = app.visitor("Bea").await;
    let mut owner = app.customer_socket(&ann).await;
    let session_id = owner.start_chat().await;
    owner.push("message:received").await;
    let stored = message_count(&app).await;

    let mut intruder = app.customer_socket(&bea).await;
    for (event, data) in [
        ("customer:send_message", json!({ "sessionId": session_id, "content": "hi", "clientMsgId": "i1" })),
        ("customer:resume", json!({ "sessionId": session_id })),
        ("customer:mark_read", json!({ "sessionId": session_id, "upToSeq": 1 })),
        ("customer:typing", json!({ "sessionId": session_id })),
        ("customer:request_agent", json!({ "sessionId": session_id })),
        ("customer:end_chat", json!({ "sessionId": session_id })),
    ] {
        assert_eq!(intruder.refused(event, data).await, "forbidden", "{event}");
    }
    assert_eq!(message_count(&app).await, stored);
    assert!(owner.pushes_within("user_typing", std::time::Duration::from_millis(200)).await.is_empty());
    let status: String = app
        .db
        .client()
        .await
        .query_one("SELECT status FROM chat_sessions WHERE id = $1::text::uuid", &[&session_id])
        .await
        .expect("session")
        .get(0);
    assert_eq!(status, "bot");
}

#[tokio::test]
async fn an_agent_cannot_act_on_a_session_that_is_not_theirs() {
    let app = spawn_app().await;
    let alice = app.agent("alice", 2).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    agent.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;
    let waiting = crate::queue::queued_customer(&app, "Cy", "normal").await;
    for (event, data) in [
        ("agent:send_message", json!({ "sessionId": waiting.session_id, "content": "hi", "clientMsgId": "a1" })),
        ("agent:close_session", json!({ "sessionId": waiting.session_id, "resolved": true })),
        ("agent:transfer", json!({ "sessionId": waiting.session_id })),
        ("agent:mark_read", json!({ "sessionId": waiting.session_id, "upToSeq": 1 })),
    ] {
        assert_eq!(agent.refused(event, data).await, "forbidden", "{event}");
    }
    // Picking it up makes it theirs.
    agent.ok("agent:pickup_session", "session:assigned", json!({ "sessionId": waiting.session_id })).await;
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": waiting.session_id, "content": "hi", "clientMsgId": "a1" }),
        )
        .await;
}

#[tokio::test]
async fn sockets_without_a_valid_token_of_the_right_role_are_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let alice = app.agent("alice", 1).await;
    let refused = |url: String| async move {
        match WsClient::connect(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    };
    let base = app.address.replacen("http://", "ws://", 1);
    assert_eq!(refused(format!("{base}/ws/customer")).await, 401);
    assert_eq!(refused(format!("{base}/ws/customer?token=garbage")).await, 401);
    assert_eq!(refused(app.ws_url("/ws/agent", &ann.token)).await, 401, "a customer token on the agent socket");
    assert_eq!(refused(app.ws_url("/ws/customer", &alice.token)).await, 401, "an agent token on the customer socket");
    let (expired, _) = switchboard::auth::jwt::Tokens::new(crate::helpers::JWT_SECRET)
        .issue(ann.user_id, switchboard::domain::Role::Customer, "Ann", chrono::Duration::minutes(-5))
        .expect("token");
    assert_eq!(refused(app.ws_url("/ws/customer", &expired)).await, 401, "an expired token");
    let (forged, _) = switchboard::auth::jwt::Tokens::new("some-other-secret-some-other-secret-00")
        .issue(ann.user_id, switchboard::domain::Role::Customer, "Ann", chrono::Duration::minutes(5))
        .expect("token");
    assert_eq!(refused(app.ws_url("/ws/customer", &forged)).await, 401, "a token signed with another key");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_socket_with_message_too_big() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut socket = app.customer_socket(&ann).await;
    socket.send_text("x".repeat(65 * 1024)).await;
    let close = socket.closed_by_server().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Size);
    // The server is fine: a new socket works.
    let mut again = app.customer_socket(&ann).await;
    again.ok("customer:start_chat", "session:created", json!({})).await;
}

#[tokio::test]
async fn replies_carry_the_ref_of_their_request_and_pushes_carry_none() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut socket = app.customer_socket(&ann).await;
    let reply = socket.request("customer:start_chat", json!({})).await;
    assert_eq!(reply["ref"], "r1");
    let greeting = socket.wait_for("the greeting", |frame| frame["event"] == "message:received").await;
    assert!(greeting.get("ref").is_none());
}

#[tokio::test]
async fn nul_characters_and_oversized_metadata_are_refused_with_a_4xx_on_both_paths() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;

    // A NUL in a sign-in name is a wrong name, not a server fault.
    let response =
        app.post_json("/auth/login", &json!({ "username": "bob\u{0000}", "password": "correct-horse-battery" })).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_credentials");

    // Metadata with a NUL, over REST and over the socket.
    let nul = json!({ "metadata": { "page": "/x\u{0000}", "nested": { "k\u{0000}": 1 } } });
    let (status, body) = app.post_as("/api/sessions", &ann.token, nul.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_payload");
    let mut widget = app.customer_socket(&ann).await;
    assert_eq!(widget.refused("customer:start_chat", nul).await, "invalid_payload");

    // The same 8 KiB cap on metadata over REST as over the socket.
    let big = json!({ "metadata": { "blob": "x".repeat(20_000) } });
    let (status, body) = app.post_as("/api/sessions", &ann.token, big.clone()).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_eq!(body["error"], "invalid_payload", "{body}");
    assert_eq!(widget.refused("customer:start_chat", big).await, "invalid_payload");
    assert_eq!(app.count("SELECT count(*) FROM chat_sessions").await, 0, "nothing was created");
    assert_eq!(app.get_health().await.0, StatusCode::OK);
}
