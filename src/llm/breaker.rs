//! Circuit breaker for the LLM provider: a pure state machine; time comes in as an argument
//! (callers use a [`Clock`], tests a [`ManualClock`]).
//!
//! Policy (consecutive failures, chosen over a failure ratio because it reacts within a few
//! calls at the low traffic of a single tenant and needs no window bookkeeping):
//! - `Closed`: calls pass. `failure_threshold` consecutive failed attempts open the breaker;
//!   any success resets the count.
//! - `Open`: every call is refused at once until `cool_down` has passed since opening.
//! - `HalfOpen`: exactly one probe is let through; the others are refused. Probe success →
//!   `Closed`; probe failure → `Open` with a fresh cool-down; an abandoned probe (its caller was
//!   cancelled) frees the slot for the next caller.
//!
//! Invariants: at most one probe is outstanding; outcomes of calls admitted in one state never
//! change a later state (a slow call admitted while `Closed` cannot close an `Open` breaker).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerSettings {
    /// Consecutive failed attempts that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How long the breaker stays open before letting one probe through.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

impl BreakerSettings {
    /// Check the settings, returning a reason when they are unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.failure_threshold == 0 {
            return Err("breaker.failure_threshold must be at least 1".into());
        }
        if self.cool_down.is_zero() {
            return Err("breaker.cool_down must be positive".into());
        }
        Ok(())
    }
}

/// Observable breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused.
    Open,
    /// The cool-down is over: the next call (only one) probes the provider.
    HalfOpen,
}

/// How a call was let through; its outcome must be reported with the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted while closed.
    Normal,
    /// Admitted as the single half-open probe.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_out: bool },
}

/// The breaker state machine. Not synchronised: wrap it in a mutex to share it.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    inner: Inner,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Inner::Closed { failures: 0 },
        }
    }

    /// Ask to make a call at `now`. `None` means refused (fail fast).
    pub fn try_acquire(&mut self, now: Instant) -> Option<Admission> {
        match self.inner {
            Inner::Closed { .. } => Some(Admission::Normal),
            Inner::Open { until } if now >= until => {
                self.inner = Inner::HalfOpen { probe_out: true };
                Some(Admission::Probe)
            }
            Inner::Open { .. } => None,
            Inner::HalfOpen { probe_out: false } => {
                self.inner = Inner::HalfOpen { probe_out: true };
                Some(Admission::Probe)
            }
            Inner::HalfOpen { probe_out: true } => None,
        }
    }

    /// Report a successful (or provider-alive) outcome.
    pub fn on_success(&mut self, admission: Admission) {
        match (admission, self.inner) {
            (Admission::Normal, Inner::Closed { .. })
            | (Admission::Probe, Inner::HalfOpen { .. }) => {
                self.inner = Inner::Closed { failures: 0 };
            }
            _ => {}
        }
    }

    /// Report a failed attempt at `now`.
    pub fn on_failure(&mut self, admission: Admission, now: Instant) {
        match (admission, self.inner) {
            (Admission::Normal, Inner::Closed { failures }) => {
                let failures = failures.saturating_add(1);
                self.inner = if failures >= self.settings.failure_threshold {
                    self.open_at(now)
                } else {
                    Inner::Closed { failures }
                };
            }
            (Admission::Probe, Inner::HalfOpen { .. }) => self.inner = self.open_at(now),
            _ => {}
        }
    }

    /// Report that an admitted call was dropped before it had an outcome.
    pub fn on_abandon(&mut self, admission: Admission) {
        if admission == Admission::Probe {
            if let Inner::HalfOpen { .. } = self.inner {
                self.inner = Inner::HalfOpen { probe_out: false };
            }
        }
    }

    /// The state as seen at `now` (an expired `Open` reads as `HalfOpen`).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures counted while closed (0 in the other states).
    pub fn consecutive_failures(&self) -> u32 {
        match self.inner {
            Inner::Closed { failures } => failures,
            _ => 0,
        }
    }

    fn open_at(&self, now: Instant) -> Inner {
        tracing::warn!(
            cool_down_ms = self.settings.cool_down.as_millis() as u64,
            "LLM circuit breaker opened"
        );
        Inner::Open {
            until: now + self.settings.cool_down,
        }
    }
}

