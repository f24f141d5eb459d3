//! The REST API for chat sessions. Reads go to PostgreSQL; anything that
//! changes a live chat goes through its session actor, so WebSocket
//! participants see it at once and every rule (authorization, rate limit,
//! idempotency) is the same as over the socket.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::actors::messages::{Origin, Reply, ToSession};
use crate::actors::session::NewChat;
use crate::auth::extractors::Authenticated;
use crate::db::models::ChatSession;
use crate::db::queries::messages::{Audience, Window};
use crate::db::{self, queries};
use crate::domain::{Priority, Role, SessionStatus};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::protocol::client::{self, Content, SessionRequest, StartChat};
use crate::protocol::server::{MessageView, ServerEvent, SessionView};
use crate::routes::OptionalJson;
use crate::startup::AppState;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

fn page_size(limit: Option<i64>) -> Result<i64, AppError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(_) => Err(AppError::validation(format!("limit must be from 1 to {MAX_PAGE}"))),
    }
}

/// Sends a request to the session's actor and waits for its answer.
pub async fn ask(
    state: &AppState,
    caller: crate::actors::messages::Caller,
    session_id: Uuid,
    request: SessionRequest,
) -> Result<ServerEvent, AppError> {
    let (reply, answer) = Reply::http();
    state.registry.do_send(ToSession {
        session_id,
        wake: true,
        mail: crate::actors::messages::SessionCommand { origin: Origin::http(caller), reply, request }.into(),
    });
    answer.await.map_err(|_| AppError::new(ErrorCode::Internal, "the session did not answer"))?
}

