//! Who gets which waiting chat, and when.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, TestApp, WsClient};

/// A customer who has started a chat and asked for a person.
pub struct Waiting {
    pub socket: WsClient,
    pub session_id: String,
}

/// A customer waiting for a person at `priority`, which their host website gave them.
pub async fn queued_customer(app: &TestApp, name: &str, priority: &str) -> Waiting {
    let person = match priority {
        "normal" => app.visitor(name).await,
        _ => app.host_customer(name, priority).await,
    };
    let mut socket = app.customer_socket(&person).await;
    let session_id = socket.start_chat().await;
    let status = socket
        .ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id, "reason": "billing" }))
        .await;
    assert_eq!(status["status"], "waiting");
    Waiting { socket, session_id }
}

fn session_ids(board: &[Value]) -> Vec<String> {
    board.iter().map(|s| s["sessionId"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn an_agent_gets_high_priority_chats_first_oldest_first_then_normal_then_low() {
    let app = spawn_app().await;
    let mut queued = Vec::new();
    // Interleaved, so arrival order alone would give the wrong answer.
    for (n, priority) in ["low", "normal", "high", "low", "normal", "high", "low", "normal", "high"].iter().enumerate()
    {
        let customer = queued_customer(&app, &format!("Customer {n}"), priority).await;
        queued.push((priority.to_string(), customer));
    }
    let expected: Vec<String> = ["high", "normal", "low"]
        .iter()
        .flat_map(|wanted| {
            queued.iter().filter(move |(priority, _)| priority == wanted).map(|(_, c)| c.session_id.clone())
        })
        .collect();

    let bob = app.agent("bob", 9).await;
    let mut agent = app.agent_socket(&bob).await;
    agent.ok("agent:join", "agent:joined", json!({ "maxConcurrent": 9 })).await;
    let board = agent.board_when("the nine waiting chats", |board| board.len() == 9).await;
    assert_eq!(session_ids(&board), expected, "the board lists the queue in serving order");
    // The desk gets them in the order the queue gave them out.
    let mut assigned = Vec::new();
    for _ in 0..9 {
        assigned.push(agent.push("session:assigned").await["sessionId"].as_str().expect("id").to_owned());
    }
    assert_eq!(assigned, expected, "session:assigned in serving order");

    let db = app.db.client().await;
    let order: Vec<String> = db
        .query("SELECT session_id::text FROM queue_entries ORDER BY assigned_at", &[])
        .await
        .expect("entries")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(order, expected, "assignment order: high oldest first, then normal, then low");
}

#[tokio::test]
async fn waiting_customers_hear_their_position_move_up() {
    let app = spawn_app().await;
    let mut first = queued_customer(&app, "First", "normal").await;
    let mut second = queued_customer(&app, "Second", "normal").await;
    let mut urgent = queued_customer(&app, "Urgent", "high").await;
    assert_eq!(urgent.socket.pushes_within("queue:position", std::time::Duration::from_millis(200)).await.len(), 0);
    // The urgent chat jumped ahead of both.
    assert_eq!(first.socket.push("queue:position").await["position"], 2);
    assert_eq!(second.socket.push("queue:position").await["position"], 3);

    let carol = app.agent("carol", 1).await;
    let mut agent = app.agent_socket(&carol).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    assert_eq!(agent.push("session:assigned").await["sessionId"], urgent.session_id.as_str());
    assert_eq!(urgent.socket.push("status:changed").await["status"], "assigned");
    assert_eq!(first.socket.push("queue:position").await["position"], 1);
    assert_eq!(second.socket.push("queue:position").await["position"], 2);
}

#[tokio::test]
async fn two_agents_picking_up_the_same_chat_at_once_one_wins_the_other_is_told() {
    let app = spawn_app().await;
    let dan = app.agent("dan", 5).await;
    let eve = app.agent("eve", 5).await;
    let mut first = app.agent_socket(&dan).await;
    let mut second = app.agent_socket(&eve).await;
    for agent in [&mut first, &mut second] {
        agent.ok("agent:join", "agent:joined", json!({})).await;
        // Away agents get no automatic assignments, so only pickup can take the chat.
        agent.ok("agent:set_status", "agent:status", json!({ "status": "away" })).await;
    }
    let customer = queued_customer(&app, "Frank", "normal").await;

    let pickup = json!({ "sessionId": customer.session_id });
    let first_ref = first.send("agent:pickup_session", pickup.clone()).await;
    let second_ref = second.send("agent:pickup_session", pickup).await;
    let (a, b) = tokio::join!(first.reply(&first_ref), second.reply(&second_ref));
    let events = [a["event"].as_str().unwrap_or_default(), b["event"].as_str().unwrap_or_default()];
    assert!(events.contains(&"session:assigned") && events.contains(&"error"), "{a} / {b}");
    let (winner, loser) = if a["event"] == "session:assigned" { (&a, &b) } else { (&b, &a) };
    assert_eq!(loser["data"]["code"], "already_assigned");
    assert_eq!(winner["data"]["sessionId"], customer.session_id.as_str());
    assert!(!winner["data"]["messages"].as_array().expect("history").is_empty());

    let db = app.db.client().await;
    let owner: Option<uuid::Uuid> = db
        .query_one("SELECT assigned_agent_id FROM chat_sessions WHERE id = $1::text::uuid", &[&customer.session_id])
        .await
        .expect("session")
        .get(0);
    let expected_owner = if a["event"] == "session:assigned" { dan.user_id } else { eve.user_id };
    assert_eq!(owner, Some(expected_owner));
}

#[tokio::test]
async fn an_agent_who_does_not_come_back_within_the_grace_period_loses_their_chats_to_the_queue() {
    let app = spawn_app_with(AppOptions::default().env("AGENT_GRACE_MS", "500")).await;
    let gina = app.agent("gina", 2).await;
    let mut agent = app.agent_socket(&gina).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let mut customer = queued_customer(&app, "Hal", "normal").await;
    agent.push("session:assigned").await;
    assert_eq!(customer.socket.push("status:changed").await["status"], "assigned");

    agent.close().await;
    let back = customer.socket.push("status:changed").await;
    assert_eq!(back["status"], "waiting");
    assert_eq!(back["queuePosition"], 1);

    // Another agent picks it up automatically.
    let ivy = app.agent("ivy", 2).await;
    let mut other = app.agent_socket(&ivy).await;
    other.ok("agent:join", "agent:joined", json!({})).await;
    assert_eq!(other.push("session:assigned").await["sessionId"], customer.session_id.as_str());
    assert_eq!(customer.socket.push("status:changed").await["agentName"], "Ivy");
}

#[tokio::test]
async fn an_agent_who_reconnects_within_the_grace_period_keeps_their_chats() {
    let app = spawn_app().await;
    let jay = app.agent("jay", 2).await;
    let mut agent = app.agent_socket(&jay).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let customer = queued_customer(&app, "Kim", "normal").await;
    agent.push("session:assigned").await;
    agent.close().await;

    let mut again = app.agent_socket(&jay).await;
    again.ok("agent:join", "agent:joined", json!({})).await;
    let resumed = again.push("session:assigned").await;
    assert_eq!(resumed["sessionId"], customer.session_id.as_str());
    again
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": customer.session_id, "content": "Still here", "clientMsgId": "j1" }),
        )
        .await;
}

#[tokio::test]
async fn a_transfer_back_to_the_queue_goes_to_another_agent() {
    let app = spawn_app().await;
    let lea = app.agent("lea", 1).await;
    let mut first = app.agent_socket(&lea).await;
    first.ok("agent:join", "agent:joined", json!({})).await;
    let mut customer = queued_customer(&app, "Max", "normal").await;
    first.push("session:assigned").await;
    let ned = app.agent("ned", 1).await;
    let mut second = app.agent_socket(&ned).await;
    second.ok("agent:join", "agent:joined", json!({})).await;

    let transferred = first
        .ok(
            "agent:transfer",
            "session:transferred",
            json!({ "sessionId": customer.session_id, "reason": "needs billing" }),
        )
        .await;
    assert_eq!(transferred["status"], "waiting");
    assert_eq!(second.push("session:assigned").await["sessionId"], customer.session_id.as_str());
    assert_eq!(customer.socket.push("status:changed").await["status"], "assigned");
    let status = customer.socket.push("status:changed").await;
    assert_eq!(status["status"], "waiting");
    let status = customer.socket.push("status:changed").await;
    assert_eq!((status["status"].as_str(), status["agentName"].as_str()), (Some("assigned"), Some("Ned")));
    // The first agent can no longer write into it.
    let code = first
        .refused(
            "agent:send_message",
            json!({ "sessionId": customer.session_id, "content": "hello?", "clientMsgId": "l9" }),
        )
        .await;
    assert_eq!(code, "forbidden");
}

#[tokio::test]
async fn an_agent_who_transfers_a_chat_receives_nothing_of_it_afterwards_even_with_requests_pipelined() {
    let app = spawn_app().await;
    let alice = app.agent("alice", 1).await;
    let bob = app.agent("bob", 1).await;
    let mut first = app.agent_socket(&alice).await;
    first.ok("agent:join", "agent:joined", json!({})).await;
    let mut waiting = queued_customer(&app, "Ann", "normal").await;
    let session_id = waiting.session_id.clone();
    first.push("session:assigned").await;
    let mut second = app.agent_socket(&bob).await;
    second.ok("agent:join", "agent:joined", json!({})).await;

    // The transfer and, without waiting for its answer, a typing indicator and a message.
    let transfer =
        first.send("agent:transfer", json!({ "sessionId": session_id, "toAgentId": bob.user_id.to_string() })).await;
    let typing = first.send("agent:typing", json!({ "sessionId": session_id })).await;
    let late = first
        .send(
            "agent:send_message",
            json!({ "sessionId": session_id, "content": "one more thing", "clientMsgId": "late" }),
        )
        .await;
    let transferred = first.reply(&transfer).await;
    assert_eq!(transferred["event"], "session:transferred", "{transferred}");
    // What came before the transfer's answer is no concern here.
    first.forget_received();
    for reference in [typing, late] {
        let reply = first.reply(&reference).await;
        assert_eq!(reply["event"], "error", "a request after the transfer is refused: {reply}");
        assert_eq!(reply["data"]["code"], "forbidden", "{reply}");
    }
    second.push("session:assigned").await;

    // The customer says something private; only the new agent sees it.
    waiting
        .socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "my card number is 4111 1111 1111 1111", "clientMsgId": "card" }),
        )
        .await;
    let seen = second.push("message:received").await;
    assert!(seen["content"].as_str().is_some_and(|text| text.contains("card number")), "{seen}");
    second
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "Thanks, I have it", "clientMsgId": "b1" }),
        )
        .await;
    let _ = first.pushes_within("message:received", std::time::Duration::from_millis(1000)).await;
    let leaked = first.frames_about(&session_id);
    let allowed = ["session:released", "typing:stopped"];
    // Every joined agent sees the board: the chat leaving it is no leak.
    let left_the_board = |frame: &&Value| {
        frame["event"] == "queue:changed" && frame["data"]["upserted"].as_array().is_some_and(Vec::is_empty)
    };
    let leaked: Vec<_> = leaked
        .iter()
        .filter(|frame| !allowed.contains(&frame["event"].as_str().unwrap_or("")))
        .filter(|frame| !left_the_board(frame))
        .collect();
    assert!(leaked.is_empty(), "the old agent still received: {leaked:?}");
    let stored = app.count("SELECT count(*) FROM chat_messages WHERE client_msg_id = 'late'").await;
    assert_eq!(stored, 0, "the old agent's late message was not stored");
}
