//! `spawn_app()`: a fresh database and the real `switchboard` binary on a
//! free port, stopped and dropped when the test ends.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_postgres::NoTls;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

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

/// The real server process and its database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
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
    let db = TestDb::create().await;
    start_server(db, &options).await
}

async fn start_server(db: TestDb, options: &AppOptions) -> TestApp {
    let log_path = log_dir().join(format!("{}.log", db.name));
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("open the server log");
    let mut command = binary();
    command
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("BIND", "127.0.0.1:0")
        .env("WORKERS", "1")
        .env("RUST_LOG", "info,switchboard=debug")
        .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
        .env("DATABASE_CONNECT_TIMEOUT_MS", "1000");
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
    TestApp {
        address: format!("http://{address}"),
        db,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
        log_path,
        child,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.address)).send().await.expect("request sent")
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
