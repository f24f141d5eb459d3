//! The chatting workloads: customers with the rule bot (`bot`), and
//! customers with agents who answer every message (`agents`), paced closed
//! loop (the next message once the last is acknowledged) or open loop
//! (`RATE`: on a fixed schedule, whatever the acknowledgements do).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::stats::{clock, instant, memory_rows, resident_kib, thousands, Latencies, PeakMemory, Timeline};
use crate::wire::{self, parse, Frame, Socket};
use crate::{wait_go, wait_ready, Ctx, Failures, Phase, Workload};

/// The server answers a socket's 65th waiting request with `rate_limited`
/// (docs/PROTOCOL.md); the generator never sends it.
const MAX_IN_FLIGHT: usize = 64;

/// How long a client waits for its last acknowledgements once it stops sending.
const DRAIN_MICROS: u64 = 10_000_000;

/// A socket's requests waiting for their reply: the reply's `ref` is the
/// slot, and the slot holds the time the request counts from.
struct Slots {
    times: [u64; MAX_IN_FLIGHT],
    free: Vec<u8>,
    most: usize,
}

impl Slots {
    fn new() -> Slots {
        Slots { times: [0; MAX_IN_FLIGHT], free: (0..MAX_IN_FLIGHT as u8).rev().collect(), most: 0 }
    }

    fn take(&mut self, at: u64) -> Option<u8> {
        let slot = self.free.pop()?;
        self.times[usize::from(slot)] = at;
        self.most = self.most.max(self.in_flight());
        Some(slot)
    }

    /// The time a reply's request counts from, if `reference` is a waiting slot.
    fn release(&mut self, reference: &str) -> Option<u64> {
        let slot: u8 = reference.parse().ok()?;
        if usize::from(slot) >= MAX_IN_FLIGHT || self.free.contains(&slot) {
            return None;
        }
        self.free.push(slot);
        Some(self.times[usize::from(slot)])
    }

    fn in_flight(&self) -> usize {
        MAX_IN_FLIGHT - self.free.len()
    }

    fn full(&self) -> bool {
        self.free.is_empty()
    }
}

/// Who sent a message.
#[derive(Clone, Copy)]
enum Side {
    Customer,
    Agent,
}

/// What one socket (or, merged, a whole run) measured.
#[derive(Default)]
pub struct Tally {
    pub customer_acks: Latencies,
    pub agent_acks: Latencies,
    /// Delivery: a customer's send to the agent's `message:received`.
    pub to_agent: Latencies,
    /// Delivery: an agent's send to the customer's `message:received`.
    pub to_customer: Latencies,
    /// Acknowledgements per second since the start, of each side.
    pub customer_timeline: Timeline,
    pub agent_timeline: Timeline,
    /// Error replies to messages, by code.
    pub refused: BTreeMap<String, u64>,
    /// Open loop: messages sent a whole period or more after their scheduled time.
    pub behind: u64,
    pub most_in_flight: usize,
    /// Messages still unacknowledged when the socket gave up waiting.
    pub unacked: u64,
    /// Messages an agent's socket had to hold back because 64 were in flight.
    pub held_back: u64,
    /// Why a socket ended early.
    pub failure: Option<String>,
}

impl Tally {
    pub fn merge(&mut self, mut other: Tally) {
        self.customer_acks.append(&mut other.customer_acks);
        self.agent_acks.append(&mut other.agent_acks);
        self.to_agent.append(&mut other.to_agent);
        self.to_customer.append(&mut other.to_customer);
        self.customer_timeline.merge(&other.customer_timeline);
        self.agent_timeline.merge(&other.agent_timeline);
        for (code, count) in other.refused {
            *self.refused.entry(code).or_default() += count;
        }
        self.behind += other.behind;
        self.most_in_flight = self.most_in_flight.max(other.most_in_flight);
        self.unacked += other.unacked;
        self.held_back += other.held_back;
    }

    /// The reply to a message `side` sent at `sent`: acknowledged (counted
    /// with its latency at `now`, in a measurement that began at `go`) or refused.
    fn reply(&mut self, side: Side, frame: &Frame, sent: u64, now: u64, go: u64) {
        if frame.event != "message:sent" {
            return self.refuse(frame.data.code);
        }
        let (acks, timeline) = match side {
            Side::Customer => (&mut self.customer_acks, &mut self.customer_timeline),
            Side::Agent => (&mut self.agent_acks, &mut self.agent_timeline),
        };
        acks.push(now - sent);
        timeline.count(now, go);
    }

