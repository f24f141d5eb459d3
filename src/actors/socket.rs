//! What the customer and agent sockets share: heartbeat, frame limits,
//! parsing at the edge, and disconnecting a client that stops reading.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use uuid::Uuid;

use crate::actors::messages::{Caller, RegisterSocket, Reply, SocketClosed, SocketHandle};
use crate::actors::registry::SessionRegistry;
use crate::bus::{Outbound, Outbox};
use crate::error::{AppError, ErrorCode};
use crate::protocol::client::Inbound;
use crate::telemetry::Gauges;

/// How often the server pings.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A client silent this long is gone.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What tells a customer socket from an agent socket.
pub trait SocketRole: Unpin + 'static {
    type Request: Send + 'static;
    const NAME: &'static str;
    fn parse(text: &str) -> Inbound<Self::Request>;
    fn dispatch(registry: &Addr<SessionRegistry>, socket: SocketHandle, reply: Reply, request: Self::Request);
}

/// Bytes the HTTP layer has taken from the socket's output, shared with the
/// stream that counts them; what the actor wrote minus this is the backlog.
pub type Written = Arc<AtomicU64>;

pub struct Socket<R: SocketRole> {
    id: Uuid,
    caller: Caller,
    registry: Addr<SessionRegistry>,
    gauges: Arc<Gauges>,
    handle: Option<SocketHandle>,
    last_heard: Instant,
    sessions: HashSet<Uuid>,
    produced: u64,
    written: Written,
    backlog_limit: u64,
    role: PhantomData<R>,
}

impl<R: SocketRole> Socket<R> {
    pub fn new(
        caller: Caller,
        registry: Addr<SessionRegistry>,
        gauges: Arc<Gauges>,
        written: Written,
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
            produced: 0,
            written,
            backlog_limit,
            role: PhantomData,
        }
    }

    fn handle(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> SocketHandle {
        self.handle
            .get_or_insert_with(|| SocketHandle {
                id: self.id,
                caller: self.caller.clone(),
                outbox: Outbox::local(ctx.address().recipient()),
            })
            .clone()
    }

    fn reply_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, reference: Option<String>, error: AppError) {
        let outbox = self.handle(ctx).outbox;
        Reply::new(reference, outbox).fail(&error);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, description: &str) {
        ctx.close(Some(CloseReason { code, description: Some(description.to_owned()) }));
        ctx.stop();
    }

    fn on_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let inbound = R::parse(text);
        match inbound.request {
            Ok(request) => {
                let socket = self.handle(ctx);
                let reply = Reply::new(inbound.reference, socket.outbox.clone());
                R::dispatch(&self.registry, socket, reply, request);
            }
            Err(error) => self.reply_error(ctx, inbound.reference, error),
        }
    }
}

impl<R: SocketRole> Actor for Socket<R> {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.gauges.connection_opened(R::NAME);
        let handle = self.handle(ctx);
        self.registry.do_send(RegisterSocket(handle));
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_heard.elapsed() > CLIENT_TIMEOUT {
                log::info!("{} socket {} timed out", R::NAME, act.id);
                act.close(ctx, CloseCode::Policy, "no heartbeat");
            } else {
                ctx.ping(b"");
            }
        });
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

impl<R: SocketRole> StreamHandler<Result<ws::Message, ws::ProtocolError>> for Socket<R> {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match item {
            Ok(ws::Message::Text(text)) => {
                self.last_heard = Instant::now();
                self.on_text(ctx, &text);
            }
            Ok(ws::Message::Ping(payload)) => {
                self.last_heard = Instant::now();
                ctx.pong(&payload);
            }
            Ok(ws::Message::Pong(_)) => self.last_heard = Instant::now(),
            Ok(ws::Message::Binary(_)) | Ok(ws::Message::Continuation(_)) => {
                self.last_heard = Instant::now();
                let error = AppError::new(ErrorCode::InvalidFrame, "send each request as one JSON text frame");
                self.reply_error(ctx, None, error);
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
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
                let backlog = self.produced.saturating_sub(self.written.load(Ordering::Relaxed));
                if backlog > self.backlog_limit {
                    log::warn!("{} socket {} disconnected: {backlog} bytes unread", R::NAME, self.id);
                    return self.close(ctx, CloseCode::Policy, "too slow: the client is not reading its messages");
                }
                self.produced += frame.len() as u64;
                ctx.text(&*frame);
            }
            Outbound::Attached(session_id) => {
                self.sessions.insert(session_id);
            }
            Outbound::Detached(session_id) => {
                self.sessions.remove(&session_id);
            }
            Outbound::Close(reason) => self.close(ctx, CloseCode::Away, &reason),
        }
    }
}
