//! What the customer, agent and partner sockets share: heartbeat, frame limits,
//! parsing at the edge, and disconnecting a client that stops reading.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, Frame, ProtocolError};
use uuid::Uuid;

use crate::actors::messages::{Caller, RegisterSocket, Reply, SocketClosed, SocketHandle};
use crate::actors::registry::SessionRegistry;
use crate::bus::wire::OutboundQueue;
use crate::bus::{Outbound, Outbox};
use crate::error::{AppError, ErrorCode};
use crate::protocol::client::{AdminRequest, Inbound};
use crate::protocol::server::ServerEvent;
use crate::startup::AppState;
use crate::telemetry::Gauges;

/// How often the server pings.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A client silent this long is gone.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a socket checks that its client takes what it is sent.
pub const READ_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Requests one socket may have waiting for an answer; past it the next is refused.
pub const MAX_WAITING_REQUESTS: usize = 64;
/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What tells a customer socket from an agent or a partner socket.
pub trait SocketRole: Unpin + 'static {
    type Request: Send + 'static;
    const NAME: &'static str;
    fn parse(text: &str) -> Inbound<Self::Request>;
    fn dispatch(registry: &Addr<SessionRegistry>, socket: SocketHandle, reply: Reply, request: Self::Request);

    /// An admin's request the socket answers itself, or the request back.
    fn admin(request: Self::Request) -> Result<AdminRequest, Self::Request> {
        Err(request)
    }
}

/// How often an admin who subscribed gets `stats:update`.
pub const STATS_UPDATE_INTERVAL: Duration = Duration::from_secs(5);

pub struct Socket<R: SocketRole> {
    id: Uuid,
    caller: Caller,
    registry: Addr<SessionRegistry>,
    gauges: Arc<Gauges>,
    handle: Option<SocketHandle>,
    last_heard: Instant,
    sessions: HashSet<Uuid>,
    wire: OutboundQueue,
    backlog_limit: u64,
    /// What the client had taken at the last read check.
    taken_at_last_check: u64,
    /// Requests sent on and not answered yet.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// For an admin's socket: what answers `admin:*` requests.
    operations: Option<actix_web::web::Data<AppState>>,
    stats_feed: Option<SpawnHandle>,
    role: PhantomData<R>,
}

impl<R: SocketRole> Socket<R> {
    pub fn new(
        caller: Caller,
        registry: Addr<SessionRegistry>,
        gauges: Arc<Gauges>,
        wire: OutboundQueue,
        backlog_limit: u64,
    ) -> Self {
        Socket {
            id: Uuid::new_v4(),
            caller,
            registry,
            gauges,
            handle: None,
            last_heard: Instant::now(),
            sessions: HashSet::new(),
            wire,
            backlog_limit,
            taken_at_last_check: 0,
            waiting: Default::default(),
            operations: None,
            stats_feed: None,
            role: PhantomData,
        }
    }

    /// Lets the socket answer `admin:*` requests (give it only to admins' sockets).
    pub fn answering_admins(mut self, operations: actix_web::web::Data<AppState>) -> Self {
        self.operations = Some(operations);
        self
    }

    /// An admin's request: answered from the same figures as the REST admin
    /// API, computed beside the mailbox (`spawn`) so the socket keeps serving.
    fn on_admin(&mut self, ctx: &mut Context<Self>, reply: Reply, request: AdminRequest) {
        let Some(operations) = self.operations.clone().filter(|_| self.caller.role == crate::domain::Role::Admin)
        else {
            return reply.fail(&AppError::new(ErrorCode::Forbidden, "admins only"));
        };
        if let AdminRequest::Stats { subscribe: true } = request {
            self.subscribe_to_stats(ctx, operations.clone());
        }
        let answer = async move {
            let event = match request {
                AdminRequest::Stats { .. } => {
                    ServerEvent::AdminStats(as_value(crate::routes::admin::stats_now(&operations).await?))
                }
                AdminRequest::Queue => {
                    ServerEvent::AdminQueue(as_value(crate::routes::admin::queue_now(&operations).await?))
                }
                AdminRequest::Health => {
                    ServerEvent::AdminHealth(as_value(crate::routes::health::health_now(&operations).await))
                }
            };
            Ok::<_, AppError>(event)
        };
        ctx.spawn(answer.into_actor(self).map(move |answer, _, _| match answer {
            Ok(event) => reply.send(&event),
            Err(error) => reply.fail(&error),
        }));
    }

