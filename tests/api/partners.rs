//! A third participant: a partner organisation (a restaurant) invited into a
//! chat by its agent. Its members see only the chats they are invited into,
//! from the invitation on (or with the history), never a private note, and
//! lose the chat the moment the agent removes them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, Person, TestApp, WsClient};
use crate::resume::{assigned_chat, customer_token, Chat};
use crate::socket_caps::refused_upgrade;

/// A partner organisation and one of its members, signed in.
struct Restaurant {
    org_id: String,
    member: Person,
}

/// The admin creates the organisation and its account over REST; the member signs in like staff.
async fn restaurant(app: &TestApp, admin: &Person, name: &str, username: &str, display_name: &str) -> Restaurant {
    let (status, org) = app.post_as("/api/admin/partners", &admin.token, json!({ "name": name })).await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    let org_id = org["id"].as_str().expect("id").to_owned();
    let (status, account) = app
        .post_as(
            &format!("/api/admin/partners/{org_id}/accounts"),
            &admin.token,
            json!({ "username": username, "password": "pizza-oven-hot", "displayName": display_name }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["role"], "partner");
    let response = app.post_json("/auth/login", &json!({ "username": username, "password": "pizza-oven-hot" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let login: Value = response.json().await.expect("JSON");
    assert_eq!(login["role"], "partner");
    let member = Person {
        user_id: login["userId"].as_str().expect("userId").parse().expect("uuid"),
        name: display_name.to_owned(),
        token: login["token"].as_str().expect("token").to_owned(),
    };
    Restaurant { org_id, member }
}

async fn partner_socket(app: &TestApp, member: &Person) -> WsClient {
    WsClient::connect(&app.ws_url("/ws/partner", &member.token)).await.expect("partner socket opens")
}

async fn say(socket: &mut WsClient, event: &str, session_id: &str, content: &str) -> i64 {
    let sent = socket
        .ok(event, "message:sent", json!({ "sessionId": session_id, "content": content, "clientMsgId": content }))
        .await;
    sent["seq"].as_i64().expect("seq")
}

fn contents(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits for the message with `content` and returns it.
async fn message(socket: &mut WsClient, content: &str) -> Value {
    let frame = socket.wait_for(content, |f| f["event"] == "message:received" && f["data"]["content"] == content).await;
    frame["data"].clone()
}

#[tokio::test]
async fn an_invited_restaurant_talks_with_the_customer_and_the_agent_and_each_sees_who_wrote() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, ann, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;

    // Before the invitation: a customer message and a private note.
    say(&mut customer, "customer:send_message", &session_id, "Where is my pizza?").await;
    agent
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": session_id, "content": "courier is late again", "clientMsgId": "n1" }),
        )
        .await;

    // The agent invites the restaurant, from now on.
    let joined = agent
        .ok(
            "agent:invite_partner",
            "partner:joined",
            json!({ "sessionId": session_id, "partnerOrgId": roma.org_id, "withHistory": false }),
        )
        .await;
    assert_eq!(joined["name"], "Pizza Roma");
    assert_eq!(joined["withHistory"], false);
    // The customer sees the restaurant join, in the chat's history too.
    let pushed = customer.push("partner:joined").await;
    assert_eq!(pushed["partnerOrgId"], roma.org_id.as_str());
    let note = message(&mut customer, "Pizza Roma joined the chat.").await;
    assert_eq!(note["sender"], "system");

    // The restaurant's list shows the chat; it follows it over its own socket.
    let (status, chats) = app.get_as("/api/partner/sessions", &roma.member.token).await;
    assert_eq!(status, StatusCode::OK, "{chats}");
    assert_eq!(chats.as_array().expect("list").len(), 1);
    assert_eq!(chats[0]["sessionId"], session_id.as_str());
    assert_eq!(chats[0]["customerName"], "Ann");
    let mut partner = partner_socket(&app, &roma.member).await;
    let resumed = partner.ok("partner:join_chat", "session:resumed", json!({ "sessionId": session_id })).await;
    // Nothing from before the invitation, and no note.
    assert_eq!(contents(&resumed["messages"]), vec!["Pizza Roma joined the chat."]);
    assert_eq!(resumed["session"]["customerName"], "Ann");
    assert!(resumed["session"].get("notes").is_none());

    // The restaurant writes: the customer and the agent see it, with its name.
    say(&mut partner, "partner:send_message", &session_id, "Your pizza leaves in 5 minutes").await;
    for socket in [&mut customer, &mut agent] {
        let seen = message(socket, "Your pizza leaves in 5 minutes").await;
        assert_eq!(seen["sender"], "partner");
        assert_eq!(seen["senderName"], "Ana (Pizza Roma)");
    }
    // The agent and the customer write: the restaurant sees both, with their names.
    say(&mut agent, "agent:send_message", &session_id, "Thank you, Pizza Roma").await;
    let seen = message(&mut partner, "Thank you, Pizza Roma").await;
    assert_eq!((seen["sender"].as_str(), seen["senderName"].as_str()), (Some("agent"), Some("Alice")));
    say(&mut customer, "customer:send_message", &session_id, "Great, thanks!").await;
    let seen = message(&mut partner, "Great, thanks!").await;
    assert_eq!((seen["sender"].as_str(), seen["senderName"].as_str()), (Some("customer"), Some("Ann")));

    // A note written now never reaches the restaurant, live or later.
    agent
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": session_id, "content": "offer a voucher", "clientMsgId": "n2" }),
        )
        .await;
    say(&mut agent, "agent:send_message", &session_id, "Enjoy your meal").await;
    message(&mut partner, "Enjoy your meal").await;
    let more = partner.pushes_within("message:received", Duration::from_millis(300)).await;
    assert!(more.iter().all(|m| m["sender"] != "note"), "{more:?}");
    assert!(partner.frames_about(&session_id).iter().all(|f| f["data"]["content"] != "offer a voucher"));

    // Typing reaches the others, both ways.
    partner.ok("partner:typing", "ack", json!({ "sessionId": session_id })).await;
    let typing = customer.push("user_typing").await;
    assert_eq!((typing["role"].as_str(), typing["name"].as_str()), (Some("partner"), Some("Ana (Pizza Roma)")));
    let typing = agent.push("user_typing").await;
    assert_eq!(typing["role"], "partner");
    customer.ok("customer:typing", "ack", json!({ "sessionId": session_id })).await;
    let typing = partner.push("user_typing").await;
    assert_eq!(typing["role"], "customer");

    // Read receipts reach the others, both ways.
    let last = say(&mut customer, "customer:send_message", &session_id, "One more thing").await;
    message(&mut partner, "One more thing").await;
    partner.ok("partner:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    let read = customer.push("messages_read").await;
    assert_eq!((read["role"].as_str(), read["upToSeq"].as_i64()), (Some("partner"), Some(last)));
    let read = agent
        .wait_for("the partner's receipt", |f| f["event"] == "messages_read" && f["data"]["role"] == "partner")
        .await;
    assert_eq!(read["data"]["upToSeq"], last);
    customer.ok("customer:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    let read = partner.push("messages_read").await;
    assert_eq!(read["role"], "customer");

    // The restaurant attaches a file; the customer gets it and can open it.
    let (status, uploaded) =
        app.upload_as(&roma.member.token, &session_id, "receipt.txt", b"1x Margherita".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let attachment = uploaded["attachmentId"].as_str().expect("attachmentId").to_owned();
    partner
        .ok(
            "partner:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Here is your receipt", "clientMsgId": "r1", "attachments": [attachment] }),
        )
        .await;
    let seen = message(&mut customer, "Here is your receipt").await;
    assert_eq!(seen["attachments"][0]["fileName"], "receipt.txt");
    let file = app.fetch_attachment(&attachment, &customer_token(&app, &ann).await).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.text().await.expect("text"), "1x Margherita");
    assert_eq!(app.fetch_attachment(&attachment, &roma.member.token).await.status(), StatusCode::OK);

    // The stored history tells the same story: the customer's REST view names the restaurant.
    let ann_token = customer_token(&app, &ann).await;
    let (status, page) = app.get_as(&format!("/api/sessions/{session_id}/messages"), &ann_token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let by_partner: Vec<&Value> =
        page["messages"].as_array().expect("messages").iter().filter(|m| m["sender"] == "partner").collect();
    assert_eq!(by_partner.len(), 2, "{page}");
    assert!(by_partner.iter().all(|m| m["senderName"] == "Ana (Pizza Roma)"));
    // And the restaurant's REST view holds nothing from before, and no note.
    let (status, mine) = app.get_as(&format!("/api/partner/sessions/{session_id}/messages"), &roma.member.token).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let seen = contents(&mine["messages"]);
    assert_eq!(seen.first().map(String::as_str), Some("Pizza Roma joined the chat."));
    assert!(
        !seen.iter().any(|c| c == "Where is my pizza?" || c.contains("courier") || c.contains("voucher")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn with_the_history_shared_a_restaurant_reads_the_earlier_messages_but_never_a_note() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;
    say(&mut customer, "customer:send_message", &session_id, "Where is my pizza?").await;
    agent
        .ok(
            "agent:send_note",
            "message:sent",
            json!({ "sessionId": session_id, "content": "courier is late again", "clientMsgId": "n1" }),
        )
        .await;

    // An admin invites over REST, with the history.
    let (status, invited) = app
        .post_as(
            &format!("/api/sessions/{session_id}/partners"),
            &admin.token,
            json!({ "partnerOrgId": roma.org_id, "withHistory": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["withHistory"], true);
    // The agent's desk hears of it.
    let joined = agent.push("partner:joined").await;
    assert_eq!(joined["name"], "Pizza Roma");

    let mut partner = partner_socket(&app, &roma.member).await;
    let resumed = partner.ok("partner:join_chat", "session:resumed", json!({ "sessionId": session_id })).await;
    let seen = contents(&resumed["messages"]);
    assert!(seen.iter().any(|c| c == "Where is my pizza?"), "{seen:?}");
    assert!(seen.iter().any(|c| c == "Alice joined the chat."), "{seen:?}");
    assert!(!seen.iter().any(|c| c.contains("courier")), "a note leaked: {seen:?}");
    assert!(resumed["messages"].as_array().expect("messages").iter().all(|m| m["sender"] != "note"));
    let (_, page) = app.get_as(&format!("/api/partner/sessions/{session_id}/messages"), &roma.member.token).await;
    let rest = contents(&page["messages"]);
    assert!(rest.iter().any(|c| c == "Where is my pizza?"), "{rest:?}");
    assert!(!rest.iter().any(|c| c.contains("courier")), "a note leaked: {rest:?}");
    // The session as the agent's actor tells it lists the restaurant.
    assert_eq!(resumed["session"]["partners"][0]["name"], "Pizza Roma");
}

#[tokio::test]
async fn a_restaurant_sees_nothing_of_the_chats_it_was_not_invited_into() {
    let app = spawn_app().await;
    let Chat { mut agent, session_id, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;
    let other_chat = {
        let bob = app.visitor("Bob").await;
        let mut socket = app.customer_socket(&bob).await;
        socket.start_chat().await
    };
    agent
        .ok("agent:invite_partner", "partner:joined", json!({ "sessionId": session_id, "partnerOrgId": roma.org_id }))
        .await;

    // Its list holds the one chat.
    let (_, chats) = app.get_as("/api/partner/sessions", &roma.member.token).await;
    let listed: Vec<&str> = chats.as_array().expect("list").iter().filter_map(|c| c["sessionId"].as_str()).collect();
    assert_eq!(listed, vec![session_id.as_str()]);

    // Over REST and the socket, the other chat is forbidden.
    for path in [format!("/api/partner/sessions/{other_chat}"), format!("/api/partner/sessions/{other_chat}/messages")]
    {
        let (status, body) = app.get_as(&path, &roma.member.token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"], "forbidden");
    }
    let mut partner = partner_socket(&app, &roma.member).await;
    assert_eq!(partner.refused("partner:join_chat", json!({ "sessionId": other_chat })).await, "forbidden");
    assert_eq!(
        partner
            .refused(
                "partner:send_message",
                json!({ "sessionId": other_chat, "content": "hello?", "clientMsgId": "x1" })
            )
            .await,
        "forbidden"
    );
    assert_eq!(partner.refused("partner:typing", json!({ "sessionId": other_chat })).await, "forbidden");
    let (status, body) = app.upload_as(&roma.member.token, &other_chat, "menu.txt", b"menu".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The staff's and customers' routes are not a partner's way in.
    let (status, _) = app.get_as(&format!("/api/sessions/{other_chat}"), &roma.member.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_as("/api/sessions", &roma.member.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another restaurant does not see Pizza Roma's chat either.
    let sushi = restaurant(&app, &admin, "Sushi Go", "kenji", "Kenji").await;
    let (_, chats) = app.get_as("/api/partner/sessions", &sushi.member.token).await;
    assert_eq!(chats, json!([]));
    let mut other = partner_socket(&app, &sushi.member).await;
    assert_eq!(other.refused("partner:join_chat", json!({ "sessionId": session_id })).await, "forbidden");
}

#[tokio::test]
async fn a_removed_restaurant_loses_the_chat_at_once_and_the_customer_sees_it_leave() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, alice, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;
    agent
        .ok("agent:invite_partner", "partner:joined", json!({ "sessionId": session_id, "partnerOrgId": roma.org_id }))
        .await;
    let mut partner = partner_socket(&app, &roma.member).await;
    partner.ok("partner:join_chat", "session:resumed", json!({ "sessionId": session_id })).await;
    say(&mut partner, "partner:send_message", &session_id, "On its way").await;
    message(&mut customer, "On its way").await;

    // The agent removes the restaurant over REST.
    let (status, body) =
        app.delete_as(&format!("/api/sessions/{session_id}/partners/{}", roma.org_id), &alice.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let removed = partner.push("partner:removed").await;
    assert_eq!(removed["sessionId"], session_id.as_str());
    let left = customer.push("partner:left").await;
    assert_eq!(left["name"], "Pizza Roma");
    let note = message(&mut customer, "Pizza Roma left the chat.").await;
    assert_eq!(note["sender"], "system");
    agent.wait_for("the leaving note", |f| f["data"]["content"] == "Pizza Roma left the chat.").await;

    // From now on: forbidden, and nothing more arrives.
    let refused = partner
        .refused("partner:send_message", json!({ "sessionId": session_id, "content": "hello?", "clientMsgId": "late" }))
        .await;
    assert_eq!(refused, "forbidden");
    assert_eq!(partner.refused("partner:join_chat", json!({ "sessionId": session_id })).await, "forbidden");
    say(&mut agent, "agent:send_message", &session_id, "Sorry about that, Ann").await;
    message(&mut customer, "Sorry about that, Ann").await;
    // (The joining note may have reached it live, before the removal; nothing after.)
    let removed_at = note["seq"].as_i64().expect("seq");
    let late = partner.pushes_within("message:received", Duration::from_millis(400)).await;
    assert!(late.iter().all(|m| m["seq"].as_i64() < Some(removed_at)), "a removed partner still receives: {late:?}");
    let (status, body) = app.get_as(&format!("/api/partner/sessions/{session_id}/messages"), &roma.member.token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (_, chats) = app.get_as("/api/partner/sessions", &roma.member.token).await;
    assert_eq!(chats, json!([]));
    let (status, _) = app.upload_as(&roma.member.token, &session_id, "late.txt", b"late".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Removing it again finds nobody.
    let (status, body) =
        app.delete_as(&format!("/api/sessions/{session_id}/partners/{}", roma.org_id), &alice.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn bad_invitations_and_wrong_sockets_get_clear_error_codes() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, .. } = assigned_chat(&app).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;

    // An organisation that does not exist.
    let unknown = uuid::Uuid::new_v4();
    let code = agent.refused("agent:invite_partner", json!({ "sessionId": session_id, "partnerOrgId": unknown })).await;
    assert_eq!(code, "not_found");
    let (status, body) = app
        .post_as(&format!("/api/sessions/{session_id}/partners"), &admin.token, json!({ "partnerOrgId": unknown }))
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // Twice is a conflict.
    agent
        .ok("agent:invite_partner", "partner:joined", json!({ "sessionId": session_id, "partnerOrgId": roma.org_id }))
        .await;
    let code =
        agent.refused("agent:invite_partner", json!({ "sessionId": session_id, "partnerOrgId": roma.org_id })).await;
    assert_eq!(code, "conflict");
    // At most five organisations in one chat.
    for n in 0..4 {
        let (_, org) = app.post_as("/api/admin/partners", &admin.token, json!({ "name": format!("Shop {n}") })).await;
        agent
            .ok("agent:invite_partner", "partner:joined", json!({ "sessionId": session_id, "partnerOrgId": org["id"] }))
            .await;
    }
    let (_, sixth) = app.post_as("/api/admin/partners", &admin.token, json!({ "name": "Shop 6" })).await;
    let code =
        agent.refused("agent:invite_partner", json!({ "sessionId": session_id, "partnerOrgId": sixth["id"] })).await;
    assert_eq!(code, "limit_reached");
    // A customer cannot invite (their socket has no such event) nor open the partner socket.
    let code =
        customer.refused("agent:invite_partner", json!({ "sessionId": session_id, "partnerOrgId": roma.org_id })).await;
    assert_eq!(code, "unknown_event");
    let visitor = app.visitor("Eve").await;
    let refused = refused_upgrade(&app.ws_url("/ws/partner", &visitor.token)).await;
    assert_eq!(refused, (401, "unauthorized".to_owned()), "a customer on the partner socket");
    // A partner's token opens neither the agent's socket nor the customer's.
    for path in ["/ws/agent", "/ws/customer"] {
        let refused = refused_upgrade(&app.ws_url(path, &roma.member.token)).await;
        assert_eq!(refused, (401, "unauthorized".to_owned()), "a partner on {path}");
    }
    // A partner invoking the agent's events gets unknown_event.
    let mut partner = partner_socket(&app, &roma.member).await;
    for event in ["agent:close_session", "agent:invite_partner", "agent:send_note", "customer:end_chat"] {
        let code = partner.refused(event, json!({ "sessionId": session_id, "resolved": true })).await;
        assert_eq!(code, "unknown_event", "{event}");
    }
    // Inviting is for staff only over REST; a partner's token is not staff's.
    let (status, _) = app
        .post_as(
            &format!("/api/sessions/{session_id}/partners"),
            &roma.member.token,
            json!({ "partnerOrgId": roma.org_id }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An agent not serving the chat cannot invite into it.
    let bo = app.agent("bo", 1).await;
    let (status, body) = app
        .post_as(&format!("/api/sessions/{session_id}/partners"), &bo.token, json!({ "partnerOrgId": sixth["id"] }))
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    // Partner accounts are made in an organisation, not as staff.
    let (status, body) = app
        .post_as(
            "/api/admin/agents",
            &admin.token,
            json!({ "username": "sneaky", "password": "long-enough-pass", "displayName": "Sneaky", "role": "partner" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")));
    let (status, body) = app
        .post_as(
            &format!("/api/admin/partners/{unknown}/accounts"),
            &admin.token,
            json!({ "username": "nobody", "password": "long-enough-pass", "displayName": "Nobody" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = app.post_as("/api/admin/partners", &admin.token, json!({ "name": "Pizza Roma" })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    let (status, _) = app.post_as("/api/admin/partners", &roma.member.token, json!({ "name": "Mine" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_partner_account_holds_a_bounded_number_of_sockets() {
    let app = spawn_app_with(AppOptions::default().env("SOCKETS_PER_ACCOUNT", "2")).await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;
    let _first = partner_socket(&app, &roma.member).await;
    let _second = partner_socket(&app, &roma.member).await;
    let refused = refused_upgrade(&app.ws_url("/ws/partner", &roma.member.token)).await;
    assert_eq!(refused, (429, "too_many_sockets".to_owned()));
}

#[tokio::test]
async fn a_partner_refreshes_their_token_and_stays_a_partner() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana", "Ana").await;
    let (status, refreshed) = app.post_as("/auth/refresh", &roma.member.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["role"], "partner");
    let token = refreshed["token"].as_str().expect("token");
    let (status, me) = app.get_as("/api/partner/me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Ana (Pizza Roma)");
    assert_eq!(me["partnerOrgId"], roma.org_id.as_str());
}

#[tokio::test]
async fn the_admin_lists_each_organisation_with_its_accounts_and_no_one_else_may() {
    let app = spawn_app().await;
    let admin = app.staff("boss", "admin", 5).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana.roma", "Ana").await;
    let (status, _) = app
        .post_as(
            &format!("/api/admin/partners/{}/accounts", roma.org_id),
            &admin.token,
            json!({ "username": "bruno.roma", "password": "pizza-oven-hot", "displayName": "Bruno" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, quiet) = app.post_as("/api/admin/partners", &admin.token, json!({ "name": "Courier Co" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, orgs) = app.get_as("/api/admin/partners", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{orgs}");
    let orgs = orgs.as_array().expect("a list");
    let names: Vec<&str> = orgs.iter().map(|org| org["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["Courier Co", "Pizza Roma"]);
    assert_eq!(orgs[0]["id"], quiet["id"]);
    assert_eq!(orgs[0]["accounts"], json!([]));
    assert_eq!(orgs[1]["id"].as_str(), Some(roma.org_id.as_str()));
    let accounts: Vec<(String, String, bool)> = orgs[1]["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|account| {
            assert!(account["userId"].as_str().is_some(), "{account}");
            (
                account["username"].as_str().expect("username").to_owned(),
                account["displayName"].as_str().expect("displayName").to_owned(),
                account["active"].as_bool().expect("active"),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [("ana.roma".to_owned(), "Ana".to_owned(), true), ("bruno.roma".to_owned(), "Bruno".to_owned(), true)]
    );
    assert_eq!(orgs[1]["accounts"][0]["userId"].as_str(), Some(roma.member.user_id.to_string().as_str()));

    let agent = app.agent("alice", 3).await;
    let customer = app.host_customer("Carla", "normal").await;
    let bruno = app.post_json("/auth/login", &json!({ "username": "bruno.roma", "password": "pizza-oven-hot" })).await;
    let bruno: Value = bruno.json().await.expect("JSON");
    let bruno_token = bruno["token"].as_str().expect("token");
    for token in [&agent.token, &customer.token] {
        let (status, body) = app.get_as("/api/admin/partners", token).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    }
    // A partner's token opens only the partner routes, like every partner token elsewhere.
    let (status, body) = app.get_as("/api/admin/partners", bruno_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{body}");
    let anonymous = app.get("/api/admin/partners").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_staff_route_does_not_change_a_partner_account() {
    let app = spawn_app().await;
    let admin = app.staff("boss", "admin", 5).await;
    let roma = restaurant(&app, &admin, "Pizza Roma", "ana.roma", "Ana").await;
    let path = format!("/api/admin/agents/{}", roma.member.user_id);
    let (status, body) = app
        .patch_as(&path, &admin.token, json!({ "disabled": true, "displayName": "Renamed", "maxConcurrent": 9 }))
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    // Nothing changed: the account is as it was, and it still signs in.
    let (_, orgs) = app.get_as("/api/admin/partners", &admin.token).await;
    assert_eq!(orgs[0]["accounts"][0]["displayName"], "Ana", "{orgs}");
    assert_eq!(orgs[0]["accounts"][0]["active"], true, "{orgs}");
    let login = app.post_json("/auth/login", &json!({ "username": "ana.roma", "password": "pizza-oven-hot" })).await;
    assert_eq!(login.status(), StatusCode::OK);
}