/// A session the caller may read: their own (customer), waiting or assigned
/// to them (agent), or any (admin).
pub async fn readable(state: &AppState, caller: &Authenticated, id: Uuid) -> Result<SessionView, AppError> {
    let found = db::run(&state.pool, async |conn| queries::sessions::find_with_names(conn, id).await).await?;
    let (session, customer_name, agent_name) =
        found.ok_or_else(|| AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"))?;
    // An agent also reads the other chats of a customer they are serving.
    let allowed = may_read(&caller.0, &session)
        || (caller.0.role == Role::Agent
            && crate::routes::customers::may_read_customer(state, &caller.0, session.customer_id).await?);
    if !allowed {
        return Err(AppError::new(ErrorCode::Forbidden, "this session is not yours"));
    }
    Ok(SessionView::for_role(&session, &customer_name, agent_name.as_deref(), caller.0.role))
}

fn may_read(caller: &crate::actors::messages::Caller, session: &ChatSession) -> bool {
    match caller.role {
        Role::Customer => session.customer_id == caller.user_id,
        Role::Agent => {
            session.assigned_agent_id == Some(caller.user_id)
                || matches!(session.status, SessionStatus::Waiting | SessionStatus::Offline)
        }
        Role::Admin => true,
        // A partner reads the chats they are invited into through `/api/partner/sessions`.
        Role::Partner => false,
    }
}

pub(crate) fn unexpected(event: ServerEvent) -> AppError {
    log::error!("unexpected answer from a session actor: {event:?}");
    AppError::new(ErrorCode::Internal, "unexpected answer")
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSessionBody {
    bot_context: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ignored: a customer's priority comes from the `priority` claim of a
    /// token their host website signed, or from staff.
    priority: Option<Priority>,
    /// The team (by name) the chat is for; a host website's signed `team` claim wins.
    team: Option<String>,
}

/// Start a chat (customers). The bot's greeting is stored at once.
#[utoipa::path(
    tag = "sessions",
    request_body(content = Option<NewSessionBody>, content_type = "application/json"),
    responses((status = 201, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, description = "The customer has `OPEN_CHATS_PER_CUSTOMER` chats open (`too_many_open_chats`), or started `RATE_LIMIT_CHATS_PER_MINUTE` in the last minute, or their address `RATE_LIMIT_ADDRESS_FACTOR` times that (`rate_limited`, with `retryAfter`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: OptionalJson<NewSessionBody>,
) -> Result<HttpResponse, AppError> {
    let customer = caller.require(&[Role::Customer])?.clone();
    let body = body.0.unwrap_or(NewSessionBody { bot_context: None, metadata: None, priority: None, team: None });
    let request = client::start_chat(StartChat {
        bot_context: body.bot_context,
        metadata: body.metadata,
        priority: body.priority,
        team: body.team,
    })?;
    let session = start_chat(&state, customer, request).await?;
    Ok(HttpResponse::Created().json(session))
}

/// Starts a chat for a customer, as `customer:start_chat` does; the greeting is stored.
async fn start_chat(
    state: &AppState,
    customer: crate::actors::messages::Caller,
    request: StartChat,
) -> Result<SessionView, AppError> {
    let (reply, answer) = Reply::http();
    state.registry.do_send(NewChat { origin: Origin::http(customer), reply, request });
    match answer.await.map_err(|_| AppError::new(ErrorCode::Internal, "the session did not answer"))?? {
        ServerEvent::SessionCreated { session, .. } => Ok(session),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ListQuery {
    /// Only sessions with this status.
    status: Option<SessionStatus>,
    /// Search (1–200 characters): words said in the chat (full-text, web-search
    /// syntax: `"a phrase"`, `-without`, `or`; private notes included), or part
    /// of its title, category or customer's name.
    q: Option<String>,
    /// Only sessions assigned to this agent (now or when they ended).
    agent_id: Option<Uuid>,
    /// Only sessions started at or after this time (RFC 3339, or a date: its start, UTC).
    from: Option<String>,
    /// Only sessions started before this time (RFC 3339, or a date: the end of that day, UTC).
    to: Option<String>,
    /// Only sessions the customer rated so (1–5).
    rating: Option<i16>,
    /// Only sessions with this label.
    label: Option<String>,
    /// Only sessions routed to this team.
    team_id: Option<Uuid>,
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
    /// `nextCursor` from the previous page.
    cursor: Option<Uuid>,
}

/// A time bound of a filter: an RFC 3339 time, or a date (UTC) whose start
/// (`end_of_day` false) or end is meant.
pub fn time_bound(field: &str, value: Option<&str>, end_of_day: bool) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| AppError::validation(format!("{field} must be an RFC 3339 time or a date (YYYY-MM-DD)")))?;
    let day = if end_of_day { date.succ_opt().unwrap_or(date) } else { date };
    Ok(day.and_hms_opt(0, 0, 0).map(|start| start.and_utc()))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    sessions: Vec<SessionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<Uuid>,
}

/// List or search sessions, newest first (agents see the queue and their own chats; admins see all).
#[utoipa::path(
    tag = "sessions",
    params(ListQuery),
    responses((status = 200, body = SessionPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/sessions")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let staff = caller.require(&[Role::Agent, Role::Admin])?;
    let limit = page_size(query.limit)?;
    let agent = (staff.role == Role::Agent).then_some(staff.user_id);
    let text = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) if text.chars().count() > 200 || text.contains('\0') => {
            return Err(AppError::validation("q must be at most 200 characters, with no NUL"))
        }
        Some(text) => Some(text.to_owned()),
    };
    if query.rating.is_some_and(|rating| !(1..=5).contains(&rating)) {
        return Err(AppError::validation("rating must be from 1 to 5"));
    }
    let filter = queries::sessions::Filter {
        status: query.status,
        text,
        agent_id: query.agent_id,
        created_from: time_bound("from", query.from.as_deref(), false)?,
        created_before: time_bound("to", query.to.as_deref(), true)?,
        rating: query.rating,
        label: client::optional_text("label", query.label.clone(), 40)?,
        team_id: query.team_id,
    };
    let cursor = query.cursor;
    let (rows, mut labels) = db::run(&state.pool, async |conn| {
        let rows = queries::sessions::page(conn, agent, &filter, cursor, limit + 1).await?;
        let ids: Vec<Uuid> = rows.iter().map(|(session, ..)| session.id).collect();
        let labels = queries::catalog::labels_of(conn, &ids).await?;
        Ok((rows, labels))
    })
    .await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].0.id);
    let sessions = rows
        .iter()
        .take(limit as usize)
        .map(|(session, customer, agent)| SessionView {
            labels: labels.remove(&session.id).unwrap_or_default(),
            ..SessionView::for_role(session, customer, agent.as_deref(), staff.role)
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionPage { sessions, next_cursor }))
}

