//! Several nodes on one PostgreSQL and one Redis are one service: a chat
//! whose customer and agent are on different nodes works as on one node,
//! the queue is one queue, and a node's kill -9 or Redis going away for a
//! while loses nothing a client was told was stored.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::helpers::{AppOptions, Next, Person, TestApp, TestCluster, WsClient, EVENT_TIMEOUT};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// Everything a side saw, keyed by seq: (sender, content).
type Seen = BTreeMap<i64, (String, String)>;

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

/// The session's messages as stored, by seq.
async fn stored(cluster: &TestCluster, session_id: &str) -> Seen {
    let session: uuid::Uuid = session_id.parse().expect("a session id");
    cluster
        .db
        .client()
        .await
        .query("SELECT seq, sender_type, content FROM chat_messages WHERE session_id = $1 ORDER BY seq", &[&session])
        .await
        .expect("the history")
        .iter()
        .map(|row| (row.get::<_, i64>(0), (row.get::<_, String>(1), row.get::<_, String>(2))))
        .collect()
}

fn assert_gap_free(stored: &Seen) {
    let seqs: Vec<i64> = stored.keys().copied().collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>(), "seqs 1..N with no gap and no duplicate");
}

/// The session's status and agent, as stored.
async fn session_row(cluster: &TestCluster, session_id: &str) -> (String, Option<uuid::Uuid>) {
    let session: uuid::Uuid = session_id.parse().expect("a session id");
    let row = cluster
        .db
        .client()
        .await
        .query_one("SELECT status, assigned_agent_id FROM chat_sessions WHERE id = $1", &[&session])
        .await
        .expect("the session");
    (row.get(0), row.get(1))
}

/// A customer on `node` who has started a chat there and asked for a person.
struct Waiting {
    person: Person,
    socket: WsClient,
    session_id: String,
    /// The position `customer:request_agent` answered with.
    position: i64,
}

async fn queued_customer(node: &TestApp, name: &str, priority: &str) -> Waiting {
    let person = node.host_customer(name, priority).await;
    let mut socket = node.customer_socket(&person).await;
    let session_id = socket.start_chat().await;
    let status = socket
        .ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id, "reason": "billing" }))
        .await;
    assert_eq!(status["status"], "waiting", "{status}");
    let position = status["queuePosition"].as_i64().expect("queuePosition");
    Waiting { person, socket, session_id, position }
}

/// A joined agent on `node`; away ones get no chat unless they pick it up.
async fn joined_agent(node: &TestApp, username: &str, capacity: u32, status: &str) -> (Person, WsClient) {
    let person = node.agent(username, capacity).await;
    let mut desk = node.agent_socket(&person).await;
    desk.ok("agent:join", "agent:joined", json!({})).await;
    if status != "online" {
        desk.ok("agent:set_status", "agent:status", json!({ "status": status })).await;
    }
    (person, desk)
}

/// More messages than one side of a chat may send in a minute by default.
fn busy_chat_options() -> AppOptions {
    AppOptions::default().env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000")
}

