//! Builds the application: database, actors, HTTP server; and stops it in order.

use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use bb8_redis::RedisConnectionManager;
use utoipa_actix_web::AppExt;

use crate::actors::messages::CloseAllSockets;
use crate::actors::persistence::{Drain, MessageWriter, WriterSettings};
use crate::actors::registry::SessionRegistry;
use crate::actors::{Limits, Services, Timing};
use crate::auth::jwt::Tokens;
use crate::bots::{Bot, Delayed, Fallback, FaqFile, LlmBot, RemoteBot, RuleBot};
use crate::config::BotChoice;
use crate::config::Settings;
use crate::db::{self, MigrationDirection};
use crate::routes;
use crate::telemetry::{Gauges, Metrics};

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// What every request handler can reach.
pub struct AppState {
    pub pool: db::Pool,
    pub redis: Option<RedisPool>,
    pub writer: Addr<MessageWriter>,
    pub registry: Addr<SessionRegistry>,
    pub tokens: Arc<Tokens>,
    pub bot: Arc<dyn Bot>,
    pub upload_limit: usize,
    pub upload_quota_per_customer: i64,
    pub upload_quota_per_session: i64,
    pub login_failures: Arc<crate::rate_limits::LoginFailures>,
    /// Checked for sign-ins to unknown usernames, so they take as long as known ones.
    pub decoy_hash: String,
    pub rate_limits: Arc<crate::rate_limits::RateLimits>,
    pub trust_proxy_headers: bool,
    pub metrics_token: Option<String>,
    /// Printed in the log at start-up; `POST /api/setup/admin` needs it.
    pub setup_code: String,
    pub allowed_origins: Vec<String>,
    pub static_dir: String,
    pub gauges: Arc<Gauges>,
    pub metrics: Arc<Metrics>,
    pub backlog_limit: u64,
    /// WebSocket connections the server accepts in all; past it an upgrade gets 503.
    pub max_sockets: u64,
    pub hashing: crate::auth::passwords::HashingPool,
    /// Told when admins change the webhooks, and of ratings.
    pub webhooks: crate::actors::webhooks::Webhooks,
    pub outbox: crate::mail::Outbox,
    pub mail: crate::mail::MailSettings,
}

