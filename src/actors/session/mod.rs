//! One actor per live chat session. It owns the session's state, its
//! participants' sockets and the bot's turn; every event about the session
//! reaches its sockets from here, in one order, so a resume sees no gap and
//! no duplicate. It is started on demand by the registry, rebuilds itself
//! from PostgreSQL, and retires when nobody has used it for a while.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

use crate::actors::history_reader::ReadHistory;
use crate::actors::messages::*;
use crate::actors::persistence::PersistMessage;
use crate::actors::registry::SessionRegistry;
use crate::actors::Services;
use crate::bots::{BotHandoff, BotReply, BotTurn};
use crate::bus::Outbound;
use crate::business_hours::Availability;
use crate::db::models::{AttachmentMeta, ChatMessage, NewChatMessage, NewChatSession};
use crate::db::queries::messages::{Audience, Persisted, Shown, Window};
use crate::db::queries::partners::Invited;
use crate::db::{self, queries};
use crate::domain::{CloseReason, Priority, Role, SenderType, SessionStatus, WebhookEvent};
use crate::error::{AppError, ErrorCode};
use crate::protocol::client::{Content, SessionRequest, StartChat};
use crate::protocol::server::{ChatPartnerView, MessageView, OfflineReason, ServerEvent, SessionView};
use crate::rate_limits::Action;
use diesel_async::AsyncConnection;

mod core;
mod offline_reply;

use self::core::{AfterMessage, AgentRequest, BotAnswer, HandoffReason, SessionCore};

enum State {
    Loading,
    Ready(Box<Loaded>),
    /// The session does not exist (or could not be loaded): every request gets this error.
    Missing(AppError),
}

struct Loaded {
    core: SessionCore,
    customer_name: String,
    agent_name: Option<String>,
}

/// What to do once a close is stored and announced.
type AfterClose = Box<dyn FnOnce(&mut SessionActor, &mut Context<SessionActor>)>;

/// A message on its way in, as the caller sent it.
pub struct Outgoing {
    pub content: Content,
    pub client_msg_id: String,
    pub attachments: Vec<Uuid>,
}

/// How the sender of a message is answered.
enum Answer {
    /// `message:sent` once stored.
    Ack(Reply),
    /// The bot's answer once it has one (`POST /api/chat/message`).
    BotAnswer(Reply),
}

impl Answer {
    fn fail(self, error: &AppError) {
        match self {
            Answer::Ack(reply) | Answer::BotAnswer(reply) => reply.fail(error),
        }
    }

    /// The message is stored. An acknowledgement is sent now; a caller
    /// waiting for the bot is handed back when `bot_follows`, else told no
    /// bot answered.
    fn stored(
        self,
        session: &SessionActor,
        stored: &ChatMessage,
        view: MessageView,
        bot_follows: bool,
    ) -> Option<Reply> {
        match self {
            Answer::Ack(reply) => {
                reply.send(&ServerEvent::MessageSent {
                    session_id: stored.session_id,
                    message_id: stored.id,
                    seq: stored.seq,
                    client_msg_id: stored.client_msg_id.clone().unwrap_or_default(),
                    created_at: stored.created_at,
                });
                None
            }
            Answer::BotAnswer(reply) if bot_follows => Some(reply),
            Answer::BotAnswer(reply) => {
                session.answer_without_bot(reply, view);
                None
            }
        }
    }
}

/// A chat being created by `customer:start_chat` or `POST /api/sessions`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewChat {
    pub origin: Origin,
    pub reply: Reply,
    pub request: StartChat,
}

pub struct SessionActor {
    id: Uuid,
    services: Services,
    registry: Addr<SessionRegistry>,
    state: State,
    new_chat: Option<NewChat>,
    participants: HashMap<SocketId, SocketHandle>,
    /// The fencing number this actor took as the session's owner.
    owner_epoch: i64,
    /// Each typist's indicator expires on this timer unless renewed.
    typing: HashMap<Uuid, SpawnHandle>,
    idle_timer: Option<SpawnHandle>,
    /// Fires when the customer has waited too long for their agent (`watch_reply`).
    reply_timer: Option<SpawnHandle>,
    /// The highest seq shown to the participants, in order.
    shown_seq: i64,
    /// Messages stored but held back while one with a lower seq is still on its way.
    held: std::collections::BTreeMap<i64, (MessageView, Option<SocketId>)>,
    held_timer: Option<SpawnHandle>,
    /// For a socket that joined with a history, the last seq that history
    /// held: it is not sent those messages again.
    seen_up_to: HashMap<SocketId, i64>,
    /// Each participant's read receipt on its way to the database.
    receipts: HashMap<Uuid, ReceiptWrites>,
    /// The bot's answer as it is being generated.
    draft: Option<Draft>,
}

/// A bot answer streamed to the chat before it is stored.
struct Draft {
    id: Uuid,
    text: String,
    /// False once the answer is complete (or the draft reached its bound):
    /// no more text, and a socket that joins now gets the stored message.
    open: bool,
}

/// A draft longer than this is not shown further (the stored answer is whole).
const MAX_DRAFT_BYTES: usize = 16 * 1024;

/// More text of the bot's draft, sent by the bot's turn (which runs beside
/// the mailbox) through the turn's `DraftSink`.
#[derive(Message)]
#[rtype(result = "()")]
struct BotDelta {
    draft_id: Uuid,
    text: String,
}

/// One participant's read receipts: written at most once per
/// `receipt_write_interval`, the latest of those that came in meanwhile,
/// and acknowledged once it is stored.
#[derive(Default)]
struct ReceiptWrites {
    written_at: Option<std::time::Instant>,
    writing: bool,
    timer_set: bool,
    pending: Option<PendingReceipt>,
}

struct PendingReceipt {
    caller: Caller,
    up_to_seq: i64,
    /// The socket that sent the latest: the others are told.
    from: Option<SocketId>,
    replies: Vec<Reply>,
}

impl SessionActor {
    pub fn new(id: Uuid, services: Services, registry: Addr<SessionRegistry>, new_chat: Option<NewChat>) -> Self {
        SessionActor {
            id,
            services,
            registry,
            state: State::Loading,
            new_chat,
            participants: HashMap::new(),
            owner_epoch: 0,
            typing: HashMap::new(),
            idle_timer: None,
            reply_timer: None,
            shown_seq: 0,
            held: Default::default(),
            held_timer: None,
            seen_up_to: HashMap::new(),
            receipts: HashMap::new(),
            draft: None,
        }
    }

    fn loaded(&self) -> Result<&Loaded, AppError> {
        match &self.state {
            State::Ready(loaded) => Ok(loaded),
            State::Missing(error) => Err(error.clone()),
            State::Loading => Err(AppError::new(ErrorCode::Internal, "the session is still loading")),
        }
    }

    fn loaded_mut(&mut self) -> Option<&mut Loaded> {
        match &mut self.state {
            State::Ready(loaded) => Some(loaded),
            _ => None,
        }
    }

    fn status(&self) -> Option<SessionStatus> {
        self.loaded().ok().map(|loaded| loaded.core.status())
    }

    fn core(&self) -> Option<&SessionCore> {
        self.loaded().ok().map(|loaded| &loaded.core)
    }

    /// The session's rules, once it is loaded.
    fn core_mut(&mut self) -> Option<&mut SessionCore> {
        self.loaded_mut().map(|loaded| &mut loaded.core)
    }

    fn check_access(&self, caller: &Caller) -> Result<&Loaded, AppError> {
        let loaded = self.loaded()?;
        loaded.core.check_access(caller)?;
        Ok(loaded)
    }

    fn check_open(&self, caller: &Caller) -> Result<&Loaded, AppError> {
        let loaded = self.loaded()?;
        loaded.core.check_open(caller)?;
        Ok(loaded)
    }

    fn view(&self) -> Option<SessionView> {
        self.loaded().ok().map(|loaded| {
            let mut partners: Vec<ChatPartnerView> = loaded
                .core
                .partners()
                .map(|invited| ChatPartnerView {
                    partner_org_id: invited.partner_org_id,
                    name: invited.name.clone(),
                    with_history: invited.visible_after_seq == 0,
                })
                .collect();
            partners.sort_by(|a, b| a.name.cmp(&b.name));
            SessionView {
                partners,
                ..SessionView::new(loaded.core.row(), &loaded.customer_name, loaded.agent_name.as_deref())
            }
        })
    }

    // ---- delivery ----

    /// A stored message to every participant but `except` that does not
    /// have it yet (a socket that joined with a history may already).
    fn deliver_message(&self, view: MessageView, except: Option<SocketId>) {
        let seq = view.seq;
        let private = view.sender == SenderType::Note;
        let customer_frame = (view.bot.is_some())
            .then(|| ServerEvent::MessageReceived(view.clone().for_role(Role::Customer)).frame(None));
        let frame = ServerEvent::MessageReceived(view).frame(None);
        for (id, socket) in &self.participants {
            let has_it = self.seen_up_to.get(id).is_some_and(|seen| *seen >= seq);
            if Some(*id) == except || has_it {
                continue;
            }
            let outsider = matches!(socket.caller.role, Role::Customer | Role::Partner);
            // A partner sees what came after their invitation's bound, and only while invited.
            let partner_sees = socket.caller.role != Role::Partner
                || self.core().and_then(|core| core.partner_after(&socket.caller)).is_some_and(|after| seq > after);
            match (&customer_frame, outsider) {
                (_, true) if private || !partner_sees => {}
                (Some(customer_frame), true) => socket.outbox.send(customer_frame.clone()),
                _ => socket.outbox.send(frame.clone()),
            }
        }
    }

    /// A socket that joins while the bot is still writing gets the draft so far.
    fn catch_up_draft(&self, socket: &SocketHandle) {
        if let Some(draft) = self.draft.as_ref().filter(|draft| draft.open && !draft.text.is_empty()) {
            let event = ServerEvent::MessageDelta { session_id: self.id, draft_id: draft.id, text: draft.text.clone() };
            socket.outbox.send(event.frame(None));
        }
    }

    /// The open draft will not be stored: the participants drop it.
    fn discard_draft(&mut self) {
        if let Some(draft) = self.draft.take() {
            if !draft.text.is_empty() {
                self.deliver(&ServerEvent::DraftDiscarded { session_id: self.id, draft_id: draft.id }, None);
            }
        }
    }

