//! Query functions. Each takes a connection, so it runs alone or inside a transaction.

pub mod analytics;
pub mod attachments;
pub mod business_hours;
pub mod catalog;
pub mod messages;
pub mod outbox;
pub mod partners;
pub mod queue;
pub mod receipts;
pub mod sessions;
pub mod stats;
pub mod teams;
pub mod users;
pub mod webhooks;
