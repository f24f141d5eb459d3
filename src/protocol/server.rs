//! Outbound events. Each is serialised once into a shared `Frame`, however
//! many sockets it goes to.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::models::{AttachmentMeta, ChatMessage, ChatSession};
use crate::db::queries::messages::Shown;
use crate::domain::{CloseReason, Presence, Priority, Role, SenderType, SessionStatus};
use crate::error::{AppError, ErrorCode};

/// One serialised text frame, shared by every socket it is sent to.
pub type Frame = Arc<str>;

/// A message as both sides see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub sender: SenderType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The sender's own id for the message, so their client can match its copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub content: String,
    pub message_type: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentView>,
    /// The draft this bot message was streamed as (`message:delta`); it replaces the draft.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_id: Option<Uuid>,
    /// What the bot understood and how it answered: shown to staff, never to the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<Box<BotDetails>>,
}

/// A bot message's understanding and processing record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BotDetails {
    pub intent: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub entities: Option<serde_json::Value>,
    pub confidence: Option<f32>,
    /// Tool calls and their results, the agents asked and how long each took, a fallback and why.
    #[schema(value_type = Option<Object>)]
    pub processing: Option<serde_json::Value>,
}

/// A file carried by a message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentView {
    pub attachment_id: Uuid,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Where to fetch it, with the same token as the API.
    pub url: String,
}

impl From<&AttachmentMeta> for AttachmentView {
    fn from(file: &AttachmentMeta) -> Self {
        AttachmentView {
            attachment_id: file.id,
            file_name: file.file_name.clone(),
            content_type: file.content_type.clone(),
            size_bytes: file.size_bytes,
            url: format!("/api/attachments/{}", file.id),
        }
    }
}

impl MessageView {
    pub fn new(message: &ChatMessage, sender_name: Option<String>) -> Self {
        MessageView {
            session_id: message.session_id,
            message_id: message.id,
            seq: message.seq,
            sender: message.sender_type,
            sender_name,
            client_msg_id: message.client_msg_id.clone(),
            content: message.content.clone(),
            message_type: message.message_type.clone(),
            created_at: message.created_at,
            attachments: Vec::new(),
            draft_id: None,
            bot: (message.sender_type == SenderType::Bot).then(|| {
                Box::new(BotDetails {
                    intent: message.intent.clone(),
                    entities: message.entities.clone(),
                    confidence: message.confidence,
                    processing: message.processing.clone(),
                })
            }),
        }
    }

    /// What `role` may see of the message: the bot's details are for staff.
    pub fn for_role(mut self, role: Role) -> Self {
        if matches!(role, Role::Customer | Role::Partner) {
            self.bot = None;
        }
        self
    }

    pub fn with_attachments(mut self, files: &[AttachmentMeta]) -> Self {
        self.attachments = files.iter().map(AttachmentView::from).collect();
        self
    }

    /// A stored message as shown: the bot by its name, the system by none.
    pub fn shown(shown: &Shown, bot_name: &str) -> Self {
        let name = match shown.message.sender_type {
            SenderType::Bot => Some(bot_name.to_owned()),
            SenderType::System => None,
            SenderType::Customer | SenderType::Agent | SenderType::Note | SenderType::Partner => {
                shown.sender_name.clone()
            }
        };
        MessageView::new(&shown.message, name).with_attachments(&shown.attachments)
    }
}

/// A session as its participants see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: Uuid,
    pub status: SessionStatus,
    pub priority: Priority,
    pub customer_id: Uuid,
    pub customer_name: String,
    pub assigned_agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub title: Option<String>,
    pub category: Option<String>,
    pub bot_context: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub is_resolved: bool,
    pub ended_reason: Option<String>,
    pub last_seq: i64,
    pub message_count: i32,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The note given when the chat was closed or resolved: shown to staff, never to the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The team the chat is routed to, if any.
    pub team_id: Option<Uuid>,
    /// For an offline request (and the chat it becomes): the address the customer left to be answered at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_email: Option<String>,
    /// The chat's labels, for staff, where a listing read them (`GET /api/sessions`, `GET /api/sessions/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The partner organisations in the chat, where the session's actor tells
    /// (`session:assigned`, `session:resumed`, `session:updated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partners: Vec<ChatPartnerView>,
}

/// A partner organisation in a chat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatPartnerView {
    pub partner_org_id: Uuid,
    pub name: String,
    /// Whether its members were given the messages before the invitation.
    pub with_history: bool,
}

impl SessionView {
    /// What `role` may see of a session: staff also see the closing note.
    pub fn for_role(session: &ChatSession, customer_name: &str, agent_name: Option<&str>, role: Role) -> Self {
        SessionView {
            notes: if matches!(role, Role::Customer | Role::Partner) { None } else { session.resolution_notes.clone() },
            ..SessionView::new(session, customer_name, agent_name)
        }
    }

