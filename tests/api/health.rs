use reqwest::StatusCode;

use crate::helpers::{redis_url, spawn_app, spawn_app_with, unreachable_url, AppOptions};

#[tokio::test]
async fn health_reports_a_connected_database() {
    let app = spawn_app().await;
    let (status, body) = app.get_health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["dependencies"]["database"]["status"], "up");
    assert!(body["dependencies"]["database"]["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(body["dependencies"]["redis"]["status"], "not_configured");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSeconds"].as_u64().is_some());
    assert_eq!(body["connections"], 0);
}

#[tokio::test]
async fn health_checks_redis_when_it_is_configured() {
    let app = spawn_app_with(AppOptions::default().env("REDIS_URL", redis_url())).await;
    let (status, body) = app.get_health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["dependencies"]["redis"]["status"], "up");
    assert!(body["dependencies"]["redis"]["latencyMs"].as_f64().is_some());
}

#[tokio::test]
async fn an_unreachable_redis_leaves_the_server_up_but_degraded() {
    let app = spawn_app_with(AppOptions::default().env("REDIS_URL", unreachable_url("redis"))).await;
    let (status, body) = app.get_health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["dependencies"]["redis"]["status"], "down");
    assert_eq!(body["dependencies"]["database"]["status"], "up");
}

#[tokio::test]
async fn health_is_503_while_the_database_is_down_and_recovers_after() {
    let app = spawn_app().await;
    assert_eq!(app.get_health().await.0, StatusCode::OK);

    app.db.set_reachable(false).await;
    let (status, body) = app.get_health().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["dependencies"]["database"]["status"], "down");

    app.db.set_reachable(true).await;
    let (status, body) = app.get_health().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dependencies"]["database"]["status"], "up");
}

#[tokio::test]
async fn info_names_the_server_and_its_features() {
    let app = spawn_app_with(AppOptions::default().env("REDIS_URL", redis_url())).await;
    let response = app.get("/api/info").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["name"], "switchboard");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let features: Vec<&str> = body["features"].as_array().expect("a list").iter().filter_map(|f| f.as_str()).collect();
    assert!(features.contains(&"postgres"), "{features:?}");
    assert!(features.contains(&"redis"), "{features:?}");
}