    /// `stats:update` every `STATS_UPDATE_INTERVAL` until the socket closes; once per socket.
    fn subscribe_to_stats(&mut self, ctx: &mut Context<Self>, operations: actix_web::web::Data<AppState>) {
        if self.stats_feed.is_some() {
            return;
        }
        let computing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.stats_feed = Some(ctx.run_interval(STATS_UPDATE_INTERVAL, move |act, ctx| {
            // A slow database skips a beat rather than piling up computations.
            if computing.swap(true, std::sync::atomic::Ordering::AcqRel) {
                return;
            }
            let (operations, computing) = (operations.clone(), computing.clone());
            let outbox = act.handle(ctx).outbox;
            ctx.spawn(
                async move {
                    match crate::routes::admin::stats_now(&operations).await {
                        Ok(stats) => outbox.send(ServerEvent::StatsUpdate(as_value(stats)).frame(None)),
                        Err(error) => log::warn!("stats:update not sent: {error}"),
                    }
                    computing.store(false, std::sync::atomic::Ordering::Release);
                }
                .into_actor(act),
            );
        }));
    }

    fn handle(&mut self, ctx: &mut Context<Self>) -> SocketHandle {
        self.handle
            .get_or_insert_with(|| SocketHandle {
                id: self.id,
                caller: self.caller.clone(),
                outbox: Outbox::local(ctx.address().recipient()),
            })
            .clone()
    }

    fn reply_error(&mut self, ctx: &mut Context<Self>, reference: Option<String>, error: AppError) {
        let outbox = self.handle(ctx).outbox;
        Reply::new(reference, outbox).fail(&error);
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: CloseCode, description: &str) {
        self.wire.close(Some(CloseReason { code, description: Some(description.to_owned()) }), false);
        ctx.stop();
    }

    /// A client with more than `backlog_limit` bytes unread is not keeping
    /// up: it gets a close frame in place of what it has not read, and its
    /// actor stops, so it holds nothing more than that frame.
    fn disconnect_slow_reader(&mut self, ctx: &mut Context<Self>, backlog: u64) {
        log::warn!("{} socket {} disconnected: {backlog} bytes unread", R::NAME, self.id);
        let description = "too slow: the client is not reading its messages".to_owned();
        self.wire.close(Some(CloseReason { code: CloseCode::Policy, description: Some(description) }), true);
        ctx.stop();
    }

    /// Over the limit and nothing taken since the last check: the client
    /// has stopped reading. (One large frame read slowly is not a stop.)
    fn check_reading(&mut self, ctx: &mut Context<Self>) {
        let taken = self.wire.taken();
        let backlog = self.wire.backlog() as u64;
        if backlog > self.backlog_limit && taken == self.taken_at_last_check {
            self.disconnect_slow_reader(ctx, backlog);
        }
        self.taken_at_last_check = taken;
    }

    /// Checked before each frame is queued: over the limit with nothing
    /// taken since the last check, or far over it whatever the client took.
    fn too_far_behind(&self) -> Option<u64> {
        let backlog = self.wire.backlog() as u64;
        let stalled = backlog > self.backlog_limit && self.wire.taken() == self.taken_at_last_check;
        (stalled || backlog > self.backlog_limit.saturating_mul(4)).then_some(backlog)
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let inbound = R::parse(text);
        match inbound.request {
            Ok(_) if self.waiting.load(std::sync::atomic::Ordering::Relaxed) >= MAX_WAITING_REQUESTS => {
                // A client that sends faster than it is answered would make the server hold its work.
                let mut error = AppError::new(
                    ErrorCode::RateLimited,
                    format!("{MAX_WAITING_REQUESTS} requests are already waiting for an answer; wait for them"),
                );
                error.retry_after = Some(1);
                self.reply_error(ctx, inbound.reference, error);
            }
            Ok(request) => {
                let socket = self.handle(ctx);
                let reply = Reply::counted(inbound.reference, socket.outbox.clone(), self.waiting.clone());
                match R::admin(request) {
                    Ok(admin) => self.on_admin(ctx, reply, admin),
                    Err(request) => R::dispatch(&self.registry, socket, reply, request),
                }
            }
            Err(error) => self.reply_error(ctx, inbound.reference, error),
        }
    }
}

