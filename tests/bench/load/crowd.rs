//! The crowd workloads: many customers who each open a socket and a chat
//! and then hold still, `idle` (the server's memory per socket) and
//! `queue` (all of them waiting for an agent, then agents joining at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use crate::stats::{clock, memory_rows, mib, resident_kib, thousands, PeakMemory, Timeline};
use crate::wire::{self, parse, Socket};
use crate::{wait_go, wait_ready, Ctx, Failures, Phase};

/// One held customer.
struct Held {
    session_id: String,
    /// When `customer:request_agent` was acknowledged (queue only).
    asked_at: Option<u64>,
    assigned: bool,
    position_frames: u64,
    failure: Option<String>,
}

async fn set_up_holder(ctx: &Ctx, n: usize) -> Result<(Socket, String), String> {
    let base = ctx.base(n);
    let token = wire::visitor(&ctx.http, base, &format!("Crowd {n}")).await?;
    let mut socket = wire::connect(base, "customer", &token).await?;
    let started = wire::request(&mut socket, wire::frame("customer:start_chat", "start", json!({})), "start", |_| {});
    let session_id = wire::reply_session(&started.await?, "session:created")?;
    Ok((socket, session_id))
}

/// A customer who opens a socket and a chat, then only reads until the run
/// stops. With `asked`, it also asks for an agent when the run starts, all
/// customers at once, and says on `asked` whether the queue took it.
async fn holder(
    ctx: Arc<Ctx>,
    n: usize,
    ready: mpsc::UnboundedSender<bool>,
    asked: Option<mpsc::UnboundedSender<bool>>,
    mut phase: watch::Receiver<Phase>,
) -> Result<Held, String> {
    let permit = ctx.setup.acquire().await.map_err(|error| error.to_string())?;
    let set_up = set_up_holder(&ctx, n).await;
    drop(permit);
    let _ = ready.send(set_up.is_ok());
    let (mut socket, session_id) = set_up?;
    let mut held = Held { session_id, asked_at: None, assigned: false, position_frames: 0, failure: None };
    if let Some(asked) = &asked {
        if let Err(error) = wait_go(&mut socket, &mut phase).await {
            let _ = asked.send(false);
            return Err(error);
        }
        let ask = wire::frame("customer:request_agent", "ask", json!({ "sessionId": held.session_id }));
        if let Err(error) = wire::send(&mut socket, ask).await {
            let _ = asked.send(false);
            return Err(error);
        }
    }
    loop {
        if matches!(*phase.borrow_and_update(), Phase::Stop(_)) {
            break;
        }
        tokio::select! {
            changed = phase.changed() => if changed.is_err() { break },
            frame = socket.next() => match wire::text(frame) {
                Ok(Some(text)) => match parse(&text) {
                    Some(frame) if frame.reference == Some("ask") => {
                        let waiting = frame.event == "status:changed" && frame.data.status == Some("waiting");
                        if waiting {
                            held.asked_at = Some(clock());
                        } else {
                            held.failure = Some(format!("request_agent: {}", wire::cut(&text)));
                        }
                        if let Some(asked) = &asked {
                            let _ = asked.send(waiting);
                        }
                    }
                    Some(frame) if frame.event == "queue:position" => held.position_frames += 1,
                    Some(frame) if frame.event == "status:changed" && frame.data.status == Some("assigned") => {
                        held.assigned = true
                    }
                    _ => {}
                },
                Ok(None) => {}
                Err(failure) => {
                    held.failure = Some(failure);
                    break;
                }
            },
        }
    }
    if held.asked_at.is_none() {
        if let Some(asked) = &asked {
            // Ended before the queue answered: count it, so the run does not wait for it.
            let _ = asked.send(false);
        }
    }
    // Dropped, not closed: thousands of close handshakes are not what is measured.
    Ok(held)
}

