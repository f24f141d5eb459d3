//! Tokens: `POST /api/auth/visitor` for customers, `POST /auth/login` for agents and admins.

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::passwords;
use crate::db::models::NewUser;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorCode};
use crate::startup::AppState;

/// How long a visitor's token lasts: long enough to come back to a chat.
const VISITOR_TOKEN_TTL: Duration = Duration::days(30);
/// How long an agent's or admin's token lasts: one working day.
const STAFF_TOKEN_TTL: Duration = Duration::hours(12);

const NAME_MAX_CHARS: usize = 100;
const EMAIL_MAX_CHARS: usize = 254;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VisitorToken {
    token: String,
    user_id: Uuid,
    name: String,
    expires_at: DateTime<Utc>,
}

fn clean(field: &str, value: Option<String>, max_chars: usize) -> Result<Option<String>, AppError> {
    match value.map(|text| text.trim().to_owned()) {
        Some(text) if text.chars().count() > max_chars || text.chars().any(char::is_control) => {
            Err(AppError::validation(format!("{field} must be at most {max_chars} printable characters")))
        }
        Some(text) if text.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A token for an anonymous visitor, who becomes a customer.
#[post("/api/auth/visitor")]
pub async fn visitor(
    state: web::Data<AppState>,
    body: Option<web::Json<VisitorRequest>>,
) -> Result<HttpResponse, AppError> {
    let request = body.map(web::Json::into_inner).unwrap_or(VisitorRequest { name: None, email: None });
    let name = clean("name", request.name, NAME_MAX_CHARS)?.unwrap_or_else(|| "Visitor".to_owned());
    let email = clean("email", request.email, EMAIL_MAX_CHARS)?;
    if email.as_deref().is_some_and(|email| !email.contains('@')) {
        return Err(AppError::validation("email is not an email address"));
    }
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

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginToken {
    token: String,
    role: Role,
    user_id: Uuid,
    name: String,
    expires_at: DateTime<Utc>,
}

/// A token for an agent or an admin.
#[post("/auth/login")]
pub async fn login(state: web::Data<AppState>, body: web::Json<LoginRequest>) -> Result<HttpResponse, AppError> {
    let LoginRequest { username, password } = body.into_inner();
    let refused = || AppError::new(ErrorCode::InvalidCredentials, "wrong username or password");
    if username.len() > 64 || password.len() > 1024 {
        return Err(refused());
    }
    let user = db::run(&state.pool, async |conn| queries::users::find_by_username(conn, &username).await).await?;
    let Some(user) = user.filter(|user| user.role != Role::Customer && !user.disabled) else {
        return Err(refused());
    };
    let Some(hash) = user.password_hash.clone() else { return Err(refused()) };
    // Argon2 is slow on purpose: keep it off the async workers.
    let matches = web::block(move || passwords::verify(&password, &hash)).await.map_err(AppError::internal)?;
    if !matches {
        return Err(refused());
    }
    let (token, expires_at) = state.tokens.issue(user.id, user.role, &user.display_name, STAFF_TOKEN_TTL)?;
    Ok(HttpResponse::Ok().json(LoginToken {
        token,
        role: user.role,
        user_id: user.id,
        name: user.display_name,
        expires_at,
    }))
}