/// A source of monotonic time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    /// A clock frozen at the current instant.
    pub fn new() -> Self {
        Self::default()
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        self.base + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failure_threshold: threshold,
            cool_down: Duration::from_secs(10),
        })
    }

    fn fail(b: &mut CircuitBreaker, now: Instant) {
        let a = b.try_acquire(now).unwrap();
        b.on_failure(a, now);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let clock = ManualClock::new();
        let mut b = breaker(3);
        fail(&mut b, clock.now());
        fail(&mut b, clock.now());
        assert_eq!(b.state(clock.now()), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 2);
        fail(&mut b, clock.now());
        assert_eq!(b.state(clock.now()), BreakerState::Open);
        assert_eq!(b.try_acquire(clock.now()), None);
    }

    #[test]
    fn success_resets_the_count() {
        let now = Instant::now();
        let mut b = breaker(3);
        fail(&mut b, now);
        fail(&mut b, now);
        let a = b.try_acquire(now).unwrap();
        b.on_success(a);
        fail(&mut b, now);
        fail(&mut b, now);
        assert_eq!(b.state(now), BreakerState::Closed);
    }

    #[test]
    fn half_open_admits_exactly_one_probe_and_closes_on_success() {
        let clock = ManualClock::new();
        let mut b = breaker(1);
        fail(&mut b, clock.now());
        clock.advance(Duration::from_secs(9));
        assert_eq!(b.try_acquire(clock.now()), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.state(clock.now()), BreakerState::HalfOpen);
        let probe = b.try_acquire(clock.now());
        assert_eq!(probe, Some(Admission::Probe));
        assert_eq!(b.try_acquire(clock.now()), None, "second caller must wait");
        b.on_success(Admission::Probe);
        assert_eq!(b.state(clock.now()), BreakerState::Closed);
        assert_eq!(b.try_acquire(clock.now()), Some(Admission::Normal));
    }

    #[test]
    fn failed_probe_reopens_with_fresh_cool_down() {
        let clock = ManualClock::new();
        let mut b = breaker(1);
        fail(&mut b, clock.now());
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire(clock.now()).unwrap();
        clock.advance(Duration::from_secs(2));
        b.on_failure(probe, clock.now());
        assert_eq!(b.state(clock.now()), BreakerState::Open);
        clock.advance(Duration::from_secs(9));
        assert_eq!(b.try_acquire(clock.now()), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.try_acquire(clock.now()), Some(Admission::Probe));
    }

    #[test]
    fn abandoned_probe_frees_the_slot() {
        let clock = ManualClock::new();
        let mut b = breaker(1);
        fail(&mut b, clock.now());
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire(clock.now()).unwrap();
        b.on_abandon(probe);
        assert_eq!(b.try_acquire(clock.now()), Some(Admission::Probe));
    }

    #[test]
    fn stale_outcomes_do_not_change_a_later_state() {
        let now = Instant::now();
        let mut b = breaker(1);
        let slow = b.try_acquire(now).unwrap();
        fail(&mut b, now);
        assert_eq!(b.state(now), BreakerState::Open);
        b.on_success(slow);
        assert_eq!(b.state(now), BreakerState::Open, "stale success ignored");
    }

    #[test]
    fn settings_validation() {
        assert!(BreakerSettings::default().validate().is_ok());
        let zero = BreakerSettings {
            failure_threshold: 0,
            ..BreakerSettings::default()
        };
        assert!(zero.validate().is_err());
        let no_cool = BreakerSettings {
            cool_down: Duration::ZERO,
            ..BreakerSettings::default()
        };
        assert!(no_cool.validate().is_err());
    }
}