/// One session.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/sessions/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let mut session = readable(&state, &caller, id).await?;
    if caller.0.role != Role::Customer {
        session.labels = db::run(&state.pool, async |conn| queries::catalog::labels_of(conn, &[id]).await)
            .await?
            .remove(&id)
            .unwrap_or_default();
    }
    Ok(HttpResponse::Ok().json(session))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSessionBody {
    title: Option<String>,
    category: Option<String>,
    priority: Option<Priority>,
}

/// Change a session's title or category (its customer, its agent or an admin) or its priority (its agent or an admin).
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = PatchSessionBody,
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/api/sessions/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<PatchSessionBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let request = SessionRequest::Update {
        title: client::optional_text("title", body.title, 200)?,
        category: client::optional_text("category", body.category, 100)?,
        priority: body.priority,
    };
    match ask(&state, caller.0, id.into_inner(), request).await? {
        ServerEvent::SessionUpdated { session } => Ok(HttpResponse::Ok().json(session)),
        other => Err(unexpected(other)),
    }
}

/// Delete a session (its customer or an admin): it is closed and hidden, not erased.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/sessions/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    ask(&state, caller.0, id.into_inner(), SessionRequest::Delete).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
    /// Only messages with a smaller seq (the newest of them).
    before: Option<i64>,
    /// Only messages with a greater seq (the oldest of them).
    after: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    messages: Vec<MessageView>,
    /// True when more messages lie beyond this page in the direction asked.
    has_more: bool,
}

/// Messages as `role` may see them: the bot's details are for staff.
fn shown_views(state: &AppState, rows: &[queries::messages::Shown], role: Role) -> Vec<MessageView> {
    rows.iter().map(|row| MessageView::shown(row, state.bot.name()).for_role(role)).collect()
}

