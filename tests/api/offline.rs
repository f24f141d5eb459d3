//! Business hours and offline messages: outside the hours, or with no agent
//! online for a while, the customer is told so and may leave a message with
//! an email address; the chat waits in the queue as an offline request until
//! an agent picks it up and answers, by email and in the chat.

use std::time::Duration;

use chrono::{Days, Utc};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, TestApp, WsClient};
use crate::smtp_sink::SmtpSink;

/// Open all week, all day, in `zone`, but for `holidays`.
pub fn hours_all_week(zone: &str, holidays: &[String]) -> serde_json::Value {
    let day = json!([{ "open": "00:00", "close": "24:00" }]);
    json!({
        "timeZone": zone,
        "weekly": {
            "monday": day, "tuesday": day, "wednesday": day, "thursday": day,
            "friday": day, "saturday": day, "sunday": day,
        },
        "holidays": holidays,
    })
}

/// Today and tomorrow in UTC (so a test that runs across midnight is still closed).
pub fn today_and_tomorrow() -> Vec<String> {
    let today = Utc::now().date_naive();
    vec![today.to_string(), (today + Days::new(1)).to_string()]
}

async fn joined(app: &TestApp, username: &str, max_chats: u32) -> (crate::helpers::Person, WsClient) {
    let agent = app.agent(username, max_chats).await;
    let mut socket = app.agent_socket(&agent).await;
    socket.ok("agent:join", "agent:joined", json!({})).await;
    (agent, socket)
}

