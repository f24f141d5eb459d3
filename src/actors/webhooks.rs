//! The WebhookDispatcher: tells the endpoints admins registered what happens
//! in chats. The session actors hand it events with a `do_send` after the
//! change is committed and never wait for it; it records one delivery row per
//! hook that wants the event and posts it beside its mailbox, so a slow or
//! dead endpoint holds up nothing but its own delivery.
//!
//! The deliveries table is the work queue: a fresh delivery is recorded as
//! claimed by this node and sent at once (when fewer than `MAX_IN_FLIGHT`
//! attempts are under way, else left for the next poll); a failed attempt
//! sets the row's next attempt after an exponential backoff, and every node
//! polls for due rows with `FOR UPDATE SKIP LOCKED`. So retries, several
//! nodes and restarts share one path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::db::models::{NewDelivery, Webhook};
use crate::db::queries::webhooks::{self as queries, AttemptOutcome, DueDelivery};
use crate::db::{self, Pool};
use crate::domain::{DeliveryStatus, WebhookEvent};
use crate::telemetry::Metrics;

/// Attempts under way at once on one node; more wait in the table.
pub const MAX_IN_FLIGHT: usize = 32;
/// Deliveries waiting in memory to be recorded; past it new ones are dropped
/// (logged and counted in `switchboard_webhook_deliveries_total{outcome="dropped"}`).
pub const BACKLOG_LIMIT: usize = 10_000;
/// Deliveries recorded per statement.
const RECORD_BATCH: usize = 500;
/// The longest wait between two attempts, however many failed.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Other nodes' changes to the hooks are seen within this.
const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Finished deliveries are kept this long for the admin page.
const RETENTION: chrono::Duration = chrono::Duration::days(7);
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// `WEBHOOK_*` settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each.
    pub retry_base: Duration,
    /// How long an endpoint has to answer one attempt.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// How long to wait after the `failed`-th failed attempt.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
    }

    /// A claimed delivery is not taken again for this long: longer than an
    /// attempt can last, so only a node that died mid-attempt lets it lapse.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(10)
    }

    /// How often due deliveries are looked for.
    fn poll_interval(&self) -> Duration {
        self.retry_base.clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with the hook's
/// secret (its text, as given to the admin): the `X-Switchboard-Signature`
/// header, after `sha256=`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A new secret: 32 random bytes from the operating system, in hex.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The bit of `event` in the set of events some hook wants.
fn bit(event: WebhookEvent) -> u8 {
    let index = WebhookEvent::ALL.iter().position(|known| *known == event).unwrap_or_default();
    1 << index
}

/// What the chat actors and the routes hold: the dispatcher's address and
/// the events some active hook wants, so an event nobody wants costs neither
/// a message nor its body.
#[derive(Clone)]
pub struct Webhooks {
    dispatcher: Addr<WebhookDispatcher>,
    wanted: Arc<AtomicU8>,
}

impl Webhooks {
    /// Starts the dispatcher on the current thread.
    pub fn start(pool: Pool, settings: WebhookSettings, metrics: Arc<Metrics>) -> Webhooks {
        let wanted = Arc::new(AtomicU8::new(0));
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect is an answer like any other that is not a 2xx: the
            // signed body goes only where the admin said.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|error| {
                log::warn!("webhooks: the HTTP client could not be configured ({error}); using the defaults");
                reqwest::Client::new()
            });
        let dispatcher = WebhookDispatcher {
            pool,
            settings,
            client,
            metrics,
            hooks: Vec::new(),
            wanted: wanted.clone(),
            reloads: 0,
            applied_reload: 0,
            unrecorded: VecDeque::new(),
            recording: false,
            in_flight: 0,
            claiming: false,
        }
        .start();
        Webhooks { dispatcher, wanted }
    }

    /// Does some active hook want `event`?
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.wanted.load(Ordering::Acquire) & bit(event) != 0
    }

    /// Tells the dispatcher, without waiting, that `event` happened (and is
    /// committed); `data` is built only when some hook wants it.
    pub fn emit(&self, event: WebhookEvent, data: impl FnOnce() -> serde_json::Value) {
        if self.wants(event) {
            self.dispatcher.do_send(EventOccurred { event, at: Utc::now(), data: data() });
        }
    }

    /// An admin changed the hooks: the dispatcher reads them again, and
    /// this returns once it has (so a hook is sent events from the moment
    /// the admin's change is answered, on this node).
    pub async fn changed(&self) {
        if self.dispatcher.send(WebhooksChanged).await.is_err() {
            log::warn!("webhooks: the dispatcher is not running");
        }
    }
}