impl AppState {
    /// Where a waiting session is in the queue.
    pub async fn queue_position(&self, session_id: uuid::Uuid) -> Option<usize> {
        use crate::actors::messages::{PositionOf, ToQueue};
        self.registry.send(ToQueue(PositionOf(session_id))).await.ok().flatten()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Migration(#[from] db::MigrationError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("REDIS_URL is not a valid Redis URL: {0}")]
    Redis(String),
    #[error("BOT: {0}")]
    Bot(String),
    #[error("BOT_FAQ_FILE: {0}")]
    Faq(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("{0}")]
    Keys(String),
    #[error("{0}")]
    Mail(String),
}

pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    writer: Addr<MessageWriter>,
    registry: Addr<SessionRegistry>,
    gauges: Arc<Gauges>,
}

impl Application {
    /// Migrates the database, starts the actors and binds the listener.
    /// Port 0 in `BIND` picks a free port; `address()` tells which.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let applied = db::migrate(&settings.database_url, MigrationDirection::Up).await?;
        if !applied.is_empty() {
            log::info!("applied {} migration(s): {}", applied.len(), applied.join(", "));
        }
        let pool = db::pool(
            &settings.database_url,
            settings.database_pool_size,
            settings.database_connect_timeout,
            settings.database_statement_timeout,
        );
        // Only someone who can read the server's log can create the first
        // admin: a page on another site (DNS rebinding included) cannot.
        let setup_code = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        announce_setup(&pool, &setup_code).await;
        let redis = match &settings.redis_url {
            Some(url) => {
                let manager = RedisConnectionManager::new(url.as_str())
                    .map_err(|error| StartupError::Redis(error.to_string()))?;
                Some(
                    bb8::Pool::builder()
                        .max_size(8)
                        .connection_timeout(settings.database_connect_timeout)
                        .build_unchecked(manager),
                )
            }
            None => None,
        };
        let gauges = Gauges::new();
        let max_sockets = socket_ceiling(settings.max_sockets);
        let metrics = Metrics::new().map_err(|error| StartupError::Metrics(error.to_string()))?;
        let writer_settings = WriterSettings {
            lanes: settings.writer_lanes,
            queue_limit: settings.writer_queue_limit,
            // A message refused for a locked row is refused within the statement timeout.
            deadline: settings.database_statement_timeout,
            ..WriterSettings::new(settings.writer_batch_size, settings.writer_flush_interval)
        };
        let writer = MessageWriter::new(pool.clone(), writer_settings).with_metrics(metrics.clone()).start();
        let faq = match &settings.bot_faq_file {
            Some(path) => FaqFile::load(path).map_err(StartupError::Faq)?,
            None => FaqFile::builtin().map_err(|error| StartupError::Faq(error.to_string()))?,
        };
        let bot = build_bot(&settings, faq, &metrics)?;
        let rate_limits = Arc::new(crate::rate_limits::RateLimits::new(&settings.allowances));
        let login_failures = Arc::new(crate::rate_limits::LoginFailures::new(
            settings.login_attempts_per_minute,
            settings.login_failures_per_username,
        ));
        let webhooks =
            crate::actors::webhooks::Webhooks::start(pool.clone(), settings.webhooks.clone(), metrics.clone());
        let mailer = crate::actors::mailer::Mailer::new(pool.clone(), &settings.mail).map_err(StartupError::Mail)?;
        if mailer.is_none() {
            log::info!("no SMTP_URL: emails are stored but this node sends none");
        }
        let outbox = crate::mail::Outbox::new(mailer.map(Actor::start));
        let services = Services {
            pool: pool.clone(),
            writer: writer.clone(),
            history: crate::actors::history_reader::HistoryReader::new(pool.clone()).start(),
            bot,
            timing: Timing {
                abandon_after: settings.abandon_after,
                abandon_sweep: settings.abandon_sweep,
                agent_grace: settings.agent_grace,
                agent_reply_timeout: settings.agent_reply_timeout,
                offline_after_no_agent: settings.offline_after_no_agent,
                session_idle: settings.session_idle,
                closed_session_idle: settings.session_idle.min(std::time::Duration::from_secs(30)),
                typing_timeout: std::time::Duration::from_secs(10),
            },
            limits: Limits {
                messages_per_minute: settings.messages_per_minute,
                open_chats_per_customer: settings.open_chats_per_customer,
                sockets_per_account: settings.sockets_per_account,
            },
            metrics: metrics.clone(),
            rate_limits: rate_limits.clone(),
            receipt_write_interval: settings.receipt_write_interval,
            node: settings.redis_url.as_ref().map(|_| settings.node_id.as_str().into()),
            webhooks: webhooks.clone(),
            outbox: outbox.clone(),
        };
        let cluster = match (&redis, &settings.redis_url) {
            (Some(redis), Some(url)) => {
                let client = bb8_redis::redis::Client::open(url.as_str())
                    .map_err(|error| StartupError::Redis(error.to_string()))?;
                let node: crate::cluster::NodeId = settings.node_id.as_str().into();
                let (link, start_link) = crate::cluster::Link::new(node.clone(), client);
                start_link(&link);
                log::info!("node {node} joins the nodes on Redis (leases of {:?})", settings.cluster_lease);
                Some(crate::cluster::Cluster {
                    link,
                    leases: crate::cluster::Leases::new(redis.clone(), node, settings.cluster_lease),
                    lease: settings.cluster_lease,
                })
            }
            _ => None,
        };
        if let (Some(redis), Some(_)) = (&redis, &cluster) {
            rate_limits.share();
            actix_web::rt::spawn(share_allowances(rate_limits.clone(), redis.clone()));
        }
        let bot = services.bot.clone();
        let threads = crate::actors::ActorThreads::new(settings.actor_threads);
        let registry = SessionRegistry::new(services, cluster, threads).start();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            redis,
            writer: writer.clone(),
            registry: registry.clone(),
            tokens: Arc::new(Tokens::from_keys(&settings.jwt).map_err(StartupError::Keys)?),
            bot,
            upload_limit: settings.upload_limit_bytes,
            upload_quota_per_customer: settings.upload_quota_per_customer,
            upload_quota_per_session: settings.upload_quota_per_session,
            login_failures: login_failures.clone(),
            decoy_hash: crate::auth::passwords::hash(&uuid::Uuid::new_v4().to_string())
                .map_err(|error| StartupError::Keys(format!("cannot hash: {error}")))?,
            rate_limits: rate_limits.clone(),
            trust_proxy_headers: settings.trust_proxy_headers,
            metrics_token: settings.metrics_token.clone(),
            setup_code,
            allowed_origins: settings.allowed_origins.clone(),
            static_dir: settings.static_dir.clone(),
            gauges: gauges.clone(),
            metrics,
            backlog_limit: settings.outbound_backlog_limit,
            max_sockets,
            hashing: crate::auth::passwords::HashingPool::new(PASSWORD_HASH_THREADS, PASSWORD_HASH_QUEUE)
                .map_err(|error| StartupError::Keys(format!("cannot start the password hashing threads: {error}")))?,
            webhooks,
            outbox,
            mail: settings.mail.clone(),
        });

        actix_web::rt::spawn(housekeeping(pool, rate_limits, login_failures, settings.unclaimed_upload_ttl));

        let listener = TcpListener::bind(settings.bind)
            .map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        let address =
            listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        let static_dir = settings.static_dir.clone();
        let document = web::Data::new(routes::docs::ApiDocument(
            serde_json::to_string(&routes::openapi()).map_err(|error| StartupError::Metrics(error.to_string()))?,
        ));
        let origins = settings.allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .app_data(state.clone())
                .app_data(document.clone())
                .configure(routes::configure)
                .split_for_parts();
            app.configure(routes::extractor_config)
                .service(actix_files::Files::new("/", &static_dir).index_file("index.html"))
                .wrap(cors(&origins))
                .wrap(security_headers())
                .wrap(middleware::Logger::new("%a %m %U %s %Dms").exclude("/health"))
        })
        // A chat's frames are small and each waits for an answer: without
        // this, Nagle's algorithm holds a frame back until the client's
        // delayed acknowledgement of the last one (about 40 ms).
        .tcp_nodelay(true)
        // Signals are ours to handle, so shutdown runs in our order.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // Above the socket ceiling (actix's default is 25,000 per worker), so
        // the ceiling's clear 503 comes first, and HTTP requests still fit.
        .max_connections(usize::try_from(max_sockets.saturating_add(DESCRIPTOR_RESERVE)).unwrap_or(usize::MAX));
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?
            .run();
        Ok(Application { address, server, writer, registry, gauges })
    }

    /// The address the server listens on, with the port it really got.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then closes every socket with a close
    /// frame, stops accepting, lets open requests finish, and waits until
    /// every received message is stored.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        actix_web::rt::spawn(stop_on_signal(handle, self.registry.clone(), self.gauges.clone()));
        self.server.await?;
        // What the sessions received reaches the writer before it drains.
        self.registry.send(crate::actors::messages::Quiesce).await.map_err(std::io::Error::other)?;
        self.writer.send(Drain).await.map_err(std::io::Error::other)?;
        log::info!("stopped cleanly");
        Ok(())
    }
}

