use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_with_exit_code_zero() {
    let mut app = spawn_app().await;
    assert_eq!(app.get_health().await.0, StatusCode::OK);
    let status = app.terminate().await;
    assert!(status.success(), "exit status {status:?}; log:\n{}", app.log());
    let log = app.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(app.http.get(format!("{}/health", app.address)).send().await.is_err(), "nothing listens after exit");
}
