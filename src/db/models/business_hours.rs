use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::business_hours;

/// A team's opening hours, or the hours for chats without a team (`team_id` none).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = business_hours, check_for_backend(diesel::pg::Pg))]
pub struct BusinessHoursRow {
    pub team_id: Option<Uuid>,
    pub time_zone: String,
    /// `business_hours::Weekly` as JSON.
    pub weekly: serde_json::Value,
    pub holidays: Vec<NaiveDate>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = business_hours)]
pub struct NewBusinessHours {
    pub team_id: Option<Uuid>,
    pub time_zone: String,
    pub weekly: serde_json::Value,
    pub holidays: Vec<NaiveDate>,
}
