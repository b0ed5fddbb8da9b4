//! The read path: stripes are read from the drives holding data shards, verified against their
//! bitrot hashes and, when a shard is missing or corrupt, rebuilt from parity. Damage found on
//! the way is reported to the healer; the reader still gets correct bytes.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use futures::{stream, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::bitrot::FramePlace;
use crate::drive::ShardReader;
use crate::erasure::{DecodedStripe, Erasure};
use crate::error::{Result, StorageError};
use crate::meta::{DataPart, VersionRecord};
use crate::metrics;
use crate::put::BodyStream;
use crate::quorum::Agreed;
use crate::set::ErasureSet;

/// Stripes read per drive request: large enough for sequential reads, small enough to bound
/// memory per request to a few MiB.
const STRIPES_PER_BATCH: u64 = 4;
/// Decoded batches buffered ahead of the client.
const BATCHES_IN_FLIGHT: usize = 2;

/// Where each shard of an object lives: `(drive index, shard index)` for every holder, and the
/// shard files opened so far. A file stays open for the rest of the read, so a read keeps the
/// version it started on even when a newer version's cleanup reclaims the file.
#[derive(Debug, Clone)]
pub struct ShardMap {
    holders: Vec<(usize, usize)>,
    open: Arc<Mutex<OpenShards>>,
}

/// Shard files held open by a read, by `(drive index, data id)`.
type OpenShards = HashMap<(usize, Uuid), Arc<dyn ShardReader>>;

impl ShardMap {
    /// Opens the data shards' files of the version's first part, so that the files a read
    /// starts on stay readable whatever cleanup follows; returns how many opened. Fewer than
    /// the data shards means the version was superseded and cleaned up since it was located.
    pub async fn open_first_part(&self, set: &ErasureSet, record: &VersionRecord) -> usize {
        let Some(part) = record.parts.first() else { return usize::MAX };
        let opens = join_all(
            self.data_holders(&record.erasure).into_iter().map(|(drive, _)| self.reader(set, drive, part.data_id)),
        )
        .await;
        opens.iter().filter(|o| o.is_ok()).count()
    }

    /// The shard map of an agreed version.
    pub fn of(agreed: &Agreed) -> Self {
        Self {
            holders: agreed.holders.iter().map(|(drive, record)| (*drive, record.shard_index)).collect(),
            open: Arc::default(),
        }
    }

    /// The open shard file of `data_id` on `drive`, opening it on first use.
    async fn reader(&self, set: &ErasureSet, drive: usize, data_id: Uuid) -> Result<Arc<dyn ShardReader>> {
        let cached = self.open.lock().map(|open| open.get(&(drive, data_id)).cloned()).unwrap_or(None);
        if let Some(reader) = cached {
            return Ok(reader);
        }
        let reader = set.drives[drive].open_shard(data_id).await?;
        if let Ok(mut open) = self.open.lock() {
            open.insert((drive, data_id), Arc::clone(&reader));
        }
        Ok(reader)
    }

    fn data_holders(&self, erasure: &Erasure) -> Vec<(usize, usize)> {
        self.holders.iter().copied().filter(|(_, shard)| *shard < erasure.data).collect()
    }

    fn other_holders(&self, erasure: &Erasure) -> Vec<(usize, usize)> {
        self.holders.iter().copied().filter(|(_, shard)| *shard >= erasure.data).collect()
    }
}

/// A run of consecutive stripes of one data part, decoded.
pub struct Batch {
    /// The stripes, in order.
    pub stripes: Vec<DecodedStripe>,
    /// Shard indices that were read but found missing or corrupt.
    pub damaged: Vec<usize>,
}

