//! Healing: rewriting the shards and records that a drive lost or that rotted. Readers report
//! damaged objects to the set's [`HealQueue`]; a healer task per set rebuilds them from the
//! surviving shards while the object stays readable.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::bitrot::FramePlace;
use crate::commit;
use crate::drive::{ShardWriter, VersionsQuery};
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::get::{self, ShardMap};
use crate::meta::DataPart;
use crate::placement::{object_hash, shard_of_drive};
use crate::put::encode_all;
use crate::quorum::Agreed;
use crate::set::ErasureSet;
use crate::versions::{self, ListedVersion, VersionId};

/// Heal requests waiting per set; when full, further reports are dropped (the next read of the
/// object reports it again).
const QUEUE_CAPACITY: usize = 1024;
/// Stripes re-encoded per step while rebuilding a shard file.
const HEAL_STRIPES_PER_BATCH: u64 = 4;

/// An object to check and repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealRequest {
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
}

/// Where readers report damaged objects.
#[derive(Debug, Clone)]
pub struct HealQueue {
    tx: mpsc::Sender<HealRequest>,
    healed: Arc<AtomicU64>,
}

impl HealQueue {
    /// A queue and the receiving end for [`spawn_healer`].
    pub fn new() -> (Self, mpsc::Receiver<HealRequest>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (Self { tx, healed: Arc::default() }, rx)
    }

    /// Asks for `bucket/key` to be repaired; never blocks.
    pub fn report(&self, bucket: &str, key: &str) {
        let request = HealRequest { bucket: bucket.to_owned(), key: key.to_owned() };
        if self.tx.try_send(request).is_err() {
            tracing::debug!(bucket, key, "heal queue full, request dropped");
        }
    }

    /// Objects repaired so far.
    pub fn healed(&self) -> u64 {
        self.healed.load(Ordering::Relaxed)
    }

    /// Requests waiting.
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Runs the healer of one set until the set is dropped.
pub fn spawn_healer(set: Weak<ErasureSet>, mut rx: mpsc::Receiver<HealRequest>) {
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            let Some(set) = set.upgrade() else { break };
            match heal_object(&set, &request.bucket, &request.key).await {
                Ok(0) => {}
                Ok(drives) => {
                    set.heal.healed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(bucket = request.bucket, key = request.key, drives, "object healed");
                }
                Err(e) => {
                    tracing::warn!(bucket = request.bucket, key = request.key, error = %e, "heal failed")
                }
            }
        }
    });
}

/// Checks every shard of the newest version of `bucket/key` and rewrites what is missing or
/// corrupt. Returns the number of drives repaired.
pub async fn heal_object(set: &ErasureSet, bucket: &str, key: &str) -> Result<usize> {
    match set.latest_unreported(bucket, key, "heal").await? {
        Some(agreed) => heal_version(set, bucket, key, agreed).await,
        None => Ok(0),
    }
}

/// Checks every shard of one version (`agreed`, as the set's drives hold it) and rewrites what
/// is missing or corrupt. Returns the number of drives repaired.
pub async fn heal_version(set: &ErasureSet, bucket: &str, key: &str, agreed: Agreed) -> Result<usize> {
    let hash = object_hash(bucket, key);
    let record = agreed.record().clone();
    let total = set.drives.len();
    let mut targets: BTreeSet<usize> =
        (0..total).filter(|drive| !agreed.holders.iter().any(|(holder, _)| holder == drive)).collect();
    let holders_of = |shards: &[usize]| -> Vec<usize> {
        agreed.holders.iter().filter(|(_, r)| shards.contains(&r.shard_index)).map(|(d, _)| *d).collect()
    };
    let inline_shards = if record.delete_marker {
        None
    } else if record.inline.is_some() || record.parts.is_empty() {
        let (data, damaged) = get::decode_inline(&agreed)?;
        targets.extend(holders_of(&damaged));
        Some(encode_all(&record.erasure, &data)?)
    } else {
        for part in &record.parts {
            let damaged = scan_part(set, &agreed, part, record.erasure).await?;
            targets.extend(holders_of(&damaged));
        }
        None
    };
    if targets.is_empty() {
        return Ok(0);
    }
    let targets: Vec<usize> = targets.into_iter().collect();
    if inline_shards.is_none() && !record.delete_marker {
        let map = ShardMap::of(&agreed);
        for part in &record.parts {
            rebuild_part(set, &map, part, record.erasure, hash, &targets).await?;
        }
    }
    let records = (0..total)
        .map(|drive| {
            targets.contains(&drive).then(|| {
                let mut copy = record.clone();
                copy.shard_index = shard_of_drive(hash, drive, total);
                copy.inline = inline_shards.as_ref().map(|shards| shards[copy.shard_index].clone());
                copy
            })
        })
        .collect();
    Ok(commit::repair_version(set, bucket, key, records).await)
}