    /// The socket was sent the history up to `seq`.
    fn note_seen(&mut self, socket_id: SocketId, seq: i64) {
        let seen = self.seen_up_to.entry(socket_id).or_default();
        *seen = (*seen).max(seq);
    }

    fn deliver(&self, event: &ServerEvent, except: Option<SocketId>) {
        let frame = event.frame(None);
        for (id, socket) in &self.participants {
            if Some(*id) != except {
                socket.outbox.send(frame.clone());
            }
        }
    }

    fn deliver_to(&self, role: Role, event: &ServerEvent) {
        let frame = event.frame(None);
        for socket in self.participants.values().filter(|socket| socket.caller.role == role) {
            socket.outbox.send(frame.clone());
        }
    }

    /// Tells the webhooks about a committed change of the session, with the
    /// session as it is now and `extra` fields; never waits.
    fn tell_webhooks(&self, event: WebhookEvent, extra: serde_json::Value) {
        let Some(session) = self.view() else { return };
        self.services.webhooks.emit(event, move || {
            let mut data = serde_json::json!({ "session": session });
            if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
                data.extend(extra);
            }
            data
        });
    }

    /// Tells the webhooks about a newly stored message the customer can see
    /// (a private note or a system line is not one).
    fn tell_webhooks_of_message(&self, message: &ChatMessage) {
        if matches!(message.sender_type, SenderType::Note | SenderType::System) {
            return;
        }
        self.services.webhooks.emit(WebhookEvent::MessageCreated, || {
            serde_json::json!({
                "sessionId": message.session_id,
                "message": {
                    "messageId": message.id,
                    "seq": message.seq,
                    "sender": message.sender_type,
                    "senderId": message.sender_id,
                    "content": message.content,
                    "messageType": message.message_type,
                    "createdAt": message.created_at,
                },
            })
        });
    }

    /// A request over a socket makes that socket a participant; one over HTTP changes nothing.
    fn attach_origin(&mut self, origin: &Origin, ctx: &mut Context<Self>) {
        if let Some(socket) = &origin.socket {
            self.attach(socket, ctx);
        }
    }

    fn attach(&mut self, socket: &SocketHandle, ctx: &mut Context<Self>) {
        if self.participants.insert(socket.id, socket.clone()).is_none() {
            socket.outbox.tell(Outbound::Attached(self.id));
        }
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
    }

    fn detach_agents(&mut self) {
        let session_id = self.id;
        self.participants.retain(|_, socket| {
            let keep = socket.caller.role != Role::Agent;
            if !keep {
                socket.outbox.tell(Outbound::Detached(session_id));
            }
            keep
        });
        let participants = &self.participants;
        self.seen_up_to.retain(|id, _| participants.contains_key(id));
    }

    fn has_customer(&self) -> bool {
        self.participants.values().any(|socket| socket.caller.role == Role::Customer)
    }

    /// With no participants, asks the registry to retire this actor after a quiet spell.
    fn schedule_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.participants.is_empty() || self.idle_timer.is_some() {
            return;
        }
        let after = match self.status() {
            Some(SessionStatus::Closed) | None => self.services.timing.closed_session_idle,
            Some(_) => self.services.timing.session_idle,
        };
        self.idle_timer = Some(ctx.run_later(after, |act, ctx| {
            act.idle_timer = None;
            if act.participants.is_empty() {
                act.registry.do_send(SessionIdle { session_id: act.id, addr: ctx.address() });
            }
        }));
    }

    // ---- messages ----

    fn remember(&mut self, message: &ChatMessage) {
        if let Some(core) = self.core_mut() {
            core.remember(message);
        }
    }

    /// Stores a message and, once committed, hands the outcome to `then`.
    fn persist<F>(&mut self, ctx: &mut Context<Self>, message: NewChatMessage, then: F)
    where
        F: FnOnce(&mut Self, &mut Context<Self>, Result<Persisted, AppError>) + 'static,
    {
        // Handed to the writer now, in the order messages are sent: the
        // writer keeps a session's messages in that order and numbers them so.
        let message = NewChatMessage { owner_epoch: self.owner_epoch, ..message };
        let request = self.services.writer.send(PersistMessage(message));
        let write = async move {
            request.await.unwrap_or_else(|_| {
                Err(AppError::new(ErrorCode::DatabaseUnavailable, "the message writer is not running"))
            })
        };
        // `spawn`, not `wait`: the session goes on taking requests while its
        // messages commit; `show_message` puts them back in seq order.
        ctx.spawn(write.into_actor(self).map(move |outcome, act, ctx| {
            match &outcome {
                Ok(persisted) => {
                    act.remember(&persisted.message);
                    if !persisted.resent {
                        act.tell_webhooks_of_message(&persisted.message);
                    }
                }
                // Another node took the session over: this actor makes way.
                Err(error) if error.code == ErrorCode::SessionMoved => ctx.notify(Superseded),
                Err(_) => {}
            }
            then(act, ctx, outcome)
        }));
    }

    /// Shows a newly stored message to the participants (but `except`) in
    /// seq order: one that overtook an earlier message still committing
    /// waits for it, and at most `HOLD_BACK` (in case the earlier one was
    /// stored elsewhere and never comes here).
    fn show_message(&mut self, ctx: &mut Context<Self>, view: MessageView, except: Option<SocketId>) {
        const HOLD_BACK: std::time::Duration = std::time::Duration::from_millis(500);
        if view.seq > self.shown_seq + 1 {
            self.held.insert(view.seq, (view, except));
            if self.held_timer.is_none() {
                self.held_timer = Some(ctx.run_later(HOLD_BACK, |act, _| {
                    act.held_timer = None;
                    for (seq, (view, except)) in std::mem::take(&mut act.held) {
                        act.deliver_message(view, except);
                        act.shown_seq = act.shown_seq.max(seq);
                    }
                }));
            }
            return;
        }
        self.shown_seq = self.shown_seq.max(view.seq);
        self.deliver_message(view, except);
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.shown_seq + 1 {
                break;
            }
            let (seq, (view, except)) = entry.remove_entry();
            self.shown_seq = self.shown_seq.max(seq);
            self.deliver_message(view, except);
        }
        if self.held.is_empty() {
            if let Some(timer) = self.held_timer.take() {
                ctx.cancel_future(timer);
            }
        }
    }

    /// Posts a message from the system or the bot and shows it to everyone.
    fn post<F>(&mut self, ctx: &mut Context<Self>, message: NewChatMessage, sender_name: Option<String>, then: F)
    where
        F: FnOnce(&mut Self, &mut Context<Self>, Option<MessageView>) + 'static,
    {
        self.post_attempt(ctx, message, (sender_name, None), then, 0);
    }

    /// One try at `post`. Nobody is waiting to resend an automatic message
    /// (the bot's answer, "Alice joined the chat"), so a failed store is
    /// tried again a few times before it is given up.
    fn post_attempt<F>(
        &mut self,
        ctx: &mut Context<Self>,
        message: NewChatMessage,
        shown_as: (Option<String>, Option<Uuid>),
        then: F,
        attempt: usize,
    ) where
        F: FnOnce(&mut Self, &mut Context<Self>, Option<MessageView>) + 'static,
    {
        const RETRIES: [std::time::Duration; 3] = [
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(5),
        ];
        let retry = message.clone();
        self.persist(ctx, message, move |act, ctx, outcome| match outcome {
            Ok(persisted) => {
                let (sender_name, draft_id) = shown_as;
                let view = MessageView { draft_id, ..MessageView::new(&persisted.message, sender_name) };
                if draft_id.is_some() && act.draft.as_ref().map(|draft| draft.id) == draft_id {
                    act.draft = None;
                }
                act.show_message(ctx, view.clone(), None);
                then(act, ctx, Some(view))
            }
            Err(error) => match RETRIES.get(attempt) {
                Some(delay) => {
                    log::warn!("session {}: an automatic message was not stored, trying again: {error}", act.id);
                    ctx.run_later(*delay, move |act, ctx| act.post_attempt(ctx, retry, shown_as, then, attempt + 1));
                }
                None => {
                    log::error!("session {}: an automatic message was not stored: {error}", act.id);
                    then(act, ctx, None)
                }
            },
        });
    }

    fn post_system(&mut self, ctx: &mut Context<Self>, text: String) {
        let message = NewChatMessage {
            message_type: "system".to_owned(),
            ..NewChatMessage::text(self.id, SenderType::System, None, text)
        };
        self.post(ctx, message, None, |_, _, _| {});
    }

    fn bot_message(&self, reply: &BotReply) -> NewChatMessage {
        NewChatMessage {
            intent: reply.understanding.intent.clone(),
            entities: reply.understanding.entities.clone(),
            confidence: reply.understanding.confidence,
            processing: reply.processing.clone(),
            ..NewChatMessage::text(self.id, SenderType::Bot, None, reply.content.clone())
        }
    }

    // ---- the session's life ----

    fn create(&mut self, ctx: &mut Context<Self>, chat: NewChat) {
        let pool = self.services.pool.clone();
        let mut new_session = NewChatSession {
            id: self.id,
            customer_id: chat.origin.caller.user_id,
            // Never what the visitor asked for: what a host website signed, else normal.
            priority: chat.origin.caller.priority.unwrap_or(Priority::Normal),
            bot_context: chat.request.bot_context.clone(),
            metadata: serde_json::Value::Object(chat.request.metadata.clone().unwrap_or_default()),
            owner_node: self.services.node.as_deref().map(str::to_owned),
            team_id: None,
        };
        // The host website's signed team wins over the widget's choice.
        let team = chat.origin.caller.team.as_deref().map(str::to_owned).or_else(|| chat.request.team.clone());
        let most_open = i64::from(self.services.limits.open_chats_per_customer);
        let insert = async move {
            let mut conn = pool.get().await?;
            let session = conn
                .transaction(async |conn| {
                    if let Some(team) = &team {
                        match queries::teams::id_by_name(conn, team).await? {
                            Some(id) => new_session.team_id = Some(id),
                            None => {
                                return Ok(Err(AppError::new(
                                    ErrorCode::InvalidPayload,
                                    format!("no team is called {team}"),
                                )))
                            }
                        }
                    }
                    let open = queries::sessions::open_count_locked(conn, new_session.customer_id).await?;
                    if open >= most_open {
                        return Ok(Err(AppError::new(
                            ErrorCode::TooManyOpenChats,
                            format!("you already have {most_open} open chats; end one before starting another"),
                        )));
                    }
                    queries::sessions::insert(conn, &new_session).await.map(Ok)
                })
                .await?;
            session
        };
        ctx.wait(insert.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Ok(session) => {
                let customer_name = chat.origin.caller.name.to_string();
                act.shown_seq = session.last_seq;
                act.state = State::Ready(Box::new(Loaded {
                    core: SessionCore::new(session, act.services.limits.messages_per_minute)
                        .keeping_history(act.services.bot.reads_history()),
                    customer_name: customer_name.clone(),
                    agent_name: None,
                }));
                let view = act.view().expect("just loaded");
                chat.reply.send(&ServerEvent::SessionCreated {
                    session_id: act.id,
                    status: SessionStatus::Bot,
                    session: view,
                });
                act.tell_webhooks(WebhookEvent::SessionStarted, serde_json::json!({}));
                act.attach_origin(&chat.origin, ctx);
                act.schedule_idle(ctx);
                let greeting = act.services.bot.greeting(&customer_name, chat.request.bot_context.as_deref());
                let message = act.bot_message(&greeting);
                let name = act.services.bot.name().to_owned();
                act.post(ctx, message, Some(name), |_, _, _| {});
                act.offer_if_closed(ctx);
            }
            Err(error) => {
                chat.reply.fail(&error);
                act.state =
                    State::Missing(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"));
                ctx.stop();
            }
        }));
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let pool = self.services.pool.clone();
        let id = self.id;
        let reads_history = self.services.bot.reads_history();
        let node = self.services.node.clone();
        let load = async move {
            db::run(&pool, async |conn| {
                let Some(owner_epoch) = queries::sessions::take_ownership(conn, id, node.as_deref()).await? else {
                    return Ok(None);
                };
                let Some(found) = queries::sessions::find_with_names(conn, id).await? else { return Ok(None) };
                let partners = queries::partners::in_session(conn, id).await?;
                // While the bot has the chat, its context: the latest lines, read once.
                let recent = if reads_history && found.0.status == SessionStatus::Bot {
                    let window = Window::Before { seq: i64::MAX, limit: core::HISTORY_LINES as i64 };
                    // The bot reads what the customer sees.
                    queries::messages::shown(conn, id, window, Audience::Customer).await?
                } else {
                    Vec::new()
                };
                Ok(Some((found, recent, owner_epoch, partners)))
            })
            .await
        };
        ctx.wait(load.into_actor(self).map(move |outcome, act, ctx| {
            act.state = match outcome {
                Ok(Some(((session, customer_name, agent_name), recent, owner_epoch, partners))) => {
                    act.shown_seq = session.last_seq;
                    act.owner_epoch = owner_epoch;
                    let mut core = SessionCore::new(session, act.services.limits.messages_per_minute)
                        .keeping_history(act.services.bot.reads_history());
                    for shown in &recent {
                        core.remember(&shown.message);
                    }
                    core.set_partners(partners);
                    State::Ready(Box::new(Loaded { core, customer_name, agent_name }))
                }
                Ok(None) => {
                    State::Missing(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"))
                }
                Err(error) => {
                    log::error!("session {id} could not be loaded: {error}");
                    State::Missing(error)
                }
            };
            if matches!(act.state, State::Missing(_)) {
                // Answer whatever is already queued, then make way for a fresh attempt.
                act.schedule_retire_soon(ctx);
            }
        }));
    }

    fn schedule_retire_soon(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(std::time::Duration::from_millis(50), |act, ctx| {
            act.registry.do_send(SessionIdle { session_id: act.id, addr: ctx.address() });
        });
    }

    fn send_message(&mut self, ctx: &mut Context<Self>, origin: Origin, answer: Answer, outgoing: Outgoing) {
        let admitted = match self.core_mut() {
            Some(core) => core.admit_message(&origin.caller),
            None => Err(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist")),
        };
        // A customer's allowance spans all their chats, so many chats are no way around it.
        let admitted = admitted.and_then(|sender_type| {
            self.services.rate_limits.admit(Action::CustomerMessage, &origin.caller).map(|()| sender_type)
        });
        let sender_type = match admitted {
            Ok(sender_type) => sender_type,
            Err(error) if error.code == ErrorCode::SessionClosed => {
                return self.answer_resend_after_close(ctx, origin, answer, outgoing.client_msg_id, error)
            }
            Err(error) => return answer.fail(&error),
        };
        self.attach_origin(&origin, ctx);
        if outgoing.attachments.is_empty() {
            return self.store_message(ctx, origin, answer, outgoing, sender_type, Vec::new());
        }
        let pool = self.services.pool.clone();
        let (id, uploader) = (self.id, origin.caller.user_id);
        let mut wanted = outgoing.attachments.clone();
        wanted.sort();
        wanted.dedup();
        let find = async move {
            db::run(&pool, async |conn| queries::attachments::unclaimed(conn, &wanted, id, uploader).await).await
        };
        ctx.wait(find.into_actor(self).map(move |found, act, ctx| match found {
            Ok(files) if files.len() == outgoing.attachments.len() => {
                act.store_message(ctx, origin, answer, outgoing, sender_type, files)
            }
            Ok(_) => answer.fail(&AppError::new(
                ErrorCode::InvalidPayload,
                "an attachment is unknown, not yours, from another session or already sent",
            )),
            Err(error) => answer.fail(&error),
        }));
    }

    /// A private note: stored in the chat's history like a message, shown to
    /// the staff's sockets only, and nothing else follows (no bot, no
    /// first response). Counted in the staff's message allowance.
    fn add_note(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        reply: Reply,
        content: Content,
        client_msg_id: String,
    ) {
        if origin.caller.role == Role::Customer {
            return reply.fail(&AppError::new(ErrorCode::Forbidden, "only agents and admins write private notes"));
        }
        let admitted = match self.core_mut() {
            Some(core) => core.admit_message(&origin.caller),
            None => Err(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist")),
        };
        if let Err(error) = admitted {
            return reply.fail(&error);
        }
        self.attach_origin(&origin, ctx);
        let message =
            NewChatMessage::text(self.id, SenderType::Note, Some(origin.caller.user_id), content.into_string())
                .with_client_msg_id(client_msg_id);
        self.persist(ctx, message, move |act, ctx, outcome| {
            let persisted = match outcome {
                Ok(persisted) => persisted,
                Err(error) => return reply.fail(&error),
            };
            let stored = persisted.message;
            let view = MessageView::new(&stored, Some(origin.caller.name.to_string()));
            if !persisted.resent {
                act.show_message(ctx, view.clone(), origin.socket_id());
            }
            Answer::Ack(reply).stored(act, &stored, view, false);
        });
    }

    /// A message sent to a closed chat: a resend of one stored before the
    /// close gets its first acknowledgement again; anything new is refused.
    fn answer_resend_after_close(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        answer: Answer,
        client_msg_id: String,
        closed: AppError,
    ) {
        let pool = self.services.pool.clone();
        let (id, sender) = (self.id, origin.caller.user_id);
        let find = async move {
            db::run(&pool, async |conn| queries::messages::by_client_msg_id(conn, id, sender, &client_msg_id).await)
                .await
        };
        ctx.wait(find.into_actor(self).map(move |found, act, _| match found {
            Ok(Some(stored)) => {
                let view = MessageView::new(&stored, Some(origin.caller.name.to_string()));
                answer.stored(act, &stored, view, false);
            }
            Ok(None) => answer.fail(&closed),
            Err(error) => answer.fail(&error),
        }));
    }

    fn store_message(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        answer: Answer,
        outgoing: Outgoing,
        sender_type: SenderType,
        files: Vec<AttachmentMeta>,
    ) {
        let text = outgoing.content.as_str().to_owned();
        let message =
            NewChatMessage::text(self.id, sender_type, Some(origin.caller.user_id), outgoing.content.into_string())
                .with_client_msg_id(outgoing.client_msg_id);
        self.persist(ctx, message, move |act, ctx, outcome| {
            let persisted = match outcome {
                Ok(persisted) => persisted,
                Err(error) => return answer.fail(&error),
            };
            let stored = persisted.message.clone();
            let view = MessageView::new(&stored, Some(origin.caller.name.to_string())).with_attachments(&files);
            if persisted.resent {
                answer.stored(act, &stored, view, false);
                return;
            }
            if files.is_empty() {
                return act.after_message(ctx, origin, answer, stored, view, text);
            }
            let pool = act.services.pool.clone();
            let ids: Vec<Uuid> = files.iter().map(|file| file.id).collect();
            let message_id = stored.id;
            let claim = async move {
                db::run(&pool, async |conn| queries::attachments::claim(conn, &ids, message_id).await).await
            };
            ctx.wait(claim.into_actor(act).map(move |claimed, act, ctx| {
                if let Err(error) = claimed {
                    log::error!("message {message_id}: attachments not linked: {error}");
                }
                act.after_message(ctx, origin, answer, stored, view, text)
            }));
        });
    }

    /// A new message is stored: show it to the others and let the session react.
    fn after_message(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        answer: Answer,
        stored: ChatMessage,
        view: MessageView,
        text: String,
    ) {
        self.show_message(ctx, view.clone(), origin.socket_id());
        self.stop_typing(ctx, &origin.caller, origin.socket_id());
        let next = match self.core_mut() {
            Some(core) => core.message_stored(stored.sender_type, &text),
            None => AfterMessage::Nothing,
        };
        self.watch_reply(ctx);
        self.email_if_away(ctx, &origin, &stored);
        match next {
            AfterMessage::AskBot(text) => {
                let answer = answer.stored(self, &stored, view.clone(), true);
                self.bot_turn(ctx, text, answer.map(|reply| (reply, view)));
            }
            AfterMessage::Preview(text) => {
                self.registry.do_send(ToQueue(Preview { session_id: self.id, text }));
                answer.stored(self, &stored, view, false);
            }
            AfterMessage::FirstResponse => {
                let pool = self.services.pool.clone();
                let id = self.id;
                ctx.spawn(
                    async move {
                        let milestone = queries::analytics::Milestone::FirstResponse;
                        if let Err(error) =
                            db::run(&pool, async |conn| queries::analytics::reached(conn, id, milestone).await).await
                        {
                            log::warn!("session {id}: first response time not recorded: {error}");
                        }
                    }
                    .into_actor(self),
                );
                answer.stored(self, &stored, view, false);
            }
            AfterMessage::BotBusy | AfterMessage::Nothing => {
                answer.stored(self, &stored, view, false);
            }
        }
    }

    /// An agent's answer in a chat that began as an offline request goes to
    /// the customer's address too while they are away (it is in the chat
    /// for when they come back either way). Queued beside the mailbox.
    fn email_if_away(&mut self, ctx: &mut Context<Self>, origin: &Origin, stored: &ChatMessage) {
        if stored.sender_type != SenderType::Agent || self.has_customer() {
            return;
        }
        let Some(to) = self.core().and_then(|core| core.answered_by_email()).map(str::to_owned) else { return };
        let email = offline_reply::email(&to, self.id, &origin.caller.name, &stored.content);
        let (pool, outbox, id) = (self.services.pool.clone(), self.services.outbox.clone(), self.id);
        ctx.spawn(
            async move {
                if let Err(error) = outbox.queue(&pool, &email).await {
                    log::error!("session {id}: the answer to the offline request was not queued for email: {error}");
                }
            }
            .into_actor(self),
        );
    }

    /// The bot answers the customer; `asked` is an HTTP caller waiting for the answer.
    ///
    /// The bot's turn runs beside the mailbox (`spawn`, not `wait`): while a
    /// bot takes seconds, the customer's typing, `customer:request_agent` and
    /// `customer:end_chat` are handled at once, and the core drops an answer
    /// that comes after the chat left the bot.
    fn bot_turn(&mut self, ctx: &mut Context<Self>, text: String, asked: Option<(Reply, MessageView)>) {
        let Ok(loaded) = self.loaded() else { return };
        let draft_id = Uuid::new_v4();
        let turn = BotTurn {
            session_id: self.id,
            customer_name: loaded.customer_name.clone(),
            bot_context: loaded.core.row().bot_context.clone(),
            history: loaded.core.history_before(&text),
            text,
            draft: {
                let session = ctx.address();
                Arc::new(move |text: &str| session.do_send(BotDelta { draft_id, text: text.to_owned() }))
            },
        };
        self.draft = Some(Draft { id: draft_id, text: String::new(), open: true });
        let answer = self.services.bot.reply(turn);
        ctx.spawn(answer.into_actor(self).map(move |reply, act, ctx| {
            if let Some(draft) = act.draft.as_mut().filter(|draft| draft.id == draft_id) {
                draft.open = false;
            }
            let asked_for = reply.handoff.as_ref().map(|handoff| match handoff {
                BotHandoff::CustomerAsked => HandoffReason::CustomerAsked,
                BotHandoff::Unavailable => HandoffReason::BotUnavailable,
                BotHandoff::Decided { reason, .. } => HandoffReason::BotDecided(reason.clone()),
            });
            let decision = match act.core_mut() {
                Some(core) => core.bot_answered(reply.understood, asked_for),
                None => BotAnswer::Stale,
            };
            let (handoff, next) = match decision {
                BotAnswer::Stale => {
                    if act.draft.as_ref().is_some_and(|draft| draft.id == draft_id) {
                        act.discard_draft();
                    }
                    if let Some((http, customer_view)) = asked {
                        act.answer_without_bot(http, customer_view);
                    }
                    return;
                }
                BotAnswer::Post { handoff, next } => (handoff, next),
            };
            // The bot may ask for a lower priority than the chat's, never a higher one.
            let priority = match &reply.handoff {
                Some(BotHandoff::Decided { priority, .. }) => *priority,
                _ => None,
            };
            let message = act.bot_message(&reply);
            let name = act.services.bot.name().to_owned();
            let confidence = reply.confidence();
            act.post_attempt(
                ctx,
                message,
                (Some(name), Some(draft_id)),
                move |act, ctx, bot_view| {
                    if bot_view.is_none() && act.draft.as_ref().is_some_and(|draft| draft.id == draft_id) {
                        act.discard_draft();
                    }
                    if let Some((http, customer_view)) = asked {
                        http.send(&ServerEvent::ChatAnswer {
                            session_id: act.id,
                            message: customer_view,
                            response: bot_view.map(|view| view.for_role(Role::Customer)),
                            handled_by: Cow::Borrowed("bot"),
                            confidence: Some(confidence),
                        });
                    }
                    if let Some(reason) = handoff {
                        act.hand_off(ctx, Some(reason.as_str().to_owned()), None, priority);
                    }
                    if let Some(text) = next {
                        act.bot_turn(ctx, text, None);
                    }
                },
                0,
            );
        }));
    }

    /// An HTTP caller waited for the bot, but no bot answers: the chat is
    /// with the queue or a person (or left the bot while it thought).
    fn answer_without_bot(&self, http: Reply, customer_view: MessageView) {
        let handled_by = match self.status() {
            Some(SessionStatus::Assigned) => Cow::Borrowed("agent"),
            Some(SessionStatus::Waiting) => Cow::Borrowed("queue"),
            _ => Cow::Borrowed("bot"),
        };
        http.send(&ServerEvent::ChatAnswer {
            session_id: self.id,
            message: customer_view,
            response: None,
            handled_by,
            confidence: None,
        });
    }

    /// Puts the session in the queue for a person; `request` is the customer's own ask.
    fn hand_off(
        &mut self,
        ctx: &mut Context<Self>,
        reason: Option<String>,
        request: Option<(Option<SocketId>, Reply)>,
        bot_priority: Option<Priority>,
    ) {
        let Ok(loaded) = self.loaded() else { return };
        let allowed = loaded.core.row().priority;
        let priority = match bot_priority {
            Some(asked) if asked.rank() > allowed.rank() => asked,
            _ => allowed,
        };
        let handoff_reason = reason.clone();
        let enqueue = Enqueue {
            session_id: self.id,
            priority,
            reason,
            customer_name: loaded.customer_name.clone(),
            preview: loaded.core.last_customer_text().map(str::to_owned),
            team: loaded.core.row().team_id,
        };
        let asked = self.ask_queue(enqueue);
        ctx.wait(asked.into_actor(self).map(move |outcome, act, ctx| {
            let position = match outcome {
                Ok(position) => position,
                Err(error) => {
                    log::error!("session {}: handoff failed: {error}", act.id);
                    if let Some((_, reply)) = request {
                        reply.fail(&error);
                    }
                    return;
                }
            };
            if let Some(loaded) = act.loaded_mut() {
                loaded.core.queued();
                loaded.agent_name = None;
            }
            act.discard_draft();
            let changed = ServerEvent::StatusChanged {
                session_id: act.id,
                status: SessionStatus::Waiting,
                agent_name: None,
                queue_position: Some(position),
            };
            let requester = request.as_ref().and_then(|(socket_id, _)| *socket_id);
            act.deliver(&changed, requester);
            if let Some((_, reply)) = request {
                reply.send(&changed);
            }
            act.tell_webhooks(
                WebhookEvent::SessionHandedOver,
                serde_json::json!({ "reason": handoff_reason, "queuePosition": position }),
            );
            act.post_system(
                ctx,
                format!("You're number {position} in the queue. A member of our team will be with you shortly."),
            );
            act.offer_if_closed(ctx);
        }));
    }

    /// Outside the chat's business hours (its team's, else the global ones),
    /// tells the customer so and offers the offline form. Read beside the
    /// mailbox: the hours change rarely and nothing waits for them.
    fn offer_if_closed(&mut self, ctx: &mut Context<Self>) {
        let Some(team) = self.core().map(|core| core.row().team_id) else { return };
        let pool = self.services.pool.clone();
        let read =
            async move { db::run(&pool, async |conn| queries::business_hours::effective(conn, team).await).await };
        ctx.spawn(read.into_actor(self).map(|outcome, act, _| {
            let hours = match outcome {
                Ok(hours) => hours,
                Err(error) => return log::warn!("session {}: business hours not read: {error}", act.id),
            };
            let closed = crate::business_hours::availability(hours.as_ref(), chrono::Utc::now());
            let Availability::Closed { opens_at } = closed else { return };
            if matches!(act.status(), Some(SessionStatus::Bot | SessionStatus::Waiting)) {
                let offer = ServerEvent::SessionOffline { session_id: act.id, reason: OfflineReason::Closed, opens_at };
                act.deliver_to(Role::Customer, &offer);
            }
        }));
    }

    /// The offline form: the customer's message is stored in the chat, then
    /// the chat becomes an offline request in the queue, to be answered at
    /// `email`. The reply is `status:changed` with `offline`.
    fn leave_message(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        reply: Reply,
        email: String,
        (content, client_msg_id): (Content, String),
    ) {
        let admitted = match self.core_mut() {
            Some(core) => core.may_leave_message(&origin.caller).and_then(|()| core.admit_message(&origin.caller)),
            None => Err(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist")),
        };
        let admitted = admitted.and_then(|_| self.services.rate_limits.admit(Action::CustomerMessage, &origin.caller));
        if let Err(error) = admitted {
            return reply.fail(&error);
        }
        self.attach_origin(&origin, ctx);
        let text = content.as_str().to_owned();
        let message =
            NewChatMessage::text(self.id, SenderType::Customer, Some(origin.caller.user_id), content.into_string())
                .with_client_msg_id(client_msg_id);
        self.persist(ctx, message, move |act, ctx, outcome| {
            let persisted = match outcome {
                Ok(persisted) => persisted,
                Err(error) => return reply.fail(&error),
            };
            if !persisted.resent {
                // The sender's own sockets get it too: the form has no place for it in the chat.
                let view = MessageView::new(&persisted.message, Some(origin.caller.name.to_string()));
                act.show_message(ctx, view, None);
            }
            act.go_offline(ctx, origin, reply, email, text);
        });
    }

    /// Asks the queue through the registry, which reaches it on whichever node
    /// runs it; the future owns all it needs, so `ctx.wait` can run it.
    fn ask_queue<M, T>(&self, request: M) -> impl std::future::Future<Output = Result<T, AppError>> + 'static
    where
        M: QueueRequest<Result = Result<T, AppError>>,
        SessionRegistry: Handler<ToQueue<M>>,
    {
        let queue = self.registry.clone();
        async move {
            queue
                .send(ToQueue(request))
                .await
                .unwrap_or_else(|_| Err(AppError::new(ErrorCode::Internal, "the queue is not running")))
        }
    }

    fn go_offline(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply, email: String, text: String) {
        let Ok(loaded) = self.loaded() else { return reply.fail(&AppError::not_found("session")) };
        let request = LeaveOffline {
            session_id: self.id,
            priority: loaded.core.row().priority,
            customer_name: loaded.customer_name.clone(),
            preview: text,
            team: loaded.core.row().team_id,
            email: email.clone(),
        };
        let asked = self.ask_queue(request);
        ctx.wait(asked.into_actor(self).map(move |outcome, act, ctx| {
            if let Err(error) = outcome {
                return reply.fail(&error);
            }
            if let Some(loaded) = act.loaded_mut() {
                loaded.core.went_offline(email.clone());
                loaded.agent_name = None;
            }
            act.discard_draft();
            let changed = ServerEvent::StatusChanged {
                session_id: act.id,
                status: SessionStatus::Offline,
                agent_name: None,
                queue_position: None,
            };
            act.deliver(&changed, origin.socket_id());
            reply.send(&changed);
            act.tell_webhooks(WebhookEvent::SessionOfflineRequest, serde_json::json!({ "email": email }));
            act.post_system(
                ctx,
                format!(
                    "Thanks, we have your message. We'll answer at {email}, and you'll find our answer here too when you come back."
                ),
            );
        }));
    }

    fn resume(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply, after_seq: i64) {
        if let Err(error) = self.check_access(&origin.caller) {
            return reply.fail(&error);
        }
        let audience = match origin.caller.role {
            Role::Partner => Audience::Partner {
                after: self.core().and_then(|core| core.partner_after(&origin.caller)).unwrap_or(i64::MAX),
            },
            role => Audience::of(role),
        };
        let load = self.read_history(after_seq, audience);
        ctx.wait(load.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Ok(rows) => {
                let bot_name = act.services.bot.name().to_owned();
                let role = origin.caller.role;
                let messages = rows.iter().map(|row| MessageView::shown(row, &bot_name).for_role(role)).collect();
                let Some(session) = act.view() else { return reply.fail(&AppError::not_found("session")) };
                reply.send(&ServerEvent::SessionResumed { session, messages });
                act.attach_origin(&origin, ctx);
                if let (Some(socket_id), Some(last)) = (origin.socket_id(), rows.last()) {
                    act.note_seen(socket_id, last.message.seq);
                }
                if let Some(socket) = &origin.socket {
                    act.catch_up_draft(socket);
                }
                if role == Role::Customer {
                    act.offer_if_closed(ctx);
                }
            }
            Err(error) => reply.fail(&error),
        }));
    }

    /// The messages after `after`, read together with other sessions' (see `HistoryReader`).
    fn read_history(
        &self,
        after: i64,
        audience: Audience,
    ) -> impl std::future::Future<Output = Result<Vec<Shown>, AppError>> + 'static {
        let request = self.services.history.send(ReadHistory { session_id: self.id, after, audience });
        async move {
            request.await.unwrap_or_else(|_| {
                Err(AppError::new(ErrorCode::DatabaseUnavailable, "the history reader is not running"))
            })
        }
    }

    /// Sends the whole history to an assigned agent's sockets, then keeps them in step.
    /// `welcomed` tells the agent's actor when the sockets have the session.
    fn welcome_agent_sockets(
        &mut self,
        ctx: &mut Context<Self>,
        sockets: Vec<SocketHandle>,
        mut pickup: Option<(SocketId, Reply)>,
        welcomed: Option<Welcomed>,
    ) {
        let load = self.read_history(0, Audience::Staff);
        ctx.wait(load.into_actor(self).map(move |outcome, act, ctx| {
            let _welcomed = welcomed;
            let rows = match outcome {
                Ok(rows) => rows,
                Err(error) => {
                    if let Some((_, reply)) = pickup.take() {
                        reply.fail(&error);
                    }
                    return;
                }
            };
            let bot_name = act.services.bot.name().to_owned();
            let messages: Vec<MessageView> = rows.iter().map(|row| MessageView::shown(row, &bot_name)).collect();
            let Some(session) = act.view() else { return };
            let last_seq = rows.last().map(|row| row.message.seq);
            let event = ServerEvent::SessionAssigned { session_id: act.id, session, messages };
            let frame = event.frame(None);
            for socket in &sockets {
                match pickup.take_if(|(origin, _)| *origin == socket.id) {
                    Some((_, reply)) => reply.send(&event),
                    None => socket.outbox.send(frame.clone()),
                }
                act.attach(socket, ctx);
                if let Some(seq) = last_seq {
                    act.note_seen(socket.id, seq);
                }
            }
        }));
    }

    fn close(
        &mut self,
        ctx: &mut Context<Self>,
        reason: CloseReason,
        resolved: bool,
        notes: Option<String>,
        request: Option<(Option<SocketId>, Reply)>,
        after: Option<AfterClose>,
    ) {
        let pool = self.services.pool.clone();
        let id = self.id;
        let write = async move {
            let mut conn = pool.get().await?;
            let session = conn
                .transaction(async |conn| {
                    queries::sessions::close(conn, id, reason.as_str(), resolved, notes.as_deref()).await
                })
                .await?;
            Ok::<_, AppError>(session)
        };
        ctx.wait(write.into_actor(self).map(move |outcome, act, ctx| {
            let session = match outcome {
                Ok(session) => session,
                Err(error) => {
                    if let Some((_, reply)) = request {
                        reply.fail(&error);
                    }
                    return;
                }
            };
            let agent_id = act.loaded().ok().and_then(|loaded| loaded.core.assigned_agent());
            if let Some(loaded) = act.loaded_mut() {
                loaded.core.replace_row(session);
                loaded.core.clear_typing();
            }
            act.tell_webhooks(WebhookEvent::SessionClosed, serde_json::json!({ "reason": reason }));
            for (_, timer) in act.typing.drain() {
                ctx.cancel_future(timer);
            }
            act.discard_draft();
            act.registry.do_send(ToQueue(SessionEnded { session_id: id, agent_id }));
            let text = match reason {
                CloseReason::Abandoned => "The chat was closed because the customer left.",
                CloseReason::CustomerEnded => "The customer ended the chat.",
                CloseReason::Resolved | CloseReason::ClosedByAgent | CloseReason::Deleted => {
                    "This chat has been closed."
                }
            };
            let message = NewChatMessage {
                message_type: "system".to_owned(),
                ..NewChatMessage::text(id, SenderType::System, None, text)
            };
            act.post(ctx, message, None, move |act, ctx, _| {
                let closed = ServerEvent::SessionClosed { session_id: id, reason };
                let requester = request.as_ref().and_then(|(socket_id, _)| *socket_id);
                act.deliver(&closed, requester);
                if let Some((_, reply)) = request {
                    reply.send(&closed);
                }
                match after {
                    Some(after) => after(act, ctx),
                    None => act.schedule_idle(ctx),
                }
            });
        }));
    }

    fn mark_read(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply, up_to_seq: i64) {
        let last_seq = match self.check_access(&origin.caller) {
            Ok(loaded) => loaded.core.row().last_seq,
            Err(error) => return reply.fail(&error),
        };
        if up_to_seq > last_seq {
            return reply.fail(&AppError::new(
                ErrorCode::InvalidPayload,
                format!("upToSeq {up_to_seq} is past the last message ({last_seq})"),
            ));
        }
        self.attach_origin(&origin, ctx);
        // A receipt that moves nothing forward is answered without a write or a push.
        if !self.core_mut().is_some_and(|core| core.read(origin.caller.user_id, up_to_seq)) {
            return reply.send(&ServerEvent::Ack { event: Cow::Borrowed("mark_read") });
        }
        let writes = self.receipts.entry(origin.caller.user_id).or_default();
        let pending = writes.pending.get_or_insert_with(|| PendingReceipt {
            caller: origin.caller.clone(),
            up_to_seq,
            from: None,
            replies: Vec::new(),
        });
        pending.up_to_seq = pending.up_to_seq.max(up_to_seq);
        pending.from = origin.socket_id();
        pending.replies.push(reply);
        self.write_receipt(ctx, origin.caller.user_id);
    }

    /// Writes a participant's latest receipt unless one is being written or
    /// was written less than `receipt_write_interval` ago; then a timer
    /// writes it when that time is up. A flood of receipts costs one write
    /// per interval, and the mailbox is never held while it is written.
    fn write_receipt(&mut self, ctx: &mut Context<Self>, user_id: Uuid) {
        let interval = self.services.receipt_write_interval;
        let Some(writes) = self.receipts.get_mut(&user_id) else { return };
        if writes.writing || writes.pending.is_none() {
            return;
        }
        let since = writes.written_at.map(|at| at.elapsed());
        if let Some(wait) = since.and_then(|since| interval.checked_sub(since)).filter(|wait| !wait.is_zero()) {
            if !writes.timer_set {
                writes.timer_set = true;
                ctx.run_later(wait, move |act, ctx| {
                    if let Some(writes) = act.receipts.get_mut(&user_id) {
                        writes.timer_set = false;
                    }
                    act.write_receipt(ctx, user_id);
                });
            }
            return;
        }
        let Some(receipt) = writes.pending.take() else { return };
        writes.writing = true;
        let pool = self.services.pool.clone();
        let (id, caller, up_to_seq) = (self.id, receipt.caller.clone(), receipt.up_to_seq);
        let write = async move {
            db::run(&pool, async |conn| {
                queries::receipts::mark_read(conn, id, caller.user_id, caller.role, up_to_seq).await
            })
            .await
        };
        ctx.spawn(write.into_actor(self).map(move |outcome, act, ctx| {
            if let Some(writes) = act.receipts.get_mut(&user_id) {
                writes.writing = false;
                writes.written_at = Some(std::time::Instant::now());
            }
            match outcome {
                Ok(read_to) => {
                    for reply in receipt.replies {
                        reply.send(&ServerEvent::Ack { event: Cow::Borrowed("mark_read") });
                    }
                    let role = if receipt.caller.role == Role::Admin { Role::Agent } else { receipt.caller.role };
                    act.deliver(
                        &ServerEvent::MessagesRead { session_id: act.id, role, up_to_seq: read_to },
                        receipt.from,
                    );
                }
                Err(error) => {
                    if let Some(core) = act.core_mut() {
                        core.read_not_stored(user_id);
                    }
                    for reply in receipt.replies {
                        reply.fail(&error);
                    }
                }
            }
            act.write_receipt(ctx, user_id);
        }));
    }

    /// Passes a typing indicator on when it starts and then at most every
    /// few seconds (the core decides); it expires unless renewed.
    fn start_typing(&mut self, ctx: &mut Context<Self>, origin: &Origin) {
        let caller = origin.caller.clone();
        let pass_on = self.core_mut().is_some_and(|core| core.typing(caller.user_id, std::time::Instant::now()));
        if pass_on {
            let event =
                ServerEvent::UserTyping { session_id: self.id, role: caller.role, name: caller.name.to_string() };
            self.deliver(&event, origin.socket_id());
        }
        if let Some(timer) = self.typing.remove(&caller.user_id) {
            ctx.cancel_future(timer);
        }
        let expiry = self.services.timing.typing_timeout;
        let timer = ctx.run_later(expiry, move |act, _| {
            act.typing.remove(&caller.user_id);
            if act.core_mut().is_some_and(|core| core.stopped_typing(caller.user_id)) {
                act.deliver(
                    &ServerEvent::TypingStopped {
                        session_id: act.id,
                        role: caller.role,
                        name: caller.name.to_string(),
                    },
                    None,
                );
            }
        });
        self.typing.insert(origin.caller.user_id, timer);
    }

    /// Ends a typing indicator, if one is showing.
    fn stop_typing(&mut self, ctx: &mut Context<Self>, caller: &Caller, except: Option<SocketId>) {
        if let Some(timer) = self.typing.remove(&caller.user_id) {
            ctx.cancel_future(timer);
        }
        if !self.core_mut().is_some_and(|core| core.stopped_typing(caller.user_id)) {
            return;
        }
        let name: &Arc<str> = &caller.name;
        self.deliver(
            &ServerEvent::TypingStopped { session_id: self.id, role: caller.role, name: name.to_string() },
            except,
        );
    }

    /// Changes the title, category or priority (staff only); a waiting
    /// session or offline request moves in the queue with its new priority.
    fn update(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        reply: Reply,
        title: Option<String>,
        category: Option<String>,
        priority: Option<Priority>,
    ) {
        let status = match self.check_access(&origin.caller) {
            // The customer names and files their own chat; its priority is the staff's to set.
            Ok(_) if origin.caller.role == Role::Customer && priority.is_some() => {
                return reply.fail(&AppError::new(ErrorCode::Forbidden, "only agents and admins change a priority"))
            }
            Ok(loaded) => loaded.core.status(),
            Err(error) => return reply.fail(&error),
        };
        let pool = self.services.pool.clone();
        let id = self.id;
        let (new_title, new_category) = (title.clone(), category.clone());
        let write = async move {
            db::run(&pool, async |conn| {
                queries::sessions::update_details(conn, id, new_title.as_deref(), new_category.as_deref(), priority)
                    .await
            })
            .await
        };
        ctx.wait(write.into_actor(self).map(move |outcome, act, _| {
            let session = match outcome {
                Ok(session) => session,
                Err(error) => return reply.fail(&error),
            };
            let moved =
                priority.is_some_and(|priority| Some(priority) != act.loaded().ok().map(|l| l.core.row().priority));
            if let Some(core) = act.core_mut() {
                core.replace_row(session);
            }
            if let (true, SessionStatus::Waiting | SessionStatus::Offline, Some(priority)) = (moved, status, priority) {
                act.registry.do_send(ToQueue(Reprioritize { session_id: id, priority }));
            }
            let Some(view) = act.view() else { return };
            let event = ServerEvent::SessionUpdated { session: view };
            act.deliver(&event, None);
            reply.send(&event);
        }));
    }

    /// Closes the session if it is open, then hides it (customer or admin).
    fn delete(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply) {
        let open = match self.check_access(&origin.caller) {
            Ok(_) if origin.caller.role == Role::Agent => {
                return reply
                    .fail(&AppError::new(ErrorCode::Forbidden, "agents close sessions; they do not delete them"))
            }
            Ok(loaded) => loaded.core.is_open(),
            Err(error) => return reply.fail(&error),
        };
        if open {
            // Hidden only once the close (and its note) is stored.
            self.close(
                ctx,
                CloseReason::Deleted,
                false,
                None,
                None,
                Some(Box::new(move |act, ctx| act.hide(ctx, reply))),
            );
        } else {
            self.hide(ctx, reply);
        }
    }

    /// Hides every message (the customer or an admin), for everyone at once.
    fn clear_messages(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply) {
        match self.check_access(&origin.caller) {
            Ok(_) if origin.caller.role == Role::Agent => {
                return reply.fail(&AppError::new(ErrorCode::Forbidden, "agents do not clear a chat's messages"))
            }
            Ok(_) => {}
            Err(error) => return reply.fail(&error),
        }
        let pool = self.services.pool.clone();
        let id = self.id;
        let clear = async move {
            let mut conn = pool.get().await?;
            conn.transaction(async |conn| queries::messages::clear(conn, id).await).await?;
            Ok::<_, AppError>(())
        };
        ctx.wait(clear.into_actor(self).map(move |outcome, act, _| match outcome {
            Ok(()) => {
                if let Some(core) = act.core_mut() {
                    core.messages_cleared();
                }
                let event = ServerEvent::MessagesCleared { session_id: id };
                act.deliver(&event, None);
                reply.send(&event);
            }
            Err(error) => reply.fail(&error),
        }));
    }

    fn hide(&mut self, ctx: &mut Context<Self>, reply: Reply) {
        let pool = self.services.pool.clone();
        let id = self.id;
        let hide = async move { db::run(&pool, async |conn| queries::sessions::soft_delete(conn, id).await).await };
        ctx.wait(hide.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Ok(()) => {
                act.state =
                    State::Missing(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"));
                reply.send(&ServerEvent::SessionClosed { session_id: id, reason: CloseReason::Deleted });
                act.schedule_retire_soon(ctx);
            }
            Err(error) => reply.fail(&error),
        }));
    }

    fn transfer(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        reply: Reply,
        (to_agent, to_team): (Option<Uuid>, Option<Uuid>),
        priority: Option<Priority>,
        reason: Option<String>,
    ) {
        if to_agent.is_some() && to_team.is_some() {
            return reply
                .fail(&AppError::new(ErrorCode::InvalidPayload, "transfer to an agent or to a team, not both"));
        }
        let Some(loaded) = self.loaded_mut() else { return reply.fail(&AppError::not_found("session")) };
        let from_agent = match loaded.core.begin_transfer(&origin.caller, to_agent) {
            Ok(transfer) => transfer.from_agent,
            Err(error) => return reply.fail(&error),
        };
        let (current_priority, customer_name) = (loaded.core.row().priority, loaded.customer_name.clone());
        let request = TransferSession {
            session_id: self.id,
            customer_name,
            from_agent,
            to_agent,
            to_team,
            priority: priority.unwrap_or(current_priority),
            reason,
            unanswered: false,
        };
        self.hand_on(ctx, request, Some(reply), priority);
    }

    /// Watches for a customer left unanswered by their agent: once they have
    /// waited `AGENT_REPLY_TIMEOUT_MS`, the chat goes back to the queue.
    ///
    /// One timer at most, never moved: when it fires it looks again and, if
    /// the customer's wait started later, sleeps for the rest. So a busy chat
    /// costs no timer per message.
    fn watch_reply(&mut self, ctx: &mut Context<Self>) {
        if self.reply_timer.is_some() {
            return;
        }
        let Some(timeout) = self.services.timing.agent_reply_timeout else { return };
        let Some(since) = self.core().and_then(SessionCore::unanswered_since) else { return };
        let left = timeout.saturating_sub(since.elapsed());
        self.reply_timer = Some(ctx.run_later(left, |act, ctx| {
            act.reply_timer = None;
            act.requeue_unanswered(ctx);
        }));
    }

    fn requeue_unanswered(&mut self, ctx: &mut Context<Self>) {
        let Some(timeout) = self.services.timing.agent_reply_timeout else { return };
        let session_id = self.id;
        let Some(loaded) = self.loaded_mut() else { return };
        let Some(from_agent) = loaded.core.begin_unanswered_requeue(timeout) else { return self.watch_reply(ctx) };
        log::info!(
            "session {session_id}: agent {from_agent} left the customer unanswered for {timeout:?}; back to the queue"
        );
        let request = TransferSession {
            session_id,
            customer_name: loaded.customer_name.clone(),
            from_agent,
            to_agent: None,
            to_team: None,
            priority: loaded.core.row().priority,
            reason: Some("no_reply".to_owned()),
            unanswered: true,
        };
        self.hand_on(ctx, request, None, None);
    }

    /// Hands the chat on through the queue: to the agent named, or back in line.
    fn hand_on(
        &mut self,
        ctx: &mut Context<Self>,
        request: TransferSession,
        reply: Option<Reply>,
        priority: Option<Priority>,
    ) {
        let unanswered = request.unanswered;
        let from_agent = request.from_agent;
        let to_team = request.to_team;
        let why = request.reason.clone();
        let asked = self.ask_queue(request);
        ctx.wait(asked.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Ok(TransferOutcome::Queued { position }) => {
                act.detach_agents();
                let agent_name = act.loaded_mut().and_then(|loaded| {
                    loaded.core.transferred(None, priority);
                    if to_team.is_some() {
                        loaded.core.routed_to(to_team);
                    }
                    loaded.agent_name.take()
                });
                if let Some(reply) = reply {
                    reply.send(&ServerEvent::SessionTransferred { session_id: act.id, status: SessionStatus::Waiting, to_agent_id: None });
                }
                act.deliver(
                    &ServerEvent::StatusChanged {
                        session_id: act.id,
                        status: SessionStatus::Waiting,
                        agent_name: None,
                        queue_position: Some(position),
                    },
                    None,
                );
                if unanswered {
                    // For whoever reads the chat later: why it changed hands.
                    let who = agent_name.unwrap_or_else(|| "The agent".to_owned());
                    let note = NewChatMessage::text(
                        act.id,
                        SenderType::Note,
                        Some(from_agent),
                        format!("{who} did not answer in time; the chat went back to the queue."),
                    );
                    act.post(ctx, note, Some(who), |_, _, _| {});
                    act.post_system(ctx, format!("Sorry for the wait: we're finding another member of our team. You're number {position} in the queue."));
                } else {
                    act.post_system(ctx, format!("You're being transferred to another member of our team. You're number {position} in the queue."));
                }
            }
            Ok(TransferOutcome::Reassigned { agent_id }) => {
                act.detach_agents();
                // The new agent's name arrives with AgentAssigned; the old one is out from now.
                let from_name = act.loaded_mut().and_then(|loaded| {
                    loaded.core.transferred(Some(agent_id), None);
                    loaded.agent_name.take()
                });
                // Why it changed hands, for the agent who takes it: in the history they are sent.
                if let Some(why) = why {
                    let who = from_name.unwrap_or_else(|| "The agent".to_owned());
                    let note = NewChatMessage::text(act.id, SenderType::Note, Some(from_agent), format!("{who} passed the chat on: {why}"));
                    act.post(ctx, note, Some(who), |_, _, _| {});
                }
                if let Some(reply) = reply {
                    reply.send(&ServerEvent::SessionTransferred {
                        session_id: act.id,
                        status: SessionStatus::Assigned,
                        to_agent_id: Some(agent_id),
                    });
                }
                // The new agent's AgentAssigned follows from their agent actor.
            }
            Err(error) => {
                if let Some(core) = act.core_mut() {
                    core.transfer_failed();
                }
                match reply {
                    Some(reply) => reply.fail(&error),
                    None => {
                        log::warn!("session {}: could not go back to the queue: {error}", act.id);
                        act.watch_reply(ctx);
                    }
                }
            }
        }));
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match self.new_chat.take() {
            Some(chat) => self.create(ctx, chat),
            None => self.load(ctx),
        }
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        for socket in self.participants.values() {
            socket.outbox.tell(Outbound::Detached(self.id));
        }
        self.registry.do_send(SessionStopped { session_id: self.id, addr: ctx.address() });
    }
}

