//! A hostile visitor with a browser: limits per person and per address,
//! not per chat; throttled typing and receipts; upload quotas; sign-ins
//! nobody can lock; and the smaller ways to pose or to pile things up.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, AppOptions, Person, TestApp};

/// A visitor token requested as if from `address` (the server trusts the
/// proxy header in these tests, as it would behind a load balancer).
async fn visitor_from(app: &TestApp, address: &str, name: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/api/auth/visitor", app.address))
        .header("X-Forwarded-For", address)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("sent")
}

async fn person(response: reqwest::Response) -> Person {
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    Person {
        user_id: body["userId"].as_str().and_then(|id| id.parse().ok()).expect("user id"),
        name: body["name"].as_str().unwrap_or_default().to_owned(),
        token: body["token"].as_str().expect("token").to_owned(),
    }
}

async fn start_chat_from(app: &TestApp, address: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .http
        .post(format!("{}/api/sessions", app.address))
        .header("X-Forwarded-For", address)
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

fn assert_rate_limited(status: StatusCode, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["retryAfter"].as_u64().is_some_and(|seconds| seconds >= 1), "{body}");
}

#[tokio::test]
async fn new_visitors_and_new_chats_are_limited_per_address_and_per_customer() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("TRUST_PROXY_HEADERS", "true")
            .env("RATE_LIMIT_VISITORS_PER_MINUTE", "4")
            .env("RATE_LIMIT_CHATS_PER_MINUTE", "2")
            .env("RATE_LIMIT_ADDRESS_FACTOR", "2")
            .env("OPEN_CHATS_PER_CUSTOMER", "100"),
    )
    .await;
    // Four new visitors from one address, then a clear refusal.
    let mut from_one_address = Vec::new();
    for n in 0..4 {
        from_one_address.push(person(visitor_from(&app, "203.0.113.7", &format!("Eve {n}")).await).await);
    }
    let refused = visitor_from(&app, "203.0.113.7", "Eve 5").await;
    assert!(refused.headers().contains_key("retry-after"));
    let status = refused.status();
    assert_rate_limited(status, &refused.json().await.expect("json"));
    // A returning visitor is no new visitor; another address is not affected.
    let returning = app
        .http
        .post(format!("{}/api/auth/visitor", app.address))
        .header("X-Forwarded-For", "203.0.113.7")
        .bearer_auth(&from_one_address[0].token)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(person(returning).await.user_id, from_one_address[0].user_id);
    let other = person(visitor_from(&app, "198.51.100.1", "Ann").await).await;
    assert_eq!(app.count("SELECT count(*) FROM users").await, 5);

    // Two chats a minute per customer, over REST and the socket alike.
    let eve = &from_one_address[0];
    for _ in 0..2 {
        assert_eq!(start_chat_from(&app, "203.0.113.7", &eve.token).await.0, StatusCode::CREATED);
    }
    let (status, body) = start_chat_from(&app, "203.0.113.7", &eve.token).await;
    assert_rate_limited(status, &body);
    let (status, body) = app.post_as("/api/chat/message", &eve.token, json!({ "message": "hello" })).await;
    assert_rate_limited(status, &body);
    let mut widget = app.customer_socket(eve).await;
    assert_eq!(widget.refused("customer:start_chat", json!({})).await, "rate_limited");
    // The address may start twice what one customer may: Eve's second
    // account gets two more, her third none.
    for _ in 0..2 {
        assert_eq!(start_chat_from(&app, "203.0.113.7", &from_one_address[1].token).await.0, StatusCode::CREATED);
    }
    let (status, body) = start_chat_from(&app, "203.0.113.7", &from_one_address[2].token).await;
    assert_rate_limited(status, &body);
    // A flood of refused requests leaves nothing behind: no rows, no memory.
    let before = app.rss_kib();
    for round in 0..10 {
        let visitors = (0..30).map(|_| visitor_from(&app, "203.0.113.7", "Flood"));
        assert!(join_all(visitors).await.iter().all(|response| response.status() == StatusCode::TOO_MANY_REQUESTS));
        let chats = (0..30).map(|_| start_chat_from(&app, "203.0.113.7", &eve.token));
        assert!(join_all(chats).await.iter().all(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS), "{round}");
    }
    let after = app.rss_kib();
    assert!(after.saturating_sub(before) < 8 * 1024, "RSS grew from {before} KiB to {after} KiB");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 5);
    // Nobody else is held back.
    assert_eq!(start_chat_from(&app, "198.51.100.1", &other.token).await.0, StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM chat_sessions").await, 5);
}

