//! Who may do what, and which tokens are refused.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, WsClient, JWT_SECRET};

fn signed(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token")
}

fn claims(sub: uuid::Uuid, role: &str, audience: &str, expires_in: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": sub, "role": role, "name": "Mallory", "iss": "switchboard", "aud": audience, "iat": now, "nbf": now, "exp": now + expires_in })
}

#[tokio::test]
async fn customer_a_cannot_reach_customer_b_over_rest_or_websocket() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let bea = app.visitor("Bea").await;
    let (_, session) = app.post_as("/api/sessions", &ann.token, json!({})).await;
    let id = session["sessionId"].as_str().expect("id").to_owned();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let (_, file) = app.upload_as(&ann.token, &id, "a.png", png.clone()).await;
    let file_id = file["attachmentId"].as_str().expect("file").to_owned();
    let stored = app.settled_count("SELECT count(*) FROM chat_messages").await;

    let forbidden = [
        app.get_as(&format!("/api/sessions/{id}"), &bea.token).await,
        app.get_as(&format!("/api/sessions/{id}/messages"), &bea.token).await,
        app.get_as(&format!("/api/sessions/{id}/history"), &bea.token).await,
        app.post_as(&format!("/api/sessions/{id}/resume"), &bea.token, json!({})).await,
        app.post_as(
            &format!("/api/sessions/{id}/messages"),
            &bea.token,
            json!({ "content": "hi", "clientMsgId": "b" }),
        )
        .await,
        app.post_as(&format!("/api/sessions/{id}/read"), &bea.token, json!({ "upToSeq": 1 })).await,
        app.post_as(&format!("/api/sessions/{id}/resolve"), &bea.token, json!({})).await,
        app.post_as(&format!("/api/sessions/{id}/transfer"), &bea.token, json!({})).await,
        app.post_as(&format!("/api/sessions/{id}/rating"), &bea.token, json!({ "rating": 1 })).await,
        app.delete_as(&format!("/api/sessions/{id}/messages"), &bea.token).await,
        app.delete_as(&format!("/api/sessions/{id}"), &bea.token).await,
        app.upload_as(&bea.token, &id, "b.png", png).await,
        app.get_as(&format!("/api/attachments/{file_id}"), &bea.token).await,
        app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &bea.token).await,
    ];
    for (n, (status, body)) in forbidden.iter().enumerate() {
        assert_eq!(*status, StatusCode::FORBIDDEN, "request {n}: {body}");
        assert_eq!(body["error"], "forbidden", "request {n}");
    }
    let chat = app
        .http
        .post(format!("{}/api/chat/message", app.address))
        .bearer_auth(&bea.token)
        .header("X-Session-ID", &id)
        .json(&json!({ "message": "hi" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(chat.status(), StatusCode::FORBIDDEN);

    let mut intruder = app.customer_socket(&bea).await;
    assert_eq!(intruder.refused("customer:resume", json!({ "sessionId": id })).await, "forbidden");
    assert_eq!(app.count("SELECT count(*) FROM chat_messages").await, stored, "nothing was stored");
    let (status, _) = app.get_as(&format!("/api/sessions/{id}"), &ann.token).await;
    assert_eq!(status, StatusCode::OK, "the owner still can");
}

#[tokio::test]
async fn an_agent_cannot_act_on_another_agents_session_and_only_admins_reach_admin() {
    let app = spawn_app().await;
    let alice = app.agent("alice", 1).await;
    let bob = app.agent("bob", 1).await;
    let ann = app.visitor("Ann").await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let waiting = crate::queue::queued_customer(&app, "Cy", "normal").await;
    agent.push("session:assigned").await;
    let id = waiting.session_id;

    for (n, (status, body)) in [
        app.get_as(&format!("/api/sessions/{id}"), &bob.token).await,
        app.patch_as(&format!("/api/sessions/{id}"), &bob.token, json!({ "title": "mine now" })).await,
        app.post_as(
            &format!("/api/sessions/{id}/messages"),
            &bob.token,
            json!({ "content": "hi", "clientMsgId": "b" }),
        )
        .await,
        app.post_as(&format!("/api/sessions/{id}/resolve"), &bob.token, json!({})).await,
        app.post_as(&format!("/api/sessions/{id}/transfer"), &bob.token, json!({})).await,
        app.delete_as(&format!("/api/sessions/{id}"), &bob.token).await,
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(*status, StatusCode::FORBIDDEN, "request {n}: {body}");
    }
    let mut other = app.agent_socket(&bob).await;
    let code = other.refused("agent:close_session", json!({ "sessionId": id, "resolved": true })).await;
    assert_eq!(code, "forbidden");

    for token in [&ann.token, &alice.token] {
        for path in ["/api/admin/stats", "/api/admin/queue", "/api/admin/agents"] {
            let (status, body) = app.get_as(path, token).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{path}");
        }
        let (status, _) = app.post_as("/api/admin/cleanup", token, json!({ "olderThanDays": 1 })).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .post_as(
                "/api/admin/agents",
                token,
                json!({ "username": "x", "password": "longenough", "displayName": "X" }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = app.get_as("/api/admin/stats", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_expired_unsigned_and_misaddressed_tokens_are_refused() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let now_valid = signed(claims(ann.user_id, "customer", "switchboard:customer", 600), JWT_SECRET);
    let (status, _) = app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &now_valid).await;
    assert_eq!(status, StatusCode::OK, "a well-made token works");

    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(claims(ann.user_id, "customer", "switchboard:customer", 600).to_string());
    let refused = [
        ("expired", signed(claims(ann.user_id, "customer", "switchboard:customer", -600), JWT_SECRET)),
        (
            "wrong signature",
            signed(claims(ann.user_id, "customer", "switchboard:customer", 600), "another-secret-another-secret-12345"),
        ),
        ("alg none", format!("{header}.{body}.")),
        ("wrong audience", signed(claims(ann.user_id, "customer", "switchboard:agent", 600), JWT_SECRET)),
        (
            "a customer claiming to be an admin",
            signed(claims(ann.user_id, "admin", "switchboard:admin", 600), JWT_SECRET),
        ),
        (
            "wrong issuer",
            signed(
                json!({ "sub": ann.user_id, "role": "customer", "name": "x", "iss": "elsewhere", "aud": "switchboard:customer", "iat": 0, "nbf": 0, "exp": chrono::Utc::now().timestamp() + 600 }),
                JWT_SECRET,
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in refused {
        let (status, body) = app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "unauthorized", "{what}");
        match WsClient::connect(&app.ws_url("/ws/customer", &token)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{what}")
            }
            other => panic!("{what}: the socket was not refused: {:?}", other.err()),
        }
    }
    match WsClient::connect(&app.ws_url("/ws/agent", &ann.token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("a customer token opened the agent socket: {:?}", other.err()),
    }
}

#[tokio::test]
async fn tokens_refresh_visitors_return_and_host_sites_can_mint_customer_tokens() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let (status, fresh) = app.post_as("/auth/refresh", &ann.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh["userId"], ann.user_id.to_string());
    assert_eq!(fresh["role"], "customer");
    let (status, _) =
        app.get_as(&format!("/api/users/{}/sessions", ann.user_id), fresh["token"].as_str().expect("token")).await;
    assert_eq!(status, StatusCode::OK);

    let returning = app
        .http
        .post(format!("{}/api/auth/visitor", app.address))
        .bearer_auth(&ann.token)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    let returning: serde_json::Value = returning.json().await.expect("json");
    assert_eq!(returning["userId"], ann.user_id.to_string(), "the same visitor");
    assert_eq!(returning["name"], "Ann");
    let (_, stranger) = (StatusCode::OK, app.visitor("Other").await);
    assert_ne!(stranger.user_id, ann.user_id);

    // A host website signs a token for its own user with the shared secret.
    let their_user = uuid::Uuid::new_v4();
    let minted = signed(
        json!({ "sub": their_user, "role": "customer", "name": "Dana from Shop", "iss": "switchboard", "aud": "switchboard:customer", "iat": 0, "nbf": 0, "exp": chrono::Utc::now().timestamp() + 600 }),
        JWT_SECRET,
    );
    let mut socket =
        WsClient::connect(&app.ws_url("/ws/customer", &minted)).await.expect("the host's token opens the widget");
    let created = socket.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(created["session"]["customerId"], their_user.to_string());
    assert_eq!(created["session"]["customerName"], "Dana from Shop");

    // A refresh renews a token for as long as its issuer chose: a host's
    // half-hour token stays a half-hour host token, a visitor's is ours.
    let payload = |token: &str| -> serde_json::Value {
        let part = token.split('.').nth(1).expect("a JWT payload");
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64"))
            .expect("JSON claims")
    };
    let lifetime =
        |claims: &serde_json::Value| claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    let host = app.host_customer("Vera", "high").await;
    let (status, renewed) = app.post_as("/auth/refresh", &host.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed = payload(renewed["token"].as_str().expect("token"));
    assert_eq!(lifetime(&renewed), 1800, "{renewed}");
    assert!(renewed.get("server_issued").is_none(), "{renewed}");
    assert_eq!(renewed["priority"], "high");
    let ours = payload(fresh["token"].as_str().expect("token"));
    assert_eq!(lifetime(&ours), 30 * 86_400);
    assert_eq!(ours["server_issued"], true);
}

#[tokio::test]
async fn wrong_passwords_are_limited_per_username_and_address() {
    let app = spawn_app_with(AppOptions::default().env("RATE_LIMIT_LOGINS_PER_MINUTE", "3")).await;
    app.agent("alice", 1).await; // signs in once, which costs nothing
    let wrong = json!({ "username": "alice", "password": "wrong-password" });
    let attempt = || app.post_json("/auth/login", &wrong);
    let statuses = [attempt().await.status(), attempt().await.status(), attempt().await.status()];
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED; 3]);
    let limited = attempt().await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: serde_json::Value = limited.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn sockets_and_cors_honour_allowed_origins() {
    let app = spawn_app_with(AppOptions::default().env("ALLOWED_ORIGINS", "https://shop.example")).await;
    let ann = app.visitor("Ann").await;
    let open_from = |origin: &'static str| {
        let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url("/ws/customer", &ann.token),
        )
        .expect("request");
        request.headers_mut().insert("origin", origin.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    assert!(open_from("https://shop.example").await.is_ok());
    match open_from("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("a foreign origin opened a socket: {:?}", other.err()),
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/sessions", app.address))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("sent");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://shop.example");
}

#[tokio::test]
async fn with_rs256_tokens_are_signed_by_the_key_file_and_hs256_look_alikes_are_refused() {
    let keys = std::env::temp_dir().join(format!("switchboard-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&keys).expect("key folder");
    let (private, public) = (keys.join("private.pem"), keys.join("public.pem"));
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&private)
        .status()
        .expect("openssl is installed");
    assert!(made.success());
    let exported = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl");
    assert!(exported.success());
    let app = spawn_app_with(
        AppOptions::default()
            .env("JWT_ALGORITHM", "RS256")
            .env("JWT_PRIVATE_KEY_FILE", private.to_string_lossy())
            .env("JWT_PUBLIC_KEY_FILE", public.to_string_lossy()),
    )
    .await;
    let ann = app.visitor("Ann").await;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(ann.token.split('.').next().expect("header"))
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(header["alg"], "RS256");
    let mut socket = app.customer_socket(&ann).await;
    socket.ok("customer:start_chat", "session:created", json!({})).await;

    // The public key is public: a token "signed" with it as an HS256 secret must not pass.
    let public_pem = std::fs::read_to_string(&public).expect("public key");
    let confused = signed(claims(ann.user_id, "customer", "switchboard:customer", 600), &public_pem);
    let (status, _) = app.get_as(&format!("/api/users/{}/sessions", ann.user_id), &confused).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(keys);
}

#[tokio::test]
async fn many_sign_ins_at_once_hash_on_a_small_pool_and_keep_memory_bounded() {
    let app = spawn_app_with(AppOptions::default().env("RATE_LIMIT_LOGINS_PER_MINUTE", "1000")).await;
    app.agent("alice", 1).await;
    let before = app.rss_kib();
    let app = &app;
    let attempts = futures_util::future::join_all((0..20).map(|n| async move {
        let password = if n % 2 == 0 { "correct-horse-battery" } else { "wrong-password-here" };
        app.post_json("/auth/login", &json!({ "username": "alice", "password": password })).await
    }))
    .await;
    let statuses: Vec<u16> = attempts.iter().map(|response| response.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|status| **status == 401).count(), 10, "{statuses:?}");
    let after = app.rss_kib();
    eprintln!("server RSS {before} KiB before twenty sign-ins at once, {after} KiB after");
    // Each Argon2 hash holds about 19 MiB; two threads hash, so about 40 MiB at most stays.
    assert!(after.saturating_sub(before) < 80 * 1024, "RSS grew from {before} KiB to {after} KiB");
}