impl Handler<SessionCommand> for SessionActor {
    type Result = ();

    fn handle(&mut self, command: SessionCommand, ctx: &mut Self::Context) {
        self.command(command, ctx);
        // A session woken over HTTP has nobody attached: it retires after the idle time.
        self.schedule_idle(ctx);
    }
}

impl SessionActor {
    fn command(&mut self, SessionCommand { origin, reply, request }: SessionCommand, ctx: &mut Context<Self>) {
        if let Err(error) = self.loaded() {
            return reply.fail(&error);
        }
        if origin.caller.role == Role::Partner && !request.is_for_partners() {
            return reply.fail(&AppError::new(
                ErrorCode::Forbidden,
                "a partner follows a chat, writes, types and reads in it; nothing more",
            ));
        }
        match request {
            SessionRequest::InvitePartner { partner_org_id, with_history } => {
                self.invite_partner(ctx, origin, reply, partner_org_id, with_history)
            }
            SessionRequest::RemovePartner { partner_org_id } => self.remove_partner(ctx, origin, reply, partner_org_id),
            SessionRequest::Send { content, client_msg_id, attachments } => {
                self.send_message(ctx, origin, Answer::Ack(reply), Outgoing { content, client_msg_id, attachments })
            }
            SessionRequest::Note { content, client_msg_id } => {
                self.add_note(ctx, origin, reply, content, client_msg_id)
            }
            SessionRequest::Ask { content, client_msg_id } => {
                if origin.caller.role != Role::Customer {
                    return reply.fail(&AppError::new(ErrorCode::Forbidden, "only the customer asks the bot"));
                }
                let outgoing = Outgoing { content, client_msg_id, attachments: Vec::new() };
                self.send_message(ctx, origin, Answer::BotAnswer(reply), outgoing)
            }
            SessionRequest::Update { title, category, priority } => {
                self.update(ctx, origin, reply, title, category, priority)
            }
            SessionRequest::Delete => self.delete(ctx, origin, reply),
            SessionRequest::ClearMessages => self.clear_messages(ctx, origin, reply),
            SessionRequest::Resume { after_seq } => self.resume(ctx, origin, reply, after_seq),
            SessionRequest::Typing => match self.check_open(&origin.caller) {
                Ok(_) => {
                    self.attach_origin(&origin, ctx);
                    self.start_typing(ctx, &origin);
                    reply.send(&ServerEvent::Ack { event: Cow::Borrowed("typing") });
                }
                Err(error) => reply.fail(&error),
            },
            SessionRequest::StopTyping => match self.check_access(&origin.caller) {
                Ok(_) => {
                    self.stop_typing(ctx, &origin.caller, origin.socket_id());
                    reply.send(&ServerEvent::Ack { event: Cow::Borrowed("stop_typing") });
                }
                Err(error) => reply.fail(&error),
            },
            SessionRequest::MarkRead { up_to_seq } => self.mark_read(ctx, origin, reply, up_to_seq),
            SessionRequest::RequestAgent { reason } => {
                let (decision, agent_name) = match self.loaded() {
                    Ok(loaded) => match loaded.core.request_agent(&origin.caller) {
                        Ok(decision) => (decision, loaded.agent_name.clone()),
                        Err(error) => return reply.fail(&error),
                    },
                    Err(error) => return reply.fail(&error),
                };
                self.attach_origin(&origin, ctx);
                match decision {
                    AgentRequest::Enqueue => self.hand_off(
                        ctx,
                        reason.or_else(|| Some("customer_requested".to_owned())),
                        Some((origin.socket_id(), reply)),
                        None,
                    ),
                    AgentRequest::TellPosition => {
                        // Already waiting: say where, change nothing.
                        let queue = self.registry.clone();
                        let id = self.id;
                        ctx.wait(
                            async move { queue.send(ToQueue(PositionOf(id))).await.ok().flatten() }
                                .into_actor(self)
                                .map(move |position, _, _| {
                                    reply.send(&ServerEvent::StatusChanged {
                                        session_id: id,
                                        status: SessionStatus::Waiting,
                                        agent_name: None,
                                        queue_position: position,
                                    })
                                }),
                        );
                    }
                    AgentRequest::AsIs(status) => reply.send(&ServerEvent::StatusChanged {
                        session_id: self.id,
                        status,
                        agent_name,
                        queue_position: None,
                    }),
                }
            }
            SessionRequest::End => match self.check_open(&origin.caller) {
                Ok(_) => {
                    self.close(ctx, CloseReason::CustomerEnded, false, None, Some((origin.socket_id(), reply)), None)
                }
                Err(error) => reply.fail(&error),
            },
            SessionRequest::Close { resolved, notes } => match self.check_open(&origin.caller) {
                Ok(_) => {
                    let reason = if resolved { CloseReason::Resolved } else { CloseReason::ClosedByAgent };
                    self.close(ctx, reason, resolved, notes, Some((origin.socket_id(), reply)), None)
                }
                Err(error) => reply.fail(&error),
            },
            SessionRequest::Transfer { to_agent_id, to_team_id, priority, reason } => {
                self.transfer(ctx, origin, reply, (to_agent_id, to_team_id), priority, reason)
            }
            SessionRequest::LeaveMessage { email, content, client_msg_id } => {
                self.leave_message(ctx, origin, reply, email, (content, client_msg_id))
            }
        }
    }
}

