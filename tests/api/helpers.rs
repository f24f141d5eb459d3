//! `spawn_app()`: a fresh database and the real `switchboard` binary on a
//! free port, stopped and dropped when the test ends.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_postgres::NoTls;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// What a Prometheus scraper of the test server presents.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// The server of the PostgreSQL cluster that `scripts/test.sh` started.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("TEST_DATABASE_URL is not set: run the tests through scripts/test.sh")
}

/// The Redis that `scripts/test.sh` started.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL is not set: run the tests through scripts/test.sh")
}

/// A URL on which nothing listens.
pub fn unreachable_url(scheme: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("{scheme}://127.0.0.1:{port}")
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /DBNAME");
    format!("{base}/{database}")
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&admin_database_url(), NoTls).await.expect("connect to the test cluster");
    tokio::spawn(connection);
    client
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("switchboard_test_{}", Uuid::new_v4().simple());
        admin_client().await.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        TestDb { url: with_database(&admin_database_url(), &name), name }
    }

    /// A database with every migration applied.
    pub async fn migrated() -> TestDb {
        let db = TestDb::create().await;
        switchboard::db::migrate(&db.url, switchboard::db::MigrationDirection::Up).await.expect("migrate");
        db
    }

    /// A plain connection for checking what is stored.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url, NoTls).await.expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    /// Makes the database refuse every connection and cuts the open ones, as
    /// when the database server goes away; `true` lets connections in again.
    pub async fn set_reachable(&self, reachable: bool) {
        let admin = admin_client().await;
        admin
            .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS {reachable}", self.name))
            .await
            .expect("toggle connections");
        if !reachable {
            admin
                .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&self.name])
                .await
                .expect("terminate connections");
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async code: a thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin_database_url(), NoTls).await {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// How a test wants the server configured beyond the defaults.
#[derive(Default, Clone)]
pub struct AppOptions {
    pub env: Vec<(String, String)>,
}

impl AppOptions {
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

/// The real server process and its database (shared with the other nodes
/// of a `TestCluster`; dropped with the last of them).
pub struct TestApp {
    pub address: String,
    pub db: Arc<TestDb>,
    pub http: reqwest::Client,
    pub log_path: PathBuf,
    child: Child,
}

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.env_remove("DATABASE_URL").env_remove("REDIS_URL").env_remove("BIND").env_remove("JWT_SECRET");
    command
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-logs");
    std::fs::create_dir_all(&dir).expect("create the log folder");
    dir
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let db = Arc::new(TestDb::create().await);
    start_server(db, &options).await
}

async fn start_server(db: Arc<TestDb>, options: &AppOptions) -> TestApp {
    let log_path = log_dir().join(format!("{}.log", db.name));
    start_server_logged(db, options, log_path).await
}

/// Starts `switchboard serve` on `db` with the test defaults, then
/// `options` (which override them), logging to `log_path`.
async fn start_server_logged(db: Arc<TestDb>, options: &AppOptions, log_path: PathBuf) -> TestApp {
    let (child, address) = spawn_server_process(&db.url, options, &log_path).await;
    TestApp {
        address,
        db,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
        log_path,
        child,
    }
}

/// The server process with the environment every test server gets, and its
/// `http://` address once it listens.
async fn spawn_server_process(database_url: &str, options: &AppOptions, log_path: &Path) -> (Child, String) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path).expect("open the server log");
    let mut command = binary();
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("BIND", "127.0.0.1:0")
        .env("WORKERS", "1")
        .env("RUST_LOG", "info,switchboard=debug,actix_web=info")
        .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
        .env("DATABASE_CONNECT_TIMEOUT_MS", "1000")
        .env("METRICS_TOKEN", METRICS_TOKEN)
        // Every test client comes from 127.0.0.1: the allowances per address
        // are raised out of the way, and the tests of them lower them again.
        .env("RATE_LIMIT_VISITORS_PER_MINUTE", "100000")
        .env("RATE_LIMIT_ADDRESS_FACTOR", "100000")
        // And the allowances per customer, for the tests that drive one
        // customer hard for another reason; tests/api/abuse.rs sets its own.
        .env("RATE_LIMIT_CHATS_PER_MINUTE", "100000")
        .env("RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE", "1000000")
        .env("RATE_LIMIT_UPLOADS_PER_MINUTE", "100000");
    for (key, value) in &options.env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("start the switchboard binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(address) = line.strip_prefix("switchboard listening on http://") {
                return address.trim().parse::<std::net::SocketAddr>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("the server did not start; see {}", log_path.display()));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{address}"))
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.address)).send().await.expect("request sent")
    }

    /// `/metrics` as a scraper with `METRICS_TOKEN` reads it.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.address))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "/metrics with METRICS_TOKEN");
        response.text().await.expect("metrics text")
    }

    pub async fn get_health(&self) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.get("/health").await;
        let status = response.status();
        (status, response.json().await.expect("health is JSON"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("the server is running");
        let sent = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .expect("wait for the server")
    }
}

