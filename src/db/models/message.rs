use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::chat_messages;
use crate::domain::SenderType;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = chat_messages, check_for_backend(diesel::pg::Pg))]
pub struct ChatMessage {
    pub id: Uuid,
    pub session_id: Uuid,
    pub seq: i64,
    pub client_msg_id: Option<String>,
    pub sender_type: SenderType,
    pub sender_id: Option<Uuid>,
    pub content: String,
    pub message_type: String,
    pub intent: Option<String>,
    pub entities: Option<serde_json::Value>,
    pub confidence: Option<f32>,
    pub processing: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A message on its way to the writer. Its sequence number is handed out in
/// the transaction that stores it, so a failed write never leaves a gap.
#[derive(Debug, Clone)]
pub struct NewChatMessage {
    pub session_id: Uuid,
    pub sender_type: SenderType,
    pub sender_id: Option<Uuid>,
    /// The sender's own id for the message; the same id again means a resend.
    pub client_msg_id: Option<String>,
    pub content: String,
    pub message_type: String,
    pub intent: Option<String>,
    pub entities: Option<serde_json::Value>,
    pub confidence: Option<f32>,
    pub processing: Option<serde_json::Value>,
    /// The fencing number of the session's owner that sends it: stored
    /// only while it is still the session's (`chat_sessions.owner_epoch`).
    pub owner_epoch: i64,
}

impl NewChatMessage {
    pub fn text(
        session_id: Uuid,
        sender_type: SenderType,
        sender_id: Option<Uuid>,
        content: impl Into<String>,
    ) -> Self {
        NewChatMessage {
            session_id,
            sender_type,
            sender_id,
            client_msg_id: None,
            content: content.into(),
            message_type: "text".to_owned(),
            intent: None,
            entities: None,
            confidence: None,
            processing: None,
            owner_epoch: 0,
        }
    }

    pub fn with_client_msg_id(mut self, client_msg_id: impl Into<String>) -> Self {
        self.client_msg_id = Some(client_msg_id.into());
        self
    }

    /// The key under which a resend is recognised.
    pub(crate) fn resend_key(&self) -> Option<(Uuid, Option<Uuid>, &str)> {
        self.client_msg_id.as_deref().map(|id| (self.session_id, self.sender_id, id))
    }
}