impl SessionActor {
    /// Brings a partner organisation into the chat: stored first, then
    /// "<name> joined the chat" for everyone, and the organisation's
    /// members' sockets are told (`partner:invited`).
    fn invite_partner(
        &mut self,
        ctx: &mut Context<Self>,
        origin: Origin,
        reply: Reply,
        partner_org_id: Uuid,
        with_history: bool,
    ) {
        let Some(core) = self.core_mut() else { return reply.fail(&AppError::not_found("session")) };
        if let Err(error) = core.begin_invite(&origin.caller, partner_org_id) {
            return reply.fail(&error);
        }
        let visible_after_seq = if with_history { 0 } else { core.row().last_seq };
        let (pool, id, invited_by) = (self.services.pool.clone(), self.id, origin.caller.user_id);
        let write = async move {
            db::run(&pool, async |conn| {
                let Some(org) = queries::partners::find(conn, partner_org_id).await? else { return Ok(None) };
                queries::partners::invite(conn, id, partner_org_id, invited_by, visible_after_seq).await?;
                Ok(Some(org.name))
            })
            .await
        };
        ctx.spawn(write.into_actor(self).map(move |outcome, act, ctx| {
            let name = match outcome {
                Ok(Some(name)) => name,
                Ok(None) => {
                    if let Some(core) = act.core_mut() {
                        core.invite_failed(partner_org_id);
                    }
                    return reply.fail(&AppError::not_found("partner organisation"));
                }
                Err(error) => {
                    if let Some(core) = act.core_mut() {
                        core.invite_failed(partner_org_id);
                    }
                    return reply.fail(&error);
                }
            };
            if let Some(core) = act.core_mut() {
                core.invited(Invited { partner_org_id, name: name.clone(), visible_after_seq });
            }
            let joined =
                ServerEvent::PartnerJoined { session_id: id, partner_org_id, name: name.clone(), with_history };
            act.deliver(&joined, origin.socket_id());
            reply.send(&joined);
            act.registry.do_send(ToPartnerOrg {
                partner_org_id,
                event: ServerEvent::PartnerInvited { session_id: id, with_history },
            });
            act.post_system(ctx, format!("{name} joined the chat."));
        }));
    }

