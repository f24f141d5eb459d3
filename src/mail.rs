//! Email: the settings, the emails the server writes (transcripts; offline
//! replies reuse the same path) and queueing them. Queued emails live in
//! the `email_outbox` table; `actors::mailer` sends them over SMTP.

use std::time::Duration;

use actix::Addr;
use lettre::message::Mailbox;
use uuid::Uuid;

use crate::actors::mailer::{Mailer, Nudge};
use crate::db::models::outbox::NewEmail;
use crate::db::{self, queries};
use crate::error::{AppError, ErrorCode};

/// How email goes out; see the README's configuration table.
#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS,
    /// `?tls=opportunistic` for STARTTLS when offered) or `smtps://host:port`
    /// (TLS from the start); credentials may sit in the URL. `None`: emails
    /// are stored but this node sends none, and requests that exist only to
    /// send one answer `mail_unavailable`.
    pub smtp_url: Option<String>,
    /// The sender of every email; its display name names the company in subjects.
    pub from: Mailbox,
    /// Tries before an email is marked failed.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each further one.
    pub retry_base: Duration,
    /// How often each node looks for due emails (a fresh one is sent at once).
    pub poll_interval: Duration,
    /// Longest one SMTP conversation may take.
    pub smtp_timeout: Duration,
    /// Transcripts one chat may have sent, in all.
    pub transcripts_per_session: u32,
    /// Transcripts one customer may ask for in an hour, over all their chats.
    pub transcripts_per_customer_hour: u32,
}

impl std::fmt::Debug for MailSettings {
    // Written by hand: the SMTP URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp_url.is_some())
            .field("from", &self.from.to_string())
            .field("max_attempts", &self.max_attempts)
            .field("retry_base", &self.retry_base)
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    /// The name the customer knows the sender by: the display name of
    /// `MAIL_FROM`, else its domain.
    pub fn company(&self) -> String {
        match &self.from.name {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => self.from.email.domain().to_owned(),
        }
    }
}

/// The default sender when `MAIL_FROM` is not set (allowed only without `SMTP_URL`).
pub const DEFAULT_FROM: &str = "Support <support@localhost>";

/// Parses an address a person typed (`name@example.com`, no display name),
/// so nothing unsendable reaches the outbox.
pub fn parse_address(typed: &str) -> Result<lettre::Address, AppError> {
    let trimmed = typed.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_ADDRESS_LEN {
        return Err(AppError::new(ErrorCode::InvalidEmail, "give an email address like name@example.com"));
    }
    trimmed
        .parse::<lettre::Address>()
        .map_err(|_| AppError::new(ErrorCode::InvalidEmail, "that is not an email address like name@example.com"))
}

/// RFC 5321's limit on a forward path.
const MAX_ADDRESS_LEN: usize = 254;

/// Where queued emails are sent from on this node: the mailer, if `SMTP_URL` is set.
#[derive(Clone, Default)]
pub struct Outbox {
    mailer: Option<Addr<Mailer>>,
}

impl Outbox {
    pub fn new(mailer: Option<Addr<Mailer>>) -> Self {
        Outbox { mailer }
    }

    /// Does this node send email?
    pub fn sends(&self) -> bool {
        self.mailer.is_some()
    }

    /// Refuses with `mail_unavailable` when this node sends no email.
    pub fn require(&self) -> Result<(), AppError> {
        if self.sends() {
            Ok(())
        } else {
            Err(AppError::new(ErrorCode::MailUnavailable, "this server does not send email (no SMTP_URL)"))
        }
    }

    /// Stores `email` in the outbox and has the mailer send it at once.
    /// Without a mailer it stays queued until a node that has one picks it up.
    pub async fn queue(&self, pool: &db::Pool, email: &NewEmail) -> Result<Uuid, AppError> {
        let id = db::run(pool, async |conn| queries::outbox::enqueue(conn, email).await).await?;
        self.nudge();
        Ok(id)
    }

    /// Tells the mailer that an email was queued (after its insert committed).
    pub fn nudge(&self) {
        if let Some(mailer) = &self.mailer {
            mailer.do_send(Nudge);
        }
    }
}

/// An email's words, ready for the outbox: a subject, a plain text part and an HTML part.
#[derive(Debug, Clone)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Letter {
    /// A short letter: `body` as the text part, and escaped, line breaks
    /// kept, as the HTML part (offline replies use it).
    pub fn plain(company: &str, subject: impl Into<String>, body: &str) -> Letter {
        let subject = subject.into();
        let text = format!("{body}\n\n-- \n{company}\n");
        let html = page(
            &subject,
            &format!(
                "<div style=\"white-space:pre-wrap\">{}</div>\n<p style=\"color:#666\">{}</p>",
                html_escape::encode_text(body),
                html_escape::encode_text(company)
            ),
        );
        Letter { subject, text, html }
    }

    /// The outbox row that sends this letter to `to`.
    pub fn to(self, to: &lettre::Address, kind: &str, session_id: Option<Uuid>) -> NewEmail {
        NewEmail {
            kind: kind.to_owned(),
            session_id,
            to_address: to.to_string(),
            subject: self.subject,
            text_body: self.text,
            html_body: self.html,
        }
    }
}

/// The kind of a transcript email in the outbox.
pub const TRANSCRIPT: &str = "transcript";

/// Most messages a transcript holds; a longer chat's transcript says how many it leaves out.
pub const MAX_TRANSCRIPT_MESSAGES: i64 = 2_000;