    fn refuse(&mut self, code: Option<&str>) {
        let code = code.unwrap_or("unknown");
        match self.refused.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                self.refused.insert(code.to_owned(), 1);
            }
        }
    }
}

/// Signs a customer in, starts its chat and, for `agents`, waits until an
/// agent has it. Returns the socket and the chat's id.
async fn set_up_customer(ctx: &Ctx, n: usize) -> Result<(Socket, String), String> {
    let base = ctx.base(n);
    let token = wire::visitor(&ctx.http, base, &format!("Load {n}")).await?;
    let mut socket = wire::connect(base, "customer", &token).await?;
    let started = wire::request(&mut socket, wire::frame("customer:start_chat", "start", json!({})), "start", |_| {});
    let session_id = wire::reply_session(&started.await?, "session:created")?;
    if ctx.cross_node {
        // The chat stays on the node that started it; this socket's node passes everything on.
        let _ = socket.close(None).await;
        socket = wire::connect(ctx.base(n + 1), "customer", &token).await?;
        let resume = wire::frame("customer:resume", "resume", json!({ "sessionId": session_id }));
        let resumed = wire::request(&mut socket, resume, "resume", |_| {}).await?;
        if parse(&resumed).is_none_or(|frame| frame.event != "session:resumed") {
            return Err(format!("resume refused: {}", wire::cut(&resumed)));
        }
    }
    if ctx.workload == Workload::Agents {
        let assigned = |frame: &wire::Frame| frame.event == "status:changed" && frame.data.status == Some("assigned");
        let mut seen = false;
        let ask = wire::frame("customer:request_agent", "ask", json!({ "sessionId": session_id }));
        let reply = wire::request(&mut socket, ask, "ask", |frame| seen |= assigned(frame)).await?;
        match parse(&reply) {
            Some(frame) if frame.event == "status:changed" => seen |= assigned(&frame),
            _ => return Err(format!("request_agent refused: {}", wire::cut(&reply))),
        }
        if !seen {
            wire::read_until(&mut socket, assigned).await.map_err(|error| format!("never assigned: {error}"))?;
        }
    }
    Ok((socket, session_id))
}

/// One customer: set up, wait for the start, then send until the run's
/// count or deadline, closed or open loop.
pub async fn customer(
    ctx: Arc<Ctx>,
    n: usize,
    ready: mpsc::UnboundedSender<bool>,
    mut phase: watch::Receiver<Phase>,
) -> Result<Tally, String> {
    let permit = ctx.setup.acquire().await.map_err(|error| error.to_string())?;
    let set_up = set_up_customer(&ctx, n).await;
    drop(permit);
    let _ = ready.send(set_up.is_ok());
    let (mut socket, session_id) = set_up?;
    let go = wait_go(&mut socket, &mut phase).await?;

    let mut tally = Tally::default();
    let mut slots = Slots::new();
    let period = ctx.rate.map(|rate| ((ctx.customers as f64 / rate) * 1e6).max(1.0) as u64);
    let deadline = (ctx.duration > 0).then(|| go + ctx.duration * 1_000_000);
    // Spread the customers' schedules over one period, not all on the same tick.
    let mut due = go + period.map_or(0, |period| period * n as u64 / ctx.customers as u64);
    let mut sent = 0usize;
    let mut drain_until = None;
    let more = |sent: usize, at: u64| match deadline {
        Some(deadline) => at < deadline,
        None => sent < ctx.messages,
    };
    loop {
        let now = clock();
        let mut result = Ok(());
        match period {
            None => {
                if slots.in_flight() == 0 && more(sent, now) {
                    result = send_customer(&mut socket, &mut slots, &session_id, now).await;
                    sent += 1;
                }
            }
            Some(period) => {
                while result.is_ok() && !slots.full() && due <= now && more(sent, due) {
                    if now - due >= period {
                        tally.behind += 1;
                    }
                    result = send_customer(&mut socket, &mut slots, &session_id, due).await;
                    sent += 1;
                    due += period;
                }
            }
        }
        if let Err(error) = result {
            tally.failure = Some(error);
            break;
        }
        let done_sending = match period {
            None => !more(sent, now),
            Some(_) => !more(sent, due),
        };
        if done_sending {
            if slots.in_flight() == 0 {
                break;
            }
            let until = *drain_until.get_or_insert(now + DRAIN_MICROS);
            if now >= until {
                tally.unacked += slots.in_flight() as u64;
                break;
            }
        }
        let wake = match (done_sending, period) {
            (true, _) => drain_until,
            (false, Some(_)) if !slots.full() => Some(due),
            _ => None,
        };
        tokio::select! {
            frame = socket.next() => match wire::text(frame) {
                Ok(Some(text)) => {
                    let Some(frame) = parse(&text) else { continue };
                    let now = clock();
                    if let Some(reference) = frame.reference {
                        if let Some(sent) = slots.release(reference) {
                            tally.reply(Side::Customer, &frame, sent, now, go);
                        }
                    } else if frame.event == "message:received" && frame.data.sender == Some("agent") {
                        if let Some(at) = frame.data.content.0 {
                            tally.to_customer.push(now.saturating_sub(at));
                        }
                    }
                }
                Ok(None) => {}
                Err(failure) => {
                    tally.failure = Some(failure);
                    break;
                }
            },
            _ = sleep_until(instant(wake.unwrap_or(0)).into()), if wake.is_some() => {}
        }
    }
    tally.most_in_flight = slots.most;
    if tally.failure.is_some() {
        tally.unacked += slots.in_flight() as u64;
    }
    let _ = socket.close(None).await;
    Ok(tally)
}

