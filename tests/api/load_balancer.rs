//! The load balancer docker-compose.yml puts in front of the nodes: the
//! repository's own `docker/haproxy.cfg`, run by a real HAProxy in front of
//! two real nodes. Only what Docker provides is changed: the listening
//! address, the nodes' addresses (instead of Docker's DNS names) and the
//! connection limit (this machine's descriptor limit is lower than the one
//! docker-compose.yml gives HAProxy).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::helpers::{TestCluster, WsClient};

struct Haproxy {
    address: String,
    log_path: PathBuf,
    child: Child,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn host_and_port(address: &str) -> &str {
    address.trim_start_matches("http://")
}

/// Starts HAProxy with docker/haproxy.cfg in front of the cluster's nodes.
async fn haproxy_in_front_of(cluster: &TestCluster) -> Haproxy {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker/haproxy.cfg"))
        .expect("docker/haproxy.cfg");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let mut rewritten = String::new();
    let mut in_resolvers = false;
    for line in config.lines() {
        // Docker's resolver section goes; the nodes are given by address.
        if line.starts_with("resolvers ") {
            in_resolvers = true;
            continue;
        }
        if in_resolvers {
            in_resolvers = !line.trim().is_empty();
            continue;
        }
        let line = line
            .replace("bind :8080", &format!("bind 127.0.0.1:{port}"))
            .replace("node-a:8080", host_and_port(&cluster.node(0).address))
            .replace("node-b:8080", host_and_port(&cluster.node(1).address))
            .replace(" resolvers docker", "")
            .replace("maxconn 20000", "maxconn 1000");
        rewritten.push_str(&line);
        rewritten.push('\n');
    }
    assert!(rewritten.contains(&format!("bind 127.0.0.1:{port}")), "haproxy.cfg binds :8080\n{rewritten}");
    assert!(rewritten.contains(host_and_port(&cluster.node(1).address)), "haproxy.cfg names node-a and node-b");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("haproxy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create the HAProxy folder");
    let config_path = dir.join("haproxy.cfg");
    std::fs::write(&config_path, rewritten).expect("write the HAProxy config");
    let log_path = dir.join("haproxy.log");
    let log = std::fs::File::create(&log_path).expect("create the HAProxy log");
    let binary = std::env::var("HAPROXY_BIN").unwrap_or_else(|_| "haproxy".to_owned());
    let child = Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy (scripts/test.sh installs it)");
    let haproxy = Haproxy { address: format!("http://127.0.0.1:{port}"), log_path, child };

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(response) = http.get(format!("{}/health", haproxy.address)).send().await {
            if response.status() == reqwest::StatusCode::OK {
                return haproxy;
            }
        }
        assert!(Instant::now() < deadline, "HAProxy did not answer; see {}", haproxy.log_path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer of the widget, reaching the service only through the balancer.
struct Customer {
    token: String,
    socket: WsClient,
    session_id: String,
    last_seq: i64,
}

async fn customer_through(balancer: &str, n: usize) -> Customer {
    let http = reqwest::Client::new();
    let visitor: Value = http
        .post(format!("{balancer}/api/auth/visitor"))
        .json(&json!({ "name": format!("Through the balancer {n}") }))
        .send()
        .await
        .expect("visitor request")
        .json()
        .await
        .expect("a visitor token");
    let token = visitor["token"].as_str().expect("token").to_owned();
    let url = format!("{}/ws/customer?token={token}", balancer.replacen("http://", "ws://", 1));
    let mut socket = WsClient::connect(&url).await.expect("a socket through the balancer");
    let session_id = socket.start_chat().await;
    let sent = socket
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": session_id, "content": format!("hello {n}"), "clientMsgId": format!("first-{n}") }),
        )
        .await;
    let last_seq = sent["seq"].as_i64().expect("seq");
    Customer { token, socket, session_id, last_seq }
}

async fn connections(cluster: &TestCluster, index: usize) -> i64 {
    let (_, health) = cluster.health(index).await;
    health["connections"].as_i64().expect("connections in /health")
}

#[tokio::test]
async fn the_compose_load_balancer_spreads_sockets_over_both_nodes_and_moves_clients_off_a_killed_one() {
    let mut cluster = TestCluster::start(2).await;
    let haproxy = haproxy_in_front_of(&cluster).await;

    // Sockets through the balancer land on both nodes, and each chat works.
    let mut customers = Vec::new();
    for n in 0..8 {
        customers.push(customer_through(&haproxy.address, n).await);
    }
    let (on_a, on_b) = (connections(&cluster, 0).await, connections(&cluster, 1).await);
    assert_eq!(on_a + on_b, 8, "every socket is on a node: {on_a} + {on_b}");
    assert!(on_a >= 2 && on_b >= 2, "leastconn spreads the sockets: {on_a} on node-a, {on_b} on node-b");

    // node-a dies. Every customer reconnects through the balancer, which
    // sends them to node-b; each resumes its chat where it left off (once
    // node-b has taken over node-a's chats) and carries on.
    cluster.kill_9(0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for (n, customer) in customers.iter_mut().enumerate() {
        let url = format!("{}/ws/customer?token={}", haproxy.address.replacen("http://", "ws://", 1), customer.token);
        loop {
            assert!(Instant::now() < deadline, "customer {n} could not resume through the balancer");
            let Ok(mut socket) = WsClient::connect(&url).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let resumed = socket
                .request("customer:resume", json!({ "sessionId": customer.session_id, "afterSeq": customer.last_seq }))
                .await;
            if resumed["event"] == "session:resumed" {
                customer.socket = socket;
                break;
            }
            // Until node-a's lease on the chat runs out, node-b cannot run it.
            assert_eq!(resumed["data"]["code"], "cluster_unavailable", "{resumed}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let sent = customer
            .socket
            .ok(
                "customer:send_message",
                "message:sent",
                json!({ "sessionId": customer.session_id, "content": "still there?", "clientMsgId": format!("after-{n}") }),
            )
            .await;
        assert!(sent["seq"].as_i64().expect("seq") > customer.last_seq, "the chat carries on: {sent}");
    }
    assert_eq!(connections(&cluster, 1).await, 8, "every customer is now on node-b");

    // The balancer's access log names the paths, never the tokens in them
    // (a socket's line is written when it closes).
    let tokens: Vec<String> = customers.iter().map(|customer| customer.token.clone()).collect();
    for customer in customers {
        customer.socket.close().await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&haproxy.log_path).expect("the HAProxy log");
        if log.matches("GET /ws/customer").count() >= 16 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(log.matches("GET /ws/customer").count() >= 16, "the log has every socket, before and after:\n{log}");
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token is in HAProxy's log:\n{log}");
    }
    assert!(!log.contains("token="), "a query string is in HAProxy's log:\n{log}");
}