#[tokio::test]
async fn a_chat_outside_business_hours_leaves_a_message_that_waits_as_offline_until_an_agent_answers_it() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(
        AppOptions::default().env("SMTP_URL", sink.url()).env("MAIL_FROM", "Acme Support <support@acme.example>"),
    )
    .await;
    let admin = app.staff("root", "admin", 1).await;
    // Closed today: a holiday, though the week is open around the clock.
    let (status, hours) =
        app.put_as("/api/admin/business-hours", &admin.token, hours_all_week("UTC", &today_and_tomorrow())).await;
    assert_eq!(status, StatusCode::OK, "{hours}");
    assert_eq!((hours["applies"].as_str(), hours["openNow"].as_bool()), (Some("global"), Some(false)));
    let day_after = (Utc::now().date_naive() + Days::new(2)).to_string();
    assert!(hours["opensAt"].as_str().is_some_and(|at| at.starts_with(&day_after)), "{hours}");

    // An agent is online with room: hours decide, and offline requests are never given out by themselves.
    let (_otto, mut ottos) = joined(&app, "otto", 3).await;

    let ann = app.visitor("Ann").await;
    let mut anns = app.customer_socket(&ann).await;
    let session_id = anns.start_chat().await;
    let offer = anns.push("session:offline").await;
    assert_eq!((offer["sessionId"].as_str(), offer["reason"].as_str()), (Some(session_id.as_str()), Some("closed")));
    assert!(offer["opensAt"].as_str().is_some_and(|at| at.starts_with(&day_after)), "{offer}");

    // A bad address is refused, and nothing changes.
    let form = |email: &str| json!({ "sessionId": session_id, "email": email, "content": "My parcel never came. Order 1234.", "clientMsgId": "form-1" });
    assert_eq!(anns.refused("customer:leave_message", form("ann at example")).await, "invalid_email");
    let changed = anns.ok("customer:leave_message", "status:changed", form("ann@example.com")).await;
    assert_eq!(changed["status"], "offline");
    assert_eq!(anns.refused("customer:leave_message", form("ann@example.com")).await, "conflict", "once is enough");
    let thanks =
        anns.wait_for("the thank-you", |f| f["event"] == "message:received" && f["data"]["sender"] == "system").await;
    assert!(thanks["data"]["content"].as_str().is_some_and(|text| text.contains("ann@example.com")), "{thanks}");

    // It waits on the desk's board, over REST and in the admin's view, as offline.
    let board = ottos
        .board_when("the offline request", |board| board.iter().any(|item| item["sessionId"] == session_id.as_str()))
        .await;
    let item = board.iter().find(|item| item["sessionId"] == session_id.as_str()).expect("on the board");
    assert_eq!((item["status"].as_str(), item["reason"].as_str()), (Some("offline"), Some("offline")));
    assert_eq!(item["preview"], "My parcel never came. Order 1234.");
    let (status, queue) = app.get_as("/api/queue", &_otto.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue[0]["status"], "offline", "{queue}");
    let (_, debug) = app.get_as("/api/admin/queue", &admin.token).await;
    assert_eq!((debug["waiting"][0]["status"].as_str(), debug["storedEntries"].as_i64()), (Some("offline"), Some(1)));
    let (_, listed) = app.get_as("/api/sessions?status=offline", &_otto.token).await;
    assert_eq!(listed["sessions"][0]["sessionId"].as_str(), Some(session_id.as_str()), "{listed}");
    // Otto has room and is online, yet it is not given to him while Ann is gone.
    anns.close().await;
    assert!(ottos.pushes_within("session:assigned", Duration::from_millis(1500)).await.is_empty());
    let stored = app
        .count(&format!("SELECT count(*) FROM chat_sessions WHERE id = '{session_id}' AND status = 'offline' AND offline_email = 'ann@example.com'"))
        .await;
    assert_eq!(stored, 1);

    // Otto picks it up by hand and answers.
    let assigned = ottos.ok("agent:pickup_session", "session:assigned", json!({ "sessionId": session_id })).await;
    assert_eq!(assigned["session"]["offlineEmail"], "ann@example.com");
    let messages = assigned["messages"].as_array().expect("messages");
    assert!(messages.iter().any(|m| m["sender"] == "customer" && m["content"] == "My parcel never came. Order 1234."));
    let answer = "Sorry, Ann: it is on its way again and arrives on Tuesday.";
    ottos
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": answer, "clientMsgId": "otto-1" }),
        )
        .await;

    // Ann is away: the answer reaches her address, in plain text and HTML.
    let mail = sink.wait_for(|mail| mail.to.iter().any(|to| to == "ann@example.com"), Duration::from_secs(15)).await;
    assert_eq!(mail.subject, "Otto answered your message");
    assert_eq!(mail.from, "support@acme.example");
    assert!(mail.text.contains(answer), "{}", mail.text);
    assert!(mail.html.contains("it is on its way again"), "{}", mail.html);
    let queued =
        format!("SELECT count(*) FROM email_outbox WHERE kind = 'offline_reply' AND session_id = '{session_id}'");
    assert_eq!(app.settled_count(&queued).await, 1, "one answer, one email");

    // Ann comes back: the answer is in her chat, which stays with Otto until he closes it.
    let mut back = app.customer_socket(&ann).await;
    let resumed = back.ok("customer:resume", "session:resumed", json!({ "sessionId": session_id })).await;
    assert_eq!(
        (resumed["session"]["status"].as_str(), resumed["session"]["agentName"].as_str()),
        (Some("assigned"), Some("Otto"))
    );
    let messages = resumed["messages"].as_array().expect("messages");
    assert!(messages.iter().any(|m| m["sender"] == "agent" && m["content"] == answer), "{resumed}");
    // With Ann here, the chat goes on live: no more email.
    ottos
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Anything else?", "clientMsgId": "otto-2" }),
        )
        .await;
    let live = back
        .wait_for("Otto's live answer", |f| {
            f["event"] == "message:received" && f["data"]["content"] == "Anything else?"
        })
        .await;
    assert_eq!(live["data"]["sender"], "agent");
    assert_eq!(app.settled_count(&queued).await, 1, "no email while Ann is in the chat");
    let closed =
        ottos.ok("agent:close_session", "session:closed", json!({ "sessionId": session_id, "resolved": true })).await;
    assert_eq!(closed["reason"], "resolved");
}

#[tokio::test]
async fn with_no_agent_online_a_waiting_customer_is_offered_the_form_after_the_configured_time() {
    let app = spawn_app_with(AppOptions::default().env("OFFLINE_AFTER_NO_AGENT_MS", "400")).await;
    let ann = app.visitor("Ann").await;
    let mut anns = app.customer_socket(&ann).await;
    let session_id = anns.start_chat().await;
    anns.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    let offer = anns.push("session:offline").await;
    assert_eq!((offer["sessionId"].as_str(), offer["reason"].as_str()), (Some(session_id.as_str()), Some("no_agent")));
    assert!(offer.get("opensAt").is_none(), "{offer}");
    assert!(anns.pushes_within("session:offline", Duration::from_millis(1200)).await.is_empty(), "offered once");

    // The customer may still wait: an agent who comes online gets the chat as usual.
    let (_otto, mut ottos) = joined(&app, "otto", 1).await;
    let assigned = ottos.push("session:assigned").await;
    assert_eq!(assigned["sessionId"].as_str(), Some(session_id.as_str()));
}

