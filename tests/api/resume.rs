//! Nothing is lost or doubled across reconnects and restarts.

use serde_json::json;

use crate::helpers::{spawn_app, Person, TestApp, WsClient};
use crate::queue::queued_customer;

pub struct Chat {
    pub customer: WsClient,
    pub agent: WsClient,
    pub ann: Person,
    pub alice: Person,
    pub session_id: String,
    /// The highest seq the customer has seen.
    pub customer_seq: i64,
}

/// A customer and an agent in an assigned chat.
pub async fn assigned_chat(app: &TestApp) -> Chat {
    let alice = app.agent("alice", 1).await;
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let mut waiting = queued_customer(app, "Ann", "normal").await;
    let assigned = agent.push("session:assigned").await;
    let status = waiting.socket.push("status:changed").await;
    assert_eq!(status["status"], "assigned");
    // The customer has seen everything up to the agent's joining note.
    let customer_seq = assigned["session"]["lastSeq"].as_i64().expect("lastSeq");
    let joined = waiting
        .socket
        .wait_for("the joining note", |frame| {
            frame["event"] == "message:received" && frame["data"]["seq"] == customer_seq
        })
        .await;
    assert_eq!(joined["data"]["content"], "Alice joined the chat.");
    let ann = Person {
        user_id: assigned["session"]["customerId"].as_str().expect("id").parse().expect("uuid"),
        name: "Ann".into(),
        token: String::new(),
    };
    Chat { customer: waiting.socket, agent, ann, alice, session_id: waiting.session_id, customer_seq }
}

async fn agent_says(agent: &mut WsClient, session_id: &str, text: &str) -> i64 {
    agent
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": text, "clientMsgId": text }),
        )
        .await["seq"]
        .as_i64()
        .expect("seq")
}

#[tokio::test]
async fn a_customer_who_reconnects_gets_exactly_the_messages_they_missed_then_live_ones() {
    let app = spawn_app().await;
    let Chat { customer, mut agent, session_id, customer_seq, ann, .. } = assigned_chat(&app).await;
    let token = customer_token(&app, &ann).await;
    customer.close().await;

    let mut missed = Vec::new();
    for text in ["one", "two", "three"] {
        missed.push(agent_says(&mut agent, &session_id, text).await);
    }

    let mut again = crate::helpers::WsClient::connect(&app.ws_url("/ws/customer", &token)).await.expect("reconnect");
    let resumed = again
        .ok("customer:resume", "session:resumed", json!({ "sessionId": session_id, "afterSeq": customer_seq }))
        .await;
    let messages = resumed["messages"].as_array().expect("messages");
    let contents: Vec<&str> = messages.iter().map(|m| m["content"].as_str().unwrap_or_default()).collect();
    assert_eq!(contents, ["one", "two", "three"]);
    let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().unwrap_or_default()).collect();
    assert_eq!(seqs, missed);
    assert_eq!(resumed["session"]["status"], "assigned");
    assert_eq!(resumed["session"]["agentName"], "Alice");

    // Live again: the next message arrives once, and nothing earlier comes twice.
    let next = agent_says(&mut agent, &session_id, "four").await;
    let live = again.push("message:received").await;
    assert_eq!((live["seq"].as_i64(), live["content"].as_str()), (Some(next), Some("four")));
    assert!(again.pushes_within("message:received", std::time::Duration::from_millis(300)).await.is_empty());
}

/// The visitor's token is not kept in `Person` by `assigned_chat`; sign the same customer in again.
pub async fn customer_token(app: &TestApp, ann: &Person) -> String {
    let (token, _) = switchboard::auth::jwt::Tokens::new(crate::helpers::JWT_SECRET)
        .issue(ann.user_id, switchboard::domain::Role::Customer, &ann.name, chrono::Duration::minutes(10))
        .expect("token");
    let _ = app;
    token
}

#[tokio::test]
async fn after_a_restart_the_queue_and_assignments_are_rebuilt_and_nothing_is_lost_or_doubled() {
    let app = spawn_app().await;
    let Chat { customer, mut agent, session_id, customer_seq, ann, alice, .. } = assigned_chat(&app).await;
    let ann_token = customer_token(&app, &ann).await;
    // A second customer waits: Alice has room for one chat only.
    let waiting = queued_customer(&app, "Bea", "high").await;
    let before_restart = agent_says(&mut agent, &session_id, "before the restart").await;
    drop(customer);
    drop(agent);
    drop(waiting.socket);

    let app = app.restart().await;

    // The agent comes back: their chat is still theirs, the queue still holds Bea.
    let mut agent = app.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let board = agent.board_when("Bea's chat", |board| !board.is_empty()).await;
    let waiting_ids: Vec<&str> = board.iter().filter_map(|s| s["sessionId"].as_str()).collect();
    assert_eq!(waiting_ids, [waiting.session_id.as_str()]);
    let assigned = agent.push("session:assigned").await;
    assert_eq!(assigned["sessionId"], session_id.as_str());
    let history: Vec<i64> =
        assigned["messages"].as_array().expect("history").iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(history, (1..=before_restart).collect::<Vec<_>>(), "the whole history, once each");

    // The customer resumes from what they had seen.
    let mut customer = WsClient::connect(&app.ws_url("/ws/customer", &ann_token)).await.expect("reconnect");
    let resumed = customer
        .ok("customer:resume", "session:resumed", json!({ "sessionId": session_id, "afterSeq": customer_seq }))
        .await;
    let seqs: Vec<i64> =
        resumed["messages"].as_array().expect("messages").iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, ((customer_seq + 1)..=before_restart).collect::<Vec<_>>());

    // And the chat goes on, with sequence numbers carrying on from before.
    let after = agent_says(&mut agent, &session_id, "after the restart").await;
    assert_eq!(after, before_restart + 1);
    assert_eq!(customer.push("message:received").await["seq"], after);
    let reply = customer
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": "great", "clientMsgId": "after-1" }),
        )
        .await;
    assert_eq!(reply["seq"], after + 1);
    assert_eq!(agent.push("message:received").await["content"], "great");

    let db = app.db.client().await;
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT seq), max(seq) FROM chat_messages WHERE session_id = $1::text::uuid",
            &[&session_id],
        )
        .await
        .expect("counts");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (after + 1, after + 1, after + 1));
}