/// A session's messages by seq: the newest page, or before or after a seq.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id"), MessagesQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/sessions/{id}/messages")]
pub async fn messages(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let limit = page_size(query.limit)?;
    if query.before.is_some_and(|seq| seq < 0) || query.after.is_some_and(|seq| seq < 0) {
        return Err(AppError::validation("before and after must not be negative"));
    }
    readable(&state, &caller, id).await?;
    let window = match (query.after, query.before) {
        (Some(_), Some(_)) => return Err(AppError::validation("give before or after, not both")),
        (Some(after), None) => Window::AfterLimited { seq: after, limit: limit + 1 },
        (None, before) => Window::Before { seq: before.unwrap_or(i64::MAX), limit: limit + 1 },
    };
    let audience = Audience::of(caller.0.role);
    let mut rows =
        db::run(&state.pool, async |conn| queries::messages::shown(conn, id, window, audience).await).await?;
    let has_more = rows.len() as i64 > limit;
    if has_more {
        match window {
            Window::Before { .. } => {
                rows.remove(0);
            }
            _ => {
                rows.truncate(limit as usize);
            }
        }
    }
    Ok(HttpResponse::Ok().json(MessagePage { messages: shown_views(&state, &rows, caller.0.role), has_more }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
    /// Skip this many of the oldest messages.
    offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    messages: Vec<MessageView>,
    total: i64,
    limit: i64,
    offset: i64,
}

/// A session's history, oldest first, by page.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id"), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/sessions/{id}/history")]
pub async fn history(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let limit = page_size(query.limit)?;
    let offset = query.offset.unwrap_or(0);
    if !(0..=1_000_000_000).contains(&offset) {
        return Err(AppError::validation("offset must not be negative"));
    }
    readable(&state, &caller, id).await?;
    let audience = Audience::of(caller.0.role);
    let (rows, total) = db::run(&state.pool, async |conn| {
        let rows = queries::messages::shown(conn, id, Window::Page { offset, limit }, audience).await?;
        let total = queries::messages::count(conn, id, audience).await?;
        Ok((rows, total))
    })
    .await?;
    Ok(HttpResponse::Ok().json(HistoryPage {
        messages: shown_views(&state, &rows, caller.0.role),
        total,
        limit,
        offset,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostMessageBody {
    content: String,
    client_msg_id: String,
    #[serde(default)]
    attachments: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAck {
    session_id: Uuid,
    message_id: Uuid,
    seq: i64,
    client_msg_id: String,
    created_at: DateTime<Utc>,
}

/// Send a message, as over the socket: stored, then shown live to the session's sockets.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = PostMessageBody,
    responses((status = 201, body = MessageAck), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, description = "Over `RATE_LIMIT_MESSAGES_PER_MINUTE` for this side of the chat, or `RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE` across the customer's chats (`rate_limited`, with `retryAfter`)", body = ErrorBody), (status = 503, description = "Not stored: `database_unavailable`, `storage_timeout` or `overloaded`; resend with the same clientMsgId", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/messages")]
pub async fn post_message(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<PostMessageBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    if body.attachments.len() > client::MAX_ATTACHMENTS {
        return Err(AppError::validation(format!(
            "a message may carry at most {} attachments",
            client::MAX_ATTACHMENTS
        )));
    }
    let request = SessionRequest::Send {
        content: Content::parse(body.content)?,
        client_msg_id: client::client_msg_id(body.client_msg_id)?,
        attachments: body.attachments,
    };
    match ask(&state, caller.0, id.into_inner(), request).await? {
        ServerEvent::MessageSent { session_id, message_id, seq, client_msg_id, created_at } => {
            Ok(HttpResponse::Created().json(MessageAck { session_id, message_id, seq, client_msg_id, created_at }))
        }
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostNoteBody {
    content: String,
    /// Your own id for the note; a resend with the same id is stored once. One is made up when absent.
    client_msg_id: Option<String>,
}

/// Write a private note in a chat (its agent or an admin): kept in the
/// history with sender `note`, shown live to the staff's sockets, never to
/// the customer by any path.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = PostNoteBody,
    responses((status = 201, body = MessageAck), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "A customer, or an agent the chat is not assigned to", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The chat has ended (`session_closed`)", body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/notes")]
pub async fn post_note(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<PostNoteBody>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    let body = body.into_inner();
    let request = SessionRequest::Note {
        content: Content::parse(body.content)?,
        client_msg_id: client::client_msg_id(body.client_msg_id.unwrap_or_else(|| format!("http-{}", Uuid::new_v4())))?,
    };
    match ask(&state, caller.0, id.into_inner(), request).await? {
        ServerEvent::MessageSent { session_id, message_id, seq, client_msg_id, created_at } => {
            Ok(HttpResponse::Created().json(MessageAck { session_id, message_id, seq, client_msg_id, created_at }))
        }
        other => Err(unexpected(other)),
    }
}

/// Clear a session's messages (its customer or an admin): hidden, not erased.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/sessions/{id}/messages")]
pub async fn clear_messages(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Customer, Role::Admin])?;
    // Through the session's actor, so its live count and its sockets follow.
    ask(&state, caller.0, id.into_inner(), SessionRequest::ClearMessages).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumeBody {
    session: SessionView,
    history: Vec<MessageView>,
}

/// A session and its whole history, to pick a chat up again.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = ResumeBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/resume")]
pub async fn resume(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let session = readable(&state, &caller, id).await?;
    let audience = Audience::of(caller.0.role);
    let rows =
        db::run(&state.pool, async |conn| queries::messages::shown(conn, id, Window::After(0), audience).await).await?;
    Ok(HttpResponse::Ok().json(ResumeBody { session, history: shown_views(&state, &rows, caller.0.role) }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveBody {
    notes: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClosedBody {
    session_id: Uuid,
    reason: crate::domain::CloseReason,
}

/// Close a session as resolved (its customer, its agent or an admin).
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body(content = Option<ResolveBody>, content_type = "application/json"),
    responses((status = 200, body = ClosedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/resolve")]
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: OptionalJson<ResolveBody>,
) -> Result<HttpResponse, AppError> {
    let notes = client::optional_text("notes", body.0.unwrap_or_default().notes, 4_000)?;
    match ask(&state, caller.0, id.into_inner(), SessionRequest::Close { resolved: true, notes }).await? {
        ServerEvent::SessionClosed { session_id, reason } => {
            Ok(HttpResponse::Ok().json(ClosedBody { session_id, reason }))
        }
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferBody {
    priority: Option<Priority>,
    reason: Option<String>,
    /// Staff: straight to this agent (online, with room) instead of the queue.
    to_agent_id: Option<Uuid>,
    /// Staff: back to the queue for this team (its agents first).
    to_team_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    session_id: Uuid,
    status: SessionStatus,
    queue_position: Option<usize>,
    agent_name: Option<String>,
}

/// Hand a session to the queue: a customer asks for a person; an agent sends their chat back.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body(content = Option<TransferBody>, content_type = "application/json"),
    responses((status = 200, body = StatusBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/transfer")]
pub async fn transfer(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: OptionalJson<TransferBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0.unwrap_or_default();
    let reason = client::optional_text("reason", body.reason, 500)?;
    let request = if caller.0.role == Role::Customer {
        SessionRequest::RequestAgent { reason }
    } else {
        SessionRequest::Transfer {
            to_agent_id: body.to_agent_id,
            to_team_id: body.to_team_id,
            priority: body.priority,
            reason,
        }
    };
    let session_id = id.into_inner();
    match ask(&state, caller.0, session_id, request).await? {
        ServerEvent::StatusChanged { session_id, status, agent_name, queue_position } => {
            Ok(HttpResponse::Ok().json(StatusBody { session_id, status, queue_position, agent_name }))
        }
        ServerEvent::SessionTransferred { session_id, status, .. } => {
            let position = state.queue_position(session_id).await;
            Ok(HttpResponse::Ok().json(StatusBody { session_id, status, queue_position: position, agent_name: None }))
        }
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadBody {
    up_to_seq: i64,
}

/// Mark a session's messages read up to a seq; the other side is told live.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = ReadBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, AppError> {
    if body.up_to_seq < 0 {
        return Err(AppError::validation("upToSeq must not be negative"));
    }
    ask(&state, caller.0, id.into_inner(), SessionRequest::MarkRead { up_to_seq: body.up_to_seq }).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatingBody {
    /// 1 (poor) to 5 (great).
    rating: i16,
    comment: Option<String>,
}

/// The customer rates their chat, once, after it has ended.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = RatingBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The chat is still open (`session_open`) or was rated already (`already_rated`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/rating")]
pub async fn rate(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<RatingBody>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    caller.require(&[Role::Customer])?;
    if !(1..=5).contains(&body.rating) {
        return Err(AppError::validation("rating must be from 1 to 5"));
    }
    let comment = client::optional_text("comment", body.comment.clone(), 2_000)?;
    let session = readable(&state, &caller, id).await?;
    if session.status != SessionStatus::Closed {
        return Err(AppError::new(ErrorCode::SessionOpen, "a chat is rated once it has ended"));
    }
    let rating = body.rating;
    let rated =
        db::run(&state.pool, async |conn| queries::analytics::rate(conn, id, rating, comment.as_deref()).await).await?;
    if !rated {
        return Err(AppError::new(ErrorCode::AlreadyRated, "this chat has been rated already"));
    }
    // A closed chat has no live state to change: the rating is a row of its
    // own, stored above, so the route tells the webhooks itself.
    state.webhooks.emit(
        crate::domain::WebhookEvent::SessionRated,
        || serde_json::json!({ "session": session, "rating": rating, "comment": comment }),
    );
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatBody {
    message: String,
    /// `text` is the only kind today.
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Responder {
    /// `bot`, or `agent` / `queue` once a person has the chat.
    #[serde(rename = "type")]
    kind: std::borrow::Cow<'static, str>,
    confidence: Option<f32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatReply {
    session_id: Uuid,
    message: String,
    /// The bot's answer; absent when a person has the chat.
    response: Option<String>,
    agent: Responder,
}

/// Say something and get the bot's answer in one round trip. Without an
/// `X-Session-ID` header a new chat starts.
#[utoipa::path(
    tag = "chat",
    params(("X-Session-ID" = Option<Uuid>, Header, description = "The chat to continue")),
    request_body = ChatBody,
    responses((status = 200, body = ChatReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, description = "Over `RATE_LIMIT_MESSAGES_PER_MINUTE` for this side of the chat, or `RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE` across the customer's chats (`rate_limited`, with `retryAfter`); a chat started without `X-Session-ID` also counts against `RATE_LIMIT_CHATS_PER_MINUTE`", body = ErrorBody), (status = 503, description = "Not stored: `database_unavailable`, `storage_timeout` or `overloaded`", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/chat/message")]
pub async fn chat(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: web::Json<ChatBody>,
) -> Result<HttpResponse, AppError> {
    let customer = caller.require(&[Role::Customer])?.clone();
    let body = body.into_inner();
    if body.kind.as_deref().is_some_and(|kind| kind != "text") {
        return Err(AppError::validation("type must be text"));
    }
    let content = Content::parse(body.message)?;
    let session_id = match req.headers().get("X-Session-ID") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<Uuid>().ok())
            .ok_or_else(|| AppError::validation("X-Session-ID must be a session id"))?,
        None => {
            let request = StartChat { bot_context: None, metadata: None, priority: None, team: None };
            start_chat(&state, customer.clone(), request).await?.session_id
        }
    };
    let request = SessionRequest::Ask { content, client_msg_id: format!("http-{}", Uuid::new_v4()) };
    match ask(&state, customer, session_id, request).await? {
        ServerEvent::ChatAnswer { session_id, message, response, handled_by, confidence } => Ok(HttpResponse::Ok()
            .json(ChatReply {
                session_id,
                message: message.content,
                response: response.map(|view| view.content),
                agent: Responder { kind: handled_by, confidence },
            })),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSessionsQuery {
    /// `active` (open), `unresolved` (not resolved) or `recent` (all, newest first; the default).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<queries::sessions::Selection>,
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSession {
    session: SessionView,
    message_count: i64,
    /// The last few messages, oldest first.
    last_messages: Vec<MessageView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSessions {
    user_id: Uuid,
    sessions: Vec<UserSession>,
}

/// How many of the latest messages each listed session shows.
const LAST_MESSAGES: i64 = 3;

/// A customer's sessions (the customer themselves, an agent holding one of their chats, or an admin).
#[utoipa::path(
    tag = "sessions",
    params(("userId" = Uuid, Path, description = "The customer's id"), UserSessionsQuery),
    responses((status = 200, body = UserSessions), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/users/{userId}/sessions")]
pub async fn user_sessions(
    state: web::Data<AppState>,
    caller: Authenticated,
    user_id: web::Path<Uuid>,
    query: web::Query<UserSessionsQuery>,
) -> Result<HttpResponse, AppError> {
    let user_id = user_id.into_inner();
    if !crate::routes::customers::may_read_customer(&state, &caller.0, user_id).await? {
        return Err(AppError::new(ErrorCode::Forbidden, "these are not your sessions"));
    }
    let limit = page_size(query.limit)?;
    let selection = query.kind.unwrap_or(queries::sessions::Selection::Recent);
    // Two queries whatever the page size: the sessions, then the last few
    // messages of all of them by (session, seq) key. Seqs have no gaps, so
    // a session's last messages are the seqs just below its `last_seq`.
    let (rows, last) = db::run(&state.pool, async |conn| {
        let rows = queries::sessions::of_customer(conn, user_id, selection, limit).await?;
        let keys: Vec<(Uuid, i64)> = rows
            .iter()
            .flat_map(|(session, _, _)| {
                let first = (session.last_seq - LAST_MESSAGES + 1).max(1);
                (first..=session.last_seq).map(move |seq| (session.id, seq))
            })
            .collect();
        let audience = Audience::of(caller.0.role);
        let mut last = queries::messages::shown_by_keys(conn, &keys).await?;
        last.retain(|shown| audience.sees(&shown.message));
        Ok((rows, last))
    })
    .await?;
    let mut last_by_session: std::collections::HashMap<Uuid, Vec<_>> = std::collections::HashMap::new();
    for shown in last {
        last_by_session.entry(shown.message.session_id).or_default().push(shown);
    }
    let sessions = rows
        .into_iter()
        .map(|(session, customer, agent)| {
            let last = last_by_session.remove(&session.id).unwrap_or_default();
            UserSession {
                session: SessionView::for_role(&session, &customer, agent.as_deref(), caller.0.role),
                // Kept by the writer and reset by a clearing: the visible messages.
                message_count: i64::from(session.message_count),
                last_messages: shown_views(&state, &last, caller.0.role),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(UserSessions { user_id, sessions }))
}
