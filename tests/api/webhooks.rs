//! Webhooks: admins register endpoints; each chat event reaches them once,
//! signed with the hook's secret, is retried after a failure, and a slow
//! or dead endpoint never holds up a chat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, unreachable_url, AppOptions, Person, TestApp};
use crate::offline::{hours_all_week, today_and_tomorrow};
use crate::resume::{assigned_chat, customer_token, Chat};
use crate::webhook_receiver::{Received, WebhookReceiver};

const ALL_EVENTS: [&str; 7] = [
    "session.started",
    "session.handed_over",
    "session.assigned",
    "session.offline_request",
    "message.created",
    "session.closed",
    "session.rated",
];

/// Retries come quickly in tests.
fn quick_retries() -> AppOptions {
    AppOptions::default().env("WEBHOOK_RETRY_BASE_MS", "100").env("WEBHOOK_MAX_ATTEMPTS", "3")
}

/// Registers a hook and returns its id and secret.
async fn register(app: &TestApp, admin: &Person, url: &str, events: &[&str]) -> (String, String) {
    let (status, hook) =
        app.post_as("/api/admin/webhooks", &admin.token, json!({ "url": url, "events": events })).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().expect("the secret, shown once").to_owned();
    (hook["id"].as_str().expect("id").to_owned(), secret)
}

