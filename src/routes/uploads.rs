//! `POST /api/uploads` and `GET /api/attachments/{id}`: files in a chat,
//! typed by their content (not their name), under the session's authorization.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use diesel_async::AsyncConnection;
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::extractors::{Authenticated, ChatMember};
use crate::db::models::NewAttachment;
use crate::db::{self, queries};
use crate::domain::{Role, SessionStatus};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::file_types;
use crate::protocol::server::{AttachmentView, SessionView};
use crate::rate_limits::Action;
use crate::routes::sessions::readable;
use crate::startup::AppState;

fn clean_file_name(name: Option<&str>) -> String {
    let base = name.unwrap_or("file").rsplit(['/', '\\']).next().unwrap_or("file");
    // Bidi and invisible characters would let `invoice\u{202e}fdp.hta` show as `invoiceath.pdf`.
    let cleaned: String =
        base.chars().filter(|c| !c.is_control() && !crate::domain::is_invisible(*c) && *c != '"').take(200).collect();
    if cleaned.trim().is_empty() {
        "file".to_owned()
    } else {
        cleaned.trim().to_owned()
    }
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UploadForm {
    /// The chat the file belongs to.
    #[schema(value_type = String, format = Uuid)]
    session_id: Uuid,
    /// The file: an image (PNG, JPEG, GIF, WebP), a PDF, a document (DOCX, XLSX, ODT, ODS), CSV or plain text,
    /// typed by its content.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    session_id: Uuid,
    #[serde(flatten)]
    attachment: AttachmentView,
}

/// Upload a file into a chat; send its `attachmentId` with a message to share it.
#[utoipa::path(
    tag = "attachments",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Uploaded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, description = "The file is over `UPLOAD_LIMIT_BYTES` (`payload_too_large`), or would take the customer past `UPLOAD_QUOTA_BYTES_PER_CUSTOMER` or the chat past `UPLOAD_QUOTA_BYTES_PER_SESSION` (`quota_exceeded`)", body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, description = "More than `RATE_LIMIT_UPLOADS_PER_MINUTE` uploads (`rate_limited`, with `retryAfter`)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/api/uploads")]
