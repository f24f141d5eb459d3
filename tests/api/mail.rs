//! Email: queued in the outbox, sent over SMTP to a real SMTP server the
//! tests run (`smtp_sink`), retried when the server refuses.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::abuse::png;
use crate::helpers::{spawn_app, spawn_app_with, AppOptions, Person, TestApp, TestCluster};
use crate::resume::{assigned_chat, customer_token, Chat};
use crate::smtp_sink::{Refusal, SmtpSink};

/// How long a test waits for an email.
const MAIL_TIMEOUT: Duration = Duration::from_secs(20);

fn mail_options(sink: &SmtpSink) -> AppOptions {
    AppOptions::default()
        .env("SMTP_URL", sink.url())
        .env("MAIL_FROM", "Acme Support <support@acme.example>")
        .env("MAIL_RETRY_BASE_MS", "200")
        .env("MAIL_POLL_MS", "300")
}

/// Queues an email as another node (or the offline replies) would: a row in the outbox.
async fn queue_directly(app: &TestApp, to: &str, subject: &str) {
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO email_outbox (kind, to_address, subject, text_body, html_body)
             VALUES ('test', $1, $2, 'plain words', '<p>html words</p>')",
            &[&to, &subject],
        )
        .await
        .expect("queue an email");
}

#[tokio::test]
async fn an_email_queued_in_the_outbox_reaches_the_smtp_server_with_both_parts() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(mail_options(&sink)).await;

    queue_directly(&app, "reader@example.com", "Queued elsewhere").await;

    let mail = sink.wait_for(|mail| mail.subject == "Queued elsewhere", MAIL_TIMEOUT).await;
    assert_eq!(mail.to, vec!["reader@example.com".to_owned()]);
    assert_eq!(mail.from, "support@acme.example");
    assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
    assert_eq!(mail.text.trim(), "plain words");
    assert!(mail.html.contains("<p>html words</p>"), "{}", mail.html);
    let sent = app.count("SELECT count(*) FROM email_outbox WHERE status = 'sent' AND attempts = 1").await;
    assert_eq!(sent, 1);
}

/// A visitor who gave the widget their email address.
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

fn transcript_path(session_id: &str) -> String {
    format!("/api/sessions/{session_id}/transcript")
}

/// What the email's text part shows for a message: who, then the words indented.
fn text_entry(message: &serde_json::Value) -> String {
    let content = message["content"].as_str().expect("content");
    let kind = message["sender"].as_str().expect("sender");
    let who = match (kind, message["senderName"].as_str()) {
        ("system", _) => "Notice".to_owned(),
        (kind, Some(name)) => format!("{name} ({kind})"),
        (kind, None) => kind.to_owned(),
    };
    let words: Vec<String> = content.lines().map(|line| format!("  {line}")).collect();
    format!("{who}:\n{}", words.join("\n"))
}

