//! HTTP routes, one file per area.

pub mod health;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::health).service(health::info);
}