    pub fn new(session: &ChatSession, customer_name: &str, agent_name: Option<&str>) -> Self {
        SessionView {
            session_id: session.id,
            status: session.status,
            priority: session.priority,
            customer_id: session.customer_id,
            customer_name: customer_name.to_owned(),
            assigned_agent_id: session.assigned_agent_id,
            agent_name: agent_name.map(str::to_owned),
            title: session.title.clone(),
            category: session.category.clone(),
            bot_context: session.bot_context.clone(),
            metadata: session.metadata.clone(),
            is_resolved: session.is_resolved,
            ended_reason: session.ended_reason.clone(),
            last_seq: session.last_seq,
            message_count: session.message_count,
            created_at: session.created_at,
            closed_at: session.closed_at,
            notes: None,
            team_id: session.team_id,
            offline_email: session.offline_email.clone(),
            labels: Vec::new(),
            partners: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    pub agent_id: Uuid,
    pub name: String,
    pub status: Presence,
    pub max_concurrent: i32,
    pub active_sessions: Vec<Uuid>,
}

/// One waiting session on the agents' queue board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    pub session_id: Uuid,
    pub priority: Priority,
    pub reason: Option<String>,
    pub waiting_since: DateTime<Utc>,
    pub position: usize,
    pub customer_name: String,
    pub preview: Option<String>,
    /// The team the chat waits for, if any.
    pub team_id: Option<Uuid>,
    /// `waiting` (a live chat) or `offline` (a message left while nobody was
    /// there: picked up by hand, never given out automatically).
    pub status: SessionStatus,
}

/// Why the widget offers to leave a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// Outside the chat's business hours.
    Closed,
    /// No agent has been online for `OFFLINE_AFTER_NO_AGENT_MS` while the chat waited.
    NoAgent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Everything the server sends. Replies carry the request's `ref`; pushes carry none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
pub enum ServerEvent {
    #[serde(rename = "session:created", rename_all = "camelCase")]
    SessionCreated { session_id: Uuid, status: SessionStatus, session: SessionView },
    #[serde(rename = "message:sent", rename_all = "camelCase")]
    MessageSent { session_id: Uuid, message_id: Uuid, seq: i64, client_msg_id: String, created_at: DateTime<Utc> },
    #[serde(rename = "message:received")]
    MessageReceived(MessageView),
    /// More of a bot answer being generated; `text` follows what came before.
    #[serde(rename = "message:delta", rename_all = "camelCase")]
    MessageDelta { session_id: Uuid, draft_id: Uuid, text: String },
    /// A draft that will not be committed (the chat left the bot meanwhile).
    #[serde(rename = "message:draft_discarded", rename_all = "camelCase")]
    DraftDiscarded { session_id: Uuid, draft_id: Uuid },
    #[serde(rename = "status:changed", rename_all = "camelCase")]
    StatusChanged {
        session_id: Uuid,
        status: SessionStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_position: Option<usize>,
    },
    #[serde(rename = "queue:position", rename_all = "camelCase")]
    QueuePosition { session_id: Uuid, position: usize },
    /// Admins: `GET /api/admin/stats`'s body, as a reply (`admin:stats`) or pushed (`stats:update`).
    #[serde(rename = "admin:stats")]
    AdminStats(Box<serde_json::Value>),
    #[serde(rename = "stats:update")]
    StatsUpdate(Box<serde_json::Value>),
    /// Admins: `GET /api/admin/queue`'s body.
    #[serde(rename = "admin:queue")]
    AdminQueue(Box<serde_json::Value>),
    /// Admins: `GET /health`'s body.
    #[serde(rename = "admin:health")]
    AdminHealth(Box<serde_json::Value>),
    #[serde(rename = "user_typing", rename_all = "camelCase")]
    UserTyping { session_id: Uuid, role: Role, name: String },
    #[serde(rename = "typing_stopped", rename_all = "camelCase")]
    TypingStopped { session_id: Uuid, role: Role, name: String },
    #[serde(rename = "messages_read", rename_all = "camelCase")]
    MessagesRead { session_id: Uuid, role: Role, up_to_seq: i64 },
    #[serde(rename = "session:resumed", rename_all = "camelCase")]
    SessionResumed { session: SessionView, messages: Vec<MessageView> },
    #[serde(rename = "session:closed", rename_all = "camelCase")]
    SessionClosed { session_id: Uuid, reason: CloseReason },
    /// Nobody can answer now: the widget offers to leave a message (`customer:leave_message`).
    #[serde(rename = "session:offline", rename_all = "camelCase")]
    SessionOffline {
        session_id: Uuid,
        reason: OfflineReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        opens_at: Option<DateTime<Utc>>,
    },
    #[serde(rename = "session:assigned", rename_all = "camelCase")]
    SessionAssigned { session_id: Uuid, session: SessionView, messages: Vec<MessageView> },
    #[serde(rename = "session:updated", rename_all = "camelCase")]
    SessionUpdated { session: SessionView },
    #[serde(rename = "session:released", rename_all = "camelCase")]
    SessionReleased { session_id: Uuid, reason: String },
    #[serde(rename = "session:transferred", rename_all = "camelCase")]
    SessionTransferred {
        session_id: Uuid,
        status: SessionStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        to_agent_id: Option<Uuid>,
    },
    #[serde(rename = "agent:joined", rename_all = "camelCase")]
    AgentJoined { agent_id: Uuid, agent: AgentView },
    #[serde(rename = "agent:status", rename_all = "camelCase")]
    AgentStatus { agent_id: Uuid, status: Presence },
    /// An admin changed the agent's name or capacity.
    #[serde(rename = "agent:updated", rename_all = "camelCase")]
    AgentUpdated { agent: AgentView },
    /// The session's messages were cleared (hidden) over REST.
    #[serde(rename = "messages:cleared", rename_all = "camelCase")]
    MessagesCleared { session_id: Uuid },
    #[serde(rename = "queue:update", rename_all = "camelCase")]
    QueueUpdate { sessions: Vec<QueueItem> },
    /// What changed on the queue board since the last frame: sessions that
    /// joined it or changed, and sessions that left it.
    #[serde(rename = "queue:changed", rename_all = "camelCase")]
    QueueChanged { upserted: Vec<QueueItem>, removed: Vec<Uuid> },
    /// A partner organisation joined the chat (to everyone in it, and the inviter's reply).
    #[serde(rename = "partner:joined", rename_all = "camelCase")]
    PartnerJoined { session_id: Uuid, partner_org_id: Uuid, name: String, with_history: bool },
    /// A partner organisation was removed from the chat.
    #[serde(rename = "partner:left", rename_all = "camelCase")]
    PartnerLeft { session_id: Uuid, partner_org_id: Uuid, name: String },
    /// To a partner organisation's sockets: it was invited into a chat.
    #[serde(rename = "partner:invited", rename_all = "camelCase")]
    PartnerInvited { session_id: Uuid, with_history: bool },
    /// To a partner organisation's sockets: it no longer has this chat.
    #[serde(rename = "partner:removed", rename_all = "camelCase")]
    PartnerRemoved { session_id: Uuid },
    /// The reply to a request that has no event of its own (typing, mark_read).
    #[serde(rename = "ack", rename_all = "camelCase")]
    Ack { event: Cow<'static, str> },
    #[serde(rename = "error")]
    Error(ErrorData),
    /// The answer to `POST /api/chat/message`; never sent on a socket.
    #[serde(rename = "chat:answer", rename_all = "camelCase")]
    ChatAnswer {
        session_id: Uuid,
        message: MessageView,
        response: Option<MessageView>,
        handled_by: Cow<'static, str>,
        confidence: Option<f32>,
    },
}

impl ServerEvent {
    pub fn error(error: &AppError) -> Self {
        ServerEvent::Error(ErrorData {
            code: error.code,
            message: error.message.clone(),
            retry_after: error.retry_after,
        })
    }

