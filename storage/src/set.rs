//! One erasure set: the drives that hold the shards of the same objects, and the fan-out of
//! record reads and writes to them under quorum.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tracing::Instrument;

use crate::drive::Drive;
use crate::erasure::Erasure;
use crate::error::Result;
use crate::heal::HealQueue;
use crate::meta::VersionRecord;
use crate::quorum::{self, Agreed, Answer, Quorum};

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

    /// The newest committed version of a key (possibly a delete marker), if any.
    pub async fn latest(&self, bucket: &str, key: &str, op: &'static str) -> Result<Option<Agreed>> {
        let results = self.on_all(|drive| drive.latest_version(bucket, key)).await;
        quorum::resolve_latest(self.answers(results), &self.quorum, op)
    }

    /// Commits one record per drive (`records[i]` to drive `i`, `None` = skip) and checks the
    /// write quorum; on failure the drives that did commit are rolled back.
    pub async fn commit_records(
        &self,
        bucket: &str,
        key: &str,
        records: Vec<Option<VersionRecord>>,
        op: &'static str,
    ) -> Result<()> {
        let version_id = records.iter().flatten().next().map(|r| r.version_id);
        let results = join_all(self.drives.iter().zip(records).map(|(drive, record)| {
            async move {
                match record {
                    Some(record) => drive.commit_version(bucket, key, record).await.map(|()| true),
                    None => Ok(false),
                }
            }
            .instrument(drive_span(drive))
        }))
        .await;
        let committed: Vec<bool> = results
            .iter()
            .zip(&self.drives)
            .map(|(r, drive)| match r {
                Ok(done) => *done,
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "commit failed on drive");
                    false
                }
            })
            .collect();
        let acknowledged = committed.iter().filter(|c| **c).count();
        if let Err(e) = self.quorum.check_write(op, acknowledged) {
            if let Some(version_id) = version_id {
                let drives = self.drives.iter().zip(&committed).filter(|(_, c)| **c).map(|(d, _)| d);
                join_all(drives.map(|d| d.delete_version(bucket, key, version_id))).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Number of drives whose result is `Ok`.
    pub fn count_ok<T>(results: &[Result<T>]) -> usize {
        results.iter().filter(|r| r.is_ok()).count()
    }
}

/// The span of one drive's part in a fan-out.
fn drive_span(drive: &Arc<dyn Drive>) -> tracing::Span {
    tracing::info_span!("storage.drive", drive = drive.label())
}
