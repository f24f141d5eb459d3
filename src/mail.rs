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
