//! What admins keep for the team: canned replies (agents insert them with a
//! shortcut) and labels (put on chats, for search and reports).

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::extractors::{Admin, Authenticated};
use crate::db::models::{CannedReply, CannedReplyFields, Label};
use crate::db::queries::catalog::{self, MAX_CANNED_REPLIES, MAX_LABELS};
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

const TITLE_MAX_CHARS: usize = 100;
const CONTENT_MAX_CHARS: usize = 4_000;
const LABEL_MAX_CHARS: usize = 40;
/// Most labels on one chat.
const LABELS_PER_CHAT: usize = 20;

fn shortcut(value: String) -> Result<String, AppError> {
    let valid = (1..=32).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(value)
    } else {
        Err(AppError::validation("shortcut must be 1 to 32 characters of a-z, 0-9, _ and -"))
    }
}

fn text(field: &str, value: String, max_chars: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max_chars || trimmed.contains('\0') {
        return Err(AppError::validation(format!("{field} must be 1 to {max_chars} characters")));
    }
    Ok(trimmed.to_owned())
}

/// The canned replies, by shortcut (agents and admins).
#[utoipa::path(
    tag = "catalog",
    responses((status = 200, body = Vec<CannedReply>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/canned-replies")]
pub async fn list_canned(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(db::run(&state.pool, async |conn| catalog::canned_replies(conn).await).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CannedReplyBody {
    /// What the agent types after `/`: 1–32 of a-z, 0-9, `_`, `-`.
    shortcut: Option<String>,
    title: Option<String>,
    /// The reply; `{name}` becomes the customer's name and `{agent}` the agent's.
    content: Option<String>,
}

impl CannedReplyBody {
    fn fields(self) -> Result<CannedReplyFields, AppError> {
        Ok(CannedReplyFields {
            shortcut: self.shortcut.map(shortcut).transpose()?,
            title: self.title.map(|title| text("title", title, TITLE_MAX_CHARS)).transpose()?,
            content: self.content.map(|content| text("content", content, CONTENT_MAX_CHARS)).transpose()?,
        })
    }
}

/// Add a canned reply (admins).
#[utoipa::path(
    tag = "catalog",
    request_body = CannedReplyBody,
    responses((status = 201, body = CannedReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "The shortcut is taken (`conflict`), or 500 replies exist (`limit_reached`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/canned-replies")]
pub async fn create_canned(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<CannedReplyBody>,
) -> Result<HttpResponse, AppError> {
    let fields = body.into_inner().fields()?;
    if fields.shortcut.is_none() || fields.title.is_none() || fields.content.is_none() {
        return Err(AppError::validation("shortcut, title and content are required"));
    }
    let created = db::run(&state.pool, async |conn| {
        if catalog::canned_reply_count(conn).await? >= MAX_CANNED_REPLIES {
            return Ok(None);
        }
        catalog::insert_canned_reply(conn, &fields).await.map(Some)
    })
    .await
    .map_err(|error| error.taken("shortcut"))?
    .ok_or_else(|| AppError::new(ErrorCode::LimitReached, format!("at most {MAX_CANNED_REPLIES} canned replies")))?;
    Ok(HttpResponse::Created().json(created))
}

/// Change a canned reply (admins).
#[utoipa::path(
    tag = "catalog",
    params(("id" = Uuid, Path, description = "Canned reply id")),
    request_body = CannedReplyBody,
    responses((status = 200, body = CannedReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/api/admin/canned-replies/{id}")]
pub async fn update_canned(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    body: web::Json<CannedReplyBody>,
) -> Result<HttpResponse, AppError> {
    let fields = body.into_inner().fields()?;
    if fields.shortcut.is_none() && fields.title.is_none() && fields.content.is_none() {
        return Err(AppError::validation("give shortcut, title or content"));
    }
    let id = id.into_inner();
    let updated = db::run(&state.pool, async |conn| catalog::update_canned_reply(conn, id, &fields).await)
        .await
        .map_err(|error| error.taken("shortcut"))?
        .ok_or_else(|| AppError::not_found("canned reply"))?;
    Ok(HttpResponse::Ok().json(updated))
}

/// Remove a canned reply (admins).
#[utoipa::path(
    tag = "catalog",
    params(("id" = Uuid, Path, description = "Canned reply id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/canned-replies/{id}")]
pub async fn delete_canned(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !db::run(&state.pool, async |conn| catalog::delete_canned_reply(conn, id).await).await? {
        return Err(AppError::not_found("canned reply"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The labels (agents and admins).
#[utoipa::path(
    tag = "catalog",
    responses((status = 200, body = Vec<Label>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/labels")]
pub async fn list_labels(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(db::run(&state.pool, async |conn| catalog::labels(conn).await).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelBody {
    /// 1–40 characters.
    name: String,
    /// `#rrggbb`, lower case.
    color: String,
}

/// Add a label (admins).
#[utoipa::path(
    tag = "catalog",
    request_body = LabelBody,
    responses((status = 201, body = Label), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/labels")]
pub async fn create_label(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<LabelBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let name = text("name", body.name, LABEL_MAX_CHARS)?;
    let color = body.color.to_ascii_lowercase();
    if color.len() != 7 || !color.starts_with('#') || !color[1..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::validation("color must be #rrggbb"));
    }
    let created = db::run(&state.pool, async |conn| {
        if catalog::label_count(conn).await? >= MAX_LABELS {
            return Ok(None);
        }
        catalog::insert_label(conn, &name, &color).await.map(Some)
    })
    .await
    .map_err(|error| error.taken("name"))?
    .ok_or_else(|| AppError::new(ErrorCode::LimitReached, format!("at most {MAX_LABELS} labels")))?;
    Ok(HttpResponse::Created().json(created))
}

/// Remove a label, and take it off every chat (admins).
#[utoipa::path(
    tag = "catalog",
    params(("id" = Uuid, Path, description = "Label id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/labels/{id}")]
pub async fn delete_label(state: web::Data<AppState>, _: Admin, id: web::Path<Uuid>) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !db::run(&state.pool, async |conn| catalog::delete_label(conn, id).await).await? {
        return Err(AppError::not_found("label"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionLabelsBody {
    /// The chat's labels from now, by name (at most 20); `[]` takes them all off.
    labels: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionLabels {
    session_id: Uuid,
    labels: Vec<String>,
}

/// Set a chat's labels (its agent or an admin).
#[utoipa::path(
    tag = "catalog",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = SessionLabelsBody,
    responses((status = 200, body = SessionLabels), (status = 400, description = "A label that does not exist (`validation_failed`)", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/api/sessions/{id}/labels")]
pub async fn set_session_labels(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<SessionLabelsBody>,
) -> Result<HttpResponse, AppError> {
    let staff = caller.require(&[Role::Agent, Role::Admin])?;
    let session_id = id.into_inner();
    let mut names = body
        .into_inner()
        .labels
        .into_iter()
        .map(|name| text("a label", name, LABEL_MAX_CHARS))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    if names.len() > LABELS_PER_CHAT {
        return Err(AppError::validation(format!("a chat has at most {LABELS_PER_CHAT} labels")));
    }
    let session = crate::routes::sessions::readable(&state, &caller, session_id).await?;
    if staff.role == Role::Agent && session.assigned_agent_id != Some(staff.user_id) {
        return Err(AppError::new(ErrorCode::Forbidden, "only the chat's agent or an admin labels it"));
    }
    let outcome = db::run(&state.pool, async |conn| {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| queries::catalog::set_session_labels(conn, session_id, &names).await).await
    })
    .await?;
    match outcome {
        Ok(labels) => Ok(HttpResponse::Ok().json(SessionLabels { session_id, labels })),
        Err(unknown) => Err(AppError::validation(format!("no such label: {}", unknown.join(", ")))),
    }
}