#[tokio::test]
async fn a_customers_messages_are_limited_across_all_their_chats_and_staff_are_not() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE", "10")
            .env("RATE_LIMIT_MESSAGES_PER_MINUTE", "60")
            .env("OPEN_CHATS_PER_CUSTOMER", "10"),
    )
    .await;
    let eve = app.visitor("Eve").await;
    let mut widget = app.customer_socket(&eve).await;
    let chats = [widget.start_chat().await, widget.start_chat().await, widget.start_chat().await];
    let mut accepted = 0;
    let mut refused = Vec::new();
    for (n, chat) in chats.iter().cycle().take(15).enumerate() {
        let reply = widget
            .request(
                "customer:send_message",
                json!({ "sessionId": chat, "content": "where is my order?", "clientMsgId": format!("m{n}") }),
            )
            .await;
        match reply["event"].as_str() {
            Some("message:sent") => accepted += 1,
            _ => refused.push(reply),
        }
    }
    assert_eq!(accepted, 10, "{refused:?}");
    assert!(refused.iter().all(|reply| reply["data"]["code"] == "rate_limited"), "{refused:?}");
    assert!(refused.iter().all(|reply| reply["data"]["retryAfter"].as_u64().is_some_and(|s| s >= 1)), "{refused:?}");
    assert_eq!(app.settled_count("SELECT count(*) FROM chat_messages WHERE sender_type = 'customer'").await, 10);
    // Over REST too, and in a fourth chat.
    let (status, body) = app.post_as("/api/sessions", &eve.token, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let fourth = body["sessionId"].as_str().expect("id");
    let (status, body) = app
        .post_as(
            &format!("/api/sessions/{fourth}/messages"),
            &eve.token,
            json!({ "content": "hi", "clientMsgId": "r" }),
        )
        .await;
    assert_rate_limited(status, &body);

    // Another customer, and the agent of Eve's chat, speak freely.
    let ann = app.visitor("Ann").await;
    let mut ann_widget = app.customer_socket(&ann).await;
    let ann_chat = ann_widget.start_chat().await;
    ann_widget.send_many("customer:send_message", &ann_chat, 5, "ann", "hello").await;
    let alice = app.agent("alice", 5).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": chats[0] })).await;
    desk.push("session:assigned").await;
    desk.send_many("agent:send_message", &chats[0], 20, "alice", "on it").await;
}

/// Counts every row written to `read_receipts`, in the test's own database.
async fn count_receipt_writes(app: &TestApp) {
    app.db
        .client()
        .await
        .batch_execute(
            "CREATE TABLE receipt_writes (at timestamptz NOT NULL DEFAULT clock_timestamp());
             CREATE FUNCTION note_receipt_write() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO receipt_writes DEFAULT VALUES; RETURN NEW; END $$;
             CREATE TRIGGER receipt_written AFTER INSERT OR UPDATE ON read_receipts
               FOR EACH ROW EXECUTE FUNCTION note_receipt_write();",
        )
        .await
        .expect("a trigger counting receipt writes");
}

#[tokio::test]
async fn floods_of_typing_and_read_receipts_reach_the_database_and_the_agent_as_a_trickle() {
    let app = spawn_app_with(AppOptions::default().env("RECEIPT_WRITE_INTERVAL_MS", "500")).await;
    count_receipt_writes(&app).await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let chat = widget.start_chat().await;
    let alice = app.agent("alice", 1).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": chat })).await;
    desk.push("session:assigned").await;
    desk.send_many("agent:send_message", &chat, 50, "a", "a line").await;
    let last_seq = app.settled_count("SELECT max(seq) FROM chat_messages").await;
    desk.forget_received();

    // 1,000 typing frames, then a receipt per message, as fast as they go.
    let started = Instant::now();
    let mut waiting = Vec::new();
    for n in 0..1000 {
        waiting.push(widget.send("customer:typing", json!({ "sessionId": chat })).await);
        if waiting.len() == 32 || n == 999 {
            for reference in waiting.drain(..) {
                widget.reply(&reference).await;
            }
        }
    }
    for seq in 1..=last_seq {
        waiting.push(widget.send("customer:mark_read", json!({ "sessionId": chat, "upToSeq": seq })).await);
        if waiting.len() == 32 || seq == last_seq {
            for reference in waiting.drain(..) {
                let reply = widget.reply(&reference).await;
                assert_eq!(reply["event"], "ack", "every receipt is acknowledged once stored: {reply}");
            }
        }
    }
    let elapsed = started.elapsed();
    let typing = desk.pushes_within("user_typing", Duration::from_millis(300)).await;
    let burst_windows = elapsed.as_secs() / 3 + 2;
    assert!(typing.len() as u64 <= burst_windows, "{} typing frames in {elapsed:?}", typing.len());
    let reads = desk.pushes_within("messages_read", Duration::from_millis(700)).await;
    assert_eq!(reads.last().map(|read| read["upToSeq"].clone()), Some(json!(last_seq)), "{reads:?}");
    let writes = app.count("SELECT count(*) FROM receipt_writes").await;
    let intervals = (elapsed.as_millis() / 500) as i64 + 2;
    assert!(writes <= intervals, "{writes} receipt writes for {last_seq} receipts in {elapsed:?}");
    assert!(reads.len() as i64 <= writes, "one push per write: {} pushes, {writes} writes", reads.len());
    let stored = app.count("SELECT last_read_seq FROM read_receipts WHERE role = 'customer'").await;
    assert_eq!(stored, last_seq, "the latest receipt is the one stored");
}

