//! What admins see and do, and the operational endpoints.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::queue::queued_customer;

#[tokio::test]
async fn the_stats_add_up_to_what_happened() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let bob = app.agent("bob", 2).await;

    // Alice takes one chat and is then full; Bob stays away.
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let mut served = queued_customer(&app, "First", "normal").await;
    agent.push("session:assigned").await;
    served.socket.push("status:changed").await;
    let mut away = app.agent_socket(&bob).await;
    away.ok("agent:join", "agent:joined", json!({})).await;
    away.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;
    let _high = queued_customer(&app, "Urgent", "high").await;
    let _low = queued_customer(&app, "Later", "low").await;
    // One chat with the bot, and one the bot closed on its own.
    let chatty = app.visitor("Chatty").await;
    app.post_as("/api/sessions", &chatty.token, json!({})).await;
    let (_, done) = app.post_as("/api/sessions", &chatty.token, json!({})).await;
    let done_id = done["sessionId"].as_str().expect("id");
    app.post_as(&format!("/api/sessions/{done_id}/resolve"), &chatty.token, json!({})).await;
    // Alice answers, so there is a first response time.
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": served.session_id, "content": "Hi", "clientMsgId": "1" }),
        )
        .await;
    let stored = app.settled_count("SELECT count(*) FROM chat_messages").await;

    let (status, stats) = app.get_as("/api/admin/stats", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let sessions = &stats["sessions"];
    assert_eq!(
        (
            sessions["bot"].as_i64(),
            sessions["waiting"].as_i64(),
            sessions["assigned"].as_i64(),
            sessions["closed"].as_i64()
        ),
        (Some(1), Some(2), Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(sessions["total"], 5);
    assert_eq!(stats["queue"]["length"], 2);
    assert_eq!(stats["queue"]["byPriority"], json!({ "high": 1, "normal": 0, "low": 1 }));
    assert!(stats["queue"]["oldestWaitSeconds"].as_f64().is_some_and(|s| s >= 0.0));
    assert!(stats["queue"]["meanWaitSeconds"]
        .as_f64()
        .is_some_and(|s| s <= stats["queue"]["oldestWaitSeconds"].as_f64().unwrap_or(0.0)));
    assert_eq!(
        (stats["agents"]["online"].as_i64(), stats["agents"]["away"].as_i64(), stats["agents"]["busy"].as_i64()),
        (Some(1), Some(1), Some(1)),
        "{stats}"
    );
    let alice_load =
        stats["agents"]["list"].as_array().expect("list").iter().find(|a| a["name"] == "Alice").expect("alice").clone();
    assert_eq!((alice_load["activeSessions"].as_i64(), alice_load["maxConcurrent"].as_i64()), (Some(1), Some(1)));
    assert_eq!(stats["messages"]["total"], stored);
    assert_eq!(stats["messages"]["lastHour"], stored);
    assert!(stats["firstResponseSeconds"]["p50"].as_f64().is_some(), "{stats}");
    assert!((stats["handoffRate"].as_f64().unwrap_or_default() - 3.0 / 5.0).abs() < 1e-9, "{stats}");
    assert!(
        (stats["botResolvedRate"].as_f64().unwrap_or_default() - 1.0).abs() < 1e-9,
        "the one closed chat the bot resolved alone"
    );

    let (status, queue) = app.get_as("/api/admin/queue", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["waiting"].as_array().map(Vec::len), Some(2));
    assert_eq!(queue["waiting"][0]["priority"], "high");
    assert_eq!(queue["storedEntries"], 2, "the database agrees with the queue");
}

#[tokio::test]
async fn admins_create_resize_and_disable_agents() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let (status, created) = app
        .post_as(
            "/api/admin/agents",
            &admin.token,
            json!({ "username": "carol", "password": "carol-password", "displayName": "Carol", "maxConcurrent": 3 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["role"].as_str(), created["maxConcurrent"].as_i64()),
        (Some("Carol"), Some("agent"), Some(3))
    );
    let carol = created["agentId"].as_str().expect("id").to_owned();
    let (status, _) = app
        .post_as(
            "/api/admin/agents",
            &admin.token,
            json!({ "username": "carol", "password": "another-pass", "displayName": "C2" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .post_as(
            "/api/admin/agents",
            &admin.token,
            json!({ "username": "dave", "password": "short", "displayName": "Dave" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let login = app.post_json("/auth/login", &json!({ "username": "carol", "password": "carol-password" })).await;
    assert_eq!(login.status(), StatusCode::OK);
    let carol_token: serde_json::Value = login.json().await.expect("json");
    let carol_person = crate::helpers::Person {
        user_id: carol.parse().expect("uuid"),
        name: "Carol".into(),
        token: carol_token["token"].as_str().expect("token").to_owned(),
    };
    let mut desk = app.agent_socket(&carol_person).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;

    let (status, listed) = app.get_as("/api/admin/agents", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .any(|a| a["agentId"] == carol.as_str() && a["username"] == "carol"));

    let (status, changed) = app
        .patch_as(&format!("/api/admin/agents/{carol}"), &admin.token, json!({ "maxConcurrent": 7, "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!((changed["maxConcurrent"].as_i64(), changed["disabled"].as_bool()), (Some(7), Some(true)));
    let login = app.post_json("/auth/login", &json!({ "username": "carol", "password": "carol-password" })).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED, "a disabled agent cannot sign in");
    let closed = desk.closed_by_server().await.expect("a close frame");
    assert_eq!(closed.reason, "this account was disabled");
    let (status, _) = app
        .patch_as(&format!("/api/admin/agents/{}", uuid::Uuid::new_v4()), &admin.token, json!({ "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cleanup_erases_only_old_closed_sessions() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let ann = app.visitor("Ann").await;
    let (_, old) = app.post_as("/api/sessions", &ann.token, json!({})).await;
    let old_id = old["sessionId"].as_str().expect("id").to_owned();
    app.post_as(&format!("/api/sessions/{old_id}/resolve"), &ann.token, json!({})).await;
    let (_, recent) = app.post_as("/api/sessions", &ann.token, json!({})).await;
    let recent_id = recent["sessionId"].as_str().expect("id").to_owned();
    app.post_as(&format!("/api/sessions/{recent_id}/resolve"), &ann.token, json!({})).await;
    app.db
        .client()
        .await
        .execute(
            "UPDATE chat_sessions SET closed_at = now() - interval '40 days' WHERE id = $1::text::uuid",
            &[&old_id],
        )
        .await
        .expect("backdate");

    let (status, done) = app.post_as("/api/admin/cleanup", &admin.token, json!({ "olderThanDays": 30 })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["deletedSessions"], 1);
    assert_eq!(app.count("SELECT count(*) FROM chat_sessions").await, 1);
    assert_eq!(app.count(&format!("SELECT count(*) FROM chat_messages WHERE session_id = '{old_id}'")).await, 0);
    let (status, _) = app.post_as("/api/admin/cleanup", &admin.token, json!({ "olderThanDays": 0 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_report_connections_messages_queue_and_the_writer() {
    let app = spawn_app().await;
    let mut waiting = queued_customer(&app, "Ann", "high").await;
    waiting
        .socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": waiting.session_id, "content": "hello", "clientMsgId": "m" }),
        )
        .await;
    // Only a scraper with METRICS_TOKEN or an admin reads the figures.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let agent = app.agent("metrics-agent", 1).await;
    let (status, body) = app.get_as("/metrics", &agent.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let response = app.http.get(format!("{}/metrics", app.address)).bearer_auth("wrong-token").send().await;
    assert_eq!(response.expect("sent").status(), StatusCode::UNAUTHORIZED);
    let in_the_url = format!("/metrics?token={}", crate::helpers::METRICS_TOKEN);
    assert_eq!(app.get(&in_the_url).await.status(), StatusCode::UNAUTHORIZED, "a token in the URL lands in logs");
    let admin = app.staff("metrics-admin", "admin", 1).await;
    assert_eq!(app.get_as("/metrics", &admin.token).await.0, StatusCode::OK);
    let response = app.http.get(format!("{}/metrics", app.address)).bearer_auth(crate::helpers::METRICS_TOKEN);
    let response = response.send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/plain"));
    let text = response.text().await.expect("text");
    for line in [
        "switchboard_connections{role=\"customer\"} 1",
        "switchboard_connections{role=\"agent\"} 0",
        "switchboard_queue_length{priority=\"high\"} 1",
        "switchboard_queue_length{priority=\"low\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    let customer_messages = app.count("SELECT count(*) FROM chat_messages WHERE sender_type = 'customer'").await;
    assert!(
        text.lines().any(|l| l == format!("switchboard_messages_total{{sender=\"customer\"}} {customer_messages}")),
        "{text}"
    );
    assert!(text.contains("switchboard_writer_batch_size_count"));
    assert!(text.contains("switchboard_writer_commit_seconds_bucket"));
    assert!(text.contains("switchboard_queue_wait_seconds_bucket"));
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: serde_json::Value = response.json().await.expect("json");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|methods| methods.keys())
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "GET /health",
        "GET /api/info",
        "GET /metrics",
        "GET /api/openapi.json",
        "GET /api/docs",
        "POST /api/auth/visitor",
        "POST /auth/login",
        "POST /auth/refresh",
        "GET /ws/customer",
        "GET /ws/agent",
        "POST /api/sessions",
        "GET /api/sessions",
        "GET /api/sessions/{id}",
        "PATCH /api/sessions/{id}",
        "DELETE /api/sessions/{id}",
        "GET /api/sessions/{id}/messages",
        "POST /api/sessions/{id}/messages",
        "DELETE /api/sessions/{id}/messages",
        "POST /api/sessions/{id}/notes",
        "GET /api/sessions/{id}/history",
        "POST /api/sessions/{id}/resume",
        "POST /api/sessions/{id}/resolve",
        "POST /api/sessions/{id}/transfer",
        "POST /api/sessions/{id}/read",
        "POST /api/sessions/{id}/rating",
        "POST /api/chat/message",
        "GET /api/users/{userId}/sessions",
        "GET /api/customers/{id}",
        "GET /api/canned-replies",
        "POST /api/admin/canned-replies",
        "PATCH /api/admin/canned-replies/{id}",
        "DELETE /api/admin/canned-replies/{id}",
        "GET /api/labels",
        "POST /api/admin/labels",
        "DELETE /api/admin/labels/{id}",
        "PUT /api/sessions/{id}/labels",
        "POST /api/uploads",
        "GET /api/attachments/{id}",
        "GET /api/admin/stats",
        "GET /api/admin/reports",
        "GET /api/teams",
        "POST /api/admin/teams",
        "DELETE /api/admin/teams/{id}",
        "PUT /api/admin/teams/{id}/members",
        "GET /api/agents",
        "GET /api/business-hours",
        "PUT /api/admin/business-hours",
        "DELETE /api/admin/business-hours",
        "GET /api/teams/{id}/hours",
        "PUT /api/admin/teams/{id}/hours",
        "DELETE /api/admin/teams/{id}/hours",
        "GET /api/queue",
        "GET /api/admin/reports.csv",
        "GET /api/admin/queue",
        "GET /api/admin/agents",
        "POST /api/admin/agents",
        "PATCH /api/admin/agents/{id}",
        "POST /api/admin/cleanup",
        "GET /api/admin/webhooks",
        "POST /api/admin/webhooks",
        "PATCH /api/admin/webhooks/{id}",
        "DELETE /api/admin/webhooks/{id}",
        "POST /api/admin/webhooks/{id}/secret",
        "GET /api/admin/webhooks/{id}/deliveries",
        "POST /api/sessions/{id}/transcript",
        "GET /api/admin/emails",
        "GET /api/setup",
        "POST /api/setup/admin",
        "GET /agent",
        "GET /admin",
        "GET /ws/partner",
        "GET /api/partners",
        "GET /api/admin/partners",
        "POST /api/admin/partners",
        "POST /api/admin/partners/{id}/accounts",
        "POST /api/sessions/{id}/partners",
        "DELETE /api/sessions/{id}/partners/{orgId}",
        "GET /api/partner/me",
        "GET /api/partner/sessions",
        "GET /api/partner/sessions/{id}",
        "GET /api/partner/sessions/{id}/messages",
        "GET /partner",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(documented, expected);
    // Every route the server answers is documented: each documented route exists (no 404 from the router).
    for route in &expected {
        let (method, path) = route.split_once(' ').expect("method and path");
        let path = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{userId}", &uuid::Uuid::new_v4().to_string())
            .replace("{orgId}", &uuid::Uuid::new_v4().to_string());
        let response = app
            .http
            .request(method.parse().expect("method"), format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        assert!(
            response.status() != StatusCode::NOT_FOUND
                || path.starts_with("/api/sessions/")
                || path.starts_with("/api/attachments/"),
            "{route} is not routed"
        );
        assert!(!response.status().is_server_error(), "{route} answered {}", response.status());
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}

/// The dashboard's socket answers an admin's `admin:*` events with the same
/// figures as the REST admin API, pushes `stats:update` once subscribed, and
/// refuses them to agents.
#[tokio::test]
async fn admins_get_stats_the_queue_and_health_over_the_socket_and_agents_do_not() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let mut console = app.agent_socket(&admin).await;
    let first = queued_customer(&app, "Ann", "normal").await;

    let stats = console.ok("admin:get_stats", "admin:stats", json!({ "subscribe": true })).await;
    assert_eq!(stats["queue"]["length"], 1, "{stats}");
    assert_eq!(stats["sessions"]["waiting"], 1);
    let (_, rest) = app.get_as("/api/admin/stats", &admin.token).await;
    assert_eq!(stats["sessions"], rest["sessions"]);
    assert_eq!(stats["queue"]["length"], rest["queue"]["length"]);

    let queue = console.ok("admin:debug_queue", "admin:queue", json!({})).await;
    let waiting: Vec<&str> =
        queue["waiting"].as_array().expect("waiting").iter().filter_map(|w| w["sessionId"].as_str()).collect();
    assert_eq!(waiting, [first.session_id.as_str()]);
    assert_eq!(queue["storedEntries"], 1);

    let health = console.ok("admin:health_check", "admin:health", json!({})).await;
    assert_eq!(health["dependencies"]["database"]["status"], "up", "{health}");
    // On a loaded machine the writer may lag past its one-second mark; the
    // report must then say why it is not healthy.
    let expected = if health["writer"]["status"] == "up" { "healthy" } else { "degraded" };
    assert_eq!(health["status"], expected, "{health}");

    // Subscribed: the pushes follow what happens.
    let _second = queued_customer(&app, "Ben", "normal").await;
    let update = console
        .wait_for("a stats:update with two waiting", |f| {
            f["event"] == "stats:update" && f["data"]["queue"]["length"] == 2
        })
        .await;
    assert_eq!(update["data"]["sessions"]["waiting"], 2);

    // An agent's socket has no admin figures.
    let alice = app.agent("alice", 1).await;
    let mut desk = app.agent_socket(&alice).await;
    for event in ["admin:get_stats", "admin:debug_queue", "admin:health_check"] {
        assert_eq!(desk.refused(event, json!({})).await, "forbidden", "{event}");
    }
    assert!(desk.pushes_within("stats:update", std::time::Duration::from_millis(200)).await.is_empty());
    // Nor a customer's, which does not know the events at all.
    let mut widget = first.socket;
    assert_eq!(widget.refused("admin:get_stats", json!({})).await, "unknown_event");
    // A malformed request is the client's mistake, with its own code.
    assert_eq!(console.refused("admin:get_stats", json!({ "subscribe": "yes" })).await, "invalid_payload");
}