async fn deliveries(app: &TestApp, admin: &Person, hook_id: &str) -> Vec<Value> {
    let (status, list) = app.get_as(&format!("/api/admin/webhooks/{hook_id}/deliveries"), &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().expect("a list").clone()
}

/// Waits until the admin's list shows every delivery of the hook settled (delivered or failed).
async fn settled_deliveries(app: &TestApp, admin: &Person, hook_id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, admin, hook_id).await;
        if list.len() >= count && list.iter().all(|delivery| delivery["status"] != "pending") {
            return list;
        }
        assert!(Instant::now() < deadline, "deliveries never settled: {list:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn contents_of_messages(requests: &[Received]) -> Vec<String> {
    requests
        .iter()
        .map(|request| request.json["data"]["message"]["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn each_chat_event_reaches_the_hook_once_signed_with_its_secret_and_never_a_private_note() {
    let app = spawn_app_with(quick_retries()).await;
    let receiver = WebhookReceiver::start().await;
    let admin = app.staff("root", "admin", 1).await;
    let (hook_id, secret) = register(&app, &admin, &receiver.url(), &ALL_EVENTS).await;

    // A visitor starts a chat, asks for a person, and Alice gets it.
    let Chat { mut customer, mut agent, session_id, ann, .. } = assigned_chat(&app).await;
    customer
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Where is my parcel?", "clientMsgId": "c1" }),
        )
        .await;
    agent
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Courier lost it, refund", "clientMsgId": "n1" }),
        )
        .await;
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "It is on its way again", "clientMsgId": "a1" }),
        )
        .await;
    agent.ok("agent:close_session", "session:closed", json!({ "sessionId": session_id, "resolved": true })).await;
    let token = customer_token(&app, &ann).await;
    let (status, body) = app
        .post_as(&format!("/api/sessions/{session_id}/rating"), &token, json!({ "rating": 4, "comment": "quick" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let rated = receiver.wait_for("session.rated", |request| request.event() == "session.rated").await;
    assert_eq!(
        (rated.json["data"]["rating"].as_i64(), rated.json["data"]["comment"].as_str()),
        (Some(4), Some("quick"))
    );
    receiver
        .wait_for("the agent's message", |request| {
            request.json["data"]["message"]["content"] == "It is on its way again"
        })
        .await;
    // Anything sent twice would have come by now (each was answered 200 at once).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();

    // Every request is signed with the hook's secret, names itself, and is about this chat.
    let mut by_delivery: HashMap<&str, usize> = HashMap::new();
    for request in &received {
        assert!(request.signed_with(&secret), "a bad signature on {:?}", request.headers);
        assert!(!request.signed_with("some other secret"));
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.json["event"], request.event());
        assert_eq!(request.json["id"], request.delivery_id());
        let timestamp: i64 = request.header("x-switchboard-timestamp").parse().expect("unix seconds");
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 120);
        let about =
            request.json["data"]["session"]["sessionId"].as_str().or(request.json["data"]["sessionId"].as_str());
        assert_eq!(about, Some(session_id.as_str()), "{}", request.json);
        *by_delivery.entry(request.delivery_id()).or_default() += 1;
    }
    assert!(by_delivery.values().all(|count| *count == 1), "a delivery came twice: {by_delivery:?}");

    // Each event once, with the chat as it was then.
    for event in ["session.started", "session.handed_over", "session.assigned", "session.closed", "session.rated"] {
        assert_eq!(receiver.of_event(event).len(), 1, "{event}: {:#?}", receiver.of_event(event));
    }
    let started = &receiver.of_event("session.started")[0];
    assert_eq!(started.json["data"]["session"]["status"], "bot");
    assert_eq!(started.json["data"]["session"]["customerName"], "Ann");
    let handed_over = &receiver.of_event("session.handed_over")[0];
    assert_eq!(handed_over.json["data"]["session"]["status"], "waiting");
    assert_eq!(
        (handed_over.json["data"]["reason"].as_str(), handed_over.json["data"]["queuePosition"].as_i64()),
        (Some("billing"), Some(1))
    );
    let assigned = &receiver.of_event("session.assigned")[0];
    assert_eq!(assigned.json["data"]["agentName"], "Alice");
    assert_eq!(assigned.json["data"]["session"]["status"], "assigned");
    let closed = &receiver.of_event("session.closed")[0];
    assert_eq!(closed.json["data"]["reason"], "resolved");
    assert_eq!(closed.json["data"]["session"]["status"], "closed");
    assert_eq!(rated.json["data"]["session"]["status"], "closed");
    // Their times tell the order they happened in (deliveries go out side by side, so they may arrive in another).
    let mut by_time: Vec<(chrono::DateTime<chrono::Utc>, &str)> = received
        .iter()
        .filter(|request| request.event() != "message.created")
        .map(|request| {
            (request.json["createdAt"].as_str().expect("createdAt").parse().expect("a time"), request.event())
        })
        .collect();
    by_time.sort();
    let order: Vec<&str> = by_time.into_iter().map(|(_, event)| event).collect();
    assert_eq!(
        order,
        ["session.started", "session.handed_over", "session.assigned", "session.closed", "session.rated"]
    );

    // The customer's, the bot's and the agent's messages, once each; never the note, nor a system line.
    let messages = receiver.of_event("message.created");
    let contents = contents_of_messages(&messages);
    for said in ["Where is my parcel?", "It is on its way again"] {
        assert_eq!(contents.iter().filter(|content| *content == said).count(), 1, "{contents:?}");
    }
    assert!(
        contents.iter().all(|content| !content.contains("Courier lost it")),
        "a private note went out: {contents:?}"
    );
    let senders: Vec<&str> =
        messages.iter().map(|m| m.json["data"]["message"]["sender"].as_str().unwrap_or_default()).collect();
    assert!(senders.contains(&"bot"), "the bot's greeting: {senders:?}");
    assert!(senders.iter().all(|sender| ["customer", "agent", "bot"].contains(sender)), "{senders:?}");
    let from_customer =
        messages.iter().find(|m| m.json["data"]["message"]["content"] == "Where is my parcel?").expect("sent");
    assert_eq!(from_customer.json["data"]["message"]["senderId"], json!(ann.user_id));
    assert!(from_customer.json["data"]["message"]["seq"].as_i64().is_some_and(|seq| seq > 0));

    // The admin's list shows each delivered at the first attempt.
    let listed = settled_deliveries(&app, &admin, &hook_id, received.len()).await;
    assert_eq!(listed.len(), received.len());
    for delivery in &listed {
        assert_eq!(
            (delivery["status"].as_str(), delivery["attempts"].as_i64()),
            (Some("delivered"), Some(1)),
            "{delivery}"
        );
        assert_eq!(delivery["lastStatusCode"], 200);
        assert!(delivery["deliveredAt"].is_string());
    }
}

