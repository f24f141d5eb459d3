//! `/api/admin/*`: how the operation is doing, and the agents who run it. Admins only.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::messages::{AgentProfileChanged, CloseSocketsOf, QueueSnapshot, ToQueue};
use crate::auth::extractors::{Admin, Authenticated};
use crate::auth::staff;
use crate::db::models::NewUser;
use crate::db::{self, queries};
use crate::domain::{Presence, Priority, Role};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::protocol::server::QueueItem;
use crate::startup::AppState;

#[derive(Serialize, ToSchema, Default)]
pub struct SessionCounts {
    bot: i64,
    waiting: i64,
    assigned: i64,
    closed: i64,
    total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ByPriority {
    high: usize,
    normal: usize,
    low: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueFigures {
    length: usize,
    by_priority: ByPriority,
    oldest_wait_seconds: Option<f64>,
    mean_wait_seconds: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentLoad {
    agent_id: Uuid,
    name: String,
    status: Presence,
    active_sessions: i64,
    max_concurrent: i32,
}

#[derive(Serialize, ToSchema)]
pub struct AgentFigures {
    online: usize,
    away: usize,
    offline: usize,
    /// Online agents with no free slot.
    busy: usize,
    list: Vec<AgentLoad>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageFigures {
    total: i64,
    last_hour: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Percentiles {
    p50: Option<f64>,
    p90: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    sessions: SessionCounts,
    queue: QueueFigures,
    agents: AgentFigures,
    messages: MessageFigures,
    first_response_seconds: Percentiles,
    resolution_seconds: Percentiles,
    /// Share of sessions handed to a person.
    handoff_rate: f64,
    /// Share of closed sessions the bot resolved alone.
    bot_resolved_rate: f64,
    generated_at: DateTime<Utc>,
}

fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| (ms / 10.0).round() / 100.0)
}

async fn waiting(state: &AppState) -> Result<Vec<QueueItem>, AppError> {
    state
        .registry
        .send(ToQueue(QueueSnapshot))
        .await
        .map_err(|_| AppError::new(ErrorCode::Internal, "the queue did not answer"))?
}

/// Sessions, queue, agents, messages and response times right now.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = Stats), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/stats")]
pub async fn stats(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(stats_now(&state).await?))
}

/// The figures of `GET /api/admin/stats`, also sent over an admin's socket.
pub async fn stats_now(state: &AppState) -> Result<Stats, AppError> {
    let (by_status, figures, staff) = db::run(&state.pool, async |conn| {
        Ok((
            queries::stats::sessions_by_status(conn).await?,
            queries::stats::figures(conn).await?,
            queries::stats::staff(conn, None).await?,
        ))
    })
    .await?;
    let mut sessions = SessionCounts::default();
    for row in by_status {
        match row.status.as_str() {
            "bot" => sessions.bot = row.count,
            "waiting" => sessions.waiting = row.count,
            "assigned" => sessions.assigned = row.count,
            "closed" => sessions.closed = row.count,
            _ => {}
        }
        sessions.total += row.count;
    }
    let queued = waiting(state).await?;
    let now = Utc::now();
    let waits: Vec<f64> =
        queued.iter().map(|item| (now - item.waiting_since).num_milliseconds() as f64 / 1000.0).collect();
    let count = |priority: Priority| queued.iter().filter(|item| item.priority == priority).count();
    let queue_figures = QueueFigures {
        length: queued.len(),
        by_priority: ByPriority {
            high: count(Priority::High),
            normal: count(Priority::Normal),
            low: count(Priority::Low),
        },
        oldest_wait_seconds: waits.iter().copied().reduce(f64::max),
        mean_wait_seconds: (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64),
    };
    let list: Vec<AgentLoad> = staff
        .into_iter()
        .filter(|row| row.role == "agent" && !row.disabled)
        .map(|row| AgentLoad {
            agent_id: row.id,
            name: row.display_name,
            status: row.status.parse().unwrap_or(Presence::Offline),
            active_sessions: row.active_sessions,
            max_concurrent: row.max_concurrent_chats,
        })
        .collect();
    let with = |presence: Presence| list.iter().filter(|agent| agent.status == presence).count();
    let agent_figures = AgentFigures {
        online: with(Presence::Online),
        away: with(Presence::Away),
        offline: with(Presence::Offline),
        busy: list
            .iter()
            .filter(|agent| {
                agent.status == Presence::Online && agent.active_sessions >= i64::from(agent.max_concurrent)
            })
            .count(),
        list,
    };
    Ok(Stats {
        sessions,
        queue: queue_figures,
        agents: agent_figures,
        messages: MessageFigures { total: figures.messages_total, last_hour: figures.messages_last_hour },
        first_response_seconds: Percentiles {
            p50: seconds(figures.first_response_p50_ms),
            p90: seconds(figures.first_response_p90_ms),
        },
        resolution_seconds: Percentiles {
            p50: seconds(figures.resolution_p50_ms),
            p90: seconds(figures.resolution_p90_ms),
        },
        handoff_rate: share(figures.handed_off, figures.sessions),
        bot_resolved_rate: share(figures.resolved_by_bot, figures.closed),
        generated_at: now,
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueDebug {
    /// What the queue actor holds, in serving order.
    waiting: Vec<QueueItem>,
    /// Active rows of `queue_entries`, which must match.
    stored_entries: i64,
}

/// What the queue holds, for debugging.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = QueueDebug), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/queue")]
pub async fn queue(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(queue_now(&state).await?))
}

/// The queue board as the desk shows it: live chats waiting (`status: waiting`)
/// and offline requests (`status: offline`), in serving order (agents and admins).
#[utoipa::path(
    tag = "sessions",
    responses((status = 200, body = Vec<QueueItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/queue")]
pub async fn board(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(waiting(&state).await?))
}

/// What `GET /api/admin/queue` shows, also sent over an admin's socket.
pub async fn queue_now(state: &AppState) -> Result<QueueDebug, AppError> {
    let waiting = waiting(state).await?;
    let stored_entries = db::run(&state.pool, async |conn| queries::queue::active_count(conn).await).await?;
    Ok(QueueDebug { waiting, stored_entries })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaffView {
    agent_id: Uuid,
    username: String,
    name: String,
    role: Role,
    status: Presence,
    max_concurrent: i32,
    active_sessions: i64,
    disabled: bool,
}

impl From<queries::stats::StaffRow> for StaffView {
    fn from(row: queries::stats::StaffRow) -> Self {
        StaffView {
            agent_id: row.id,
            username: row.username,
            name: row.display_name,
            role: row.role.parse().unwrap_or(Role::Agent),
            status: row.status.parse().unwrap_or(Presence::Offline),
            max_concurrent: row.max_concurrent_chats,
            active_sessions: row.active_sessions,
            disabled: row.disabled,
        }
    }
}

/// Agents and admins.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = Vec<StaffView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/agents")]
pub async fn agents(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    let rows = db::run(&state.pool, async |conn| queries::stats::staff(conn, None).await).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(StaffView::from).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewStaffBody {
    username: String,
    password: String,
    display_name: String,
    #[serde(default = "default_capacity")]
    max_concurrent: i32,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_capacity() -> i32 {
    5
}

fn default_role() -> Role {
    Role::Agent
}

fn check_capacity(max: i32) -> Result<(), AppError> {
    if (1..=100).contains(&max) {
        Ok(())
    } else {
        Err(AppError::validation("maxConcurrent must be from 1 to 100"))
    }
}

/// Create an agent (or an admin).
#[utoipa::path(
    tag = "admin",
    request_body = NewStaffBody,
    responses((status = 201, body = StaffView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/agents")]
pub async fn create_agent(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<NewStaffBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let username = staff::username(&body.username)?;
    staff::check_password(&body.password)?;
    if !matches!(body.role, Role::Agent | Role::Admin) {
        // Partner accounts belong to an organisation: `POST /api/admin/partners/{id}/accounts`.
        return Err(AppError::validation("role must be agent or admin"));
    }
    check_capacity(body.max_concurrent)?;
    let display_name = staff::display_name("displayName", &body.display_name)?;
    let password = body.password;
    let hash = state.hashing.hash(password).await?;
    let new_user = NewUser {
        username: &username,
        display_name,
        email: None,
        role: body.role,
        password_hash: Some(&hash),
        max_concurrent_chats: body.max_concurrent,
    };
    let user = db::run(&state.pool, async |conn| queries::users::insert(conn, &new_user).await)
        .await
        .map_err(|error| error.taken("username"))?;
    let id = user.id;
    let row = db::run(&state.pool, async |conn| queries::stats::staff(conn, Some(id)).await).await?;
    let view = row.into_iter().next().map(StaffView::from).ok_or_else(|| AppError::not_found("agent"))?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchStaffBody {
    display_name: Option<String>,
    max_concurrent: Option<i32>,
    disabled: Option<bool>,
}

/// Rename, set the capacity of, disable or re-enable an agent.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "Agent id")),
    request_body = PatchStaffBody,
    responses((status = 200, body = StaffView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/api/admin/agents/{id}")]
pub async fn update_agent(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<Uuid>,
    body: web::Json<PatchStaffBody>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let body = body.into_inner();
    if let Some(max) = body.max_concurrent {
        check_capacity(max)?;
    }
    let name = body.display_name.as_deref().map(|name| staff::display_name("displayName", name)).transpose()?;
    if body.disabled == Some(true) && id == admin.0.user_id {
        return Err(AppError::validation("you cannot disable yourself"));
    }
    let changed = db::run(&state.pool, async |conn| {
        queries::users::update_staff(conn, id, name, body.max_concurrent, body.disabled).await
    })
    .await?;
    if changed == 0 {
        return Err(AppError::not_found("agent"));
    }
    // The live agent and the queue follow at once: the admin's capacity counts.
    state.registry.do_send(AgentProfileChanged {
        agent_id: id,
        name: name.map(str::to_owned),
        max_concurrent: body.max_concurrent,
    });
    if body.disabled == Some(true) {
        // Their open desks close now; their chats return to the queue after the grace period.
        state.registry.do_send(CloseSocketsOf(id));
    }
    let row = db::run(&state.pool, async |conn| queries::stats::staff(conn, Some(id)).await).await?;
    let view = row.into_iter().next().map(StaffView::from).ok_or_else(|| AppError::not_found("agent"))?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CleanupBody {
    /// Erase closed sessions older than this many days (1–3650).
    older_than_days: i32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanupDone {
    deleted_sessions: usize,
}

/// Erase old closed sessions and their messages.
#[utoipa::path(
    tag = "admin",
    request_body = CleanupBody,
    responses((status = 200, body = CleanupDone), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/cleanup")]
pub async fn cleanup(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<CleanupBody>,
) -> Result<HttpResponse, AppError> {
    let days = body.older_than_days;
    if !(1..=3650).contains(&days) {
        return Err(AppError::validation("olderThanDays must be from 1 to 3650"));
    }
    let deleted_sessions = db::run(&state.pool, async |conn| queries::stats::cleanup(conn, days).await).await?;
    Ok(HttpResponse::Ok().json(CleanupDone { deleted_sessions }))
}
