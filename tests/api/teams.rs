//! Teams: chats routed to a team by the host site's token, the widget or an
//! agent go to that team's agents first; others take them only while nobody
//! of the team is online.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, Person, TestApp, WsClient, JWT_SECRET};

/// A customer of a host website that signs `team` into their token.
fn host_customer_for(name: &str, team: &str) -> Person {
    let user_id = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": user_id, "role": "customer", "name": name, "team": team,
        "iss": "switchboard", "aud": "switchboard:customer", "iat": now, "nbf": now, "exp": now + 1800,
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("a host token");
    Person { user_id, name: name.to_owned(), token }
}

/// A chat started with the widget's `team` option, waiting for a person.
async fn waiting_for(app: &TestApp, person: &Person, team: &str) -> (WsClient, String) {
    let mut socket = app.customer_socket(person).await;
    let created = socket.ok("customer:start_chat", "session:created", json!({ "team": team })).await;
    let session_id = created["sessionId"].as_str().expect("id").to_owned();
    socket.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    (socket, session_id)
}

async fn joined(app: &TestApp, person: &Person) -> WsClient {
    let mut socket = app.agent_socket(person).await;
    socket.ok("agent:join", "agent:joined", json!({})).await;
    socket
}

#[tokio::test]
async fn chats_for_a_team_go_to_its_agents_first_and_to_others_only_when_none_is_online() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let bea = app.agent("bea", 1).await;
    let sam = app.agent("sam", 5).await;
    let otto = app.agent("otto", 5).await;
    let mut ids = std::collections::HashMap::new();
    for name in ["Billing", "Sales"] {
        let (status, team) = app.post_as("/api/admin/teams", &admin.token, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{team}");
        ids.insert(name, team["id"].as_str().expect("id").to_owned());
    }
    let (status, _) = app.post_as("/api/admin/teams", &admin.token, json!({ "name": "Billing" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for (team, member) in [("Billing", &bea), ("Sales", &sam)] {
        let path = format!("/api/admin/teams/{}/members", ids[team]);
        let (status, body) = app.put_as(&path, &admin.token, json!({ "agentIds": [member.user_id] })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["members"][0]["name"], member.name.as_str());
    }
    let (status, _) = app
        .put_as(
            &format!("/api/admin/teams/{}/members", ids["Sales"]),
            &admin.token,
            json!({ "agentIds": [Uuid::new_v4()] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .put_as(&format!("/api/admin/teams/{}/members", Uuid::new_v4()), &admin.token, json!({ "agentIds": [] }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, teams) = app.get_as("/api/teams", &sam.token).await;
    assert_eq!(teams.as_array().map(Vec::len), Some(2));

    let mut beas = joined(&app, &bea).await;
    let mut sams = joined(&app, &sam).await;

    // The widget asks for Billing: Bea gets it, though Sam has more room.
    let ann = app.visitor("Ann").await;
    let (_ann_socket, anns) = waiting_for(&app, &ann, "Billing").await;
    let assigned = beas.push("session:assigned").await;
    assert_eq!(assigned["sessionId"].as_str(), Some(anns.as_str()));
    assert_eq!(assigned["session"]["teamId"].as_str(), Some(ids["Billing"].as_str()));

    // Bea is full: the next Billing chat waits for her rather than going to Sam.
    let ben = app.visitor("Ben").await;
    let (_ben_socket, bens) = waiting_for(&app, &ben, "Billing").await;
    assert!(sams.pushes_within("session:assigned", Duration::from_millis(600)).await.is_empty());
    let (_, queue) = app.get_as("/api/admin/queue", &admin.token).await;
    assert_eq!(queue["waiting"][0]["sessionId"].as_str(), Some(bens.as_str()));
    assert_eq!(queue["waiting"][0]["teamId"].as_str(), Some(ids["Billing"].as_str()));

    // A host website's signed team wins over the widget's choice.
    let cat = host_customer_for("Cat", "Sales");
    let (_cat_socket, cats) = waiting_for(&app, &cat, "Billing").await;
    let assigned = sams.push("session:assigned").await;
    assert_eq!(assigned["sessionId"].as_str(), Some(cats.as_str()));

    // Sam sends Cat's chat on to Billing: it waits for Bea now.
    let transferred = sams
        .ok("agent:transfer", "session:transferred", json!({ "sessionId": cats, "toTeamId": ids["Billing"] }))
        .await;
    assert_eq!(transferred["status"], "waiting");
    let (_, session) = app.get_as(&format!("/api/sessions/{cats}"), &admin.token).await;
    assert_eq!(session["teamId"].as_str(), Some(ids["Billing"].as_str()));
    let code = sams
        .refused("agent:transfer", json!({ "sessionId": cats, "toTeamId": ids["Sales"], "toAgentId": bea.user_id }))
        .await;
    assert_eq!(code, "invalid_payload", "an agent or a team, not both");

    // Bea resolves Ann's chat and gets the Billing chat that waited longest.
    let (status, _) = app.post_as(&format!("/api/sessions/{anns}/resolve"), &bea.token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let next = beas
        .wait_for("Ben's chat", |f| f["event"] == "session:assigned" && f["data"]["sessionId"] == bens.as_str())
        .await;
    assert_eq!(next["data"]["session"]["customerName"], "Ben");

    // Bea leaves: with nobody of Billing online, Otto (no team) takes Cat's chat.
    beas.close().await;
    let mut ottos = joined(&app, &otto).await;
    let taken = ottos.push("session:assigned").await;
    assert_eq!(taken["sessionId"].as_str(), Some(cats.as_str()));

    // An unknown team is the customer's mistake, at once.
    let mut dan = app.customer_socket(&app.visitor("Dan").await).await;
    assert_eq!(dan.refused("customer:start_chat", json!({ "team": "Nope" })).await, "invalid_payload");
    let (status, body) =
        app.post_as(&format!("/api/sessions/{bens}/transfer"), &bea.token, json!({ "toTeamId": Uuid::new_v4() })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    let (_, session) = app.get_as(&format!("/api/sessions/{bens}"), &admin.token).await;
    assert_eq!(session["status"], "assigned", "an unknown team leaves the chat where it was");

    // Search and reports see the teams.
    let (_, found) = app.get_as(&format!("/api/sessions?teamId={}", ids["Billing"]), &admin.token).await;
    let mut billing: Vec<&str> =
        found["sessions"].as_array().expect("sessions").iter().filter_map(|s| s["sessionId"].as_str()).collect();
    billing.sort();
    let mut expected = vec![anns.as_str(), bens.as_str(), cats.as_str()];
    expected.sort();
    assert_eq!(billing, expected);
    let (_, report) = app.get_as("/api/admin/reports", &admin.token).await;
    let by_team = report["byTeam"].as_array().expect("byTeam");
    let billing_row = by_team.iter().find(|row| row["name"] == "Billing").expect("Billing in the report");
    assert_eq!(billing_row["chats"], 3);

    // The desk's transfer dialog: agents with their load and teams.
    let (_, agents) = app.get_as("/api/agents", &sam.token).await;
    let sam_row = agents.as_array().expect("agents").iter().find(|a| a["name"] == "Sam").expect("Sam");
    assert_eq!(sam_row["teamIds"], json!([ids["Sales"]]));
    assert_eq!(sam_row["maxConcurrent"], 5);
}
