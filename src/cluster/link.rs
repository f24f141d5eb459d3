//! The node's link to the others: one Redis subscription (its own channel
//! and the channel every node hears), and one publisher that sends mail in
//! the order it was given, so frames for a socket on another node arrive in
//! order. Requests made across nodes wait here for their answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::{Message, Recipient};
use bb8_redis::redis;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::mail::Mail;
use super::NodeId;
use crate::actors::messages::SocketId;
use crate::bus::Outbound;
use crate::error::AppError;

/// Mail waiting to be published; past this, mail is dropped (and its requests fail).
const OUTGOING_LIMIT: usize = 100_000;
/// Mail published together, in one pipeline.
const PUBLISH_BATCH: usize = 512;
/// A request across nodes that has no answer by then fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a publish may take before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before connecting to Redis again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

const EVERYONE: &str = "switchboard:nodes:all";

fn channel(node: &str) -> String {
    format!("switchboard:node:{node}")
}

/// Mail from another node, for the registry.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Incoming {
    pub from: NodeId,
    pub mail: Mail,
}

/// The link's subscription came up or went down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkStatus {
    pub up: bool,
}

/// Mail sent to a node that nobody is listening for: it is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NodeUnreachable(pub NodeId);

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: NodeId,
    mail: Vec<Mail>,
}

enum Destination {
    Node(NodeId),
    Everyone,
}

struct Outgoing {
    to: Destination,
    mail: Mail,
}

pub type Answer = Result<serde_json::Value, AppError>;

struct Pending {
    answer: Box<dyn FnOnce(Answer) + Send>,
    /// The node expected to answer: if it is gone, so is the answer.
    node: NodeId,
    deadline: Instant,
}

struct Inner {
    node: NodeId,
    outgoing: mpsc::Sender<Outgoing>,
    calls: Mutex<HashMap<u64, Pending>>,
    next_call: AtomicU64,
    sockets: Mutex<HashMap<SocketId, Recipient<Outbound>>>,
    up: AtomicBool,
    registry: OnceLock<(Recipient<Incoming>, Recipient<LinkStatus>, Recipient<NodeUnreachable>)>,
}

/// A cheap handle on the node's link.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

impl Link {
    /// The link of node `node`; it connects when `start` is called.
    pub fn new(node: NodeId, client: redis::Client) -> (Link, impl FnOnce(&Link)) {
        let (sender, receiver) = mpsc::channel(OUTGOING_LIMIT);
        let link = Link {
            inner: Arc::new(Inner {
                node,
                outgoing: sender,
                calls: Mutex::new(HashMap::new()),
                next_call: AtomicU64::new(1),
                sockets: Mutex::new(HashMap::new()),
                up: AtomicBool::new(false),
                registry: OnceLock::new(),
            }),
        };
        let start = move |link: &Link| {
            actix::spawn(publish(link.clone(), client.clone(), receiver));
            actix::spawn(subscribe(link.clone(), client));
            actix::spawn(expire_calls(link.clone()));
        };
        (link, start)
    }

    /// Where mail from other nodes goes.
    pub fn deliver_to(
        &self,
        incoming: Recipient<Incoming>,
        status: Recipient<LinkStatus>,
        unreachable: Recipient<NodeUnreachable>,
    ) {
        let _ = self.inner.registry.set((incoming, status, unreachable));
    }

    pub fn node(&self) -> &NodeId {
        &self.inner.node
    }

    /// Is the subscription up (can other nodes reach this one)?
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    pub fn send(&self, to: &NodeId, mail: Mail) {
        if *to == self.inner.node {
            return self.receive(self.inner.node.clone(), mail);
        }
        self.enqueue(Outgoing { to: Destination::Node(to.clone()), mail });
    }

    /// To every node, this one included.
    pub fn broadcast(&self, mail: Mail) {
        self.enqueue(Outgoing { to: Destination::Everyone, mail });
    }

