//! Who is calling, for every HTTP route: `Authorization: Bearer <token>`
//! (or `?token=` where a browser cannot set headers) checked against the
//! signature, the claims and the account in the database.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use uuid::Uuid;

use crate::actors::messages::Caller;
use crate::db::models::NewUser;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorCode};
use crate::rate_limits::client_address;
use crate::startup::AppState;

/// The longest display name a token may bring in.
const NAME_MAX_CHARS: usize = 100;

/// Checks a token for one of `roles` and the account behind it. A customer
/// token a host website minted for one of its own users (a `sub` this
/// server has not seen) creates that customer on first use.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    roles: &[Role],
    address: Option<std::net::IpAddr>,
) -> Result<Caller, AppError> {
    let claims = state.tokens.verify(token, roles)?;
    let user = db::run(&state.pool, async |conn| queries::users::find(conn, claims.sub).await).await?;
    let user = match user {
        Some(user) => user,
        None if claims.role == Role::Customer && !claims.server_issued => {
            let name: String = claims
                .name
                .chars()
                .filter(|c| !crate::domain::is_unprintable(*c))
                .take(NAME_MAX_CHARS)
                .collect::<String>()
                .trim()
                .to_owned();
            let name = if name.is_empty() { "Customer".to_owned() } else { name };
            let username = format!("external-{}", claims.sub.simple());
            db::run(&state.pool, async |conn| {
                queries::users::insert_with_id(
                    conn,
                    claims.sub,
                    &NewUser {
                        username: &username,
                        display_name: &name,
                        email: None,
                        role: Role::Customer,
                        password_hash: None,
                        max_concurrent_chats: 1,
                    },
                )
                .await
            })
            .await?
        }
        None => return Err(AppError::new(ErrorCode::Unauthorized, "this account no longer exists")),
    };
    if user.disabled || user.role != claims.role {
        return Err(AppError::new(ErrorCode::Unauthorized, "this account cannot sign in"));
    }
    let (priority, team) = if user.role == Role::Customer {
        (claims.priority, claims.team.as_deref().map(Arc::from))
    } else {
        (None, None)
    };
    // A partner is shown with their organisation, "Ana (Pizza Roma)", wherever they appear.
    let (name, partner_org_id) = if user.role == Role::Partner {
        let user_id = user.id;
        let (org, org_name) = db::run(&state.pool, async |conn| queries::partners::org_of(conn, user_id).await)
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "this account cannot sign in"))?;
        (format!("{} ({org_name})", user.display_name), Some(org))
    } else {
        (user.display_name.clone(), None)
    };
    Ok(Caller {
        user_id: user.id,
        role: user.role,
        name: Arc::from(name.as_str()),
        priority,
        team,
        address,
        partner_org_id,
    })
}

/// The token of the Authorization header.
pub fn bearer_header(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(|token| token.trim().to_owned())
}

/// The bearer token of a request: the Authorization header, else `?token=`.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    bearer_header(req).or_else(|| {
        web::Query::<TokenParam>::from_query(req.query_string()).ok().and_then(|query| query.into_inner().token)
    })
}

#[derive(serde::Deserialize)]
struct TokenParam {
    token: Option<String>,
}

/// What every extractor below does with a request: its bearer token checked
/// by [`authenticate`] for one of `roles`, the caller wrapped by `wrap`. The
/// request is read before the future starts, since the future outlives it.
fn authenticate_request<T>(
    req: &HttpRequest,
    roles: &'static [Role],
    wrap: fn(Caller) -> T,
) -> impl Future<Output = Result<T, AppError>> + 'static
where
    T: 'static,
{
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let token = bearer_token(req);
    let address = state.as_ref().and_then(|state| client_address(req, state.trust_proxy_headers));
    async move {
        let state = state.ok_or_else(|| AppError::new(ErrorCode::Internal, "application state missing"))?;
        let token = token.ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "sign in first: no bearer token"))?;
        authenticate(&state, &token, roles, address).await.map(wrap)
    }
}

/// Any signed-in caller.
pub struct Authenticated(pub Caller);

impl Authenticated {
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, AppError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            Err(AppError::new(ErrorCode::Forbidden, "your role cannot do this"))
        }
    }

    pub fn user_id(&self) -> Uuid {
        self.0.user_id
    }
}

impl FromRequest for Authenticated {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        Box::pin(authenticate_request(req, &[Role::Customer, Role::Agent, Role::Admin], Authenticated))
    }
}

/// A signed-in admin; anyone else gets 403.
pub struct Admin(pub Caller);

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let caller = authenticated.await?;
            caller.require(&[Role::Admin])?;
            Ok(Admin(caller.0))
        })
    }
}

/// A signed-in member of a partner organisation; any other token gets 401.
pub struct PartnerMember(pub Caller);

impl PartnerMember {
    /// The member's organisation (every partner account has one).
    pub fn org(&self) -> Result<Uuid, AppError> {
        self.0
            .partner_org_id
            .ok_or_else(|| AppError::new(ErrorCode::Forbidden, "this account has no partner organisation"))
    }
}

impl FromRequest for PartnerMember {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        Box::pin(authenticate_request(req, &[Role::Partner], PartnerMember))
    }
}

/// Anyone who may take part in a chat: a customer, staff, or a partner
/// (for attachments, which every party of a chat shares, and token refreshes).
pub struct ChatMember(pub Caller);

impl FromRequest for ChatMember {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let roles = &[Role::Customer, Role::Agent, Role::Admin, Role::Partner];
        Box::pin(authenticate_request(req, roles, ChatMember))
    }
}
