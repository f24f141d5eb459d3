//! Clients that stop reading: closed on purpose, holding nothing after.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{spawn_app_with, AppOptions, Person, TestApp, WsClient};

/// Messages of 4,000 bytes sent to each slow reader: 6 MB.
const FLOOD: usize = 1500;
const BACKLOG_LIMIT: &str = "262144";

fn options() -> AppOptions {
    AppOptions::default().env("OUTBOUND_BACKLOG_BYTES", BACKLOG_LIMIT).env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000")
}

/// A customer in a chat assigned to an agent; both sockets given.
async fn assigned_chat(customer: WsClient, agent: WsClient) -> (WsClient, WsClient, String) {
    let (mut customer, mut agent) = (customer, agent);
    agent.ok("agent:join", "agent:joined", json!({})).await;
    let session_id = customer.start_chat().await;
    customer.ok("customer:request_agent", "status:changed", json!({ "sessionId": session_id })).await;
    agent.push("session:assigned").await;
    (customer, agent, session_id)
}

/// Sends `count` messages of 4,000 bytes from `from`.
async fn flood(from: &mut WsClient, event: &str, session_id: &str, count: usize, tag: &str) {
    from.send_many(event, session_id, count, tag, &"y".repeat(4000)).await;
}

/// Waits until `/health` counts `expected` sockets, or fails after `within`.
async fn wait_for_sockets(app: &TestApp, expected: i64, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if app.open_sockets().await == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "still {} sockets after {within:?}", app.open_sockets().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn people(app: &TestApp) -> (Person, Person, Person, Person) {
    (app.visitor("Cara").await, app.agent("alice", 1).await, app.visitor("Dan").await, app.agent("bob", 1).await)
}

#[tokio::test]
async fn a_customer_and_an_agent_that_stop_reading_are_closed_with_1008_and_their_memory_returns() {
    let app = spawn_app_with(options()).await;
    let (cara, alice, dan, bob) = people(&app).await;
    // Cara's socket and Bob's will stop reading; Alice and Dan read everything.
    let (mut cara_socket, mut alice_socket, cara_chat) =
        assigned_chat(app.small_window_socket("/ws/customer", &cara).await, app.agent_socket(&alice).await).await;
    let (mut dan_socket, mut bob_socket, dan_chat) =
        assigned_chat(app.customer_socket(&dan).await, app.small_window_socket("/ws/agent", &bob).await).await;

    // The same traffic once with everyone reading, so the allocator has
    // grown to what this traffic needs before memory is measured.
    tokio::join!(
        flood(&mut alice_socket, "agent:send_message", &cara_chat, FLOOD, "warm-cara"),
        flood(&mut dan_socket, "customer:send_message", &dan_chat, FLOOD, "warm-bob"),
        async {
            for _ in 0..FLOOD {
                cara_socket.push("message:received").await;
            }
        },
        async {
            for _ in 0..FLOOD {
                bob_socket.push("message:received").await;
            }
        },
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = app.rss_kib();
    assert_eq!(app.open_sockets().await, 4);

    // Now Cara and Bob stop reading while 6 MB is sent to each.
    tokio::join!(
        flood(&mut alice_socket, "agent:send_message", &cara_chat, FLOOD, "to-cara"),
        flood(&mut dan_socket, "customer:send_message", &dan_chat, FLOOD, "to-bob"),
    );
    let taken = wait_for_sockets(&app, 2, Duration::from_secs(5)).await;
    eprintln!("the two sockets that stopped reading were closed {taken:?} after the last message was stored");

    // When they read again, what they missed ends in a close frame: 1008.
    for slow in [&mut cara_socket, &mut bob_socket] {
        let close = slow.closed_by_server().await.expect("a close frame");
        assert_eq!(close.code, CloseCode::Policy);
        assert!(close.reason.contains("too slow"), "{}", close.reason);
    }
    drop((cara_socket, bob_socket));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = app.rss_kib();
    eprintln!("server RSS {rss_before} KiB before the slow readers, {rss_after} KiB after");
    assert!(rss_after * 10 <= rss_before * 11, "RSS grew from {rss_before} KiB to {rss_after} KiB");

    // Everyone else carries on, and nothing sent was lost.
    alice_socket
        .ok(
            "agent:send_message",
            "message:sent",
            json!({ "sessionId": cara_chat, "content": "still here", "clientMsgId": "after" }),
        )
        .await;
    let mut back = app.customer_socket(&cara).await;
    let resumed = back.ok("customer:resume", "session:resumed", json!({ "sessionId": cara_chat, "afterSeq": 0 })).await;
    let from_alice = resumed["messages"].as_array().expect("messages").iter().filter(|m| m["sender"] == "agent");
    assert_eq!(from_alice.count(), 2 * FLOOD + 1, "every message was stored");
    assert!(app.log().contains("unread"), "the disconnect is logged");
}

#[tokio::test]
async fn sigterm_with_a_client_that_stopped_reading_exits_within_two_seconds() {
    let mut app = spawn_app_with(AppOptions::default().env("RATE_LIMIT_MESSAGES_PER_MINUTE", "100000")).await;
    let (cara, alice, _, _) = people(&app).await;
    let (_cara_socket, mut alice_socket, cara_chat) =
        assigned_chat(app.small_window_socket("/ws/customer", &cara).await, app.agent_socket(&alice).await).await;
    // Far more than Cara's window and the kernel's buffers take, less than
    // the default backlog limit: her socket is stuck, not yet closed.
    flood(&mut alice_socket, "agent:send_message", &cara_chat, 1500, "fill").await;
    assert_eq!(app.open_sockets().await, 2);

    let started = Instant::now();
    let status = app.terminate().await;
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}; log:\n{}", app.log());
    assert!(took < Duration::from_secs(2), "the server took {took:?} to stop");
    let close = alice_socket.closed_by_server().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
}