// ---- people and their sockets ----

/// A signed-in person: their id, name and token.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: Uuid,
    pub name: String,
    pub token: String,
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.address)).json(body).send().await.expect("request sent")
    }

    /// A customer of a host website that signs its own tokens, with the
    /// queue priority the site gives them (visitors cannot choose one).
    pub async fn host_customer(&self, name: &str, priority: &str) -> Person {
        // Signed as a host website would: its own claims, none of the server's own marks.
        let user_id = Uuid::new_v4();
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "sub": user_id, "role": "customer", "name": name, "priority": priority,
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

    /// A visitor token, as the widget gets one.
    pub async fn visitor(&self, name: &str) -> Person {
        let response = self.post_json("/api/auth/visitor", &serde_json::json!({ "name": name })).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("JSON");
        Person {
            user_id: body["userId"].as_str().and_then(|id| id.parse().ok()).expect("userId"),
            name: name.to_owned(),
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    /// Creates an agent with `switchboard user add` and signs them in.
    pub async fn agent(&self, username: &str, max_chats: u32) -> Person {
        self.staff(username, "agent", max_chats).await
    }

    pub async fn staff(&self, username: &str, role: &str, max_chats: u32) -> Person {
        use tokio::io::AsyncWriteExt;
        let display_name = capitalised(username);
        let mut child = binary()
            .args(["user", "add", username, "--role", role, "--password-stdin", "--display-name", &display_name])
            .args(["--max-chats", &max_chats.to_string()])
            .env("DATABASE_URL", &self.db.url)
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run user add");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"correct-horse-battery\n").await.expect("write the password");
        drop(stdin);
        let output = child.wait_with_output().await.expect("user add finished");
        assert!(output.status.success(), "user add failed: {}", String::from_utf8_lossy(&output.stderr));
        let response = self
            .post_json("/auth/login", &serde_json::json!({ "username": username, "password": "correct-horse-battery" }))
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("JSON");
        Person {
            user_id: body["userId"].as_str().and_then(|id| id.parse().ok()).expect("userId"),
            name: display_name,
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    pub fn ws_url(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.address.replacen("http://", "ws://", 1))
    }

    pub async fn customer_socket(&self, person: &Person) -> WsClient {
        WsClient::connect(&self.ws_url("/ws/customer", &person.token)).await.expect("customer socket opens")
    }

    pub async fn agent_socket(&self, person: &Person) -> WsClient {
        WsClient::connect(&self.ws_url("/ws/agent", &person.token)).await.expect("agent socket opens")
    }

    /// A socket with a tiny receive window, for a client that will stop
    /// reading: what the server sends it piles up on the server's side.
    pub async fn small_window_socket(&self, path: &str, person: &Person) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer size");
        let address: std::net::SocketAddr = self.address.trim_start_matches("http://").parse().expect("address");
        let stream = socket.connect(address).await.expect("connect");
        let (socket, _) = tokio_tungstenite::client_async(
            self.ws_url(path, &person.token),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("upgrade");
        WsClient::from_socket(socket)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// The server process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Open sockets, as `/health` counts them.
    pub async fn open_sockets(&self) -> i64 {
        self.get_health().await.1["connections"].as_i64().expect("connections")
    }

    /// Stops the server with SIGTERM and starts a new one on the same database.
    pub async fn restart(self) -> TestApp {
        let TestApp { mut child, db, .. } = self;
        let pid = child.id().expect("running");
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("exits").expect("wait");
        assert!(status.success(), "the server did not stop cleanly: {status:?}");
        start_server(db, &AppOptions::default()).await
    }
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// How long a test waits for an event before it fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client as the widget or the dashboard would use it: it sends
/// frames, matches replies by `ref` and keeps pushes until a test asks.
pub struct WsClient {
    socket: Socket,
    buffered: std::collections::VecDeque<serde_json::Value>,
    next_ref: u64,
    pub closed: Option<Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>>,
    /// The queue board as an agent desk keeps it: the whole board once, then changes.
    board: Option<std::collections::HashMap<String, serde_json::Value>>,
    /// Bytes of every queue board frame received, in order.
    pub board_frames: Vec<(String, usize)>,
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(WsClient::from_socket(socket))
    }

    /// A client over a connection the test set up itself.
    pub fn from_socket(socket: Socket) -> WsClient {
        WsClient {
            socket,
            buffered: Default::default(),
            next_ref: 0,
            closed: None,
            board: None,
            board_frames: Vec::new(),
        }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        use futures_util::SinkExt;
        self.socket.send(tokio_tungstenite::tungstenite::Message::text(text.into())).await.expect("the frame is sent");
    }

    /// Sends an event with a fresh `ref` and returns the ref.
    pub async fn send(&mut self, event: &str, data: serde_json::Value) -> String {
        self.next_ref += 1;
        let reference = format!("r{}", self.next_ref);
        let frame = serde_json::json!({ "event": event, "ref": reference, "data": data });
        self.send_text(frame.to_string()).await;
        reference
    }

    async fn read(&mut self) -> Option<serde_json::Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: serde_json::Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.follow_board(&frame, text.len());
                    return Some(frame);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame);
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    self.closed.get_or_insert(None);
                    return None;
                }
            }
        }
    }

    fn follow_board(&mut self, frame: &serde_json::Value, size: usize) {
        let key = |item: &serde_json::Value| item["sessionId"].as_str().unwrap_or_default().to_owned();
        match frame["event"].as_str() {
            Some("queue:update") => {
                let sessions = frame["data"]["sessions"].as_array().cloned().unwrap_or_default();
                self.board = Some(sessions.into_iter().map(|item| (key(&item), item)).collect());
            }
            Some("queue:changed") => {
                if let Some(board) = &mut self.board {
                    for id in frame["data"]["removed"].as_array().into_iter().flatten() {
                        board.remove(id.as_str().unwrap_or_default());
                    }
                    for item in frame["data"]["upserted"].as_array().into_iter().flatten() {
                        board.insert(key(item), item.clone());
                    }
                }
            }
            _ => return,
        }
        self.board_frames.push((frame["event"].as_str().unwrap_or_default().to_owned(), size));
    }

    /// The queue board in serving order: priority, then how long each has waited.
    pub fn board(&self) -> Vec<serde_json::Value> {
        let rank = |item: &serde_json::Value| match item["priority"].as_str() {
            Some("high") => 0,
            Some("low") => 2,
            _ => 1,
        };
        let since = |item: &serde_json::Value| {
            item["waitingSince"]
                .as_str()
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.timestamp_nanos_opt().unwrap_or_default())
                .unwrap_or_default()
        };
        let mut items: Vec<serde_json::Value> = self.board.iter().flat_map(|board| board.values().cloned()).collect();
        items.sort_by_key(|item| (rank(item), since(item)));
        items
    }

    /// Reads frames until the queue board satisfies `ready`, and returns it.
    pub async fn board_when(
        &mut self,
        what: &str,
        ready: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let found = tokio::time::timeout(EVENT_TIMEOUT, async {
            loop {
                if self.board.is_some() && ready(&self.board()) {
                    return true;
                }
                match self.read().await {
                    Some(frame) => self.buffered.push_back(frame),
                    None => return false,
                }
            }
        })
        .await;
        match found {
            Ok(true) => self.board(),
            _ => {
                let board = self.board();
                panic!("the queue board never showed {what}; it shows {} sessions: {board:?}", board.len())
            }
        }
    }

    /// Waits for the first frame that `matches`, keeping the others for later.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        if let Some(index) = self.buffered.iter().position(&matches) {
            return self.buffered.remove(index).expect("present");
        }
        let found = tokio::time::timeout(EVENT_TIMEOUT, async {
            while let Some(frame) = self.read().await {
                if matches(&frame) {
                    return Some(frame);
                }
                self.buffered.push_back(frame);
            }
            None
        })
        .await;
        match found {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("the socket closed while waiting for {what}; had {:?}", self.buffered),
            Err(_) => panic!("no {what} within {EVENT_TIMEOUT:?}; had {:?}", self.buffered),
        }
    }

    /// The reply to the request sent with `reference`.
    pub async fn reply(&mut self, reference: &str) -> serde_json::Value {
        self.wait_for(&format!("the reply to {reference}"), |frame| frame["ref"] == reference).await
    }

    /// Sends a request and returns its reply.
    pub async fn request(&mut self, event: &str, data: serde_json::Value) -> serde_json::Value {
        let reference = self.send(event, data).await;
        self.reply(&reference).await
    }

    /// Sends a request and returns its reply's data, failing on an error reply.
    pub async fn ok(&mut self, event: &str, expected: &str, data: serde_json::Value) -> serde_json::Value {
        let reply = self.request(event, data).await;
        assert_eq!(reply["event"], expected, "{event} answered {reply}");
        reply["data"].clone()
    }

    /// Sends a request that must fail and returns the error code.
    pub async fn refused(&mut self, event: &str, data: serde_json::Value) -> String {
        let reply = self.request(event, data).await;
        assert_eq!(reply["event"], "error", "{event} should fail but answered {reply}");
        reply["data"]["code"].as_str().expect("an error code").to_owned()
    }

    /// The next push of `event` (frames without a ref).
    pub async fn push(&mut self, event: &str) -> serde_json::Value {
        let frame = self.wait_for(event, |frame| frame["event"] == event && frame.get("ref").is_none()).await;
        frame["data"].clone()
    }

    /// Pushes of `event` that arrive within `window`, for checking that
    /// nothing more (or nothing at all) came.
    pub async fn pushes_within(&mut self, event: &str, window: Duration) -> Vec<serde_json::Value> {
        let _ = tokio::time::timeout(window, async {
            while let Some(frame) = self.read().await {
                self.buffered.push_back(frame);
            }
        })
        .await;
        let mut found = Vec::new();
        self.buffered.retain(|frame| {
            let matches = frame["event"] == event && frame.get("ref").is_none();
            if matches {
                found.push(frame["data"].clone());
            }
            !matches
        });
        found
    }

    /// Sends `count` messages of `content` on `event`, a window of 32 at a
    /// time (a socket may have 64 requests waiting for an answer), and
    /// checks that each one is acknowledged.
    pub async fn send_many(&mut self, event: &str, session_id: &str, count: usize, tag: &str, content: &str) {
        const WINDOW: usize = 32;
        let mut waiting = std::collections::VecDeque::with_capacity(WINDOW);
        for n in 0..count {
            if waiting.len() == WINDOW {
                let reference: String = waiting.pop_front().expect("a request in the window");
                let reply = self.reply(&reference).await;
                assert_eq!(reply["event"], "message:sent", "{reply}");
            }
            let data =
                serde_json::json!({ "sessionId": session_id, "content": content, "clientMsgId": format!("{tag}-{n}") });
            waiting.push_back(self.send(event, data).await);
        }
        for reference in waiting {
            let reply = self.reply(&reference).await;
            assert_eq!(reply["event"], "message:sent", "{reply}");
        }
    }

    /// Starts a chat (`customer:start_chat`) and returns its session id.
    pub async fn start_chat(&mut self) -> String {
        let created = self.ok("customer:start_chat", "session:created", serde_json::json!({})).await;
        created["sessionId"].as_str().expect("a session id").to_owned()
    }

    /// Forgets every frame received and not yet taken.
    pub fn forget_received(&mut self) {
        self.buffered.clear();
    }

    /// Every frame received and not yet taken that mentions `session_id`,
    /// pushes and replies alike (after `pushes_within` has collected them).
    pub fn frames_about(&self, session_id: &str) -> Vec<serde_json::Value> {
        self.buffered.iter().filter(|frame| frame.to_string().contains(session_id)).cloned().collect()
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    /// Waits until the server closes the socket and returns its close frame.
    pub async fn closed_by_server(&mut self) -> Option<tokio_tungstenite::tungstenite::protocol::CloseFrame> {
        let _ = tokio::time::timeout(EVENT_TIMEOUT, async { while self.read().await.is_some() {} }).await;
        self.closed.clone().expect("the server closed the socket")
    }
}