    /// Ends a partner organisation's access: its members' sockets leave the
    /// chat at once (told `partner:removed`), and the others see "<name> left the chat".
    fn remove_partner(&mut self, ctx: &mut Context<Self>, origin: Origin, reply: Reply, partner_org_id: Uuid) {
        let checked = match self.core() {
            Some(core) => core.check_remove(&origin.caller, partner_org_id).map(|_| ()),
            None => Err(AppError::not_found("session")),
        };
        if let Err(error) = checked {
            return reply.fail(&error);
        }
        let (pool, id) = (self.services.pool.clone(), self.id);
        let write =
            async move { db::run(&pool, async |conn| queries::partners::remove(conn, id, partner_org_id).await).await };
        ctx.spawn(write.into_actor(self).map(move |outcome, act, ctx| {
            if let Err(error) = outcome {
                return reply.fail(&error);
            }
            let Some(removed) = act.core_mut().and_then(|core| core.partner_removed(partner_org_id)) else {
                // Removed meanwhile by another request, which told everyone.
                return reply.fail(&AppError::not_found("partner in this chat"));
            };
            let gone: Vec<SocketId> = act
                .participants
                .iter()
                .filter(|(_, socket)| {
                    socket.caller.role == Role::Partner && socket.caller.partner_org_id == Some(partner_org_id)
                })
                .map(|(socket_id, _)| *socket_id)
                .collect();
            for socket_id in gone {
                act.seen_up_to.remove(&socket_id);
                if let Some(socket) = act.participants.remove(&socket_id) {
                    act.stop_typing(ctx, &socket.caller, None);
                    socket.outbox.tell(Outbound::Detached(id));
                }
            }
            act.registry
                .do_send(ToPartnerOrg { partner_org_id, event: ServerEvent::PartnerRemoved { session_id: id } });
            let left = ServerEvent::PartnerLeft { session_id: id, partner_org_id, name: removed.name.clone() };
            act.deliver(&left, origin.socket_id());
            reply.send(&left);
            act.post_system(ctx, format!("{} left the chat.", removed.name));
            act.schedule_idle(ctx);
        }));
    }
}