#[tokio::test]
async fn the_same_client_msg_id_twice_is_stored_once_and_acknowledged_alike() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id, .. } = assigned_chat(&app).await;
    let message = json!({ "sessionId": session_id, "content": "Did you get this?", "clientMsgId": "retry-1" });
    let first = customer.ok("customer:send_message", "message:sent", message.clone()).await;
    let second = customer.ok("customer:send_message", "message:sent", message).await;
    assert_eq!(first, second);

    assert_eq!(agent.push("message:received").await["content"], "Did you get this?");
    assert!(
        agent.pushes_within("message:received", std::time::Duration::from_millis(300)).await.is_empty(),
        "delivered once"
    );
    let db = app.db.client().await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM chat_messages WHERE client_msg_id = 'retry-1'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_message_resent_after_the_chat_closed_gets_its_first_acknowledgement() {
    let app = spawn_app().await;
    let ann = app.visitor("Ann").await;
    let mut widget = app.customer_socket(&ann).await;
    let id = widget.start_chat().await;
    let first = widget
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": "thanks!", "clientMsgId": "x" }),
        )
        .await;
    widget.ok("customer:end_chat", "session:closed", json!({ "sessionId": id })).await;

    // The widget never saw the acknowledgement (say it reconnected) and sends it again.
    let again = widget
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": "thanks!", "clientMsgId": "x" }),
        )
        .await;
    assert_eq!((again["messageId"].clone(), again["seq"].clone()), (first["messageId"].clone(), first["seq"].clone()));
    // Something new is refused.
    let code = widget
        .refused("customer:send_message", json!({ "sessionId": id, "content": "one more", "clientMsgId": "y" }))
        .await;
    assert_eq!(code, "session_closed");
    assert_eq!(app.count("SELECT count(*) FROM chat_messages WHERE client_msg_id IN ('x', 'y')").await, 1);
}

/// Sockets that resume at once are answered by shared reads of the database
/// (the history reader): each still gets its own chat's messages after its
/// own seq, the same ones the REST history shows, and nothing of another chat.
#[tokio::test]
async fn customers_resuming_at_once_each_get_their_own_chats_messages_after_their_own_seq() {
    let app = spawn_app().await;
    let mut chats = Vec::new();
    for n in 0..10 {
        let person = app.visitor(&format!("Visitor {n}")).await;
        let mut socket = app.customer_socket(&person).await;
        let session_id = socket.start_chat().await;
        // Questions the bot answers: lines it did not understand would hand the chat to the queue.
        for k in 0..3 {
            let text = format!("chat {n} line {k}: how long does shipping take?");
            let sent = socket
                .ok(
                    "customer:send_message",
                    "message:sent",
                    json!({ "sessionId": session_id, "content": text, "clientMsgId": text }),
                )
                .await;
            let seq = sent["seq"].as_i64().expect("seq");
            socket
                .wait_for("the bot's answer", |frame| {
                    frame["data"]["sender"] == "bot" && frame["data"]["seq"].as_i64() > Some(seq)
                })
                .await;
        }
        let (_, page) = app.get_as(&format!("/api/sessions/{session_id}/messages?limit=100"), &person.token).await;
        let stored: Vec<(i64, String)> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| (m["seq"].as_i64().expect("seq"), m["content"].as_str().unwrap_or_default().to_owned()))
            .collect();
        assert_eq!(stored.len(), 7, "a greeting, three questions and three answers: {stored:?}");
        socket.close().await;
        chats.push((person, session_id, stored));
    }

    // Three sockets per chat, connected first, then all resume at once: one
    // from the start and two from seqs of their own.
    let wanted: Vec<(usize, i64)> =
        (0..chats.len()).flat_map(|n| [(n, 0), (n, 1 + n as i64 % 6), (n, 6 - n as i64 % 3)]).collect();
    let mut sockets =
        futures_util::future::join_all(wanted.iter().map(|(n, _)| app.customer_socket(&chats[*n].0))).await;
    let mut references = Vec::new();
    for (socket, (n, after)) in sockets.iter_mut().zip(&wanted) {
        let session_id = &chats[*n].1;
        references.push(socket.send("customer:resume", json!({ "sessionId": session_id, "afterSeq": after })).await);
    }
    let mut answers = Vec::new();
    for ((socket, reference), (n, after)) in sockets.iter_mut().zip(references).zip(&wanted) {
        let reply = socket.reply(&reference).await;
        assert_eq!(reply["event"], "session:resumed", "{reply}");
        answers.push((*n, *after, reply["data"].clone()));
    }
    assert_eq!(answers.len(), 30);
    for (n, after, resumed) in answers {
        let (_, session_id, stored) = &chats[n];
        assert_eq!(resumed["session"]["sessionId"].as_str(), Some(session_id.as_str()));
        let got: Vec<(i64, String)> = resumed["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| (m["seq"].as_i64().expect("seq"), m["content"].as_str().unwrap_or_default().to_owned()))
            .collect();
        let expected: Vec<(i64, String)> = stored.iter().filter(|(seq, _)| *seq > after).cloned().collect();
        assert_eq!(got, expected, "chat {n} resumed after {after}");
    }
}