/// Reads and decodes stripes `stripes` of `part`, first from data shards only and, if that is
/// not enough, from every holder.
pub async fn read_batch(
    set: &ErasureSet,
    map: &ShardMap,
    erasure: Erasure,
    part: &DataPart,
    stripes: Range<u64>,
    all_shards: bool,
) -> Result<Batch> {
    let first = if all_shards { map.holders.clone() } else { map.data_holders(&erasure) };
    let mut frames = read_frames(set, map, erasure, part, &stripes, &first).await;
    let mut attempted: Vec<usize> = first.iter().map(|(_, shard)| *shard).collect();
    let decoded = match decode_all(erasure, part, &stripes, frames.clone()).await {
        Ok(decoded) => decoded,
        Err(_) if !all_shards => {
            let rest = map.other_holders(&erasure);
            let more = read_frames(set, map, erasure, part, &stripes, &rest).await;
            for (stripe, extra) in frames.iter_mut().zip(more) {
                for (slot, frame) in stripe.iter_mut().zip(extra) {
                    if frame.is_some() {
                        *slot = frame;
                    }
                }
            }
            attempted.extend(rest.iter().map(|(_, shard)| *shard));
            decode_all(erasure, part, &stripes, frames).await?
        }
        Err(e) => return Err(e),
    };
    metrics::bitrot_failures(decoded.iter().map(|d| d.corrupt).sum());
    let mut damaged: Vec<usize> = decoded.iter().flat_map(|d| d.damaged.iter().copied()).collect();
    damaged.sort_unstable();
    damaged.dedup();
    damaged.retain(|shard| attempted.contains(shard) || !map.holders.iter().any(|(_, s)| s == shard));
    Ok(Batch { stripes: decoded, damaged })
}

/// Reads the frames of `stripes` from each `(drive, shard)` source; result is indexed by stripe
/// then shard, `None` where a drive failed or returned too little.
async fn read_frames(
    set: &ErasureSet,
    map: &ShardMap,
    erasure: Erasure,
    part: &DataPart,
    stripes: &Range<u64>,
    sources: &[(usize, usize)],
) -> Vec<Vec<Option<Bytes>>> {
    let offset = erasure.frame_offset(stripes.start);
    let lens: Vec<usize> = stripes.clone().map(|i| erasure.frame_len(erasure.stripe_len(part.size, i))).collect();
    let total: usize = lens.iter().sum();
    let reads =
        join_all(sources.iter().map(|(drive, _)| async move {
            map.reader(set, *drive, part.data_id).await?.read_at(offset, total).await
        }))
        .await;
    let mut out = vec![vec![None; erasure.total()]; lens.len()];
    for ((drive, shard), read) in sources.iter().zip(reads) {
        match read {
            Ok(bytes) if bytes.len() == total => {
                let mut at = 0;
                for (stripe, len) in lens.iter().enumerate() {
                    out[stripe][*shard] = Some(bytes.slice(at..at + len));
                    at += len;
                }
            }
            Ok(bytes) => tracing::warn!(
                drive = set.drives[*drive].label(),
                data_id = %part.data_id,
                got = bytes.len(),
                wanted = total,
                "shard file is short"
            ),
            Err(e) => {
                tracing::warn!(drive = set.drives[*drive].label(), error = %e, "shard read failed")
            }
        }
    }
    out
}

/// Decodes a batch; verifying intact data shards is cheap (a hash pass) and stays on the
/// runtime, rebuilding from parity runs on the blocking pool.
async fn decode_all(
    erasure: Erasure,
    part: &DataPart,
    stripes: &Range<u64>,
    frames: Vec<Vec<Option<Bytes>>>,
) -> Result<Vec<DecodedStripe>> {
    let (first, part_size, data_id) = (stripes.start, part.size, part.data_id);
    let decode = move |frames: &[Vec<Option<Bytes>>]| -> Result<Vec<DecodedStripe>> {
        frames
            .iter()
            .enumerate()
            .map(|(i, frames)| {
                let stripe = first + i as u64;
                erasure.decode_stripe(frames, erasure.stripe_len(part_size, stripe), FramePlace { data_id, stripe })
            })
            .collect()
    };
    if frames.iter().any(|f| erasure.needs_reconstruction(f)) {
        return tokio::task::spawn_blocking(move || decode(&frames)).await?;
    }
    match decode(&frames) {
        Ok(decoded) => Ok(decoded),
        Err(_) => tokio::task::spawn_blocking(move || decode(&frames)).await?,
    }
}

