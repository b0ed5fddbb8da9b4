//! One erasure set: the drives that hold the shards of the same objects, and the fan-out of
//! record reads and writes to them under quorum.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tracing::Instrument;

use crate::drive::{Drive, Replaced};
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
    /// Serialises the writers of each key: commits, their rollbacks, deletes, tagging,
    /// multipart completion and abort, and heal.
    pub writers: KeyLocks,
}

/// Stripes of the per-key write lock.
const KEY_LOCK_STRIPES: usize = 256;

/// Per-key write locks (striped) of one process. Writers of a key that run one at a time
/// reach every drive in the same order, so the drives agree on which version is current, and
/// a rollback never races another write of the key. Gateways on several machines will need a
/// distributed lock in its place.
#[derive(Debug)]
pub struct KeyLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for KeyLocks {
    fn default() -> Self {
        Self((0..KEY_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl KeyLocks {
    /// Waits for the write lock of the object whose [`crate::placement::object_hash`] is `hash`.
    pub async fn lock(&self, hash: u64) -> tokio::sync::MutexGuard<'_, ()> {
        self.0[hash as usize % KEY_LOCK_STRIPES].lock().await
    }
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
    /// write quorum; the caller holds the key's write lock. Once it is met, the shard files of the versions replaced are reclaimed in
    /// the background; otherwise each drive that committed gets its previous version back
    /// (unless a newer write replaced the failed one meanwhile), so a failed overwrite leaves
    /// the object as it was.
    pub async fn commit_records(
        &self,
        bucket: &str,
        key: &str,
        records: Vec<Option<VersionRecord>>,
        op: &'static str,
        on_rollback: OnRollback,
    ) -> Result<()> {
        let version_id = records.iter().flatten().next().map(|r| r.version_id);
        let results = join_all(self.drives.iter().zip(records).map(|(drive, record)| {
            async move {
                match record {
                    Some(record) => drive.commit_version(bucket, key, record).await.map(Some),
                    None => Ok(None),
                }
            }
            .instrument(drive_span(drive))
        }))
        .await;
        let committed: Vec<(Arc<dyn Drive>, Replaced)> = results
            .into_iter()
            .zip(&self.drives)
            .filter_map(|(result, drive)| match result {
                Ok(replaced) => replaced.map(|r| (Arc::clone(drive), r)),
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "commit failed on drive");
                    None
                }
            })
            .collect();
        if let Err(e) = self.quorum.check_write(op, committed.len()) {
            if let Some(version_id) = version_id {
                let release = on_rollback == OnRollback::ReleaseData;
                join_all(committed.into_iter().map(|(drive, replaced)| async move {
                    let restored = drive.restore_version(bucket, key, version_id, replaced.previous, release).await;
                    if let Err(e) = restored {
                        tracing::warn!(drive = drive.label(), error = %e, "rollback of a failed commit failed on drive");
                    }
                }))
                .await;
            }
            return Err(e);
        }
        if committed.iter().all(|(_, replaced)| replaced.unreferenced.is_empty()) {
            return Ok(());
        }
        tokio::spawn(async move {
            for (drive, replaced) in committed {
                for data_id in replaced.unreferenced {
                    if let Err(e) = drive.discard_shard(data_id).await {
                        tracing::warn!(drive = drive.label(), %data_id, error = %e, "replaced shard file not reclaimed");
                    }
                }
            }
        });
        Ok(())
    }

    /// Number of drives whose result is `Ok`.
    pub fn count_ok<T>(results: &[Result<T>]) -> usize {
        results.iter().filter(|r| r.is_ok()).count()
    }
}

/// What undoing a commit does with the shard files the new version names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRollback {
    /// Unreference and remove them: they were written for this commit.
    ReleaseData,
    /// Leave them referenced: they are the parts of an upload that a retry may complete.
    KeepData,
}

/// The span of one drive's part in a fan-out.
fn drive_span(drive: &Arc<dyn Drive>) -> tracing::Span {
    tracing::info_span!("storage.drive", drive = drive.label())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::error::StorageError;
    use crate::heal::HealQueue;
    use crate::local::{test_version_with_file, LocalDrive, TEST_FRAMES};
    use crate::meta;
    use crate::offline::OfflineDrive;

    fn set_of(drives: Vec<Arc<dyn Drive>>, data: usize, parity: usize) -> ErasureSet {
        ErasureSet {
            drives,
            erasure: Erasure::new(data, parity, 1024).unwrap(),
            quorum: Quorum::new(data, parity),
            inline_threshold_bytes: 0,
            heal: HealQueue::new().0,
            writers: KeyLocks::default(),
        }
    }

    #[tokio::test]
    async fn an_overwrite_short_of_quorum_leaves_the_previous_version() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let local: Vec<Arc<LocalDrive>> =
            dirs.iter().map(|d| Arc::new(LocalDrive::open(d.path(), false).unwrap())).collect();
        let mut previous = Vec::new();
        for drive in &local {
            let record = test_version_with_file(drive, 1).await;
            drive.commit_version("b", "k", record.clone()).await.unwrap();
            previous.push(record);
        }
        // 2+2 needs 3 commits; two drives are offline.
        let offline = || Arc::new(OfflineDrive::new("gone".into(), "test".into())) as Arc<dyn Drive>;
        let drives = vec![local[0].clone() as Arc<dyn Drive>, local[1].clone(), offline(), offline()];
        let set = set_of(drives, 2, 2);
        let newer = meta::test_record(2);
        let result = set.commit_records("b", "k", vec![Some(newer); 4], "test", OnRollback::ReleaseData).await;
        assert!(matches!(result, Err(StorageError::QuorumLost { .. })), "{result:?}");
        for (drive, record) in local.iter().zip(&previous) {
            assert_eq!(drive.latest_version("b", "k").await.unwrap().as_ref(), Some(record));
            assert!(drive.read_shard(record.parts[0].data_id, 0, TEST_FRAMES.len()).await.is_ok(), "shard file kept");
        }
    }

    #[tokio::test]
    async fn an_acknowledged_overwrite_reclaims_the_replaced_shard_files() {
        let dir = tempfile::tempdir().unwrap();
        let drive = Arc::new(LocalDrive::open(dir.path(), false).unwrap());
        let old = test_version_with_file(&drive, 1).await;
        drive.commit_version("b", "k", old.clone()).await.unwrap();
        let set = set_of(vec![drive.clone() as Arc<dyn Drive>], 1, 0);
        set.commit_records("b", "k", vec![Some(meta::test_record(2))], "test", OnRollback::ReleaseData).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while drive.read_shard(old.parts[0].data_id, 0, TEST_FRAMES.len()).await.is_ok() {
            assert!(Instant::now() < deadline, "replaced shard file still present");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
