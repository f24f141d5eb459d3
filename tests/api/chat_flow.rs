//! The whole story: a customer meets the bot, asks for a person, an agent
//! gets the chat, they talk, and the agent closes it.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, WsClient};

/// Everything a side saw, keyed by seq: (sender, content).
type Seen = std::collections::BTreeMap<i64, (String, String)>;

fn see(seen: &mut Seen, message: &Value) {
    let seq = message["seq"].as_i64().expect("seq");
    let entry = (
        message["sender"].as_str().expect("sender").to_owned(),
        message["content"].as_str().expect("content").to_owned(),
    );
    assert!(seen.insert(seq, entry).is_none(), "seq {seq} seen twice: {message}");
}

async fn say(socket: &mut WsClient, event: &str, session_id: &str, content: &str, client_msg_id: &str) -> i64 {
    let sent = socket
        .ok(event, "message:sent", json!({ "sessionId": session_id, "content": content, "clientMsgId": client_msg_id }))
        .await;
    sent["seq"].as_i64().expect("seq")
}

#[tokio::test]
async fn a_customer_goes_from_the_bot_to_an_agent_and_the_history_matches_what_both_saw() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let alice = app.agent("alice", 3).await;
    let mut customer = app.customer_socket(&ann).await;
    let mut customer_saw = Seen::new();
    let mut agent_saw = Seen::new();

    // The bot answers first.
    let created = customer.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(created["status"], "bot");
    let session_id = created["sessionId"].as_str().expect("sessionId").to_owned();
    let greeting = customer.push("message:received").await;
    assert_eq!(greeting["sender"], "bot");
    assert!(greeting["content"].as_str().unwrap_or_default().contains("Ann"), "{greeting}");
    see(&mut customer_saw, &greeting);

    // Plain words ask for a person.
    let seq = say(&mut customer, "customer:send_message", &session_id, "I want to talk to a human", "c1").await;
    customer_saw.insert(seq, ("customer".into(), "I want to talk to a human".into()));
    let bot_reply = customer.push("message:received").await;
    assert_eq!(bot_reply["sender"], "bot");
    see(&mut customer_saw, &bot_reply);
    let waiting = customer.push("status:changed").await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(waiting["queuePosition"], 1);
    let queued_note = customer.push("message:received").await;
    assert_eq!(queued_note["sender"], "system");
    assert!(queued_note["content"].as_str().unwrap_or_default().contains("number 1"), "{queued_note}");
    see(&mut customer_saw, &queued_note);

    // An agent joins, sees the queue and gets the chat with its whole history.
    let mut agent = app.agent_socket(&alice).await;
    let joined = agent.ok("agent:join", "agent:joined", json!({})).await;
    assert_eq!(joined["agentId"], alice.user_id.to_string());
    let board = agent.board_when("the waiting chat", |board| !board.is_empty()).await;
    assert_eq!(board[0]["sessionId"], session_id.as_str());
    assert_eq!(board[0]["preview"], "I want to talk to a human");
    let assigned = agent.push("session:assigned").await;
    assert_eq!(assigned["sessionId"], session_id.as_str());
    assert_eq!(assigned["session"]["customerName"], "Ann");
    for message in assigned["messages"].as_array().expect("history") {
        see(&mut agent_saw, message);
    }
    let status = customer.push("status:changed").await;
    assert_eq!(status["status"], "assigned");
    assert_eq!(status["agentName"], "Alice");
    let joined_note = customer.push("message:received").await;
    assert_eq!(joined_note["content"], "Alice joined the chat.");
    see(&mut customer_saw, &joined_note);

    // They talk both ways.
    let seq = say(&mut agent, "agent:send_message", &session_id, "Hi Ann, how can I help?", "a1").await;
    agent_saw.insert(seq, ("agent".into(), "Hi Ann, how can I help?".into()));
    let from_agent = customer.push("message:received").await;
    assert_eq!(from_agent["sender"], "agent");
    assert_eq!(from_agent["senderName"], "Alice");
    see(&mut customer_saw, &from_agent);

    let seq = say(&mut customer, "customer:send_message", &session_id, "My parcel is late", "c2").await;
    customer_saw.insert(seq, ("customer".into(), "My parcel is late".into()));
    let from_customer = agent.push("message:received").await;
    assert_eq!(from_customer["senderName"], "Ann");
    see(&mut agent_saw, &from_customer);

    // Typing and read receipts reach the other side.
    customer.ok("customer:typing", "ack", json!({ "sessionId": session_id })).await;
    let typing = agent.push("user_typing").await;
    assert_eq!((typing["role"].as_str(), typing["name"].as_str()), (Some("customer"), Some("Ann")));
    customer.ok("customer:stop_typing", "ack", json!({ "sessionId": session_id })).await;
    assert_eq!(agent.push("typing_stopped").await["role"], "customer");
    agent.ok("agent:typing", "ack", json!({ "sessionId": session_id })).await;
    assert_eq!(customer.push("user_typing").await["name"], "Alice");

    let last = *agent_saw.keys().last().expect("messages");
    agent.ok("agent:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    let read = customer.push("messages_read").await;
    assert_eq!((read["role"].as_str(), read["upToSeq"].as_i64()), (Some("agent"), Some(last)));
    customer.ok("customer:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    assert_eq!(agent.push("messages_read").await["role"], "customer");

    // The agent closes it as resolved; both sides hear.
    let closed = agent
        .ok(
            "agent:close_session",
            "session:closed",
            json!({ "sessionId": session_id, "resolved": true, "notes": "parcel re-sent" }),
        )
        .await;
    assert_eq!(closed["reason"], "resolved");
    assert_eq!(customer.push("session:closed").await["reason"], "resolved");
    let closing_note = customer.push("message:received").await;
    see(&mut customer_saw, &closing_note);
    see(&mut agent_saw, &agent.push("message:received").await);

    // The database holds exactly what each side saw.
    let db = app.db.client().await;
    let session_uuid: uuid::Uuid = session_id.parse().expect("uuid");
    let stored: Seen = db
        .query(
            "SELECT seq, sender_type, content FROM chat_messages WHERE session_id = $1 ORDER BY seq",
            &[&session_uuid],
        )
        .await
        .expect("history")
        .iter()
        .map(|row| (row.get::<_, i64>(0), (row.get::<_, String>(1), row.get::<_, String>(2))))
        .collect();
    assert_eq!(stored, customer_saw, "the customer's view");
    assert_eq!(stored, agent_saw, "the agent's view");
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), (1..=stored.len() as i64).collect::<Vec<_>>(), "no gaps");

    let row = db
        .query_one(
            "SELECT status, is_resolved, resolution_notes, assigned_agent_id, is_active FROM chat_sessions WHERE id = $1",
            &[&session_uuid],
        )
        .await
        .expect("session");
    assert_eq!(row.get::<_, String>(0), "closed");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("parcel re-sent"));
    assert_eq!(row.get::<_, Option<uuid::Uuid>>(3), Some(alice.user_id));
    assert!(!row.get::<_, bool>(4));
    let receipts = db
        .query("SELECT role, last_read_seq FROM read_receipts WHERE session_id = $1 ORDER BY role", &[&session_uuid])
        .await
        .expect("receipts");
    assert_eq!(receipts.len(), 2);
    assert!(receipts.iter().all(|row| row.get::<_, i64>(1) == last));
    let analytics = db
        .query_one(
            "SELECT customer_messages, agent_messages, handoff_requested_at IS NOT NULL, first_response_ms IS NOT NULL, resolved_by_bot
             FROM session_analytics WHERE session_id = $1",
            &[&session_uuid],
        )
        .await
        .expect("analytics");
    assert_eq!((analytics.get::<_, i32>(0), analytics.get::<_, i32>(1)), (2, 1));
    assert!(analytics.get::<_, bool>(2) && analytics.get::<_, bool>(3));
    assert!(!analytics.get::<_, bool>(4));
}

