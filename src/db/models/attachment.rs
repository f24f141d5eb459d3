use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::db::schema::message_attachments;

/// What is known about a file without its bytes.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = message_attachments, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct AttachmentMeta {
    #[serde(rename = "attachmentId")]
    pub id: Uuid,
    pub session_id: Uuid,
    pub message_id: Option<Uuid>,
    #[serde(skip)]
    pub uploader_id: Option<Uuid>,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = message_attachments)]
pub struct NewAttachment<'a> {
    pub session_id: Uuid,
    pub uploader_id: Uuid,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub data: &'a [u8],
}