/// Spawns `count` holders and waits until each is set up or failed.
async fn crowd(
    ctx: &Arc<Ctx>,
    count: usize,
    asked: Option<mpsc::UnboundedSender<bool>>,
    phase: &watch::Receiver<Phase>,
) -> (Vec<tokio::task::JoinHandle<Result<Held, String>>>, usize) {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let holders = (0..count)
        .map(|n| tokio::spawn(holder(ctx.clone(), n, ready_tx.clone(), asked.clone(), phase.clone())))
        .collect();
    drop(ready_tx);
    let (ready, _) = wait_ready(&mut ready_rx, count, "customers with a socket and a chat").await;
    (holders, ready)
}

async fn gather(holders: Vec<tokio::task::JoinHandle<Result<Held, String>>>) -> (Vec<Held>, Failures) {
    let mut failures = Failures::default();
    let held = failures.collect(holders, |one| one.failure.take()).await.into_iter().map(|(_, one)| one).collect();
    (held, failures)
}

fn total_kib(pids: &[String]) -> Option<u64> {
    pids.iter().map(|pid| resident_kib(pid)).sum()
}

/// Samples the servers' memory each second until it has held still for
/// three seconds (within 0.5 %), or a minute has passed.
async fn settled_kib(pids: &[String]) -> (Option<u64>, u64) {
    let started = clock();
    let mut last = total_kib(pids);
    let mut still = 0;
    while still < 3 && clock() - started < 60_000_000 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = total_kib(pids);
        let steady = match (last, now) {
            (Some(last), Some(now)) => last.abs_diff(now) <= (last / 200).max(256),
            _ => true,
        };
        still = if steady { still + 1 } else { 0 };
        last = now;
    }
    (last, (clock() - started) / 1_000_000)
}

/// The generator's own open-file limit, as /proc says.
fn open_file_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(format!("{} (hard {})", fields.get(3)?, fields.get(4)?))
        })
        .unwrap_or_else(|| "n/a".to_owned())
}

/// `idle`: SOCKETS customers each with a socket and an open chat, held.
pub async fn idle(ctx: Arc<Ctx>) {
    let before: Vec<Option<u64>> = ctx.pids.iter().map(|pid| resident_kib(pid)).collect();
    let before_total = total_kib(&ctx.pids);
    let peaks = PeakMemory::start(&ctx.pids);
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    ctx.mark("start", None).await;
    let from = clock();
    let (holders, open) = crowd(&ctx, ctx.sockets, None, &phase_rx).await;
    let opened_in = (clock() - from) as f64 / 1e6;
    let (after_total, settle_secs) = settled_kib(&ctx.pids).await;
    let after: Vec<Option<u64>> = ctx.pids.iter().map(|pid| resident_kib(pid)).collect();
    ctx.mark("end", Some(0)).await;
    let _ = phase_tx.send(Phase::Stop(from));
    let (held, failures) = gather(holders).await;
    let peaks = peaks.stop();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| sockets asked for / open with a chat / failed | {} / {} / {} |",
        thousands(ctx.sockets as u64),
        thousands(open as u64),
        failures.count
    );
    if failures.count > 0 {
        println!("| commonest failure | {} |", failures.commonest().replace('|', "/"));
    }
    println!(
        "| time to open them ({} at a time) | {:.1} s ({:.0} per second) |",
        ctx.concurrency,
        opened_in,
        open as f64 / opened_in
    );
    println!(
        "| still open at the end | {} |",
        thousands(held.iter().filter(|held| held.failure.is_none()).count() as u64)
    );
    if ctx.pids.len() > 1 {
        for (index, (before, after)) in before.iter().zip(&after).enumerate() {
            println!(
                "| server {} resident memory before / with the sockets (MiB) | {} / {} |",
                index + 1,
                mib(*before),
                mib(*after)
            );
        }
    }
    println!(
        "| server resident memory before / with the sockets, settled after {settle_secs} s (MiB) | {} / {} |",
        mib(before_total),
        mib(after_total)
    );
    if let (Some(before), Some(after)) = (before_total, after_total) {
        if open > 0 {
            println!(
                "| **server memory per idle socket with an open chat** | **{:.1} KiB** |",
                after.saturating_sub(before) as f64 / open as f64
            );
        }
    }
    memory_rows(&ctx.pids, &before, &peaks);
    println!("| generator's open-file limit | {} |", open_file_limit());
    failures.print("socket");
}

