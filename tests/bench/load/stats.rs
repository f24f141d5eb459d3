//! What a run measures: latencies, acknowledgements per second, memory,
//! and the Markdown they are printed as.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static START: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the generator started: one process, one clock, so a
/// time written into a message by one socket means the same on another.
pub fn clock() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The `Instant` of a `clock()` value, for timers.
pub fn instant(micros: u64) -> Instant {
    *START.get_or_init(Instant::now) + Duration::from_micros(micros)
}

/// Latencies in microseconds (u32: up to 71 minutes, ample for a run).
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn push(&mut self, micros: u64) {
        self.0.push(micros.min(u64::from(u32::MAX)) as u32);
    }

    pub fn append(&mut self, other: &mut Latencies) {
        self.0.append(&mut other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// "p50 / p90 / p99 / max" in milliseconds (max left out when `with_max` is false).
    pub fn summary(&mut self, with_max: bool) -> String {
        if self.0.is_empty() {
            return "n/a".to_owned();
        }
        self.0.sort_unstable();
        let at = |share: f64| self.0[((self.0.len() - 1) as f64 * share).round() as usize];
        let ms = |micros: u32| format!("{:.1}", f64::from(micros) / 1000.0);
        let mut text = format!("{} / {} / {}", ms(at(0.5)), ms(at(0.9)), ms(at(0.99)));
        if with_max {
            text.push_str(&format!(" / {}", ms(at(1.0))));
        }
        text
    }
}

/// Events per second since the measurement started.
#[derive(Default)]
pub struct Timeline(Vec<u32>);

impl Timeline {
    /// Counts an event at `at` (a `clock()` value) of a measurement that began at `since`.
    pub fn count(&mut self, at: u64, since: u64) {
        let second = (at.saturating_sub(since) / 1_000_000) as usize;
        if self.0.len() <= second {
            self.0.resize(second + 1, 0);
        }
        self.0[second] += 1;
    }

    pub fn merge(&mut self, other: &Timeline) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    /// Events in the first `seconds` seconds.
    pub fn within(&self, seconds: usize) -> u64 {
        self.0.iter().take(seconds).map(|&count| u64::from(count)).sum()
    }

    /// A Markdown table, ten seconds a row, so a minute stays six lines.
    pub fn table(&self, what: &str, seconds: Option<usize>) {
        let shown = seconds.map_or(self.0.len(), |seconds| seconds.min(self.0.len()));
        if shown == 0 {
            return;
        }
        println!();
        println!("| seconds | {what}, each second |");
        println!("|---|---|");
        for (row, counts) in self.0[..shown].chunks(10).enumerate() {
            let from = row * 10;
            let each: Vec<String> = counts.iter().map(|&count| thousands(u64::from(count))).collect();
            println!("| {from}–{} | {} |", from + counts.len(), each.join(" · "));
        }
    }
}

/// 12345 as "12,345".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Resident memory of a process, in KiB, from /proc.
pub fn resident_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0))
}

/// The highest resident memory of each server (and, last, of all together)
/// seen every 100 ms while it runs.
pub struct PeakMemory {
    peaks: Arc<Vec<AtomicU64>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakMemory {
    pub fn start(pids: &[String]) -> PeakMemory {
        let peaks: Arc<Vec<AtomicU64>> = Arc::new((0..=pids.len()).map(|_| AtomicU64::new(0)).collect());
        let (pids, shared) = (pids.to_vec(), peaks.clone());
        let sampler = tokio::spawn(async move {
            loop {
                let mut total = 0;
                for (pid, peak) in pids.iter().zip(shared.iter()) {
                    if let Some(kib) = resident_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                        total += kib;
                    }
                }
                shared[pids.len()].fetch_max(total, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        PeakMemory { peaks, sampler }
    }

    /// Each server's peak, then all together's.
    pub fn stop(self) -> Vec<Option<u64>> {
        self.sampler.abort();
        self.peaks.iter().map(|peak| Some(peak.load(Ordering::Relaxed)).filter(|&kib| kib > 0)).collect()
    }
}

/// Prints the servers' memory before and at peak.
pub fn memory_rows(pids: &[String], before: &[Option<u64>], peaks: &[Option<u64>]) {
    if pids.len() == 1 {
        println!("| server resident memory before / peak (MiB) | {} / {} |", mib(before[0]), mib(peaks[0]));
        return;
    }
    for (index, (before, peak)) in before.iter().zip(peaks).enumerate() {
        println!("| server {} resident memory before / peak (MiB) | {} / {} |", index + 1, mib(*before), mib(*peak));
    }
    let before_sum = before.iter().copied().sum::<Option<u64>>();
    println!(
        "| servers together, resident memory before / peak (MiB) | {} / {} |",
        mib(before_sum),
        mib(peaks[pids.len()])
    );
}
