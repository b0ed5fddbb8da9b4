//! A circuit breaker: after a run of transient failures, calls fail at once for a cool-down
//! instead of each waiting for its own timeouts, then one call at a time probes again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{KmsError, Result};

/// Consecutive transient failures that open the circuit.
const FAILURES_TO_OPEN: u32 = 3;
/// How long an open circuit fails calls at once.
const OPEN_FOR: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

/// Counts transient failures and opens after [`FAILURES_TO_OPEN`] in a row.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Breaker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails at once while the circuit is open; when the cool-down is over, lets this call
    /// through as a probe (others keep failing until it reports).
    pub fn check(&self) -> Result<()> {
        let mut state = self.state();
        match state.open_until {
            Some(until) if Instant::now() < until => {
                Err(KmsError::Unavailable("OpenBao failed repeatedly; waiting before trying again".into()))
            }
            Some(_) => {
                state.open_until = Some(Instant::now() + OPEN_FOR);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A call succeeded: close the circuit.
    pub fn success(&self) {
        let mut state = self.state();
        state.failures = 0;
        state.open_until = None;
    }

    /// A call failed transiently.
    pub fn failure(&self) {
        let mut state = self.state();
        state.failures += 1;
        if state.failures >= FAILURES_TO_OPEN {
            state.open_until = Some(Instant::now() + OPEN_FOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_closes_on_success() {
        let breaker = Breaker::default();
        for _ in 0..FAILURES_TO_OPEN {
            assert!(breaker.check().is_ok());
            breaker.failure();
        }
        assert!(breaker.check().is_err());
        breaker.state().open_until = Some(Instant::now());
        assert!(breaker.check().is_ok(), "a probe after the cool-down");
        assert!(breaker.check().is_err(), "only one probe at a time");
        breaker.success();
        assert!(breaker.check().is_ok());
    }
}
