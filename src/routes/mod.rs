//! HTTP routes, one file per area. Every route is registered through
//! utoipa-actix-web, which refuses a route without an OpenAPI description,
//! so the document at `/api/openapi.json` cannot drift from the code.

pub mod admin;
pub mod auth;
pub mod business_hours;
pub mod catalog;
pub mod customers;
pub mod docs;
pub mod health;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod partners;
pub mod reports;
pub mod sessions;
pub mod setup;
pub mod teams;
pub mod uploads;
pub mod webhooks;
pub mod ws;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use crate::error::{AppError, ErrorCode};

/// The largest JSON body accepted.
pub const JSON_LIMIT_BYTES: usize = 256 * 1024;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::health)
        .service(health::info)
        .service(metrics::metrics)
        .service(docs::openapi_json)
        .service(docs::docs)
        .service(auth::visitor)
        .service(auth::login)
        .service(auth::refresh)
        .service(ws::customer)
        .service(ws::agent)
        .service(ws::partner)
        .service(sessions::create)
        .service(sessions::list)
        .service(sessions::get_one)
        .service(sessions::update)
        .service(sessions::remove)
        .service(sessions::messages)
        .service(sessions::history)
        .service(sessions::post_message)
        .service(sessions::post_note)
        .service(sessions::clear_messages)
        .service(sessions::resume)
        .service(sessions::resolve)
        .service(sessions::transfer)
        .service(sessions::mark_read)
        .service(sessions::rate)
        .service(sessions::chat)
        .service(sessions::user_sessions)
        .service(mail::send_transcript)
        .service(mail::list_emails)
        .service(customers::profile)
        .service(teams::list)
        .service(teams::create)
        .service(teams::remove)
        .service(teams::set_members)
        .service(teams::agents)
        .service(business_hours::get_global)
        .service(business_hours::set_global)
        .service(business_hours::remove_global)
        .service(business_hours::get_team)
        .service(business_hours::set_team)
        .service(business_hours::remove_team)
        .service(admin::board)
        .service(reports::report)
        .service(reports::report_csv)
        .service(catalog::list_canned)
        .service(catalog::create_canned)
        .service(catalog::update_canned)
        .service(catalog::delete_canned)
        .service(catalog::list_labels)
        .service(catalog::create_label)
        .service(catalog::delete_label)
        .service(catalog::set_session_labels)
        .service(partners::list_orgs)
        .service(partners::list_orgs_with_accounts)
        .service(partners::create_org)
        .service(partners::create_account)
        .service(partners::invite)
        .service(partners::remove)
        .service(partners::me)
        .service(partners::my_chats)
        .service(partners::my_chat)
        .service(partners::my_chat_messages)
        .service(uploads::upload)
        .service(uploads::download)
        .service(admin::stats)
        .service(admin::queue)
        .service(admin::agents)
        .service(admin::create_agent)
        .service(admin::update_agent)
        .service(admin::cleanup)
        .service(webhooks::list)
        .service(webhooks::create)
        .service(webhooks::update)
        .service(webhooks::remove)
        .service(webhooks::rotate_secret)
        .service(webhooks::deliveries)
        .service(setup::status)
        .service(setup::create_first_admin)
        .service(pages::agent)
        .service(pages::admin)
        .service(pages::partner);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Realtime customer-support chat: sessions, messages, the handoff queue and admin figures. \
                       The WebSocket protocol of /ws/customer, /ws/agent and /ws/partner is described in docs/PROTOCOL.md."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The OpenAPI document, collected from the routes `configure` registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) =
        actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(configure).split_for_parts();
    document
}

fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let app_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            AppError::new(ErrorCode::PayloadTooLarge, format!("JSON bodies are limited to {JSON_LIMIT_BYTES} bytes"))
        }
        JsonPayloadError::ContentType => AppError::new(ErrorCode::BadRequest, "send the body as application/json"),
        other => AppError::validation(format!("the JSON body is invalid: {other}")),
    };
    app_error.into()
}

fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    AppError::validation(format!("the query string is invalid: {error}")).into()
}

fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    AppError::validation(format!("the path is invalid: {error}")).into()
}

/// Extractor settings: body limits, and a client's mistake answered as a
/// JSON error, never as a bare text page.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(JSON_LIMIT_BYTES).error_handler(json_error))
        .app_data(web::PayloadConfig::default().limit(JSON_LIMIT_BYTES))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error));
}

/// A JSON body that may be left out, but must be valid when it is given
/// (`Option<web::Json<T>>` would quietly treat a malformed body as none).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|error| {
                let too_large =
                    error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE;
                let app_error = if too_large {
                    AppError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("JSON bodies are limited to {JSON_LIMIT_BYTES} bytes"),
                    )
                } else {
                    AppError::validation(format!("the body could not be read: {error}"))
                };
                actix_web::Error::from(app_error)
            })?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            serde_json::from_slice(&bytes)
                .map(|value| OptionalJson(Some(value)))
                .map_err(|error| AppError::validation(format!("the JSON body is invalid: {error}")).into())
        })
    }
}
