use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::db::schema::{canned_replies, labels};

/// A reply agents insert with its shortcut; `{name}` and `{agent}` are filled in by the desk.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = canned_replies)]
#[serde(rename_all = "camelCase")]
pub struct CannedReply {
    pub id: Uuid,
    pub shortcut: String,
    pub title: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = canned_replies)]
pub struct CannedReplyFields {
    pub shortcut: Option<String>,
    pub title: Option<String>,
    pub content: Option<String>,
}

/// A label (tag) staff put on chats.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = labels)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: Uuid,
    pub name: String,
    pub color: String,
    pub created_at: DateTime<Utc>,
}
