//! Webhooks and their deliveries. The deliveries table is the durable work
//! queue: rows are claimed when due with `FOR UPDATE SKIP LOCKED`, so several
//! nodes share the work and none sends a row another has claimed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{NewDelivery, Webhook, WebhookChanges, WebhookDelivery};
use crate::db::schema::{webhook_deliveries, webhooks};
use crate::db::PgConn;
use crate::domain::DeliveryStatus;

/// Most webhooks kept: each event is recorded once per hook that wants it.
pub const MAX_WEBHOOKS: i64 = 20;

pub async fn list(conn: &mut PgConn) -> QueryResult<Vec<Webhook>> {
    webhooks::table.order(webhooks::created_at.asc()).select(Webhook::as_select()).load(conn).await
}

/// The hooks that are sent events.
pub async fn active(conn: &mut PgConn) -> QueryResult<Vec<Webhook>> {
    webhooks::table.filter(webhooks::active).select(Webhook::as_select()).load(conn).await
}

/// How many hooks there are, holding a lock on that count until the
/// transaction ends, so two registered at once cannot both slip under the limit.
pub async fn count_locked(conn: &mut PgConn) -> QueryResult<i64> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('switchboard:webhooks', 0))")
        .execute(conn)
        .await?;
    webhooks::table.count().get_result(conn).await
}

pub async fn exists(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    Ok(webhooks::table.find(id).count().get_result::<i64>(conn).await? > 0)
}

pub async fn insert(
    conn: &mut PgConn,
    url: &str,
    events: &[String],
    secret: &str,
    active: bool,
) -> QueryResult<Webhook> {
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::url.eq(url),
            webhooks::events.eq(events),
            webhooks::secret.eq(secret),
            webhooks::active.eq(active),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(conn: &mut PgConn, id: Uuid, changes: &WebhookChanges) -> QueryResult<Option<Webhook>> {
    diesel::update(webhooks::table.find(id))
        .set((changes, webhooks::updated_at.eq(diesel::dsl::now)))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn rotate_secret(conn: &mut PgConn, id: Uuid, secret: &str) -> QueryResult<Option<Webhook>> {
    diesel::update(webhooks::table.find(id))
        .set((webhooks::secret.eq(secret), webhooks::updated_at.eq(diesel::dsl::now)))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Removes a hook and its deliveries.
pub async fn delete(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(webhooks::table.find(id)).execute(conn).await? > 0)
}

/// A hook's latest deliveries, newest first.
pub async fn recent_deliveries(conn: &mut PgConn, webhook_id: Uuid, limit: i64) -> QueryResult<Vec<WebhookDelivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order((webhook_deliveries::created_at.desc(), webhook_deliveries::id.desc()))
        .limit(limit)
        .select(WebhookDelivery::as_select())
        .load(conn)
        .await
}

/// Records deliveries, leaving out those of hooks removed meanwhile.
pub async fn record(conn: &mut PgConn, deliveries: &[NewDelivery]) -> QueryResult<usize> {
    let hooks: Vec<Uuid> = deliveries.iter().map(|delivery| delivery.webhook_id).collect();
    let still_there: Vec<Uuid> =
        webhooks::table.filter(webhooks::id.eq_any(&hooks)).select(webhooks::id).load(conn).await?;
    let kept: Vec<&NewDelivery> =
        deliveries.iter().filter(|delivery| still_there.contains(&delivery.webhook_id)).collect();
    if kept.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(webhook_deliveries::table).values(kept).execute(conn).await
}

/// A delivery claimed for an attempt, with where it goes and how it is signed.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueDelivery {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub event: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub payload: serde_json::Value,
    /// Attempts made before this one.
    #[diesel(sql_type = diesel::sql_types::Int4)]
    pub attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub url: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub secret: String,
}

/// Claims up to `limit` pending deliveries that are due, of active hooks,
/// oldest first: each is pushed `lease` into the future, so no node (this
/// one included) takes it again while it is being sent, and a node that
/// dies mid-attempt leaves it to be tried again once the lease runs out.
pub async fn claim_due(conn: &mut PgConn, limit: i64, lease: Duration) -> QueryResult<Vec<DueDelivery>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    diesel::sql_query(
        "WITH due AS (
             SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.active
             ORDER BY d.next_attempt_at
             LIMIT $1
             FOR UPDATE OF d SKIP LOCKED
         )
         UPDATE webhook_deliveries d
         SET next_attempt_at = now() + $2 * interval '1 millisecond'
         FROM due, webhooks w
         WHERE d.id = due.id AND w.id = d.webhook_id
         RETURNING d.id, d.event, d.payload, d.attempts, w.url, w.secret",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::BigInt, _>(lease_ms)
    .load(conn)
    .await
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status: DeliveryStatus,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// For a delivery still pending: when to try again.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Records an attempt: one more counted, and the delivery delivered,
/// failed for good, or pending until `next_attempt_at`.
pub async fn finish_attempt(conn: &mut PgConn, id: Uuid, outcome: &AttemptOutcome) -> QueryResult<()> {
    let delivered_at = (outcome.status == DeliveryStatus::Delivered).then(Utc::now);
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::status.eq(outcome.status.as_str()),
            webhook_deliveries::last_status_code.eq(outcome.status_code),
            webhook_deliveries::last_error.eq(outcome.error.as_deref()),
            webhook_deliveries::delivered_at.eq(delivered_at),
            webhook_deliveries::next_attempt_at.eq(outcome.next_attempt_at.unwrap_or_else(Utc::now)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets finished deliveries created before `before`.
pub async fn prune(conn: &mut PgConn, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::created_at.lt(before)),
    )
    .execute(conn)
    .await
}