#[tokio::test]
async fn within_hours_and_with_an_agent_online_nobody_is_offered_the_form() {
    let app = spawn_app_with(AppOptions::default().env("OFFLINE_AFTER_NO_AGENT_MS", "300")).await;
    let admin = app.staff("root", "admin", 1).await;
    let (status, hours) =
        app.put_as("/api/admin/business-hours", &admin.token, hours_all_week("Europe/Berlin", &[])).await;
    assert_eq!((status, hours["openNow"].as_bool()), (StatusCode::OK, Some(true)), "{hours}");
    // Otto is online but busy with one chat: the next customer waits for him.
    let (_otto, mut ottos) = joined(&app, "otto", 1).await;
    let mut first = app.customer_socket(&app.visitor("Ann").await).await;
    let firsts = first.start_chat().await;
    first.ok("customer:request_agent", "status:changed", json!({ "sessionId": firsts })).await;
    ottos.push("session:assigned").await;

    let mut ben = app.customer_socket(&app.visitor("Ben").await).await;
    let bens = ben.start_chat().await;
    let waiting = ben.ok("customer:request_agent", "status:changed", json!({ "sessionId": bens })).await;
    assert_eq!(waiting["status"], "waiting");
    assert!(ben.pushes_within("session:offline", Duration::from_millis(1500)).await.is_empty());
    assert!(first.pushes_within("session:offline", Duration::from_millis(10)).await.is_empty());
}