impl Handler<Quiesce> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Quiesce, _: &mut Self::Context) {}
}

impl Handler<Superseded> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Superseded, ctx: &mut Self::Context) {
        for (_, socket) in self.participants.drain() {
            socket.outbox.tell(Outbound::Close("this chat moved to another server: reconnect and resume".to_owned()));
        }
        ctx.stop();
    }
}

impl Handler<CheckOwnership> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: CheckOwnership, ctx: &mut Self::Context) {
        let (pool, id, ours) = (self.services.pool.clone(), self.id, self.owner_epoch);
        let check = async move { db::run(&pool, async |conn| queries::sessions::owner_epoch(conn, id).await).await };
        ctx.spawn(check.into_actor(self).map(move |now, _, ctx| match now {
            Ok(Some(epoch)) if epoch != ours => {
                log::warn!("session {id} was taken over while its lease had lapsed");
                ctx.notify(Superseded);
            }
            Ok(_) => {}
            Err(error) => log::warn!("session {id}: ownership not checked: {error}"),
        }));
    }
}

impl Handler<DropSocketsOn> for SessionActor {
    type Result = ();

    fn handle(&mut self, DropSocketsOn(node): DropSocketsOn, ctx: &mut Self::Context) {
        let gone: Vec<SocketId> = self
            .participants
            .iter()
            .filter(|(_, socket)| socket.outbox.remote_node() == Some(&node))
            .map(|(id, _)| *id)
            .collect();
        for socket_id in gone {
            self.detach(socket_id, ctx);
        }
    }
}

