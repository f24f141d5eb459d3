//! Opening hours: each team's own, and the global hours for chats without a
//! team (or of a team without hours of its own). No hours set: always open.
//! Outside them the widget offers to leave a message (docs/PROTOCOL.md,
//! `session:offline`). Session actors read the hours when a chat starts or
//! is handed to the queue, so a change applies from the next chat on.

use actix_web::{delete, get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::extractors::{Admin, Authenticated};
use crate::business_hours::{self, Availability, BusinessHours, HoursBody};
use crate::db::models::NewBusinessHours;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::error::{AppError, ErrorBody};
use crate::startup::AppState;

/// Hours as set for a team (or globally), and what a chat there keeps to now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoursView {
    /// The team; none for the global hours.
    team_id: Option<Uuid>,
    /// The hours set here; null when none are.
    hours: Option<HoursBody>,
    /// Whose hours a chat here keeps to: `team` (its own), `global`, or `always_open` (none set).
    applies: String,
    /// Whether a chat started now is within them.
    open_now: bool,
    /// While closed: when they open next (none if never within a year).
    opens_at: Option<DateTime<Utc>>,
}

async fn view(state: &AppState, team: Option<Uuid>) -> Result<HoursView, AppError> {
    let (own, effective) = db::run(&state.pool, async |conn| {
        if let Some(team) = team {
            if !queries::teams::exists(conn, team).await? {
                return Err(diesel::result::Error::NotFound);
            }
        }
        let own = queries::business_hours::stored(conn, team).await?;
        let effective = queries::business_hours::effective(conn, team).await?;
        Ok((own, effective))
    })
    .await
    .map_err(
        |error| if error.code == crate::error::ErrorCode::NotFound { AppError::not_found("team") } else { error },
    )?;
    let applies = match &effective {
        None => "always_open",
        Some(row) if row.team_id.is_some() => "team",
        Some(_) => "global",
    };
    let (open_now, opens_at) = match business_hours::availability(effective.as_ref(), Utc::now()) {
        Availability::Open => (true, None),
        Availability::Closed { opens_at } => (false, opens_at),
    };
    Ok(HoursView {
        team_id: team,
        hours: own.as_ref().and_then(HoursBody::from_row),
        applies: applies.to_owned(),
        open_now,
        opens_at,
    })
}

async fn set(state: &AppState, team: Option<Uuid>, body: HoursBody) -> Result<HoursView, AppError> {
    BusinessHours::parse(&body)?;
    let mut holidays = body.holidays.clone();
    holidays.sort_unstable();
    holidays.dedup();
    let row = NewBusinessHours {
        team_id: team,
        time_zone: body.time_zone.clone(),
        weekly: serde_json::to_value(&body.weekly).map_err(AppError::internal)?,
        holidays,
    };
    let found = db::run(&state.pool, async |conn| {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| {
            if let Some(team) = team {
                if !queries::teams::exists(conn, team).await? {
                    return Ok(false);
                }
            }
            queries::business_hours::replace(conn, &row).await?;
            Ok(true)
        })
        .await
    })
    .await?;
    if !found {
        return Err(AppError::not_found("team"));
    }
    view(state, team).await
}

async fn remove(state: &AppState, team: Option<Uuid>) -> Result<HttpResponse, AppError> {
    if !db::run(&state.pool, async |conn| queries::business_hours::remove(conn, team).await).await? {
        return Err(AppError::not_found("business hours"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The global hours: for chats without a team, and teams without their own (agents and admins).
#[utoipa::path(
    tag = "business hours",
    responses((status = 200, body = HoursView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/business-hours")]
pub async fn get_global(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(view(&state, None).await?))
}

/// Set the global hours (admins).
#[utoipa::path(
    tag = "business hours",
    request_body = HoursBody,
    responses(
        (status = 200, body = HoursView),
        (status = 400, description = "An unknown zone (`invalid_time_zone`); a malformed, backwards or overlapping range, or too many (`invalid_business_hours`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[put("/api/admin/business-hours")]
pub async fn set_global(
    state: web::Data<AppState>,
    _: Admin,
    body: web::Json<HoursBody>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(set(&state, None, body.into_inner()).await?))
}

/// Remove the global hours: chats without hours of their own are always open (admins).
#[utoipa::path(
    tag = "business hours",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "No global hours were set", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/business-hours")]
pub async fn remove_global(state: web::Data<AppState>, _: Admin) -> Result<HttpResponse, AppError> {
    remove(&state, None).await
}

/// A team's hours, and whose hours its chats keep to (agents and admins).
#[utoipa::path(
    tag = "business hours",
    params(("id" = Uuid, Path, description = "Team id")),
    responses((status = 200, body = HoursView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/teams/{id}/hours")]
pub async fn get_team(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(view(&state, Some(id.into_inner())).await?))
}

/// Set a team's hours; its chats keep to them instead of the global ones (admins).
#[utoipa::path(
    tag = "business hours",
    params(("id" = Uuid, Path, description = "Team id")),
    request_body = HoursBody,
    responses(
        (status = 200, body = HoursView),
        (status = 400, description = "An unknown zone (`invalid_time_zone`); a malformed, backwards or overlapping range, or too many (`invalid_business_hours`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[put("/api/admin/teams/{id}/hours")]
pub async fn set_team(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    body: web::Json<HoursBody>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(set(&state, Some(id.into_inner()), body.into_inner()).await?))
}

/// Remove a team's own hours: its chats keep to the global hours again (admins).
#[utoipa::path(
    tag = "business hours",
    params(("id" = Uuid, Path, description = "Team id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "The team has no hours of its own", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/teams/{id}/hours")]
pub async fn remove_team(state: web::Data<AppState>, _: Admin, id: web::Path<Uuid>) -> Result<HttpResponse, AppError> {
    remove(&state, Some(id.into_inner())).await
}
