//! One integration binary: the real server over real HTTP, against a real
//! PostgreSQL (and Redis where a feature uses it). Run it through
//! `scripts/test.sh`, which provides both.

mod helpers;
#[path = "../standin/mod.rs"]
mod standin;

mod abuse;
mod admin;
mod auth;
mod bad_input;
mod bots;
mod catalog;
mod chat_flow;
mod cluster;
mod configuration;
mod customers;
mod documents;
mod health;
mod lifecycle;
mod live_state;
mod load_balancer;
mod locked_rows;
mod mail;
mod message_writer;
mod migrations;
mod notes;
mod offline;
mod outages;
mod partners;
mod queue;
mod queue_abuse;
mod reply_timeout;
mod reports;
mod rest;
mod resume;
mod search;
mod setup;
mod shutdown;
mod slow_clients;
mod smtp_sink;
mod socket_caps;
mod teams;
mod webhook_receiver;
mod webhooks;
