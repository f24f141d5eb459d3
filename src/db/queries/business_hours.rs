//! Opening hours: a team's own, and the hours for every other chat (no team).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{BusinessHoursRow, NewBusinessHours};
use crate::db::schema::business_hours;
use crate::db::PgConn;

/// The hours stored for `team`, or the global hours for `None`; nothing falls back.
pub async fn stored(conn: &mut PgConn, team: Option<Uuid>) -> QueryResult<Option<BusinessHoursRow>> {
    let query = business_hours::table.select(BusinessHoursRow::as_select()).into_boxed();
    let query = match team {
        Some(team) => query.filter(business_hours::team_id.eq(team)),
        None => query.filter(business_hours::team_id.is_null()),
    };
    query.first(conn).await.optional()
}

/// The hours a chat for `team` keeps to: the team's own, else the global
/// hours; `None` when neither is set (always open).
pub async fn effective(conn: &mut PgConn, team: Option<Uuid>) -> QueryResult<Option<BusinessHoursRow>> {
    if let Some(team) = team {
        if let Some(own) = stored(conn, Some(team)).await? {
            return Ok(Some(own));
        }
    }
    stored(conn, None).await
}

/// Replaces the hours of `hours.team_id`. Run it in a transaction: the
/// lock it takes lasts until the end, so two replacements at once take
/// turns rather than the second failing on the row the first inserted.
pub async fn replace(conn: &mut PgConn, hours: &NewBusinessHours) -> QueryResult<()> {
    let whose = hours.team_id.map_or_else(|| "global".to_owned(), |team| team.to_string());
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("switchboard:business-hours:{whose}"))
        .execute(conn)
        .await?;
    remove(conn, hours.team_id).await?;
    diesel::insert_into(business_hours::table).values(hours).execute(conn).await.map(|_| ())
}

/// Removes the hours of `team` (the global ones for `None`); false when there were none.
pub async fn remove(conn: &mut PgConn, team: Option<Uuid>) -> QueryResult<bool> {
    let removed = match team {
        Some(team) => {
            diesel::delete(business_hours::table.filter(business_hours::team_id.eq(team))).execute(conn).await?
        }
        None => diesel::delete(business_hours::table.filter(business_hours::team_id.is_null())).execute(conn).await?,
    };
    Ok(removed > 0)
}
