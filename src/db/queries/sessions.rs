use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{ChatSession, NewChatSession};
use crate::db::schema::chat_sessions;
use crate::db::PgConn;

pub async fn insert(conn: &mut PgConn, new_session: &NewChatSession) -> QueryResult<ChatSession> {
    diesel::insert_into(chat_sessions::table)
        .values(new_session)
        .returning(ChatSession::as_returning())
        .get_result(conn)
        .await
}

/// A session that has not been deleted.
pub async fn find(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<ChatSession>> {
    chat_sessions::table
        .find(id)
        .filter(chat_sessions::deleted_at.is_null())
        .select(ChatSession::as_select())
        .first(conn)
        .await
        .optional()
}