#[tokio::test]
async fn a_flood_of_read_receipts_is_stored_and_passed_on_only_when_it_moves_forward() {
    let app = crate::helpers::spawn_app().await;
    let crate::resume::Chat { mut customer, mut agent, session_id, .. } = crate::resume::assigned_chat(&app).await;
    let last_seq = app.count("SELECT max(seq) FROM chat_messages").await;
    let mut waiting = std::collections::VecDeque::new();
    for n in 0..500 {
        if waiting.len() == 32 {
            let reference: String = waiting.pop_front().expect("in flight");
            assert_eq!(customer.reply(&reference).await["event"], "ack");
        }
        // The same few receipts over and over, as a chatty widget might send them.
        let seq = last_seq - 1 + (n % 2);
        waiting
            .push_back(customer.send("customer:mark_read", json!({ "sessionId": session_id, "upToSeq": seq })).await);
    }
    for reference in waiting {
        assert_eq!(customer.reply(&reference).await["event"], "ack");
    }
    let pushes = agent.pushes_within("messages_read", std::time::Duration::from_millis(500)).await;
    let seqs: Vec<i64> = pushes.iter().filter_map(|push| push["upToSeq"].as_i64()).collect();
    assert_eq!(seqs, [last_seq - 1, last_seq], "one push per step forward");
    let stored = app.count("SELECT last_read_seq FROM read_receipts WHERE role = 'customer'").await;
    assert_eq!(stored, last_seq);
}