/// One agent: sign in, join, then answer every customer message in the
/// same chat until told to stop.
pub async fn agent(
    ctx: Arc<Ctx>,
    index: usize,
    ready: mpsc::UnboundedSender<bool>,
    mut phase: watch::Receiver<Phase>,
) -> Result<Tally, String> {
    let set_up = async {
        let base = ctx.base(index);
        let token = wire::login(&ctx.http, base, &ctx.agents[index], &ctx.agent_password).await?;
        let mut socket = wire::connect(base, "agent", &token).await?;
        let joined = wire::request(&mut socket, wire::frame("agent:join", "join", json!({})), "join", |_| {}).await?;
        if parse(&joined).is_none_or(|frame| frame.event != "agent:joined") {
            return Err(format!("join refused: {}", wire::cut(&joined)));
        }
        Ok(socket)
    };
    let set_up = set_up.await;
    let _ = ready.send(set_up.is_ok());
    let mut socket = set_up?;

    let mut tally = Tally::default();
    let mut slots = Slots::new();
    let mut go = 0;
    let mut stop_at: Option<u64> = None;
    let mut backlog: VecDeque<String> = VecDeque::new();
    loop {
        while !slots.full() {
            let Some(session_id) = backlog.pop_front() else { break };
            if let Err(error) = answer(&mut socket, &mut slots, &session_id).await {
                tally.failure = Some(error);
                break;
            }
        }
        if tally.failure.is_some() {
            break;
        }
        if let Some(until) = stop_at {
            if slots.in_flight() == 0 && backlog.is_empty() {
                break;
            }
            if clock() >= until {
                tally.unacked += (slots.in_flight() + backlog.len()) as u64;
                break;
            }
        }
        tokio::select! {
            changed = phase.changed(), if stop_at.is_none() => {
                match (changed, *phase.borrow_and_update()) {
                    (Ok(()), Phase::Go(at)) => go = at,
                    (Ok(()), Phase::Setup) => {}
                    (_, Phase::Stop(at) | Phase::Go(at)) => {
                        go = at;
                        stop_at = Some(clock() + DRAIN_MICROS);
                    }
                    (Err(_), Phase::Setup) => stop_at = Some(clock()),
                }
            }
            frame = socket.next() => match wire::text(frame) {
                Ok(Some(text)) => {
                    let Some(frame) = parse(&text) else { continue };
                    let now = clock();
                    if let Some(reference) = frame.reference {
                        if let Some(sent) = slots.release(reference) {
                            tally.reply(Side::Agent, &frame, sent, now, go);
                        }
                    } else if frame.event == "message:received" && frame.data.sender == Some("customer") {
                        if let Some(at) = frame.data.content.0 {
                            tally.to_agent.push(now.saturating_sub(at));
                        }
                        let Some(session_id) = frame.data.session_id else { continue };
                        if slots.full() || !backlog.is_empty() {
                            tally.held_back += 1;
                            backlog.push_back(session_id.to_owned());
                        } else if let Err(error) = answer(&mut socket, &mut slots, session_id).await {
                            tally.failure = Some(error);
                            break;
                        }
                    }
                }
                Ok(None) => {}
                Err(failure) => {
                    tally.failure = Some(failure);
                    break;
                }
            },
            _ = sleep_until(instant(stop_at.unwrap_or(0)).into()), if stop_at.is_some() => {}
        }
    }
    tally.most_in_flight = slots.most;
    let _ = socket.close(None).await;
    Ok(tally)
}