#[tokio::test]
async fn a_customer_on_one_node_and_an_agent_on_another_go_through_the_whole_story_and_the_history_matches() {
    let cluster = TestCluster::start(2).await;
    let (node_a, node_b) = (cluster.node(A), cluster.node(B));
    let ann = node_a.visitor("Ann").await;
    let alice = node_b.agent("alice", 3).await;
    let mut customer = node_a.customer_socket(&ann).await;
    let mut customer_saw = Seen::new();
    let mut agent_saw = Seen::new();

    // On A: the bot greets Ann and answers her question.
    let created = customer.ok("customer:start_chat", "session:created", json!({})).await;
    assert_eq!(created["status"], "bot");
    let session_id = created["sessionId"].as_str().expect("sessionId").to_owned();
    let greeting = customer.push("message:received").await;
    assert_eq!(greeting["sender"], "bot");
    see(&mut customer_saw, &greeting);
    let seq = say(&mut customer, "customer:send_message", &session_id, "Where is my parcel?", "c1").await;
    customer_saw.insert(seq, ("customer".into(), "Where is my parcel?".into()));
    let answer = customer.push("message:received").await;
    assert_eq!(answer["sender"], "bot", "{answer}");
    see(&mut customer_saw, &answer);

    // She asks for a person.
    let waiting = customer
        .ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id, "reason": "parcel" }))
        .await;
    assert_eq!((waiting["status"].as_str(), waiting["queuePosition"].as_i64()), (Some("waiting"), Some(1)));
    let queued_note = customer.push("message:received").await;
    assert_eq!(queued_note["sender"], "system", "{queued_note}");
    see(&mut customer_saw, &queued_note);

    // On B: Alice joins, sees the chat on the queue board and gets it with its whole history.
    let mut agent = node_b.agent_socket(&alice).await;
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let board = agent.board_when("Ann's chat, waiting on node A", |board| !board.is_empty()).await;
    assert_eq!(board[0]["sessionId"], session_id.as_str());
    assert_eq!(board[0]["customerName"], "Ann");
    assert_eq!(board[0]["preview"], "Where is my parcel?");
    let assigned = agent.push("session:assigned").await;
    assert_eq!(assigned["sessionId"], session_id.as_str());
    for message in assigned["messages"].as_array().expect("history") {
        see(&mut agent_saw, message);
    }
    agent.board_when("the chat gone from the board", |board| board.is_empty()).await;
    // Ann, on A, hears that Alice took it.
    let status = customer.push("status:changed").await;
    assert_eq!((status["status"].as_str(), status["agentName"].as_str()), (Some("assigned"), Some("Alice")));
    let joined_note = customer.push("message:received").await;
    assert_eq!(joined_note["content"], "Alice joined the chat.");
    see(&mut customer_saw, &joined_note);

    // They talk both ways, each on their own node.
    let seq = say(&mut agent, "agent:send_message", &session_id, "Hi Ann, let me check", "a1").await;
    agent_saw.insert(seq, ("agent".into(), "Hi Ann, let me check".into()));
    let from_agent = customer.push("message:received").await;
    assert_eq!((from_agent["sender"].as_str(), from_agent["senderName"].as_str()), (Some("agent"), Some("Alice")));
    see(&mut customer_saw, &from_agent);
    let seq = say(&mut customer, "customer:send_message", &session_id, "It was due on Monday", "c2").await;
    customer_saw.insert(seq, ("customer".into(), "It was due on Monday".into()));
    let from_customer = agent.push("message:received").await;
    assert_eq!(from_customer["senderName"], "Ann");
    see(&mut agent_saw, &from_customer);

    // Typing both ways.
    customer.ok("customer:typing", "ack", json!({ "sessionId": session_id })).await;
    let typing = agent.push("user_typing").await;
    assert_eq!((typing["role"].as_str(), typing["name"].as_str()), (Some("customer"), Some("Ann")));
    customer.ok("customer:stop_typing", "ack", json!({ "sessionId": session_id })).await;
    assert_eq!(agent.push("typing_stopped").await["role"], "customer");
    agent.ok("agent:typing", "ack", json!({ "sessionId": session_id })).await;
    let typing = customer.push("user_typing").await;
    assert_eq!((typing["role"].as_str(), typing["name"].as_str()), (Some("agent"), Some("Alice")));
    agent.ok("agent:stop_typing", "ack", json!({ "sessionId": session_id })).await;
    assert_eq!(customer.push("typing_stopped").await["role"], "agent");

    // Read receipts both ways.
    let last = *agent_saw.keys().last().expect("messages");
    assert_eq!(last, *customer_saw.keys().last().expect("messages"), "both sides are at the same message");
    agent.ok("agent:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    let read = customer.push("messages_read").await;
    assert_eq!((read["role"].as_str(), read["upToSeq"].as_i64()), (Some("agent"), Some(last)));
    customer.ok("customer:mark_read", "ack", json!({ "sessionId": session_id, "upToSeq": last })).await;
    let read = agent.push("messages_read").await;
    assert_eq!((read["role"].as_str(), read["upToSeq"].as_i64()), (Some("customer"), Some(last)));

    // Alice resolves it on B; Ann hears on A.
    let closed =
        agent.ok("agent:close_session", "session:closed", json!({ "sessionId": session_id, "resolved": true })).await;
    assert_eq!(closed["reason"], "resolved");
    assert_eq!(customer.push("session:closed").await["reason"], "resolved");
    see(&mut customer_saw, &customer.push("message:received").await);
    see(&mut agent_saw, &agent.push("message:received").await);

    // The database holds exactly what each side saw, in seq order.
    let stored = stored(&cluster, &session_id).await;
    assert_gap_free(&stored);
    assert_eq!(stored, customer_saw, "the customer's view (node A)");
    assert_eq!(stored, agent_saw, "the agent's view (node B)");
    assert_eq!(session_row(&cluster, &session_id).await, ("closed".to_owned(), Some(alice.user_id)));
    let session: uuid::Uuid = session_id.parse().expect("uuid");
    let receipts = cluster
        .db
        .client()
        .await
        .query("SELECT role, last_read_seq FROM read_receipts WHERE session_id = $1 ORDER BY role", &[&session])
        .await
        .expect("receipts");
    let receipts: Vec<(String, i64)> = receipts.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(receipts, [("agent".to_owned(), last), ("customer".to_owned(), last)]);
}