/// Something happened that hooks may want to hear about.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EventOccurred {
    pub event: WebhookEvent,
    pub at: DateTime<Utc>,
    /// The body's `data`.
    pub data: serde_json::Value,
}

/// The hooks changed: read them again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WebhooksChanged;

/// An active hook as the dispatcher keeps it.
struct ActiveHook {
    id: Uuid,
    url: String,
    secret: String,
    events: Vec<WebhookEvent>,
}

impl From<Webhook> for ActiveHook {
    fn from(hook: Webhook) -> Self {
        ActiveHook {
            id: hook.id,
            events: hook.events.iter().filter_map(|name| name.parse().ok()).collect(),
            url: hook.url,
            secret: hook.secret,
        }
    }
}

/// A delivery not yet recorded, with what sending it needs.
struct Unrecorded {
    delivery: NewDelivery,
    url: String,
    secret: String,
    /// Failed tries to record it, the database being reachable.
    refused: u8,
}

/// A delivery the database refused this often (not for being away) is dropped.
const MOST_REFUSALS: u8 = 5;

pub struct WebhookDispatcher {
    pool: Pool,
    settings: WebhookSettings,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    hooks: Vec<ActiveHook>,
    wanted: Arc<AtomicU8>,
    /// Reads of the hooks started and the latest applied: an older read
    /// that finishes late does not undo a newer one.
    reloads: u64,
    applied_reload: u64,
    /// Deliveries waiting to be recorded, oldest first; at most `BACKLOG_LIMIT`.
    unrecorded: VecDeque<Unrecorded>,
    recording: bool,
    /// Attempts under way, and those reserved for rows being claimed or recorded.
    in_flight: usize,
    claiming: bool,
}

impl Actor for WebhookDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.spawn(self.reload());
        ctx.run_interval(RELOAD_INTERVAL, |act, ctx| {
            ctx.spawn(act.reload());
        });
        ctx.run_interval(self.settings.poll_interval(), |act, ctx| act.claim_due(ctx));
        ctx.run_interval(PRUNE_INTERVAL, |act, ctx| act.prune(ctx));
    }
}

