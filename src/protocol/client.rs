//! Inbound frames: `{"event": "...", "ref": "optional", "data": {...}}`,
//! parsed into typed requests at the edge so actors never see raw JSON.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{MAX_CLIENT_MSG_ID_CHARS, MAX_CONTENT_CHARS, MAX_REF_CHARS};
use crate::domain::{Presence, Priority};
use crate::error::{AppError, ErrorCode};

/// A parsed frame: the client's `ref` (kept even when the rest is invalid,
/// so the error can carry it) and the request or the reason it was refused.
pub struct Inbound<R> {
    pub reference: Option<String>,
    pub request: Result<R, AppError>,
}

/// Message text that has been checked: not blank, not too long, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(text: String) -> Result<Content, AppError> {
        if text.trim().is_empty() {
            return Err(AppError::new(ErrorCode::ContentEmpty, "the message is empty"));
        }
        if text.chars().count() > MAX_CONTENT_CHARS {
            return Err(AppError::new(
                ErrorCode::ContentTooLong,
                format!("a message may have at most {MAX_CONTENT_CHARS} characters"),
            ));
        }
        if text.contains('\0') {
            return Err(AppError::new(ErrorCode::InvalidPayload, "the message contains a NUL character"));
        }
        Ok(Content(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

pub fn client_msg_id(id: String) -> Result<String, AppError> {
    let length = id.chars().count();
    if length == 0 || length > MAX_CLIENT_MSG_ID_CHARS || id.contains('\0') {
        return Err(AppError::new(
            ErrorCode::InvalidPayload,
            format!("clientMsgId must be 1 to {MAX_CLIENT_MSG_ID_CHARS} characters"),
        ));
    }
    Ok(id)
}

pub fn optional_text(field: &str, value: Option<String>, max_chars: usize) -> Result<Option<String>, AppError> {
    match value {
        Some(text) if text.chars().count() > max_chars || text.contains('\0') => {
            Err(AppError::new(ErrorCode::InvalidPayload, format!("{field} must be at most {max_chars} characters")))
        }
        Some(text) if text.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessageData {
    session_id: Uuid,
    content: String,
    client_msg_id: String,
    #[serde(default)]
    attachments: Vec<Uuid>,
}

/// The most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub session_id: Uuid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkRead {
    pub session_id: Uuid,
    pub up_to_seq: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartChat {
    #[serde(default)]
    pub bot_context: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// Accepted and ignored: a customer's priority comes from a host
    /// website's signed `priority` claim, or from staff.
    #[serde(default)]
    pub priority: Option<Priority>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestAgent {
    pub session_id: Uuid,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    pub session_id: Uuid,
    #[serde(default)]
    pub after_seq: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    #[serde(default)]
    pub max_concurrent: Option<i32>,
}

/// The presence an agent may choose; offline is what leaving means.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChosenPresence {
    Online,
    Away,
}

impl From<ChosenPresence> for Presence {
    fn from(presence: ChosenPresence) -> Self {
        match presence {
            ChosenPresence::Online => Presence::Online,
            ChosenPresence::Away => Presence::Away,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    pub status: ChosenPresence,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub session_id: Uuid,
    #[serde(default)]
    pub to_agent_id: Option<Uuid>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseSession {
    pub session_id: Uuid,
    pub resolved: bool,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A request about one session, from either side. The session actor decides
/// whether the caller may make it.
#[derive(Debug, Clone)]
pub enum SessionRequest {
    Send {
        content: Content,
        client_msg_id: String,
        attachments: Vec<Uuid>,
    },
    RequestAgent {
        reason: Option<String>,
    },
    Typing,
    StopTyping,
    MarkRead {
        up_to_seq: i64,
    },
    Resume {
        after_seq: i64,
    },
    End,
    Close {
        resolved: bool,
        notes: Option<String>,
    },
    Transfer {
        to_agent_id: Option<Uuid>,
        priority: Option<Priority>,
        reason: Option<String>,
    },
    /// Over HTTP only: change the session's title, category or priority.
    Update {
        title: Option<String>,
        category: Option<String>,
        priority: Option<Priority>,
    },
    /// Over HTTP only: close if open, then hide the session.
    Delete,
    /// Over HTTP only: hide every message of the session.
    ClearMessages,
    /// Over HTTP only: send a message and wait for the bot's answer.
    Ask {
        content: Content,
        client_msg_id: String,
    },
}

/// What a customer's socket may ask for.
#[derive(Debug, Clone)]
pub enum CustomerRequest {
    StartChat(StartChat),
    Session { session_id: Uuid, request: SessionRequest },
}

/// What an agent's socket may ask for.
#[derive(Debug, Clone)]
pub enum AgentRequest {
    Join(Join),
    SetStatus(SetStatus),
    PickupSession { session_id: Uuid },
    Session { session_id: Uuid, request: SessionRequest },
}

pub const CUSTOMER_EVENTS: &[&str] = &[
    "customer:start_chat",
    "customer:send_message",
    "customer:request_agent",
    "customer:typing",
    "customer:stop_typing",
    "customer:mark_read",
    "customer:resume",
    "customer:end_chat",
];

pub const AGENT_EVENTS: &[&str] = &[
    "agent:join",
    "agent:set_status",
    "agent:pickup_session",
    "agent:send_message",
    "agent:typing",
    "agent:stop_typing",
    "agent:mark_read",
    "agent:transfer",
    "agent:close_session",
];

const REASON_MAX_CHARS: usize = 500;
const NOTES_MAX_CHARS: usize = 4_000;
const BOT_CONTEXT_MAX_CHARS: usize = 200;
const METADATA_MAX_BYTES: usize = 8_192;

fn data<T: DeserializeOwned>(event: &str, data: Value) -> Result<T, AppError> {
    // A missing `data` reads as an empty object, so events without fields need none.
    let data = if data.is_null() { Value::Object(Default::default()) } else { data };
    serde_json::from_value(data)
        .map_err(|error| AppError::new(ErrorCode::InvalidPayload, format!("invalid data for {event}: {error}")))
}

/// A frame split into its `ref`, event name and data.
type Envelope = (Option<String>, String, Value);

/// Splits a text frame into its parts; a refusal keeps the `ref` when it could be read.
fn envelope(text: &str) -> Result<Envelope, (Option<String>, AppError)> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        (None, AppError::new(ErrorCode::InvalidJson, format!("the frame is not valid JSON: {error}")))
    })?;
    let Value::Object(mut object) = value else {
        return Err((None, AppError::new(ErrorCode::InvalidFrame, "a frame is a JSON object")));
    };
    let reference = match object.remove("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(reference)) if reference.chars().count() <= MAX_REF_CHARS => Some(reference),
        Some(_) => {
            return Err((
                None,
                AppError::new(
                    ErrorCode::InvalidFrame,
                    format!("ref must be a string of at most {MAX_REF_CHARS} characters"),
                ),
            ))
        }
    };
    let event = match object.remove("event") {
        Some(Value::String(event)) => event,
        _ => return Err((reference, AppError::new(ErrorCode::InvalidFrame, "event must be a string"))),
    };
    let data = object.remove("data").unwrap_or(Value::Null);
    if !(data.is_object() || data.is_null()) {
        return Err((reference, AppError::new(ErrorCode::InvalidFrame, "data must be a JSON object")));
    }
    Ok((reference, event, data))
}

fn unknown(event: &str, known: &[&str]) -> AppError {
    AppError::new(ErrorCode::UnknownEvent, format!("unknown event `{event}`; this socket accepts {}", known.join(", ")))
}

/// The events both sockets share, named without their `customer:` / `agent:` prefix.
fn shared(event: &str, name: &str, payload: Value) -> Option<Result<(Uuid, SessionRequest), AppError>> {
    let parsed = match name {
        "send_message" => data::<SendMessageData>(event, payload).and_then(|send| {
            let content = Content::parse(send.content)?;
            let client_msg_id = client_msg_id(send.client_msg_id)?;
            if send.attachments.len() > MAX_ATTACHMENTS {
                return Err(AppError::new(
                    ErrorCode::InvalidPayload,
                    format!("a message may carry at most {MAX_ATTACHMENTS} attachments"),
                ));
            }
            Ok((send.session_id, SessionRequest::Send { content, client_msg_id, attachments: send.attachments }))
        }),
        "typing" => data::<SessionRef>(event, payload).map(|target| (target.session_id, SessionRequest::Typing)),
        "stop_typing" => {
            data::<SessionRef>(event, payload).map(|target| (target.session_id, SessionRequest::StopTyping))
        }
        "mark_read" => data::<MarkRead>(event, payload).and_then(|mark| {
            if mark.up_to_seq < 0 {
                return Err(AppError::new(ErrorCode::InvalidPayload, "upToSeq must not be negative"));
            }
            Ok((mark.session_id, SessionRequest::MarkRead { up_to_seq: mark.up_to_seq }))
        }),
        _ => return None,
    };
    Some(parsed)
}

impl CustomerRequest {
    pub fn parse(text: &str) -> Inbound<CustomerRequest> {
        let (reference, event, payload) = match envelope(text) {
            Ok(parts) => parts,
            Err((reference, error)) => return Inbound { reference, request: Err(error) },
        };
        let Some(name) = event.strip_prefix("customer:") else {
            return Inbound { reference, request: Err(unknown(&event, CUSTOMER_EVENTS)) };
        };
        let in_session = |parsed: Result<(Uuid, SessionRequest), AppError>| {
            parsed.map(|(session_id, request)| CustomerRequest::Session { session_id, request })
        };
        let request = match name {
            "start_chat" => data::<StartChat>(&event, payload).and_then(|start| {
                let bot_context = optional_text("botContext", start.bot_context, BOT_CONTEXT_MAX_CHARS)?;
                if let Some(metadata) = &start.metadata {
                    if serde_json::to_vec(metadata).map(|bytes| bytes.len()).unwrap_or(usize::MAX) > METADATA_MAX_BYTES
                    {
                        return Err(AppError::new(
                            ErrorCode::InvalidPayload,
                            format!("metadata must be at most {METADATA_MAX_BYTES} bytes of JSON"),
                        ));
                    }
                }
                Ok(CustomerRequest::StartChat(StartChat { bot_context, ..start }))
            }),
            "request_agent" => in_session(data::<RequestAgent>(&event, payload).and_then(|request| {
                let reason = optional_text("reason", request.reason, REASON_MAX_CHARS)?;
                Ok((request.session_id, SessionRequest::RequestAgent { reason }))
            })),
            "resume" => in_session(data::<Resume>(&event, payload).and_then(|resume| {
                let after_seq = resume.after_seq.unwrap_or(0);
                if after_seq < 0 {
                    return Err(AppError::new(ErrorCode::InvalidPayload, "afterSeq must not be negative"));
                }
                Ok((resume.session_id, SessionRequest::Resume { after_seq }))
            })),
            "end_chat" => {
                in_session(data::<SessionRef>(&event, payload).map(|target| (target.session_id, SessionRequest::End)))
            }
            _ => match shared(&event, name, payload) {
                Some(parsed) => in_session(parsed),
                None => Err(unknown(&event, CUSTOMER_EVENTS)),
            },
        };
        Inbound { reference, request }
    }
}

impl AgentRequest {
    pub fn parse(text: &str) -> Inbound<AgentRequest> {
        let (reference, event, payload) = match envelope(text) {
            Ok(parts) => parts,
            Err((reference, error)) => return Inbound { reference, request: Err(error) },
        };
        let Some(name) = event.strip_prefix("agent:") else {
            return Inbound { reference, request: Err(unknown(&event, AGENT_EVENTS)) };
        };
        let in_session = |parsed: Result<(Uuid, SessionRequest), AppError>| {
            parsed.map(|(session_id, request)| AgentRequest::Session { session_id, request })
        };
        let request = match name {
            "join" => data::<Join>(&event, payload).and_then(|join| {
                if join.max_concurrent.is_some_and(|max| !(1..=100).contains(&max)) {
                    return Err(AppError::new(ErrorCode::InvalidPayload, "maxConcurrent must be from 1 to 100"));
                }
                Ok(AgentRequest::Join(join))
            }),
            "set_status" => data(&event, payload).map(AgentRequest::SetStatus),
            "pickup_session" => data::<SessionRef>(&event, payload)
                .map(|target| AgentRequest::PickupSession { session_id: target.session_id }),
            "transfer" => in_session(data::<Transfer>(&event, payload).and_then(|transfer| {
                let reason = optional_text("reason", transfer.reason, REASON_MAX_CHARS)?;
                let request =
                    SessionRequest::Transfer { to_agent_id: transfer.to_agent_id, priority: transfer.priority, reason };
                Ok((transfer.session_id, request))
            })),
            "close_session" => in_session(data::<CloseSession>(&event, payload).and_then(|close| {
                let notes = optional_text("notes", close.notes, NOTES_MAX_CHARS)?;
                Ok((close.session_id, SessionRequest::Close { resolved: close.resolved, notes }))
            })),
            _ => match shared(&event, name, payload) {
                Some(parsed) => in_session(parsed),
                None => Err(unknown(&event, AGENT_EVENTS)),
            },
        };
        Inbound { reference, request }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<R>(inbound: Inbound<R>) -> ErrorCode {
        match inbound.request {
            Err(error) => error.code,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn frames_parse_into_typed_requests_and_keep_their_ref() {
        let session = Uuid::new_v4();
        let text = format!(
            r#"{{"event":"customer:send_message","ref":"r1","data":{{"sessionId":"{session}","content":"hi","clientMsgId":"c1"}}}}"#
        );
        let inbound = CustomerRequest::parse(&text);
        assert_eq!(inbound.reference.as_deref(), Some("r1"));
        match inbound.request {
            Ok(CustomerRequest::Session { session_id, request: SessionRequest::Send { content, .. } }) => {
                assert_eq!(session_id, session);
                assert_eq!(content.as_str(), "hi");
            }
            _ => panic!("not a send_message"),
        }
    }

    #[test]
    fn each_kind_of_bad_frame_has_its_own_code() {
        assert_eq!(code(CustomerRequest::parse("{nope")), ErrorCode::InvalidJson);
        assert_eq!(code(CustomerRequest::parse("[1]")), ErrorCode::InvalidFrame);
        assert_eq!(code(CustomerRequest::parse(r#"{"event":"customer:dance"}"#)), ErrorCode::UnknownEvent);
        assert_eq!(code(CustomerRequest::parse(r#"{"event":"agent:join"}"#)), ErrorCode::UnknownEvent);
        assert_eq!(code(CustomerRequest::parse(r#"{"event":"customer:typing","data":{}}"#)), ErrorCode::InvalidPayload);
        assert_eq!(
            code(CustomerRequest::parse(r#"{"event":"customer:typing","data":{"sessionId":5}}"#)),
            ErrorCode::InvalidPayload
        );
        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        let text = format!(
            r#"{{"event":"customer:send_message","data":{{"sessionId":"{}","content":"{long}","clientMsgId":"c"}}}}"#,
            Uuid::new_v4()
        );
        assert_eq!(code(CustomerRequest::parse(&text)), ErrorCode::ContentTooLong);
    }
}
