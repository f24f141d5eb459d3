//! `GET /metrics` in the Prometheus text format.

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::actors::messages::{LiveActors, QueueSnapshot};
use crate::auth::extractors::{authenticate, bearer_token};
use crate::domain::{Priority, Role};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

/// A scraper's `METRICS_TOKEN`, or an admin's token.
async fn check_access(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    let token = bearer_token(req).ok_or_else(|| {
        AppError::new(ErrorCode::Unauthorized, "metrics need a bearer token: METRICS_TOKEN or an admin's")
    })?;
    if let Some(expected) = &state.metrics_token {
        // Compared in time that does not depend on where the bytes differ.
        let same_length = token.len() == expected.len();
        let difference = token.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if same_length && difference == 0 {
            return Ok(());
        }
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
    if let Ok(waiting) = state.queue.send(QueueSnapshot).await {
        for priority in Priority::ALL {
            let count = waiting.iter().filter(|item| item.priority == *priority).count();
            state.metrics.queue_length.with_label_values(&[priority.as_str()]).set(count as i64);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render()))
}