impl Handler<Detach> for SessionActor {
    type Result = ();

    fn handle(&mut self, Detach { socket_id }: Detach, ctx: &mut Self::Context) {
        self.detach(socket_id, ctx);
    }
}

impl SessionActor {
    fn detach(&mut self, socket_id: SocketId, ctx: &mut Context<Self>) {
        self.seen_up_to.remove(&socket_id);
        let Some(socket) = self.participants.remove(&socket_id) else { return };
        if socket.caller.role == Role::Customer && !self.has_customer() {
            self.stop_typing(ctx, &socket.caller, None);
            // The abandonment clock starts when the customer's last socket closes.
            if self.status().is_some_and(|status| status != SessionStatus::Closed) {
                let pool = self.services.pool.clone();
                let id = self.id;
                ctx.spawn(
                    async move {
                        if let Err(error) = db::run(&pool, async |conn| queries::sessions::touch(conn, id).await).await
                        {
                            log::warn!("session {id}: last activity not recorded: {error}");
                        }
                    }
                    .into_actor(self),
                );
            }
        }
        self.schedule_idle(ctx);
    }
}

impl Handler<AgentAssigned> for SessionActor {
    type Result = ();

    fn handle(&mut self, assigned: AgentAssigned, ctx: &mut Self::Context) {
        let AgentAssigned { agent_id, agent_name, sockets, pickup, welcomed } = assigned;
        let taken = self.loaded_mut().is_some_and(|loaded| {
            let taken = loaded.core.assigned(agent_id);
            if taken {
                loaded.agent_name = Some(agent_name.clone());
            }
            taken
        });
        if !taken {
            if let Some((_, reply)) = pickup {
                reply.fail(&AppError::new(ErrorCode::SessionClosed, "this chat has ended"));
            }
            self.registry.do_send(ToQueue(SessionEnded { session_id: self.id, agent_id: Some(agent_id) }));
            return;
        }
        self.deliver(
            &ServerEvent::StatusChanged {
                session_id: self.id,
                status: SessionStatus::Assigned,
                agent_name: Some(agent_name.clone()),
                queue_position: None,
            },
            None,
        );
        self.tell_webhooks(
            WebhookEvent::SessionAssigned,
            serde_json::json!({ "agentId": agent_id, "agentName": agent_name }),
        );
        self.watch_reply(ctx);
        let message = NewChatMessage {
            message_type: "system".to_owned(),
            ..NewChatMessage::text(self.id, SenderType::System, None, format!("{agent_name} joined the chat."))
        };
        // The agent's sockets join after the history is sent, so the history
        // already holds this message and nothing arrives twice.
        self.post(ctx, message, None, move |act, ctx, _| {
            act.welcome_agent_sockets(ctx, sockets, pickup, Some(welcomed))
        });
    }
}

