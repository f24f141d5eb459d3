//! A load generator: many customers chat with the bot at once over real
//! WebSockets, and the report says how fast messages were acknowledged and
//! how much memory the server used. Run it through `scripts/bench.sh`, which
//! starts the server; it is not a test and asserts nothing.
//!
//! Settings (environment): BASE_URL, SERVER_PID, CUSTOMERS (200), MESSAGES (20),
//! DURATION_SECS (unset: each customer sends MESSAGES; set: each customer
//! sends until the time is up, and the report shows throughput per window).
//! Several nodes: BASE_URLS (comma-separated, instead of BASE_URL) spreads the
//! customers round-robin over them, and SERVER_PIDS (comma-separated, in the
//! same order) reports each server's memory and their sum. CROSS_NODE=1 (with
//! several servers): each customer starts its chat on one server, then talks
//! from a socket on the next one, so every message, acknowledgement and bot
//! answer crosses Redis between the two nodes.
//! Every message carries a fresh random `clientMsgId`, as the widget sends.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A comma-separated list from `plural`, or the single value of `single`.
fn list(plural: &str, single: &str) -> Vec<String> {
    let value = std::env::var(plural).or_else(|_| std::env::var(single)).unwrap_or_default();
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// Resident memory of a process, in MiB, from /proc.
fn resident_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index]
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads frames until the reply with `reference` arrives.
async fn reply(socket: &mut Socket, reference: &str) -> Result<Value, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).map_err(|error| error.to_string())?;
                if frame["ref"] == reference {
                    return Ok(frame);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("closed".to_owned()),
        }
    }
}

/// When to stop sending.
#[derive(Clone, Copy)]
enum Until {
    Count(usize),
    Deadline(Instant),
}

/// One acknowledged message: when it was acknowledged (since the start) and how long it took.
type Acked = (Duration, Duration);

/// One customer: sign in, start a chat, send messages one after another
/// until `until`; returns when each was acknowledged and how long it took.
async fn connect(base: &str, token: &str) -> Result<Socket, String> {
    let url = format!("{}/ws/customer?token={token}", base.replacen("http://", "ws://", 1));
    let (socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|error| error.to_string())?;
    Ok(socket)
}

async fn request(socket: &mut Socket, event: &str, reference: &str, data: Value) -> Result<Value, String> {
    let frame = json!({ "event": event, "ref": reference, "data": data });
    socket.send(Message::text(frame.to_string())).await.map_err(|error| error.to_string())?;
    reply(socket, reference).await
}