/// Reads every shard of `part` and returns the shard indices that are missing or corrupt.
async fn scan_part(set: &ErasureSet, agreed: &Agreed, part: &DataPart, erasure: Erasure) -> Result<Vec<usize>> {
    let map = ShardMap::of(agreed);
    let mut damaged = BTreeSet::new();
    let stripes = erasure.stripe_count(part.size);
    let mut stripe = 0;
    while stripe < stripes {
        let end = (stripe + HEAL_STRIPES_PER_BATCH).min(stripes);
        let batch = get::read_batch(set, &map, erasure, part, stripe..end, true).await?;
        damaged.extend(batch.damaged);
        stripe = end;
    }
    Ok(damaged.into_iter().collect())
}

/// Rewrites the shard files of `part` on `targets` from the surviving shards.
async fn rebuild_part(
    set: &ErasureSet,
    map: &ShardMap,
    part: &DataPart,
    erasure: Erasure,
    hash: u64,
    targets: &[usize],
) -> Result<()> {
    let total = set.drives.len();
    let mut writers: Vec<(usize, Box<dyn ShardWriter>)> = Vec::with_capacity(targets.len());
    for &drive in targets {
        writers.push((shard_of_drive(hash, drive, total), set.drives[drive].create_shard(part.data_id).await?));
    }
    let stripes = erasure.stripe_count(part.size);
    let mut stripe = 0;
    while stripe < stripes {
        let end = (stripe + HEAL_STRIPES_PER_BATCH).min(stripes);
        let batch = get::read_batch(set, map, erasure, part, stripe..end, false).await?;
        let data: Vec<_> = batch.stripes.iter().map(|s| s.to_bytes()).collect();
        let (data_id, first) = (part.data_id, stripe);
        let encoded = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<bytes::Bytes>>> {
            data.iter()
                .enumerate()
                .map(|(i, d)| erasure.encode_stripe(d, FramePlace { data_id, stripe: first + i as u64 }))
                .collect()
        })
        .await??;
        for (shard, writer) in writers.iter_mut() {
            for frames in &encoded {
                let frame = frames.get(*shard).ok_or_else(|| StorageError::Corrupt(format!("no shard {shard}")))?;
                writer.write(frame.clone()).await?;
            }
        }
        stripe = end;
    }
    for (_, writer) in writers {
        writer.finish().await?;
    }
    Ok(())
}

/// Heals every version and delete marker of `bucket` in `set`, one listing page at a time.
/// Used when a blank drive joins an existing set. Returns the number of versions repaired; the
/// first failure stops the scan, so the drive stays marked for healing and the scan runs again
/// at the next start.
pub async fn heal_bucket(set: &ErasureSet, bucket: &str) -> Result<u64> {
    let mut healed = 0;
    let mut query = VersionsQuery::default();
    loop {
        let page = versions::list_set(set, bucket, query.clone(), 1000).await?;
        for entry in &page.entries {
            let ListedVersion::Version { key, record, .. } = entry else { continue };
            let which = VersionId::of(record);
            let Some(agreed) = versions::find(set, bucket, key, which).await? else { continue };
            if heal_version(set, bucket, key, agreed).await? > 0 {
                healed += 1;
            }
            query.keys.start_after = Some(key.clone());
            query.after_version = Some((record.stamp, record.version_id));
        }
        if !page.truncated {
            return Ok(healed);
        }
    }
}
