//! Email: queued in the outbox, sent over SMTP to a real SMTP server the
//! tests run (`smtp_sink`), retried when the server refuses.

use std::time::Duration;

use crate::helpers::{spawn_app_with, AppOptions, TestApp};
use crate::smtp_sink::SmtpSink;

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
