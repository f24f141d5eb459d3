//! Builds the application: database, actors, HTTP server; and stops it in order.

use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use bb8_redis::RedisConnectionManager;

use crate::actors::persistence::{Drain, MessageWriter};
use crate::config::Settings;
use crate::db::{self, MigrationDirection};
use crate::routes;
use crate::telemetry::Gauges;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// What every request handler can reach.
pub struct AppState {
    pub pool: db::Pool,
    pub redis: Option<RedisPool>,
    pub writer: Addr<MessageWriter>,
    pub gauges: Arc<Gauges>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Migration(#[from] db::MigrationError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("REDIS_URL is not a valid Redis URL: {0}")]
    Redis(String),
}

pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    writer: Addr<MessageWriter>,
}

impl Application {
    /// Migrates the database, starts the actors and binds the listener.
    /// Port 0 in `BIND` picks a free port; `address()` tells which.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let applied = db::migrate(&settings.database_url, MigrationDirection::Up).await?;
        if !applied.is_empty() {
            log::info!("applied {} migration(s): {}", applied.len(), applied.join(", "));
        }
        let pool = db::pool(&settings.database_url, settings.database_pool_size, settings.database_connect_timeout);
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
        let writer =
            MessageWriter::new(pool.clone(), settings.writer_batch_size, settings.writer_flush_interval).start();
        let state = web::Data::new(AppState { pool, redis, writer: writer.clone(), gauges: Gauges::new() });

        let listener = TcpListener::bind(settings.bind)
            .map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        let address =
            listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        let static_dir = settings.static_dir.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::Logger::new("%r %s %Dms").exclude("/health"))
                .app_data(state.clone())
                .configure(routes::configure)
                .service(actix_files::Files::new("/", &static_dir).index_file("index.html"))
        })
        // Signals are ours to handle, so shutdown runs in our order.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?
            .run();
        Ok(Application { address, server, writer })
    }

    /// The address the server listens on, with the port it really got.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting, lets open
    /// requests finish, and waits until every received message is stored.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        actix_web::rt::spawn(stop_on_signal(handle));
        self.server.await?;
        self.writer.send(Drain).await.map_err(std::io::Error::other)?;
        log::info!("stopped cleanly");
        Ok(())
    }
}

async fn stop_on_signal(handle: ServerHandle) {
    let signal = wait_for_signal().await;
    log::info!("{signal} received: shutting down");
    handle.stop(true).await;
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
