//! `/api/setup`: the first admin of a fresh install, created from the admin
//! page instead of the command line. Open to anyone only while no admin
//! exists, and only to this server's own pages.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::staff;
use crate::db::models::NewUser;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::routes::auth::LoginToken;
use crate::startup::AppState;

/// The first admin is also an agent like any other; the capacity can be changed later.
const FIRST_ADMIN_MAX_CHATS: i32 = 5;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupStatus {
    /// True until the first admin exists; the admin page then offers to create one.
    needs_admin: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdminRequest {
    username: String,
    /// At least 8 characters.
    password: String,
    /// The name others see.
    name: String,
    /// The code the server printed in its log at start-up.
    #[serde(rename = "setupCode")]
    setup_code: String,
}

/// Whether the install still waits for its first admin.
#[utoipa::path(
    tag = "setup",
    responses((status = 200, body = SetupStatus), (status = 503, description = "The database is unavailable (`database_unavailable`)", body = ErrorBody))
)]
#[get("/api/setup")]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin_exists = db::run(&state.pool, async |conn| queries::users::admin_exists(conn).await).await?;
    Ok(HttpResponse::Ok().json(SetupStatus { needs_admin: !admin_exists }))
}

/// Creates the first admin and signs them in. Only while no admin exists,
/// only from this server's own pages (the `Origin` header must be this
/// server's origin, as a browser sends it), and only with the setup code
/// the server printed in its log.
#[utoipa::path(
    tag = "setup",
    request_body = FirstAdminRequest,
    responses(
        (status = 201, description = "The admin was created; the token signs them in, as `POST /auth/login` would", body = LoginToken),
        (status = 400, description = "The username, password or name is not acceptable (`validation_failed`)", body = ErrorBody),
        (status = 403, description = "The request did not come from this server's own page (its `Origin` header is missing or foreign), or the setup code is not the one the server printed in its log (`forbidden`)", body = ErrorBody),
        (status = 409, description = "An admin exists already (`already_set_up`), or the username belongs to an agent (`conflict`)", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or too many passwords are being hashed at once", body = ErrorBody)
    )
)]
#[post("/api/setup/admin")]
pub async fn create_first_admin(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<FirstAdminRequest>,
) -> Result<HttpResponse, AppError> {
    check_own_origin(&req)?;
    let FirstAdminRequest { username, password, name, setup_code } = body.into_inner();
    if !crate::auth::same_secret(&setup_code, &state.setup_code) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the setup code is wrong: the server prints it in its log at start-up while no admin exists",
        ));
    }
    let username = staff::username(&username)?;
    staff::check_password(&password)?;
    let name = staff::display_name("name", &name)?.to_owned();
    // Answered before the slow hash, so a finished install spends nothing on these.
    if db::run(&state.pool, async |conn| queries::users::admin_exists(conn).await).await? {
        return Err(already_set_up());
    }
    let hash = state.hashing.hash(password).await?;
    let new_admin = NewUser {
        username: &username,
        display_name: &name,
        email: None,
        role: Role::Admin,
        password_hash: Some(&hash),
        max_concurrent_chats: FIRST_ADMIN_MAX_CHATS,
    };
    let created = db::run(&state.pool, async |conn| {
        conn.transaction(async |conn| queries::users::insert_first_admin(conn, &new_admin).await).await
    })
    .await
    .map_err(|error| error.taken("username"))?;
    let Some(admin) = created else { return Err(already_set_up()) };
    log::info!("first admin {} created from the admin page", admin.username);
    Ok(HttpResponse::Created().json(crate::routes::auth::staff_token(&state, admin)?))
}

fn already_set_up() -> AppError {
    AppError::new(ErrorCode::AlreadySetUp, "an admin exists already; sign in, or ask an admin for an account")
}

/// A page on another site could otherwise make a visitor's browser race the
/// owner to the first admin. Browsers always send `Origin` on a POST, and
/// no page can forge it; behind a proxy, the proxy must pass the scheme on
/// (`X-Forwarded-Proto` or `Forwarded`) for the origin to match.
fn check_own_origin(req: &HttpRequest) -> Result<(), AppError> {
    let connection = req.connection_info();
    let own = format!("{}://{}", connection.scheme(), connection.host());
    let origin = req.headers().get(actix_web::http::header::ORIGIN).and_then(|value| value.to_str().ok());
    match origin {
        Some(origin) if origin.trim_end_matches('/').eq_ignore_ascii_case(&own) => Ok(()),
        _ => Err(AppError::new(
            ErrorCode::Forbidden,
            format!("create the first admin from this server's own admin page ({own}/admin)"),
        )),
    }
}
