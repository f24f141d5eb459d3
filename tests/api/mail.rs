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