// ---- REST calls as someone ----

/// A response's status and JSON body (`Null` when there is none).
pub type Answer = (reqwest::StatusCode, serde_json::Value);

impl TestApp {
    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, body)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Answer {
        TestApp::answer(self.http.get(self.url(path)).bearer_auth(token).send().await.expect("sent")).await
    }

    pub async fn post_as(&self, path: &str, token: &str, body: serde_json::Value) -> Answer {
        TestApp::answer(self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.expect("sent")).await
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: serde_json::Value) -> Answer {
        TestApp::answer(self.http.patch(self.url(path)).bearer_auth(token).json(&body).send().await.expect("sent"))
            .await
    }

    pub async fn put_as(&self, path: &str, token: &str, body: serde_json::Value) -> Answer {
        TestApp::answer(self.http.put(self.url(path)).bearer_auth(token).json(&body).send().await.expect("sent")).await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> Answer {
        TestApp::answer(self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("sent")).await
    }

    pub async fn upload_as(&self, token: &str, session_id: &str, file_name: &str, bytes: Vec<u8>) -> Answer {
        let form = reqwest::multipart::Form::new()
            .text("sessionId", session_id.to_owned())
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()));
        TestApp::answer(
            self.http.post(self.url("/api/uploads")).bearer_auth(token).multipart(form).send().await.expect("sent"),
        )
        .await
    }

    /// A file as an `<img src>` fetches it: the token in the query string.
    pub async fn fetch_attachment(&self, attachment: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(&format!("/api/attachments/{attachment}?token={token}"))).send().await.expect("sent")
    }

    /// A count from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db.client().await.query_one(sql, &[]).await.expect("count").get(0)
    }

    /// A count once the server has stopped changing it: messages the server
    /// posts by itself (a greeting, a closing note) are stored after the
    /// request that caused them was answered.
    pub async fn settled_count(&self, sql: &str) -> i64 {
        let mut last = self.count(sql).await;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.count(sql).await;
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

// ---- several nodes as one service ----

impl TestApp {
    /// Kills the server with SIGKILL, as a crash or the OOM killer would
    /// (no shutdown, no drain), and waits until the process is gone.
    pub async fn kill_9(&mut self) -> ExitStatus {
        self.child.start_kill().expect("send SIGKILL to the server");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits after SIGKILL")
            .expect("wait for the server")
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A Redis of one test's own, on a port of its own, that the test may stop
/// and start again on the same port (the shared `TEST_REDIS_URL` instance
/// is never stopped). Killed when dropped.
pub struct TestRedis {
    pub port: u16,
    pub url: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl TestRedis {
    /// A new Redis on a free port, ready for commands.
    pub async fn start_new() -> TestRedis {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("local address").port()
        };
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the Redis folder");
        let mut redis = TestRedis { port, url: format!("redis://127.0.0.1:{port}"), dir, child: None };
        redis.start().await;
        redis
    }

    /// Starts Redis (again) on its port, empty, and waits until it answers PING.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "Redis is already running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .arg("--logfile")
                .arg(self.dir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start redis-server (is it installed?)");
            while tokio::time::Instant::now() < deadline {
                if self.answers_ping().await {
                    self.child = Some(child);
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // it could not start (say the port is not free yet): try again
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "Redis did not start on port {}; see {}",
                self.port,
                self.dir.join("redis.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills Redis (SIGKILL: every connection drops at once) and waits until
    /// it is gone; the port then refuses connections until `start`.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("Redis is running");
        child.start_kill().expect("kill redis-server");
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("redis-server exits");
    }

    async fn answers_ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            stream.write_all(b"PING\r\n").await.ok()?;
            let mut answer = [0u8; 7];
            stream.read_exact(&mut answer).await.ok()?;
            Some(&answer == b"+PONG\r\n")
        };
        tokio::time::timeout(Duration::from_secs(1), attempt).await.ok().flatten().unwrap_or(false)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lease a cluster test's nodes hold sessions and the leadership with:
/// short, so that a killed node's share is taken over within seconds.
pub const CLUSTER_LEASE_MS: u64 = 2000;

/// Several server processes sharing one database and one Redis: one service.
/// `nodes[i]` is `node-a`, `node-b`, … in the order they were started; a
/// killed node stays in the list (dead), and a replacement gets the next id.
pub struct TestCluster {
    pub nodes: Vec<TestApp>,
    pub node_ids: Vec<String>,
    pub redis: TestRedis,
    pub db: Arc<TestDb>,
    options: AppOptions,
}

impl TestCluster {
    /// `count` nodes on a fresh database and a Redis of the test's own,
    /// returned once they have formed one cluster (see `wait_until_formed`).
    pub async fn start(count: usize) -> TestCluster {
        TestCluster::start_with(count, AppOptions::default()).await
    }

    /// As `start`, with `options` for every node (now and started later).
    pub async fn start_with(count: usize, options: AppOptions) -> TestCluster {
        let db = Arc::new(TestDb::create().await);
        let redis = TestRedis::start_new().await;
        let mut cluster = TestCluster { nodes: Vec::new(), node_ids: Vec::new(), redis, db, options };
        // One after another: the first applies the migrations.
        for _ in 0..count {
            cluster.start_node().await;
        }
        cluster.wait_until_formed().await;
        cluster
    }

    /// Starts one more node (the next id: `node-a`, `node-b`, …) and returns
    /// its index. It does not wait for the node to join the cluster.
    pub async fn start_node(&mut self) -> usize {
        let index = self.nodes.len();
        let node_id = format!("node-{}", (b'a' + u8::try_from(index).expect("a few nodes")) as char);
        let mut options = AppOptions::default()
            .env("REDIS_URL", self.redis.url.clone())
            .env("NODE_ID", node_id.clone())
            .env("CLUSTER_LEASE_MS", CLUSTER_LEASE_MS.to_string());
        options.env.extend(self.options.env.iter().cloned());
        let log_path = log_dir().join(format!("{}-{node_id}.log", self.db.name));
        self.nodes.push(start_server_logged(self.db.clone(), &options, log_path).await);
        self.node_ids.push(node_id);
        index
    }

    pub fn node(&self, index: usize) -> &TestApp {
        &self.nodes[index]
    }

    /// Kills node `index` with SIGKILL and waits until its process is gone.
    pub async fn kill_9(&mut self, index: usize) -> ExitStatus {
        self.nodes[index].kill_9().await
    }

    /// The indexes of the nodes still running.
    pub fn live_nodes(&mut self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&index| self.nodes[index].is_running()).collect()
    }

    /// Node `index`'s `/health`: status and body.
    pub async fn health(&self, index: usize) -> Answer {
        self.nodes[index].get_health().await
    }

    /// Waits until every running node's `/health` names its own `NODE_ID`
    /// in `cluster.nodeId` with `cluster.link` "up", and exactly one of them
    /// says it is the leader; returns the leader's index.
    pub async fn wait_until_formed(&mut self) -> usize {
        let live = self.live_nodes();
        let mut last = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            last.clear();
            for &index in &live {
                let response = self.nodes[index].http.get(format!("{}/health", self.nodes[index].address)).send().await;
                let body = match response {
                    Ok(response) => response.json::<serde_json::Value>().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
                last.push((index, body));
            }
            let formed = last.iter().all(|(index, body)| {
                body["cluster"]["nodeId"] == self.node_ids[*index].as_str() && body["cluster"]["link"] == "up"
            });
            let leaders: Vec<usize> =
                last.iter().filter(|(_, body)| body["cluster"]["leader"] == true).map(|(index, _)| *index).collect();
            if formed && leaders.len() == 1 {
                return leaders[0];
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let seen: Vec<String> = last
            .iter()
            .map(|(index, body)| format!("{}: cluster = {}", self.node_ids[*index], body["cluster"]))
            .collect();
        panic!(
            "the nodes never formed one cluster (each /health naming its NODE_ID with link \"up\", exactly one leader); \
             last seen: {seen:?}"
        )
    }
}

/// What `WsClient::next_frame` found.
#[derive(Debug)]
pub enum Next {
    Frame(serde_json::Value),
    /// The connection is gone (closed by the server, reset, or the node died).
    Closed,
    /// Nothing within the time asked.
    Quiet,
}

impl WsClient {
    /// Sends an event with a fresh `ref`; `None` when the connection is gone
    /// (for clients that reconnect rather than fail).
    pub async fn try_send(&mut self, event: &str, data: serde_json::Value) -> Option<String> {
        use futures_util::SinkExt;
        if self.closed.is_some() {
            return None;
        }
        self.next_ref += 1;
        let reference = format!("r{}", self.next_ref);
        let frame = serde_json::json!({ "event": event, "ref": reference, "data": data });
        match self.socket.send(tokio_tungstenite::tungstenite::Message::text(frame.to_string())).await {
            Ok(()) => Some(reference),
            Err(_) => {
                self.closed.get_or_insert(None);
                None
            }
        }
    }

    /// The next frame (kept ones first), waiting at most `within`; never panics.
    pub async fn next_frame(&mut self, within: Duration) -> Next {
        if let Some(frame) = self.buffered.pop_front() {
            return Next::Frame(frame);
        }
        if self.closed.is_some() {
            return Next::Closed;
        }
        match tokio::time::timeout(within, self.read()).await {
            Ok(Some(frame)) => Next::Frame(frame),
            Ok(None) => Next::Closed,
            Err(_) => Next::Quiet,
        }
    }

    /// The close code the server sent, if it closed the socket with one.
    pub fn close_code(&self) -> Option<u16> {
        self.closed.as_ref().and_then(|frame| frame.as_ref()).map(|frame| u16::from(frame.code))
    }
}
