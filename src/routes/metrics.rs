//! `GET /metrics` in the Prometheus text format.

use actix_web::{get, web, HttpResponse};

use crate::actors::messages::{LiveActors, QueueSnapshot};
use crate::domain::Priority;
use crate::startup::AppState;

/// Connections by role, messages, queue length by priority, queue waits and the message writer.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
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
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