#[tokio::test]
async fn a_teams_own_hours_win_over_the_global_hours_and_bad_hours_are_refused_with_clear_codes() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let agent = app.agent("otto", 1).await;
    let (_, team) = app.post_as("/api/admin/teams", &admin.token, json!({ "name": "Billing" })).await;
    let team_id = team["id"].as_str().expect("team id").to_owned();
    let team_hours = format!("/api/admin/teams/{team_id}/hours");

    // Nothing set: always open.
    let (status, view) = app.get_as(&format!("/api/teams/{team_id}/hours"), &agent.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (view["applies"].as_str(), view["openNow"].as_bool(), &view["hours"]),
        (Some("always_open"), Some(true), &json!(null))
    );

    // Bad input: each mistake has its code, and nothing is stored.
    let mut bad_zone = hours_all_week("Mars/Olympus_Mons", &[]);
    let (status, body) = app.put_as(&team_hours, &admin.token, bad_zone.clone()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_time_zone")), "{body}");
    bad_zone["timeZone"] = json!("Europe/Berlin");
    for monday in [
        json!([{ "open": "09:00", "close": "12:00" }, { "open": "11:30", "close": "14:00" }]),
        json!([{ "open": "17:00", "close": "09:00" }]),
        json!([{ "open": "9am", "close": "17:00" }]),
        json!([{ "open": "09:00", "close": "24:30" }]),
    ] {
        bad_zone["weekly"]["monday"] = monday.clone();
        let (status, body) = app.put_as(&team_hours, &admin.token, bad_zone.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_business_hours")),
            "{monday}: {body}"
        );
    }
    let (status, _) =
        app.put_as(&team_hours, &admin.token, json!({ "timeZone": "UTC", "weekly": { "caturday": [] } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.put_as(&team_hours, &agent.token, hours_all_week("UTC", &[])).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "agents do not set hours");
    let (status, _) = app.put_as("/api/admin/business-hours", &agent.token, hours_all_week("UTC", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .put_as(&format!("/api/admin/teams/{}/hours", Uuid::new_v4()), &admin.token, hours_all_week("UTC", &[]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM business_hours").await, 0);

    // Global hours open, Billing's own closed today: Billing's chats are offered the form, others not.
    let (status, _) = app.put_as("/api/admin/business-hours", &admin.token, hours_all_week("UTC", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, view) =
        app.put_as(&team_hours, &admin.token, hours_all_week("Asia/Tokyo", &today_and_tomorrow())).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!((view["applies"].as_str(), view["hours"]["timeZone"].as_str()), (Some("team"), Some("Asia/Tokyo")));
    let (_, view) = app.get_as(&format!("/api/teams/{team_id}/hours"), &agent.token).await;
    assert_eq!(view["hours"]["holidays"], json!(today_and_tomorrow()));

    let ann_person = app.visitor("Ann").await;
    let mut ann = app.customer_socket(&ann_person).await;
    let created = ann.ok("customer:start_chat", "session:created", json!({ "team": "Billing" })).await;
    let offer = ann.push("session:offline").await;
    assert_eq!(
        (offer["sessionId"].as_str(), offer["reason"].as_str()),
        (created["sessionId"].as_str(), Some("closed"))
    );
    // Offered again when the chat goes to the queue, and when the customer comes back to it.
    let anns = created["sessionId"].as_str().expect("session id").to_owned();
    ann.ok("customer:request_agent", "status:changed", json!({ "sessionId": anns })).await;
    assert_eq!(ann.push("session:offline").await["reason"], "closed");
    ann.close().await;
    let mut ann_again = app.customer_socket(&ann_person).await;
    ann_again.ok("customer:resume", "session:resumed", json!({ "sessionId": anns })).await;
    assert_eq!(ann_again.push("session:offline").await["sessionId"].as_str(), Some(anns.as_str()));
    let mut ben = app.customer_socket(&app.visitor("Ben").await).await;
    ben.start_chat().await;
    assert!(ben.pushes_within("session:offline", Duration::from_millis(1000)).await.is_empty());

    // Without its own hours Billing keeps to the global ones again.
    let (status, _) = app.delete_as(&team_hours, &admin.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete_as(&team_hours, &admin.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, view) = app.get_as(&format!("/api/teams/{team_id}/hours"), &agent.token).await;
    assert_eq!((view["applies"].as_str(), view["openNow"].as_bool()), (Some("global"), Some(true)));
    let (_, view) = app.get_as("/api/business-hours", &agent.token).await;
    assert_eq!(view["hours"]["timeZone"], "UTC");
}

#[tokio::test]
async fn a_new_priority_for_an_offline_request_reaches_the_board() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let (status, hours) =
        app.put_as("/api/admin/business-hours", &admin.token, hours_all_week("UTC", &today_and_tomorrow())).await;
    assert_eq!(status, StatusCode::OK, "{hours}");
    let ann = app.visitor("Ann").await;
    let mut anns = app.customer_socket(&ann).await;
    let session_id = anns.start_chat().await;
    let form = json!({ "sessionId": session_id, "email": "ann@example.com", "content": "Call me back.", "clientMsgId": "form-1" });
    let changed = anns.ok("customer:leave_message", "status:changed", form).await;
    assert_eq!(changed["status"], "offline");

    let (status, updated) =
        app.patch_as(&format!("/api/sessions/{session_id}"), &admin.token, json!({ "priority": "high" })).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["priority"], "high", "{updated}");

    // The board the desk sees is the queue's own: it has the new priority too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, queue) = app.get_as("/api/queue", &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{queue}");
        let item = queue
            .as_array()
            .and_then(|items| items.iter().find(|item| item["sessionId"] == session_id.as_str()))
            .cloned()
            .expect("the offline request is on the board");
        assert_eq!(item["status"], "offline", "{item}");
        if item["priority"] == "high" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the board still shows {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn hours_set_twice_at_once_are_both_answered_and_one_of_them_kept() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let (_, team) = app.post_as("/api/admin/teams", &admin.token, json!({ "name": "Billing" })).await;
    let team_id = team["id"].as_str().expect("team id").to_owned();

    for path in ["/api/admin/business-hours".to_owned(), format!("/api/admin/teams/{team_id}/hours")] {
        for round in 0..3 {
            // A double click, or two admins at once: each PUT replaces the hours.
            let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Europe/Paris", "Africa/Cairo"];
            let puts = zones.map(|zone| app.put_as(&path, &admin.token, hours_all_week(zone, &[])));
            for (status, body) in futures_util::future::join_all(puts).await {
                assert_eq!(status, StatusCode::OK, "{path}, round {round}: {body}");
            }
        }
        let team = if path.contains("/teams/") { format!("= '{team_id}'") } else { "IS NULL".to_owned() };
        let stored = app.count(&format!("SELECT count(*) FROM business_hours WHERE team_id {team}")).await;
        assert_eq!(stored, 1, "{path}");
    }
}
