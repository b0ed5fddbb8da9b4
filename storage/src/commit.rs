//! The one mutation path of the object layer. Every write of a version, part or upload (PUT,
//! copy, CompleteMultipartUpload, delete, tagging, heal, and the cleanups that follow them)
//! is a [`DriveOp`] per drive sent through [`apply`], which counts the drives' outcomes under
//! the write quorum in one place. Each drive applies its op in one atomic batch together with
//! its change-log entry.
//!
//! The protocol (docs/adr/0007-commit-protocol.md): a write adds an immutable record and removes
//! nothing; only once a write quorum acknowledged it are the versions it supersedes removed,
//! by an idempotent cleanup that a crash may skip and a later write repeats. A write short of
//! quorum removes its own record again, so it never hides what it failed to replace.

use std::sync::Arc;
use std::sync::OnceLock;

use futures::future::join_all;
use tracing::Instrument;
use uuid::Uuid;

use crate::cleanup;
use crate::drive::{Condition, Drive, DriveOp, Outcome};
use crate::error::{Result, StorageError};
use crate::meta::{PartRecord, VersionRecord};
use crate::set::ErasureSet;

/// Names a fault point for the crash tests: `SOVEREIGN_S3_TEST_CRASH=<point>:<n>` makes the
/// process abort once `n` drives applied the op at that point. Read once; unset in production.
const CRASH_ENV: &str = "SOVEREIGN_S3_TEST_CRASH";

/// How the drives answered one op.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Drives (by index) that applied the op.
    pub applied: Vec<usize>,
    /// Drives whose condition did not hold.
    pub refused: usize,
    /// Drives without the bucket or upload.
    pub missing: usize,
    /// Drives that failed or were skipped.
    pub failed: usize,
}

/// Sends `ops[i]` to drive `i` (`None` skips it) and tallies the outcomes.
pub async fn apply(set: &ErasureSet, bucket: &str, key: &str, ops: Vec<Option<DriveOp>>, point: &str) -> Tally {
    let results: Vec<Option<Result<Outcome>>> = match crash_after(point) {
        Some(limit) => apply_in_order(set, bucket, key, ops, limit).await,
        None => {
            join_all(set.drives.iter().zip(ops).map(|(drive, op)| {
                async move {
                    match op {
                        Some(op) => Some(drive.commit(bucket, key, op).await),
                        None => None,
                    }
                }
                .instrument(drive_span(drive))
            }))
            .await
        }
    };
    let mut tally = Tally::default();
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Some(Ok(Outcome::Applied)) => tally.applied.push(index),
            Some(Ok(Outcome::Refused)) => tally.refused += 1,
            Some(Ok(Outcome::Missing)) => tally.missing += 1,
            Some(Err(e)) => {
                tracing::warn!(drive = set.drives[index].label(), error = %e, "commit failed on drive");
                tally.failed += 1;
            }
            None => tally.failed += 1,
        }
    }
    tally
}

/// The crash tests' variant of [`apply`]: one drive at a time, aborting the process after
/// `limit` of them applied the op.
async fn apply_in_order(
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    ops: Vec<Option<DriveOp>>,
    limit: usize,
) -> Vec<Option<Result<Outcome>>> {
    let mut results = Vec::with_capacity(ops.len());
    let mut applied = 0;
    for (drive, op) in set.drives.iter().zip(ops) {
        if applied == limit {
            std::process::abort();
        }
        let result = match op {
            Some(op) => Some(drive.commit(bucket, key, op).await),
            None => None,
        };
        applied += usize::from(matches!(result, Some(Ok(Outcome::Applied))));
        results.push(result);
    }
    if applied == limit {
        std::process::abort();
    }
    results
}

fn crash_after(point: &str) -> Option<usize> {
    static CRASH: OnceLock<Option<(String, usize)>> = OnceLock::new();
    let configured = CRASH.get_or_init(|| {
        let value = std::env::var(CRASH_ENV).ok()?;
        let (name, count) = value.rsplit_once(':')?;
        Some((name.to_owned(), count.parse().ok()?))
    });
    configured.as_ref().filter(|(name, _)| name == point).map(|(_, count)| *count)
}

/// Adds a version (one record per drive, `None` where the drive holds no shard of it) under
/// `condition`, then, once a write quorum holds it, removes in the background the versions it
/// supersedes (older null versions, when it is a null version itself; a null delete marker
/// goes too, at once, as an unversioned bucket keeps none). Short of quorum, the drives that
/// took it remove it again.
pub async fn add_version(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    records: Vec<Option<VersionRecord>>,
    condition: Condition,
    op: &'static str,
) -> Result<()> {
    add(set, bucket, key, records, condition, op, true).await
}

/// Adds a delete marker that stays: the DeleteObject of a bucket whose versioning is enabled
/// or suspended. A null marker (suspended) still supersedes the older null versions.
pub async fn add_lasting_marker(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    records: Vec<Option<VersionRecord>>,
) -> Result<()> {
    add(set, bucket, key, records, Condition::None, "delete object", false).await
}

async fn add(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    records: Vec<Option<VersionRecord>>,
    condition: Condition,
    op: &'static str,
    remove_marker: bool,
) -> Result<()> {
    let Some(first) = records.iter().flatten().next().cloned() else {
        return Err(StorageError::QuorumLost { op, needed: set.quorum.write, online: 0 });
    };
    let ops = records
        .into_iter()
        .map(|record| record.map(|record| DriveOp::AddVersion { record, condition: condition.clone() }))
        .collect();
    let tally = apply(set, bucket, key, ops, "add_version").await;
    if tally.applied.len() >= set.quorum.write {
        if first.null_version {
            let cleanup = DriveOp::Supersede { version_id: first.version_id, through: first.stamp, remove_marker };
            let drives: Vec<usize> = (0..set.drives.len()).collect();
            if first.delete_marker && remove_marker {
                // An unversioned delete leaves nothing behind once answered, so that the bucket
                // reads as empty to a DeleteBucket that follows at once.
                apply(set, bucket, key, only_on(&drives, set.drives.len(), &cleanup), "cleanup").await;
            } else {
                cleanup::schedule(set, bucket, key, drives, cleanup);
            }
        }
        return Ok(());
    }
    let undo = DriveOp::RemoveVersion { version_id: first.version_id };
    apply(set, bucket, key, only_on(&tally.applied, set.drives.len(), &undo), "remove_version").await;
    Err(refusal(set, bucket, &tally, op))
}

