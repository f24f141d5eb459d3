//! Tokens: `POST /api/auth/visitor` for customers, `POST /auth/login` for agents and admins.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::extractors::{authenticate, bearer_token, ChatMember};
use crate::db::models::NewUser;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::rate_limits::{client_address, Action};
use crate::routes::OptionalJson;
use crate::startup::AppState;

/// How long a visitor's token lasts: long enough to come back to a chat.
const VISITOR_TOKEN_TTL: Duration = Duration::days(30);
/// How long an agent's or admin's token lasts: one working day.
const STAFF_TOKEN_TTL: Duration = Duration::hours(12);

const NAME_MAX_CHARS: usize = 100;
const EMAIL_MAX_CHARS: usize = 254;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitorRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VisitorToken {
    token: String,
    user_id: Uuid,
    name: String,
    expires_at: DateTime<Utc>,
}

fn clean(field: &str, value: Option<String>, max_chars: usize) -> Result<Option<String>, AppError> {
    match value.map(|text| text.trim().to_owned()) {
        Some(text) if text.chars().count() > max_chars || text.chars().any(crate::domain::is_unprintable) => {
            Err(AppError::validation(format!("{field} must be at most {max_chars} printable characters")))
        }
        Some(text) if text.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A token for an anonymous visitor, who becomes a customer. A returning
/// visitor sends their previous token as `Authorization: Bearer …` and keeps
/// their id, and with it their chats.
#[utoipa::path(
    tag = "auth",
    request_body(content = Option<VisitorRequest>, content_type = "application/json"),
    responses((status = 200, body = VisitorToken), (status = 400, body = ErrorBody), (status = 429, description = "More than `RATE_LIMIT_VISITORS_PER_MINUTE` new visitors from one address (`rate_limited`, with `retryAfter`)", body = ErrorBody))
)]
#[post("/api/auth/visitor")]
pub async fn visitor(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<VisitorRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.0.unwrap_or(VisitorRequest { name: None, email: None });
    let name = clean("name", request.name, NAME_MAX_CHARS)?;
    let email = clean("email", request.email, EMAIL_MAX_CHARS)?;
    if email.as_deref().is_some_and(|email| !email.contains('@')) {
        return Err(AppError::validation("email is not an email address"));
    }
    let address = client_address(&req, state.trust_proxy_headers);
    if let Some(previous) = bearer_token(&req) {
        if let Ok(returning) = authenticate(&state, &previous, &[Role::Customer], address).await {
            let (token, expires_at) =
                state.tokens.issue(returning.user_id, Role::Customer, &returning.name, VISITOR_TOKEN_TTL)?;
            return Ok(HttpResponse::Ok().json(VisitorToken {
                token,
                user_id: returning.user_id,
                name: returning.name.to_string(),
                expires_at,
            }));
        }
    }
    // Only new accounts count: a returning visitor is not a new cost.
    state.rate_limits.admit_from(Action::VisitorToken, None, address)?;
    let name = name.unwrap_or_else(|| "Visitor".to_owned());
    let username = format!("visitor-{}", Uuid::new_v4().simple());
    let user = db::run(&state.pool, async |conn| {
        queries::users::insert(
            conn,
            &NewUser {
                username: &username,
                display_name: &name,
                email: email.as_deref(),
                role: Role::Customer,
                password_hash: None,
                max_concurrent_chats: 1,
            },
        )
        .await
    })
    .await?;
    let (token, expires_at) = state.tokens.issue(user.id, Role::Customer, &user.display_name, VISITOR_TOKEN_TTL)?;
    Ok(HttpResponse::Ok().json(VisitorToken { token, user_id: user.id, name: user.display_name, expires_at }))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginToken {
    token: String,
    role: Role,
    user_id: Uuid,
    name: String,
    expires_at: DateTime<Utc>,
}

/// A token for an agent or an admin. Wrong passwords are limited per
/// username and address, and per username with a higher ceiling.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = LoginToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, description = "`RATE_LIMIT_LOGINS_PER_MINUTE` wrong passwords for this username from this address, or `RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME_PER_MINUTE` from everywhere (`rate_limited`, with `retryAfter`)", body = ErrorBody))
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let LoginRequest { username, password } = body.into_inner();
    let address = client_address(&req, state.trust_proxy_headers);
    state.login_failures.check(&username, address)?;
    let refused = || AppError::new(ErrorCode::InvalidCredentials, "wrong username or password");
    // PostgreSQL stores no NUL in text: such a name cannot exist.
    if username.len() > 64 || password.len() > 1024 || username.contains('\0') {
        return Err(refused());
    }
    let user = db::run(&state.pool, async |conn| queries::users::find_by_username(conn, &username).await).await?;
    let user = user.filter(|user| user.role != Role::Customer && !user.disabled);
    // An unknown name is checked against a decoy hash, so it takes as long
    // as a known one and the answer's timing does not tell which names exist.
    let hash = user.as_ref().and_then(|user| user.password_hash.clone());
    let known = hash.is_some();
    // Argon2 is slow and large on purpose: it runs on the hashing pool.
    let matches = state.hashing.verify(password, hash.unwrap_or_else(|| state.decoy_hash.clone())).await?;
    let user = match user {
        Some(user) if known && matches => user,
        _ => {
            state.login_failures.failed(&username, address);
            return Err(refused());
        }
    };
    Ok(HttpResponse::Ok().json(staff_token(&state, user)?))
}

/// A signed-in staff member's token: from a sign-in, or for the first admin as it is created.
pub fn staff_token(state: &AppState, user: crate::db::models::User) -> Result<LoginToken, AppError> {
    let (token, expires_at) = state.tokens.issue(user.id, user.role, &user.display_name, STAFF_TOKEN_TTL)?;
    Ok(LoginToken { token, role: user.role, user_id: user.id, name: user.display_name, expires_at })
}

/// A fresh token for the same account, before the current one expires.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, body = LoginToken), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: ChatMember,
) -> Result<HttpResponse, AppError> {
    let caller = caller.0;
    let presented = bearer_token(&req).unwrap_or_default();
    let claims = state.tokens.verify(&presented, &[caller.role])?;
    let ours = if caller.role == Role::Customer { VISITOR_TOKEN_TTL } else { STAFF_TOKEN_TTL };
    // A host website chose how long its customer's token lasts: a refresh
    // renews that, and never stretches a short token into one of ours.
    let ttl = if claims.server_issued { ours } else { Duration::seconds(claims.exp - claims.iat).min(ours) };
    let (token, expires_at) = state.tokens.reissue(&claims, &caller.name, ttl.max(Duration::minutes(1)))?;
    Ok(HttpResponse::Ok().json(LoginToken {
        token,
        role: caller.role,
        user_id: caller.user_id,
        name: caller.name.to_string(),
        expires_at,
    }))
}
