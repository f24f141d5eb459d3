//! A circuit breaker per upstream: after `failures_to_open` failures in a
//! row the upstream is not asked for `cooldown`, so a dead model costs each
//! customer nothing but the fallback; then one request tries it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial request is out since then; the others are refused until it
    /// answers, or for a cooldown if it never does.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a counter: whatever a panicking holder left is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// May a request go to the upstream now?
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen { since: Instant::now() };
                true
            }
            State::HalfOpen { since } if since.elapsed() >= self.cooldown => {
                *state = State::HalfOpen { since: Instant::now() };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn succeeded(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    pub fn failed(&self) {
        let mut state = self.state();
        let failures = match *state {
            State::Closed { failures } => failures + 1,
            State::Open { .. } | State::HalfOpen { .. } => self.failures_to_open,
        };
        *state = if failures >= self.failures_to_open {
            State::Open { until: Instant::now() + self.cooldown }
        } else {
            State::Closed { failures }
        };
    }

    /// Refusing requests, or letting one trial through.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_lets_one_trial_through_after_the_cooldown() {
        let breaker = Breaker::new(2, Duration::from_millis(50));
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        assert!(breaker.allow(), "one failure after a success does not open it");
        breaker.failed();
        assert!(!breaker.allow(), "two in a row do");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.allow(), "the trial after the cooldown");
        assert!(!breaker.allow(), "only one trial at a time");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.allow(), "a trial that never answered does not keep it shut");
        breaker.failed();
        assert!(!breaker.allow(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.allow());
        breaker.succeeded();
        assert!(breaker.allow() && breaker.allow(), "a good trial closes it");
    }
}