pub async fn upload(
    state: web::Data<AppState>,
    caller: ChatMember,
    mut form: Multipart,
) -> Result<HttpResponse, AppError> {
    // Counted before the bytes are read: a flood is refused before it is received.
    state.rate_limits.admit(Action::Upload, &caller.0)?;
    let limit = state.upload_limit;
    let mut session_id: Option<Uuid> = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|error| AppError::validation(format!("the form is malformed: {error}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let file_name =
            field.content_disposition().and_then(|disposition| disposition.get_filename().map(str::to_owned));
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|error| AppError::validation(format!("the upload was cut short: {error}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(AppError::new(ErrorCode::PayloadTooLarge, format!("files are limited to {limit} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "sessionId" => {
                let text = String::from_utf8(bytes).map_err(|_| AppError::validation("sessionId must be text"))?;
                session_id =
                    Some(text.trim().parse().map_err(|_| AppError::validation("sessionId must be a session id"))?);
            }
            "file" => file = Some((clean_file_name(file_name.as_deref()), bytes)),
            _ => {}
        }
    }
    let session_id = session_id.ok_or_else(|| AppError::validation("the form needs a sessionId field"))?;
    let (file_name, bytes) = file.ok_or_else(|| AppError::validation("the form needs a file field"))?;
    let content_type = file_types::sniff(&bytes).ok_or_else(|| {
        AppError::new(
            ErrorCode::UnsupportedMediaType,
            "only images, PDF, documents (DOCX, XLSX, ODT, ODS), CSV and plain text can be uploaded",
        )
    })?;
    let session = readable_by_member(&state, &caller, session_id).await?;
    if caller.0.role == Role::Agent && session.assigned_agent_id != Some(caller.0.user_id) {
        return Err(AppError::new(ErrorCode::Forbidden, "this session is not yours"));
    }
    if session.status == SessionStatus::Closed {
        return Err(AppError::new(ErrorCode::SessionClosed, "this chat has ended"));
    }
    let uploader = caller.0.user_id;
    let new_attachment = NewAttachment {
        session_id,
        uploader_id: uploader,
        file_name: &file_name,
        content_type,
        size_bytes: bytes.len() as i64,
        data: &bytes,
    };
    let (per_customer, per_session) = (state.upload_quota_per_customer, state.upload_quota_per_session);
    let stored = db::run(&state.pool, async |conn| {
        conn.transaction(async |conn| {
            let (total, in_session) = queries::attachments::stored_bytes_locked(conn, uploader, session_id).await?;
            let size = new_attachment.size_bytes;
            if caller.0.role == Role::Customer && total + size > per_customer {
                return Ok(Err(quota_exceeded(format!("your files may take {per_customer} bytes in all"))));
            }
            if in_session + size > per_session {
                return Ok(Err(quota_exceeded(format!("one chat's files may take {per_session} bytes"))));
            }
            queries::attachments::insert(conn, &new_attachment).await.map(Ok)
        })
        .await
    })
    .await??;
    Ok(HttpResponse::Created().json(Uploaded { session_id, attachment: AttachmentView::from(&stored) }))
}

fn quota_exceeded(message: String) -> AppError {
    AppError::new(ErrorCode::QuotaExceeded, format!("{message}; remove a chat's files or send fewer"))
}

/// Fetch a file, with a bearer token or `?token=` (for `<img src>`).
#[utoipa::path(
    tag = "attachments",
    params(("id" = Uuid, Path, description = "Attachment id"), ("token" = Option<String>, Query, description = "The bearer token, where a header cannot be set")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/attachments/{id}")]
pub async fn download(
    state: web::Data<AppState>,
    caller: ChatMember,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let found = db::run(&state.pool, async |conn| queries::attachments::find_with_data(conn, id).await).await?;
    let (meta, data) = found.ok_or_else(|| AppError::not_found("attachment"))?;
    let session = readable_by_member(&state, &caller, meta.session_id).await?;
    // A partner sees the files of the messages they see: none from before a history they were not given.
    if caller.0.role == Role::Partner {
        let after = partner_sees_after(&state, &caller, session.session_id).await?;
        let message = meta.message_id;
        let seq = db::run(&state.pool, async |conn| queries::attachments::message_seq(conn, message).await).await?;
        if seq.is_none_or(|seq| seq <= after) && meta.uploader_id != Some(caller.0.user_id) {
            return Err(AppError::new(ErrorCode::Forbidden, "that file is not shared with your organisation"));
        }
    }
    let disposition = if file_types::shown_inline(&meta.content_type) { "inline" } else { "attachment" };
    let content_type = if meta.content_type.starts_with("text/") {
        format!("{}; charset=utf-8", meta.content_type)
    } else {
        meta.content_type
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_DISPOSITION, format!("{disposition}; filename=\"{}\"", meta.file_name)))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(data))
}

/// The chat, if the caller takes part in it: a partner's organisation must
/// be invited and not removed; the others as `readable` says.
async fn readable_by_member(state: &AppState, caller: &ChatMember, id: Uuid) -> Result<SessionView, AppError> {
    if caller.0.role != Role::Partner {
        return readable(state, &Authenticated(caller.0.clone()), id).await;
    }
    partner_sees_after(state, caller, id).await?;
    let found = db::run(&state.pool, async |conn| queries::sessions::find_with_names(conn, id).await).await?;
    let (session, customer_name, agent_name) =
        found.ok_or_else(|| AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"))?;
    Ok(SessionView::for_role(&session, &customer_name, agent_name.as_deref(), Role::Partner))
}

async fn partner_sees_after(state: &AppState, caller: &ChatMember, id: Uuid) -> Result<i64, AppError> {
    let org = caller.0.partner_org_id.ok_or_else(|| AppError::new(ErrorCode::Forbidden, "no partner organisation"))?;
    db::run(&state.pool, async |conn| queries::partners::access(conn, id, org).await)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::Forbidden, "your organisation is not in this chat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_paths_and_invisible_characters() {
        assert_eq!(clean_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_file_name(Some("invoice\u{202e}fdp.hta")), "invoicefdp.hta");
    }
}
