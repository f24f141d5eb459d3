//! Teams (departments): who is in which, for routing chats and for the
//! desk's transfer dialog. Admins shape them; the queue reads them again
//! after each change (it is the one that routes by them).

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::messages::{TeamsChanged, ToQueue};
use crate::auth::extractors::{Admin, Authenticated};
use crate::db::queries::teams::{Team, MAX_TEAMS};
use crate::db::{self, queries};
use crate::domain::{Presence, Role};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::startup::AppState;

/// Most members one team lists.
const MEMBERS_PER_TEAM: usize = 500;

fn teams_changed(state: &AppState) {
    state.registry.do_send(ToQueue(TeamsChanged));
}

/// The teams and their members (agents and admins).
#[utoipa::path(
    tag = "teams",
    responses((status = 200, body = Vec<Team>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/teams")]
pub async fn list(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    Ok(HttpResponse::Ok().json(db::run(&state.pool, async |conn| queries::teams::all(conn).await).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamBody {
    /// 1–60 characters; what a host website's `team` claim and the widget's `data-team` name.
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewTeam {
    id: Uuid,
    name: String,
}

/// Add a team (admins).
#[utoipa::path(
    tag = "teams",
    request_body = TeamBody,
    responses((status = 201, body = NewTeam), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "The name is taken (`conflict`) or 100 teams exist (`limit_reached`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/admin/teams")]
pub async fn create(state: web::Data<AppState>, _: Admin, body: web::Json<TeamBody>) -> Result<HttpResponse, AppError> {
    let name = body.into_inner().name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 60 || name.contains('\0') {
        return Err(AppError::validation("name must be 1 to 60 characters"));
    }
    let id = db::run(&state.pool, async |conn| {
        if queries::teams::count(conn).await? >= MAX_TEAMS {
            return Ok(None);
        }
        queries::teams::insert(conn, &name).await.map(Some)
    })
    .await
    .map_err(|error| error.taken("name"))?
    .ok_or_else(|| AppError::new(ErrorCode::LimitReached, format!("at most {MAX_TEAMS} teams")))?;
    Ok(HttpResponse::Created().json(NewTeam { id, name }))
}

/// Remove a team; its chats are for everyone again (admins).
#[utoipa::path(
    tag = "teams",
    params(("id" = Uuid, Path, description = "Team id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/admin/teams/{id}")]
pub async fn remove(state: web::Data<AppState>, _: Admin, id: web::Path<Uuid>) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !db::run(&state.pool, async |conn| queries::teams::delete(conn, id).await).await? {
        return Err(AppError::not_found("team"));
    }
    teams_changed(&state);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembersBody {
    /// The team's agents from now (ids of agents or admins); `[]` empties it.
    agent_ids: Vec<Uuid>,
}

/// Set who is in a team (admins).
#[utoipa::path(
    tag = "teams",
    params(("id" = Uuid, Path, description = "Team id")),
    request_body = MembersBody,
    responses((status = 200, body = Team), (status = 400, description = "An id that is no agent's or admin's (`validation_failed`)", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/api/admin/teams/{id}/members")]
pub async fn set_members(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<Uuid>,
    body: web::Json<MembersBody>,
) -> Result<HttpResponse, AppError> {
    let team_id = id.into_inner();
    let mut members = body.into_inner().agent_ids;
    members.sort();
    members.dedup();
    if members.len() > MEMBERS_PER_TEAM {
        return Err(AppError::validation(format!("a team has at most {MEMBERS_PER_TEAM} members")));
    }
    let staff = db::run(&state.pool, async |conn| queries::stats::staff(conn, None).await).await?;
    if let Some(stranger) = members.iter().find(|id| !staff.iter().any(|row| row.id == **id)) {
        return Err(AppError::validation(format!("{stranger} is not an agent")));
    }
    let updated = db::run(&state.pool, async |conn| {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| {
            if !queries::teams::exists(conn, team_id).await? {
                return Ok(None);
            }
            queries::teams::set_members(conn, team_id, &members).await?;
            Ok(queries::teams::all(conn).await?.into_iter().find(|found| found.id == team_id))
        })
        .await
    })
    .await?
    .ok_or_else(|| AppError::not_found("team"))?;
    teams_changed(&state);
    Ok(HttpResponse::Ok().json(updated))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Colleague {
    agent_id: Uuid,
    name: String,
    status: Presence,
    active_sessions: i64,
    max_concurrent: i32,
    team_ids: Vec<Uuid>,
}

/// The agents with their presence, load and teams, for transfers (agents and admins).
#[utoipa::path(
    tag = "teams",
    responses((status = 200, body = Vec<Colleague>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/agents")]
pub async fn agents(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Agent, Role::Admin])?;
    let (staff, membership) = db::run(&state.pool, async |conn| {
        Ok((queries::stats::staff(conn, None).await?, queries::teams::membership(conn).await?))
    })
    .await?;
    let colleagues: Vec<Colleague> = staff
        .into_iter()
        .filter(|row| row.role == "agent" && !row.disabled)
        .map(|row| {
            let mut team_ids: Vec<Uuid> =
                membership.iter().filter(|(_, members)| members.contains(&row.id)).map(|(team, _)| *team).collect();
            team_ids.sort();
            Colleague {
                agent_id: row.id,
                name: row.display_name,
                status: row.status.parse().unwrap_or(Presence::Offline),
                active_sessions: row.active_sessions,
                max_concurrent: row.max_concurrent_chats,
                team_ids,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(colleagues))
}