/// One agent of the `queue` workload: connected before the start, joins at
/// the start, then counts what the queue sends it.
#[derive(Default)]
struct QueueAgent {
    joined_at: u64,
    /// Each `session:assigned`: when it arrived and the session.
    assigned: Vec<(u64, String)>,
    snapshot_frames: u64,
    snapshot_bytes: u64,
    changed_frames: u64,
    changed_bytes: u64,
    failure: Option<String>,
}

/// The sessions assigned so far over all agents, and a wake-up when all are.
struct Assigned {
    count: AtomicUsize,
    target: usize,
    all: Notify,
}

async fn queue_agent(
    ctx: Arc<Ctx>,
    index: usize,
    token: String,
    assigned: Arc<Assigned>,
    ready: mpsc::UnboundedSender<bool>,
    mut phase: watch::Receiver<Phase>,
) -> Result<QueueAgent, String> {
    let connected = wire::connect(ctx.base(index), "agent", &token).await;
    let _ = ready.send(connected.is_ok());
    let mut socket = connected?;
    wait_go(&mut socket, &mut phase).await?;
    let mut agent = QueueAgent { joined_at: clock(), ..QueueAgent::default() };
    wire::send(&mut socket, wire::frame("agent:join", "join", json!({}))).await?;
    loop {
        if matches!(*phase.borrow_and_update(), Phase::Stop(_)) {
            break;
        }
        tokio::select! {
            changed = phase.changed() => if changed.is_err() { break },
            frame = socket.next() => match wire::text(frame) {
                Ok(Some(text)) => {
                    let Some(frame) = parse(&text) else { continue };
                    match frame.event {
                        "session:assigned" => {
                            agent.assigned.push((clock(), frame.data.session_id.unwrap_or_default().to_owned()));
                            if assigned.count.fetch_add(1, Ordering::Relaxed) + 1 == assigned.target {
                                assigned.all.notify_one();
                            }
                        }
                        "queue:update" => {
                            agent.snapshot_frames += 1;
                            agent.snapshot_bytes += text.len() as u64;
                        }
                        "queue:changed" => {
                            agent.changed_frames += 1;
                            agent.changed_bytes += text.len() as u64;
                        }
                        "error" => agent.failure = Some(format!("error: {}", wire::cut(&text))),
                        _ => {}
                    }
                }
                Ok(None) => {}
                Err(failure) => {
                    agent.failure = Some(failure);
                    break;
                }
            },
        }
    }
    Ok(agent)
}