impl WebhookDispatcher {
    /// Reads the active hooks (run beside the mailbox).
    fn reload(&mut self) -> impl ActorFuture<Self, Output = ()> + 'static {
        self.reloads += 1;
        let generation = self.reloads;
        let pool = self.pool.clone();
        let load = async move { db::run(&pool, async |conn| queries::active(conn).await).await };
        load.into_actor(self).map(move |outcome, act, _| match outcome {
            Ok(_) if generation < act.applied_reload => {}
            Ok(hooks) => {
                act.applied_reload = generation;
                act.hooks = hooks.into_iter().map(ActiveHook::from).collect();
                let wanted = act.hooks.iter().flat_map(|hook| &hook.events).fold(0, |bits, event| bits | bit(*event));
                act.wanted.store(wanted, Ordering::Release);
            }
            Err(error) => log::warn!("webhooks: the hooks could not be read: {error}; keeping the ones known"),
        })
    }

    /// Records the waiting deliveries, a batch at a time, and sends those
    /// there is room for at once.
    fn record(&mut self, ctx: &mut Context<Self>) {
        if self.recording || self.unrecorded.is_empty() {
            return;
        }
        self.recording = true;
        let count = self.unrecorded.len().min(RECORD_BATCH);
        let mut batch: Vec<Unrecorded> = self.unrecorded.drain(..count).collect();
        let send_now = count.min(MAX_IN_FLIGHT.saturating_sub(self.in_flight));
        self.in_flight += send_now;
        let now = Utc::now();
        let claimed_until = now + chrono::Duration::from_std(self.settings.lease()).unwrap_or(chrono::Duration::MAX);
        for (index, unrecorded) in batch.iter_mut().enumerate() {
            unrecorded.delivery.next_attempt_at = if index < send_now { claimed_until } else { now };
        }
        let rows: Vec<NewDelivery> = batch.iter().map(|unrecorded| unrecorded.delivery.clone()).collect();
        let pool = self.pool.clone();
        let insert = async move { db::run(&pool, async |conn| queries::record(conn, &rows).await).await };
        ctx.spawn(insert.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Ok(_) => {
                act.recording = false;
                for unrecorded in batch.into_iter().take(send_now) {
                    let Unrecorded { delivery, url, secret, .. } = unrecorded;
                    let due = DueDelivery {
                        id: delivery.id,
                        event: delivery.event,
                        payload: delivery.payload,
                        attempts: 0,
                        url,
                        secret,
                    };
                    act.attempt(ctx, due);
                }
                act.record(ctx);
            }
            Err(error) => {
                act.in_flight -= send_now;
                log::warn!("webhooks: {count} deliveries not recorded yet: {error}; trying again in a second");
                // While the database is away they wait; an error of another
                // kind may never go away, so they are tried a few times only.
                let away = error.code == crate::error::ErrorCode::DatabaseUnavailable;
                // Back to the front, in order, as far as the bound allows.
                let (mut refused, mut over) = (0, 0);
                for mut unrecorded in batch.into_iter().rev() {
                    if !away {
                        unrecorded.refused += 1;
                    }
                    if unrecorded.refused >= MOST_REFUSALS {
                        refused += 1;
                    } else if act.unrecorded.len() >= BACKLOG_LIMIT {
                        over += 1;
                    } else {
                        act.unrecorded.push_front(unrecorded);
                    }
                }
                if refused > 0 {
                    act.dropped(refused, &format!("the database refused them {MOST_REFUSALS} times"));
                }
                if over > 0 {
                    act.dropped(over, &format!("more than {BACKLOG_LIMIT} wait to be recorded"));
                }
                ctx.run_later(Duration::from_secs(1), |act, ctx| {
                    act.recording = false;
                    act.record(ctx);
                });
            }
        }));
    }

    fn dropped(&self, count: usize, why: &str) {
        self.metrics.webhook_deliveries.with_label_values(&["dropped"]).inc_by(count as u64);
        log::warn!("webhooks: {count} delivery(ies) dropped: {why}");
    }

    /// Claims due deliveries (retries, and those left for want of room) while there is room.
    fn claim_due(&mut self, ctx: &mut Context<Self>) {
        let room = MAX_IN_FLIGHT.saturating_sub(self.in_flight);
        if self.claiming || room == 0 {
            return;
        }
        self.claiming = true;
        self.in_flight += room;
        let (pool, lease) = (self.pool.clone(), self.settings.lease());
        let claim =
            async move { db::run(&pool, async |conn| queries::claim_due(conn, room as i64, lease).await).await };
        ctx.spawn(claim.into_actor(self).map(move |outcome, act, ctx| {
            act.claiming = false;
            let due = outcome.unwrap_or_else(|error| {
                log::warn!("webhooks: due deliveries not read this time: {error}");
                Vec::new()
            });
            act.in_flight -= room - due.len().min(room);
            for delivery in due {
                act.attempt(ctx, delivery);
            }
        }));
    }

    /// Sends one attempt beside the mailbox (its slot in `in_flight` is already taken).
    fn attempt(&mut self, ctx: &mut Context<Self>, due: DueDelivery) {
        let send = deliver(self.client.clone(), self.pool.clone(), self.settings.clone(), self.metrics.clone(), due);
        ctx.spawn(send.into_actor(self).map(|(), act, _| act.in_flight -= 1));
    }

    fn prune(&mut self, ctx: &mut Context<Self>) {
        let pool = self.pool.clone();
        let before = Utc::now() - RETENTION;
        let prune = async move { db::run(&pool, async |conn| queries::prune(conn, before).await).await };
        ctx.spawn(prune.into_actor(self).map(|outcome, _, _| match outcome {
            Ok(0) => {}
            Ok(removed) => log::info!("webhooks: forgot {removed} finished deliveries"),
            Err(error) => log::warn!("webhooks: old deliveries not removed this time: {error}"),
        }));
    }
}

