//! What admins keep for the team: canned replies and labels.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{CannedReply, CannedReplyFields, Label};
use crate::db::schema::{canned_replies, labels, session_labels};
use crate::db::PgConn;

pub async fn canned_replies(conn: &mut PgConn) -> QueryResult<Vec<CannedReply>> {
    canned_replies::table.order(canned_replies::shortcut.asc()).select(CannedReply::as_select()).load(conn).await
}

/// Most canned replies kept: the desk lists them all.
pub const MAX_CANNED_REPLIES: i64 = 500;

pub async fn canned_reply_count(conn: &mut PgConn) -> QueryResult<i64> {
    canned_replies::table.count().get_result(conn).await
}

pub async fn insert_canned_reply(conn: &mut PgConn, fields: &CannedReplyFields) -> QueryResult<CannedReply> {
    diesel::insert_into(canned_replies::table)
        .values(fields)
        .returning(CannedReply::as_returning())
        .get_result(conn)
        .await
}

pub async fn update_canned_reply(
    conn: &mut PgConn,
    id: Uuid,
    fields: &CannedReplyFields,
) -> QueryResult<Option<CannedReply>> {
    diesel::update(canned_replies::table.find(id))
        .set((fields, canned_replies::updated_at.eq(diesel::dsl::now)))
        .returning(CannedReply::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete_canned_reply(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(canned_replies::table.find(id)).execute(conn).await? > 0)
}

pub async fn labels(conn: &mut PgConn) -> QueryResult<Vec<Label>> {
    labels::table.order(labels::name.asc()).select(Label::as_select()).load(conn).await
}

/// Most labels kept.
pub const MAX_LABELS: i64 = 200;

pub async fn label_count(conn: &mut PgConn) -> QueryResult<i64> {
    labels::table.count().get_result(conn).await
}

pub async fn insert_label(conn: &mut PgConn, name: &str, color: &str) -> QueryResult<Label> {
    diesel::insert_into(labels::table)
        .values((labels::name.eq(name), labels::color.eq(color)))
        .returning(Label::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete_label(conn: &mut PgConn, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(labels::table.find(id)).execute(conn).await? > 0)
}

/// Replaces a chat's labels with those named; returns the names that exist
/// no more (unknown), having changed nothing, or the new set.
pub async fn set_session_labels(
    conn: &mut PgConn,
    session_id: Uuid,
    names: &[String],
) -> QueryResult<Result<Vec<String>, Vec<String>>> {
    let found: Vec<(Uuid, String)> =
        labels::table.filter(labels::name.eq_any(names)).select((labels::id, labels::name)).load(conn).await?;
    let unknown: Vec<String> =
        names.iter().filter(|name| !found.iter().any(|(_, known)| known == *name)).cloned().collect();
    if !unknown.is_empty() {
        return Ok(Err(unknown));
    }
    diesel::delete(session_labels::table.filter(session_labels::session_id.eq(session_id))).execute(conn).await?;
    let rows: Vec<_> = found
        .iter()
        .map(|(label_id, _)| (session_labels::session_id.eq(session_id), session_labels::label_id.eq(*label_id)))
        .collect();
    diesel::insert_into(session_labels::table).values(&rows).execute(conn).await?;
    let mut names: Vec<String> = found.into_iter().map(|(_, name)| name).collect();
    names.sort();
    Ok(Ok(names))
}

/// The labels of these chats, by chat, names sorted.
pub async fn labels_of(conn: &mut PgConn, sessions: &[Uuid]) -> QueryResult<HashMap<Uuid, Vec<String>>> {
    let rows: Vec<(Uuid, String)> = session_labels::table
        .inner_join(labels::table)
        .filter(session_labels::session_id.eq_any(sessions))
        .order(labels::name.asc())
        .select((session_labels::session_id, labels::name))
        .load(conn)
        .await?;
    let mut by_session: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (session, name) in rows {
        by_session.entry(session).or_default().push(name);
    }
    Ok(by_session)
}
