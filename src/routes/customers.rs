//! What staff know of a customer: who they are and their past chats. An
//! agent may read it while they hold one of the customer's chats, so every
//! chat starts with its context instead of blind; admins always.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::messages::Caller;
use crate::auth::extractors::Authenticated;
use crate::db::{self, queries};
use crate::domain::{Role, SessionStatus};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

/// The most past chats a profile lists.
const PAST_CHATS: i64 = 20;

/// May `caller` read what is known of `customer_id`?
pub async fn may_read_customer(state: &AppState, caller: &Caller, customer_id: Uuid) -> Result<bool, AppError> {
    match caller.role {
        Role::Admin => Ok(true),
        Role::Customer => Ok(caller.user_id == customer_id),
        Role::Partner => Ok(false),
        Role::Agent => {
            let agent_id = caller.user_id;
            db::run(&state.pool, async |conn| queries::sessions::serves_customer(conn, agent_id, customer_id).await)
                .await
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfile {
    customer_id: Uuid,
    name: String,
    email: Option<String>,
    first_seen: DateTime<Utc>,
    last_seen: Option<DateTime<Utc>>,
    /// The newest chat's metadata as the widget or the host site sent it (page, referrer, …).
    #[schema(value_type = Object)]
    visitor: serde_json::Value,
    /// Newest first, at most 20, the open ones among them.
    sessions: Vec<PastChat>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PastChat {
    session_id: Uuid,
    status: SessionStatus,
    title: Option<String>,
    category: Option<String>,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    ended_reason: Option<String>,
    is_resolved: bool,
    agent_name: Option<String>,
    message_count: i32,
    /// The customer's rating, 1 to 5, and what they wrote with it.
    rating: Option<i16>,
    rating_comment: Option<String>,
    /// The note the agent left when closing or resolving.
    notes: Option<String>,
}

/// A customer's profile and past chats: an admin, or an agent who holds one of the customer's chats.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's user id")),
    responses((status = 200, body = CustomerProfile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "A customer, or an agent holding no open chat of this customer", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/customers/{id}")]
pub async fn profile(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    let customer_id = id.into_inner();
    if !may_read_customer(&state, &caller.0, customer_id).await? {
        return Err(AppError::new(ErrorCode::Forbidden, "you hold no chat of this customer"));
    }
    let (user, past) = db::run(&state.pool, async |conn| {
        let user = queries::users::find(conn, customer_id).await?;
        let past = queries::sessions::past_of_customer(conn, customer_id, PAST_CHATS).await?;
        Ok((user, past))
    })
    .await?;
    let user = user
        .filter(|user| user.role == Role::Customer)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such customer"))?;
    let visitor = past.first().map(|(session, ..)| session.metadata.clone()).unwrap_or_else(|| serde_json::json!({}));
    let sessions = past
        .into_iter()
        .map(|(session, agent_name, rating, rating_comment)| PastChat {
            session_id: session.id,
            status: session.status,
            title: session.title,
            category: session.category,
            created_at: session.created_at,
            closed_at: session.closed_at,
            ended_reason: session.ended_reason,
            is_resolved: session.is_resolved,
            agent_name,
            message_count: session.message_count,
            rating,
            rating_comment,
            notes: session.resolution_notes,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CustomerProfile {
        customer_id,
        name: user.display_name,
        email: user.email,
        first_seen: user.created_at,
        last_seen: user.last_seen_at,
        visitor,
        sessions,
    }))
}