impl Handler<AttachAgentSocket> for SessionActor {
    type Result = ();

    fn handle(&mut self, AttachAgentSocket { agent_id, socket }: AttachAgentSocket, ctx: &mut Self::Context) {
        let assigned = self.loaded().ok().is_some_and(|loaded| loaded.core.is_with(agent_id));
        if assigned {
            self.welcome_agent_sockets(ctx, vec![socket], None, None);
        } else {
            self.schedule_idle(ctx);
        }
    }
}

impl Handler<QueuePositionChanged> for SessionActor {
    type Result = ();

    fn handle(&mut self, QueuePositionChanged { position }: QueuePositionChanged, _: &mut Self::Context) {
        if self.status() == Some(SessionStatus::Waiting) {
            self.deliver_to(Role::Customer, &ServerEvent::QueuePosition { session_id: self.id, position });
        }
    }
}

impl Handler<Requeued> for SessionActor {
    type Result = ();

    fn handle(&mut self, Requeued { position }: Requeued, ctx: &mut Self::Context) {
        let requeued = self.loaded_mut().is_some_and(|loaded| {
            let requeued = loaded.core.requeued();
            if requeued {
                loaded.agent_name = None;
            }
            requeued
        });
        if !requeued {
            return;
        }
        self.detach_agents();
        self.deliver(
            &ServerEvent::StatusChanged {
                session_id: self.id,
                status: SessionStatus::Waiting,
                agent_name: None,
                queue_position: Some(position),
            },
            None,
        );
        self.post_system(
            ctx,
            format!("Your agent is no longer available. You're number {position} in the queue for the next one."),
        );
    }
}

impl Handler<OfferOffline> for SessionActor {
    type Result = ();

    /// The queue found no agent online for a while: the waiting customer may leave a message.
    fn handle(&mut self, OfferOffline { reason }: OfferOffline, _: &mut Self::Context) {
        if self.status() == Some(SessionStatus::Waiting) {
            self.deliver_to(
                Role::Customer,
                &ServerEvent::SessionOffline { session_id: self.id, reason, opens_at: None },
            );
        }
    }
}

impl Handler<CloseIfAbandoned> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: CloseIfAbandoned, ctx: &mut Self::Context) {
        let open = self.status().is_some_and(|status| status != SessionStatus::Closed);
        if open && !self.has_customer() {
            log::info!("session {} closed: the customer has been away too long", self.id);
            self.close(ctx, CloseReason::Abandoned, false, None, None, None);
        } else {
            self.schedule_idle(ctx);
        }
    }
}

impl Handler<Retire> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        // Sockets that attached after the actor asked to retire move to its successor.
        for (_, socket) in self.participants.drain() {
            self.registry.do_send(ToSession { session_id: self.id, wake: true, mail: Reattach(socket).into() });
        }
        ctx.stop();
    }
}

impl Handler<BotDelta> for SessionActor {
    type Result = ();

    fn handle(&mut self, BotDelta { draft_id, text }: BotDelta, _: &mut Self::Context) {
        // Text that comes after the chat left the bot, or past the bound, is not shown.
        if self.status() != Some(SessionStatus::Bot) {
            return;
        }
        let Some(draft) = self.draft.as_mut().filter(|draft| draft.id == draft_id && draft.open) else { return };
        if draft.text.len() + text.len() > MAX_DRAFT_BYTES {
            // Shown no further, never with a hole: the stored answer is whole.
            draft.open = false;
            return;
        }
        draft.text.push_str(&text);
        self.deliver(&ServerEvent::MessageDelta { session_id: self.id, draft_id, text }, None);
    }
}

impl Handler<Reattach> for SessionActor {
    type Result = ();

    fn handle(&mut self, Reattach(socket): Reattach, ctx: &mut Self::Context) {
        if self.check_access(&socket.caller).is_ok() {
            self.attach(&socket, ctx);
        }
    }
}