/// `queue`: QUEUE customers ask for an agent; once all wait, the agents
/// join at once and the queue is drained.
pub async fn queue(ctx: Arc<Ctx>) {
    // Password hashing is slow on purpose: sign the agents in before anything is measured.
    let signing_in = Arc::new(Semaphore::new(4));
    let logins: Vec<_> = (0..ctx.agents.len())
        .map(|index| {
            let (ctx, signing_in) = (ctx.clone(), signing_in.clone());
            tokio::spawn(async move {
                let _permit = signing_in.acquire().await.map_err(|error| error.to_string())?;
                wire::login(&ctx.http, ctx.base(index), &ctx.agents[index], &ctx.agent_password).await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    let mut agent_failures = Failures::default();
    for (index, login) in logins.into_iter().enumerate() {
        match login.await {
            Ok(Ok(token)) => tokens.push((index, token)),
            Ok(Err(error)) => agent_failures.add(error),
            Err(error) => agent_failures.add(error.to_string()),
        }
    }

    let before: Vec<Option<u64>> = ctx.pids.iter().map(|pid| resident_kib(pid)).collect();
    let peaks = PeakMemory::start(&ctx.pids);
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let (asked_tx, mut asked_rx) = mpsc::unbounded_channel();
    let (holders, open) = crowd(&ctx, ctx.queue, Some(asked_tx), &phase_rx).await;
    let open_kib = total_kib(&ctx.pids);
    // Every customer asks at once: the queue's own pace, not the sign-ins'.
    ctx.mark("start", None).await;
    let fill_from = clock();
    let _ = phase_tx.send(Phase::Go(fill_from));
    let (waiting, _) = wait_ready(&mut asked_rx, open, "customers waiting").await;
    let filled_in = (clock() - fill_from) as f64 / 1e6;
    let filled_kib = total_kib(&ctx.pids);

    let assigned = Arc::new(Assigned { count: AtomicUsize::new(0), target: waiting, all: Notify::new() });
    let (agent_phase_tx, agent_phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let agent_count = tokens.len();
    let agents: Vec<_> = tokens
        .into_iter()
        .map(|(index, token)| {
            let run =
                queue_agent(ctx.clone(), index, token, assigned.clone(), ready_tx.clone(), agent_phase_rx.clone());
            tokio::spawn(run)
        })
        .collect();
    drop(ready_tx);
    let (agents_ready, _) = wait_ready(&mut ready_rx, agent_count, "agents connected").await;
    let go = clock();
    let _ = agent_phase_tx.send(Phase::Go(go));
    let all_assigned =
        waiting == 0 || tokio::time::timeout(Duration::from_secs(120), assigned.all.notified()).await.is_ok();
    ctx.mark("end", Some(0)).await;
    let drained_kib = total_kib(&ctx.pids);
    let _ = agent_phase_tx.send(Phase::Stop(go));
    let _ = phase_tx.send(Phase::Stop(fill_from));
    let results: Vec<_> = agent_failures
        .collect(agents, |agent| agent.failure.take())
        .await
        .into_iter()
        .map(|(_, agent)| agent)
        .collect();
    let (held, failures) = gather(holders).await;
    let peaks = peaks.stop();

    // The order the queue took them in: request_agent's acknowledgements.
    let mut asked: Vec<(u64, &str)> =
        held.iter().filter_map(|held| Some((held.asked_at?, held.session_id.as_str()))).collect();
    asked.sort_unstable();
    let asked_at: HashMap<&str, u64> = asked.iter().map(|(at, session)| (*session, *at)).collect();
    let mut fill = Timeline::default();
    for (at, _) in &asked {
        fill.count(*at, fill_from);
    }
    let first_join = results.iter().map(|agent| agent.joined_at).min().unwrap_or(go);
    let last_assigned = results.iter().flat_map(|agent| agent.assigned.last().map(|(at, _)| *at)).max();
    let assigned_count: usize = results.iter().map(|agent| agent.assigned.len()).sum();
    // Within one socket, assignments arrive in the order the queue gave them
    // out (docs/PROTOCOL.md), so each agent's should follow the waiting
    // order. That order is seen through the generator's own tasks, which
    // may take acknowledgements that arrive together in another order: an
    // inversion by more than a millisecond of waiting is a clear one.
    let (mut agents_in_order, mut inversions, mut clear, mut pairs) = (0, 0, 0, 0);
    let mut everything: Vec<(u64, u64)> = Vec::with_capacity(assigned_count);
    for agent in &results {
        let times: Vec<u64> =
            agent.assigned.iter().filter_map(|(_, session)| asked_at.get(session.as_str()).copied()).collect();
        let out_of_order = times.windows(2).filter(|pair| pair[0] > pair[1]).count();
        clear += times.windows(2).filter(|pair| pair[0] > pair[1] + 1_000).count();
        agents_in_order += usize::from(out_of_order == 0);
        inversions += out_of_order;
        pairs += times.len().saturating_sub(1);
        everything
            .extend(agent.assigned.iter().filter_map(|(at, session)| Some((*at, *asked_at.get(session.as_str())?))));
    }
    everything.sort_unstable();
    let global_inversions = everything.windows(2).filter(|pair| pair[0].1 > pair[1].1 + 1_000).count();
    let bytes = |pick: fn(&QueueAgent) -> u64| {
        let values: Vec<u64> = results.iter().map(pick).collect();
        let max = values.iter().copied().max().unwrap_or(0);
        (values.iter().sum::<u64>() / values.len().max(1) as u64, max)
    };
    let (snapshot_avg, snapshot_max) = bytes(|agent| agent.snapshot_bytes);
    let (changed_frames_avg, changed_frames_max) = bytes(|agent| agent.changed_frames);
    let (changed_bytes_avg, changed_bytes_max) = bytes(|agent| agent.changed_bytes);
    let snapshot_frames: u64 = results.iter().map(|agent| agent.snapshot_frames).sum();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| customers with a socket and a chat / waiting for an agent / failed | {} / {} / {} |",
        thousands(open as u64),
        thousands(waiting as u64),
        failures.count
    );
    if failures.count > 0 {
        println!("| commonest customer failure | {} |", failures.commonest().replace('|', "/"));
    }
    println!(
        "| all ask at once: time until every request_agent is acknowledged | {:.2} s: **{} per second** |",
        filled_in,
        thousands((waiting as f64 / filled_in) as u64)
    );
    println!("| agents joining at once, connected / failed | {} / {} |", agents_ready, agent_failures.count);
    match last_assigned {
        Some(last) if all_assigned => println!(
            "| **first join → all {} assigned** | **{:.2} s** |",
            thousands(assigned_count as u64),
            last.saturating_sub(first_join) as f64 / 1e6
        ),
        _ => println!(
            "| assigned within 120 s of the first join | {} of {} (not all) |",
            thousands(assigned_count as u64),
            thousands(waiting as u64)
        ),
    }
    println!(
        "| each agent's assignments in waiting order (request_agent acknowledged) | {agents_in_order} of {} agents; successive pairs out of order {inversions}, by more than 1 ms {clear}, of {pairs} |",
        results.len()
    );
    println!(
        "| all assignments by arrival at the generator, successive pairs out of waiting order by more than 1 ms | {} of {} |",
        thousands(global_inversions as u64),
        thousands(everything.len().saturating_sub(1) as u64)
    );
    println!(
        "| queue:update snapshot per agent socket, average / largest (KiB); frames in all | {:.1} / {:.1}; {} |",
        snapshot_avg as f64 / 1024.0,
        snapshot_max as f64 / 1024.0,
        snapshot_frames
    );
    println!(
        "| queue:changed per agent socket, frames average / most; KiB average / most | {} / {}; {:.1} / {:.1} |",
        thousands(changed_frames_avg),
        thousands(changed_frames_max),
        changed_bytes_avg as f64 / 1024.0,
        changed_bytes_max as f64 / 1024.0
    );
    println!(
        "| customers told assigned; queue:position frames to customers in all | {} ; {} |",
        thousands(held.iter().filter(|held| held.assigned).count() as u64),
        thousands(held.iter().map(|held| held.position_frames).sum())
    );
    println!(
        "| server resident memory with the agents signed in / chats open / queue full / drained (MiB) | {} / {} / {} / {} |",
        mib(before.iter().copied().sum()),
        mib(open_kib),
        mib(filled_kib),
        mib(drained_kib)
    );
    memory_rows(&ctx.pids, &before, &peaks);
    fill.table("request_agent acknowledged while the queue fills", None);
    failures.print("customer");
    agent_failures.print("agent");
}