#[tokio::test]
async fn a_hook_gets_only_the_events_it_asked_for_and_nothing_while_disabled() {
    let app = spawn_app_with(quick_retries()).await;
    let receiver = WebhookReceiver::start().await;
    let admin = app.staff("root", "admin", 1).await;
    let (hook_id, _) = register(&app, &admin, &receiver.url(), &["session.closed"]).await;

    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    let first = customer.start_chat().await;
    customer.ok("customer:end_chat", "session:closed", json!({ "sessionId": first })).await;
    let closed = receiver.wait_for("the close", |request| request.event() == "session.closed").await;
    assert_eq!(closed.json["data"]["reason"], "customer_ended");

    // Disabled: the next chat's close is not sent.
    let (status, hook) =
        app.patch_as(&format!("/api/admin/webhooks/{hook_id}"), &admin.token, json!({ "active": false })).await;
    assert_eq!((status, hook["active"].as_bool()), (StatusCode::OK, Some(false)), "{hook}");
    assert!(hook.get("secret").is_none(), "the secret is shown only once: {hook}");
    let second = customer.start_chat().await;
    customer.ok("customer:end_chat", "session:closed", json!({ "sessionId": second })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "only the first chat's close: {:?}", receiver.received());
    assert_eq!(deliveries(&app, &admin, &hook_id).await.len(), 1);
}