/// How often a node adds what it admitted to the counts of every node.
const ALLOWANCE_EXCHANGE: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps the allowances per customer and per address counted over every node.
async fn share_allowances(rate_limits: Arc<crate::rate_limits::RateLimits>, redis: RedisPool) {
    let mut every = actix_web::rt::time::interval(ALLOWANCE_EXCHANGE);
    loop {
        every.tick().await;
        if let Err(error) = rate_limits.exchange(&redis).await {
            log::debug!("allowances counted on this node only for now: {error}");
        }
    }
}

/// Forgets allowances that are full again and removes files uploaded but
/// never sent once they are `unclaimed_ttl` old, every minute.
async fn housekeeping(
    pool: db::Pool,
    rate_limits: Arc<crate::rate_limits::RateLimits>,
    login_failures: Arc<crate::rate_limits::LoginFailures>,
    unclaimed_ttl: std::time::Duration,
) {
    let mut every = tokio::time::interval(crate::rate_limits::FORGET_INTERVAL.min(unclaimed_ttl));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        rate_limits.forget_idle();
        login_failures.forget_idle();
        let before = chrono::Utc::now() - chrono::Duration::from_std(unclaimed_ttl).unwrap_or(chrono::Duration::MAX);
        match db::run(&pool, async |conn| db::queries::attachments::remove_unclaimed(conn, before).await).await {
            Ok(0) => {}
            Ok(removed) => log::info!("removed {removed} file(s) uploaded but never sent"),
            Err(error) => log::warn!("unsent uploads not removed this time: {error}"),
        }
    }
}