/// Text as an HTML page must show it: markup characters as entities.
fn escaped(content: &str) -> String {
    content.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Asserts that each of `pieces` appears in `document`, in this order.
fn assert_in_order(document: &str, pieces: &[String], part: &str) {
    let mut from = 0;
    for piece in pieces {
        match document[from..].find(piece.as_str()) {
            Some(at) => from += at + piece.len(),
            None => panic!("the {part} part lacks, or has out of order, {piece:?}:\n{document}"),
        }
    }
}

/// The outbox row of an email, once `done` says it has settled.
async fn outbox_row(app: &TestApp, email_id: &str, done: impl Fn(&str) -> bool) -> (String, i32, Option<String>) {
    let id: uuid::Uuid = email_id.parse().expect("uuid");
    let client = app.db.client().await;
    let deadline = tokio::time::Instant::now() + MAIL_TIMEOUT;
    loop {
        let row = client
            .query_one("SELECT status, attempts, last_error FROM email_outbox WHERE id = $1", &[&id])
            .await
            .expect("the outbox row");
        let status: String = row.get(0);
        if done(&status) || tokio::time::Instant::now() > deadline {
            return (status, row.get(1), row.get(2));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const NOTE: &str = "PRIVATE-7731 refund approved by finance, do not tell";
const MARKUP: &str = "<script>alert('x')</script> & <b>bold</b> \"quoted\"";

#[tokio::test]
async fn a_transcript_holds_every_message_the_customer_saw_in_order_and_never_a_private_note() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(mail_options(&sink)).await;
    let Chat { mut customer, mut agent, session_id, ann, .. } = assigned_chat(&app).await;
    let token = customer_token(&app, &ann).await;

    // The bot's greeting, the queue's and the joining notices are already there.
    let said = json!({ "sessionId": session_id, "content": MARKUP, "clientMsgId": "c1" });
    customer.ok("customer:send_message", "message:sent", said).await;
    let reply = json!({ "sessionId": session_id, "content": "Hi Ann,\nlet me check that.", "clientMsgId": "a1" });
    agent.ok("agent:send_message", "message:sent", reply).await;
    agent
        .ok("agent:send_note", "message:sent", json!({ "sessionId": session_id, "content": NOTE, "clientMsgId": "n1" }))
        .await;
    let (status, file) = app.upload_as(&token, &session_id, "receipt.png", png()).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let with_file = json!({ "content": "my receipt", "clientMsgId": "f1", "attachments": [file["attachmentId"]] });
    let (status, sent) = app.post_as(&format!("/api/sessions/{session_id}/messages"), &token, with_file).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    agent.ok("agent:close_session", "session:closed", json!({ "sessionId": session_id, "resolved": true })).await;
    customer.push("session:closed").await;
    let stored = format!("SELECT count(*) FROM chat_messages WHERE session_id = '{session_id}'");
    app.settled_count(&stored).await;

    // The customer asks for it at the end of the chat.
    let (status, queued) =
        app.post_as(&transcript_path(&session_id), &token, json!({ "email": "ann@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!((queued["status"].as_str(), queued["to"].as_str()), (Some("queued"), Some("ann@example.com")));

    let mail = sink.wait_for(|mail| mail.to == ["ann@example.com"], MAIL_TIMEOUT).await;
    assert_eq!(mail.subject, "Your conversation with Acme Support");
    assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
    let text = mail.text.replace("\r\n", "\n");
    let html = mail.html.replace("\r\n", "\n");

    // Every message the customer's own history shows, in the same order, in both parts.
    let (_, history) = app.get_as(&format!("/api/sessions/{session_id}/history?limit=200"), &token).await;
    let shown = history["messages"].as_array().expect("messages");
    let senders: std::collections::HashSet<&str> = shown.iter().filter_map(|m| m["sender"].as_str()).collect();
    for kind in ["customer", "bot", "agent", "system"] {
        assert!(senders.contains(kind), "the chat has no {kind} message to check: {history}");
    }
    assert_in_order(&text, &shown.iter().map(text_entry).collect::<Vec<_>>(), "text");
    let html_pieces: Vec<String> = shown.iter().map(|m| escaped(m["content"].as_str().expect("content"))).collect();
    assert_in_order(&html, &html_pieces, "HTML");
    assert!(text.contains("  my receipt\n  Attachment: receipt.png"), "{text}");
    assert!(html.contains("Attachment: receipt.png"), "{html}");

    // Markup a customer typed is shown as text, never run.
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>bold"), "{html}");
    assert!(text.contains(MARKUP), "{text}");

    // The private note is in neither part, nor anywhere in the message.
    for (part, body) in [("text", &text), ("HTML", &html), ("raw", &mail.raw)] {
        assert!(!body.contains("PRIVATE-7731"), "the note leaked into the {part} part");
        assert!(!body.contains("refund approved"), "the note leaked into the {part} part");
    }

    // Admins see it went out at the first attempt.
    let email_id = queued["emailId"].as_str().expect("emailId");
    assert_eq!(outbox_row(&app, email_id, |status| status == "sent").await.0, "sent");
    let admin = app.staff("root", "admin", 1).await;
    let (status, emails) = app.get_as("/api/admin/emails", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{emails}");
    let row = &emails.as_array().expect("rows")[0];
    assert_eq!(row["id"], email_id);
    assert_eq!((row["kind"].as_str(), row["status"].as_str()), (Some("transcript"), Some("sent")));
    assert_eq!((row["attempts"].as_i64(), row["sessionId"].as_str()), (Some(1), Some(session_id.as_str())));
    let (status, _) = app.get_as("/api/admin/emails", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_email_the_smtp_server_refuses_for_now_is_retried_and_one_refused_for_good_is_marked_failed() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(mail_options(&sink)).await;
    let Chat { session_id, alice, .. } = assigned_chat(&app).await;

    // The agent sends the transcript; the server answers 451 the first time.
    sink.refuse_next(1, Refusal::Transient);
    let (status, queued) =
        app.post_as(&transcript_path(&session_id), &alice.token, json!({ "email": "ann@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let mail = sink.wait_for(|mail| mail.to == ["ann@example.com"], MAIL_TIMEOUT).await;
    assert!(mail.text.contains("Alice joined the chat."), "{}", mail.text);
    assert_eq!(sink.refused(), 1);
    let email_id = queued["emailId"].as_str().expect("emailId");
    let (status, attempts, last_error) = outbox_row(&app, email_id, |status| status == "sent").await;
    assert_eq!((status.as_str(), attempts), ("sent", 2));
    assert!(last_error.as_deref().is_some_and(|error| error.contains("451")), "{last_error:?}");
    assert_eq!(sink.received().len(), 1, "sent once");

    // A 554 is final: no retry, and admins see why.
    sink.refuse_next(1, Refusal::Permanent);
    let admin = app.staff("root", "admin", 1).await;
    let (status, queued) =
        app.post_as(&transcript_path(&session_id), &admin.token, json!({ "email": "nobody@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let email_id = queued["emailId"].as_str().expect("emailId");
    let (status, attempts, last_error) = outbox_row(&app, email_id, |status| status == "failed").await;
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert!(last_error.as_deref().is_some_and(|error| error.contains("554")), "{last_error:?}");
    let (_, failed) = app.get_as("/api/admin/emails?status=failed", &admin.token).await;
    let rows = failed.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{failed}");
    assert_eq!((rows[0]["id"].as_str(), rows[0]["toAddress"].as_str()), (Some(email_id), Some("nobody@example.com")));
    assert!(rows[0]["lastError"].as_str().is_some_and(|error| error.contains("554")), "{failed}");
}

#[tokio::test]
async fn a_transcript_goes_only_to_a_real_address_for_someone_in_the_chat_and_a_few_times_at_most() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(mail_options(&sink).env("MAIL_TRANSCRIPTS_PER_CHAT", "2")).await;
    let bea = visitor_with_email(&app, "Bea", "bea@example.com").await;
    let mut widget = app.customer_socket(&bea).await;
    let session_id = widget.start_chat().await;
    let path = transcript_path(&session_id);

    // Without an address, the one Bea gave the widget.
    let (status, queued) = app.post_as(&path, &bea.token, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["to"], "bea@example.com");
    sink.wait_for(|mail| mail.to == ["bea@example.com"], MAIL_TIMEOUT).await;

    // Not an address: a clear code, nothing queued.
    for bad in [
        "not-an-address",
        "a@b@c.example",
        "bea@",
        "@example.com",
        "bea example@x.com",
        "bea@example.com\r\nBcc: x@y.z",
    ] {
        let (status, body) = app.post_as(&path, &bea.token, json!({ "email": bad })).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_email")), "{bad}: {body}");
    }
    let long = format!("{}@example.com", "a".repeat(300));
    let (status, body) = app.post_as(&path, &bea.token, json!({ "email": long })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_email")), "{body}");
    let (status, body) = app.post_as(&path, &bea.token, json!({ "email": "bea@example.com", "cc": "x" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{body}");

    // Someone else's chat, or none.
    let cy = app.visitor("Cy").await;
    let (status, body) = app.post_as(&path, &cy.token, json!({ "email": "cy@example.com" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let bob = app.agent("bob", 1).await;
    let (status, body) = app.post_as(&path, &bob.token, json!({ "email": "bob@example.com" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let nowhere = transcript_path(&uuid::Uuid::new_v4().to_string());
    let (status, body) = app.post_as(&nowhere, &bea.token, json!({ "email": "bea@example.com" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("session_not_found")), "{body}");
    let (status, _) = app.post_as(&path, "not-a-token", json!({ "email": "bea@example.com" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A customer who gave no address must type one.
    let cy_chat = app.customer_socket(&cy).await.start_chat().await;
    let (status, body) = app.post_as(&transcript_path(&cy_chat), &cy.token, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_email")), "{body}");

    // Two per chat here (MAIL_TRANSCRIPTS_PER_CHAT), then a clear refusal.
    let (status, _) = app.post_as(&path, &bea.token, json!({ "email": "bea.other@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app.post_as(&path, &bea.token, json!({ "email": "bea.third@example.com" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("limit_reached")), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 2, "nothing refused was queued");
    drop(widget);
}

#[tokio::test]
async fn without_an_smtp_server_a_transcript_request_says_mail_is_unavailable() {
    let app = spawn_app().await;
    let bea = visitor_with_email(&app, "Bea", "bea@example.com").await;
    let session_id = app.customer_socket(&bea).await.start_chat().await;
    let (status, body) = app.post_as(&transcript_path(&session_id), &bea.token, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("mail_unavailable")), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 0);
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_does_not_slow_the_chat() {
    // Takes connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = silent.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            connections.push(connection);
        }
    });
    let app = spawn_app_with(
        AppOptions::default()
            .env("SMTP_URL", format!("smtp://{address}"))
            .env("MAIL_FROM", "Acme Support <support@acme.example>")
            .env("MAIL_SMTP_TIMEOUT_MS", "60000"),
    )
    .await;
    let Chat { mut customer, mut agent, session_id, ann, .. } = assigned_chat(&app).await;
    let token = customer_token(&app, &ann).await;

    let asked = std::time::Instant::now();
    let (status, queued) =
        app.post_as(&transcript_path(&session_id), &token, json!({ "email": "ann@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert!(asked.elapsed() < Duration::from_secs(2), "queueing took {:?}", asked.elapsed());
    // The mailer is now stuck in its SMTP conversation.
    let email_id = queued["emailId"].as_str().expect("emailId");
    let deadline = tokio::time::Instant::now() + MAIL_TIMEOUT;
    while app.count(&format!("SELECT attempts::bigint FROM email_outbox WHERE id = '{email_id}'")).await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the mailer never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut slowest = Duration::ZERO;
    for n in 0..10 {
        let started = std::time::Instant::now();
        let words = format!("still here {n}");
        let said = json!({ "sessionId": session_id, "content": words, "clientMsgId": format!("c{n}") });
        customer.ok("customer:send_message", "message:sent", said).await;
        agent.wait_for("the customer's message", |frame| frame["data"]["content"] == words.as_str()).await;
        let answer = format!("answer {n}");
        let reply = json!({ "sessionId": session_id, "content": answer, "clientMsgId": format!("a{n}") });
        agent.ok("agent:send_message", "message:sent", reply).await;
        customer.wait_for("the agent's answer", |frame| frame["data"]["content"] == answer.as_str()).await;
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "a round trip took {slowest:?} with SMTP hanging");
    let (status, _, _) = outbox_row(&app, email_id, |_| true).await;
    assert_eq!(status, "queued", "still waiting on the silent server, not lost");
    held.abort();
}

#[tokio::test]
async fn nodes_sharing_the_outbox_send_each_email_exactly_once() {
    let sink = SmtpSink::start().await;
    let cluster = TestCluster::start_with(3, mail_options(&sink)).await;
    // All due at the same moment, so every node's mailer reaches for them together.
    cluster
        .node(0)
        .db
        .client()
        .await
        .execute(
            "INSERT INTO email_outbox (kind, to_address, subject, text_body, html_body)
             SELECT 'test', 'reader' || n || '@example.com', 'Shared ' || n, 'words', '<p>words</p>'
             FROM generate_series(1, 60) AS n",
            &[],
        )
        .await
        .expect("queue the emails");

    let deadline = tokio::time::Instant::now() + MAIL_TIMEOUT;
    while sink.received().len() < 60 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a second copy to arrive, were any email claimed twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let subjects: Vec<String> = sink.received().into_iter().map(|mail| mail.subject).collect();
    let distinct: std::collections::HashSet<&String> = subjects.iter().collect();
    assert_eq!((subjects.len(), distinct.len()), (60, 60), "each email once: {subjects:?}");
    let node = cluster.node(0);
    assert_eq!(node.count("SELECT count(*) FROM email_outbox WHERE status = 'sent' AND attempts = 1").await, 60);
    let sent_by: Vec<usize> =
        cluster.nodes.iter().map(|node| node.log().matches("(test) sent after 1 attempt").count()).collect();
    assert_eq!(sent_by.iter().sum::<usize>(), 60, "sent by node: {sent_by:?}");
}

#[tokio::test]
async fn a_customer_can_have_only_so_many_transcripts_an_hour_over_all_their_chats() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(mail_options(&sink).env("MAIL_TRANSCRIPTS_PER_CUSTOMER_PER_HOUR", "3")).await;
    let dan = visitor_with_email(&app, "Dan", "dan@example.com").await;
    let mut widget = app.customer_socket(&dan).await;
    let first = widget.start_chat().await;
    let second = widget.start_chat().await;
    for chat in [&first, &first, &second] {
        let (status, body) = app.post_as(&transcript_path(chat), &dan.token, json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // A new chat does not start the count again.
    let third = widget.start_chat().await;
    let response = app
        .http
        .post(format!("{}{}", app.address, transcript_path(&third)))
        .bearer_auth(&dan.token)
        .json(&json!({ "email": "someone.else@example.com" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").and_then(|value| value.to_str().ok()), Some("3600"));
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "rate_limited");

    // Staff are not counted against it.
    let admin = app.staff("root", "admin", 1).await;
    let (status, body) =
        app.post_as(&transcript_path(&third), &admin.token, json!({ "email": "dan@example.com" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 4);
}

/// An SMTP server that takes the connection and then says nothing, ever
/// (not even its greeting): it holds every connection open until the test ends.
async fn silent_smtp_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let address = listener.local_addr().expect("its address");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (format!("smtp://{address}"), held)
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_fails_the_attempt_after_the_timeout() {
    let (url, held) = silent_smtp_server().await;
    let app = spawn_app_with(
        AppOptions::default()
            .env("SMTP_URL", url)
            .env("MAIL_FROM", "Acme Support <support@acme.example>")
            .env("MAIL_RETRY_BASE_MS", "200")
            .env("MAIL_POLL_MS", "300")
            .env("MAIL_SMTP_TIMEOUT_MS", "500")
            .env("MAIL_MAX_ATTEMPTS", "2"),
    )
    .await;

    queue_directly(&app, "reader@example.com", "Into the void").await;

    // Two attempts of at most 500 ms each, 200 ms apart: failed well within 15 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let failed = app
            .count(
                "SELECT count(*) FROM email_outbox WHERE status = 'failed' AND attempts = 2 AND last_error IS NOT NULL",
            )
            .await;
        if failed == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the email is still not failed after 15 s: the mailer waits for the silent server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    held.abort();
}