    fn enqueue(&self, outgoing: Outgoing) {
        if let Err(error) = self.inner.outgoing.try_send(outgoing) {
            log::warn!("cluster mail dropped: the outgoing queue is full or closed");
            let outgoing = match error {
                mpsc::error::TrySendError::Full(outgoing) | mpsc::error::TrySendError::Closed(outgoing) => outgoing,
            };
            self.fail_calls_in(&outgoing.mail);
        }
    }

    /// Waits for an answer from `node`: `answer` is called once, with the
    /// answer or with `cluster_unavailable` if none comes.
    pub fn expect(&self, node: &NodeId, answer: impl FnOnce(Answer) + Send + 'static) -> u64 {
        let call = self.inner.next_call.fetch_add(1, Ordering::Relaxed);
        let pending = Pending { answer: Box::new(answer), node: node.clone(), deadline: Instant::now() + CALL_TIMEOUT };
        self.calls().insert(call, pending);
        call
    }

    /// Sends the mail `make` builds around a new call, and awaits the answer.
    pub fn call(&self, to: &NodeId, make: impl FnOnce(u64) -> Mail) -> oneshot::Receiver<Answer> {
        let (sender, receiver) = oneshot::channel();
        let call = self.expect(to, move |answer| {
            let _ = sender.send(answer);
        });
        self.send(to, make(call));
        receiver
    }

    /// Answers a call that `to` made.
    pub fn answer(&self, to: &NodeId, call: u64, answer: Answer) {
        self.send(to, Mail::Answer { call, answer });
    }

