//! The rules of one chat session as plain state, apart from any I/O: who may
//! do what, what the session does after each event, and what it becomes.
//! The `SessionActor` asks the core before it acts and tells it what
//! happened; the core answers with decisions the actor carries out. Every
//! transition is tested below, without a server or a database.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::actors::messages::Caller;
use crate::actors::MinuteWindow;
use crate::bots::Line;
use crate::db::models::{ChatMessage, ChatSession};
use crate::db::queries::partners::Invited;
use crate::domain::{Role, SenderType, SessionStatus};
use crate::error::{AppError, ErrorCode};

/// How many misunderstood messages in a row send the customer to a person.
pub const BOT_MISSES_BEFORE_HANDOFF: u32 = 2;
/// Customer messages that wait while the bot is still answering an earlier one.
pub const BOT_BACKLOG: usize = 5;
/// A typing indicator that goes on is repeated at most this often.
pub const TYPING_REPEAT: Duration = Duration::from_secs(3);

/// Partner organisations one chat may have at once.
pub const MAX_PARTNERS_PER_CHAT: usize = 5;

/// Earlier messages kept for the bot's context, at most this many…
pub const HISTORY_LINES: usize = 40;
/// …and this many characters in all.
pub const HISTORY_CHARS: usize = 16_000;

/// Why a chat goes to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffReason {
    /// The customer asked the bot, in words, for a person.
    CustomerAsked,
    /// The bot did not understand twice in a row.
    BotCouldNotHelp,
    /// The bot's model or agents failed and the fallback is a person.
    BotUnavailable,
    /// The bot chose to (a model's `transfer_to_human`, a remote agent), for this reason.
    BotDecided(String),
}

impl HandoffReason {
    pub fn as_str(&self) -> &str {
        match self {
            HandoffReason::CustomerAsked => "customer_asked",
            HandoffReason::BotCouldNotHelp => "bot_could_not_help",
            HandoffReason::BotUnavailable => "bot_unavailable",
            HandoffReason::BotDecided(reason) => reason,
        }
    }
}

/// What the session does once a new message is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterMessage {
    /// Ask the bot about this text now.
    AskBot(String),
    /// The bot is busy with an earlier message; this one waits its turn.
    BotBusy,
    /// Show the waiting customer's latest words on the queue board.
    Preview(String),
    /// The agent's first reply: record the first response time.
    FirstResponse,
    Nothing,
}

/// What becomes of the bot's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotAnswer {
    /// The chat left the bot meanwhile (a person was asked for, it closed): drop the answer.
    Stale,
    /// Post the answer; then hand off if `handoff`, and ask the bot about `next` if a message waited.
    Post { handoff: Option<HandoffReason>, next: Option<String> },
}

/// What `customer:request_agent` does in the session's present status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRequest {
    /// Put the chat in the queue.
    Enqueue,
    /// Already waiting: tell the customer where.
    TellPosition,
    /// With a person already (or closed): say so, change nothing.
    AsIs(SessionStatus),
}

/// Who a transfer hands the chat on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub from_agent: Uuid,
}

pub struct SessionCore {
    row: ChatSession,
    /// The agent handing the chat on: from their transfer request on, they are refused.
    transferring_from: Option<Uuid>,
    bot_misses: u32,
    bot_thinking: bool,
    bot_backlog: VecDeque<String>,
    customer_window: MinuteWindow,
    staff_window: MinuteWindow,
    partner_window: MinuteWindow,
    /// The partner organisations in the chat now, by id.
    partners: HashMap<Uuid, Invited>,
    /// Organisations whose invitation is being stored: they count toward the limit.
    inviting: std::collections::HashSet<Uuid>,
    /// When each person's typing indicator was last passed on.
    typing: HashMap<Uuid, Instant>,
    agent_has_replied: bool,
    /// Since when the customer has waited for their agent: the assignment, or
    /// their latest message with no answer after it.
    unanswered_since: Option<Instant>,
    last_customer_text: Option<String>,
    /// How far each participant has read, as far as this session knows.
    read_up_to: HashMap<Uuid, i64>,
    /// The chat's latest words while the bot has it, for the bot's context:
    /// kept here so a turn never reads the history back from the database.
    history: VecDeque<Line>,
    history_chars: usize,
    /// Only a bot that reads the chat so far (`Bot::reads_history`) has it kept.
    keeps_history: bool,
}

impl SessionCore {
    pub fn new(row: ChatSession, messages_per_minute: u32) -> Self {
        SessionCore {
            row,
            transferring_from: None,
            bot_misses: 0,
            bot_thinking: false,
            bot_backlog: VecDeque::new(),
            customer_window: MinuteWindow::new(messages_per_minute),
            staff_window: MinuteWindow::new(messages_per_minute),
            partner_window: MinuteWindow::new(messages_per_minute),
            partners: HashMap::new(),
            inviting: Default::default(),
            typing: HashMap::new(),
            agent_has_replied: false,
            unanswered_since: None,
            last_customer_text: None,
            read_up_to: HashMap::new(),
            history: VecDeque::new(),
            history_chars: 0,
            keeps_history: true,
        }
    }

    /// Whether the chat's lines are kept for the bot's context.
    pub fn keeping_history(mut self, keep: bool) -> Self {
        self.keeps_history = keep;
        self
    }

