//! One WebSocket connection's bytes, both ways, for its socket actor.
//!
//! The socket actor is an ordinary actor with a mailbox of its own, not the
//! HTTP response body: actix-http polls a response body only while the
//! client reads, so an actor living inside the body (as actix-web-actors'
//! `WebsocketContext` does) stops running, heartbeat and all, as soon as a
//! client stops reading. Here the actor writes into an [`OutboundQueue`]
//! whose byte count it can always see, and the HTTP layer drains the queue
//! through [`OutboundBody`] at the client's pace. The actor closes a client
//! whose queue passes the backlog limit, so what a client can make the
//! server hold is bounded.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use actix_codec::Decoder;
use actix_http::ws::{CloseReason, Codec, Frame, OpCode, Parser, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;

use crate::telemetry::Gauges;

#[derive(Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// Bytes the HTTP layer has taken, all told.
    taken: u64,
    /// Nothing more will be queued: the body ends once the queue is empty.
    finished: bool,
    /// The HTTP layer dropped the body: the connection is gone.
    disconnected: bool,
    waker: Option<Waker>,
}

/// The actor's end: encoded frames go in here.
pub struct OutboundQueue {
    queue: Arc<Mutex<Queue>>,
}

/// The HTTP response body's end: drains the queue as the client reads.
pub struct OutboundBody {
    queue: Arc<Mutex<Queue>>,
    gauges: Arc<Gauges>,
    /// Whatever must last as long as the connection itself (the account's socket slot).
    _held: Box<dyn std::any::Any>,
}

/// A queue and the response body that drains it. The body counts as an open
/// connection in `gauges` until the HTTP layer drops it, and keeps `held`
/// until then.
pub fn outbound(gauges: Arc<Gauges>, held: impl std::any::Any) -> (OutboundQueue, OutboundBody) {
    let queue = Arc::new(Mutex::new(Queue::default()));
    gauges.wire_opened();
    (OutboundQueue { queue: queue.clone() }, OutboundBody { queue, gauges, _held: Box::new(held) })
}

fn locked(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A panic while holding this lock leaves the queue consistent (every
    // change is one push or pop), so a poisoned lock is still usable.
    queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl OutboundQueue {
    fn push(&self, encoded: BytesMut) {
        let mut queue = locked(&self.queue);
        if queue.finished || queue.disconnected {
            return;
        }
        queue.bytes += encoded.len();
        queue.frames.push_back(encoded.freeze());
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }

    fn message(&self, payload: &[u8], op: OpCode) {
        let mut encoded = BytesMut::with_capacity(payload.len() + 10);
        Parser::write_message(&mut encoded, payload, op, true, false);
        self.push(encoded);
    }

    pub fn text(&self, text: &str) {
        self.message(text.as_bytes(), OpCode::Text);
    }

    pub fn ping(&self, payload: &[u8]) {
        self.message(payload, OpCode::Ping);
    }

    pub fn pong(&self, payload: &[u8]) {
        self.message(payload, OpCode::Pong);
    }

    /// Queues a close frame as the last thing the client gets. With
    /// `discard_unsent`, frames still waiting are dropped first: a client too
    /// slow to read them gets only the close frame, and resumes from its
    /// last seq when it reconnects.
    pub fn close(&self, reason: Option<CloseReason>, discard_unsent: bool) {
        let mut encoded = BytesMut::new();
        Parser::write_close(&mut encoded, reason, false);
        let mut queue = locked(&self.queue);
        if queue.finished {
            return;
        }
        if discard_unsent {
            queue.frames.clear();
            queue.bytes = 0;
        }
        queue.bytes += encoded.len();
        queue.frames.push_back(encoded.freeze());
        queue.finished = true;
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }

    /// Bytes queued that the client has not taken yet.
    pub fn backlog(&self) -> usize {
        locked(&self.queue).bytes
    }

    /// Bytes the client has taken since the connection opened.
    pub fn taken(&self) -> u64 {
        locked(&self.queue).taken
    }

    /// False once the HTTP layer has let go of the connection.
    pub fn is_connected(&self) -> bool {
        !locked(&self.queue).disconnected
    }
}

impl Drop for OutboundQueue {
    fn drop(&mut self) {
        let mut queue = locked(&self.queue);
        queue.finished = true;
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }
}

impl Stream for OutboundBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut queue = locked(&self.queue);
        match queue.frames.pop_front() {
            Some(frame) => {
                queue.bytes -= frame.len();
                queue.taken += frame.len() as u64;
                Poll::Ready(Some(Ok(frame)))
            }
            None if queue.finished => Poll::Ready(None),
            None => {
                queue.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for OutboundBody {
    fn drop(&mut self) {
        let mut queue = locked(&self.queue);
        queue.disconnected = true;
        queue.frames.clear();
        queue.bytes = 0;
        drop(queue);
        self.gauges.wire_closed();
    }
}

/// The request body decoded into WebSocket frames, at most `max_size` bytes
/// each. Ends after a protocol error or when the client goes away.
pub struct Inbound<S> {
    payload: S,
    codec: Codec,
    buffer: BytesMut,
    ended: bool,
}

impl<S> Inbound<S> {
    pub fn new(payload: S, max_size: usize) -> Self {
        Inbound { payload, codec: Codec::new().max_size(max_size), buffer: BytesMut::new(), ended: false }
    }
}

impl<S, E> Stream for Inbound<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.codec.decode(&mut this.buffer) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(error) => {
                    this.ended = true;
                    this.buffer.clear();
                    return Poll::Ready(Some(Err(error)));
                }
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.buffer.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(error))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(error.to_string())))));
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