/// One attempt: posts the signed body and records how it went.
async fn deliver(
    client: reqwest::Client,
    pool: Pool,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
    due: DueDelivery,
) {
    let body = serde_json::to_vec(&due.payload).unwrap_or_default();
    let timestamp = Utc::now().timestamp();
    let signed = signature(&due.secret, timestamp, &body);
    let sent = client
        .post(&due.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Switchboard-Event", &due.event)
        .header("X-Switchboard-Delivery", due.id.to_string())
        .header("X-Switchboard-Timestamp", timestamp.to_string())
        .header("X-Switchboard-Signature", format!("sha256={signed}"))
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(response) => {
            let code = response.status();
            let error = (!code.is_success()).then(|| format!("the endpoint answered HTTP {}", code.as_u16()));
            (Some(i32::from(code.as_u16())), error)
        }
        Err(error) if error.is_timeout() => (None, Some(format!("no answer within {:?}", settings.timeout))),
        Err(error) if error.is_connect() => (None, Some("could not connect to the endpoint".to_owned())),
        Err(error) => (None, Some(format!("the request failed: {}", error.without_url()))),
    };
    let attempts = u32::try_from(due.attempts).unwrap_or_default() + 1;
    let outcome = match error {
        None => AttemptOutcome { status: DeliveryStatus::Delivered, status_code, error: None, next_attempt_at: None },
        Some(error) if attempts >= settings.max_attempts => {
            log::info!("webhooks: delivery {} failed for good after {attempts} attempts: {error}", due.id);
            AttemptOutcome { status: DeliveryStatus::Failed, status_code, error: Some(error), next_attempt_at: None }
        }
        Some(error) => {
            let wait = chrono::Duration::from_std(settings.backoff(attempts)).unwrap_or(chrono::Duration::MAX);
            AttemptOutcome {
                status: DeliveryStatus::Pending,
                status_code,
                error: Some(error),
                next_attempt_at: Some(Utc::now() + wait),
            }
        }
    };
    let counted = match outcome.status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending => "retry",
    };
    metrics.webhook_deliveries.with_label_values(&[counted]).inc();
    if let Err(error) = db::run(&pool, async |conn| queries::finish_attempt(conn, due.id, &outcome).await).await {
        // The row stays claimed until its lease runs out, then is sent again:
        // receivers drop the duplicate by its delivery id.
        log::warn!("webhooks: the attempt at delivery {} was not recorded: {error}", due.id);
    }
}

impl Handler<EventOccurred> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, EventOccurred { event, at, data }: EventOccurred, ctx: &mut Self::Context) {
        let mut dropped = 0;
        for hook in self.hooks.iter().filter(|hook| hook.events.contains(&event)) {
            if self.unrecorded.len() >= BACKLOG_LIMIT {
                dropped += 1;
                continue;
            }
            let id = Uuid::new_v4();
            let payload = serde_json::json!({ "id": id, "event": event, "createdAt": at, "data": data });
            self.unrecorded.push_back(Unrecorded {
                delivery: NewDelivery {
                    id,
                    webhook_id: hook.id,
                    event: event.as_str().to_owned(),
                    payload,
                    next_attempt_at: at,
                },
                url: hook.url.clone(),
                secret: hook.secret.clone(),
                refused: 0,
            });
        }
        if dropped > 0 {
            self.dropped(dropped, &format!("more than {BACKLOG_LIMIT} wait to be recorded"));
        }
        self.record(ctx);
    }
}

impl Handler<WebhooksChanged> for WebhookDispatcher {
    /// Answered once the hooks are read; other messages are handled meanwhile.
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: WebhooksChanged, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.reload())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'secret'
        assert_eq!(
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn the_wait_doubles_after_each_failure_up_to_an_hour() {
        let settings =
            WebhookSettings { max_attempts: 6, retry_base: Duration::from_secs(1), timeout: Duration::from_secs(5) };
        let waits: Vec<u64> = (1..=5).map(|failed| settings.backoff(failed).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(settings.backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn a_new_secret_is_64_hex_characters_and_never_the_same() {
        let (one, two) = (new_secret().expect("random"), new_secret().expect("random"));
        assert_eq!(one.len(), 64);
        assert!(one.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(one, two);
    }
}