#[tokio::test]
async fn customers_queued_on_two_nodes_are_served_by_an_agent_on_a_third_in_priority_then_waiting_order() {
    let cluster = TestCluster::start(3).await;
    // Interleaved across nodes A and C, so neither arrival order nor one
    // node's own queue alone gives the right answer.
    let priorities = ["low", "normal", "high", "low", "normal", "high"];
    let mut queued: Vec<(&str, Waiting)> = Vec::new();
    for (n, priority) in priorities.iter().enumerate() {
        let node = cluster.node(if n % 2 == 0 { A } else { C });
        let customer = queued_customer(node, &format!("Customer {n}"), priority).await;
        // The position she is told counts everyone waiting, on every node.
        let rank = |p: &str| ["high", "normal", "low"].iter().position(|q| *q == p).expect("a priority");
        let ahead = queued.iter().filter(|(p, _)| rank(p) <= rank(priority)).count() as i64;
        assert_eq!(customer.position, ahead + 1, "customer {n} ({priority}) was told the wrong position");
        queued.push((priority, customer));
    }
    let expected: Vec<String> = ["high", "normal", "low"]
        .iter()
        .flat_map(|wanted| queued.iter().filter(move |(p, _)| p == wanted).map(|(_, c)| c.session_id.clone()))
        .collect();

    // Everyone's latest position is their place in the one queue.
    for (_, customer) in &mut queued {
        let place = expected.iter().position(|id| *id == customer.session_id).expect("queued") as i64 + 1;
        let mut latest = customer.position;
        for push in customer.socket.pushes_within("queue:position", Duration::from_millis(300)).await {
            latest = push["position"].as_i64().expect("position");
        }
        while latest != place {
            let told = tokio::time::timeout(Duration::from_secs(10), customer.socket.push("queue:position")).await;
            let told = told
                .unwrap_or_else(|_| panic!("{} was last told position {latest}, not {place}", customer.person.name));
            latest = told["position"].as_i64().expect("position");
        }
    }

    // An agent joins on B with room for all of them.
    let (bob, mut desk) = joined_agent(cluster.node(B), "bob", 6, "online").await;
    let board = desk.board_when("the six waiting chats", |board| board.len() == 6).await;
    let on_board: Vec<String> = board.iter().map(|s| s["sessionId"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(on_board, expected, "the board lists the queue in serving order");
    let mut assigned = Vec::new();
    for _ in 0..6 {
        assigned.push(desk.push("session:assigned").await["sessionId"].as_str().expect("id").to_owned());
    }
    assert_eq!(assigned, expected, "session:assigned in serving order: high oldest first, then normal, then low");
    for (_, customer) in &mut queued {
        let status = customer.socket.push("status:changed").await;
        assert_eq!((status["status"].as_str(), status["agentName"].as_str()), (Some("assigned"), Some("Bob")));
    }

    let db = cluster.db.client().await;
    let order: Vec<String> = db
        .query("SELECT session_id::text FROM queue_entries ORDER BY assigned_at", &[])
        .await
        .expect("entries")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(order, expected, "assignment order as stored");
    let agents: Vec<Option<uuid::Uuid>> = db
        .query("SELECT DISTINCT assigned_agent_id FROM chat_sessions", &[])
        .await
        .expect("sessions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(agents, [Some(bob.user_id)]);
}

#[tokio::test]
async fn two_agents_on_different_nodes_picking_up_the_same_chat_at_once_one_wins_the_other_is_told() {
    let cluster = TestCluster::start(3).await;
    // Away agents get nothing automatically: only a pickup takes a chat.
    let (dan, mut on_a) = joined_agent(cluster.node(A), "dan", 5, "away").await;
    let (eve, mut on_b) = joined_agent(cluster.node(B), "eve", 5, "away").await;

    for round in 0..3 {
        // The customer is on C, a node neither agent is on.
        let mut customer = queued_customer(cluster.node(C), &format!("Frank {round}"), "normal").await;
        let id = customer.session_id.clone();
        for desk in [&mut on_a, &mut on_b] {
            desk.board_when("the chat waiting on node C", |board| board.iter().any(|s| s["sessionId"] == id.as_str()))
                .await;
        }

        let pickup = json!({ "sessionId": id });
        let (first, second) = if round % 2 == 0 { (&mut on_a, &mut on_b) } else { (&mut on_b, &mut on_a) };
        let first_ref = first.send("agent:pickup_session", pickup.clone()).await;
        let second_ref = second.send("agent:pickup_session", pickup).await;
        let (x, y) = tokio::join!(first.reply(&first_ref), second.reply(&second_ref));
        let (a, b) = if round % 2 == 0 { (x, y) } else { (y, x) };
        let events = [a["event"].as_str().unwrap_or_default(), b["event"].as_str().unwrap_or_default()];
        assert!(
            events.contains(&"session:assigned") && events.contains(&"error"),
            "round {round}: exactly one pickup wins: dan (A) got {a}, eve (B) got {b}"
        );
        let (winner, loser, winner_id, winner_name) =
            if a["event"] == "session:assigned" { (&a, &b, dan.user_id, "Dan") } else { (&b, &a, eve.user_id, "Eve") };
        let code = loser["data"]["code"].as_str().unwrap_or_default();
        assert!(["already_assigned", "not_waiting"].contains(&code), "round {round}: the loser is told why: {loser}");
        assert_eq!(winner["data"]["sessionId"], id.as_str());
        assert!(!winner["data"]["messages"].as_array().expect("history").is_empty());

        // The customer on C hears who took it; both boards drop it.
        let status = customer.socket.push("status:changed").await;
        assert_eq!((status["status"].as_str(), status["agentName"].as_str()), (Some("assigned"), Some(winner_name)));
        for desk in [&mut on_a, &mut on_b] {
            desk.board_when("the chat gone from the board", |board| {
                board.iter().all(|s| s["sessionId"] != id.as_str())
            })
            .await;
        }
        assert_eq!(session_row(&cluster, &id).await, ("assigned".to_owned(), Some(winner_id)), "round {round}");
        let session: uuid::Uuid = id.parse().expect("uuid");
        let assignments: i64 = cluster
            .db
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM queue_entries WHERE session_id = $1 AND assigned_agent_id IS NOT NULL",
                &[&session],
            )
            .await
            .expect("entries")
            .get(0);
        assert_eq!(assignments, 1, "round {round}: one assignment stored");
    }
}

#[tokio::test]
async fn a_killed_leader_is_replaced_and_a_new_node_joins_the_cluster() {
    let mut cluster = TestCluster::start(3).await;
    let leader = cluster.wait_until_formed().await;
    cluster.kill_9(leader).await;
    let killed_at = Instant::now();
    let new_leader = cluster.wait_until_formed().await;
    assert_ne!(new_leader, leader);
    assert!(killed_at.elapsed() < Duration::from_secs(15), "a new leader within 15 s, took {:?}", killed_at.elapsed());

    // A node started now joins as a follower, and the queue works through it.
    let fresh = cluster.start_node().await;
    assert_eq!(cluster.wait_until_formed().await, new_leader, "the leader stays the leader");
    let (_, health) = cluster.health(fresh).await;
    assert_eq!(health["cluster"]["nodeId"], "node-d");
    let survivor = (0..3).find(|&n| n != leader).expect("a survivor");
    let _waiting = queued_customer(cluster.node(fresh), "Gus", "normal").await;
    let (_, mut desk) = joined_agent(cluster.node(survivor), "gina", 1, "online").await;
    assert_eq!(desk.push("session:assigned").await["session"]["customerName"], "Gus");
}

// ---- a chat under load, with a client that reconnects ----

/// Errors after which a client sends the same request again.
const RETRYABLE: [&str; 6] =
    ["cluster_unavailable", "database_unavailable", "storage_timeout", "overloaded", "internal", "rate_limited"];

/// How long a request may go unanswered before the client gives up on the connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(8);

/// One side of a chat as a careful widget or dashboard runs it: it numbers
/// its messages with `clientMsgId`s, re-sends each until it is acknowledged
/// (after a retryable error, or on a new connection after the old one
/// closed or stopped answering), and on reconnecting catches up (the
/// customer with `customer:resume` from the last seq it has without a gap,
/// the agent with `agent:join`, which hands it its chats' whole history).
/// It remembers everything it was shown, and fails the test on anything a
/// user would see as wrong: a message shown twice on one connection, a seq
/// shown with two different contents, a non-retryable refusal, the chat
/// closed or taken away, or a message not acknowledged within `patience`.
struct Participant {
    /// `customer` or `agent`: also the sender of its messages.
    who: &'static str,
    urls: Vec<String>,
    /// Which of `urls` it uses; moves on when a node cannot be reached.
    at: usize,
    socket: Option<WsClient>,
    session_id: String,
    patience: Duration,
    seen: Seen,
    /// Seqs shown on the current connection.
    on_this_socket: HashSet<i64>,
    /// Seqs that arrived as live `message:received` pushes.
    live: HashSet<i64>,
    texts: HashMap<String, String>,
    acked: BTreeMap<String, i64>,
    /// Messages not yet acknowledged, oldest first, with when each was first sent.
    unacked: Vec<(String, Instant)>,
    /// ref -> (clientMsgId, when sent)
    in_flight: HashMap<String, (String, Instant)>,
    retry_at: Vec<(Instant, String)>,
    /// When each send or re-send went out.
    attempts: Vec<Instant>,
    errors: BTreeMap<String, usize>,
    reconnects: usize,
    close_codes: Vec<Option<u16>>,
}

impl Participant {
    /// Connects (to the first of `urls` that answers) and catches up on the whole chat.
    async fn connect(who: &'static str, urls: Vec<String>, session_id: &str, patience: Duration) -> Participant {
        let mut participant = Participant {
            who,
            urls,
            at: 0,
            socket: None,
            session_id: session_id.to_owned(),
            patience,
            seen: Seen::new(),
            on_this_socket: HashSet::new(),
            live: HashSet::new(),
            texts: HashMap::new(),
            acked: BTreeMap::new(),
            unacked: Vec::new(),
            in_flight: HashMap::new(),
            retry_at: Vec::new(),
            attempts: Vec::new(),
            errors: BTreeMap::new(),
            reconnects: 0,
            close_codes: Vec::new(),
        };
        participant.ensure_connected().await;
        participant.reconnects = 0;
        participant
    }

    fn send_event(&self) -> String {
        format!("{}:send_message", self.who)
    }

    /// The highest seq below which it has seen everything.
    fn contiguous_top(&self) -> i64 {
        let mut top = 0;
        while self.seen.contains_key(&(top + 1)) {
            top += 1;
        }
        top
    }

    fn record(&mut self, seq: i64, entry: (String, String)) {
        match self.seen.get(&seq) {
            Some(prior) => assert_eq!(prior, &entry, "{}: seq {seq} was shown with two contents", self.who),
            None => {
                self.seen.insert(seq, entry);
            }
        }
    }

    /// A message shown on the current connection.
    fn show(&mut self, message: &Value, live: bool) {
        let seq = message["seq"].as_i64().expect("seq");
        assert!(self.on_this_socket.insert(seq), "{}: seq {seq} shown twice on one connection: {message}", self.who);
        if live {
            self.live.insert(seq);
        }
        let entry = (
            message["sender"].as_str().expect("sender").to_owned(),
            message["content"].as_str().expect("content").to_owned(),
        );
        self.record(seq, entry);
    }

    fn status(&self) -> String {
        format!(
            "{}: {} acknowledged, {} waiting, errors {:?}, {} reconnections, close codes {:?}",
            self.who,
            self.acked.len(),
            self.unacked.len(),
            self.errors,
            self.reconnects,
            self.close_codes
        )
    }

    /// Makes sure it has a live, caught-up connection; on a new one,
    /// re-sends everything not yet acknowledged.
    async fn ensure_connected(&mut self) {
        if self.socket.as_ref().is_some_and(|socket| socket.closed.is_none()) {
            return;
        }
        if let Some(old) = self.socket.take() {
            self.close_codes.push(old.close_code());
        }
        self.reconnects += 1;
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_millis(100);
        loop {
            assert!(Instant::now() < deadline, "could not reconnect within {:?}: {}", self.patience, self.status());
            match self.catch_up(deadline).await {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.in_flight.clear();
                    self.retry_at.clear();
                    let waiting: Vec<String> = self.unacked.iter().map(|(id, _)| id.clone()).collect();
                    for id in waiting {
                        self.transmit(&id).await;
                    }
                    return;
                }
                Err(unreachable) => {
                    if unreachable {
                        self.at = (self.at + 1) % self.urls.len();
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// A new connection, caught up. `Err(true)`: the node could not be
    /// reached; `Err(false)`: it answered but could not serve yet.
    async fn catch_up(&mut self, deadline: Instant) -> Result<WsClient, bool> {
        let url = self.urls[self.at].clone();
        let mut socket = match tokio::time::timeout(Duration::from_secs(5), WsClient::connect(&url)).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                *self.errors.entry(format!("connect: {error}")).or_default() += 1;
                return Err(true);
            }
            Err(_) => {
                *self.errors.entry("connect: timed out".to_owned()).or_default() += 1;
                return Err(true);
            }
        };
        self.on_this_socket.clear();
        let mut pause = Duration::from_millis(100);
        while Instant::now() < deadline {
            let (event, data) = if self.who == "customer" {
                let after = self.contiguous_top();
                ("customer:resume", json!({ "sessionId": self.session_id, "afterSeq": after }))
            } else {
                ("agent:join", json!({}))
            };
            let Some(reference) = socket.try_send(event, data).await else { return Err(false) };
            let reply = loop {
                match socket.next_frame(REPLY_TIMEOUT).await {
                    Next::Frame(frame) if frame["ref"] == reference.as_str() => break frame,
                    Next::Frame(_) => continue,
                    Next::Closed | Next::Quiet => {
                        *self.errors.entry(format!("{event}: no answer")).or_default() += 1;
                        return Err(false);
                    }
                }
            };
            match reply["event"].as_str() {
                Some("session:resumed") => {
                    for message in reply["data"]["messages"].as_array().expect("messages") {
                        self.show(message, false);
                    }
                    let status = &reply["data"]["session"]["status"];
                    assert_eq!(status, "assigned", "{}: the chat is no longer with its agent: {reply}", self.who);
                    return Ok(socket);
                }
                Some("agent:joined") => {
                    // Its chats follow, each with its whole history.
                    let assigned = loop {
                        match socket.next_frame(EVENT_TIMEOUT).await {
                            Next::Frame(frame)
                                if frame["event"] == "session:assigned"
                                    && frame["data"]["sessionId"] == self.session_id.as_str() =>
                            {
                                break frame;
                            }
                            Next::Frame(_) => continue,
                            Next::Closed => return Err(false),
                            Next::Quiet => {
                                panic!("the agent joined again but did not get the chat back: {}", self.status())
                            }
                        }
                    };
                    for message in assigned["data"]["messages"].as_array().expect("history") {
                        self.show(message, false);
                    }
                    return Ok(socket);
                }
                Some("error") => {
                    let code = reply["data"]["code"].as_str().unwrap_or_default().to_owned();
                    assert!(RETRYABLE.contains(&code.as_str()), "{}: {event} refused: {reply}", self.who);
                    *self.errors.entry(code).or_default() += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                _ => panic!("{}: {event} answered {reply}", self.who),
            }
        }
        Err(false)
    }

    /// Sends (again) the message `id`, if connected; a new connection sends it otherwise.
    async fn transmit(&mut self, id: &str) {
        let data = json!({ "sessionId": self.session_id, "content": self.texts[id], "clientMsgId": id });
        let event = self.send_event();
        let Some(socket) = self.socket.as_mut() else { return };
        if let Some(reference) = socket.try_send(&event, data).await {
            self.in_flight.insert(reference, (id.to_owned(), Instant::now()));
            self.attempts.push(Instant::now());
        }
    }

    async fn send_new(&mut self, id: String, text: String) {
        self.texts.insert(id.clone(), text);
        self.unacked.push((id.clone(), Instant::now()));
        self.transmit(&id).await;
    }

    fn handle(&mut self, frame: Value) {
        if let Some(reference) = frame["ref"].as_str() {
            // A reply; one to a request of an earlier connection cannot arrive here.
            let Some((id, _)) = self.in_flight.remove(reference) else { return };
            match frame["event"].as_str() {
                Some("message:sent") => {
                    let seq = frame["data"]["seq"].as_i64().expect("seq");
                    assert_eq!(frame["data"]["clientMsgId"], id.as_str(), "{frame}");
                    if let Some(first) = self.acked.insert(id.clone(), seq) {
                        assert_eq!(first, seq, "{}: {id} acknowledged with two seqs", self.who);
                    }
                    let text = self.texts[&id].clone();
                    self.record(seq, (self.who.to_owned(), text));
                    self.unacked.retain(|(waiting, _)| *waiting != id);
                }
                Some("error") => {
                    let code = frame["data"]["code"].as_str().unwrap_or_default().to_owned();
                    assert!(RETRYABLE.contains(&code.as_str()), "{}: {id} refused: {frame}", self.who);
                    let pause = frame["data"]["retryAfter"].as_u64().map_or(300, |secs| secs * 1000);
                    *self.errors.entry(code).or_default() += 1;
                    if !self.acked.contains_key(&id) {
                        self.retry_at.push((Instant::now() + Duration::from_millis(pause), id));
                    }
                }
                _ => panic!("{}: {id} answered {frame}", self.who),
            }
            return;
        }
        let data = &frame["data"];
        if data["sessionId"] != self.session_id.as_str() {
            return;
        }
        match frame["event"].as_str() {
            Some("message:received") => self.show(data, true),
            Some("session:closed") => panic!("{}: the chat was closed: {frame}", self.who),
            Some("session:released") => panic!("{}: the agent lost the chat: {frame}", self.who),
            _ => {}
        }
    }

    /// Reads what arrives for up to `within`.
    async fn pump(&mut self, within: Duration) {
        let Some(mut socket) = self.socket.take() else { return };
        let until = Instant::now() + within;
        while let Next::Frame(frame) = socket.next_frame(until.saturating_duration_since(Instant::now())).await {
            self.handle(frame);
        }
        self.socket = Some(socket);
    }

    /// One turn: reconnect if needed, re-send what is due, give up on a
    /// connection that stopped answering, read for a moment.
    async fn tick(&mut self) {
        self.ensure_connected().await;
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retry_at).into_iter().partition(|(at, _)| *at <= now);
        self.retry_at = later;
        for (_, id) in due {
            if !self.acked.contains_key(&id) {
                self.transmit(&id).await;
            }
        }
        if self.in_flight.values().any(|(_, sent)| sent.elapsed() > REPLY_TIMEOUT) {
            *self.errors.entry("no reply".to_owned()).or_default() += 1;
            self.socket = None;
            self.close_codes.push(None);
            return;
        }
        if let Some((id, first)) = self.unacked.first() {
            assert!(
                first.elapsed() < self.patience,
                "{id} was not acknowledged within {:?}: {}",
                self.patience,
                self.status()
            );
        }
        self.pump(Duration::from_millis(25)).await;
    }

    /// Sends `{tag}-0`, `{tag}-1`, … one every `pace`, at most `window` not yet
    /// acknowledged, until `limit` are sent or `stop` is set; then waits until
    /// every one is acknowledged. `acks` follows the count acknowledged.
    async fn run(&mut self, tag: &str, limit: usize, pace: Duration, stop: &Cell<bool>, acks: &Cell<usize>) {
        const WINDOW: usize = 4;
        let mut next = 0;
        let mut last_sent = Instant::now() - pace;
        loop {
            let sending = next < limit && !stop.get();
            if !sending && self.unacked.is_empty() {
                return;
            }
            self.tick().await;
            acks.set(self.acked.len());
            if sending && self.unacked.len() < WINDOW && last_sent.elapsed() >= pace {
                self.send_new(format!("{tag}-{next}"), format!("{} says {tag}-{next}", self.who)).await;
                next += 1;
                last_sent = Instant::now();
            }
        }
    }

    /// Sends one message and waits until it is acknowledged; returns its seq.
    async fn say(&mut self, id: &str) -> i64 {
        self.send_new(id.to_owned(), format!("{} says {id}", self.who)).await;
        while !self.acked.contains_key(id) {
            self.tick().await;
        }
        self.acked[id]
    }

    /// Reads until it has seen exactly `stored`, reconnecting as needed;
    /// fails with what is missing after `EVENT_TIMEOUT`.
    async fn settle(&mut self, stored: &Seen) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while self.seen != *stored && Instant::now() < deadline {
            self.tick().await;
        }
        let missing: Vec<&i64> = stored.keys().filter(|seq| !self.seen.contains_key(seq)).collect();
        let unknown: Vec<&i64> = self.seen.keys().filter(|seq| !stored.contains_key(seq)).collect();
        assert!(
            self.seen == *stored,
            "{}'s view is not the stored history: never shown {missing:?}, shown but not stored {unknown:?}; {}",
            self.who,
            self.status()
        );
    }

    /// Every message it was told was stored is stored once, with the seq it was told.
    async fn check_stored(&self, cluster: &TestCluster) {
        let session: uuid::Uuid = self.session_id.parse().expect("uuid");
        let rows = cluster
            .db
            .client()
            .await
            .query(
                "SELECT client_msg_id, count(*), min(seq) FROM chat_messages
                 WHERE session_id = $1 AND sender_type = $2 AND client_msg_id IS NOT NULL GROUP BY client_msg_id",
                &[&session, &self.who],
            )
            .await
            .expect("the stored messages");
        let stored: BTreeMap<String, (i64, i64)> =
            rows.iter().map(|row| (row.get::<_, String>(0), (row.get::<_, i64>(1), row.get::<_, i64>(2)))).collect();
        let expected: BTreeMap<String, (i64, i64)> =
            self.acked.iter().map(|(id, seq)| (id.clone(), (1, *seq))).collect();
        assert_eq!(stored, expected, "{}: each acknowledged message stored once, at the seq acknowledged", self.who);
    }
}

fn customer_urls(cluster: &TestCluster, nodes: &[usize], person: &Person) -> Vec<String> {
    nodes.iter().map(|&node| cluster.node(node).ws_url("/ws/customer", &person.token)).collect()
}

fn agent_urls(cluster: &TestCluster, nodes: &[usize], person: &Person) -> Vec<String> {
    nodes.iter().map(|&node| cluster.node(node).ws_url("/ws/agent", &person.token)).collect()
}

/// Ann on `customer_node` and Alice (room for one chat) on `agent_node`,
/// in a chat Ann started on her node.
struct Across {
    ann: Person,
    alice: Person,
    session_id: String,
    /// The sockets it was set up with, to close once the participants have their own.
    sockets: (WsClient, WsClient),
}

async fn chat_across(cluster: &TestCluster, customer_node: usize, agent_node: usize) -> Across {
    let (alice, mut desk) = joined_agent(cluster.node(agent_node), "alice", 1, "online").await;
    let ann = cluster.node(customer_node).visitor("Ann").await;
    let mut widget = cluster.node(customer_node).customer_socket(&ann).await;
    let session_id = widget.start_chat().await;
    widget.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    assert_eq!(desk.push("session:assigned").await["sessionId"], session_id.as_str());
    assert_eq!(widget.push("status:changed").await["status"], "assigned");
    Across { ann, alice, session_id, sockets: (widget, desk) }
}

#[tokio::test]
async fn the_node_that_owns_a_busy_chat_is_killed_and_the_chat_goes_on_with_nothing_lost_or_doubled() {
    let mut cluster = TestCluster::start_with(3, busy_chat_options()).await;
    // Ann started her chat on A, so A owns it; Alice is on B.
    let Across { ann, alice, session_id, sockets } = chat_across(&cluster, A, B).await;
    // Alice is full: Bea, on C, waits.
    let bea = queued_customer(cluster.node(C), "Bea", "normal").await;
    let (bea_person, bea_session) = (bea.person, bea.session_id);
    drop(bea.socket);

    let patience = Duration::from_secs(20);
    let mut customer =
        Participant::connect("customer", customer_urls(&cluster, &[A, B, C], &ann), &session_id, patience).await;
    let mut agent = Participant::connect("agent", agent_urls(&cluster, &[B], &alice), &session_id, patience).await;
    drop(sockets);
    let (customer_acks, agent_acks, never) = (Cell::new(0), Cell::new(0), Cell::new(false));
    let pace = Duration::from_millis(40);
    let kill = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while customer_acks.get() < 12 || agent_acks.get() < 12 {
            assert!(Instant::now() < deadline, "the chat never got going");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.kill_9(A).await;
    };
    tokio::join!(
        customer.run("c", 40, pace, &never, &customer_acks),
        agent.run("a", 40, pace, &never, &agent_acks),
        kill
    );
    assert!(customer.reconnects >= 1, "the customer, on the killed node, had to reconnect: {}", customer.status());
    assert_eq!((customer.acked.len(), agent.acked.len()), (40, 40));

    let stored = stored(&cluster, &session_id).await;
    assert_gap_free(&stored);
    customer.check_stored(&cluster).await;
    agent.check_stored(&cluster).await;
    customer.settle(&stored).await;
    agent.settle(&stored).await;
    assert_eq!(
        session_row(&cluster, &session_id).await,
        ("assigned".to_owned(), Some(alice.user_id)),
        "Alice keeps the chat"
    );

    // The queue came through: Bea still waits, and a node started now can serve her.
    assert_eq!(session_row(&cluster, &bea_session).await, ("waiting".to_owned(), None));
    let fresh = cluster.start_node().await;
    cluster.wait_until_formed().await;
    let mut bea = cluster.node(C).customer_socket(&bea_person).await;
    let resumed = bea.ok("customer:resume", "session:resumed", json!({ "sessionId": bea_session })).await;
    assert_eq!(resumed["session"]["status"], "waiting");
    let (_, mut desk) = joined_agent(cluster.node(fresh), "bob", 1, "online").await;
    assert_eq!(desk.push("session:assigned").await["sessionId"], bea_session.as_str());
    let status = bea.push("status:changed").await;
    assert_eq!((status["status"].as_str(), status["agentName"].as_str()), (Some("assigned"), Some("Bob")));
}

/// Sends messages from `from` until one arrives live at `to`, by `deadline`.
async fn delivered_live(from: &mut Participant, to: &mut Participant, tag: &str, deadline: Instant) {
    for n in 0.. {
        assert!(
            Instant::now() < deadline,
            "{tag}: nothing the {} sent reached the {} live in time; {} / {}",
            from.who,
            to.who,
            from.status(),
            to.status()
        );
        let seq = from.say(&format!("{tag}-{n}")).await;
        let wait = Instant::now() + Duration::from_secs(1);
        while !to.live.contains(&seq) && Instant::now() < wait {
            to.tick().await;
        }
        if to.live.contains(&seq) {
            return;
        }
    }
}

#[tokio::test]
async fn redis_stopped_for_ten_seconds_under_load_loses_nothing_and_cross_node_delivery_comes_back() {
    let mut cluster = TestCluster::start_with(2, busy_chat_options()).await;
    let Across { ann, alice, session_id, sockets } = chat_across(&cluster, A, B).await;
    let patience = Duration::from_secs(30);
    // Each stays on their node.
    let mut customer =
        Participant::connect("customer", customer_urls(&cluster, &[A], &ann), &session_id, patience).await;
    let mut agent = Participant::connect("agent", agent_urls(&cluster, &[B], &alice), &session_id, patience).await;
    drop(sockets);
    let (customer_acks, agent_acks, stop) = (Cell::new(0), Cell::new(0), Cell::new(false));
    let pace = Duration::from_millis(100);

    let TestCluster { nodes, redis, node_ids, .. } = &mut cluster;
    let outage = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while customer_acks.get() < 5 || agent_acks.get() < 5 {
            assert!(Instant::now() < deadline, "the chat never got going");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis.stop().await;
        let stopped = Instant::now();
        // Every node says so on /health.
        for (node, id) in nodes.iter().zip(node_ids.iter()) {
            loop {
                let (_, health) = node.get_health().await;
                if health["dependencies"]["redis"]["status"] == "down" {
                    break;
                }
                assert!(
                    stopped.elapsed() < Duration::from_secs(8),
                    "{id}'s /health never said Redis was down: {health}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep_until(stopped + Duration::from_secs(10)).await;
        redis.start().await;
        let back = Instant::now();
        for (node, id) in nodes.iter().zip(node_ids.iter()) {
            loop {
                let (_, health) = node.get_health().await;
                if health["dependencies"]["redis"]["status"] == "up" && health["cluster"]["link"] == "up" {
                    break;
                }
                assert!(back.elapsed() < Duration::from_secs(15), "{id} did not see Redis again: {health}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // A little more traffic on the mended link, then the clients finish.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.set(true);
        (stopped, back)
    };
    let (_, _, (stopped, back)) = tokio::join!(
        customer.run("c", 1000, pace, &stop, &customer_acks),
        agent.run("a", 1000, pace, &stop, &agent_acks),
        outage
    );
    // The chat runs on the customer's node, which keeps serving its own
    // sockets without Redis. The agent, on the other node, cannot reach the
    // chat until Redis is back: it is refused with a code to retry on, and
    // what it resends afterwards is checked below like everything else.
    let during = customer.attempts.iter().filter(|at| **at > stopped && **at < back).count();
    assert!(during > 0, "the customer kept sending during the outage: {}", customer.status());

    // Cross-node delivery works again, both ways, on the same nodes.
    let deadline = back + Duration::from_secs(15);
    delivered_live(&mut customer, &mut agent, "to-agent", deadline).await;
    delivered_live(&mut agent, &mut customer, "to-customer", deadline).await;
    assert_eq!(cluster.live_nodes(), [A, B], "no node was restarted or lost");

    let stored = stored(&cluster, &session_id).await;
    assert_gap_free(&stored);
    customer.check_stored(&cluster).await;
    agent.check_stored(&cluster).await;
    customer.settle(&stored).await;
    agent.settle(&stored).await;
    assert_eq!(session_row(&cluster, &session_id).await, ("assigned".to_owned(), Some(alice.user_id)));
}

/// `SOCKETS_PER_ACCOUNT` counts an account's sockets on every node, and a
/// node's sockets stop counting once the node is gone.
#[tokio::test]
async fn an_accounts_socket_cap_holds_across_nodes_and_a_dead_nodes_sockets_stop_counting() {
    let cluster = TestCluster::start_with(2, AppOptions::default().env("SOCKETS_PER_ACCOUNT", "2")).await;
    let eve = cluster.node(A).visitor("Eve").await;
    let _first = cluster.node(A).customer_socket(&eve).await;
    let _second = cluster.node(A).customer_socket(&eve).await;
    let on_b = cluster.node(B).ws_url("/ws/customer", &eve.token);
    assert_eq!(crate::socket_caps::refused_upgrade(&on_b).await, (429, "too_many_sockets".to_owned()));
    // Someone else is not affected.
    let ann = cluster.node(A).visitor("Ann").await;
    cluster.node(B).customer_socket(&ann).await.ok("customer:start_chat", "session:created", json!({})).await;

    // Node A dies with Eve's two sockets: once its lease lapses they are gone.
    let mut cluster = cluster;
    cluster.kill_9(A).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match WsClient::connect(&on_b).await {
            Ok(mut socket) => {
                socket.ok("customer:start_chat", "session:created", json!({})).await;
                break;
            }
            Err(error) => {
                assert!(Instant::now() < deadline, "Eve's sockets on the dead node still count: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// A customer's message allowance counts their messages on every node: two
/// chats run on two nodes share one allowance.
#[tokio::test]
async fn a_customers_message_allowance_counts_their_chats_on_every_node() {
    let options = AppOptions::default().env("RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE", "6");
    let cluster = TestCluster::start_with(2, options).await;
    let eve = cluster.node(A).visitor("Eve").await;
    let mut on_a = cluster.node(A).customer_socket(&eve).await;
    let mut on_b = cluster.node(B).customer_socket(&eve).await;
    // Each chat runs on the node it was started on.
    let chat_a = on_a.start_chat().await;
    let chat_b = on_b.start_chat().await;
    for n in 0..3 {
        say(&mut on_a, "customer:send_message", &chat_a, &format!("on A {n}"), &format!("a{n}")).await;
        say(&mut on_b, "customer:send_message", &chat_b, &format!("on B {n}"), &format!("b{n}")).await;
    }
    // Each node admitted three of Eve's six; the nodes exchange their counts every half second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (socket, chat, id) in [(&mut on_a, &chat_a, "a-over"), (&mut on_b, &chat_b, "b-over")] {
        let refusal = socket
            .refused("customer:send_message", json!({ "sessionId": chat, "content": "one more", "clientMsgId": id }))
            .await;
        assert_eq!(refusal, "rate_limited");
    }
    // Someone else on the same address (a factor of 100,000 in the tests) still speaks.
    let ann = cluster.node(B).visitor("Ann").await;
    let mut ann_socket = cluster.node(A).customer_socket(&ann).await;
    let chat = ann_socket.start_chat().await;
    say(&mut ann_socket, "customer:send_message", &chat, "hello", "ann-1").await;
}