impl<R: SocketRole> Actor for Socket<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.gauges.connection_opened(R::NAME);
        let handle = self.handle(ctx);
        self.registry.do_send(RegisterSocket(handle, ctx.address().recipient()));
        // This actor runs whether or not the client reads, so the heartbeat
        // and the backlog check always do.
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if !act.wire.is_connected() {
                return ctx.stop();
            }
            if act.last_heard.elapsed() > CLIENT_TIMEOUT {
                log::info!("{} socket {} timed out", R::NAME, act.id);
                // A silent peer will not read what waits for it either.
                let reason = CloseReason { code: CloseCode::Policy, description: Some("no heartbeat".to_owned()) };
                act.wire.close(Some(reason), true);
                ctx.stop();
            } else {
                act.wire.ping(b"");
            }
        });
        ctx.run_interval(READ_CHECK_INTERVAL, |act, ctx| act.check_reading(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.gauges.connection_closed(R::NAME);
        self.registry.do_send(SocketClosed {
            socket_id: self.id,
            caller: self.caller.clone(),
            sessions: self.sessions.drain().collect(),
        });
    }
}

impl<R: SocketRole> StreamHandler<Result<Frame, ProtocolError>> for Socket<R> {
    fn handle(&mut self, item: Result<Frame, ProtocolError>, ctx: &mut Self::Context) {
        match item {
            Ok(Frame::Text(bytes)) => {
                self.last_heard = Instant::now();
                match std::str::from_utf8(&bytes) {
                    Ok(text) => self.on_text(ctx, text),
                    Err(_) => self.close(ctx, CloseCode::Invalid, "text frames must be UTF-8"),
                }
            }
            Ok(Frame::Ping(payload)) => {
                self.last_heard = Instant::now();
                // A client that pings without reading gets no pile of pongs.
                if self.wire.backlog() as u64 <= self.backlog_limit {
                    self.wire.pong(&payload);
                }
            }
            Ok(Frame::Pong(_)) => self.last_heard = Instant::now(),
            Ok(Frame::Binary(_)) | Ok(Frame::Continuation(_)) => {
                self.last_heard = Instant::now();
                let error = AppError::new(ErrorCode::InvalidFrame, "send each request as one JSON text frame");
                self.reply_error(ctx, None, error);
            }
            Ok(Frame::Close(reason)) => {
                self.wire.close(reason, false);
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                log::info!("{} socket {} sent a frame over {MAX_FRAME_BYTES} bytes", R::NAME, self.id);
                self.close(ctx, CloseCode::Size, "frames are limited to 64 KiB");
            }
            Err(error) => {
                log::debug!("{} socket {}: protocol error: {error}", R::NAME, self.id);
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}

impl<R: SocketRole> Handler<Outbound> for Socket<R> {
    type Result = ();

    fn handle(&mut self, outbound: Outbound, ctx: &mut Self::Context) {
        match outbound {
            Outbound::Frame(frame) => {
                if let Some(backlog) = self.too_far_behind() {
                    return self.disconnect_slow_reader(ctx, backlog);
                }
                self.wire.text(&frame);
            }
            Outbound::Attached(session_id) => {
                self.sessions.insert(session_id);
            }
            Outbound::Detached(session_id) => {
                self.sessions.remove(&session_id);
            }
            Outbound::Close(reason) => self.close(ctx, CloseCode::Away, &reason),
            Outbound::LinkLost { sessions_here, agents_here } => {
                let staff = matches!(self.caller.role, crate::domain::Role::Agent | crate::domain::Role::Admin);
                let agents_elsewhere = staff && !agents_here;
                if agents_elsewhere || self.sessions.iter().any(|session| !sessions_here.contains(session)) {
                    let reason = "lost touch with the other servers: reconnect and resume";
                    self.close(ctx, CloseCode::Restart, reason);
                }
            }
        }
    }
}

fn as_value(body: impl serde::Serialize) -> Box<serde_json::Value> {
    Box::new(serde_json::to_value(body).unwrap_or_default())
}
