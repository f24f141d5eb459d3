//! Switchboard: a realtime customer-support chat server.
//! docs/ARCHITECTURE.md explains how the parts fit together.

pub mod actors;
pub mod auth;
pub mod bots;
pub mod bus;
pub mod business_hours;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod file_types;
pub mod mail;
pub mod protocol;
pub mod rate_limits;
pub mod routes;
pub mod startup;
pub mod telemetry;
