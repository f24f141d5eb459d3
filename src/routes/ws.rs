//! WebSocket upgrades: `/ws/customer`, `/ws/agent` and `/ws/partner`, authenticated by the
//! `token` query parameter before the upgrade.

use actix::{Actor, AsyncContext};
use actix_web::web;
use actix_web::{get, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use crate::actors::agent_socket::Agent;
use crate::actors::customer_socket::Customer;
use crate::actors::messages::{AdmitSocket, Caller, SocketSlot};
use crate::actors::partner_socket::Partner;
use crate::actors::socket::{Socket, SocketRole, MAX_FRAME_BYTES};
use crate::auth::extractors::{authenticate, bearer_token};
use crate::bus::wire;
use crate::domain::Role;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::rate_limits::client_address;
use crate::startup::AppState;

/// Browsers send an Origin; it must be this server's own or one of ALLOWED_ORIGINS.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN).and_then(|value| value.to_str().ok()) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let own = req.connection_info();
    let same_site = origin.split_once("://").is_some_and(|(_, host)| host == own.host());
    if same_site || state.allowed_origins.iter().any(|allowed| allowed == "*" || allowed == origin) {
        Ok(())
    } else {
        Err(AppError::new(ErrorCode::Forbidden, "this origin may not open a socket"))
    }
}

async fn caller(req: &HttpRequest, state: &AppState, roles: &[Role]) -> Result<Caller, AppError> {
    check_origin(req, state)?;
    let token = bearer_token(req)
        .ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "the token query parameter is missing"))?;
    authenticate(state, &token, roles, client_address(req, state.trust_proxy_headers)).await
}

async fn upgrade<R: SocketRole>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, actix_web::Error> {
    let mut response = ws::handshake(req)?;
    // Refused before the process runs out of descriptors, so the reserve
    // keeps /health and sign-ins answering.
    if state.gauges.open_wires() >= i64::try_from(state.max_sockets).unwrap_or(i64::MAX) {
        return Err(AppError::new(
            ErrorCode::ServerFull,
            "the server has all the connections it can take; try again later",
        )
        .into());
    }
    let shared = state
        .registry
        .send(AdmitSocket { user_id: caller.user_id })
        .await
        .map_err(|_| AppError::new(ErrorCode::Internal, "the registry is not running"))??;
    let slot = SocketSlot { user_id: caller.user_id, shared, registry: state.registry.clone().recipient() };
    let (queue, body) = wire::outbound(state.gauges.clone(), slot);
    let inbound = wire::Inbound::new(payload, MAX_FRAME_BYTES);
    let (registry, gauges, backlog_limit) = (state.registry.clone(), state.gauges.clone(), state.backlog_limit);
    let operations = (caller.role == Role::Admin).then(|| state.clone());
    Socket::<R>::create(move |ctx| {
        ctx.add_stream(inbound);
        let socket = Socket::new(caller, registry, gauges, queue, backlog_limit);
        match operations {
            Some(operations) => socket.answering_admins(operations),
            None => socket,
        }
    });
    Ok(response.streaming(body))
}

/// The customer widget's WebSocket (docs/PROTOCOL.md); the token is a customer's.
#[utoipa::path(
    tag = "websocket",
    params(("token" = String, Query, description = "A customer token")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, description = "The account has `SOCKETS_PER_ACCOUNT` sockets open (`too_many_sockets`)", body = ErrorBody), (status = 503, description = "The server holds all the sockets it can (`server_full`)", body = ErrorBody))
)]
#[get("/ws/customer")]
pub async fn customer(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = caller(&req, &state, &[Role::Customer]).await?;
    upgrade::<Customer>(&req, payload, &state, caller).await
}

/// The agent dashboard's WebSocket (docs/PROTOCOL.md); the token is an agent's or an admin's.
#[utoipa::path(
    tag = "websocket",
    params(("token" = String, Query, description = "An agent token")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, description = "The account has `SOCKETS_PER_ACCOUNT` sockets open (`too_many_sockets`)", body = ErrorBody), (status = 503, description = "The server holds all the sockets it can (`server_full`)", body = ErrorBody))
)]
#[get("/ws/agent")]
pub async fn agent(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = caller(&req, &state, &[Role::Agent, Role::Admin]).await?;
    upgrade::<Agent>(&req, payload, &state, caller).await
}

/// A partner organisation member's WebSocket (docs/PROTOCOL.md); the token is a partner's.
#[utoipa::path(
    tag = "websocket",
    params(("token" = String, Query, description = "A partner token (from `POST /auth/login`)")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = ErrorBody), (status = 401, description = "No token, or not a partner's (`unauthorized`)", body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, description = "The account has `SOCKETS_PER_ACCOUNT` sockets open (`too_many_sockets`)", body = ErrorBody), (status = 503, description = "The server holds all the sockets it can (`server_full`)", body = ErrorBody))
)]
#[get("/ws/partner")]
pub async fn partner(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = caller(&req, &state, &[Role::Partner]).await?;
    upgrade::<Partner>(&req, payload, &state, caller).await
}
