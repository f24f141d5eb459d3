//! The mailer sends the outbox's due emails over SMTP. Every node with
//! `SMTP_URL` runs one; they share the outbox through
//! `FOR UPDATE SKIP LOCKED`, so each email is claimed by one of them per
//! attempt. A round of sending runs beside the mailbox (spawned, never
//! waited on), so a slow or dead SMTP server holds up nothing but email.

use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};

use crate::db::models::outbox::OutboxEmail;
use crate::db::{self, queries, Pool};
use crate::mail::MailSettings;

/// Emails claimed per round; a full round is followed by another at once.
const BATCH: i64 = 20;

/// The longest wait between two tries of one email.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(6 * 3600);

/// An email was queued: look for due emails now rather than at the next poll.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Nudge;

pub struct Mailer {
    pool: Pool,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    max_attempts: u32,
    retry_base: Duration,
    poll_interval: Duration,
    /// Longest one SMTP conversation may take, greeting to the end of the message.
    smtp_timeout: Duration,
    /// How long a claimed email is kept from other nodes: well past one SMTP conversation.
    lease: Duration,
    /// A round is running.
    sending: bool,
    /// Nudged during a round: run another when it ends.
    nudged: bool,
}

impl Mailer {
    /// The mailer for `settings`, or `None` without `SMTP_URL`; an
    /// unusable URL is an error.
    pub fn new(pool: Pool, settings: &MailSettings) -> Result<Option<Self>, String> {
        let Some(url) = &settings.smtp_url else { return Ok(None) };
        // Not the URL itself in the error: it may hold a password.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("SMTP_URL is not a usable SMTP URL: {error}"))?
            .timeout(Some(settings.smtp_timeout))
            .build();
        Ok(Some(Mailer {
            pool,
            transport,
            from: settings.from.clone(),
            max_attempts: settings.max_attempts,
            retry_base: settings.retry_base,
            poll_interval: settings.poll_interval,
            smtp_timeout: settings.smtp_timeout,
            lease: settings.smtp_timeout * 2 + Duration::from_secs(30),
            sending: false,
            nudged: false,
        }))
    }

    /// Starts a round unless one is running (then it is run again after).
    fn send_due(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            self.nudged = true;
            return;
        }
        self.sending = true;
        let round = Round {
            pool: self.pool.clone(),
            transport: self.transport.clone(),
            from: self.from.clone(),
            max_attempts: self.max_attempts,
            retry_base: self.retry_base,
            smtp_timeout: self.smtp_timeout,
            lease: self.lease,
        };
        ctx.spawn(round.run().into_actor(self).map(|outcome, act, ctx| {
            act.sending = false;
            let again = match outcome {
                Ok(done) => {
                    if let Some(delay) = done.next_retry {
                        ctx.run_later(delay, |act, ctx| act.send_due(ctx));
                    }
                    done.claimed >= BATCH
                }
                Err(error) => {
                    log::warn!("outbox not read this round: {error}");
                    false
                }
            };
            if again || std::mem::take(&mut act.nudged) {
                act.send_due(ctx);
            }
        }));
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!("mailer started: sending queued email every {:?} at least", self.poll_interval);
        self.send_due(ctx);
        ctx.run_interval(self.poll_interval, |act, ctx| act.send_due(ctx));
    }
}

impl Handler<Nudge> for Mailer {
    type Result = ();

    fn handle(&mut self, _: Nudge, ctx: &mut Self::Context) {
        self.send_due(ctx);
    }
}

/// One round: claim the due emails, send them side by side, record each outcome.
struct Round {
    pool: Pool,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    max_attempts: u32,
    retry_base: Duration,
    smtp_timeout: Duration,
    lease: Duration,
}

struct RoundDone {
    claimed: i64,
    /// The soonest retry this round scheduled.
    next_retry: Option<Duration>,
}

/// What became of one attempt.
enum Attempt {
    Sent,
    /// Worth another try (the server was away, busy, or answered 4xx).
    Transient(String),
    /// Never worth another (5xx, an address lettre cannot write).
    Permanent(String),
}

impl Round {
    async fn run(self) -> Result<RoundDone, crate::error::AppError> {
        let lease = self.lease;
        let claimed = db::run(&self.pool, async |conn| queries::outbox::claim_due(conn, BATCH, lease).await).await?;
        let count = claimed.len() as i64;
        let attempts = claimed.iter().map(|email| self.attempt(email));
        let outcomes = futures_util::future::join_all(attempts).await;
        let mut next_retry = None::<Duration>;
        for (email, attempt) in claimed.iter().zip(outcomes) {
            if let Some(delay) = self.record(email, attempt).await {
                next_retry = Some(next_retry.map_or(delay, |soonest| soonest.min(delay)));
            }
        }
        Ok(RoundDone { claimed: count, next_retry })
    }

    async fn attempt(&self, email: &OutboxEmail) -> Attempt {
        let message = match self.message(email) {
            Ok(message) => message,
            Err(problem) => return Attempt::Permanent(problem),
        };
        // lettre's own timeout covers only connecting: a server that takes
        // the connection and then says nothing would hold the round forever.
        match tokio::time::timeout(self.smtp_timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Attempt::Sent,
            Ok(Err(error)) if error.is_permanent() => Attempt::Permanent(error.to_string()),
            Ok(Err(error)) => Attempt::Transient(error.to_string()),
            Err(_) => Attempt::Transient(format!("the SMTP server did not finish within {:?}", self.smtp_timeout)),
        }
    }

    /// The email as MIME: a plain text and an HTML part, the reader's pick.
    fn message(&self, email: &OutboxEmail) -> Result<Email, String> {
        let to: Mailbox = email.to_address.parse().map_err(|error| format!("bad recipient: {error}"))?;
        Email::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(email.text_body.clone(), email.html_body.clone()))
            .map_err(|error| format!("cannot write the email: {error}"))
    }

    /// Stores the outcome; returns the wait until a retry, if one is due.
    async fn record(&self, email: &OutboxEmail, attempt: Attempt) -> Option<Duration> {
        let id = email.id;
        let attempts = u32::try_from(email.attempts).unwrap_or(u32::MAX);
        let (result, retry) = match attempt {
            Attempt::Sent => {
                log::info!("email {id} ({}) sent after {attempts} attempt(s)", email.kind);
                (db::run(&self.pool, async |conn| queries::outbox::record_sent(conn, id).await).await, None)
            }
            Attempt::Transient(error) if attempts < self.max_attempts => {
                let delay = self.retry_delay(attempts);
                log::warn!("email {id} not sent (attempt {attempts}), retrying in {delay:?}: {error}");
                let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                let stored =
                    db::run(&self.pool, async |conn| queries::outbox::record_failure(conn, id, &error, Some(at)).await)
                        .await;
                (stored, Some(delay))
            }
            Attempt::Transient(error) | Attempt::Permanent(error) => {
                log::warn!("email {id} failed for good after {attempts} attempt(s): {error}");
                (
                    db::run(&self.pool, async |conn| queries::outbox::record_failure(conn, id, &error, None).await)
                        .await,
                    None,
                )
            }
        };
        if let Err(error) = result {
            // The claim's lease runs out and the email is tried again.
            log::warn!("outcome of email {id} not stored: {error}");
        }
        retry
    }

    /// `retry_base`, doubling with each attempt after the first, at most `MAX_RETRY_DELAY`.
    fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
    }
}
