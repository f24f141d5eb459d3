//! One error type for the whole server. Clients see a stable snake_case code
//! and a human message; the cause stays in the logs.

use std::fmt;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:ident;)+) => {
        /// The codes clients may rely on. Adding one is fine; renaming one breaks clients.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode { $($variant),+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status),+ }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),+ }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request", BAD_REQUEST;
    ValidationFailed => "validation_failed", BAD_REQUEST;
    InvalidJson => "invalid_json", BAD_REQUEST;
    InvalidFrame => "invalid_frame", BAD_REQUEST;
    UnknownEvent => "unknown_event", BAD_REQUEST;
    InvalidPayload => "invalid_payload", BAD_REQUEST;
    ContentEmpty => "content_empty", BAD_REQUEST;
    ContentTooLong => "content_too_long", BAD_REQUEST;
    InvalidTimeZone => "invalid_time_zone", BAD_REQUEST;
    InvalidBusinessHours => "invalid_business_hours", BAD_REQUEST;
    InvalidEmail => "invalid_email", BAD_REQUEST;
    Unauthorized => "unauthorized", UNAUTHORIZED;
    InvalidCredentials => "invalid_credentials", UNAUTHORIZED;
    Forbidden => "forbidden", FORBIDDEN;
    NotFound => "not_found", NOT_FOUND;
    SessionNotFound => "session_not_found", NOT_FOUND;
    Conflict => "conflict", CONFLICT;
    SessionClosed => "session_closed", CONFLICT;
    AlreadyAssigned => "already_assigned", CONFLICT;
    NotWaiting => "not_waiting", CONFLICT;
    AgentNotJoined => "agent_not_joined", CONFLICT;
    AgentUnavailable => "agent_unavailable", CONFLICT;
    SessionOpen => "session_open", CONFLICT;
    AlreadyRated => "already_rated", CONFLICT;
    AlreadySetUp => "already_set_up", CONFLICT;
    LimitReached => "limit_reached", CONFLICT;
    RateLimited => "rate_limited", TOO_MANY_REQUESTS;
    TooManyOpenChats => "too_many_open_chats", TOO_MANY_REQUESTS;
    TooManySockets => "too_many_sockets", TOO_MANY_REQUESTS;
    ServerFull => "server_full", SERVICE_UNAVAILABLE;
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    QuotaExceeded => "quota_exceeded", PAYLOAD_TOO_LARGE;
    DatabaseUnavailable => "database_unavailable", SERVICE_UNAVAILABLE;
    ClusterUnavailable => "cluster_unavailable", SERVICE_UNAVAILABLE;
    SessionMoved => "session_moved", SERVICE_UNAVAILABLE;
    StorageTimeout => "storage_timeout", SERVICE_UNAVAILABLE;
    Overloaded => "overloaded", SERVICE_UNAVAILABLE;
    MailUnavailable => "mail_unavailable", SERVICE_UNAVAILABLE;
    Internal => "internal", INTERNAL_SERVER_ERROR;
}

type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error with a code for the client and, where there was one, the cause for the logs.
/// Cheap to clone, so one failed batch can answer every message in it. It
/// travels between nodes without its cause, which the node that had it logs.
#[derive(Clone, Serialize, serde::Deserialize)]
#[serde(from = "PassedOn", into = "PassedOn")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: seconds until a retry can succeed.
    pub retry_after: Option<u64>,
    cause: Option<Cause>,
}

#[derive(Serialize, serde::Deserialize)]
struct PassedOn {
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

impl From<AppError> for PassedOn {
    fn from(error: AppError) -> Self {
        PassedOn { code: error.code, message: error.message, retry_after: error.retry_after }
    }
}

impl From<PassedOn> for AppError {
    fn from(PassedOn { code, message, retry_after }: PassedOn) -> Self {
        AppError { code, message, retry_after, cause: None }
    }
}

/// What a client receives, over REST or inside a WebSocket error event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    pub error: ErrorCode,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError { code, message: message.into(), retry_after: None, cause: None }
    }

    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    pub fn not_found(what: &str) -> Self {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::ValidationFailed, message)
    }

    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::new(ErrorCode::Internal, "internal error").with_cause(cause)
    }

    pub fn database_unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::new(ErrorCode::DatabaseUnavailable, "the database is unavailable; try again").with_cause(cause)
    }

    /// The node that runs a chat (or the queue) could not be reached; a retry may find another.
    pub fn cluster_unavailable(message: impl Into<String>) -> Self {
        AppError { retry_after: Some(1), ..AppError::new(ErrorCode::ClusterUnavailable, message) }
    }

    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        AppError {
            retry_after: Some(seconds.max(1)),
            ..AppError::new(ErrorCode::RateLimited, "too many messages; slow down")
        }
    }

    /// A unique index's conflict told in the caller's words ("that name is
    /// taken"); any other error passes unchanged.
    pub fn taken(self, what: &str) -> Self {
        if self.code == ErrorCode::Conflict {
            AppError::new(ErrorCode::Conflict, format!("that {what} is taken"))
        } else {
            self
        }
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody { error: self.code, message: &self.message, retry_after: self.retry_after }
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " (caused by: {cause})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if self.code.status().is_server_error() {
            log::error!("{self}");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.body())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => AppError::not_found("record"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::new(ErrorCode::Conflict, "that already exists").with_cause(error)
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) | Error::BrokenTransactionManager => {
                AppError::database_unavailable(error)
            }
            other => AppError::internal(other),
        }
    }
}

impl<E> From<bb8::RunError<E>> for AppError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: bb8::RunError<E>) -> Self {
        AppError::database_unavailable(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &std::path::Path, into: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }

    #[test]
    fn every_error_code_is_used_somewhere() {
        let mut code = String::new();
        sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut code);
        // Leave out the list that declares the codes.
        let declared_from = code.find("error_codes! {").expect("the declaration");
        let declared_to = declared_from + code[declared_from..].find("\n}").expect("its end");
        code.replace_range(declared_from..declared_to, "");
        for error_code in ErrorCode::ALL {
            let usage = format!("ErrorCode::{error_code:?}");
            assert!(code.contains(&usage), "{} is never used: remove it or use it", error_code.as_str());
        }
    }

    #[test]
    fn a_clients_mistake_is_never_a_server_error() {
        for error_code in ErrorCode::ALL {
            let server_side = matches!(
                error_code,
                ErrorCode::Internal
                    | ErrorCode::DatabaseUnavailable
                    | ErrorCode::ClusterUnavailable
                    | ErrorCode::SessionMoved
                    | ErrorCode::StorageTimeout
                    | ErrorCode::Overloaded
                    | ErrorCode::ServerFull
                    | ErrorCode::MailUnavailable
            );
            assert_eq!(error_code.status().is_server_error(), server_side, "{}", error_code.as_str());
        }
    }
}
