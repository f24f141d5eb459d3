use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{ChatSession, NewChatSession};
use crate::db::schema::{chat_sessions, queue_entries, session_analytics, users};
use crate::db::PgConn;
use crate::domain::SessionStatus;

/// Creates the session and its analytics row. Run it in a transaction.
pub async fn insert(conn: &mut PgConn, new_session: &NewChatSession) -> QueryResult<ChatSession> {
    let session = diesel::insert_into(chat_sessions::table)
        .values(new_session)
        .returning(ChatSession::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(session_analytics::table)
        .values(session_analytics::session_id.eq(session.id))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(session)
}

/// How many open sessions a customer has, holding a lock on that count until
/// the transaction ends, so two chats started at once cannot both slip under
/// a limit.
pub async fn open_count_locked(conn: &mut PgConn, customer_id: Uuid) -> QueryResult<i64> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind::<diesel::sql_types::Uuid, _>(customer_id)
        .execute(conn)
        .await?;
    chat_sessions::table
        .filter(chat_sessions::customer_id.eq(customer_id))
        .filter(chat_sessions::status.ne(SessionStatus::Closed))
        .filter(chat_sessions::deleted_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// A session that has not been deleted.
pub async fn find(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<ChatSession>> {
    chat_sessions::table
        .find(id)
        .filter(chat_sessions::deleted_at.is_null())
        .select(ChatSession::as_select())
        .first(conn)
        .await
        .optional()
}

/// A session with its customer's and its agent's display names.
pub async fn find_with_names(
    conn: &mut PgConn,
    id: Uuid,
) -> QueryResult<Option<(ChatSession, String, Option<String>)>> {
    let Some(session) = find(conn, id).await? else { return Ok(None) };
    let ids: Vec<Uuid> = std::iter::once(session.customer_id).chain(session.assigned_agent_id).collect();
    let names: Vec<(Uuid, String)> =
        users::table.filter(users::id.eq_any(&ids)).select((users::id, users::display_name)).load(conn).await?;
    let name_of = |id: Uuid| names.iter().find(|(user, _)| *user == id).map(|(_, name)| name.clone());
    let customer_name = name_of(session.customer_id).unwrap_or_else(|| "Customer".to_owned());
    let agent_name = session.assigned_agent_id.and_then(name_of);
    Ok(Some((session, customer_name, agent_name)))
}

/// Closes the session, takes it off the queue and finishes its analytics.
/// Run it in a transaction. Returns the closed session.
pub async fn close(
    conn: &mut PgConn,
    id: Uuid,
    reason: &str,
    resolved: bool,
    notes: Option<&str>,
) -> QueryResult<ChatSession> {
    let now = Utc::now();
    let session = diesel::update(chat_sessions::table.find(id))
        .set((
            chat_sessions::status.eq(SessionStatus::Closed),
            chat_sessions::is_active.eq(false),
            chat_sessions::is_resolved.eq(resolved),
            chat_sessions::resolution_notes.eq(notes),
            chat_sessions::ended_reason.eq(reason),
            chat_sessions::closed_at.eq(now),
            chat_sessions::updated_at.eq(now),
        ))
        .returning(ChatSession::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(queue_entries::table.filter(queue_entries::session_id.eq(id)).filter(queue_entries::is_active))
        .set(queue_entries::is_active.eq(false))
        .execute(conn)
        .await?;
    super::analytics::finish(conn, &session, resolved).await?;
    Ok(session)
}

/// Makes the caller (on `node`) the session's owner: it takes the next
/// fencing number, and messages from an earlier owner are no longer
/// stored. `None` if the session does not exist.
pub async fn take_ownership(conn: &mut PgConn, id: Uuid, node: Option<&str>) -> QueryResult<Option<i64>> {
    diesel::update(chat_sessions::table.find(id))
        .set((chat_sessions::owner_epoch.eq(chat_sessions::owner_epoch + 1), chat_sessions::owner_node.eq(node)))
        .returning(chat_sessions::owner_epoch)
        .get_result(conn)
        .await
        .optional()
}

/// The session's fencing number now, if it exists.
pub async fn owner_epoch(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<i64>> {
    chat_sessions::table.find(id).select(chat_sessions::owner_epoch).first(conn).await.optional()
}

/// The node that last took the session, if any.
pub async fn owner_node(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<String>> {
    chat_sessions::table.find(id).select(chat_sessions::owner_node).first(conn).await.optional().map(Option::flatten)
}

/// Records when the customer was last seen, for the abandonment sweep.
pub async fn touch(conn: &mut PgConn, id: Uuid) -> QueryResult<()> {
    diesel::update(chat_sessions::table.find(id))
        .set(chat_sessions::last_activity.eq(Utc::now()))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Open sessions with no activity since `before`. Offline requests (and
/// chats that began as one) are left out: their customer is meant to be
/// away, and an agent closes them once answered.
pub async fn quiet_since(conn: &mut PgConn, before: chrono::DateTime<Utc>, limit: i64) -> QueryResult<Vec<Uuid>> {
    chat_sessions::table
        .filter(chat_sessions::is_active)
        .filter(chat_sessions::deleted_at.is_null())
        .filter(chat_sessions::status.ne(SessionStatus::Closed))
        .filter(chat_sessions::offline_email.is_null())
        .filter(chat_sessions::last_activity.lt(before))
        .order(chat_sessions::last_activity.asc())
        .limit(limit)
        .select(chat_sessions::id)
        .load(conn)
        .await
}

/// Every open session assigned to an agent, as (agent, session) pairs.
pub async fn assigned_pairs(conn: &mut PgConn) -> QueryResult<Vec<(Uuid, Uuid)>> {
    chat_sessions::table
        .filter(chat_sessions::is_active)
        .filter(chat_sessions::status.eq(SessionStatus::Assigned))
        .filter(chat_sessions::deleted_at.is_null())
        .filter(chat_sessions::assigned_agent_id.is_not_null())
        .select((chat_sessions::assigned_agent_id.assume_not_null(), chat_sessions::id))
        .load(conn)
        .await
}

/// The open sessions assigned to one agent, oldest first.
pub async fn assigned_to(conn: &mut PgConn, agent_id: Uuid) -> QueryResult<Vec<Uuid>> {
    chat_sessions::table
        .filter(chat_sessions::assigned_agent_id.eq(agent_id))
        .filter(chat_sessions::is_active)
        .filter(chat_sessions::status.eq(SessionStatus::Assigned))
        .filter(chat_sessions::deleted_at.is_null())
        .order(chat_sessions::created_at.asc())
        .select(chat_sessions::id)
        .load(conn)
        .await
}

/// Changes the fields that are given; returns the session as it now is.
pub async fn update_details(
    conn: &mut PgConn,
    id: Uuid,
    title: Option<&str>,
    category: Option<&str>,
    priority: Option<crate::domain::Priority>,
) -> QueryResult<ChatSession> {
    #[derive(AsChangeset)]
    #[diesel(table_name = chat_sessions)]
    struct Details<'a> {
        title: Option<&'a str>,
        category: Option<&'a str>,
        priority: Option<crate::domain::Priority>,
        updated_at: chrono::DateTime<Utc>,
    }
    let updated = diesel::update(chat_sessions::table.find(id))
        .set(Details { title, category, priority, updated_at: Utc::now() })
        .returning(ChatSession::as_returning())
        .get_result(conn)
        .await?;
    if let Some(priority) = priority {
        diesel::update(queue_entries::table.filter(queue_entries::session_id.eq(id)).filter(queue_entries::is_active))
            .set(queue_entries::priority.eq(priority))
            .execute(conn)
            .await?;
    }
    Ok(updated)
}

/// Hides a session: it stays in the database, but no reader sees it.
pub async fn soft_delete(conn: &mut PgConn, id: Uuid) -> QueryResult<()> {
    diesel::update(chat_sessions::table.find(id).filter(chat_sessions::deleted_at.is_null()))
        .set((chat_sessions::deleted_at.eq(Utc::now()), chat_sessions::is_active.eq(false)))
        .execute(conn)
        .await
        .map(|_| ())
}

diesel::alias!(crate::db::schema::users as agents: AgentsAlias);

/// A session with its customer's name and its agent's.
pub type Named = (ChatSession, String, Option<String>);

/// What a search or a listing narrows sessions to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<SessionStatus>,
    /// Words (web-search syntax: `"a phrase"`, `-not`, `or`) said in the chat,
    /// or found in its title, category or customer's name.
    pub text: Option<String>,
    pub agent_id: Option<Uuid>,
    pub created_from: Option<chrono::DateTime<Utc>>,
    pub created_before: Option<chrono::DateTime<Utc>>,
    pub rating: Option<i16>,
    pub label: Option<String>,
    pub team_id: Option<Uuid>,
}

/// Sessions newest first, with names: an agent (`Some`) sees the waiting ones
/// and their own; `None` sees all. `after` is the last id of the previous page.
pub async fn page(
    conn: &mut PgConn,
    agent: Option<Uuid>,
    filter: &Filter,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Named>> {
    use diesel::sql_types::{Bool, Text};
    let mut query = chat_sessions::table
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .left_join(agents.on(agents.field(users::id).nullable().eq(chat_sessions::assigned_agent_id)))
        .filter(chat_sessions::deleted_at.is_null())
        .select((ChatSession::as_select(), users::display_name, agents.field(users::display_name).nullable()))
        .order((chat_sessions::created_at.desc(), chat_sessions::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(agent_id) = agent {
        query = query.filter(
            chat_sessions::status
                .eq_any([SessionStatus::Waiting, SessionStatus::Offline])
                .or(chat_sessions::assigned_agent_id.eq(agent_id)),
        );
    }
    if let Some(status) = filter.status {
        query = query.filter(chat_sessions::status.eq(status));
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // The message search uses chat_messages_search_idx (the same expression).
        query = query.filter(
            diesel::dsl::sql::<Bool>(
                "(chat_sessions.id IN (SELECT m.session_id FROM chat_messages m \
                 WHERE to_tsvector('simple', m.content) @@ websearch_to_tsquery('simple', ",
            )
            .bind::<Text, _>(text.clone())
            .sql(") AND m.deleted_at IS NULL) OR chat_sessions.title ILIKE ")
            .bind::<Text, _>(pattern.clone())
            .sql(" OR chat_sessions.category ILIKE ")
            .bind::<Text, _>(pattern.clone())
            .sql(" OR users.display_name ILIKE ")
            .bind::<Text, _>(pattern)
            .sql(")"),
        );
    }
    if let Some(team_id) = filter.team_id {
        query = query.filter(chat_sessions::team_id.eq(team_id));
    }
    if let Some(agent_id) = filter.agent_id {
        query = query.filter(chat_sessions::assigned_agent_id.eq(agent_id));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(chat_sessions::created_at.ge(from));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(chat_sessions::created_at.lt(before));
    }
    if let Some(label) = &filter.label {
        use crate::db::schema::{labels, session_labels};
        query = query.filter(
            chat_sessions::id.eq_any(
                session_labels::table
                    .inner_join(labels::table)
                    .filter(labels::name.eq(label.clone()))
                    .select(session_labels::session_id),
            ),
        );
    }
    if let Some(rating) = filter.rating {
        query = query.filter(chat_sessions::id.eq_any(
            session_analytics::table.filter(session_analytics::rating.eq(rating)).select(session_analytics::session_id),
        ));
    }
    if let Some(after) = after {
        let Some(last) = find(conn, after).await? else { return Ok(Vec::new()) };
        query = query.filter(
            chat_sessions::created_at
                .lt(last.created_at)
                .or(chat_sessions::created_at.eq(last.created_at).and(chat_sessions::id.lt(last.id))),
        );
    }
    query.load(conn).await
}

/// Which of a customer's sessions to list.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    Active,
    Unresolved,
    Recent,
}

/// A customer's sessions, most recently active first.
pub async fn of_customer(
    conn: &mut PgConn,
    customer_id: Uuid,
    selection: Selection,
    limit: i64,
) -> QueryResult<Vec<Named>> {
    let mut query = chat_sessions::table
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .left_join(agents.on(agents.field(users::id).nullable().eq(chat_sessions::assigned_agent_id)))
        .filter(chat_sessions::customer_id.eq(customer_id))
        .filter(chat_sessions::deleted_at.is_null())
        .select((ChatSession::as_select(), users::display_name, agents.field(users::display_name).nullable()))
        .limit(limit)
        .into_boxed();
    query = match selection {
        Selection::Active => query.filter(chat_sessions::is_active).order(chat_sessions::last_activity.desc()),
        Selection::Unresolved => {
            query.filter(chat_sessions::is_resolved.eq(false)).order(chat_sessions::last_activity.desc())
        }
        Selection::Recent => query.order(chat_sessions::created_at.desc()),
    };
    query.load(conn).await
}

/// True while `agent_id` holds an open chat of `customer_id`: what lets an
/// agent read that customer's profile and past chats.
pub async fn serves_customer(conn: &mut PgConn, agent_id: Uuid, customer_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        chat_sessions::table
            .filter(chat_sessions::customer_id.eq(customer_id))
            .filter(chat_sessions::assigned_agent_id.eq(agent_id))
            .filter(chat_sessions::status.eq(SessionStatus::Assigned))
            .filter(chat_sessions::deleted_at.is_null()),
    ))
    .get_result(conn)
    .await
}

/// A customer's chats newest first, with the agent's name and the rating given.
pub type Past = (ChatSession, Option<String>, Option<i16>, Option<String>);

pub async fn past_of_customer(conn: &mut PgConn, customer_id: Uuid, limit: i64) -> QueryResult<Vec<Past>> {
    chat_sessions::table
        .left_join(agents.on(agents.field(users::id).nullable().eq(chat_sessions::assigned_agent_id)))
        .left_join(session_analytics::table.on(session_analytics::session_id.eq(chat_sessions::id)))
        .filter(chat_sessions::customer_id.eq(customer_id))
        .filter(chat_sessions::deleted_at.is_null())
        .order(chat_sessions::created_at.desc())
        .limit(limit)
        .select((
            ChatSession::as_select(),
            agents.field(users::display_name).nullable(),
            session_analytics::rating.nullable(),
            session_analytics::rating_comment.nullable(),
        ))
        .load(conn)
        .await
}
