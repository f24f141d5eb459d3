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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Content(String);

impl TryFrom<String> for Content {
    type Error = AppError;

    fn try_from(text: String) -> Result<Self, AppError> {
        Content::parse(text)
    }
}

impl From<Content> for String {
    fn from(content: Content) -> String {
        content.0
    }
}

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

/// A private note for the staff of a chat.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendNoteData {
    session_id: Uuid,
    content: String,
    client_msg_id: String,
}

/// The offline form: a message for the team and where to answer it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaveMessageData {
    session_id: Uuid,
    email: String,
    content: String,
    client_msg_id: String,
}

/// An address to answer an offline request at, as the mailer will take it.
pub fn email_address(text: String) -> Result<String, AppError> {
    crate::mail::parse_address(&text).map(|address| address.to_string())
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
    /// The team (by name) the chat is for, as the widget's `data-team`
    /// chose; a host website's signed `team` claim wins over it.
    #[serde(default)]
    pub team: Option<String>,
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
    /// Back to the queue for this team (its agents first).
    #[serde(default)]
    pub to_team_id: Option<Uuid>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvitePartner {
    session_id: Uuid,
    partner_org_id: Uuid,
    #[serde(default)]
    with_history: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemovePartner {
    session_id: Uuid,
    partner_org_id: Uuid,
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
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
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
    /// A private note, seen by staff only (agents and admins).
    Note {
        content: Content,
        client_msg_id: String,
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
        to_team_id: Option<Uuid>,
        priority: Option<Priority>,
        reason: Option<String>,
    },
    /// The customer found nobody there: their message and address make the
    /// chat an offline request, answered later by email.
    LeaveMessage {
        email: String,
        content: Content,
        client_msg_id: String,
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
    /// Staff: bring a partner organisation's members into the chat, from now
    /// on or (`with_history`) with the messages before.
    InvitePartner {
        partner_org_id: Uuid,
        with_history: bool,
    },
    /// Staff: end a partner organisation's access to the chat.
    RemovePartner {
        partner_org_id: Uuid,
    },
}

impl SessionRequest {
    /// What a partner may ask of a chat they are invited into: follow it,
    /// write, type and read. Everything else is the customer's or the staff's.
    pub fn is_for_partners(&self) -> bool {
        matches!(
            self,
            SessionRequest::Resume { .. }
                | SessionRequest::Send { .. }
                | SessionRequest::Typing
                | SessionRequest::StopTyping
                | SessionRequest::MarkRead { .. }
        )
    }
}

/// What a partner's socket may ask for: always about one chat.
#[derive(Debug, Clone)]
pub struct PartnerRequest {
    pub session_id: Uuid,
    pub request: SessionRequest,
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
    PickupSession {
        session_id: Uuid,
    },
    Session {
        session_id: Uuid,
        request: SessionRequest,
    },
    /// Admins only: the operation's figures, as the REST admin API gives them.
    Admin(AdminRequest),
}

/// What an admin may ask over the dashboard's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    /// `GET /api/admin/stats`'s figures; with `subscribe`, `stats:update` follows every few seconds.
    Stats { subscribe: bool },
    /// `GET /api/admin/queue`.
    Queue,
    /// `GET /health`.
    Health,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetStats {
    #[serde(default)]
    subscribe: bool,
}

/// Data an event does without: absent, null or `{}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoData {}

const REASON_MAX_CHARS: usize = 500;
const NOTES_MAX_CHARS: usize = 4_000;
const BOT_CONTEXT_MAX_CHARS: usize = 200;
const METADATA_MAX_BYTES: usize = 8_192;

/// Every frame a customer's socket may send: one variant per event, so the
/// events a socket accepts are this enum and nothing else.
#[derive(Deserialize)]
#[serde(tag = "event", content = "data")]
enum CustomerFrame {
    #[serde(rename = "customer:start_chat")]
    StartChat(StartChat),
    #[serde(rename = "customer:send_message")]
    SendMessage(SendMessageData),
    #[serde(rename = "customer:request_agent")]
    RequestAgent(RequestAgent),
    #[serde(rename = "customer:typing")]
    Typing(SessionRef),
    #[serde(rename = "customer:stop_typing")]
    StopTyping(SessionRef),
    #[serde(rename = "customer:mark_read")]
    MarkRead(MarkRead),
    #[serde(rename = "customer:resume")]
    Resume(Resume),
    #[serde(rename = "customer:end_chat")]
    EndChat(SessionRef),
    #[serde(rename = "customer:leave_message")]
    LeaveMessage(LeaveMessageData),
    #[serde(other)]
    Unknown,
}

/// Every frame an agent's socket may send.
#[derive(Deserialize)]
#[serde(tag = "event", content = "data")]
enum AgentFrame {
    #[serde(rename = "agent:join")]
    Join(Join),
    #[serde(rename = "agent:set_status")]
    SetStatus(SetStatus),
    #[serde(rename = "agent:pickup_session")]
    PickupSession(SessionRef),
    #[serde(rename = "agent:send_message")]
    SendMessage(SendMessageData),
    #[serde(rename = "agent:send_note")]
    SendNote(SendNoteData),
    #[serde(rename = "agent:typing")]
    Typing(SessionRef),
    #[serde(rename = "agent:stop_typing")]
    StopTyping(SessionRef),
    #[serde(rename = "agent:mark_read")]
    MarkRead(MarkRead),
    #[serde(rename = "agent:transfer")]
    Transfer(Transfer),
    #[serde(rename = "agent:close_session")]
    CloseSession(CloseSession),
    #[serde(rename = "agent:invite_partner")]
    InvitePartner(InvitePartner),
    #[serde(rename = "agent:remove_partner")]
    RemovePartner(RemovePartner),
    #[serde(rename = "admin:get_stats")]
    GetStats(Option<GetStats>),
    #[serde(rename = "admin:debug_queue")]
    DebugQueue(Option<NoData>),
    #[serde(rename = "admin:health_check")]
    HealthCheck(Option<NoData>),
    #[serde(other)]
    Unknown,
}

/// Every frame a partner's socket may send.
#[derive(Deserialize)]
#[serde(tag = "event", content = "data")]
enum PartnerFrame {
    #[serde(rename = "partner:join_chat")]
    JoinChat(Resume),
    #[serde(rename = "partner:send_message")]
    SendMessage(SendMessageData),
    #[serde(rename = "partner:typing")]
    Typing(SessionRef),
    #[serde(rename = "partner:stop_typing")]
    StopTyping(SessionRef),
    #[serde(rename = "partner:mark_read")]
    MarkRead(MarkRead),
    #[serde(other)]
    Unknown,
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
    // A missing `data` reads as an empty object, so events without fields need none.
    let data = match object.remove("data") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err((reference, AppError::new(ErrorCode::InvalidFrame, "data must be a JSON object"))),
    };
    Ok((reference, event, data))
}

/// A role's frames, with the catch-all for events the role does not have.
trait RoleFrame: DeserializeOwned {
    fn is_unknown(&self) -> bool;
}

impl RoleFrame for CustomerFrame {
    fn is_unknown(&self) -> bool {
        matches!(self, CustomerFrame::Unknown)
    }
}

impl RoleFrame for AgentFrame {
    fn is_unknown(&self) -> bool {
        matches!(self, AgentFrame::Unknown)
    }
}

impl RoleFrame for PartnerFrame {
    fn is_unknown(&self) -> bool {
        matches!(self, PartnerFrame::Unknown)
    }
}

/// Reads a frame as one of a role's events; the `ref` survives a refusal.
fn frame<F: RoleFrame>(text: &str) -> (Option<String>, Result<F, AppError>) {
    let (reference, event, data) = match envelope(text) {
        Ok(parts) => parts,
        Err((reference, error)) => return (reference, Err(error)),
    };
    let parsed = match serde_json::from_value::<F>(serde_json::json!({ "event": event, "data": data })) {
        Ok(frame) if frame.is_unknown() => Err(unknown(&event)),
        Ok(frame) => Ok(frame),
        // An event the role does not have carries data its catch-all cannot
        // hold; read the event alone to tell that from bad data.
        Err(error) => match serde_json::from_value::<F>(serde_json::json!({ "event": event })) {
            Ok(frame) if frame.is_unknown() => Err(unknown(&event)),
            _ => Err(AppError::new(ErrorCode::InvalidPayload, format!("invalid data for {event}: {error}"))),
        },
    };
    (reference, parsed)
}

fn unknown(event: &str) -> AppError {
    AppError::new(
        ErrorCode::UnknownEvent,
        format!("unknown event `{event}` for this socket; docs/PROTOCOL.md lists the events each socket accepts"),
    )
}

fn send_message(send: SendMessageData) -> Result<(Uuid, SessionRequest), AppError> {
    let content = Content::parse(send.content)?;
    let client_msg_id = client_msg_id(send.client_msg_id)?;
    if send.attachments.len() > MAX_ATTACHMENTS {
        return Err(AppError::new(
            ErrorCode::InvalidPayload,
            format!("a message may carry at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    Ok((send.session_id, SessionRequest::Send { content, client_msg_id, attachments: send.attachments }))
}

fn mark_read(mark: MarkRead) -> Result<(Uuid, SessionRequest), AppError> {
    if mark.up_to_seq < 0 {
        return Err(AppError::new(ErrorCode::InvalidPayload, "upToSeq must not be negative"));
    }
    Ok((mark.session_id, SessionRequest::MarkRead { up_to_seq: mark.up_to_seq }))
}

/// True when a NUL character hides anywhere in `value`, keys included:
/// PostgreSQL stores none in text or jsonb.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// The one check of a new chat's details, for the socket and for REST.
pub fn start_chat(start: StartChat) -> Result<StartChat, AppError> {
    let bot_context = optional_text("botContext", start.bot_context, BOT_CONTEXT_MAX_CHARS)?;
    if let Some(metadata) = &start.metadata {
        if serde_json::to_vec(metadata).map(|bytes| bytes.len()).unwrap_or(usize::MAX) > METADATA_MAX_BYTES {
            return Err(AppError::new(
                ErrorCode::InvalidPayload,
                format!("metadata must be at most {METADATA_MAX_BYTES} bytes of JSON"),
            ));
        }
        if metadata.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)) {
            return Err(AppError::new(ErrorCode::InvalidPayload, "metadata must not contain NUL characters"));
        }
    }
    let team = optional_text("team", start.team, 60)?;
    Ok(StartChat { bot_context, team, ..start })
}

impl CustomerRequest {
    pub fn parse(text: &str) -> Inbound<CustomerRequest> {
        let (reference, parsed) = frame::<CustomerFrame>(text);
        let request = parsed.and_then(|frame| {
            let in_session = |(session_id, request)| CustomerRequest::Session { session_id, request };
            match frame {
                CustomerFrame::StartChat(start) => start_chat(start).map(CustomerRequest::StartChat),
                CustomerFrame::SendMessage(send) => send_message(send).map(in_session),
                CustomerFrame::RequestAgent(request) => {
                    let reason = optional_text("reason", request.reason, REASON_MAX_CHARS)?;
                    Ok(in_session((request.session_id, SessionRequest::RequestAgent { reason })))
                }
                CustomerFrame::Typing(target) => Ok(in_session((target.session_id, SessionRequest::Typing))),
                CustomerFrame::StopTyping(target) => Ok(in_session((target.session_id, SessionRequest::StopTyping))),
                CustomerFrame::MarkRead(mark) => mark_read(mark).map(in_session),
                CustomerFrame::Resume(resume) => {
                    let after_seq = resume.after_seq.unwrap_or(0);
                    if after_seq < 0 {
                        return Err(AppError::new(ErrorCode::InvalidPayload, "afterSeq must not be negative"));
                    }
                    Ok(in_session((resume.session_id, SessionRequest::Resume { after_seq })))
                }
                CustomerFrame::EndChat(target) => Ok(in_session((target.session_id, SessionRequest::End))),
                CustomerFrame::LeaveMessage(form) => {
                    let request = SessionRequest::LeaveMessage {
                        email: email_address(form.email)?,
                        content: Content::parse(form.content)?,
                        client_msg_id: client_msg_id(form.client_msg_id)?,
                    };
                    Ok(in_session((form.session_id, request)))
                }
                // `frame` already refused it; kept total rather than panicking.
                CustomerFrame::Unknown => Err(unknown("?")),
            }
        });
        Inbound { reference, request }
    }
}

impl AgentRequest {
    pub fn parse(text: &str) -> Inbound<AgentRequest> {
        let (reference, parsed) = frame::<AgentFrame>(text);
        let request = parsed.and_then(|frame| {
            let in_session = |(session_id, request)| AgentRequest::Session { session_id, request };
            match frame {
                AgentFrame::Join(join) => {
                    if join.max_concurrent.is_some_and(|max| !(1..=100).contains(&max)) {
                        return Err(AppError::new(ErrorCode::InvalidPayload, "maxConcurrent must be from 1 to 100"));
                    }
                    Ok(AgentRequest::Join(join))
                }
                AgentFrame::SetStatus(status) => Ok(AgentRequest::SetStatus(status)),
                AgentFrame::PickupSession(target) => Ok(AgentRequest::PickupSession { session_id: target.session_id }),
                AgentFrame::SendMessage(send) => send_message(send).map(in_session),
                AgentFrame::SendNote(note) => {
                    let request = SessionRequest::Note {
                        content: Content::parse(note.content)?,
                        client_msg_id: client_msg_id(note.client_msg_id)?,
                    };
                    Ok(in_session((note.session_id, request)))
                }
                AgentFrame::Typing(target) => Ok(in_session((target.session_id, SessionRequest::Typing))),
                AgentFrame::StopTyping(target) => Ok(in_session((target.session_id, SessionRequest::StopTyping))),
                AgentFrame::MarkRead(mark) => mark_read(mark).map(in_session),
                AgentFrame::Transfer(transfer) => {
                    let reason = optional_text("reason", transfer.reason, REASON_MAX_CHARS)?;
                    let request = SessionRequest::Transfer {
                        to_agent_id: transfer.to_agent_id,
                        to_team_id: transfer.to_team_id,
                        priority: transfer.priority,
                        reason,
                    };
                    Ok(in_session((transfer.session_id, request)))
                }
                AgentFrame::CloseSession(close) => {
                    let notes = optional_text("notes", close.notes, NOTES_MAX_CHARS)?;
                    Ok(in_session((close.session_id, SessionRequest::Close { resolved: close.resolved, notes })))
                }
                AgentFrame::InvitePartner(invite) => {
                    let request = SessionRequest::InvitePartner {
                        partner_org_id: invite.partner_org_id,
                        with_history: invite.with_history,
                    };
                    Ok(in_session((invite.session_id, request)))
                }
                AgentFrame::RemovePartner(remove) => Ok(in_session((
                    remove.session_id,
                    SessionRequest::RemovePartner { partner_org_id: remove.partner_org_id },
                ))),
                AgentFrame::GetStats(ask) => {
                    Ok(AgentRequest::Admin(AdminRequest::Stats { subscribe: ask.unwrap_or_default().subscribe }))
                }
                AgentFrame::DebugQueue(Some(NoData {}) | None) => Ok(AgentRequest::Admin(AdminRequest::Queue)),
                AgentFrame::HealthCheck(Some(NoData {}) | None) => Ok(AgentRequest::Admin(AdminRequest::Health)),
                AgentFrame::Unknown => Err(unknown("?")),
            }
        });
        Inbound { reference, request }
    }
}

impl PartnerRequest {
    pub fn parse(text: &str) -> Inbound<PartnerRequest> {
        let (reference, parsed) = frame::<PartnerFrame>(text);
        let request = parsed.and_then(|frame| {
            let (session_id, request) = match frame {
                PartnerFrame::JoinChat(join) => {
                    let after_seq = join.after_seq.unwrap_or(0);
                    if after_seq < 0 {
                        return Err(AppError::new(ErrorCode::InvalidPayload, "afterSeq must not be negative"));
                    }
                    (join.session_id, SessionRequest::Resume { after_seq })
                }
                PartnerFrame::SendMessage(send) => send_message(send)?,
                PartnerFrame::Typing(target) => (target.session_id, SessionRequest::Typing),
                PartnerFrame::StopTyping(target) => (target.session_id, SessionRequest::StopTyping),
                PartnerFrame::MarkRead(mark) => mark_read(mark)?,
                PartnerFrame::Unknown => return Err(unknown("?")),
            };
            Ok(PartnerRequest { session_id, request })
        });
        Inbound { reference, request }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_socket_knows_only_the_partner_events() {
        let session = Uuid::new_v4();
        let join = format!(r#"{{"event":"partner:join_chat","data":{{"sessionId":"{session}"}}}}"#);
        assert!(matches!(
            PartnerRequest::parse(&join).request,
            Ok(PartnerRequest { request: SessionRequest::Resume { after_seq: 0 }, .. })
        ));
        let agent_event =
            format!(r#"{{"event":"agent:close_session","data":{{"sessionId":"{session}","resolved":true}}}}"#);
        assert_eq!(code(PartnerRequest::parse(&agent_event)), ErrorCode::UnknownEvent);
        assert_eq!(code(PartnerRequest::parse(r#"{"event":"customer:start_chat"}"#)), ErrorCode::UnknownEvent);
    }

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
    fn admin_events_parse_with_or_without_data_and_refuse_unknown_fields() {
        let admin = |text: &str| match AgentRequest::parse(text).request {
            Ok(AgentRequest::Admin(request)) => Some(request),
            _ => None,
        };
        assert_eq!(admin(r#"{"event":"admin:get_stats"}"#), Some(AdminRequest::Stats { subscribe: false }));
        assert_eq!(
            admin(r#"{"event":"admin:get_stats","data":{"subscribe":true}}"#),
            Some(AdminRequest::Stats { subscribe: true })
        );
        assert_eq!(admin(r#"{"event":"admin:debug_queue","data":{}}"#), Some(AdminRequest::Queue));
        assert_eq!(admin(r#"{"event":"admin:health_check","data":null}"#), Some(AdminRequest::Health));
        assert_eq!(
            code(AgentRequest::parse(r#"{"event":"admin:get_stats","data":{"x":1}}"#)),
            ErrorCode::InvalidPayload
        );
        assert_eq!(code(CustomerRequest::parse(r#"{"event":"admin:get_stats"}"#)), ErrorCode::UnknownEvent);
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

    #[test]
    fn an_offline_message_needs_an_address_that_could_be_answered() {
        for good in ["ann@example.com", " ann.lee+shop@mail.example.co.uk ", "a@b.c"] {
            assert!(email_address(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "ann", "ann@", "@example.com", "ann lee@example.com", "Ann <ann@example.com>"] {
            assert_eq!(
                email_address(bad.to_owned()).err().map(|error| error.code),
                Some(ErrorCode::InvalidEmail),
                "{bad}"
            );
        }
        let text = format!(
            r#"{{"event":"customer:leave_message","data":{{"sessionId":"{}","email":"nope","content":"hi","clientMsgId":"c"}}}}"#,
            Uuid::new_v4()
        );
        assert_eq!(code(CustomerRequest::parse(&text)), ErrorCode::InvalidEmail);
    }
}
