use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{AttachmentMeta, NewAttachment};
use crate::db::schema::message_attachments;
use crate::db::PgConn;

pub async fn insert(conn: &mut PgConn, new_attachment: &NewAttachment<'_>) -> QueryResult<AttachmentMeta> {
    diesel::insert_into(message_attachments::table)
        .values(new_attachment)
        .returning(AttachmentMeta::as_returning())
        .get_result(conn)
        .await
}

/// The file's description and bytes.
pub async fn find_with_data(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<(AttachmentMeta, Vec<u8>)>> {
    message_attachments::table
        .find(id)
        .select((AttachmentMeta::as_select(), message_attachments::data))
        .first(conn)
        .await
        .optional()
}

/// Of `ids`, the files `uploader` put in `session_id` that no message carries yet.
pub async fn unclaimed(
    conn: &mut PgConn,
    ids: &[Uuid],
    session_id: Uuid,
    uploader: Uuid,
) -> QueryResult<Vec<AttachmentMeta>> {
    message_attachments::table
        .filter(message_attachments::id.eq_any(ids))
        .filter(message_attachments::session_id.eq(session_id))
        .filter(message_attachments::uploader_id.eq(uploader))
        .filter(message_attachments::message_id.is_null())
        .select(AttachmentMeta::as_select())
        .load(conn)
        .await
}

/// Ties files to the message that carries them.
pub async fn claim(conn: &mut PgConn, ids: &[Uuid], message_id: Uuid) -> QueryResult<usize> {
    diesel::update(
        message_attachments::table
            .filter(message_attachments::id.eq_any(ids))
            .filter(message_attachments::message_id.is_null()),
    )
    .set(message_attachments::message_id.eq(message_id))
    .execute(conn)
    .await
}

/// The files carried by any of `message_ids`.
pub async fn of_messages(conn: &mut PgConn, message_ids: &[Uuid]) -> QueryResult<Vec<AttachmentMeta>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    message_attachments::table
        .filter(message_attachments::message_id.eq_any(message_ids))
        .order(message_attachments::created_at.asc())
        .select(AttachmentMeta::as_select())
        .load(conn)
        .await
}

#[derive(QueryableByName)]
struct StoredBytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    by_uploader: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    in_session: i64,
}

/// Bytes `uploader` has stored in all their chats, and bytes `session_id`
/// holds from everyone, holding locks on both counts until the transaction
/// ends, so two uploads at once cannot both slip under a quota.
pub async fn stored_bytes_locked(conn: &mut PgConn, uploader: Uuid, session_id: Uuid) -> QueryResult<(i64, i64)> {
    // Always in this order (uploader, then chat), so two uploads never wait on each other crosswise.
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 1)), \
                pg_advisory_xact_lock(hashtextextended($2::text, 1))",
    )
    .bind::<diesel::sql_types::Uuid, _>(uploader)
    .bind::<diesel::sql_types::Uuid, _>(session_id)
    .execute(conn)
    .await?;
    let stored: StoredBytes = diesel::sql_query(
        "SELECT COALESCE(SUM(size_bytes) FILTER (WHERE uploader_id = $1), 0)::bigint AS by_uploader, \
                COALESCE(SUM(size_bytes) FILTER (WHERE session_id = $2), 0)::bigint AS in_session \
         FROM message_attachments WHERE uploader_id = $1 OR session_id = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(uploader)
    .bind::<diesel::sql_types::Uuid, _>(session_id)
    .get_result(conn)
    .await?;
    Ok((stored.by_uploader, stored.in_session))
}

/// Removes files uploaded before `before` that no message carries.
pub async fn remove_unclaimed(conn: &mut PgConn, before: chrono::DateTime<chrono::Utc>) -> QueryResult<usize> {
    diesel::delete(
        message_attachments::table
            .filter(message_attachments::message_id.is_null())
            .filter(message_attachments::created_at.lt(before)),
    )
    .execute(conn)
    .await
}

/// Removes every file of a session, as when its messages are cleared.
pub async fn remove_of_session(conn: &mut PgConn, session_id: Uuid) -> QueryResult<usize> {
    diesel::delete(message_attachments::table.filter(message_attachments::session_id.eq(session_id)))
        .execute(conn)
        .await
}

/// The seq of the message a file was sent with, if it was sent (and not hidden).
pub async fn message_seq(conn: &mut PgConn, message_id: Option<Uuid>) -> QueryResult<Option<i64>> {
    use crate::db::schema::chat_messages;
    let Some(message_id) = message_id else { return Ok(None) };
    chat_messages::table
        .find(message_id)
        .filter(chat_messages::deleted_at.is_null())
        .filter(chat_messages::sender_type.ne(crate::domain::SenderType::Note))
        .select(chat_messages::seq)
        .first(conn)
        .await
        .optional()
}
