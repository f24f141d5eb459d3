//! Query functions. Each takes a connection, so it runs alone or inside a transaction.

pub mod messages;
pub mod sessions;
pub mod users;
