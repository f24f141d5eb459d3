//! Search over conversations: words said in a chat (full-text, with a GIN
//! index), its title and its customer, narrowed by status, agent, date and
//! rating; agents find only chats they may read.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Person, TestApp, WsClient};

/// A customer who says `text`, then asks for a person.
async fn waiting_with(app: &TestApp, name: &str, text: &str) -> (Person, WsClient, String) {
    let person = app.visitor(name).await;
    let mut socket = app.customer_socket(&person).await;
    let session_id = socket.start_chat().await;
    socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": text, "clientMsgId": "first" }),
        )
        .await;
    socket.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    (person, socket, session_id)
}

async fn found(app: &TestApp, query: &str, token: &str) -> Vec<String> {
    let (status, page) = app.get_as(&format!("/api/sessions?{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    let mut ids: Vec<String> = page["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["sessionId"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn search_finds_chats_by_a_word_said_in_them_and_never_one_the_caller_may_not_read() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let bob = app.agent("bob", 1).await;

    let mut alices = app.agent_socket(&alice).await;
    alices.ok("agent:join", "agent:joined", json!({})).await;
    let (_, _ann_socket, ann) = waiting_with(&app, "Ann", "My parcel from Zanzibar is late").await;
    alices.push("session:assigned").await;
    let mut bobs = app.agent_socket(&bob).await;
    bobs.ok("agent:join", "agent:joined", json!({})).await;
    let (ben, _ben_socket, ben_chat) = waiting_with(&app, "Ben", "Invoice 77 charged twice, I'm in Zanzibar").await;
    bobs.push("session:assigned").await;
    let (_, _cat_socket, cat) = waiting_with(&app, "Cat", "Anyone there? Shipping to zanzibar").await;

    // A word, whatever its case: the admin finds all three chats that said it.
    assert_eq!(found(&app, "q=ZANZIBAR", &admin.token).await, sorted(&[&ann, &ben_chat, &cat]));
    // Alice finds hers and the waiting one, never Bob's.
    assert_eq!(found(&app, "q=zanzibar", &alice.token).await, sorted(&[&ann, &cat]));
    assert_eq!(found(&app, "q=invoice", &alice.token).await, Vec::<String>::new());
    assert_eq!(found(&app, "q=invoice", &bob.token).await, sorted(&[&ben_chat]));
    // Phrases and exclusions.
    assert_eq!(found(&app, "q=%22charged%20twice%22", &admin.token).await, sorted(&[&ben_chat]));
    assert_eq!(found(&app, "q=zanzibar%20-parcel", &admin.token).await, sorted(&[&ben_chat, &cat]));

    // Staff find their private notes too, and a title or the customer's name.
    alices
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": ann, "content": "escalate to logistics", "clientMsgId": "n1" }),
        )
        .await;
    assert_eq!(found(&app, "q=logistics", &alice.token).await, sorted(&[&ann]));
    let (status, _) =
        app.patch_as(&format!("/api/sessions/{ann}"), &alice.token, json!({ "title": "Lost parcel 100% sure" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&app, "q=parcel%20100%25", &admin.token).await, sorted(&[&ann]));
    assert_eq!(found(&app, "q=ben", &admin.token).await, sorted(&[&ben_chat]));

    // Narrowed by agent, status, rating and date.
    assert_eq!(found(&app, &format!("q=zanzibar&agentId={}", bob.user_id), &admin.token).await, sorted(&[&ben_chat]));
    assert_eq!(found(&app, "q=zanzibar&status=waiting", &admin.token).await, sorted(&[&cat]));
    let (status, _) = app.post_as(&format!("/api/sessions/{ben_chat}/resolve"), &bob.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.post_as(&format!("/api/sessions/{ben_chat}/rating"), &ben.token, json!({ "rating": 4 })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(found(&app, "rating=4", &admin.token).await, sorted(&[&ben_chat]));
    assert_eq!(found(&app, "rating=5", &admin.token).await, Vec::<String>::new());
    let today = chrono::Utc::now().date_naive();
    let (yesterday, tomorrow) = (today.pred_opt().expect("a day"), today.succ_opt().expect("a day"));
    assert_eq!(found(&app, &format!("q=zanzibar&from={today}&to={today}"), &admin.token).await.len(), 3);
    assert!(found(&app, &format!("q=zanzibar&from={tomorrow}"), &admin.token).await.is_empty());
    assert!(found(&app, &format!("q=zanzibar&to={yesterday}"), &admin.token).await.is_empty());

    // A customer cannot search; bad filters are the client's mistake.
    let (status, _) = app.get_as("/api/sessions?q=zanzibar", &ben.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let long = "x".repeat(201);
    for query in
        ["rating=9", "from=yesterday", "to=2026-13-01", &format!("q={long}"), "agentId=nope", "q=a%00b", "label=a%00b"]
    {
        let (status, body) = app.get_as(&format!("/api/sessions?{query}"), &admin.token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    // The search has its GIN index.
    let db = app.db.client().await;
    let index: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'chat_messages_search_idx' AND indexdef LIKE '%gin%'",
            &[],
        )
        .await
        .expect("pg_indexes")
        .get(0);
    assert_eq!(index, 1);
}
