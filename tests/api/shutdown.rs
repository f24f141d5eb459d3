use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn sigterm_closes_sockets_with_a_close_frame_and_exits_zero() {
    let mut app = spawn_app().await;
    assert_eq!(app.get_health().await.0, StatusCode::OK);
    let ann = app.visitor("Ann").await;
    let mut customer = app.customer_socket(&ann).await;
    customer.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(app.get_health().await.1["connections"], 1);

    let status = app.terminate().await;
    assert!(status.success(), "exit status {status:?}; log:\n{}", app.log());
    let close = customer.closed_by_server().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
    let log = app.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(app.http.get(format!("{}/health", app.address)).send().await.is_err(), "nothing listens after exit");
}