/// A chat's messages as its customer sees them (never a private note),
/// oldest first, at most `MAX_TRANSCRIPT_MESSAGES`, and how many more there are.
pub async fn transcript_messages(
    conn: &mut db::PgConn,
    session_id: Uuid,
    bot_name: &str,
) -> diesel::QueryResult<(Vec<crate::protocol::server::MessageView>, i64)> {
    use queries::messages::{Audience, Window};
    let window = Window::AfterLimited { seq: 0, limit: MAX_TRANSCRIPT_MESSAGES };
    let shown = queries::messages::shown(conn, session_id, window, Audience::Customer).await?;
    let total = queries::messages::count(conn, session_id, Audience::Customer).await?;
    let views = shown
        .iter()
        .map(|row| crate::protocol::server::MessageView::shown(row, bot_name).for_role(crate::domain::Role::Customer))
        .collect::<Vec<_>>();
    let left_out = (total - views.len() as i64).max(0);
    Ok((views, left_out))
}

/// The transcript of a chat with `company`: every message given, in order,
/// with who wrote it and when, and the names of its files. `messages` must
/// be what the customer sees (see `transcript_messages`).
pub fn transcript(
    company: &str,
    started: chrono::DateTime<chrono::Utc>,
    messages: &[crate::protocol::server::MessageView],
    left_out: i64,
) -> Letter {
    use html_escape::encode_text;
    let subject = format!("Your conversation with {company}");
    let started = when(started);
    let mut text = format!("{subject}\nStarted {started}\n\n");
    let mut html = format!(
        "<h1 style=\"font-size:18px\">{}</h1>\n<p style=\"color:#666\">Started {}</p>\n",
        encode_text(&subject),
        encode_text(&started)
    );
    for message in messages {
        let who = author(message);
        let at = when(message.created_at);
        text.push_str(&format!("[{at}] {who}:\n{}\n", indent(&message.content)));
        html.push_str(&format!(
            "<div style=\"margin:12px 0\">\n<div style=\"color:#666;font-size:12px\">{} &middot; {}</div>\n\
             <div style=\"white-space:pre-wrap\">{}</div>\n",
            encode_text(&who),
            encode_text(&at),
            encode_text(&message.content)
        ));
        for file in &message.attachments {
            text.push_str(&format!("  Attachment: {}\n", file.file_name));
            html.push_str(&format!(
                "<div style=\"color:#444;font-size:13px\">Attachment: {}</div>\n",
                encode_text(&file.file_name)
            ));
        }
        text.push('\n');
        html.push_str("</div>\n");
    }
    if left_out > 0 {
        let note = format!("{left_out} later message(s) are not included.");
        text.push_str(&format!("{note}\n"));
        html.push_str(&format!("<p style=\"color:#666\">{}</p>\n", encode_text(&note)));
    }
    text.push_str(&format!("-- \n{company}\n"));
    html.push_str(&format!("<p style=\"color:#666\">{}</p>\n", encode_text(company)));
    Letter { html: page(&subject, &html), subject, text }
}

/// Who wrote a message, as the transcript names them: `Ada (agent)`,
/// `Notice` for the system's own lines.
fn author(message: &crate::protocol::server::MessageView) -> String {
    use crate::domain::SenderType;
    match (&message.sender, &message.sender_name) {
        (SenderType::System, _) => "Notice".to_owned(),
        (kind, Some(name)) if !name.trim().is_empty() => format!("{} ({kind})", name.trim()),
        (kind, _) => kind.to_string(),
    }
}

/// A time as the transcript shows it: in UTC, to the minute.
fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A message's lines, indented under its heading in the text part.
fn indent(content: &str) -> String {
    content.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}

/// An HTML document around `body` (already escaped).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;font-size:14px;color:#222\">\n{body}</body></html>\n",
        html_escape::encode_text(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SenderType;
    use crate::protocol::server::MessageView;

    fn message(seq: i64, sender: SenderType, name: Option<&str>, content: &str) -> MessageView {
        let stored = crate::db::models::ChatMessage {
            id: Uuid::new_v4(),
            session_id: Uuid::nil(),
            seq,
            client_msg_id: None,
            sender_type: sender,
            sender_id: None,
            content: content.to_owned(),
            message_type: "text".to_owned(),
            intent: None,
            entities: None,
            confidence: None,
            processing: None,
            created_at: chrono::Utc::now(),
            deleted_at: None,
        };
        MessageView::new(&stored, name.map(str::to_owned))
    }

    #[test]
    fn a_transcript_names_each_author_and_escapes_what_they_wrote() {
        let messages = [
            message(1, SenderType::Customer, Some("Sam"), "<script>alert(1)</script> & more"),
            message(2, SenderType::System, None, "Ada joined"),
            message(3, SenderType::Agent, Some("Ada"), "Hello\nSam"),
        ];
        let letter = transcript("Acme", chrono::Utc::now(), &messages, 0);
        assert_eq!(letter.subject, "Your conversation with Acme");
        assert!(letter.text.contains("Sam (customer):\n  <script>alert(1)</script> & more"), "{}", letter.text);
        assert!(letter.text.contains("Notice:\n  Ada joined"), "{}", letter.text);
        assert!(letter.text.contains("Ada (agent):\n  Hello\n  Sam"), "{}", letter.text);
        assert!(!letter.html.contains("<script>"), "{}", letter.html);
        assert!(letter.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), "{}", letter.html);
    }
}
