use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::chat_sessions;
use crate::domain::{Priority, SessionStatus};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = chat_sessions, check_for_backend(diesel::pg::Pg))]
pub struct ChatSession {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: SessionStatus,
    pub priority: Priority,
    pub assigned_agent_id: Option<Uuid>,
    pub is_active: bool,
    pub is_resolved: bool,
    pub title: Option<String>,
    pub category: Option<String>,
    pub bot_context: Option<String>,
    pub conversation_context: serde_json::Value,
    pub metadata: serde_json::Value,
    pub message_count: i32,
    pub last_seq: i64,
    pub last_activity: DateTime<Utc>,
    pub resolution_notes: Option<String>,
    pub ended_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The team the chat is routed to, if any: its agents get it first.
    pub team_id: Option<Uuid>,
    /// Where to answer an offline request: the address the customer left with their message.
    pub offline_email: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = chat_sessions)]
pub struct NewChatSession {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub priority: Priority,
    pub bot_context: Option<String>,
    pub metadata: serde_json::Value,
    /// The node whose actor creates it (several nodes on Redis).
    pub owner_node: Option<String>,
    pub team_id: Option<Uuid>,
}
