//! One erasure set: the drives that hold the shards of the same objects, the fan-out of reads
//! to them under quorum, and the resolution of a key's current version.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tracing::Instrument;

use crate::cleanup::Cleanups;
use crate::commit::drive_span;
use crate::drive::{Drive, DriveVersions};
use crate::erasure::Erasure;
use crate::error::Result;
use crate::heal::HealQueue;
use crate::quorum::{self, Agreed, Answer, Quorum};
use crate::stamp::Clock;

/// Versions of a key each drive is asked for, round after round until the answers decide: the
/// newest alone decides almost every lookup, so a key's noncurrent versions (10,000 of them in a
/// versioned bucket) cost a GET nothing; an overwrite in flight or cut short by a crash needs a
/// few more; only then are they all read.
const LOOKUP_LIMITS: [usize; 3] = [1, 16, usize::MAX];

/// The drives of one erasure set and how new objects are laid out on them.
#[derive(Debug)]
pub struct ErasureSet {
    /// Drives in set order; drive `i` holds shard `placement::shard_of_drive(hash, i, n)`.
    pub drives: Vec<Arc<dyn Drive>>,
    /// Layout of new objects.
    pub erasure: Erasure,
    /// Quorum sizes for this set.
    pub quorum: Quorum,
    /// Objects up to this size live inside their version records.
    pub inline_threshold_bytes: usize,
    /// Where damaged objects are reported for repair.
    pub heal: HealQueue,
    /// Stamps the writes of this store; moved forward past every stamp read.
    pub clock: Arc<Clock>,
    /// Cleanups waiting to remove what acknowledged writes superseded.
    pub cleanups: Cleanups,
}

impl ErasureSet {
    /// Runs `op` on every drive concurrently, each in a `storage.drive` span; results are in
    /// drive order.
    pub async fn on_all<'a, T, F, Fut>(&'a self, op: F) -> Vec<Result<T>>
    where
        F: Fn(&'a Arc<dyn Drive>) -> Fut,
        Fut: Future<Output = Result<T>> + 'a,
    {
        join_all(self.drives.iter().map(|drive| op(drive).instrument(drive_span(drive)))).await
    }

    /// Turns per-drive results into quorum answers; failures and a healing drive's "missing"
    /// count as unknown.
    pub fn answers<T>(&self, results: Vec<Result<Option<T>>>) -> Vec<Answer<T>> {
        results
            .into_iter()
            .zip(&self.drives)
            .map(|(result, drive)| match result {
                Ok(Some(found)) => Answer::Found(found),
                Ok(None) if drive.is_healing() => Answer::Unknown,
                Ok(None) => Answer::Missing,
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "drive did not answer");
                    Answer::Unknown
                }
            })
            .collect()
    }

    /// Per-drive lists as quorum answers: an empty list from a drive in good standing is
    /// "missing", a failure or a healing drive's empty list "unknown".
    pub fn list_answers<T>(&self, results: Vec<Result<Vec<T>>>) -> Vec<Answer<Vec<T>>> {
        self.answers(results.into_iter().map(|r| r.map(|items| (!items.is_empty()).then_some(items))).collect())
    }

    /// The newest committed version of a key (possibly a delete marker), if any. A version
    /// held by fewer drives than a write quorum is reported for healing.
    pub async fn latest(&self, bucket: &str, key: &str, op: &'static str) -> Result<Option<Agreed>> {
        self.lookup(bucket, key, op, true).await
    }

    /// [`ErasureSet::latest`] for the healer itself, which must not report what it is healing
    /// (with drives down that would requeue the key for ever).
    pub async fn latest_unreported(&self, bucket: &str, key: &str, op: &'static str) -> Result<Option<Agreed>> {
        self.lookup(bucket, key, op, false).await
    }

    async fn lookup(&self, bucket: &str, key: &str, op: &'static str, report: bool) -> Result<Option<Agreed>> {
        let mut limits = LOOKUP_LIMITS.iter().peekable();
        while let Some(&limit) = limits.next() {
            let results = self.on_all(|drive| drive.versions(bucket, key, limit)).await;
            let answers = self.answers(
                results.into_iter().map(|r| r.map(|v: DriveVersions| (!v.versions.is_empty()).then_some(v))).collect(),
            );
            let resolved = quorum::resolve_versions(answers, &self.quorum, op)?;
            if resolved.incomplete && limits.peek().is_some() {
                continue;
            }
            if let Some(agreed) = &resolved.agreed {
                self.clock.observe(agreed.record().stamp);
                if resolved.short && report {
                    self.heal.report(bucket, key);
                }
            }
            return Ok(resolved.agreed);
        }
        Ok(None)
    }

    /// Number of drives whose result is `Ok`.
    pub fn count_ok<T>(results: &[Result<T>]) -> usize {
        results.iter().filter(|r| r.is_ok()).count()
    }
}
