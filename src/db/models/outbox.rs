use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::db::schema::email_outbox;
use crate::domain::EmailStatus;

/// An email to queue: `queries::outbox::enqueue` stores it and the mailer sends it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_outbox)]
pub struct NewEmail {
    /// What it is, for the admins' list and the per-chat bounds: `transcript`, `offline_reply`, …
    pub kind: String,
    pub session_id: Option<Uuid>,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// An email the mailer has claimed for one attempt.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = email_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxEmail {
    pub id: Uuid,
    pub kind: String,
    pub session_id: Option<Uuid>,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attempts: i32,
}

/// An outbox row as admins see it: where it is, not what it says.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = email_outbox, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub id: Uuid,
    pub kind: String,
    pub session_id: Option<Uuid>,
    pub to_address: String,
    pub subject: String,
    pub status: EmailStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
