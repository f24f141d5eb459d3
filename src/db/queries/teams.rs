//! Teams (departments) and who belongs to them.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::schema::{team_members, teams, users};
use crate::db::PgConn;

/// Most teams kept.
pub const MAX_TEAMS: i64 = 100;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub agent_id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub members: Vec<Member>,
}

/// Every team with its members, by name.
pub async fn all(conn: &mut PgConn) -> QueryResult<Vec<Team>> {
    let found: Vec<(Uuid, String)> =
        teams::table.order(teams::name.asc()).select((teams::id, teams::name)).load(conn).await?;
    let members: Vec<(Uuid, Uuid, String)> = team_members::table
        .inner_join(users::table)
        .order(users::display_name.asc())
        .select((team_members::team_id, users::id, users::display_name))
        .load(conn)
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, name)| Team {
            id,
            name,
            members: members
                .iter()
                .filter(|(team, ..)| *team == id)
                .map(|(_, agent_id, name)| Member { agent_id: *agent_id, name: name.clone() })
                .collect(),
        })
        .collect())
}

pub async fn count(conn: &mut PgConn) -> QueryResult<i64> {
    teams::table.count().get_result(conn).await
}

pub async fn insert(conn: &mut PgConn, name: &str) -> QueryResult<Uuid> {
    diesel::insert_into(teams::table).values(teams::name.eq(name)).returning(teams::id).get_result(conn).await
}

pub async fn delete(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(teams::table.find(id)).execute(conn).await? > 0)
}

pub async fn exists(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(teams::table.find(id))).get_result(conn).await
}

pub async fn id_by_name(conn: &mut PgConn, name: &str) -> QueryResult<Option<Uuid>> {
    teams::table.filter(teams::name.eq(name)).select(teams::id).first(conn).await.optional()
}

/// Makes `agents` the team's members. Run it in a transaction.
pub async fn set_members(conn: &mut PgConn, team_id: Uuid, agents: &[Uuid]) -> QueryResult<()> {
    diesel::delete(team_members::table.filter(team_members::team_id.eq(team_id))).execute(conn).await?;
    let rows: Vec<_> =
        agents.iter().map(|agent| (team_members::team_id.eq(team_id), team_members::user_id.eq(*agent))).collect();
    diesel::insert_into(team_members::table).values(&rows).execute(conn).await?;
    Ok(())
}

/// Each team's members.
pub async fn membership(conn: &mut PgConn) -> QueryResult<HashMap<Uuid, HashSet<Uuid>>> {
    let rows: Vec<(Uuid, Uuid)> =
        team_members::table.select((team_members::team_id, team_members::user_id)).load(conn).await?;
    let mut by_team: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for (team, agent) in rows {
        by_team.entry(team).or_default().insert(agent);
    }
    Ok(by_team)
}