/// Decodes the whole object held inline in the holders' records.
pub fn decode_inline(agreed: &Agreed) -> Result<(Bytes, Vec<usize>)> {
    let record = agreed.record();
    let erasure = record.erasure;
    let mut shards: Vec<Option<Bytes>> = vec![None; erasure.total()];
    for (_, holder) in &agreed.holders {
        if let Some(shard) = shards.get_mut(holder.shard_index) {
            *shard = holder.inline.clone();
        }
    }
    let mut data = BytesMut::with_capacity(record.size as usize);
    let mut damaged = Vec::new();
    for stripe in 0..erasure.stripe_count(record.size) {
        let len = erasure.stripe_len(record.size, stripe);
        let at = erasure.frame_offset(stripe) as usize;
        let frame_len = erasure.frame_len(len);
        let frames: Vec<Option<Bytes>> = shards
            .iter()
            .map(|s| s.as_ref().filter(|s| s.len() >= at + frame_len).map(|s| s.slice(at..at + frame_len)))
            .collect();
        let decoded = erasure.decode_stripe(&frames, len, FramePlace::inline(stripe))?;
        metrics::bitrot_failures(decoded.corrupt);
        for chunk in &decoded.chunks {
            data.extend_from_slice(chunk);
        }
        damaged.extend(decoded.damaged);
    }
    damaged.sort_unstable();
    damaged.dedup();
    Ok((data.freeze(), damaged))
}

/// Streams `range` of the agreed version's data. Damage is reported to the set's healer. The
/// first stripes are decoded before this returns, so an object that cannot be read fails here
/// (before a response starts) rather than mid-body.
pub async fn read_object(
    set: Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    agreed: Agreed,
    map: ShardMap,
    range: Range<u64>,
) -> Result<BodyStream> {
    let record = agreed.record();
    if record.inline.is_some() || record.parts.is_empty() {
        let (data, damaged) = decode_inline(&agreed)?;
        if !damaged.is_empty() {
            set.heal.report(bucket, key);
        }
        let end = (range.end as usize).min(data.len());
        let start = (range.start as usize).min(end);
        let chunk = data.slice(start..end);
        return Ok(Box::pin(stream::once(async move { Ok(chunk) })));
    }
    let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    let record =
        agreed.holders.into_iter().next().map(|(_, r)| r).ok_or_else(|| StorageError::Corrupt("no holders".into()))?;
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    tokio::spawn(async move {
        let mut damaged = false;
        let result = stream_parts(&set, &map, &record, range, &tx, &mut damaged).await;
        if damaged {
            set.heal.report(&bucket, &key);
        }
        if let Err(e) = result {
            tracing::warn!(bucket, key, error = %e, "object read failed");
            let _ = tx.send(Err(e)).await;
        }
    });
    let mut rx = rx;
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(e),
        None => return Ok(Box::pin(stream::empty())),
    };
    let rest = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(Box::pin(stream::once(async move { Ok(first) }).chain(rest)))
}

async fn stream_parts(
    set: &ErasureSet,
    map: &ShardMap,
    record: &VersionRecord,
    range: Range<u64>,
    tx: &mpsc::Sender<Result<Bytes>>,
    damaged: &mut bool,
) -> Result<()> {
    let erasure = record.erasure;
    let block = erasure.block_size as u64;
    let mut part_start = 0u64;
    for part in &record.parts {
        let part_end = part_start + part.size;
        if part_end <= range.start || part.size == 0 {
            part_start = part_end;
            continue;
        }
        if part_start >= range.end {
            break;
        }
        let from = range.start.saturating_sub(part_start);
        let to = range.end.min(part_end) - part_start;
        let mut stripe = from / block;
        let last = (to - 1) / block;
        while stripe <= last {
            let batch_end = (stripe + STRIPES_PER_BATCH).min(last + 1);
            let batch = read_batch(set, map, erasure, part, stripe..batch_end, false).await?;
            *damaged |= !batch.damaged.is_empty();
            for (i, decoded) in batch.stripes.into_iter().enumerate() {
                let stripe_start = (stripe + i as u64) * block;
                let lo = from.saturating_sub(stripe_start) as usize;
                let hi = ((to - stripe_start) as usize).min(decoded.len());
                for chunk in decoded.slice(lo..hi) {
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            stripe = batch_end;
        }
        part_start = part_end;
    }
    Ok(())
}
