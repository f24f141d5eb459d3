//! Reports for a date range: per agent and overall, with the customers'
//! ratings counted in the range their chats started in.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Person, TestApp, WsClient};

/// A customer's chat that `agent` answers and resolves, then the customer rates.
async fn rated_chat(app: &TestApp, customer: &str, agent: &Person, desk: &mut WsClient, rating: u8) -> String {
    let person = app.visitor(customer).await;
    let mut socket = app.customer_socket(&person).await;
    let session_id = socket.start_chat().await;
    socket.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    desk.wait_for("the assignment", |f| f["event"] == "session:assigned" && f["data"]["sessionId"] == session_id).await;
    desk.ok(
        "agent:send_message",
        "message:sent",
        json!({ "sessionId": session_id, "content": "Happy to help", "clientMsgId": format!("hi-{session_id}") }),
    )
    .await;
    let (status, _) = app.post_as(&format!("/api/sessions/{session_id}/resolve"), &agent.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.post_as(&format!("/api/sessions/{session_id}/rating"), &person.token, json!({ "rating": rating })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    session_id
}

#[tokio::test]
async fn a_report_counts_chats_times_and_ratings_per_agent_for_the_range_asked() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;
    let bob = app.agent("bob", 1).await;
    let mut alices = app.agent_socket(&alice).await;
    alices.ok("agent:join", "agent:joined", json!({})).await;
    rated_chat(&app, "Ann", &alice, &mut alices, 4).await;
    drop(alices);
    let mut bobs = app.agent_socket(&bob).await;
    bobs.ok("agent:join", "agent:joined", json!({})).await;
    let bens = rated_chat(&app, "Ben", &bob, &mut bobs, 2).await;
    // A chat the bot kept: counted, never handed over.
    let cat = app.visitor("Cat").await;
    let mut cats = app.customer_socket(&cat).await;
    cats.start_chat().await;

    let today = chrono::Utc::now().date_naive();
    let (status, report) = app.get_as(&format!("/api/admin/reports?from={today}&to={today}"), &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let overall = &report["overall"];
    assert_eq!(overall["chats"], 3);
    assert_eq!(overall["handedOff"], 2);
    assert_eq!(overall["csat"]["count"], 2);
    assert_eq!(overall["csat"]["average"], 3.0);
    assert_eq!(overall["csat"]["distribution"], json!({ "1": 0, "2": 1, "3": 0, "4": 1, "5": 0 }));
    let agents = report["byAgent"].as_array().expect("byAgent");
    let names: Vec<&str> = agents.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["Alice", "Bob"]);
    assert_eq!((agents[0]["chats"].as_i64(), agents[0]["csat"]["average"].as_f64()), (Some(1), Some(4.0)));
    assert_eq!((agents[1]["chats"].as_i64(), agents[1]["csat"]["average"].as_f64()), (Some(1), Some(2.0)));
    for agent in agents {
        assert!(agent["firstResponseSeconds"]["p50"].as_f64().is_some(), "{agent}");
        assert!(agent["resolutionSeconds"]["p90"].as_f64().is_some(), "{agent}");
    }

    // Ben's chat started yesterday: it and its rating move to yesterday's report.
    let db = app.db.client().await;
    db.execute(
        "UPDATE chat_sessions SET created_at = created_at - interval '1 day' WHERE id = $1",
        &[&bens.parse::<uuid::Uuid>().expect("uuid")],
    )
    .await
    .expect("moved");
    let (_, report) = app.get_as(&format!("/api/admin/reports?from={today}&to={today}"), &admin.token).await;
    assert_eq!(
        (report["overall"]["chats"].as_i64(), report["overall"]["csat"]["average"].as_f64()),
        (Some(2), Some(4.0))
    );
    let yesterday = today.pred_opt().expect("a day");
    let (_, report) = app.get_as(&format!("/api/admin/reports?from={yesterday}&to={yesterday}"), &admin.token).await;
    assert_eq!(
        (report["overall"]["chats"].as_i64(), report["overall"]["csat"]["average"].as_f64()),
        (Some(1), Some(2.0))
    );
    assert_eq!(report["byAgent"][0]["name"], "Bob");
    let last_week = today - chrono::Duration::days(9);
    let (_, report) = app
        .get_as(&format!("/api/admin/reports?from={last_week}&to={}", today - chrono::Duration::days(3)), &admin.token)
        .await;
    assert_eq!(report["overall"]["chats"], 0);
    assert!(report["overall"]["csat"]["average"].is_null());
    assert_eq!(report["byAgent"], json!([]));

    // The same as CSV.
    let response = app
        .http
        .get(format!("{}/api/admin/reports.csv?from={yesterday}&to={today}", app.address))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/csv"));
    let text = response.text().await.expect("body");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("scope,id,name,chats,handed_off"));
    assert!(lines[1].starts_with("overall,,,3,2,"), "{text}");
    assert!(lines[2].starts_with(&format!("agent,{},Alice,1,1,", alice.user_id)), "{text}");

    // Admins only; bad ranges are the client's mistake.
    let (status, _) = app.get_as("/api/admin/reports", &alice.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for query in
        [format!("from={today}&to={yesterday}"), "from=2020-01-01&to=2026-01-01".to_owned(), "from=monday".to_owned()]
    {
        let (status, body) = app.get_as(&format!("/api/admin/reports?{query}"), &admin.token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, _) = app.get_as("/api/admin/reports", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "the last seven days by default");
}
