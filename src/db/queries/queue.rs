//! The durable handoff queue. The queue actor keeps it in memory and calls
//! these in step, so a restart rebuilds exactly what was waiting.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::schema::{chat_messages, chat_sessions, queue_entries, users};
use crate::db::PgConn;
use crate::domain::{Priority, SenderType, SessionStatus};

/// A waiting session as the queue actor rebuilds it.
#[derive(Debug, Clone)]
pub struct WaitingRow {
    pub session_id: Uuid,
    pub priority: Priority,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub customer_name: String,
    pub preview: Option<String>,
}

/// Puts a session in the queue: its status becomes waiting and an active
/// entry records why and since when. Run it in a transaction. A session with
/// the bot is queued when `from_agent` is `None`; an assigned one only when
/// it is still `from_agent`'s. Returns false when the session was not in
/// that state, so a concurrent change is never overwritten.
pub async fn enqueue(
    conn: &mut PgConn,
    session_id: Uuid,
    priority: Priority,
    reason: Option<&str>,
    requested_at: DateTime<Utc>,
    from_agent: Option<Uuid>,
) -> QueryResult<bool> {
    let expected = if from_agent.is_some() { SessionStatus::Assigned } else { SessionStatus::Bot };
    let changed = diesel::update(
        chat_sessions::table
            .find(session_id)
            .filter(chat_sessions::status.eq(expected))
            .filter(chat_sessions::assigned_agent_id.is_not_distinct_from(from_agent)),
    )
    .set((
        chat_sessions::status.eq(SessionStatus::Waiting),
        chat_sessions::priority.eq(priority),
        chat_sessions::assigned_agent_id.eq(None::<Uuid>),
        chat_sessions::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    if changed == 0 {
        return Ok(false);
    }
    diesel::insert_into(queue_entries::table)
        .values((
            queue_entries::session_id.eq(session_id),
            queue_entries::priority.eq(priority),
            queue_entries::reason.eq(reason),
            queue_entries::requested_at.eq(requested_at),
        ))
        .execute(conn)
        .await?;
    super::analytics::handoff_requested(conn, session_id).await?;
    Ok(true)
}

/// Gives a waiting session to an agent. Run it in a transaction. Returns false
/// when the session was no longer waiting, so two assignments can never both win.
pub async fn assign(conn: &mut PgConn, session_id: Uuid, agent_id: Uuid) -> QueryResult<bool> {
    let now = Utc::now();
    let changed =
        diesel::update(chat_sessions::table.find(session_id).filter(chat_sessions::status.eq(SessionStatus::Waiting)))
            .set((
                chat_sessions::status.eq(SessionStatus::Assigned),
                chat_sessions::assigned_agent_id.eq(agent_id),
                chat_sessions::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
    if changed == 0 {
        return Ok(false);
    }
    diesel::update(
        queue_entries::table.filter(queue_entries::session_id.eq(session_id)).filter(queue_entries::is_active),
    )
    .set((
        queue_entries::is_active.eq(false),
        queue_entries::assigned_at.eq(now),
        queue_entries::assigned_agent_id.eq(agent_id),
    ))
    .execute(conn)
    .await?;
    super::analytics::reached(conn, session_id, super::analytics::Milestone::FirstAssigned).await?;
    Ok(true)
}

/// Moves an assigned session from one agent to another. Run it in a transaction.
pub async fn reassign(conn: &mut PgConn, session_id: Uuid, from_agent: Uuid, to_agent: Uuid) -> QueryResult<bool> {
    let changed = diesel::update(
        chat_sessions::table
            .find(session_id)
            .filter(chat_sessions::status.eq(SessionStatus::Assigned))
            .filter(chat_sessions::assigned_agent_id.eq(from_agent)),
    )
    .set((chat_sessions::assigned_agent_id.eq(to_agent), chat_sessions::updated_at.eq(Utc::now())))
    .execute(conn)
    .await?;
    if changed == 0 {
        return Ok(false);
    }
    super::analytics::transferred(conn, session_id).await?;
    Ok(true)
}

/// Takes a session off the queue without assigning it.
pub async fn remove(conn: &mut PgConn, session_id: Uuid) -> QueryResult<()> {
    diesel::update(
        queue_entries::table.filter(queue_entries::session_id.eq(session_id)).filter(queue_entries::is_active),
    )
    .set(queue_entries::is_active.eq(false))
    .execute(conn)
    .await
    .map(|_| ())
}

/// When the session first asked for a person, for putting it back in its old place.
pub async fn first_requested_at(conn: &mut PgConn, session_id: Uuid) -> QueryResult<Option<DateTime<Utc>>> {
    queue_entries::table
        .filter(queue_entries::session_id.eq(session_id))
        .select(diesel::dsl::min(queue_entries::requested_at))
        .first(conn)
        .await
}

/// Everything waiting, with names and the customer's latest words, in no particular order.
pub async fn waiting(conn: &mut PgConn) -> QueryResult<Vec<WaitingRow>> {
    type Row = (Uuid, Priority, Option<String>, DateTime<Utc>, String);
    let rows: Vec<Row> = queue_entries::table
        .inner_join(chat_sessions::table.on(chat_sessions::id.eq(queue_entries::session_id)))
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .filter(queue_entries::is_active)
        .filter(chat_sessions::status.eq(SessionStatus::Waiting))
        .select((
            queue_entries::session_id,
            queue_entries::priority,
            queue_entries::reason,
            queue_entries::requested_at,
            users::display_name,
        ))
        .load(conn)
        .await?;
    let session_ids: Vec<Uuid> = rows.iter().map(|row| row.0).collect();
    let previews: Vec<(Uuid, String)> = chat_messages::table
        .filter(chat_messages::session_id.eq_any(&session_ids))
        .filter(chat_messages::sender_type.eq(SenderType::Customer))
        .filter(chat_messages::deleted_at.is_null())
        .order((chat_messages::session_id, chat_messages::seq.desc()))
        .distinct_on(chat_messages::session_id)
        .select((chat_messages::session_id, chat_messages::content))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(session_id, priority, reason, requested_at, customer_name)| WaitingRow {
            session_id,
            priority,
            reason,
            requested_at,
            customer_name,
            preview: previews.iter().find(|(id, _)| *id == session_id).map(|(_, text)| text.clone()),
        })
        .collect())
}

/// Puts an assigned session back in the queue. Run it in a transaction.
/// `requested_at` decides its place; a transfer passes the current time, an
/// agent who left passes `None` so the session keeps its first place in line.
/// Returns the session's priority, place time and customer name, or `None`
/// when it was not assigned to `agent_id`.
pub async fn requeue(
    conn: &mut PgConn,
    session_id: Uuid,
    agent_id: Uuid,
    priority: Option<Priority>,
    reason: &str,
    requested_at: Option<DateTime<Utc>>,
) -> QueryResult<Option<(Priority, DateTime<Utc>, String)>> {
    let found: Option<(Priority, String)> = chat_sessions::table
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .filter(chat_sessions::id.eq(session_id))
        .filter(chat_sessions::status.eq(SessionStatus::Assigned))
        .filter(chat_sessions::assigned_agent_id.eq(agent_id))
        .select((chat_sessions::priority, users::display_name))
        .first(conn)
        .await
        .optional()?;
    let Some((current, customer_name)) = found else { return Ok(None) };
    let priority = priority.unwrap_or(current);
    let requested_at = match requested_at {
        Some(at) => at,
        None => first_requested_at(conn, session_id).await?.unwrap_or_else(Utc::now),
    };
    if !enqueue(conn, session_id, priority, Some(reason), requested_at, Some(agent_id)).await? {
        return Ok(None);
    }
    Ok(Some((priority, requested_at, customer_name)))
}

/// How many entries are waiting, as stored.
pub async fn active_count(conn: &mut PgConn) -> QueryResult<i64> {
    queue_entries::table.filter(queue_entries::is_active).count().get_result(conn).await
}