    /// The session as stored, with the live status and agent.
    pub fn row(&self) -> &ChatSession {
        &self.row
    }

    pub fn status(&self) -> SessionStatus {
        self.row.status
    }

    pub fn assigned_agent(&self) -> Option<Uuid> {
        self.row.assigned_agent_id
    }

    pub fn last_customer_text(&self) -> Option<&str> {
        self.last_customer_text.as_deref()
    }

    /// The stored row changed (a close, an edit): it replaces ours, status included.
    pub fn replace_row(&mut self, row: ChatSession) {
        self.row = row;
    }

    // ---- who may ----

    /// Customers reach their own session, agents the one assigned to them
    /// (unless they are handing it on), admins any, partners one their
    /// organisation is invited into.
    pub fn check_access(&self, caller: &Caller) -> Result<(), AppError> {
        let allowed = match caller.role {
            Role::Customer => self.row.customer_id == caller.user_id,
            Role::Agent => {
                self.row.assigned_agent_id == Some(caller.user_id) && self.transferring_from != Some(caller.user_id)
            }
            Role::Admin => true,
            Role::Partner => self.partner_after(caller).is_some(),
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::new(ErrorCode::Forbidden, "this session is not yours"))
        }
    }

    /// Access, and the session is not closed.
    pub fn check_open(&self, caller: &Caller) -> Result<(), AppError> {
        self.check_access(caller)?;
        if self.row.status == SessionStatus::Closed {
            return Err(AppError::new(ErrorCode::SessionClosed, "this chat has ended"));
        }
        Ok(())
    }

    /// May the caller send a message now? Customers and staff have their
    /// own allowances, so a customer's flood never silences the agent.
    pub fn admit_message(&mut self, caller: &Caller) -> Result<SenderType, AppError> {
        self.check_open(caller)?;
        let (window, sender) = match caller.role {
            Role::Customer => (&mut self.customer_window, SenderType::Customer),
            Role::Agent | Role::Admin => (&mut self.staff_window, SenderType::Agent),
            Role::Partner => (&mut self.partner_window, SenderType::Partner),
        };
        window.admit().map_err(AppError::rate_limited)?;
        Ok(sender)
    }

    // ---- partners ----

    /// The seq a partner caller sees messages after, if their organisation is in the chat.
    pub fn partner_after(&self, caller: &Caller) -> Option<i64> {
        let org = caller.partner_org_id.filter(|_| caller.role == Role::Partner)?;
        self.partners.get(&org).map(|invited| invited.visible_after_seq)
    }

    pub fn partners(&self) -> impl Iterator<Item = &Invited> {
        self.partners.values()
    }

    /// The organisations in the chat, as stored when the session was loaded.
    pub fn set_partners(&mut self, partners: Vec<Invited>) {
        self.partners = partners.into_iter().map(|invited| (invited.partner_org_id, invited)).collect();
    }

    /// May the caller invite organisation `org` now? The chat's agent or an
    /// admin may, into an open chat, up to `MAX_PARTNERS_PER_CHAT`. From
    /// here until `invited` or `invite_failed`, the organisation counts.
    pub fn begin_invite(&mut self, caller: &Caller, org: Uuid) -> Result<(), AppError> {
        if !matches!(caller.role, Role::Agent | Role::Admin) {
            return Err(AppError::new(ErrorCode::Forbidden, "only the chat's agent or an admin invites partners"));
        }
        self.check_open(caller)?;
        if self.partners.contains_key(&org) || self.inviting.contains(&org) {
            return Err(AppError::new(ErrorCode::Conflict, "that partner is already in this chat"));
        }
        if self.partners.len() + self.inviting.len() >= MAX_PARTNERS_PER_CHAT {
            return Err(AppError::new(
                ErrorCode::LimitReached,
                format!("a chat may have at most {MAX_PARTNERS_PER_CHAT} partners; remove one first"),
            ));
        }
        self.inviting.insert(org);
        Ok(())
    }

    pub fn invited(&mut self, invited: Invited) {
        self.inviting.remove(&invited.partner_org_id);
        self.partners.insert(invited.partner_org_id, invited);
    }

    pub fn invite_failed(&mut self, org: Uuid) {
        self.inviting.remove(&org);
    }

    /// May the caller remove organisation `org`? The same people who invite, from a chat open or closed.
    pub fn check_remove(&self, caller: &Caller, org: Uuid) -> Result<&Invited, AppError> {
        if !matches!(caller.role, Role::Agent | Role::Admin) {
            return Err(AppError::new(ErrorCode::Forbidden, "only the chat's agent or an admin removes partners"));
        }
        self.check_access(caller)?;
        self.partners.get(&org).ok_or_else(|| AppError::not_found("partner in this chat"))
    }

    pub fn partner_removed(&mut self, org: Uuid) -> Option<Invited> {
        self.partners.remove(&org)
    }

    // ---- messages and the bot ----

    /// Counts a stored message into the session (its seq and count).
    pub fn remember(&mut self, message: &ChatMessage) {
        if message.seq > self.row.last_seq {
            self.row.message_count += (message.seq - self.row.last_seq) as i32;
            self.row.last_seq = message.seq;
        }
        self.row.last_activity = message.created_at;
        let spoken = matches!(message.sender_type, SenderType::Customer | SenderType::Bot);
        if self.keeps_history && self.row.status == SessionStatus::Bot && spoken && message.message_type == "text" {
            self.remember_line(Line { sender: message.sender_type, content: message.content.clone() });
        }
    }

    /// Keeps a line of the chat for the bot, dropping the oldest beyond the bounds.
    pub fn remember_line(&mut self, line: Line) {
        self.history_chars += line.content.len();
        self.history.push_back(line);
        while self.history.len() > HISTORY_LINES || (self.history_chars > HISTORY_CHARS && self.history.len() > 1) {
            if let Some(old) = self.history.pop_front() {
                self.history_chars -= old.content.len();
            }
        }
    }

    /// What was said before the customer's `text` (its latest occurrence), oldest first.
    pub fn history_before(&self, text: &str) -> Vec<Line> {
        let asked = self
            .history
            .iter()
            .rposition(|line| line.sender == SenderType::Customer && line.content == text)
            .unwrap_or(self.history.len());
        self.history.iter().take(asked).cloned().collect()
    }

    pub fn messages_cleared(&mut self) {
        self.row.message_count = 0;
    }

    /// A new message from a person is stored; what follows from it.
    pub fn message_stored(&mut self, sender: SenderType, text: &str) -> AfterMessage {
        match (sender, self.row.status) {
            (SenderType::Customer, status) => {
                self.last_customer_text = Some(text.to_owned());
                if status == SessionStatus::Assigned {
                    self.unanswered_since = Some(Instant::now());
                }
                match status {
                    SessionStatus::Bot if self.bot_thinking => {
                        if self.bot_backlog.len() == BOT_BACKLOG {
                            self.bot_backlog.pop_front();
                        }
                        self.bot_backlog.push_back(text.to_owned());
                        AfterMessage::BotBusy
                    }
                    SessionStatus::Bot => {
                        self.bot_thinking = true;
                        AfterMessage::AskBot(text.to_owned())
                    }
                    SessionStatus::Waiting | SessionStatus::Offline => AfterMessage::Preview(text.to_owned()),
                    _ => AfterMessage::Nothing,
                }
            }
            (SenderType::Agent, _) if !self.agent_has_replied => {
                self.unanswered_since = None;
                self.agent_has_replied = true;
                AfterMessage::FirstResponse
            }
            (SenderType::Agent, _) => {
                self.unanswered_since = None;
                AfterMessage::Nothing
            }
            _ => AfterMessage::Nothing,
        }
    }

    /// The bot answered the customer's earlier message; `handoff` is the bot's own call for a person.
    pub fn bot_answered(&mut self, understood: bool, handoff: Option<HandoffReason>) -> BotAnswer {
        if self.row.status != SessionStatus::Bot {
            self.bot_thinking = false;
            self.bot_backlog.clear();
            return BotAnswer::Stale;
        }
        self.bot_misses = if understood { 0 } else { self.bot_misses + 1 };
        let handoff = if handoff.is_some() {
            handoff
        } else if self.bot_misses >= BOT_MISSES_BEFORE_HANDOFF {
            Some(HandoffReason::BotCouldNotHelp)
        } else {
            None
        };
        let next = if handoff.is_none() { self.bot_backlog.pop_front() } else { None };
        if handoff.is_some() {
            self.bot_backlog.clear();
        }
        self.bot_thinking = next.is_some();
        BotAnswer::Post { handoff, next }
    }

    // ---- the queue and agents ----

    /// What `customer:request_agent` does now.
    pub fn request_agent(&self, caller: &Caller) -> Result<AgentRequest, AppError> {
        self.check_open(caller)?;
        Ok(match self.row.status {
            SessionStatus::Bot => AgentRequest::Enqueue,
            SessionStatus::Waiting => AgentRequest::TellPosition,
            status => AgentRequest::AsIs(status),
        })
    }

    /// The queue took the chat.
    pub fn queued(&mut self) {
        self.row.status = SessionStatus::Waiting;
        self.row.assigned_agent_id = None;
        self.bot_misses = 0;
        self.bot_thinking = false;
        self.bot_backlog.clear();
        self.history.clear();
        self.history_chars = 0;
    }

    /// May the customer leave a message for later (the offline form) now?
    /// Only while nobody is with them: with the bot or waiting in the queue.
    pub fn may_leave_message(&self, caller: &Caller) -> Result<(), AppError> {
        if caller.role != Role::Customer {
            return Err(AppError::new(ErrorCode::Forbidden, "only the customer leaves a message"));
        }
        self.check_open(caller)?;
        match self.row.status {
            SessionStatus::Bot | SessionStatus::Waiting => Ok(()),
            SessionStatus::Offline => {
                Err(AppError::new(ErrorCode::Conflict, "your message is already with us; we'll answer by email"))
            }
            _ => Err(AppError::new(ErrorCode::Conflict, "an agent is with you: write to them here")),
        }
    }

    /// The chat is an offline request now, to be answered at `email`.
    pub fn went_offline(&mut self, email: String) {
        self.queued();
        self.row.status = SessionStatus::Offline;
        self.row.offline_email = Some(email);
    }

    /// Where the agent's answers go by email while the customer is away:
    /// set for a chat that began as an offline request.
    pub fn answered_by_email(&self) -> Option<&str> {
        self.row.offline_email.as_deref()
    }

    /// An agent got the chat; false when it closed meanwhile.
    pub fn assigned(&mut self, agent_id: Uuid) -> bool {
        if self.row.status == SessionStatus::Closed {
            return false;
        }
        self.row.status = SessionStatus::Assigned;
        self.row.assigned_agent_id = Some(agent_id);
        self.unanswered_since = Some(Instant::now());
        true
    }

    /// Since when the customer has waited for an answer from their agent, if they are waiting.
    /// An offline request's customer is away on purpose: nobody waits.
    pub fn unanswered_since(&self) -> Option<Instant> {
        self.unanswered_since.filter(|_| {
            self.row.status == SessionStatus::Assigned
                && self.transferring_from.is_none()
                && self.row.offline_email.is_none()
        })
    }

    /// The customer has waited `timeout` for their agent: the chat is handed
    /// back (as by a transfer, refusing the agent from now). Returns that agent.
    pub fn begin_unanswered_requeue(&mut self, timeout: std::time::Duration) -> Option<Uuid> {
        let since = self.unanswered_since()?;
        let agent = self.row.assigned_agent_id?;
        if since.elapsed() < timeout {
            return None;
        }
        self.transferring_from = Some(agent);
        Some(agent)
    }

    /// Is `agent_id` the agent this chat is with?
    pub fn is_with(&self, agent_id: Uuid) -> bool {
        self.row.status == SessionStatus::Assigned && self.row.assigned_agent_id == Some(agent_id)
    }

    /// The agent's chat went back to the queue without them; false when it was not theirs to lose.
    pub fn requeued(&mut self) -> bool {
        if self.row.status != SessionStatus::Assigned {
            return false;
        }
        self.row.status = SessionStatus::Waiting;
        self.row.assigned_agent_id = None;
        true
    }

    /// An agent (or admin) asks to hand the chat on; from now on the agent is out.
    pub fn begin_transfer(&mut self, caller: &Caller, to_agent: Option<Uuid>) -> Result<Transfer, AppError> {
        self.check_open(caller)?;
        if self.row.status != SessionStatus::Assigned {
            return Err(AppError::new(ErrorCode::Conflict, "only an assigned session can be transferred"));
        }
        let from_agent = self.row.assigned_agent_id.unwrap_or(caller.user_id);
        if to_agent == Some(from_agent) {
            return Err(AppError::new(ErrorCode::InvalidPayload, "the session is already yours"));
        }
        self.transferring_from = Some(from_agent);
        Ok(Transfer { from_agent })
    }

    /// The transfer went through: to the queue (`to_agent` none) or to another agent.
    pub fn transferred(&mut self, to_agent: Option<Uuid>, priority: Option<crate::domain::Priority>) {
        self.transferring_from = None;
        match to_agent {
            Some(agent_id) => self.row.assigned_agent_id = Some(agent_id),
            None => {
                self.row.status = SessionStatus::Waiting;
                self.row.assigned_agent_id = None;
                if let Some(priority) = priority {
                    self.row.priority = priority;
                }
            }
        }
    }

    /// The chat is for this team now.
    pub fn routed_to(&mut self, team: Option<Uuid>) {
        self.row.team_id = team;
    }

    /// The transfer failed: the agent keeps the chat.
    pub fn transfer_failed(&mut self) {
        self.transferring_from = None;
    }

    pub fn is_open(&self) -> bool {
        self.row.status != SessionStatus::Closed
    }

    // ---- read receipts ----

    /// Someone read up to `seq`: true when that moves their receipt
    /// forward (and it is stored and passed on); a receipt never moves back.
    pub fn read(&mut self, user_id: Uuid, seq: i64) -> bool {
        let known = self.read_up_to.entry(user_id).or_default();
        if seq <= *known {
            return false;
        }
        *known = seq;
        true
    }

    /// The receipt could not be stored: forget it, so the next one is written.
    pub fn read_not_stored(&mut self, user_id: Uuid) {
        self.read_up_to.remove(&user_id);
    }

    // ---- typing ----

    /// Someone is typing: pass it on only when it starts, and then at most
    /// every `TYPING_REPEAT` while it goes on.
    pub fn typing(&mut self, user_id: Uuid, now: Instant) -> bool {
        match self.typing.get(&user_id) {
            Some(last) if now.duration_since(*last) < TYPING_REPEAT => false,
            _ => {
                self.typing.insert(user_id, now);
                true
            }
        }
    }

    /// Someone stopped typing (or sent their message): pass it on if they were.
    pub fn stopped_typing(&mut self, user_id: Uuid) -> bool {
        self.typing.remove(&user_id).is_some()
    }

    pub fn clear_typing(&mut self) {
        self.typing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const CUSTOMER: Uuid = Uuid::from_u128(1);
    const ALICE: Uuid = Uuid::from_u128(2);
    const BOB: Uuid = Uuid::from_u128(3);
    const STRANGER: Uuid = Uuid::from_u128(4);

    fn caller(user_id: Uuid, role: Role) -> Caller {
        Caller {
            user_id,
            role,
            name: Arc::from("someone"),
            priority: None,
            team: None,
            address: None,
            partner_org_id: None,
        }
    }

    fn customer() -> Caller {
        caller(CUSTOMER, Role::Customer)
    }

    fn row(status: SessionStatus, agent: Option<Uuid>) -> ChatSession {
        let now = chrono::Utc::now();
        ChatSession {
            id: Uuid::from_u128(99),
            customer_id: CUSTOMER,
            status,
            priority: crate::domain::Priority::Normal,
            assigned_agent_id: agent,
            is_active: status != SessionStatus::Closed,
            is_resolved: false,
            title: None,
            category: None,
            bot_context: None,
            conversation_context: serde_json::json!({}),
            metadata: serde_json::json!({}),
            message_count: 0,
            last_seq: 0,
            last_activity: now,
            resolution_notes: None,
            ended_reason: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
            deleted_at: None,
            team_id: None,
            offline_email: None,
        }
    }

    fn core(status: SessionStatus, agent: Option<Uuid>) -> SessionCore {
        SessionCore::new(row(status, agent), 60)
    }

    fn code(result: Result<impl std::fmt::Debug, AppError>) -> Option<&'static str> {
        result.err().map(|error| error.code.as_str())
    }

    #[test]
    fn a_message_for_later_is_left_only_while_nobody_is_with_the_customer() {
        use SessionStatus::*;
        let table = [
            (Bot, None, None),
            (Waiting, None, None),
            (Offline, None, Some("conflict")),
            (Assigned, Some(ALICE), Some("conflict")),
            (Closed, None, Some("session_closed")),
        ];
        for (status, agent, refused) in table {
            let core = core(status, agent);
            assert_eq!(code(core.may_leave_message(&customer())), refused, "{status}");
            assert_eq!(code(core.may_leave_message(&caller(ALICE, Role::Agent))), Some("forbidden"), "{status}");
        }
        let mut core = core(Waiting, None);
        core.went_offline("ann@example.com".to_owned());
        assert_eq!(core.status(), Offline);
        assert_eq!(core.answered_by_email(), Some("ann@example.com"));
        // More words from the customer show on the board; no bot answers them.
        assert_eq!(core.message_stored(SenderType::Customer, "also"), AfterMessage::Preview("also".to_owned()));
        // Picked up later: the customer is away on purpose, so no reply clock runs.
        assert!(core.assigned(ALICE));
        assert_eq!(core.unanswered_since(), None);
        assert_eq!(core.request_agent(&customer()).ok(), Some(AgentRequest::AsIs(Assigned)));
    }

    #[test]
    fn who_may_reach_a_session_in_each_status() {
        use SessionStatus::*;
        // (status, assigned agent, caller, role, may read, may write)
        let table = [
            (Bot, None, CUSTOMER, Role::Customer, true, true),
            (Bot, None, STRANGER, Role::Customer, false, false),
            (Bot, None, ALICE, Role::Agent, false, false),
            (Bot, None, STRANGER, Role::Admin, true, true),
            (Waiting, None, ALICE, Role::Agent, false, false),
            (Assigned, Some(ALICE), ALICE, Role::Agent, true, true),
            (Assigned, Some(ALICE), BOB, Role::Agent, false, false),
            (Assigned, Some(ALICE), CUSTOMER, Role::Customer, true, true),
            (Closed, Some(ALICE), ALICE, Role::Agent, true, false),
            (Closed, None, CUSTOMER, Role::Customer, true, false),
            (Closed, None, STRANGER, Role::Admin, true, false),
        ];
        for (status, agent, who, role, read, write) in table {
            let core = core(status, agent);
            let asking = caller(who, role);
            assert_eq!(core.check_access(&asking).is_ok(), read, "{status:?} {role:?} read");
            assert_eq!(core.check_open(&asking).is_ok(), write, "{status:?} {role:?} write");
        }
        assert_eq!(code(core(Closed, None).check_open(&customer())), Some("session_closed"));
        assert_eq!(code(core(Bot, None).check_open(&caller(STRANGER, Role::Customer))), Some("forbidden"));
    }

    #[test]
    fn customers_and_staff_have_separate_message_allowances() {
        let mut core = SessionCore::new(row(SessionStatus::Assigned, Some(ALICE)), 3);
        for _ in 0..3 {
            assert_eq!(core.admit_message(&customer()).ok(), Some(SenderType::Customer));
        }
        assert_eq!(code(core.admit_message(&customer())), Some("rate_limited"));
        // The customer's flood leaves the agent's allowance untouched.
        assert_eq!(core.admit_message(&caller(ALICE, Role::Agent)).ok(), Some(SenderType::Agent));
        assert_eq!(core.admit_message(&caller(STRANGER, Role::Admin)).ok(), Some(SenderType::Agent));
        assert_eq!(code(core.admit_message(&caller(BOB, Role::Agent))), Some("forbidden"));
    }

    #[test]
    fn a_customer_message_in_each_status() {
        use SessionStatus::*;
        let table = [
            (Bot, AfterMessage::AskBot("hi".into())),
            (Waiting, AfterMessage::Preview("hi".into())),
            (Assigned, AfterMessage::Nothing),
            (Closed, AfterMessage::Nothing),
        ];
        for (status, expected) in table {
            let mut core = core(status, None);
            assert_eq!(core.message_stored(SenderType::Customer, "hi"), expected, "{status:?}");
            assert_eq!(core.last_customer_text(), Some("hi"));
        }
    }

    #[test]
    fn an_agents_first_reply_is_recorded_once() {
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        assert_eq!(core.message_stored(SenderType::Agent, "hello"), AfterMessage::FirstResponse);
        assert_eq!(core.message_stored(SenderType::Agent, "again"), AfterMessage::Nothing);
    }

    #[test]
    fn the_bot_answers_one_message_at_a_time_in_order() {
        let mut core = core(SessionStatus::Bot, None);
        assert_eq!(core.message_stored(SenderType::Customer, "one"), AfterMessage::AskBot("one".into()));
        assert_eq!(core.message_stored(SenderType::Customer, "two"), AfterMessage::BotBusy);
        assert_eq!(core.message_stored(SenderType::Customer, "three"), AfterMessage::BotBusy);
        assert_eq!(core.bot_answered(true, None), BotAnswer::Post { handoff: None, next: Some("two".into()) });
        assert_eq!(core.bot_answered(true, None), BotAnswer::Post { handoff: None, next: Some("three".into()) });
        assert_eq!(core.bot_answered(true, None), BotAnswer::Post { handoff: None, next: None });
        assert_eq!(core.message_stored(SenderType::Customer, "four"), AfterMessage::AskBot("four".into()));
    }

    #[test]
    fn the_bot_backlog_is_bounded_and_keeps_the_newest() {
        let mut core = core(SessionStatus::Bot, None);
        core.message_stored(SenderType::Customer, "first");
        for n in 0..BOT_BACKLOG + 3 {
            assert_eq!(core.message_stored(SenderType::Customer, &format!("m{n}")), AfterMessage::BotBusy);
        }
        let oldest_kept = format!("m{}", 3);
        assert_eq!(core.bot_answered(true, None), BotAnswer::Post { handoff: None, next: Some(oldest_kept) });
    }

    #[test]
    fn two_misses_in_a_row_or_asking_for_a_person_hand_off() {
        let mut core = core(SessionStatus::Bot, None);
        core.message_stored(SenderType::Customer, "?");
        assert_eq!(core.bot_answered(false, None), BotAnswer::Post { handoff: None, next: None });
        core.message_stored(SenderType::Customer, "??");
        assert_eq!(
            core.bot_answered(false, None),
            BotAnswer::Post { handoff: Some(HandoffReason::BotCouldNotHelp), next: None }
        );

        let mut core = self::core(SessionStatus::Bot, None);
        core.message_stored(SenderType::Customer, "?");
        core.bot_answered(false, None);
        core.message_stored(SenderType::Customer, "where is my order");
        // Understood: the count starts again.
        assert_eq!(core.bot_answered(true, None), BotAnswer::Post { handoff: None, next: None });
        core.message_stored(SenderType::Customer, "?");
        assert_eq!(core.bot_answered(false, None), BotAnswer::Post { handoff: None, next: None });

        let mut core = self::core(SessionStatus::Bot, None);
        core.message_stored(SenderType::Customer, "a human please");
        core.message_stored(SenderType::Customer, "now");
        assert_eq!(
            core.bot_answered(true, Some(HandoffReason::CustomerAsked)),
            BotAnswer::Post { handoff: Some(HandoffReason::CustomerAsked), next: None },
            "a handoff drops what waited for the bot"
        );
        let mut core = self::core(SessionStatus::Bot, None);
        core.message_stored(SenderType::Customer, "hmm");
        assert_eq!(core.bot_answered(false, None), BotAnswer::Post { handoff: None, next: None });
        core.message_stored(SenderType::Customer, "my card was stolen");
        let decided = HandoffReason::BotDecided("card stolen".to_owned());
        assert_eq!(
            core.bot_answered(false, Some(decided.clone())),
            BotAnswer::Post { handoff: Some(decided), next: None },
            "the bot's own reason wins over its misses"
        );
    }

    #[test]
    fn the_bot_context_is_bounded_and_stops_at_the_question() {
        let mut core = core(SessionStatus::Bot, None);
        let line = |sender, content: &str| Line { sender, content: content.to_owned() };
        for n in 0..HISTORY_LINES + 5 {
            core.remember_line(line(SenderType::Customer, &format!("q{n}")));
            core.remember_line(line(SenderType::Bot, &format!("a{n}")));
        }
        let all = core.history_before("not said");
        assert_eq!(all.len(), HISTORY_LINES);
        assert_eq!(all.last().map(|line| line.content.as_str()), Some(format!("a{}", HISTORY_LINES + 4).as_str()));
        let before = core.history_before(&format!("q{}", HISTORY_LINES + 4));
        assert_eq!(before.len(), HISTORY_LINES - 2, "the question and what followed it are left out");
        core.remember_line(line(SenderType::Customer, &"x".repeat(HISTORY_CHARS)));
        assert_eq!(core.history_before("none").len(), 1, "a long line pushes the rest out");
        core.queued();
        assert!(core.history_before("none").is_empty(), "a person has the chat: the bot's context is dropped");
    }

    #[test]
    fn a_bot_that_reads_no_history_has_none_kept() {
        let mut core = core(SessionStatus::Bot, None).keeping_history(false);
        let said = crate::db::models::ChatMessage {
            id: Uuid::new_v4(),
            session_id: core.row().id,
            seq: 1,
            client_msg_id: None,
            sender_type: SenderType::Customer,
            sender_id: None,
            content: "hello".to_owned(),
            message_type: "text".to_owned(),
            intent: None,
            entities: None,
            confidence: None,
            processing: None,
            created_at: chrono::Utc::now(),
            deleted_at: None,
        };
        core.remember(&said);
        assert!(core.history_before("none").is_empty());
        let mut core = self::core(SessionStatus::Bot, None);
        core.remember(&said);
        assert_eq!(core.history_before("none").len(), 1, "one that reads it has it kept");
    }

    #[test]
    fn a_bot_answer_after_the_chat_left_the_bot_is_dropped() {
        for leave in [SessionStatus::Waiting, SessionStatus::Closed] {
            let mut core = core(SessionStatus::Bot, None);
            core.message_stored(SenderType::Customer, "hello");
            core.message_stored(SenderType::Customer, "more");
            match leave {
                SessionStatus::Waiting => core.queued(),
                _ => core.replace_row(row(SessionStatus::Closed, None)),
            }
            assert_eq!(core.bot_answered(true, None), BotAnswer::Stale, "{leave:?}");
        }
    }

    #[test]
    fn asking_for_a_person_in_each_status() {
        use SessionStatus::*;
        let table = [
            (Bot, None, Ok(AgentRequest::Enqueue)),
            (Waiting, None, Ok(AgentRequest::TellPosition)),
            (Assigned, Some(ALICE), Ok(AgentRequest::AsIs(Assigned))),
            (Closed, None, Err("session_closed")),
        ];
        for (status, agent, expected) in table {
            let got = core(status, agent).request_agent(&customer()).map_err(|error| error.code.as_str());
            assert_eq!(got, expected, "{status:?}");
        }
        assert_eq!(
            code(core(SessionStatus::Bot, None).request_agent(&caller(STRANGER, Role::Customer))),
            Some("forbidden")
        );
    }

    #[test]
    fn queue_assignment_and_requeue() {
        let mut core = core(SessionStatus::Bot, None);
        core.queued();
        assert_eq!((core.status(), core.assigned_agent()), (SessionStatus::Waiting, None));
        assert!(core.assigned(ALICE));
        assert!(core.is_with(ALICE) && !core.is_with(BOB));
        assert!(core.requeued());
        assert_eq!((core.status(), core.assigned_agent()), (SessionStatus::Waiting, None));
        assert!(!core.requeued(), "only an assigned chat is requeued");

        let mut closed = self::core(SessionStatus::Closed, None);
        assert!(!closed.assigned(ALICE), "a closed chat is not assigned");
        assert_eq!(closed.status(), SessionStatus::Closed);
    }

    #[test]
    fn a_transfer_shuts_the_old_agent_out_at_once() {
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        let alice = caller(ALICE, Role::Agent);
        assert_eq!(core.begin_transfer(&alice, Some(BOB)).ok(), Some(Transfer { from_agent: ALICE }));
        assert_eq!(code(core.check_open(&alice)), Some("forbidden"), "refused while the transfer runs");
        core.transferred(Some(BOB), None);
        assert_eq!(code(core.check_open(&alice)), Some("forbidden"));
        assert!(core.check_open(&caller(BOB, Role::Agent)).is_ok());

        // Back to the queue, at a new priority.
        let mut core = self::core(SessionStatus::Assigned, Some(ALICE));
        core.begin_transfer(&alice, None).expect("allowed");
        core.transferred(None, Some(crate::domain::Priority::High));
        assert_eq!((core.status(), core.row().priority), (SessionStatus::Waiting, crate::domain::Priority::High));

        // A failed transfer leaves the chat with the agent.
        let mut core = self::core(SessionStatus::Assigned, Some(ALICE));
        core.begin_transfer(&alice, Some(BOB)).expect("allowed");
        core.transfer_failed();
        assert!(core.check_open(&alice).is_ok());
    }

    #[test]
    fn a_transfer_that_cannot_be() {
        let alice = caller(ALICE, Role::Agent);
        assert_eq!(
            code(core(SessionStatus::Assigned, Some(ALICE)).begin_transfer(&alice, Some(ALICE))),
            Some("invalid_payload")
        );
        let admin = caller(STRANGER, Role::Admin);
        assert_eq!(code(core(SessionStatus::Waiting, None).begin_transfer(&admin, None)), Some("conflict"));
        assert_eq!(code(core(SessionStatus::Closed, Some(ALICE)).begin_transfer(&alice, None)), Some("session_closed"));
        assert_eq!(code(core(SessionStatus::Assigned, Some(BOB)).begin_transfer(&alice, None)), Some("forbidden"));
    }

    #[test]
    fn typing_is_passed_on_when_it_starts_and_then_at_most_every_few_seconds() {
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        let start = Instant::now();
        assert!(core.typing(CUSTOMER, start));
        assert!(!core.typing(CUSTOMER, start + Duration::from_millis(500)));
        assert!(!core.typing(CUSTOMER, start + TYPING_REPEAT - Duration::from_millis(1)));
        assert!(core.typing(CUSTOMER, start + TYPING_REPEAT));
        assert!(core.typing(ALICE, start), "each person has their own indicator");
        assert!(core.stopped_typing(CUSTOMER));
        assert!(!core.stopped_typing(CUSTOMER), "a stop is passed on once");
        assert!(core.typing(CUSTOMER, start + TYPING_REPEAT), "typing again after a stop starts anew");
    }

    #[test]
    fn read_receipts_only_move_forward() {
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        assert!(core.read(CUSTOMER, 3));
        assert!(!core.read(CUSTOMER, 3), "the same receipt again changes nothing");
        assert!(!core.read(CUSTOMER, 1), "a receipt never moves back");
        assert!(core.read(ALICE, 2), "each reader has their own");
        assert!(core.read(CUSTOMER, 5));
    }

    #[test]
    fn a_customer_waits_for_their_agent_from_the_assignment_and_from_each_unanswered_message() {
        let agent = Uuid::from_u128(7);
        let mut core = core(SessionStatus::Waiting, None);
        assert!(core.unanswered_since().is_none(), "nobody to wait for in the queue");
        assert!(core.assigned(agent));
        let since_assignment = core.unanswered_since().expect("waiting since the assignment");
        assert!(core.begin_unanswered_requeue(Duration::from_secs(60)).is_none(), "not overdue yet");
        core.message_stored(SenderType::Agent, "hello");
        assert!(core.unanswered_since().is_none(), "answered");
        core.message_stored(SenderType::Customer, "and my refund?");
        assert!(core.unanswered_since().is_some_and(|since| since >= since_assignment));
        core.message_stored(SenderType::Note, "private");
        assert!(core.unanswered_since().is_some(), "a note is no answer");
        assert_eq!(core.begin_unanswered_requeue(Duration::ZERO), Some(agent));
        assert!(core.unanswered_since().is_none(), "handed on: the agent is refused from now");
        assert_eq!(code(core.check_access(&caller(agent, Role::Agent))), Some("forbidden"));
    }

    #[test]
    fn stored_messages_move_the_count_and_a_clearing_resets_it() {
        let mut core = core(SessionStatus::Bot, None);
        let now = chrono::Utc::now();
        let message = |seq| ChatMessage {
            id: Uuid::new_v4(),
            session_id: Uuid::from_u128(99),
            seq,
            client_msg_id: None,
            sender_type: SenderType::Bot,
            sender_id: None,
            content: String::new(),
            message_type: "text".into(),
            intent: None,
            entities: None,
            confidence: None,
            processing: None,
            created_at: now,
            deleted_at: None,
        };
        core.remember(&message(1));
        core.remember(&message(2));
        core.remember(&message(1));
        assert_eq!((core.row().last_seq, core.row().message_count), (2, 2));
        core.messages_cleared();
        assert_eq!(core.row().message_count, 0);
    }

    fn partner(user_id: Uuid, org: Uuid) -> Caller {
        Caller { partner_org_id: Some(org), ..caller(user_id, Role::Partner) }
    }

    #[test]
    fn a_partner_reaches_a_chat_only_while_their_organisation_is_in_it() {
        const ROMA: Uuid = Uuid::from_u128(10);
        const SUSHI: Uuid = Uuid::from_u128(11);
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        let ana = partner(STRANGER, ROMA);
        assert_eq!(code(core.check_access(&ana)), Some("forbidden"));
        // Only the chat's agent (or an admin) invites; not the customer, another agent or a partner.
        for who in [customer(), caller(BOB, Role::Agent), partner(STRANGER, SUSHI)] {
            assert_eq!(code(core.begin_invite(&who, ROMA)), Some("forbidden"), "{:?}", who.role);
        }
        core.begin_invite(&caller(ALICE, Role::Agent), ROMA).expect("the agent invites");
        // While it is being stored it counts: a second invitation is a conflict.
        assert_eq!(code(core.begin_invite(&caller(ALICE, Role::Agent), ROMA)), Some("conflict"));
        core.invited(Invited { partner_org_id: ROMA, name: "Pizza Roma".into(), visible_after_seq: 4 });
        assert!(core.check_access(&ana).is_ok());
        assert_eq!(core.partner_after(&ana), Some(4));
        // A partner writes as a partner, from their own allowance.
        assert_eq!(core.admit_message(&ana).expect("admitted"), SenderType::Partner);
        assert_eq!(code(core.check_access(&partner(STRANGER, SUSHI))), Some("forbidden"));
        // Removed: no access at all.
        assert_eq!(
            core.check_remove(&caller(ALICE, Role::Agent), ROMA).map(|i| i.name.clone()).ok(),
            Some("Pizza Roma".into())
        );
        core.partner_removed(ROMA);
        assert_eq!(code(core.check_access(&ana)), Some("forbidden"));
        assert_eq!(code(core.check_remove(&caller(ALICE, Role::Agent), ROMA)), Some("not_found"));
    }

    #[test]
    fn a_chat_holds_at_most_five_partner_organisations_and_none_once_closed() {
        let mut core = core(SessionStatus::Assigned, Some(ALICE));
        let admin = caller(BOB, Role::Admin);
        for n in 0..MAX_PARTNERS_PER_CHAT as u128 {
            core.begin_invite(&admin, Uuid::from_u128(100 + n)).expect("room for it");
        }
        assert_eq!(code(core.begin_invite(&admin, Uuid::from_u128(200))), Some("limit_reached"));
        // A failed invitation gives its place back.
        core.invite_failed(Uuid::from_u128(100));
        core.begin_invite(&admin, Uuid::from_u128(200)).expect("a place again");
        let mut closed = self::core(SessionStatus::Closed, None);
        assert_eq!(code(closed.begin_invite(&admin, Uuid::from_u128(300))), Some("session_closed"));
    }
}
