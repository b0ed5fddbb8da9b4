//! Ordering stamps: a hybrid logical clock and a writer id. Every version and part carries one;
//! the newest stamp wins on every drive, so writers through any number of gateways converge on
//! the same current version without a shared lock (last writer wins, as S3 specifies).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The order of a write: hybrid logical time (nanoseconds since the Unix epoch, bumped past
/// every stamp this clock has issued or seen), then the writer id to break ties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Hybrid logical time in nanoseconds.
    pub hlc: u64,
    /// The writer (store instance) that issued the stamp.
    pub writer: u64,
}

impl Stamp {
    /// The stamp's time as Unix nanoseconds, for Last-Modified.
    pub fn unix_ns(&self) -> i64 {
        i64::try_from(self.hlc).unwrap_or(i64::MAX)
    }
}

/// A hybrid logical clock owned by one writer.
#[derive(Debug)]
pub struct Clock {
    last: AtomicU64,
    writer: u64,
}

impl Clock {
    /// A clock for `writer` (a random id per store instance).
    pub fn new(writer: u64) -> Self {
        Self { last: AtomicU64::new(0), writer }
    }

    /// A stamp later than every stamp issued or observed so far, and not earlier than the wall
    /// clock.
    pub fn next(&self) -> Stamp {
        let now = wall_ns();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let hlc = now.max(last + 1);
            match self.last.compare_exchange_weak(last, hlc, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Stamp { hlc, writer: self.writer },
                Err(seen) => last = seen,
            }
        }
    }

    /// Moves the clock past a stamp seen in a record, so a write that follows a read is ordered
    /// after what it read even when this machine's clock lags the writer's.
    pub fn observe(&self, stamp: Stamp) {
        self.last.fetch_max(stamp.hlc, Ordering::Relaxed);
    }
}

fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_and_pass_observed_ones() {
        let clock = Clock::new(7);
        let a = clock.next();
        let b = clock.next();
        assert!(b > a);
        let future = Stamp { hlc: a.hlc + 3_600_000_000_000, writer: 9 };
        clock.observe(future);
        let c = clock.next();
        assert!(c > future, "a write after a read of a newer stamp is ordered after it");
        assert_eq!(c.writer, 7);
    }

    #[test]
    fn writer_breaks_ties() {
        let a = Stamp { hlc: 5, writer: 1 };
        let b = Stamp { hlc: 5, writer: 2 };
        assert!(b > a);
    }
}