async fn customer(
    base: String,
    talk_from: Option<String>,
    n: usize,
    until: Until,
    started: Instant,
) -> Result<Vec<Acked>, String> {
    let http = reqwest::Client::new();
    let visitor: Value = http
        .post(format!("{base}/api/auth/visitor"))
        .json(&json!({ "name": format!("Load {n}") }))
        .send()
        .await
        .map_err(|error| error.to_string())?
        .json()
        .await
        .map_err(|error| error.to_string())?;
    let token = visitor["token"].as_str().ok_or("no token")?;
    let mut socket = connect(&base, token).await?;
    let created = request(&mut socket, "customer:start_chat", "start", json!({})).await?;
    let session_id = created["data"]["sessionId"].as_str().ok_or("no session")?.to_owned();
    if let Some(other) = talk_from {
        // The chat stays on the node that started it; this socket's node passes everything on.
        let _ = socket.close(None).await;
        socket = connect(&other, token).await?;
        let resumed = request(&mut socket, "customer:resume", "resume", json!({ "sessionId": session_id })).await?;
        if resumed["event"] != "session:resumed" {
            return Err(format!("resume refused: {resumed}"));
        }
    }
    let mut latencies = Vec::new();
    for m in 0.. {
        let more = match until {
            Until::Count(messages) => m < messages,
            Until::Deadline(deadline) => Instant::now() < deadline,
        };
        if !more {
            break;
        }
        let reference = format!("m{m}");
        let data = json!({
            "sessionId": session_id,
            "content": format!("where is my order number {m}?"),
            "clientMsgId": uuid::Uuid::new_v4().to_string(),
        });
        let sent = Instant::now();
        let answer = request(&mut socket, "customer:send_message", &reference, data).await?;
        if answer["event"] != "message:sent" {
            return Err(format!("refused: {answer}"));
        }
        latencies.push((started.elapsed(), sent.elapsed()));
    }
    let _ = socket.close(None).await;
    Ok(latencies)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bases = list("BASE_URLS", "BASE_URL");
    if bases.is_empty() {
        println!("load: BASE_URL is not set; run scripts/bench.sh");
        return;
    }
    let mut pids = list("SERVER_PIDS", "SERVER_PID");
    if pids.is_empty() {
        pids.push(String::new());
    }
    let customers = setting("CUSTOMERS", 200);
    let messages = setting("MESSAGES", 20);
    let duration = setting("DURATION_SECS", 0);
    let idle_mibs: Vec<Option<f64>> = pids.iter().map(|pid| resident_mib(pid)).collect();

    let started = Instant::now();
    let until = match duration {
        0 => Until::Count(messages),
        seconds => Until::Deadline(started + Duration::from_secs(seconds as u64)),
    };
    let cross_node = setting("CROSS_NODE", 0) == 1 && bases.len() > 1;
    // Customer n starts its chat on server n mod the number of servers (and
    // with CROSS_NODE talks from the next one).
    let runs: Vec<_> = (0..customers)
        .map(|n| {
            let talk_from = cross_node.then(|| bases[(n + 1) % bases.len()].clone());
            tokio::spawn(customer(bases[n % bases.len()].clone(), talk_from, n, until, started))
        })
        .collect();
    // The highest resident memory seen while the load runs, per server and
    // (last) of all of them together, as f64 bits.
    let peaks: std::sync::Arc<Vec<std::sync::atomic::AtomicU64>> =
        std::sync::Arc::new((0..=pids.len()).map(|_| std::sync::atomic::AtomicU64::new(0)).collect());
    let peak_sampler = {
        let (pids, peaks) = (pids.clone(), peaks.clone());
        tokio::spawn(async move {
            let raise = |peak: &std::sync::atomic::AtomicU64, mib: f64| {
                let seen = f64::from_bits(peak.load(std::sync::atomic::Ordering::Relaxed));
                peak.store(seen.max(mib).to_bits(), std::sync::atomic::Ordering::Relaxed);
            };
            loop {
                let mut total = 0.0;
                for (pid, peak) in pids.iter().zip(peaks.iter()) {
                    if let Some(mib) = resident_mib(pid) {
                        raise(peak, mib);
                        total += mib;
                    }
                }
                raise(&peaks[pids.len()], total);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut acked: Vec<Acked> = Vec::new();
    let mut acked_per_server = vec![0usize; bases.len()];
    let mut failures = Vec::new();
    for (n, run) in runs.into_iter().enumerate() {
        match run.await {
            Ok(Ok(mut run)) => {
                acked_per_server[n % bases.len()] += run.len();
                acked.append(&mut run)
            }
            Ok(Err(error)) => failures.push(error),
            Err(error) => failures.push(error.to_string()),
        }
    }
    let elapsed = started.elapsed();
    peak_sampler.abort();
    let peak_mibs: Vec<Option<f64>> = peaks
        .iter()
        .map(|peak| Some(f64::from_bits(peak.load(std::sync::atomic::Ordering::Relaxed))).filter(|mib| *mib > 0.0))
        .collect();
    let mut latencies: Vec<Duration> = acked.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    let stored = latencies.len();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mib = |m: Option<f64>| m.map(|m| format!("{m:.1}")).unwrap_or_else(|| "n/a".to_owned());
    println!("| measure | value |");
    println!("|---|---|");
    println!("| customers (one WebSocket each) | {customers} |");
    if cross_node {
        println!("| each chat runs on one node, its customer's socket is on another | yes |");
    }
    match until {
        Until::Count(messages) => println!("| messages acknowledged | {stored} of {} |", customers * messages),
        Until::Deadline(_) => println!("| messages acknowledged in {duration} s | {stored} |"),
    }
    if bases.len() > 1 {
        let each: Vec<String> = acked_per_server.iter().map(usize::to_string).collect();
        println!("| messages acknowledged per server (customers taken in turn) | {} |", each.join(" · "));
    }
    println!("| failed customers | {} |", failures.len());
    println!("| wall time | {:.2} s |", elapsed.as_secs_f64());
    println!("| customer messages per second | {:.0} |", stored as f64 / elapsed.as_secs_f64());
    println!(
        "| stored messages per second (each answered by the bot) | {:.0} |",
        2.0 * stored as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| acknowledgement latency p50 / p90 / p99 / max (ms) | {} / {} / {} / {} |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    if pids.len() == 1 {
        println!(
            "| server resident memory before / peak during the load (MiB) | {} / {} |",
            mib(idle_mibs[0]),
            mib(peak_mibs[0])
        );
    } else {
        for (index, (idle, peak)) in idle_mibs.iter().zip(&peak_mibs).enumerate() {
            println!(
                "| server {} resident memory before / peak during the load (MiB) | {} / {} |",
                index + 1,
                mib(*idle),
                mib(*peak)
            );
        }
        let idle_sum = idle_mibs.iter().copied().sum::<Option<f64>>();
        println!(
            "| servers together, resident memory before / peak during the load (MiB) | {} / {} |",
            mib(idle_sum),
            mib(peak_mibs[pids.len()])
        );
    }
    if duration > 0 {
        // Throughput per window, to show whether it falls as the chats grow.
        const WINDOW: u64 = 10;
        let mut windows = vec![0usize; duration.div_ceil(WINDOW as usize) + 1];
        for (at, _) in &acked {
            if let Some(count) = windows.get_mut((at.as_secs() / WINDOW) as usize) {
                *count += 1;
            }
        }
        println!();
        println!("| seconds | customer messages per second |");
        println!("|---|---|");
        // The last messages sent before the deadline are acknowledged just after it; they are not a window.
        let full_windows = duration / WINDOW as usize;
        for (index, count) in windows.iter().enumerate().take(full_windows) {
            let from = index as u64 * WINDOW;
            println!("| {from}–{} | {:.0} |", from + WINDOW, *count as f64 / WINDOW as f64);
        }
    }
    for failure in failures.iter().take(5) {
        eprintln!("failure: {failure}");
    }
}