    /// Serialises the event, with the request's `ref` when it is a reply.
    pub fn frame(&self, reference: Option<&str>) -> Frame {
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
            reference: Option<&'a str>,
            #[serde(flatten)]
            event: &'a ServerEvent,
        }
        match serde_json::to_string(&Envelope { reference, event: self }) {
            Ok(text) => text.into(),
            Err(error) => {
                log::error!("cannot serialise an event: {error}");
                r#"{"event":"error","data":{"code":"internal","message":"internal error"}}"#.into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_the_ref_and_pushes_do_not() {
        let event = ServerEvent::QueuePosition { session_id: Uuid::nil(), position: 2 };
        let reply: serde_json::Value = serde_json::from_str(&event.frame(Some("r9"))).expect("json");
        assert_eq!(reply["event"], "queue:position");
        assert_eq!(reply["ref"], "r9");
        assert_eq!(reply["data"]["position"], 2);
        let push: serde_json::Value = serde_json::from_str(&event.frame(None)).expect("json");
        assert!(push.get("ref").is_none());
    }

    /// Events travel between nodes as JSON: what a node reads back is what it wrote.
    #[test]
    fn events_read_back_as_they_were_written() {
        let message = MessageView {
            session_id: Uuid::new_v4(),
            message_id: Uuid::new_v4(),
            seq: 3,
            sender: SenderType::Customer,
            sender_name: None,
            client_msg_id: None,
            content: "hello".to_owned(),
            message_type: "text".to_owned(),
            created_at: Utc::now(),
            attachments: Vec::new(),
            draft_id: None,
            bot: None,
        };
        let events = [
            ServerEvent::MessageReceived(message.clone()),
            ServerEvent::ChatAnswer {
                session_id: message.session_id,
                message: message.clone(),
                response: None,
                handled_by: Cow::Borrowed("bot"),
                confidence: None,
            },
            ServerEvent::Ack { event: Cow::Borrowed("typing") },
            ServerEvent::StatusChanged {
                session_id: message.session_id,
                status: SessionStatus::Waiting,
                agent_name: None,
                queue_position: Some(2),
            },
            ServerEvent::error(&AppError::new(ErrorCode::NotWaiting, "taken")),
        ];
        for event in events {
            let written = serde_json::to_value(&event).expect("written");
            let read: ServerEvent = serde_json::from_value(written.clone()).expect("read back");
            assert_eq!(serde_json::to_value(&read).expect("written again"), written);
        }
    }
}
