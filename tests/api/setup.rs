//! A fresh install's first admin, created from the admin page, and the
//! Content-Security-Policy the pages are served with.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Answer, TestApp, TestDb};

const ADMINS: &str = "SELECT count(*) FROM users WHERE role = 'admin'";

fn first_admin(username: &str) -> serde_json::Value {
    json!({ "username": username, "password": "a-long-password", "name": "Ola Admin" })
}

impl TestApp {
    /// The setup code the server printed in its log, as the person installing reads it.
    fn setup_code(&self) -> String {
        let log = self.log();
        let (_, after) = log.split_once("enter the setup code ").expect("a setup code in the log");
        after.split_whitespace().next().unwrap_or_default().to_owned()
    }

    /// A POST to the setup endpoint as the admin page on this server sends
    /// it, with the setup code from the log unless `body` brings its own.
    async fn post_setup(&self, body: &serde_json::Value, origin: Option<&str>) -> Answer {
        let mut body = body.clone();
        if body.get("setupCode").is_none() {
            body["setupCode"] = json!(self.setup_code());
        }
        let mut request = self.http.post(format!("{}/api/setup/admin", self.address)).json(&body);
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        let response = request.send().await.expect("sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn needs_admin(&self) -> bool {
        let response = self.get("/api/setup").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("JSON");
        body["needsAdmin"].as_bool().expect("needsAdmin is a boolean")
    }
}

#[tokio::test]
async fn the_first_admin_is_created_from_the_admin_page_once_and_only_from_this_server() {
    let app = spawn_app().await;
    let own_origin = app.address.clone();
    let other_scheme = own_origin.replace("http://", "https://");
    assert!(app.needs_admin().await, "a fresh install needs its first admin");
    assert!(app.log().contains("no admin yet: open /admin and enter the setup code"), "the start-up log says so");

    // A page on another site, or a client that sends no Origin, cannot create it.
    for origin in [None, Some("http://shop.example"), Some("null"), Some(&other_scheme)] {
        let (status, body) = app.post_setup(&first_admin("ola"), origin).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{origin:?}: {body}");
    }
    // Nor can anyone who has not read the log, such as a page that rebinds
    // its own host name to this server (its Host and Origin then agree).
    let mut without_code = first_admin("ola");
    without_code["setupCode"] = json!("0123456789abcdef");
    let (status, body) = app.post_setup(&without_code, Some(&own_origin)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let port = own_origin.rsplit(':').next().unwrap_or_default();
    let rebound = app
        .http
        .post(format!("{}/api/setup/admin", app.address))
        .header(reqwest::header::HOST, format!("evil.example:{port}"))
        .header(reqwest::header::ORIGIN, format!("http://evil.example:{port}"))
        .json(&without_code)
        .send()
        .await
        .expect("sent");
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    // The same rules as any agent account.
    for (bad, field) in [
        (json!({ "username": "has space", "password": "a-long-password", "name": "Ola" }), "username"),
        (json!({ "username": "ola", "password": "short", "name": "Ola" }), "password"),
        (json!({ "username": "ola", "password": "a-long-password", "name": "Ola\u{7}" }), "name"),
    ] {
        let (status, body) = app.post_setup(&bad, Some(&own_origin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].as_str().is_some_and(|message| message.starts_with(field)), "{body}");
    }
    assert_eq!(app.count(ADMINS).await, 0);

    let (status, created) = app.post_setup(&first_admin("ola"), Some(&own_origin)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((created["role"].as_str(), created["name"].as_str()), (Some("admin"), Some("Ola Admin")));
    let token = created["token"].as_str().expect("a token");
    let (status, stats) = app.get_as("/api/admin/stats", token).await;
    assert_eq!(status, StatusCode::OK, "the new admin's token opens the admin API: {stats}");
    assert!(!app.needs_admin().await);

    // The answer is the one a sign-in gives, field for field.
    let signed_in = app
        .post_json("/auth/login", &json!({ "username": "ola", "password": "a-long-password" }))
        .await
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    let fields = |value: &serde_json::Value| value.as_object().map(|o| o.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(fields(&created), fields(&signed_in));
    assert_eq!(created["userId"], signed_in["userId"]);

    let (status, body) = app.post_setup(&first_admin("mallory"), Some(&own_origin)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("already_set_up")), "{body}");
    assert_eq!(app.count(ADMINS).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM users WHERE username = 'mallory'").await, 0);
}

#[tokio::test]
async fn an_admin_added_on_the_command_line_ends_the_setup() {
    let app = spawn_app().await;
    app.staff("root", "admin", 1).await;
    assert!(!app.needs_admin().await);
    let (status, body) = app.post_setup(&first_admin("ola"), Some(&app.address)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("already_set_up")), "{body}");
}

#[tokio::test]
async fn requests_racing_to_be_the_first_admin_create_exactly_one() {
    const RACERS: usize = 8;
    let app = &spawn_app().await;
    let answers = futures_util::future::join_all(
        (0..RACERS)
            .map(|n| async move { app.post_setup(&first_admin(&format!("racer{n}")), Some(&app.address)).await }),
    )
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::CREATED).count(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
        assert_eq!((*status, body["error"].as_str()), (StatusCode::CONFLICT, Some("already_set_up")), "{body}");
    }
    assert_eq!(app.count(ADMINS).await, 1);
}

#[tokio::test]
async fn the_pages_are_served_with_a_strict_content_security_policy_and_files_keep_their_sandbox() {
    let app = spawn_app().await;
    for path in ["/", "/agent", "/admin", "/docs/"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_owned();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.split(';').any(|part| part.trim() == directive),
                "{path}: {directive} missing from {policy}"
            );
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
    }

    // A customer's file keeps its own, stricter policy: the pages' one does not replace it.
    let ann = app.visitor("Ann").await;
    let (_, session) = app.post_as("/api/sessions", &ann.token, json!({})).await;
    let session_id = session["sessionId"].as_str().expect("a session id");
    let (status, file) = app.upload_as(&ann.token, session_id, "note.txt", b"just words".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let attachment = file["attachmentId"].as_str().expect("an attachment id");
    let fetched = app.fetch_attachment(attachment, &ann.token).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    let policies: Vec<_> = fetched.headers().get_all("content-security-policy").iter().collect();
    assert_eq!(policies, ["sandbox"]);
}

#[tokio::test]
async fn a_second_setup_waits_for_the_first_and_then_finds_its_admin() {
    use diesel_async::AsyncConnection;
    use switchboard::db::{models::NewUser, queries::users::insert_first_admin};

    // Two transactions overlapping for certain: the first has created its
    // admin and not yet committed when the second asks. Without the lock the
    // second would not see the uncommitted row and would create another.
    let db = TestDb::migrated().await;
    let timeout = std::time::Duration::from_secs(5);
    let pool = switchboard::db::pool(&db.url, 2, timeout, timeout);
    let (mut first, mut second) = (pool.get().await.expect("a connection"), pool.get().await.expect("a connection"));
    let admin = |username: &'static str| NewUser {
        username,
        display_name: username,
        email: None,
        role: switchboard::domain::Role::Admin,
        password_hash: None,
        max_concurrent_chats: 1,
    };
    let (created, release) = (tokio::sync::oneshot::channel::<()>(), tokio::sync::oneshot::channel::<()>());
    let ((created_tx, created_rx), (release_tx, release_rx)) = (created, release);
    let holder = first.transaction(async move |conn| {
        let admin = insert_first_admin(conn, &admin("first")).await?;
        let _ = created_tx.send(());
        let _ = release_rx.await;
        diesel::QueryResult::Ok(admin)
    });
    let latecomer = async {
        let _ = created_rx.await;
        second.transaction(async |conn| insert_first_admin(conn, &admin("second")).await).await
    };
    let releaser = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = release_tx.send(());
    };
    let (held, late, ()) = tokio::join!(holder, latecomer, releaser);
    assert_eq!(held.expect("the first commits").map(|user| user.username), Some("first".to_owned()));
    assert!(late.expect("the second finishes").is_none(), "the second found the first one's admin");
    let admins: i64 = db.client().await.query_one(ADMINS, &[]).await.expect("count").get(0);
    assert_eq!(admins, 1);
}