    fn complete(&self, call: u64, answer: Answer) {
        let pending = self.calls().remove(&call);
        if let Some(pending) = pending {
            (pending.answer)(answer);
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.inner.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail_calls_in(&self, mail: &Mail) {
        for call in mail.calls(&self.inner.node) {
            self.complete(call, Err(AppError::cluster_unavailable("another node could not be reached; try again")));
        }
    }

    /// Fails every call waiting on `node`, which is gone.
    pub fn fail_calls_to(&self, node: &NodeId) {
        let gone: Vec<u64> =
            self.calls().iter().filter(|(_, pending)| pending.node == *node).map(|(call, _)| *call).collect();
        for call in gone {
            self.complete(
                call,
                Err(AppError::cluster_unavailable("the node that had this request is gone; try again")),
            );
        }
    }

    /// Mail to `node` reached nobody: its calls fail, and the registry forgets it.
    fn node_gone(&self, node: &NodeId) {
        self.fail_calls_to(node);
        if let Some((_, _, unreachable)) = self.inner.registry.get() {
            unreachable.do_send(NodeUnreachable(node.clone()));
        }
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<SocketId, Recipient<Outbound>>> {
        self.inner.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A socket on this node, which other nodes may send frames to.
    pub fn register_socket(&self, id: SocketId, socket: Recipient<Outbound>) {
        self.sockets().insert(id, socket);
    }

    pub fn forget_socket(&self, id: SocketId) {
        self.sockets().remove(&id);
    }

    pub fn local_socket(&self, id: SocketId) -> Option<Recipient<Outbound>> {
        self.sockets().get(&id).cloned()
    }

    fn receive(&self, from: NodeId, mail: Mail) {
        match mail {
            Mail::Outbound { socket, outbound } => {
                if let Some(socket) = self.local_socket(socket) {
                    socket.do_send(outbound);
                }
            }
            Mail::Answer { call, answer } => self.complete(call, answer),
            mail => {
                if let Some((incoming, _, _)) = self.inner.registry.get() {
                    incoming.do_send(Incoming { from, mail });
                }
            }
        }
    }

    /// Mail was lost on its way out (Redis failed): as if the link went down and came back.
    fn mail_lost(&self) {
        if let Some((_, status, _)) = self.inner.registry.get() {
            status.do_send(LinkStatus { up: false });
            if self.is_up() {
                status.do_send(LinkStatus { up: true });
            }
        }
    }

    fn set_up(&self, up: bool) {
        if self.inner.up.swap(up, Ordering::Relaxed) != up {
            if up {
                log::info!("cluster link up: node {} hears the others", self.inner.node);
            } else {
                log::warn!("cluster link down: node {} cannot hear the others", self.inner.node);
            }
            if let Some((_, status, _)) = self.inner.registry.get() {
                status.do_send(LinkStatus { up });
            }
        }
    }
}

/// Publishes mail in the order it was queued, a batch per round trip.
async fn publish(link: Link, client: redis::Client, mut receiver: mpsc::Receiver<Outgoing>) {
    let mut connection = None;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while receiver.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        // Consecutive mail to one destination goes in one envelope.
        let mut groups: Vec<(Destination, Vec<Mail>)> = Vec::new();
        for Outgoing { to, mail } in batch.drain(..) {
            match groups.last_mut() {
                Some((last, mails)) if same(last, &to) => mails.push(mail),
                _ => groups.push((to, vec![mail])),
            }
        }
        let mut pipe = redis::pipe();
        groups.retain(|(to, mail)| match serde_json::to_vec(&EnvelopeRef { from: &link.inner.node, mail }) {
            Ok(body) => {
                let name = match to {
                    Destination::Node(node) => channel(node),
                    Destination::Everyone => EVERYONE.to_owned(),
                };
                pipe.cmd("PUBLISH").arg(name).arg(body);
                true
            }
            Err(error) => {
                log::error!("cluster mail cannot be written: {error}");
                false
            }
        });
        if connection.is_none() {
            // Published mail is answered at once; a slow moment must not count as lost mail.
            let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(PUBLISH_TIMEOUT));
            connection = client.get_multiplexed_async_connection_with_config(&config).await.ok();
        }
        let sent = match connection.as_mut() {
            Some(conn) => pipe.query_async::<Vec<i64>>(conn).await.map_err(|error| error.to_string()),
            None => Err("not connected".to_owned()),
        };
        match sent {
            Ok(listeners) => {
                for ((to, _), listeners) in groups.iter().zip(listeners) {
                    if let (Destination::Node(node), 0) = (to, listeners) {
                        link.node_gone(node);
                    }
                }
            }
            Err(error) => {
                log::warn!("cluster mail not sent: {error}");
                connection = None;
                for (_, mails) in &groups {
                    for mail in mails {
                        link.fail_calls_in(mail);
                    }
                }
                // Frames may have been lost: clients that follow other nodes resume.
                link.mail_lost();
                actix::clock::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    from: &'a NodeId,
    mail: &'a [Mail],
}

fn same(a: &Destination, b: &Destination) -> bool {
    match (a, b) {
        (Destination::Node(a), Destination::Node(b)) => a == b,
        (Destination::Everyone, Destination::Everyone) => true,
        _ => false,
    }
}

/// Listens on the node's channel and the shared one, reconnecting for ever.
async fn subscribe(link: Link, client: redis::Client) {
    loop {
        match listen(&link, &client).await {
            Ok(()) => log::warn!("cluster subscription ended"),
            Err(error) => log::debug!("cluster subscription failed: {error}"),
        }
        link.set_up(false);
        actix::clock::sleep(RECONNECT_PAUSE).await;
    }
}

async fn listen(link: &Link, client: &redis::Client) -> redis::RedisResult<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel(&link.inner.node)).await?;
    pubsub.subscribe(EVERYONE).await?;
    link.set_up(true);
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
            Ok(Envelope { from, mail }) => {
                for mail in mail {
                    link.receive(from.clone(), mail);
                }
            }
            Err(error) => log::warn!("unreadable cluster mail on {}: {error}", message.get_channel_name()),
        }
    }
    Ok(())
}

/// Fails requests whose answer never came.
async fn expire_calls(link: Link) {
    let mut every = actix::clock::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let now = Instant::now();
        let late: Vec<u64> =
            link.calls().iter().filter(|(_, pending)| pending.deadline <= now).map(|(call, _)| *call).collect();
        for call in late {
            link.complete(call, Err(AppError::cluster_unavailable("another node did not answer in time; try again")));
        }
    }
}