/// Writes a version onto drives that lack it (heal and read repair).
pub async fn repair_version(set: &ErasureSet, bucket: &str, key: &str, records: Vec<Option<VersionRecord>>) -> usize {
    let ops = records.into_iter().map(|record| record.map(|record| DriveOp::RepairVersion { record })).collect();
    apply(set, bucket, key, ops, "repair_version").await.applied.len()
}

/// How many drives must take a change of a version's metadata before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// A write quorum (tags).
    Quorum,
    /// Every drive of the set (an ACL). Metadata changes carry no order of their own and a
    /// read takes the first holder's copy, so a copy missed on one drive could decide access
    /// again once that drive is back: such a change is refused unless every drive holds the
    /// version, and acknowledged only when every drive applied it.
    Everywhere,
}

/// Applies `op`, a change of one version's metadata (its tags, its ACL), on the drives that
/// hold the version, acknowledged as `acknowledge` says; `what` names the operation in errors
/// and traces.
pub async fn update_version(
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    holders: &[usize],
    op: DriveOp,
    (what, acknowledge): (&'static str, Acknowledge),
) -> Result<()> {
    let needed = match acknowledge {
        Acknowledge::Quorum => set.quorum.write,
        Acknowledge::Everywhere => set.drives.len(),
    };
    if holders.len() < needed {
        return Err(StorageError::QuorumLost { op: what, needed, online: holders.len() });
    }
    let tally = apply(set, bucket, key, only_on(holders, set.drives.len(), &op), what).await;
    if tally.applied.len() < needed {
        return Err(StorageError::QuorumLost { op: what, needed, online: tally.applied.len() });
    }
    Ok(())
}

/// Adds a part record on the drives that hold its shard file; once acknowledged, older uploads
/// of the same part number are removed in the background. Short of quorum, the new record is
/// removed again and the part uploaded before (if any) stays.
pub async fn add_part(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    upload_id: Uuid,
    records: Vec<Option<PartRecord>>,
) -> Result<()> {
    let Some(first) = records.iter().flatten().next().cloned() else {
        return Err(StorageError::QuorumLost { op: "upload part", needed: set.quorum.write, online: 0 });
    };
    let ops = records.into_iter().map(|record| record.map(|record| DriveOp::AddPart { upload_id, record })).collect();
    let tally = apply(set, bucket, key, ops, "add_part").await;
    let (number, stamp) = (first.part.number, first.stamp);
    if tally.applied.len() >= set.quorum.write {
        let cleanup = DriveOp::SupersedeParts { upload_id, number, through: stamp };
        cleanup::schedule(set, bucket, key, (0..set.drives.len()).collect(), cleanup);
        return Ok(());
    }
    let undo = DriveOp::RemovePart { upload_id, number, stamp };
    apply(set, bucket, key, only_on(&tally.applied, set.drives.len(), &undo), "remove_part").await;
    if tally.missing > 0 && tally.missing + tally.failed > set.drives.len() - set.quorum.write {
        return Err(StorageError::NoSuchUpload(upload_id.to_string()));
    }
    Err(StorageError::QuorumLost { op: "upload part", needed: set.quorum.write, online: tally.applied.len() })
}

/// Sends the same op to every drive and checks the write quorum.
pub async fn everywhere(set: &ErasureSet, bucket: &str, key: &str, op: DriveOp, name: &'static str) -> Result<()> {
    let tally = apply(set, bucket, key, vec![Some(op); set.drives.len()], name).await;
    if tally.missing > set.drives.len() - set.quorum.write {
        return Err(StorageError::NoSuchBucket(bucket.to_owned()));
    }
    set.quorum.check_write(name, tally.applied.len())
}

/// `op` for the listed drives, `None` for the others.
pub(crate) fn only_on(drives: &[usize], total: usize, op: &DriveOp) -> Vec<Option<DriveOp>> {
    (0..total).map(|index| drives.contains(&index).then(|| op.clone())).collect()
}

/// Why a write missed its quorum, as the error the client gets.
fn refusal(set: &ErasureSet, bucket: &str, tally: &Tally, op: &'static str) -> StorageError {
    let total = set.drives.len();
    let cannot_reach = |n: usize| n > total - set.quorum.write;
    if cannot_reach(tally.missing) {
        return StorageError::NoSuchBucket(bucket.to_owned());
    }
    // Refused by so many drives that no quorum could take it: the condition is false. Taken
    // by some drives and refused by others: a concurrent write won some drives (S3's 409).
    if tally.refused > 0 && tally.applied.is_empty() && cannot_reach(tally.refused + tally.missing) {
        return StorageError::PreconditionFailed;
    }
    if tally.refused > 0 && !tally.applied.is_empty() {
        return StorageError::ConditionalConflict;
    }
    StorageError::QuorumLost { op, needed: set.quorum.write, online: tally.applied.len() }
}

/// The span of one drive's part in a fan-out.
pub fn drive_span(drive: &Arc<dyn Drive>) -> tracing::Span {
    tracing::info_span!("storage.drive", drive = drive.label())
}
