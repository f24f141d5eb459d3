//! Aggregates for the admin dashboard, computed by PostgreSQL.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel_async::RunQueryDsl;

use crate::db::PgConn;

#[derive(QueryableByName)]
pub struct StatusCount {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

pub async fn sessions_by_status(conn: &mut PgConn) -> QueryResult<Vec<StatusCount>> {
    diesel::sql_query("SELECT status, count(*) AS count FROM chat_sessions WHERE deleted_at IS NULL GROUP BY status")
        .load(conn)
        .await
}

#[derive(QueryableByName, Debug, Default)]
pub struct Figures {
    #[diesel(sql_type = BigInt)]
    pub messages_total: i64,
    #[diesel(sql_type = BigInt)]
    pub messages_last_hour: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub first_response_p50_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub first_response_p90_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub resolution_p50_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub resolution_p90_ms: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub sessions: i64,
    #[diesel(sql_type = BigInt)]
    pub handed_off: i64,
    #[diesel(sql_type = BigInt)]
    pub closed: i64,
    #[diesel(sql_type = BigInt)]
    pub resolved_by_bot: i64,
}

pub async fn figures(conn: &mut PgConn) -> QueryResult<Figures> {
    diesel::sql_query(
        "SELECT
           (SELECT count(*) FROM chat_messages WHERE deleted_at IS NULL) AS messages_total,
           (SELECT count(*) FROM chat_messages WHERE deleted_at IS NULL AND created_at > now() - interval '1 hour') AS messages_last_hour,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.first_response_ms) AS first_response_p50_ms,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY a.first_response_ms) AS first_response_p90_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) FILTER (WHERE s.is_resolved) AS resolution_p50_ms,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY a.duration_ms) FILTER (WHERE s.is_resolved) AS resolution_p90_ms,
           count(*) AS sessions,
           count(*) FILTER (WHERE a.handoff_requested_at IS NOT NULL) AS handed_off,
           count(*) FILTER (WHERE s.status = 'closed') AS closed,
           count(*) FILTER (WHERE a.resolved_by_bot) AS resolved_by_bot
         FROM chat_sessions s LEFT JOIN session_analytics a ON a.session_id = s.id
         WHERE s.deleted_at IS NULL",
    )
    .get_result(conn)
    .await
}

#[derive(QueryableByName, Debug)]
pub struct StaffRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub display_name: String,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub max_concurrent_chats: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub disabled: bool,
    #[diesel(sql_type = BigInt)]
    pub active_sessions: i64,
}

/// Agents and admins with how many open chats each has.
pub async fn staff(conn: &mut PgConn, only: Option<uuid::Uuid>) -> QueryResult<Vec<StaffRow>> {
    diesel::sql_query(
        "SELECT u.id, u.username, u.display_name, u.role, u.status, u.max_concurrent_chats, u.disabled,
                (SELECT count(*) FROM chat_sessions s
                  WHERE s.assigned_agent_id = u.id AND s.status = 'assigned' AND s.is_active AND s.deleted_at IS NULL) AS active_sessions
         FROM users u
         WHERE u.role IN ('agent', 'admin') AND ($1::uuid IS NULL OR u.id = $1)
         ORDER BY u.role DESC, u.display_name",
    )
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(only)
    .load(conn)
    .await
}

/// Erases closed (or deleted) sessions older than `days`, with their messages.
pub async fn cleanup(conn: &mut PgConn, days: i32) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM chat_sessions
         WHERE (status = 'closed' AND closed_at < now() - make_interval(days => $1))
            OR (deleted_at IS NOT NULL AND deleted_at < now() - make_interval(days => $1))",
    )
    .bind::<diesel::sql_types::Integer, _>(days)
    .execute(conn)
    .await
}

/// One row of a report: the whole range (`overall`), or one agent's chats.
#[derive(QueryableByName, Debug)]
pub struct ReportRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub overall: bool,
    /// A team's row (else an agent's, or the overall one).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub by_team: bool,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub team_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub team_name: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub agent_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub agent_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub chats: i64,
    #[diesel(sql_type = BigInt)]
    pub handed_off: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub first_response_p50_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub first_response_p90_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub resolution_p50_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub resolution_p90_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub csat_average: Option<f64>,
    /// How many chats got each rating, 1 to 5.
    #[diesel(sql_type = diesel::sql_types::Array<BigInt>)]
    pub csat_counts: Vec<i64>,
}

/// The chats started in [from, before), overall and by the agent who had
/// them last: counts, handoffs, first-response and resolution times (median
/// and 90th percentile) and the customers' ratings.
pub async fn report(
    conn: &mut PgConn,
    from: chrono::DateTime<chrono::Utc>,
    before: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Vec<ReportRow>> {
    use diesel::sql_types::Timestamptz;
    diesel::sql_query(
        "SELECT GROUPING(s.assigned_agent_id, u.display_name, s.team_id, t.name) = 15 AS overall,
           GROUPING(s.team_id, t.name) = 0 AS by_team,
           s.team_id AS team_id, t.name AS team_name,
           s.assigned_agent_id AS agent_id, u.display_name AS agent_name,
           count(*) AS chats,
           count(*) FILTER (WHERE a.handoff_requested_at IS NOT NULL) AS handed_off,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.first_response_ms) AS first_response_p50_ms,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY a.first_response_ms) AS first_response_p90_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) FILTER (WHERE s.is_resolved) AS resolution_p50_ms,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY a.duration_ms) FILTER (WHERE s.is_resolved) AS resolution_p90_ms,
           avg(a.rating)::float8 AS csat_average,
           ARRAY[count(*) FILTER (WHERE a.rating = 1), count(*) FILTER (WHERE a.rating = 2),
                 count(*) FILTER (WHERE a.rating = 3), count(*) FILTER (WHERE a.rating = 4),
                 count(*) FILTER (WHERE a.rating = 5)] AS csat_counts
         FROM chat_sessions s
         LEFT JOIN session_analytics a ON a.session_id = s.id
         LEFT JOIN users u ON u.id = s.assigned_agent_id
         LEFT JOIN teams t ON t.id = s.team_id
         WHERE s.deleted_at IS NULL AND s.created_at >= $1 AND s.created_at < $2
         GROUP BY GROUPING SETS ((), (s.assigned_agent_id, u.display_name), (s.team_id, t.name))
         ORDER BY overall DESC, u.display_name, t.name",
    )
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(before)
    .load(conn)
    .await
}
