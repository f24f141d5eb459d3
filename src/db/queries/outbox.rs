//! The email outbox: queued emails, claimed by one node's mailer at a time.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::outbox::{NewEmail, OutboxEmail, OutboxEntry};
use crate::db::schema::email_outbox;
use crate::db::PgConn;
use crate::domain::EmailStatus;

/// Queues an email; the mailer of some node sends it. Returns its id.
pub async fn enqueue(conn: &mut PgConn, email: &NewEmail) -> QueryResult<Uuid> {
    diesel::insert_into(email_outbox::table).values(email).returning(email_outbox::id).get_result(conn).await
}

/// Claims up to `limit` due emails for one attempt each: counts the attempt
/// and moves the next one `lease` ahead, so no other node takes them while
/// this one sends, and a node that dies mid-send leaves them due again
/// after the lease. Rows another node is claiming right now are skipped,
/// never waited for.
pub async fn claim_due(conn: &mut PgConn, limit: i64, lease: std::time::Duration) -> QueryResult<Vec<OutboxEmail>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    diesel::sql_query(
        "WITH due AS (
             SELECT id FROM email_outbox
             WHERE status = 'queued' AND next_attempt_at <= now()
             ORDER BY next_attempt_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE email_outbox o
         SET attempts = o.attempts + 1,
             next_attempt_at = now() + make_interval(secs => $2 / 1000.0)
         FROM due
         WHERE o.id = due.id
         RETURNING o.id, o.kind, o.session_id, o.to_address, o.subject, o.text_body, o.html_body, o.attempts",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::BigInt, _>(lease_ms)
    .load(conn)
    .await
}

/// The SMTP server took the email. An earlier attempt's error stays, so
/// admins see why it took more than one.
pub async fn record_sent(conn: &mut PgConn, id: Uuid) -> QueryResult<()> {
    diesel::update(email_outbox::table.find(id))
        .set((email_outbox::status.eq(EmailStatus::Sent), email_outbox::sent_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(())
}

/// An attempt failed: try again at `retry_at`, or (`None`) give up.
pub async fn record_failure(
    conn: &mut PgConn,
    id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    let target = email_outbox::table.find(id);
    let error = Some(error.to_owned());
    match retry_at {
        Some(at) => {
            diesel::update(target)
                .set((email_outbox::last_error.eq(error), email_outbox::next_attempt_at.eq(at)))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(target)
                .set((email_outbox::last_error.eq(error), email_outbox::status.eq(EmailStatus::Failed)))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// How many emails of `kind` were queued for a session, whatever became of them.
pub async fn count_for_session(conn: &mut PgConn, session_id: Uuid, kind: &str) -> QueryResult<i64> {
    email_outbox::table
        .filter(email_outbox::session_id.eq(session_id))
        .filter(email_outbox::kind.eq(kind))
        .count()
        .get_result(conn)
        .await
}

/// The newest outbox rows, newest first, optionally of one status.
pub async fn recent(conn: &mut PgConn, status: Option<EmailStatus>, limit: i64) -> QueryResult<Vec<OutboxEntry>> {
    let mut query = email_outbox::table.select(OutboxEntry::as_select()).into_boxed();
    if let Some(status) = status {
        query = query.filter(email_outbox::status.eq(status));
    }
    query.order(email_outbox::created_at.desc()).limit(limit).load(conn).await
}

/// One outbox row as admins see it.
pub async fn entry(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<OutboxEntry>> {
    email_outbox::table.find(id).select(OutboxEntry::as_select()).first(conn).await.optional()
}

/// Bounds on how many emails of a kind may be queued.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// For the email's chat, in all.
    pub per_session: i64,
    /// For the chats of this customer together, in the last hour.
    pub per_customer_hour: Option<(Uuid, i64)>,
}

/// What `enqueue_within` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    Queued(Uuid),
    /// The chat has had its emails of this kind.
    SessionFull,
    /// The customer's chats have had their emails of this kind this hour.
    CustomerBusy,
}

/// Queues `email` unless a bound is reached. Run it in a transaction:
/// requests for one chat (and one customer) take turns, so two at once
/// cannot both pass a bound.
pub async fn enqueue_within(conn: &mut PgConn, email: &NewEmail, bounds: Bounds) -> QueryResult<Bounded> {
    if let Some((customer_id, limit)) = bounds.per_customer_hour {
        lock(conn, &format!("email_outbox:customer:{customer_id}:{}", email.kind)).await?;
        if count_for_customer_since(conn, customer_id, &email.kind, Utc::now() - chrono::Duration::hours(1)).await?
            >= limit
        {
            return Ok(Bounded::CustomerBusy);
        }
    }
    if let Some(session_id) = email.session_id {
        lock(conn, &format!("email_outbox:session:{session_id}:{}", email.kind)).await?;
        if count_for_session(conn, session_id, &email.kind).await? >= bounds.per_session {
            return Ok(Bounded::SessionFull);
        }
    }
    enqueue(conn, email).await.map(Bounded::Queued)
}

/// A lock held until the transaction ends.
async fn lock(conn: &mut PgConn, key: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many emails of `kind` were queued since `since` for the chats of a customer.
pub async fn count_for_customer_since(
    conn: &mut PgConn,
    customer_id: Uuid,
    kind: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    use crate::db::schema::chat_sessions;
    email_outbox::table
        .inner_join(chat_sessions::table)
        .filter(chat_sessions::customer_id.eq(customer_id))
        .filter(email_outbox::kind.eq(kind))
        .filter(email_outbox::created_at.gt(since))
        .count()
        .get_result(conn)
        .await
}
