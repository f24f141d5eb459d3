//! Webhooks (admins): the endpoints told about chats, the events each wants,
//! and each one's recent deliveries. The dispatcher reads the hooks again
//! after every change here.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::actors::webhooks::new_secret;
use crate::auth::extractors::Admin;
use crate::db;
use crate::db::models::{Webhook, WebhookChanges, WebhookDelivery};
use crate::db::queries::webhooks::{self as queries, MAX_WEBHOOKS};
use crate::domain::WebhookEvent;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

const URL_MAX_CHARS: usize = 2_000;
/// Deliveries listed per hook at most.
const DELIVERIES_MAX: i64 = 200;

/// A webhook as admins see it; the secret only when it was just made.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    id: Uuid,
    url: String,
    events: Vec<WebhookEvent>,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Signs every delivery: shown once, when the hook is created or its secret rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn new(hook: Webhook, with_secret: bool) -> Self {
        WebhookView {
            id: hook.id,
            url: hook.url,
            events: hook.events.iter().filter_map(|name| name.parse().ok()).collect(),
            active: hook.active,
            created_at: hook.created_at,
            updated_at: hook.updated_at,
            secret: with_secret.then_some(hook.secret),
        }
    }
}

/// An `http://` or `https://` URL with a host, at most 2,000 characters,
/// in its normal form (`HTTPS://Example.com` is kept as `https://example.com/`).
fn endpoint(url: String) -> Result<String, AppError> {
    let parsed = reqwest::Url::parse(url.trim()).ok().filter(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|host| !host.is_empty())
    });
    match parsed {
        Some(parsed) if parsed.as_str().chars().count() <= URL_MAX_CHARS => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(AppError::validation("url must not carry a user name or password"));
            }
            Ok(parsed.into())
        }
        _ => Err(AppError::validation(format!(
            "url must be an http:// or https:// URL with a host, at most {URL_MAX_CHARS} characters"
        ))),
    }
}

/// At least one event, each one of the known names; stored once each, in the known order.
fn events(names: Vec<String>) -> Result<Vec<String>, AppError> {
    if names.is_empty() {
        return Err(AppError::validation("events must name at least one event"));
    }
    let mut wanted = Vec::new();
    for name in &names {
        let event: WebhookEvent = name.parse().map_err(|_| {
            let known: Vec<&str> = WebhookEvent::ALL.iter().map(|event| event.as_str()).collect();
            AppError::new(ErrorCode::UnknownEvent, format!("no event is called `{name}`; known: {}", known.join(", ")))
        })?;
        wanted.push(event);
    }
    Ok(WebhookEvent::ALL.iter().filter(|event| wanted.contains(event)).map(|event| event.as_str().to_owned()).collect())
}

fn secret() -> Result<String, AppError> {
    new_secret().map_err(|error| AppError::new(ErrorCode::Internal, format!("no random secret: {error}")))
}

/// The webhooks, oldest first (admins).
#[utoipa::path(
    tag = "webhooks",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/webhooks")]
pub async fn list(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    let hooks = db::run(&state.pool, async |conn| queries::list(conn).await).await?;
    Ok(HttpResponse::Ok().json(hooks.into_iter().map(|hook| WebhookView::new(hook, false)).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where deliveries are posted: `http://` or `https://`.
    url: String,
    /// Any of `session.started`, `session.handed_over`, `session.assigned`,
    /// `message.created`, `session.closed`, `session.rated`.
    events: Vec<String>,
    /// Sent events from the start (true unless given).
    active: Option<bool>,
}

/// Register a webhook (admins). The answer holds its secret, shown only now.
#[utoipa::path(
    tag = "webhooks",
    request_body = NewWebhookBody,
    responses(
        (status = 201, body = WebhookView),
        (status = 400, description = "A bad URL (`validation_failed`) or an unknown event (`unknown_event`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "20 webhooks exist (`limit_reached`)", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/api/admin/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<NewWebhookBody>,
) -> Result<HttpResponse, AppError> {
    let NewWebhookBody { url, events: names, active } = body.into_inner();
    let (url, names, secret) = (endpoint(url)?, events(names)?, secret()?);
    let created = db::run(&state.pool, async |conn| {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| {
            if queries::count_locked(conn).await? >= MAX_WEBHOOKS {
                return Ok(None);
            }
            queries::insert(conn, &url, &names, &secret, active.unwrap_or(true)).await.map(Some)
        })
        .await
    })
    .await?
    .ok_or_else(|| AppError::new(ErrorCode::LimitReached, format!("at most {MAX_WEBHOOKS} webhooks")))?;
    state.webhooks.changed().await;
    Ok(HttpResponse::Created().json(WebhookView::new(created, true)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookChangesBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// False stops deliveries (pending ones wait until it is true again).
    active: Option<bool>,
}

/// Change a webhook's URL, events or whether it is active (admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = WebhookChangesBody,
    responses(
        (status = 200, body = WebhookView),
        (status = 400, description = "A bad URL (`validation_failed`) or an unknown event (`unknown_event`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[patch("/api/admin/webhooks/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    body: web::Json<WebhookChangesBody>,
) -> Result<HttpResponse, AppError> {
    let WebhookChangesBody { url, events: names, active } = body.into_inner();
    if url.is_none() && names.is_none() && active.is_none() {
        return Err(AppError::validation("give url, events or active"));
    }
    let changes =
        WebhookChanges { url: url.map(endpoint).transpose()?, events: names.map(events).transpose()?, active };
    let id = id.into_inner();
    let updated = db::run(&state.pool, async |conn| queries::update(conn, id, &changes).await)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))?;
    state.webhooks.changed().await;
    Ok(HttpResponse::Ok().json(WebhookView::new(updated, false)))
}

/// Remove a webhook and its deliveries (admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/webhooks/{id}")]
pub async fn remove(state: web::Data<AppState>, _: Admin, id: web::Path<Uuid>) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !db::run(&state.pool, async |conn| queries::delete(conn, id).await).await? {
        return Err(AppError::not_found("webhook"));
    }
    state.webhooks.changed().await;
    Ok(HttpResponse::NoContent().finish())
}

/// Give a webhook a new secret (admins): deliveries from now on, retries
/// included, are signed with it. The answer holds it, shown only now.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/webhooks/{id}/secret")]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let (id, secret) = (id.into_inner(), secret()?);
    let rotated = db::run(&state.pool, async |conn| queries::rotate_secret(conn, id, &secret).await)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))?;
    state.webhooks.changed().await;
    Ok(HttpResponse::Ok().json(WebhookView::new(rotated, true)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// 1 to 200; 50 unless given.
    limit: Option<i64>,
}

/// A webhook's latest deliveries, newest first, with their status, attempts and last error (admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveriesQuery),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/webhooks/{id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=DELIVERIES_MAX).contains(&limit) {
        return Err(AppError::validation(format!("limit must be from 1 to {DELIVERIES_MAX}")));
    }
    let id = id.into_inner();
    let found = db::run(&state.pool, async |conn| {
        if !queries::exists(conn, id).await? {
            return Ok(None);
        }
        queries::recent_deliveries(conn, id, limit).await.map(Some)
    })
    .await?
    .ok_or_else(|| AppError::not_found("webhook"))?;
    Ok(HttpResponse::Ok().json(found))
}
