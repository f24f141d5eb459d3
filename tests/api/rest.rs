//! The REST API, as a client sees it.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions};

#[tokio::test]
async fn a_customer_chats_over_rest_and_an_agent_resolves_it() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let alice = app.agent("alice", 2).await;

    let (status, session) = app
        .post_as("/api/sessions", &ann.token, json!({ "priority": "high", "metadata": { "page": "/pricing" } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["status"], "bot");
    assert_eq!(session["priority"], "normal", "a visitor cannot choose their own priority");
    assert_eq!(session["customerName"], "Ann");
    assert_eq!(session["metadata"]["page"], "/pricing");
    let id = session["sessionId"].as_str().expect("id").to_owned();

    let (status, fetched) = app.get_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["sessionId"], id.as_str());

    // The bot answers in one round trip.
    let response = app
        .http
        .post(format!("{}/api/chat/message", app.address))
        .bearer_auth(&ann.token)
        .header("X-Session-ID", &id)
        .json(&json!({ "message": "how long does shipping take?", "type": "text" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(answer["sessionId"], id.as_str());
    assert_eq!(answer["message"], "how long does shipping take?");
    assert!(answer["response"].as_str().unwrap_or_default().contains("business day"), "{answer}");
    assert_eq!(answer["agent"]["type"], "bot");
    assert!(answer["agent"]["confidence"].as_f64().is_some_and(|c| c > 0.5));

    // A second question, to have five messages: greeting, question, answer, question, answer.
    let response = app
        .http
        .post(format!("{}/api/chat/message", app.address))
        .bearer_auth(&ann.token)
        .header("X-Session-ID", &id)
        .json(&json!({ "message": "and returns?" }))
        .send()
        .await
        .expect("sent");
    let second: serde_json::Value = response.json().await.expect("json");
    assert!(second["response"].as_str().unwrap_or_default().contains("30 days"), "{second}");

    let (status, page) = app.get_as(&format!("/api/sessions/{id}/messages?limit=2"), &ann.token).await;
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<i64> =
        page["messages"].as_array().expect("messages").iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, [4, 5], "the newest two, oldest first");
    assert_eq!(page["hasMore"], true);
    let (_, older) = app.get_as(&format!("/api/sessions/{id}/messages?before=4&limit=10"), &ann.token).await;
    assert_eq!(older["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(older["hasMore"], false);
    let (_, newer) = app.get_as(&format!("/api/sessions/{id}/messages?after=3"), &ann.token).await;
    assert_eq!(newer["messages"][0]["seq"], 4);

    let (status, history) = app.get_as(&format!("/api/sessions/{id}/history?limit=2&offset=1"), &ann.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["total"], 5);
    assert_eq!((history["limit"].as_i64(), history["offset"].as_i64()), (Some(2), Some(1)));
    assert_eq!(history["messages"][0]["seq"], 2);

    let (status, _) = app.post_as(&format!("/api/sessions/{id}/read"), &ann.token, json!({ "upToSeq": 5 })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT last_read_seq FROM read_receipts").await, 5);

    // To a person: the customer transfers, the agent gets it.
    let (status, queued) =
        app.post_as(&format!("/api/sessions/{id}/transfer"), &ann.token, json!({ "reason": "billing" })).await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued["status"], "waiting");
    assert_eq!(queued["queuePosition"], 1);
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    agent.push("session:assigned").await;

    let (status, listed) = app.get_as("/api/sessions?status=assigned", &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["sessions"][0]["sessionId"], id.as_str());
    assert_eq!(listed["sessions"][0]["agentName"], "Alice");

    let (status, updated) = app
        .patch_as(&format!("/api/sessions/{id}"), &alice.token, json!({ "title": "Refund", "category": "billing" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["title"].as_str(), updated["category"].as_str()), (Some("Refund"), Some("billing")));
    assert_eq!(agent.push("session:updated").await["session"]["title"], "Refund");

    let before = app.count("SELECT max(seq) FROM chat_messages").await;
    let (status, ack) = app
        .post_as(
            &format!("/api/sessions/{id}/messages"),
            &alice.token,
            json!({ "content": "Refund sent", "clientMsgId": "a-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ack}");
    assert_eq!(ack["seq"], before + 1);
    assert_eq!(ack["clientMsgId"], "a-1");
    assert_eq!(ack["sessionId"], id.as_str());

    let (status, closed) =
        app.post_as(&format!("/api/sessions/{id}/resolve"), &alice.token, json!({ "notes": "refunded" })).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["reason"], "resolved");
    assert_eq!(agent.push("session:closed").await["reason"], "resolved");

    let (status, _) = app
        .post_as(&format!("/api/sessions/{id}/rating"), &ann.token, json!({ "rating": 5, "comment": "quick!" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT rating::bigint FROM session_analytics").await, 5);

    let (status, mine) =
        app.get_as(&format!("/api/users/{}/sessions?type=recent&limit=5", ann.user_id), &ann.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["sessions"][0]["session"]["sessionId"], id.as_str());
    assert!(mine["sessions"][0]["messageCount"].as_i64().is_some_and(|n| n >= 8));
    assert_eq!(mine["sessions"][0]["lastMessages"].as_array().map(Vec::len), Some(3));
    let (_, active) = app.get_as(&format!("/api/users/{}/sessions?type=active", ann.user_id), &ann.token).await;
    assert_eq!(active["sessions"], json!([]), "the resolved chat is not active");

    let (status, resumed) = app.post_as(&format!("/api/sessions/{id}/resume"), &ann.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resumed["session"]["status"], "closed");
    let count = resumed["history"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(count as i64, app.count("SELECT count(*) FROM chat_messages").await);

    let (status, _) = app.delete_as(&format!("/api/sessions/{id}/messages"), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, emptied) = app.get_as(&format!("/api/sessions/{id}/messages"), &ann.token).await;
    assert_eq!(emptied["messages"], json!([]));
    assert_eq!(app.count("SELECT count(*) FROM chat_messages WHERE deleted_at IS NULL").await, 0);
    assert!(app.count("SELECT count(*) FROM chat_messages").await > 0, "cleared, not erased");

    let (status, _) = app.delete_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = app.get_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"], "session_not_found");
}

#[tokio::test]
async fn a_message_posted_over_rest_reaches_the_other_side_live() {
    let app = spawn_app().await;
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let mut waiting = crate::queue::queued_customer(&app, "Ann", "normal").await;
    agent.push("session:assigned").await;
    let path = format!("/api/sessions/{}/messages", waiting.session_id);
    let (status, _) = app.post_as(&path, &alice.token, json!({ "content": "From the API", "clientMsgId": "x" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let live = waiting
        .socket
        .wait_for("the REST message", |frame| {
            frame["event"] == "message:received" && frame["data"]["content"] == "From the API"
        })
        .await;
    assert_eq!(live["data"]["senderName"], "Alice");
}

#[tokio::test]
async fn the_61st_message_in_a_minute_from_one_side_is_refused_and_the_other_side_still_speaks() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    let id = customer.start_chat().await;
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    customer.ok("customer:request_agent", "status:changed", json!({ "sessionId": id })).await;
    agent.push("session:assigned").await;
    let stored_before = app.count("SELECT count(*) FROM chat_messages").await;

    // Sixty from the customer over both transports together.
    for n in 0..30 {
        customer
            .ok(
                "customer:send_message",
                "message:sent",
                json!({ "sessionId": id, "content": format!("c{n}"), "clientMsgId": format!("c{n}") }),
            )
            .await;
        let (status, _) = app
            .post_as(
                &format!("/api/sessions/{id}/messages"),
                &ann.token,
                json!({ "content": format!("r{n}"), "clientMsgId": format!("r{n}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "message {n}");
    }
    let refused = customer
        .request("customer:send_message", json!({ "sessionId": id, "content": "one too many", "clientMsgId": "c60" }))
        .await;
    assert_eq!(refused["event"], "error");
    assert_eq!(refused["data"]["code"], "rate_limited");
    assert!(refused["data"]["retryAfter"].as_u64().is_some_and(|s| (1..=60).contains(&s)), "{refused}");
    let (status, body) = app
        .post_as(
            &format!("/api/sessions/{id}/messages"),
            &ann.token,
            json!({ "content": "again", "clientMsgId": "r60" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limited");

    // The customer's flood does not silence the agent, who has an allowance of their own.
    for n in 0..60 {
        let (status, body) = app
            .post_as(
                &format!("/api/sessions/{id}/messages"),
                &alice.token,
                json!({ "content": format!("a{n}"), "clientMsgId": format!("a{n}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "agent message {n}: {body}");
    }
    let (status, _) = app
        .post_as(
            &format!("/api/sessions/{id}/messages"),
            &alice.token,
            json!({ "content": "a60", "clientMsgId": "a60" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the agent's own 61st is refused");
    assert_eq!(
        app.count("SELECT count(*) FROM chat_messages").await,
        stored_before + 120,
        "the refused ones were not stored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM chat_messages WHERE content IN ('one too many', 'again', 'a60')").await,
        0
    );
}

#[tokio::test]
async fn files_are_typed_by_their_content_and_travel_with_messages() {
    let app = spawn_app_with(AppOptions::default().env("UPLOAD_LIMIT_BYTES", "4096")).await;
    let ann = app.visitor("Ann").await;
    let bea = app.visitor("Bea").await;
    let mut customer = app.customer_socket(&ann).await;
    let id = customer.start_chat().await;
    customer.push("message:received").await;

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let (status, uploaded) = app.upload_as(&ann.token, &id, "receipt.png", png.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["contentType"], "image/png");
    assert_eq!(uploaded["fileName"], "receipt.png");
    assert_eq!(uploaded["sizeBytes"], png.len());
    let attachment = uploaded["attachmentId"].as_str().expect("id").to_owned();

    let (status, text) = app.upload_as(&ann.token, &id, "looks-like.png", b"just words".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(text["contentType"], "text/plain", "the name does not decide the type");
    let (status, body) = app.upload_as(&ann.token, &id, "tool.exe", b"MZ\x90\0\x03\0\0\0\x04\0\0\0".to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    let (status, body) = app.upload_as(&ann.token, &id, "big.txt", vec![b'a'; 5000]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, _) = app.upload_as(&bea.token, &id, "x.txt", b"hi".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not her session");

    customer
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": "my receipt", "clientMsgId": "f1", "attachments": [attachment] }),
        )
        .await;
    let resumed = customer.ok("customer:resume", "session:resumed", json!({ "sessionId": id, "afterSeq": 1 })).await;
    let carried = &resumed["messages"][0]["attachments"][0];
    assert_eq!(carried["attachmentId"], attachment.as_str());
    assert_eq!(carried["url"], format!("/api/attachments/{attachment}"));

    let fetched = app.fetch_attachment(&attachment, &ann.token).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), png);
    let (status, _) = app.get_as(&format!("/api/attachments/{attachment}"), &bea.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A file goes with one message only.
    let again = customer
        .refused(
            "customer:send_message",
            json!({ "sessionId": id, "content": "again", "clientMsgId": "f2", "attachments": [attachment] }),
        )
        .await;
    assert_eq!(again, "invalid_payload");
}

#[tokio::test]
async fn client_mistakes_over_http_get_json_errors_never_500() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let send = |body: &'static str, content_type: &'static str| {
        app.http
            .post(format!("{}/api/sessions", app.address))
            .bearer_auth(&ann.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send("{not json", "application/json").await.expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["error"], "validation_failed");
    let response = send("{\"priority\": \"urgent\"}", "application/json").await.expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let huge = format!("{{\"botContext\": \"{}\"}}", "x".repeat(300_000));
    let response = app
        .http
        .post(format!("{}/api/sessions", app.address))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = app.get_as("/api/sessions/not-a-uuid", &ann.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")));
    let alice = app.agent("alice", 1).await;
    let (status, _) = app.get_as("/api/sessions?limit=100000", &alice.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get_as("/api/sessions?status=nonsense", &alice.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.get_as(&format!("/api/sessions/{}", uuid::Uuid::new_v4()), &ann.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("session_not_found")));
    let (status, body) = app.get_as("/api/sessions", "").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));

    let response = app.get("/health").await;
    for header in ["x-content-type-options", "x-frame-options", "referrer-policy"] {
        assert!(response.headers().contains_key(header), "{header} missing");
    }
}

#[tokio::test]
async fn chat_without_a_session_header_starts_one_and_agents_hand_chats_back_over_rest() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let (status, answer) = app.post_as("/api/chat/message", &ann.token, json!({ "message": "I need a refund" })).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["sessionId"].as_str().expect("a new session").to_owned();
    assert_eq!(answer["agent"]["type"], "bot");
    assert!(answer["response"].as_str().unwrap_or_default().contains("30 days"));
    assert_eq!(app.count("SELECT count(*) FROM chat_messages").await, 3, "greeting, question, answer");

    let (_, queued) = app.post_as(&format!("/api/sessions/{id}/transfer"), &ann.token, json!({})).await;
    assert_eq!(queued["status"], "waiting");
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    agent.push("session:assigned").await;
    let (status, answer) = app
        .http
        .post(format!("{}/api/chat/message", app.address))
        .bearer_auth(&ann.token)
        .header("X-Session-ID", &id)
        .json(&json!({ "message": "hello?" }))
        .send()
        .await
        .map(|r| (r.status(), r))
        .expect("sent");
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(
        (answer["agent"]["type"].as_str(), answer["response"].as_str()),
        (Some("agent"), None),
        "a person has it now"
    );

    let (status, back) = app
        .post_as(
            &format!("/api/sessions/{id}/transfer"),
            &alice.token,
            json!({ "priority": "high", "reason": "needs billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!((back["status"].as_str(), back["queuePosition"].as_i64()), (Some("waiting"), Some(1)));
    assert_eq!(agent.push("session:released").await["reason"], "transferred");
    let (_, session) = app.get_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!((session["status"].as_str(), session["priority"].as_str()), (Some("waiting"), Some("high")));
}

#[tokio::test]
async fn deleting_an_open_session_closes_it_first_and_keeps_the_record() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut socket = app.customer_socket(&ann).await;
    let id = socket.start_chat().await;
    socket.push("message:received").await;

    let (status, _) = app.delete_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(socket.push("session:closed").await["reason"], "deleted");
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT status, ended_reason, deleted_at IS NOT NULL FROM chat_sessions WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("still stored");
    assert_eq!(row.get::<_, String>(0), "closed");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("deleted"));
    assert!(row.get::<_, bool>(2));
    assert_eq!(
        app.count("SELECT count(*) FROM chat_messages WHERE sender_type = 'system'").await,
        1,
        "the closing note was stored"
    );
    let code = socket
        .refused("customer:send_message", json!({ "sessionId": id, "content": "hello?", "clientMsgId": "x" }))
        .await;
    assert_eq!(code, "session_not_found");
}

#[tokio::test]
async fn listing_many_sessions_at_once_leaves_the_database_for_everyone_else() {
    let app = spawn_app_with(AppOptions::default().env("OPEN_CHATS_PER_CUSTOMER", "1000")).await;
    let flooder = app.visitor("Flood").await;
    for _ in 0..15 {
        futures_util::future::join_all((0..10).map(|_| app.post_as("/api/sessions", &flooder.token, json!({})))).await;
    }
    // Every chat has its greeting stored before the listing.
    assert_eq!(app.settled_count("SELECT count(*) FROM chat_messages").await, 150);
    // Each listing is a few queries, however many sessions it shows.
    let path = format!("/api/users/{}/sessions?limit=200", flooder.user_id);
    let (status, listed) = app.get_as(&path, &flooder.token).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let sessions = listed["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 150);
    for session in sessions {
        let last = session["lastMessages"].as_array().expect("lastMessages");
        assert_eq!(session["messageCount"], 1, "{session}");
        assert_eq!(last.len(), 1, "{session}");
        assert_eq!(last[0]["sender"], "bot", "the greeting: {session}");
    }

    // Thirty-two such listings at once, and another customer starts a chat meanwhile.
    let ann = app.visitor("Ann").await;
    let (listings, (status, created)) =
        tokio::join!(futures_util::future::join_all((0..64).map(|_| app.get_as(&path, &flooder.token))), async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            app.post_as("/api/sessions", &ann.token, json!({})).await
        });
    assert_eq!(status, StatusCode::CREATED, "the other customer was kept waiting: {created}");
    // The flood itself is answered, or at worst told clearly the database is busy.
    assert!(listings.iter().any(|(status, _)| *status == StatusCode::OK));
    for (status, body) in &listings {
        assert!(
            *status == StatusCode::OK
                || (*status == StatusCode::SERVICE_UNAVAILABLE && body["error"] == "database_unavailable"),
            "{status} {body}"
        );
    }
}