pub fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    bytes.resize(1500, 0);
    bytes
}

#[tokio::test]
async fn uploads_have_quotas_a_rate_and_unsent_or_cleared_files_go_away() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("UPLOAD_QUOTA_BYTES_PER_SESSION", "3000")
            .env("UPLOAD_QUOTA_BYTES_PER_CUSTOMER", "5000")
            .env("UPLOAD_UNCLAIMED_TTL_SECS", "2")
            .env("RATE_LIMIT_UPLOADS_PER_MINUTE", "6"),
    )
    .await;
    let eve = app.visitor("Eve").await;
    let mut widget = app.customer_socket(&eve).await;
    let (first, second) = (widget.start_chat().await, widget.start_chat().await);
    for _ in 0..2 {
        assert_eq!(app.upload_as(&eve.token, &first, "a.png", png()).await.0, StatusCode::CREATED);
    }
    let (status, body) = app.upload_as(&eve.token, &first, "a.png", png()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")), "{body}");
    // A chat's quota counts everyone's files, staff's included.
    let admin = app.staff("root", "admin", 1).await;
    let (status, body) = app.upload_as(&admin.token, &first, "staff.png", png()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")), "{body}");
    let (status, sent) = app.upload_as(&eve.token, &second, "b.png", png()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.upload_as(&eve.token, &second, "b.png", png()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")), "{body}");
    assert_eq!(app.count("SELECT sum(size_bytes)::bigint FROM message_attachments").await, 4500);
    // Five uploads so far; the sixth is the last this minute, whatever it holds.
    let (status, _) = app.upload_as(&eve.token, &second, "c.txt", b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.upload_as(&eve.token, &second, "c.txt", b"hello".to_vec()).await;
    assert_rate_limited(status, &body);

    // The file sent with a message stays; the unsent ones are removed once old.
    let attachment = sent["attachmentId"].as_str().expect("id").to_owned();
    widget
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": second, "content": "see", "clientMsgId": "s", "attachments": [attachment] }),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.count("SELECT count(*) FROM message_attachments").await > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM message_attachments WHERE message_id IS NULL").await, 0);
    let url = format!("/api/attachments/{attachment}");
    assert_eq!(app.get_as(&url, &eve.token).await.0, StatusCode::OK);
    // Clearing the chat removes its files: they are no longer served.
    assert_eq!(app.delete_as(&format!("/api/sessions/{second}/messages"), &eve.token).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.get_as(&url, &eve.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    assert_eq!(app.count("SELECT count(*) FROM message_attachments").await, 0);
}

async fn login_from(app: &TestApp, address: &str, username: &str, password: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let response = app
        .http
        .post(format!("{}/auth/login", app.address))
        .header("X-Forwarded-For", address)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("sent");
    (response.status(), started.elapsed())
}

#[tokio::test]
async fn wrong_passwords_from_one_address_cannot_lock_a_person_out_from_theirs() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("TRUST_PROXY_HEADERS", "true")
            .env("RATE_LIMIT_LOGINS_PER_MINUTE", "3")
            .env("RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME_PER_MINUTE", "8"),
    )
    .await;
    let bob = app.agent("bob", 1).await;
    let password = "correct-horse-battery";
    let attacker = "203.0.113.66";
    for _ in 0..3 {
        assert_eq!(login_from(&app, attacker, "bob", "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    // The attacker's address is held back for bob's name, even with the right password…
    assert_eq!(login_from(&app, attacker, "bob", password).await.0, StatusCode::TOO_MANY_REQUESTS);
    // …bob, from his own address, is not.
    assert_eq!(login_from(&app, "198.51.100.20", "bob", password).await.0, StatusCode::OK, "{}", bob.name);
    // Many addresses together reach the higher ceiling for the name.
    for n in 0..5 {
        login_from(&app, &format!("203.0.113.{n}"), "bob", "guess").await;
    }
    let (status, _) = login_from(&app, "198.51.100.20", "bob", password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "eight wrong passwords in a minute hold the name");
}

#[tokio::test]
async fn an_unknown_username_takes_as_long_as_a_wrong_password() {
    let app = spawn_app_with(AppOptions::default().env("RATE_LIMIT_LOGINS_PER_MINUTE", "1000")).await;
    app.agent("bob", 1).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..5 {
        let address = format!("192.0.2.{n}");
        known.push(login_from(&app, &address, "bob", "wrong-password").await);
        unknown.push(login_from(&app, &address, &format!("nobody-{n}"), "wrong-password").await);
    }
    assert!(known.iter().chain(&unknown).all(|(status, _)| *status == StatusCode::UNAUTHORIZED));
    let median = |answers: &mut Vec<(StatusCode, Duration)>| {
        answers.sort_by_key(|(_, took)| *took);
        answers[answers.len() / 2].1
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    // Without the decoy hash an unknown name answered in 1–2 ms and a known one in 27–46 ms.
    assert!(unknown * 3 >= known, "unknown names answer in {unknown:?}, known ones in {known:?}");
}

#[tokio::test]
async fn a_deleted_visitors_token_is_dead_and_names_cannot_hide_or_reverse_text() {
    let app = spawn_app_with(AppOptions::default()).await;
    let gone = app.visitor("Gone").await;
    app.db
        .client()
        .await
        .execute("DELETE FROM users WHERE id = $1", &[&gone.user_id])
        .await
        .expect("delete the visitor");
    let (status, body) = app.post_as("/auth/refresh", &gone.token, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (status, _) = app.post_as("/api/sessions", &gone.token, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count(&format!("SELECT count(*) FROM users WHERE id = '{}'", gone.user_id)).await, 0);

    for name in ["invoice\u{202e}fdp", "Ann\u{200b}", "\u{2066}Bob"] {
        let response = app.post_json("/api/auth/visitor", &json!({ "name": name })).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name:?}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "validation_failed");
    }
    let admin = app.staff("root", "admin", 1).await;
    let (status, body) = app
        .post_as(
            "/api/admin/agents",
            &admin.token,
            json!({ "username": "mallory", "password": "long-enough-password", "displayName": "Support\u{202e}" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{body}");
    // Persian names keep their zero-width non-joiner.
    assert_eq!(
        app.post_json("/api/auth/visitor", &json!({ "name": "می\u{200c}خواهم" })).await.status(),
        StatusCode::OK
    );

    let eve = app.visitor("Eve").await;
    let chat = app.customer_socket(&eve).await.start_chat().await;
    let (status, uploaded) = app.upload_as(&eve.token, &chat, "invoice\u{202e}fdp.hta", b"plain".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["fileName"], "invoicefdp.hta");
}

#[tokio::test]
async fn a_chat_is_rated_once_after_it_ends_and_its_closing_note_is_for_staff() {
    let app = spawn_app_with(AppOptions::default()).await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let chat = widget.start_chat().await;
    let rating_path = format!("/api/sessions/{chat}/rating");
    let rate = |rating: i64| app.post_as(&rating_path, &ann.token, json!({ "rating": rating }));
    let (status, body) = rate(5).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("session_open")), "{body}");

    let alice = app.agent("alice", 1).await;
    let mut desk = app.agent_socket(&alice).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": chat })).await;
    desk.push("session:assigned").await;
    let (status, _) =
        app.post_as(&format!("/api/sessions/{chat}/resolve"), &alice.token, json!({ "notes": "refund issued" })).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(rate(2).await.0, StatusCode::NO_CONTENT);
    let (status, body) = rate(5).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("already_rated")), "{body}");
    assert_eq!(app.count("SELECT rating::bigint FROM session_analytics").await, 2, "the first rating stands");
    let ratings = join_all((0..5).map(|_| rate(1))).await;
    assert!(ratings.iter().all(|(status, _)| *status == StatusCode::CONFLICT));

    let (_, for_agent) = app.get_as(&format!("/api/sessions/{chat}"), &alice.token).await;
    assert_eq!(for_agent["notes"], "refund issued", "{for_agent}");
    let admin = app.staff("root", "admin", 1).await;
    let (_, listed) = app.get_as("/api/sessions?status=closed", &admin.token).await;
    assert_eq!(listed["sessions"][0]["notes"], "refund issued", "{listed}");
    let (_, for_customer) = app.get_as(&format!("/api/sessions/{chat}"), &ann.token).await;
    assert!(for_customer.get("notes").is_none(), "{for_customer}");
    let (_, mine) = app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &ann.token).await;
    assert!(mine["sessions"][0]["session"].get("notes").is_none(), "{mine}");
}
