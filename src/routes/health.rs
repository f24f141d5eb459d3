//! `GET /health` (live dependency checks) and `GET /api/info`.

use std::time::{Duration, Instant};

use actix_web::{get, web, HttpResponse};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::startup::AppState;

/// How long one dependency check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Serialize, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum DependencyStatus {
    Up,
    Down,
    NotConfigured,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DependencyHealth {
    status: DependencyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl DependencyHealth {
    fn from_check<E: std::fmt::Display>(
        started: Instant,
        outcome: Result<Result<(), E>, tokio::time::error::Elapsed>,
    ) -> Self {
        let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        match outcome {
            Ok(Ok(())) => DependencyHealth { status: DependencyStatus::Up, latency_ms, error: None },
            Ok(Err(error)) => {
                log::warn!("health check failed: {error}");
                DependencyHealth { status: DependencyStatus::Down, latency_ms, error: Some("unreachable".to_owned()) }
            }
            Err(_) => {
                DependencyHealth { status: DependencyStatus::Down, latency_ms, error: Some("timed out".to_owned()) }
            }
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Dependencies {
    database: DependencyHealth,
    redis: DependencyHealth,
}

/// The message writer: `degraded` while messages wait over a second to be
/// stored or some failed in the last ten seconds.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct WriterHealth {
    status: &'static str,
    lag_seconds: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    status: &'static str,
    dependencies: Dependencies,
    writer: WriterHealth,
    uptime_seconds: u64,
    version: &'static str,
    connections: i64,
    bot: BotHealth,
    /// With `REDIS_URL`: this node among the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterHealth>,
}

/// This node in a cluster: its name, whether it runs the queue and the
/// agents, and whether it hears the other nodes (`link` is `down` while
/// Redis is away: the node serves the chats it runs, and nothing else).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterHealth {
    node_id: String,
    leader: bool,
    link: &'static str,
    leases: &'static str,
}

/// The bot in use; `degraded` while an upstream's circuit breaker is open
/// (its fallback answers meanwhile, so the server stays healthy).
#[derive(Serialize, utoipa::ToSchema)]
struct BotHealth {
    kind: &'static str,
    status: &'static str,
}

async fn check_database(state: &AppState) -> DependencyHealth {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = state.pool.get().await.map_err(|error| error.to_string())?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.map_err(|error| error.to_string())?;
        Ok::<(), String>(())
    })
    .await;
    DependencyHealth::from_check(started, outcome)
}

async fn check_redis(state: &AppState) -> DependencyHealth {
    let Some(redis) = &state.redis else {
        return DependencyHealth { status: DependencyStatus::NotConfigured, latency_ms: None, error: None };
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = redis.get().await.map_err(|error| error.to_string())?;
        bb8_redis::redis::cmd("PING").query_async::<String>(&mut *conn).await.map_err(|error| error.to_string())?;
        Ok::<(), String>(())
    })
    .await;
    DependencyHealth::from_check(started, outcome)
}

/// Healthy when every configured dependency answers; 503 when the database does not.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let body = health_now(&state).await;
    if body.dependencies.database.status == DependencyStatus::Up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The checks of `GET /health`, also sent over an admin's socket.
pub async fn health_now(state: &AppState) -> Health {
    let (database, redis, node) = futures_util::join!(
        check_database(state),
        check_redis(state),
        state.registry.send(crate::actors::messages::ThisNode)
    );
    let cluster = node.ok().flatten().map(|node| ClusterHealth {
        node_id: node.node,
        leader: node.leader,
        link: if node.link_up { "up" } else { "down" },
        leases: if node.leases_held { "held" } else { "lapsing" },
    });
    let database_up = database.status == DependencyStatus::Up;
    let writer_degraded = state.metrics.writer_degraded();
    let all_up = database_up && redis.status != DependencyStatus::Down && !writer_degraded;
    Health {
        status: if all_up { "healthy" } else { "degraded" },
        dependencies: Dependencies { database, redis },
        writer: WriterHealth {
            status: if writer_degraded { "degraded" } else { "up" },
            lag_seconds: state.metrics.writer_lag_seconds.get(),
        },
        uptime_seconds: state.gauges.started_at.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
        connections: state.gauges.open_connections(),
        bot: BotHealth { kind: state.bot.kind(), status: if state.bot.degraded() { "degraded" } else { "up" } },
        cluster,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Info {
    name: &'static str,
    version: &'static str,
    features: Vec<&'static str>,
    /// `rules`, `llm` or `remote`.
    bot: &'static str,
}

/// What this server is and which optional parts are switched on.
#[utoipa::path(tag = "operations", responses((status = 200, body = Info)))]
#[get("/api/info")]
pub async fn info(state: web::Data<AppState>) -> HttpResponse {
    let mut features = vec!["postgres", "batched_message_writer"];
    if state.redis.is_some() {
        features.push("redis");
    }
    HttpResponse::Ok().json(Info {
        name: "switchboard",
        version: env!("CARGO_PKG_VERSION"),
        features,
        bot: state.bot.kind(),
    })
}
