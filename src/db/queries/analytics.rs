use chrono::Utc;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::ChatSession;
use crate::db::schema::{chat_messages, session_analytics};
use crate::db::PgConn;
use crate::domain::SenderType;

/// Notes the first handoff request; later requests keep the first time.
pub async fn handoff_requested(conn: &mut PgConn, session_id: Uuid) -> QueryResult<()> {
    diesel::update(session_analytics::table.find(session_id).filter(session_analytics::handoff_requested_at.is_null()))
        .set((session_analytics::handoff_requested_at.eq(Utc::now()), session_analytics::updated_at.eq(Utc::now())))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A moment in a handed-off chat that is recorded once, with how long it
/// took from the handoff request.
#[derive(Debug, Clone, Copy)]
pub enum Milestone {
    /// The first assignment to an agent: the customer's wait.
    FirstAssigned,
    /// The first human reply: the first response time.
    FirstResponse,
}

/// Records `milestone` the first time it happens; later calls change nothing.
pub async fn reached(conn: &mut PgConn, session_id: Uuid, milestone: Milestone) -> QueryResult<()> {
    let (at, elapsed) = match milestone {
        Milestone::FirstAssigned => ("first_assigned_at", "wait_ms"),
        Milestone::FirstResponse => ("first_response_at", "first_response_ms"),
    };
    diesel::sql_query(format!(
        "UPDATE session_analytics
         SET {at} = now(),
             {elapsed} = (EXTRACT(EPOCH FROM now() - coalesce(handoff_requested_at, now())) * 1000)::bigint,
             updated_at = now()
         WHERE session_id = $1 AND {at} IS NULL"
    ))
    .bind::<diesel::sql_types::Uuid, _>(session_id)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn transferred(conn: &mut PgConn, session_id: Uuid) -> QueryResult<()> {
    diesel::update(session_analytics::table.find(session_id))
        .set((
            session_analytics::was_transferred.eq(true),
            session_analytics::transfer_count.eq(session_analytics::transfer_count + 1),
            session_analytics::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Counts the messages by sender and the session's length, at close.
pub async fn finish(conn: &mut PgConn, session: &ChatSession, resolved: bool) -> QueryResult<()> {
    let counts: Vec<(SenderType, i64)> = chat_messages::table
        .filter(chat_messages::session_id.eq(session.id))
        .group_by(chat_messages::sender_type)
        .select((chat_messages::sender_type, count_star()))
        .load(conn)
        .await?;
    let count =
        |sender: SenderType| counts.iter().find(|(kind, _)| *kind == sender).map(|(_, n)| *n as i32).unwrap_or(0);
    let handed_off: Option<Option<chrono::DateTime<Utc>>> = session_analytics::table
        .find(session.id)
        .select(session_analytics::handoff_requested_at)
        .first(conn)
        .await
        .optional()?;
    let resolved_by_bot = resolved && handed_off.flatten().is_none();
    let closed_at = session.closed_at.unwrap_or_else(Utc::now);
    diesel::update(session_analytics::table.find(session.id))
        .set((
            session_analytics::customer_messages.eq(count(SenderType::Customer)),
            session_analytics::bot_messages.eq(count(SenderType::Bot)),
            session_analytics::agent_messages.eq(count(SenderType::Agent)),
            session_analytics::system_messages.eq(count(SenderType::System)),
            session_analytics::duration_ms.eq((closed_at - session.created_at).num_milliseconds()),
            session_analytics::resolved_by_bot.eq(resolved_by_bot),
            session_analytics::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The customer's rating of their chat, with an optional comment.
pub async fn rate(conn: &mut PgConn, session_id: Uuid, rating: i16, comment: Option<&str>) -> QueryResult<bool> {
    // A rating is given once: a second one finds no unrated row.
    diesel::update(session_analytics::table.find(session_id).filter(session_analytics::rating.is_null()))
        .set((
            session_analytics::rating.eq(rating),
            session_analytics::rating_comment.eq(comment),
            session_analytics::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|updated| updated == 1)
}