/// Sends a customer message that counts from `at` (its scheduled time, open loop).
async fn send_customer(socket: &mut Socket, slots: &mut Slots, session_id: &str, at: u64) -> Result<(), String> {
    let slot = slots.take(at).ok_or("no free slot")?;
    let frame = format!(
        r#"{{"event":"customer:send_message","ref":"{slot}","data":{{"sessionId":"{session_id}","content":"where is my order? #c{at}","clientMsgId":"{}"}}}}"#,
        uuid::Uuid::new_v4()
    );
    wire::send(socket, frame).await
}

async fn answer(socket: &mut Socket, slots: &mut Slots, session_id: &str) -> Result<(), String> {
    let at = clock();
    let slot = slots.take(at).ok_or("no free slot")?;
    let frame = format!(
        r#"{{"event":"agent:send_message","ref":"{slot}","data":{{"sessionId":"{session_id}","content":"let me check that for you #a{at}","clientMsgId":"{}"}}}}"#,
        uuid::Uuid::new_v4()
    );
    wire::send(socket, frame).await
}

/// The `bot` and `agents` workloads: set everyone up, start together,
/// measure, print the measures.
pub async fn run(ctx: Arc<Ctx>) {
    let before: Vec<Option<u64>> = ctx.pids.iter().map(|pid| resident_kib(pid)).collect();
    let peaks = PeakMemory::start(&ctx.pids);
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut agents = Vec::new();
    let mut agents_ready = 0;
    if ctx.workload == Workload::Agents {
        // Agents join before any customer asks for one, so every request is assigned at once.
        for index in 0..ctx.agents.len() {
            agents.push(tokio::spawn(agent(ctx.clone(), index, ready_tx.clone(), phase_rx.clone())));
        }
        agents_ready = wait_ready(&mut ready_rx, ctx.agents.len(), "agents joined").await.0;
    }
    let customers: Vec<_> = (0..ctx.customers)
        .map(|n| tokio::spawn(customer(ctx.clone(), n, ready_tx.clone(), phase_rx.clone())))
        .collect();
    drop(ready_tx);
    let customers_ready = wait_ready(&mut ready_rx, ctx.customers, "customers ready").await.0;

    ctx.mark("start", None).await;
    let go = clock();
    let _ = phase_tx.send(Phase::Go(go));
    let mut tally = Tally::default();
    let mut failures = Failures::default();
    let mut per_server = vec![0usize; ctx.bases.len()];
    for (n, one) in failures.collect(customers, |one| one.failure.take()).await {
        per_server[n % ctx.bases.len()] += one.customer_acks.len();
        tally.merge(one);
    }
    let customers_done = clock();
    let _ = phase_tx.send(Phase::Stop(go));
    let mut agent_failures = Failures::default();
    for (_, one) in agent_failures.collect(agents, |one| one.failure.take()).await {
        tally.merge(one);
    }
    let acked = tally.customer_acks.len() + tally.agent_acks.len();
    ctx.mark("end", Some(acked as u64)).await;
    let peaks = peaks.stop();

    // Timed runs count what was acknowledged within the time; the last
    // messages, acknowledged just after it, are not a full second.
    let (seconds, customer_acked, agent_acked) = if ctx.duration > 0 {
        let seconds = ctx.duration as usize;
        (seconds as f64, tally.customer_timeline.within(seconds), tally.agent_timeline.within(seconds))
    } else {
        let seconds = (customers_done - go) as f64 / 1e6;
        (seconds, tally.customer_acks.len() as u64, tally.agent_acks.len() as u64)
    };
    let per_second = |count: u64| thousands((count as f64 / seconds).round() as u64);
    let agents_on = ctx.workload == Workload::Agents;
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| customers (one WebSocket each), ready / failed | {} / {} |",
        thousands(customers_ready as u64),
        failures.count
    );
    if agents_on {
        println!(
            "| agents (one WebSocket each, answering every customer message), joined / failed | {} / {} |",
            agents_ready, agent_failures.count
        );
    }
    if ctx.cross_node {
        println!("| each chat runs on one node, its customer's socket is on another | yes |");
    }
    match ctx.rate {
        None => println!("| pacing | closed loop: a customer's next message once the last is acknowledged |"),
        Some(rate) => println!(
            "| pacing | open loop: {} customer messages/s in all ({:.1}/s each), latency from the scheduled send |",
            thousands(rate as u64),
            rate / ctx.customers as f64
        ),
    }
    if ctx.duration > 0 {
        println!("| measured | {} s (then up to 10 s for the last acknowledgements) |", ctx.duration);
    } else {
        println!("| measured | {:.2} s, {} messages per customer |", seconds, ctx.messages);
    }
    let total_customer = tally.customer_acks.len() as u64;
    let total_agent = tally.agent_acks.len() as u64;
    let late = |total: u64, within: u64| {
        if ctx.duration > 0 {
            format!(" (after the time: {})", thousands(total - within))
        } else {
            String::new()
        }
    };
    println!(
        "| customer messages acknowledged{} | {} |",
        late(total_customer, customer_acked),
        thousands(customer_acked)
    );
    if agents_on {
        println!("| agent messages acknowledged{} | {} |", late(total_agent, agent_acked), thousands(agent_acked));
        println!(
            "| messages acknowledged per second, customer + agent = all | {} + {} = **{}** |",
            per_second(customer_acked),
            per_second(agent_acked),
            per_second(customer_acked + agent_acked)
        );
    } else {
        println!("| customer messages acknowledged per second | **{}** |", per_second(customer_acked));
        println!("| stored messages per second (each answered by the bot) | {} |", per_second(2 * customer_acked));
    }
    if ctx.bases.len() > 1 {
        let each: Vec<String> = per_server.iter().map(|&count| thousands(count as u64)).collect();
        println!("| customer messages acknowledged per server (customers taken in turn) | {} |", each.join(" · "));
    }
    println!("| customer acknowledgement p50 / p90 / p99 / max (ms) | {} |", tally.customer_acks.summary(true));
    if agents_on {
        println!("| agent acknowledgement p50 / p90 / p99 / max (ms) | {} |", tally.agent_acks.summary(true));
        println!(
            "| delivery customer → agent p50 / p90 / p99 (ms), messages | {}, {} |",
            tally.to_agent.summary(false),
            thousands(tally.to_agent.len() as u64)
        );
        println!(
            "| delivery agent → customer p50 / p90 / p99 (ms), messages | {}, {} |",
            tally.to_customer.summary(false),
            thousands(tally.to_customer.len() as u64)
        );
    }
    if ctx.rate.is_some() {
        println!(
            "| sent a whole period or more behind schedule / most in flight on one socket | {} / {} |",
            thousands(tally.behind),
            tally.most_in_flight
        );
    }
    if agents_on {
        println!("| agent answers held back (64 in flight on the socket) | {} |", thousands(tally.held_back));
    }
    let refused: Vec<String> = tally.refused.iter().map(|(code, count)| format!("{code} {count}")).collect();
    println!(
        "| refused / never acknowledged | {} / {} |",
        if refused.is_empty() { "0".to_owned() } else { refused.join(", ") },
        thousands(tally.unacked)
    );
    memory_rows(&ctx.pids, &before, &peaks);
    let mut all = Timeline::default();
    all.merge(&tally.customer_timeline);
    all.merge(&tally.agent_timeline);
    let what = if agents_on { "messages acknowledged (customer + agent)" } else { "customer messages acknowledged" };
    all.table(what, (ctx.duration > 0).then_some(ctx.duration as usize));
    failures.print("customer");
    agent_failures.print("agent");
}
