//! An agent starts a chat knowing the customer: their profile and past chats,
//! readable while the agent holds one of the customer's chats, and only then.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Person, TestApp, WsClient};

/// A visitor with an email address, as the widget signs one in with `data-email`.
async fn visitor_with_email(app: &TestApp, name: &str, email: &str) -> Person {
    let response = app.post_json("/api/auth/visitor", &json!({ "name": name, "email": email })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    Person {
        user_id: body["userId"].as_str().and_then(|id| id.parse().ok()).expect("userId"),
        name: name.to_owned(),
        token: body["token"].as_str().expect("token").to_owned(),
    }
}

/// The customer asks for a person on a new chat, and `agent` (joined, with room) gets it.
async fn chat_with(app: &TestApp, customer: &Person, agent: &mut WsClient, text: &str) -> (WsClient, String) {
    let mut socket = app.customer_socket(customer).await;
    let session_id = socket.start_chat().await;
    socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": text, "clientMsgId": text }),
        )
        .await;
    socket.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    agent
        .wait_for("the assignment", |f| f["event"] == "session:assigned" && f["data"]["sessionId"] == session_id)
        .await;
    (socket, session_id)
}

#[tokio::test]
async fn an_agent_reads_the_profile_and_past_chats_of_the_customer_they_serve_and_no_one_elses() {
    let app = spawn_app().await;
    let alice = app.agent("alice", 5).await;
    let bob = app.agent("bob", 5).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    let ann = visitor_with_email(&app, "Ann", "ann@example.com").await;

    // Ann's first chat: Alice resolves it with a note, Ann rates it.
    let (first_socket, first) = chat_with(&app, &ann, &mut desk, "My order 1234 never came").await;
    let (status, _) =
        app.post_as(&format!("/api/sessions/{first}/resolve"), &alice.token, json!({ "notes": "refund issued" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post_as(&format!("/api/sessions/{first}/rating"), &ann.token, json!({ "rating": 5, "comment": "quick" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    first_socket.close().await;

    // Between chats nobody but an admin reads her profile.
    let (status, _) = app.get_as(&format!("/api/customers/{}", ann.user_id), &alice.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Her second chat is Alice's again: now Alice sees who she is and what happened before.
    let (_second_socket, second) = chat_with(&app, &ann, &mut desk, "Still about order 1234").await;
    let (status, profile) = app.get_as(&format!("/api/customers/{}", ann.user_id), &alice.token).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["name"], "Ann");
    assert_eq!(profile["email"], "ann@example.com");
    let sessions = profile["sessions"].as_array().expect("sessions");
    let ids: Vec<&str> = sessions.iter().filter_map(|s| s["sessionId"].as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    let past = &sessions[1];
    assert_eq!(past["status"], "closed");
    assert_eq!(past["endedReason"], "resolved");
    assert_eq!(past["isResolved"], true);
    assert_eq!(past["agentName"], "Alice");
    assert_eq!(past["rating"], 5);
    assert_eq!(past["ratingComment"], "quick");
    assert_eq!(past["notes"], "refund issued");
    assert_eq!(sessions[0]["status"], "assigned");

    // She reads the earlier chat itself, and the list of Ann's chats.
    let (status, page) = app.get_as(&format!("/api/sessions/{first}/messages?limit=100"), &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    let texts: Vec<&str> =
        page["messages"].as_array().expect("messages").iter().filter_map(|m| m["content"].as_str()).collect();
    assert!(texts.contains(&"My order 1234 never came"), "{texts:?}");
    let (status, list) = app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(2));

    // Bob holds no chat of Ann's: none of it.
    for path in [
        format!("/api/customers/{}", ann.user_id),
        format!("/api/users/{}/sessions", ann.user_id),
        format!("/api/sessions/{first}/messages"),
    ] {
        let (status, body) = app.get_as(&path, &bob.token).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{path}");
    }
    // Nor does Alice get another customer's.
    let carl = app.visitor("Carl").await;
    let mut carls = app.customer_socket(&carl).await;
    let carls_chat = carls.start_chat().await;
    let (status, _) = app.get_as(&format!("/api/customers/{}", carl.user_id), &alice.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get_as(&format!("/api/sessions/{carls_chat}/messages"), &alice.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A customer is no staff: Ann cannot read profiles, not even her own this way.
    let (status, _) = app.get_as(&format!("/api/customers/{}", ann.user_id), &ann.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Once Alice closes the chat, her access ends with it.
    let (status, _) = app.post_as(&format!("/api/sessions/{second}/resolve"), &alice.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get_as(&format!("/api/customers/{}", ann.user_id), &alice.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An admin reads any customer, and an unknown id is 404.
    let admin = app.staff("root", "admin", 1).await;
    let (status, profile) = app.get_as(&format!("/api/customers/{}", ann.user_id), &admin.token).await;
    assert_eq!((status, profile["sessions"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
    let (status, body) = app.get_as(&format!("/api/customers/{}", uuid::Uuid::new_v4()), &admin.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = app.get_as(&format!("/api/customers/{}", alice.user_id), &admin.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an agent is no customer");
}
