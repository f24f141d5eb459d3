//! Partner organisations (a restaurant, a merchant, a courier company): the
//! admins create them and their accounts; the chat's agent invites one into a
//! chat and removes it (through the session's actor, like any change to a
//! live chat); its members list and read the chats they are invited into.

use std::collections::HashMap;

use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::extractors::{Admin, Authenticated, PartnerMember};
use crate::auth::staff;
use crate::db::models::NewUser;
use crate::db::queries::messages::{Audience, Window};
use crate::db::queries::partners::{MemberAccount, PartnerChat, PartnerOrg, MAX_PARTNER_ORGS};
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::protocol::client::SessionRequest;
use crate::protocol::server::{MessageView, ServerEvent, SessionView};
use crate::routes::sessions::ask;
use crate::startup::AppState;

/// Chats one partner list shows, at most.
const CHATS_LISTED: i64 = 200;
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 500;

/// The partner organisations, for the desk's invitation picker (agents and admins).
#[utoipa::path(
    tag = "partners",
    responses((status = 200, body = Vec<PartnerOrg>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/partners")]
pub async fn list_orgs(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(db::run(&state.pool, async |conn| queries::partners::all(conn).await).await?))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerOrgWithAccounts {
    #[serde(flatten)]
    org: PartnerOrg,
    accounts: Vec<MemberAccount>,
}

/// The partner organisations, each with its accounts, by name (admins).
#[utoipa::path(
    tag = "partners",
    responses((status = 200, body = Vec<PartnerOrgWithAccounts>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/partners")]
pub async fn list_orgs_with_accounts(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    let (orgs, members) = db::run(&state.pool, async |conn| {
        let orgs = queries::partners::all(conn).await?;
        let members = queries::partners::all_members(conn).await?;
        Ok((orgs, members))
    })
    .await?;
    let mut by_org: HashMap<Uuid, Vec<MemberAccount>> = HashMap::new();
    for member in members {
        by_org.entry(member.partner_org_id).or_default().push(member);
    }
    let listed: Vec<PartnerOrgWithAccounts> = orgs
        .into_iter()
        .map(|org| {
            let accounts = by_org.remove(&org.id).unwrap_or_default();
            PartnerOrgWithAccounts { org, accounts }
        })
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerOrgBody {
    /// 1–100 printable characters, shown to everyone in the chats it joins ("Pizza Roma joined the chat").
    name: String,
}

/// Add a partner organisation (admins).
#[utoipa::path(
    tag = "partners",
    request_body = PartnerOrgBody,
    responses((status = 201, body = PartnerOrg), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "The name is taken (`conflict`) or 1000 organisations exist (`limit_reached`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/partners")]
pub async fn create_org(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<PartnerOrgBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let name = staff::display_name("name", &body.name)?.to_owned();
    let org = db::run(&state.pool, async |conn| {
        if queries::partners::count(conn).await? >= MAX_PARTNER_ORGS {
            return Ok(None);
        }
        queries::partners::insert(conn, &name).await.map(Some)
    })
    .await
    .map_err(|error| error.taken("name"))?
    .ok_or_else(|| {
        AppError::new(ErrorCode::LimitReached, format!("at most {MAX_PARTNER_ORGS} partner organisations"))
    })?;
    Ok(HttpResponse::Created().json(org))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerAccountBody {
    username: String,
    password: String,
    display_name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAccount {
    user_id: Uuid,
    username: String,
    display_name: String,
    partner_org_id: Uuid,
    role: Role,
}

/// Add an account to a partner organisation (admins). Its member signs in at
/// `POST /auth/login` like staff and gets a token whose role is `partner`.
#[utoipa::path(
    tag = "partners",
    params(("id" = Uuid, Path, description = "Partner organisation id")),
    request_body = PartnerAccountBody,
    responses((status = 201, body = PartnerAccount), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The username is taken (`conflict`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/partners/{id}/accounts")]
pub async fn create_account(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    body: web::Json<PartnerAccountBody>,
) -> Result<HttpResponse, AppError> {
    let org = id.into_inner();
    let body = body.into_inner();
    let username = staff::username(&body.username)?;
    staff::check_password(&body.password)?;
    let display_name = staff::display_name("displayName", &body.display_name)?.to_owned();
    if db::run(&state.pool, async |conn| queries::partners::find(conn, org).await).await?.is_none() {
        return Err(AppError::not_found("partner organisation"));
    }
    let hash = state.hashing.hash(body.password).await?;
    let new_user = NewUser {
        username: &username,
        display_name: &display_name,
        email: None,
        role: Role::Partner,
        password_hash: Some(&hash),
        max_concurrent_chats: 1,
    };
    let user = db::run(&state.pool, async |conn| queries::partners::insert_member(conn, org, &new_user).await)
        .await
        .map_err(|error| error.taken("username"))?;
    Ok(HttpResponse::Created().json(PartnerAccount {
        user_id: user.id,
        username: user.username,
        display_name: user.display_name,
        partner_org_id: org,
        role: Role::Partner,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteBody {
    partner_org_id: Uuid,
    /// Share the messages before the invitation too (default: from the invitation on).
    #[serde(default)]
    with_history: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerInChat {
    session_id: Uuid,
    partner_org_id: Uuid,
    name: String,
    with_history: bool,
}

/// Invite a partner organisation into a chat (the chat's agent, or an admin).
/// Everyone in the chat sees "<name> joined the chat"; its members' sockets get `partner:invited`.
#[utoipa::path(
    tag = "partners",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = InviteBody,
    responses((status = 201, body = PartnerInChat), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "Not the chat's agent or an admin (`forbidden`)", body = ErrorBody), (status = 404, description = "No such chat (`session_not_found`) or organisation (`not_found`)", body = ErrorBody), (status = 409, description = "The chat is closed (`session_closed`), the organisation is already in it (`conflict`), or it has 5 partners (`limit_reached`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/partners")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<InviteBody>,
) -> Result<HttpResponse, AppError> {
    let staff = caller.require(&[Role::Agent, Role::Admin])?.clone();
    let InviteBody { partner_org_id, with_history } = body.into_inner();
    let request = SessionRequest::InvitePartner { partner_org_id, with_history };
    match ask(&state, staff, id.into_inner(), request).await? {
        ServerEvent::PartnerJoined { session_id, partner_org_id, name, with_history } => {
            Ok(HttpResponse::Created().json(PartnerInChat { session_id, partner_org_id, name, with_history }))
        }
        other => Err(super::sessions::unexpected(other)),
    }
}

/// Remove a partner organisation from a chat (the chat's agent, or an admin).
/// Its members' sockets leave the chat (`partner:removed`) and lose access; the others see "<name> left the chat".
#[utoipa::path(
    tag = "partners",
    params(("id" = Uuid, Path, description = "Session id"), ("orgId" = Uuid, Path, description = "Partner organisation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "No such chat, or the organisation is not in it", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/sessions/{id}/partners/{orgId}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let staff = caller.require(&[Role::Agent, Role::Admin])?.clone();
    let (session_id, partner_org_id) = path.into_inner();
    match ask(&state, staff, session_id, SessionRequest::RemovePartner { partner_org_id }).await? {
        ServerEvent::PartnerLeft { .. } => Ok(HttpResponse::NoContent().finish()),
        other => Err(super::sessions::unexpected(other)),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerMe {
    user_id: Uuid,
    /// As the others see the member: "Ana (Pizza Roma)".
    name: String,
    partner_org_id: Uuid,
}

/// Who the signed-in partner is, as the chats show them.
#[utoipa::path(
    tag = "partners",
    responses((status = 200, body = PartnerMe), (status = 401, description = "Not a partner's token", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/partner/me")]
pub async fn me(caller: PartnerMember) -> Result<HttpResponse, AppError> {
    let partner_org_id = caller.org()?;
    Ok(HttpResponse::Ok().json(PartnerMe {
        user_id: caller.0.user_id,
        name: caller.0.name.to_string(),
        partner_org_id,
    }))
}

/// The chats the caller's organisation is invited into (and not removed from), newest invitation first.
#[utoipa::path(
    tag = "partners",
    responses((status = 200, body = Vec<PartnerChat>), (status = 401, description = "Not a partner's token", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/partner/sessions")]
pub async fn my_chats(state: web::Data<AppState>, caller: PartnerMember) -> Result<HttpResponse, AppError> {
    let org = caller.org()?;
    let chats = db::run(&state.pool, async |conn| queries::partners::chats_of(conn, org, CHATS_LISTED).await).await?;
    Ok(HttpResponse::Ok().json(chats))
}

/// The bound of what the caller's organisation sees of a chat, or `forbidden`.
async fn partner_access(state: &AppState, caller: &PartnerMember, session_id: Uuid) -> Result<i64, AppError> {
    let org = caller.org()?;
    db::run(&state.pool, async |conn| queries::partners::access(conn, session_id, org).await)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::Forbidden, "your organisation is not in this chat"))
}

/// One chat the caller's organisation is in.
#[utoipa::path(
    tag = "partners",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 403, description = "The organisation is not (or no longer) in this chat (`forbidden`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/partner/sessions/{id}")]
pub async fn my_chat(
    state: web::Data<AppState>,
    caller: PartnerMember,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    partner_access(&state, &caller, id).await?;
    let found = db::run(&state.pool, async |conn| queries::sessions::find_with_names(conn, id).await).await?;
    let (session, customer_name, agent_name) =
        found.ok_or_else(|| AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"))?;
    Ok(HttpResponse::Ok().json(SessionView::for_role(&session, &customer_name, agent_name.as_deref(), Role::Partner)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerMessagesQuery {
    /// Only messages with a greater seq.
    after: Option<i64>,
    /// At most this many (1–500, default 100), oldest first.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerMessages {
    messages: Vec<MessageView>,
    has_more: bool,
}

/// The messages of a chat the caller's organisation is in, oldest first:
/// from the invitation on, or all of them if the agent shared the history;
/// never the staff's private notes.
#[utoipa::path(
    tag = "partners",
    params(("id" = Uuid, Path, description = "Session id"), PartnerMessagesQuery),
    responses((status = 200, body = PartnerMessages), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "The organisation is not (or no longer) in this chat (`forbidden`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/partner/sessions/{id}/messages")]
pub async fn my_chat_messages(
    state: web::Data<AppState>,
    caller: PartnerMember,
    id: web::Path<Uuid>,
    query: web::Query<PartnerMessagesQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(format!("limit must be from 1 to {MAX_PAGE}")));
    }
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(AppError::validation("after must not be negative"));
    }
    let visible_after = partner_access(&state, &caller, id).await?;
    let window = Window::AfterLimited { seq: after, limit: limit + 1 };
    let audience = Audience::Partner { after: visible_after };
    let mut rows =
        db::run(&state.pool, async |conn| queries::messages::shown(conn, id, window, audience).await).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let messages = rows.iter().map(|row| MessageView::shown(row, state.bot.name()).for_role(Role::Partner)).collect();
    Ok(HttpResponse::Ok().json(PartnerMessages { messages, has_more }))
}