#[tokio::test]
async fn a_delivery_answered_500_is_sent_again_and_listed_as_delivered_at_the_second_attempt() {
    let app = spawn_app_with(quick_retries()).await;
    let receiver = WebhookReceiver::failing_first(1).await;
    let admin = app.staff("root", "admin", 1).await;
    let (hook_id, secret) = register(&app, &admin, &receiver.url(), &["session.started"]).await;

    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    let session_id = customer.start_chat().await;

    let both = receiver.wait_until("the delivery twice", |all| (all.len() >= 2).then(|| all.to_vec())).await;
    assert_eq!(both[0].delivery_id(), both[1].delivery_id(), "the same delivery, for the receiver to recognise");
    assert_eq!(both[0].json, both[1].json);
    assert!(both.iter().all(|request| request.signed_with(&secret)));
    assert_eq!(both[1].json["data"]["session"]["sessionId"], session_id.as_str());

    let listed = settled_deliveries(&app, &admin, &hook_id, 1).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let delivery = &listed[0];
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempts"].as_i64()),
        (Some("delivered"), Some(2)),
        "{delivery}"
    );
    assert_eq!(delivery["lastStatusCode"], 200);
    assert_eq!(delivery["id"].as_str(), Some(both[0].delivery_id()));
    assert_eq!(delivery["event"], "session.started");
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_delivery_pending_when_the_server_restarts_is_sent_by_the_next_run() {
    // The retry comes after 3 s: the server is restarted before it.
    let app = spawn_app_with(AppOptions::default().env("WEBHOOK_RETRY_BASE_MS", "3000")).await;
    let receiver = WebhookReceiver::failing_first(1).await;
    let admin = app.staff("root", "admin", 1).await;
    let (hook_id, secret) = register(&app, &admin, &receiver.url(), &["session.started"]).await;
    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    customer.start_chat().await;
    let first = receiver.wait_for("the first attempt", |request| request.event() == "session.started").await;
    // The failed attempt is recorded: pending, its retry due in 3 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = deliveries(&app, &admin, &hook_id).await;
        if listed.first().is_some_and(|delivery| delivery["attempts"] == 1) {
            assert_eq!(
                (listed[0]["status"].as_str(), listed[0]["lastStatusCode"].as_i64()),
                (Some("pending"), Some(500))
            );
            assert_eq!(listed[0]["lastError"], "the endpoint answered HTTP 500");
            break;
        }
        assert!(Instant::now() < deadline, "the first attempt was never recorded: {listed:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(customer);

    let app = app.restart().await;
    let again = receiver.wait_until("the attempt after the restart", |all| all.get(1).cloned()).await;
    assert_eq!(again.delivery_id(), first.delivery_id());
    assert!(again.signed_with(&secret));
    let listed = settled_deliveries(&app, &admin, &hook_id, 1).await;
    assert_eq!(
        (listed[0]["status"].as_str(), listed[0]["attempts"].as_i64()),
        (Some("delivered"), Some(2)),
        "{listed:#?}"
    );
}

/// Sends `count` messages each way and returns the longest wait for an acknowledgement.
async fn exchange(chat: &mut Chat, count: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for n in 0..count {
        let started = Instant::now();
        chat.customer
            .ok(
                "customer:send_message",
                "message:sent",
                json!({ "sessionId": chat.session_id, "content": format!("question {n}"), "clientMsgId": format!("c{n}") }),
            )
            .await;
        chat.agent
            .ok(
                "agent:send_message",
                "message:sent",
                json!({ "sessionId": chat.session_id, "content": format!("answer {n}"), "clientMsgId": format!("a{n}") }),
            )
            .await;
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_slow_the_chat() {
    // The endpoint never answers, and the server would wait 20 s for each attempt.
    let app = spawn_app_with(quick_retries().env("WEBHOOK_TIMEOUT_MS", "20000")).await;
    let receiver = WebhookReceiver::hanging().await;
    let admin = app.staff("root", "admin", 1).await;
    register(&app, &admin, &receiver.url(), &ALL_EVENTS).await;

    let mut chat = assigned_chat(&app).await;
    receiver.wait_for("a delivery that hangs", |request| request.event() == "session.assigned").await;
    let started = Instant::now();
    // 40 messages each way: more deliveries than the server holds in flight at once.
    let slowest = exchange(&mut chat, 40).await;
    let took = started.elapsed();
    // Every acknowledgement came while the hook's requests were still hanging.
    assert!(took < Duration::from_secs(15), "80 messages took {took:?} (the slowest pair {slowest:?})");
    let hanging = receiver.received().len();
    assert!(hanging >= 10, "the endpoint was being sent deliveries meanwhile ({hanging})");
    // No attempt has timed out yet, so each request it got is still open: at most 32 at once.
    assert!(hanging <= 32, "{hanging} attempts at once");
    // The customer still gets the agent's answers live.
    chat.customer.wait_for("the last answer", |frame| frame["data"]["content"] == "answer 39").await;
}

#[tokio::test]
async fn a_dead_endpoint_does_not_slow_the_chat_and_its_deliveries_fail_after_the_last_attempt() {
    let app = spawn_app_with(quick_retries()).await;
    let admin = app.staff("root", "admin", 1).await;
    let dead = format!("{}/hook", unreachable_url("http"));
    let (hook_id, _) = register(&app, &admin, &dead, &["message.created", "session.assigned"]).await;

    let mut chat = assigned_chat(&app).await;
    let started = Instant::now();
    exchange(&mut chat, 10).await;
    assert!(started.elapsed() < Duration::from_secs(10), "20 messages took {:?}", started.elapsed());

    let listed = settled_deliveries(&app, &admin, &hook_id, 22).await;
    for delivery in &listed {
        assert_eq!(
            (delivery["status"].as_str(), delivery["attempts"].as_i64()),
            (Some("failed"), Some(3)),
            "{delivery}"
        );
        assert_eq!(delivery["lastError"], "could not connect to the endpoint");
        assert!(delivery["lastStatusCode"].is_null());
        assert!(delivery["deliveredAt"].is_null());
    }
    let metrics = app.metrics().await;
    assert!(metrics.contains("switchboard_webhook_deliveries_total{outcome=\"failed\"}"), "{metrics}");
}

#[tokio::test]
async fn admins_list_change_rotate_and_remove_hooks_and_nobody_else_may() {
    let app = spawn_app_with(quick_retries()).await;
    let receiver = WebhookReceiver::start().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let ann = app.visitor("Ann").await;
    let (hook_id, secret) = register(&app, &admin, &receiver.url(), &["session.started", "session.closed"]).await;
    assert_eq!(secret.len(), 64);

    // The list never shows a secret.
    let (status, list) = app.get_as("/api/admin/webhooks", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["events"], json!(["session.started", "session.closed"]));
    assert_eq!((list[0]["url"].as_str(), list[0]["active"].as_bool()), (Some(receiver.url().as_str()), Some(true)));
    assert!(list[0].get("secret").is_none(), "{list}");

    // A rotated secret signs what is sent from then on.
    let (status, rotated) =
        app.post_as(&format!("/api/admin/webhooks/{hook_id}/secret"), &admin.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("the new secret").to_owned();
    assert_ne!(new_secret, secret);
    let mut customer = app.customer_socket(&ann).await;
    customer.start_chat().await;
    let started = receiver.wait_for("the start", |request| request.event() == "session.started").await;
    assert!(started.signed_with(&new_secret) && !started.signed_with(&secret));

    // Events are changed as a whole.
    let (status, changed) = app
        .patch_as(&format!("/api/admin/webhooks/{hook_id}"), &admin.token, json!({ "events": ["session.rated"] }))
        .await;
    assert_eq!((status, &changed["events"]), (StatusCode::OK, &json!(["session.rated"])));

    // Agents, customers and strangers cannot see or touch them.
    for token in [&alice.token, &ann.token] {
        for (status, body) in [
            app.get_as("/api/admin/webhooks", token).await,
            app.post_as("/api/admin/webhooks", token, json!({ "url": receiver.url(), "events": ["session.started"] }))
                .await,
            app.patch_as(&format!("/api/admin/webhooks/{hook_id}"), token, json!({ "active": false })).await,
            app.post_as(&format!("/api/admin/webhooks/{hook_id}/secret"), token, json!({})).await,
            app.get_as(&format!("/api/admin/webhooks/{hook_id}/deliveries"), token).await,
            app.delete_as(&format!("/api/admin/webhooks/{hook_id}"), token).await,
        ] {
            assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
        }
    }
    let anonymous = app.get("/api/admin/webhooks").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = app.delete_as(&format!("/api/admin/webhooks/{hook_id}"), &admin.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get_as(&format!("/api/admin/webhooks/{hook_id}/deliveries"), &admin.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, list) = app.get_as("/api/admin/webhooks", &admin.token).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));

    // The OpenAPI document names the events as they are sent.
    let document: Value = app.get("/api/openapi.json").await.json().await.expect("JSON");
    let names = &document["components"]["schemas"]["WebhookEvent"]["enum"];
    assert_eq!(names, &json!(ALL_EVENTS), "{}", document["components"]["schemas"]["WebhookEvent"]);
}

#[tokio::test]
async fn bad_urls_unknown_events_and_too_many_hooks_get_clear_errors() {
    let app = spawn_app_with(quick_retries()).await;
    let admin = app.staff("root", "admin", 1).await;
    let create = |body: Value| {
        let (app, token) = (&app, admin.token.clone());
        async move { app.post_as("/api/admin/webhooks", &token, body).await }
    };
    for url in ["ftp://example.com/hook", "not a url", "http://", "javascript:alert(1)", "https://user:pw@example.com/"]
    {
        let (status, body) = create(json!({ "url": url, "events": ["session.started"] })).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("validation_failed")),
            "{url}: {body}"
        );
    }
    let (status, body) = create(json!({ "url": "https://example.com/hook", "events": ["session.exploded"] })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_event")), "{body}");
    assert!(body["message"].as_str().is_some_and(|message| message.contains("session.exploded")), "{body}");
    let (status, body) = create(json!({ "url": "https://example.com/hook", "events": [] })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{body}");
    let (status, body) = create(json!({ "url": "https://example.com/hook" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (id, _) = register(&app, &admin, "https://example.com/hook", &["session.started"]).await;
    let (status, body) =
        app.patch_as(&format!("/api/admin/webhooks/{id}"), &admin.token, json!({ "events": ["nope"] })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_event")));
    let (status, body) =
        app.patch_as(&format!("/api/admin/webhooks/{id}"), &admin.token, json!({ "url": "gopher://x" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")));
    let (status, body) = app
        .patch_as(&format!("/api/admin/webhooks/{}", uuid::Uuid::new_v4()), &admin.token, json!({ "active": true }))
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = app.get_as(&format!("/api/admin/webhooks/{id}/deliveries?limit=0"), &admin.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")));

    // A URL is kept in its normal form.
    let (status, hook) =
        create(json!({ "url": "  HTTPS://Example.COM/Hooks?x=1 ", "events": ["session.closed"] })).await;
    assert_eq!((status, hook["url"].as_str()), (StatusCode::CREATED, Some("https://example.com/Hooks?x=1")), "{hook}");

    // Twenty at most.
    for n in 2..20 {
        register(&app, &admin, &format!("https://example.com/hook/{n}"), &["session.closed"]).await;
    }
    let (status, body) =
        create(json!({ "url": "https://example.com/one-too-many", "events": ["session.closed"] })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("limit_reached")), "{body}");
}

#[tokio::test]
async fn hooks_registered_all_at_once_still_stop_at_twenty() {
    let app = spawn_app_with(quick_retries()).await;
    let admin = app.staff("root", "admin", 1).await;
    let creates = (0..30).map(|n| {
        let body = json!({ "url": format!("https://example.com/hook/{n}"), "events": ["session.closed"] });
        app.post_as("/api/admin/webhooks", &admin.token, body)
    });
    let mut created = 0;
    for (status, body) in futures_util::future::join_all(creates).await {
        match status {
            StatusCode::CREATED => created += 1,
            _ => assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("limit_reached")), "{body}"),
        }
    }
    assert_eq!(created, 20);
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 20);
}

#[tokio::test]
async fn a_message_left_for_later_tells_the_hook_once_with_the_address_to_answer() {
    let app = spawn_app_with(quick_retries()).await;
    let receiver = WebhookReceiver::start().await;
    let admin = app.staff("root", "admin", 1).await;
    let (_, secret) = register(&app, &admin, &receiver.url(), &["session.offline_request"]).await;
    // Closed today, so the widget offers the form at once.
    let hours = hours_all_week("UTC", &today_and_tomorrow());
    let (status, body) = app.put_as("/api/admin/business-hours", &admin.token, hours).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    let session_id = customer.start_chat().await;
    customer.push("session:offline").await;
    let form = json!({
        "sessionId": session_id, "email": "ann@example.com",
        "content": "Please call me back about order 1234", "clientMsgId": "later-1",
    });
    let changed = customer.ok("customer:leave_message", "status:changed", form).await;
    assert_eq!(changed["status"], "offline");

    let told = receiver.wait_for("the offline request", |request| request.event() == "session.offline_request").await;
    assert!(told.signed_with(&secret), "a bad signature on {:?}", told.headers);
    assert_eq!(told.json["data"]["session"]["sessionId"], session_id.as_str());
    assert_eq!(told.json["data"]["session"]["status"], "offline");
    assert_eq!(told.json["data"]["email"], "ann@example.com");

    // Once, and nothing the hook did not ask for (the chat's start, its messages).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Vec<String> = receiver.received().iter().map(|request| request.event().to_owned()).collect();
    assert_eq!(events, ["session.offline_request"]);
}
