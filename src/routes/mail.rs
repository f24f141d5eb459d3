//! Email: a chat's transcript on request, and the outbox for admins.

use actix_web::{get, post, web, HttpResponse};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::extractors::{Admin, Authenticated};
use crate::db::models::outbox::OutboxEntry;
use crate::db::queries::outbox::Bounded;
use crate::db::{self, queries};
use crate::domain::{EmailStatus, Role};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::mail;
use crate::routes::OptionalJson;
use crate::startup::AppState;

/// The window of `MAIL_TRANSCRIPTS_PER_CUSTOMER_PER_HOUR`, and the wait a refusal suggests.
const TRANSCRIPT_WINDOW_SECS: u64 = 3600;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscriptRequest {
    /// Where to send it. Left out: the customer's own address, if they gave one.
    email: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedEmail {
    email_id: Uuid,
    /// `queued`: it goes out at once, and is retried if the SMTP server refuses it for now.
    status: EmailStatus,
    to: String,
}

/// Email the chat's transcript: every message the customer sees (never a
/// private note), in order, as plain text and HTML. For the chat's customer,
/// the agents who may read it, and admins; `MAIL_TRANSCRIPTS_PER_CHAT` per
/// chat, and `MAIL_TRANSCRIPTS_PER_CUSTOMER_PER_HOUR` a customer may ask for.
#[utoipa::path(
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body(content = Option<TranscriptRequest>, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued; it is sent at once, and retried with backoff", body = QueuedEmail),
        (status = 400, description = "`invalid_email`: no address given and none known, or not an address", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not the caller's chat", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the chat's transcripts have all been sent", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with `retryAfter`): the customer asked for `MAIL_TRANSCRIPTS_PER_CUSTOMER_PER_HOUR` this hour", body = ErrorBody),
        (status = 503, description = "`mail_unavailable`: this server sends no email (no `SMTP_URL`)", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/api/sessions/{id}/transcript")]
pub async fn send_transcript(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: OptionalJson<TranscriptRequest>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let session = crate::routes::sessions::readable(&state, &caller, id).await?;
    state.outbox.require()?;
    let typed = body.0.and_then(|body| body.email).filter(|email| !email.trim().is_empty());
    let address = match typed {
        Some(typed) => mail::parse_address(&typed)?,
        None => {
            let customer_id = session.customer_id;
            let known = db::run(&state.pool, async |conn| queries::users::find(conn, customer_id).await)
                .await?
                .and_then(|customer| customer.email);
            match known {
                Some(known) => mail::parse_address(&known)?,
                None => {
                    return Err(AppError::new(ErrorCode::InvalidEmail, "give the address to send the transcript to"))
                }
            }
        }
    };
    let company = state.mail.company();
    let bot_name = state.bot.name().to_owned();
    let bounds = queries::outbox::Bounds {
        per_session: i64::from(state.mail.transcripts_per_session),
        // Staff are trusted; a customer could otherwise send their own
        // words to anyone's address from chat after chat.
        per_customer_hour: (caller.0.role == Role::Customer)
            .then(|| (session.customer_id, i64::from(state.mail.transcripts_per_customer_hour))),
    };
    let queued = db::run(&state.pool, async |conn| {
        let (messages, left_out) = mail::transcript_messages(conn, id, &bot_name).await?;
        let email = mail::transcript(&company, session.created_at, &messages, left_out).to(
            &address,
            mail::TRANSCRIPT,
            Some(id),
        );
        conn.transaction(async |conn| queries::outbox::enqueue_within(conn, &email, bounds).await).await
    })
    .await?;
    let email_id = match queued {
        Bounded::Queued(email_id) => email_id,
        Bounded::SessionFull => {
            return Err(AppError::new(
                ErrorCode::LimitReached,
                format!("this chat's transcript has been sent {} times already", bounds.per_session),
            ))
        }
        Bounded::CustomerBusy => {
            let mut error = AppError::new(ErrorCode::RateLimited, "too many transcripts asked for this hour");
            error.retry_after = Some(TRANSCRIPT_WINDOW_SECS);
            return Err(error);
        }
    };
    state.outbox.nudge();
    if caller.0.role != Role::Customer {
        log::info!("{} {} queued the transcript of {id} as email {email_id}", caller.0.role, caller.0.user_id);
    }
    Ok(HttpResponse::Accepted().json(QueuedEmail { email_id, status: EmailStatus::Queued, to: address.to_string() }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailsQuery {
    /// Only emails in this state.
    status: Option<EmailStatus>,
    /// At most this many (1–200, default 50), newest first.
    limit: Option<i64>,
}

/// The newest emails in the outbox: where each is, how many tries it took,
/// the SMTP server's last refusal. Admins only.
#[utoipa::path(
    tag = "admin",
    params(EmailsQuery),
    responses((status = 200, body = Vec<OutboxEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/emails")]
pub async fn list_emails(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<EmailsQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = match query.limit {
        None => 50,
        Some(limit) if (1..=200).contains(&limit) => limit,
        Some(_) => return Err(AppError::validation("limit must be from 1 to 200")),
    };
    let status = query.status;
    let rows = db::run(&state.pool, async |conn| queries::outbox::recent(conn, status, limit).await).await?;
    Ok(HttpResponse::Ok().json(rows))
}
