//! `GET /metrics` in the Prometheus text format.

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::actors::messages::{LiveActors, QueueSnapshot, ToQueue};
use crate::auth::extractors::{authenticate, bearer_header};
use crate::domain::{Priority, Role};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

/// A scraper's `METRICS_TOKEN`, or an admin's token.
async fn check_access(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    // The header only: a token in the URL would end up in access logs.
    let token = bearer_header(req).ok_or_else(|| {
        AppError::new(ErrorCode::Unauthorized, "metrics need a bearer token: METRICS_TOKEN or an admin's")
    })?;
    if state.metrics_token.as_deref().is_some_and(|expected| crate::auth::same_secret(&token, expected)) {
        return Ok(());
    }
    authenticate(state, &token, &[Role::Admin], None).await.map(|_| ())
}

/// Connections by role, messages, queue length by priority, queue waits and
/// the message writer. For a scraper with `Authorization: Bearer
/// <METRICS_TOKEN>`, or an admin.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, description = "No token, or neither METRICS_TOKEN nor an admin's (`unauthorized`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    check_access(&req, &state).await?;
    for (role, open) in state.gauges.by_role() {
        state.metrics.connections.with_label_values(&[role]).set(open);
    }
    if let Ok(live) = state.registry.send(LiveActors).await {
        state.metrics.live_actors.with_label_values(&["session"]).set(live.sessions as i64);
        state.metrics.live_actors.with_label_values(&["agent"]).set(live.agents as i64);
    }
    if let Ok(Ok(waiting)) = state.registry.send(ToQueue(QueueSnapshot)).await {
        for priority in Priority::ALL {
            let count = waiting.iter().filter(|item| item.priority == *priority).count();
            state.metrics.queue_length.with_label_values(&[priority.as_str()]).set(count as i64);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render()))
}