/// Points whoever started a fresh install at the page that creates its first admin.
async fn announce_setup(pool: &db::Pool, setup_code: &str) {
    match db::run(pool, async |conn| db::queries::users::admin_exists(conn).await).await {
        Ok(false) => {
            log::warn!("no admin yet: open /admin and enter the setup code {setup_code} to create the first one")
        }
        Ok(true) => {}
        Err(error) => log::debug!("cannot tell whether an admin exists yet: {error}"),
    }
}

/// Password hashes computed at once, and sign-ins that may wait for one.
const PASSWORD_HASH_THREADS: usize = 2;
const PASSWORD_HASH_QUEUE: usize = 64;

/// Descriptors kept free of sockets, so `/health`, sign-ins, the database
/// pool and files still work with every socket taken.
const DESCRIPTOR_RESERVE: u64 = 512;

/// Raises the open-file limit to the most the system allows and says how
/// many WebSockets fit under it with the reserve kept free; `wanted` (from
/// `MAX_SOCKETS`) may only lower that.
fn socket_ceiling(wanted: Option<u64>) -> u64 {
    let descriptors = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            log::warn!("cannot raise the open-file limit: {error}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    };
    let reserve = DESCRIPTOR_RESERVE.max(descriptors / 10);
    let fits = descriptors.saturating_sub(reserve).max(1);
    let ceiling = wanted.map_or(fits, |wanted| wanted.min(fits));
    log::info!("open-file limit {descriptors}: at most {ceiling} WebSockets");
    ceiling
}

/// CORS for the widget on other sites: the same origins as the sockets.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderName::from_static("x-session-id"),
        ])
        .max_age(3600);
    if origins.iter().any(|origin| origin == "*") {
        cors.allow_any_origin()
    } else {
        origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}

/// What the pages may load: only this server's own files, no inline script
/// or style, and no framing, so text a customer or a host page slips into a
/// page can never run or restyle it. A response that sets its own policy
/// (an attachment's `sandbox`) keeps it: DefaultHeaders never overrides.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Headers that keep browsers from sniffing, framing or leaking.
fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))
}

/// How long sockets get to take their close frame at shutdown.
const SOCKET_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

async fn stop_on_signal(handle: ServerHandle, registry: Addr<SessionRegistry>, gauges: Arc<Gauges>) {
    let signal = wait_for_signal().await;
    log::info!("{signal} received: shutting down");
    // Sockets get a close frame first, so clients know to reconnect elsewhere.
    // No new connections from here on: a widget that reconnects at once
    // would otherwise get a socket that no close frame reaches.
    handle.pause().await;
    let _ = registry.send(CloseAllSockets).await;
    let deadline = tokio::time::Instant::now() + SOCKET_CLOSE_GRACE;
    while gauges.open_wires() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A client that has not read its close frame by now is not reading at
    // all; a graceful stop would wait the whole shutdown timeout for it.
    let stuck = gauges.open_wires();
    if stuck > 0 {
        log::warn!("{stuck} socket(s) did not take their close frame; closing every connection now");
    }
    handle.stop(stuck == 0).await;
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            log::error!("cannot listen for signals; stop the server with SIGKILL");
            std::future::pending().await
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

/// The bot `BOT` names, with the rule bot as its fallback.
fn build_bot(settings: &Settings, faq: FaqFile, metrics: &Arc<Metrics>) -> Result<Arc<dyn Bot>, StartupError> {
    let rules = Arc::new(RuleBot::new(faq));
    let fallback = Fallback { mode: settings.bot_fallback, rules: rules.clone(), metrics: metrics.clone() };
    let bot: Arc<dyn Bot> = match &settings.bot {
        BotChoice::Rules if settings.bot_reply_delay.is_zero() => rules,
        BotChoice::Rules => {
            Arc::new(Delayed { inner: RuleBot::new(rules.faq().clone()), delay: settings.bot_reply_delay })
        }
        BotChoice::Llm(llm) => {
            Arc::new(LlmBot::new(llm.clone(), fallback, metrics.clone()).map_err(StartupError::Bot)?)
        }
        BotChoice::Remote { agents, upstream } => {
            Arc::new(RemoteBot::new(agents.clone(), upstream, fallback, metrics.clone()).map_err(StartupError::Bot)?)
        }
    };
    log::info!("bot: {} ({})", bot.name(), bot.kind());
    Ok(bot)
}
