//! Everything that touches PostgreSQL: the generated schema, row types,
//! query functions (each takes a connection, so it also runs inside a
//! transaction) and the embedded migrations.

pub mod models;
pub mod queries;
pub mod schema;

use std::time::Duration;

use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub type Pool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
pub type PgConn = AsyncPgConnection;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pool that connects lazily: the server starts, and reports itself degraded,
/// even while the database is briefly away.
///
/// Every connection gives up on a statement after `statement_timeout`, and
/// on a row lock after half that: one locked row or one slow query answers
/// with an error in bounded time instead of holding a connection and its
/// caller indefinitely.
pub fn pool(database_url: &str, max_size: u32, connect_timeout: Duration, statement_timeout: Duration) -> Pool {
    use diesel_async::pooled_connection::ManagerConfig;
    use diesel_async::SimpleAsyncConnection;
    use futures_util::FutureExt;
    let statement_ms = statement_timeout.as_millis().max(1);
    let lock_ms = (statement_ms / 2).max(1);
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = <AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url).await?;
            conn.batch_execute(&format!("SET statement_timeout = {statement_ms}; SET lock_timeout = {lock_ms}"))
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    bb8::Pool::builder().max_size(max_size).connection_timeout(connect_timeout).build_unchecked(manager)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Which way to move the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationDirection {
    /// Apply every pending migration.
    Up,
    /// Revert every applied migration.
    DownAll,
}

/// Runs migrations and returns the versions it applied or reverted.
/// Diesel's migration harness is synchronous, so it runs on a blocking thread.
pub async fn migrate(database_url: &str, direction: MigrationDirection) -> Result<Vec<String>, MigrationError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        // Nodes starting together migrate one after another: the others
        // wait here and then find nothing left to apply.
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT pg_advisory_lock(7318290154)"), &mut conn)
            .map_err(|error| MigrationError::Migration(error.to_string()))?;
        let versions = match direction {
            MigrationDirection::Up => conn.run_pending_migrations(MIGRATIONS),
            MigrationDirection::DownAll => conn.revert_all_migrations(MIGRATIONS),
        }
        .map(|versions| versions.into_iter().map(|version| version.to_string()).collect::<Vec<_>>())
        .map_err(|error| MigrationError::Migration(error.to_string()));
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT pg_advisory_unlock(7318290154)"), &mut conn)
            .map_err(|error| MigrationError::Migration(error.to_string()))?;
        versions
    })
    .await?
}

/// Runs `work` on a pooled connection; a pool that cannot connect answers
/// `database_unavailable`.
pub async fn run<T>(
    pool: &Pool,
    work: impl AsyncFnOnce(&mut PgConn) -> diesel::QueryResult<T>,
) -> Result<T, crate::error::AppError> {
    let mut conn = pool.get().await?;
    Ok(work(&mut conn).await?)
}
