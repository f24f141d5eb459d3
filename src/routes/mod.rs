//! HTTP routes, one file per area.

pub mod auth;
pub mod health;
pub mod ws;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::health)
        .service(health::info)
        .service(auth::visitor)
        .service(auth::login)
        .service(ws::customer)
        .service(ws::agent);
}
