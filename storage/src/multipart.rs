//! Multipart uploads: upload records, parts committed like small objects of their own, and the
//! completion that turns chosen parts into one object without copying their data.

use std::collections::BTreeMap;
use std::sync::Arc;

use md5::{Digest, Md5};
use uuid::Uuid;

use crate::commit;
use crate::drive::{Condition, DriveOp};
use crate::error::{Result, StorageError};
use crate::meta::{DataPart, PartRecord, StoredChecksum, UploadRecord, VersionRecord};
use crate::placement::shard_of_drive;
use crate::put::{Staged, StagedContent};
use crate::set::ErasureSet;
use crate::stamp::Stamp;

/// Smallest size of every part but the last, as S3 requires.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Part numbers S3 accepts.
pub const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

/// Reads an upload record under quorum.
pub async fn find(set: &ErasureSet, bucket: &str, key: &str, upload_id: Uuid) -> Result<UploadRecord> {
    let results = set.on_all(|drive| drive.upload(bucket, key, upload_id)).await;
    let answers = set.list_answers(results.into_iter().map(|r| r.map(|u| u.into_iter().collect())).collect());
    let agreed = set.quorum.agreed_items(answers, |u: &UploadRecord| u.upload_id, "multipart upload")?;
    agreed.into_iter().next().map(|(record, _)| record).ok_or_else(|| StorageError::NoSuchUpload(upload_id.to_string()))
}

/// Commits a staged part on the drives that hold its shards.
#[allow(clippy::too_many_arguments)]
pub async fn commit_part(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    upload_id: Uuid,
    number: i32,
    staged: &Staged,
    checksum: Option<StoredChecksum>,
    stamp: Stamp,
) -> Result<DataPart> {
    let StagedContent::Files(written) = &staged.content else {
        return Err(StorageError::Config("parts are never stored inline".into()));
    };
    let part = DataPart { number, size: staged.size, data_id: staged.data_id, etag: staged.md5_hex(), checksum };
    let total = set.drives.len();
    let records = written
        .iter()
        .enumerate()
        .map(|(index, written)| {
            written.then(|| PartRecord {
                part: part.clone(),
                stamp,
                mod_time_ns: stamp.unix_ns(),
                erasure: staged.erasure,
                shard_index: shard_of_drive(staged.hash, index, total),
            })
        })
        .collect();
    commit::add_part(set, bucket, key, upload_id, records).await?;
    Ok(part)
}

/// The parts of an upload in part-number order: for each number, the newest upload of it that a
/// write quorum may hold.
pub async fn list_parts(set: &ErasureSet, upload_id: Uuid) -> Result<Vec<PartRecord>> {
    let answers = set.list_answers(set.on_all(|drive| drive.list_parts(upload_id)).await);
    let agreed =
        set.quorum.agreed_items(answers, |p: &PartRecord| (p.part.number, p.stamp, p.part.data_id), "list parts")?;
    let mut newest: BTreeMap<i32, PartRecord> = BTreeMap::new();
    for (record, _) in agreed {
        match newest.get(&record.part.number) {
            Some(kept) if kept.stamp >= record.stamp => {}
            _ => {
                newest.insert(record.part.number, record);
            }
        }
    }
    Ok(newest.into_values().collect())
}

/// A part as CompleteMultipartUpload names it.
#[derive(Debug, Clone)]
pub struct ChosenPart {
    /// Part number.
    pub number: i32,
    /// ETag the client was given for it (quotes allowed).
    pub etag: String,
    /// A checksum the client was given for it (algorithm, base64 value), when it names one.
    pub checksum: Option<(String, String)>,
}

impl ChosenPart {
    /// Whether `part` is the part the client names: same number, ETag and (when named) checksum.
    fn names(&self, part: &DataPart) -> bool {
        let checksum_matches = match (&self.checksum, &part.checksum) {
            (None, _) => true,
            (Some((algorithm, value)), Some(stored)) => stored.algorithm == *algorithm && stored.value == *value,
            (Some(_), None) => false,
        };
        part.number == self.number && part.etag == self.etag.trim_matches('"') && checksum_matches
    }
}

/// Whether `record` is the object that completing `upload_id` with `chosen` made: a repeated
/// CompleteMultipartUpload of it answers 200 as the first did (its upload record is gone).
pub fn completed_by(record: &VersionRecord, upload_id: Uuid, chosen: &[ChosenPart]) -> bool {
    record.completed_upload == Some(upload_id)
        && !record.delete_marker
        && record.parts.len() == chosen.len()
        && record.parts.iter().zip(chosen).all(|(part, wanted)| wanted.names(part))
}

/// Checks the client's part list against the stored parts and returns the data pieces of the
/// object in order, with the multipart ETag.
pub fn assemble(chosen: &[ChosenPart], stored: &[PartRecord]) -> Result<(Vec<DataPart>, String)> {
    if chosen.is_empty() {
        return Err(StorageError::InvalidPart(0));
    }
    if chosen.windows(2).any(|pair| pair[1].number <= pair[0].number) {
        return Err(StorageError::InvalidPartOrder);
    }
    // Every named part must exist with its ETag before sizes are judged, as S3 reports them.
    let found = chosen
        .iter()
        .map(|wanted| stored.iter().find(|p| wanted.names(&p.part)).ok_or(StorageError::InvalidPart(wanted.number)))
        .collect::<Result<Vec<_>>>()?;
    let mut pieces = Vec::with_capacity(chosen.len());
    let mut md5s = Md5::new();
    for (index, (wanted, part)) in chosen.iter().zip(found).enumerate() {
        let last = index + 1 == chosen.len();
        if !last && part.part.size < MIN_PART_SIZE {
            return Err(StorageError::EntityTooSmall { part: wanted.number, size: part.part.size });
        }
        let digest = hex::decode(&part.part.etag).map_err(|_| StorageError::InvalidPart(wanted.number))?;
        md5s.update(&digest);
        pieces.push(part.part.clone());
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    Ok((pieces, etag))
}

/// Commits the completed object like any write (removed again when short of quorum, which
/// leaves the upload in place for a retry), then removes the upload; the parts the object
/// assembled stay, as its version references them.
pub async fn complete(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    upload_id: Uuid,
    record: &VersionRecord,
    hash: u64,
    condition: Condition,
) -> Result<()> {
    let total = set.drives.len();
    let records = (0..total)
        .map(|index| Some(VersionRecord { shard_index: shard_of_drive(hash, index, total), ..record.clone() }))
        .collect();
    commit::add_version(set, bucket, key, records, condition, "complete multipart upload").await?;
    let removed =
        commit::apply(set, bucket, key, vec![Some(DriveOp::RemoveUpload { upload_id }); total], "remove_upload").await;
    if removed.applied.len() < total {
        tracing::warn!(%upload_id, removed = removed.applied.len(), "completed upload not removed from every drive");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erasure::Erasure;

    fn stored(number: i32, size: u64, etag: &str) -> PartRecord {
        PartRecord {
            part: DataPart { number, size, data_id: Uuid::new_v4(), etag: etag.into(), checksum: None },
            stamp: Stamp::default(),
            mod_time_ns: 1,
            erasure: Erasure::new(2, 2, 1 << 20).unwrap(),
            shard_index: 0,
        }
    }

    fn chosen(number: i32, etag: &str) -> ChosenPart {
        ChosenPart { number, etag: format!("\"{etag}\""), checksum: None }
    }

    const E1: &str = "0cc175b9c0f1b6a831c399e269772661";
    const E2: &str = "92eb5ffee6ae2fec3ad71c777531578f";

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        let parts = [stored(1, MIN_PART_SIZE, E1), stored(2, 1, E2)];
        let (pieces, etag) = assemble(&[chosen(1, E1), chosen(2, E2)], &parts).unwrap();
        assert_eq!(pieces.len(), 2);
        let mut md5 = Md5::new();
        md5.update(hex::decode(E1).unwrap());
        md5.update(hex::decode(E2).unwrap());
        assert_eq!(etag, format!("{}-2", hex::encode(md5.finalize())));
    }

    #[test]
    fn bad_part_lists_are_rejected() {
        let parts = [stored(1, MIN_PART_SIZE, E1), stored(2, 1, E2)];
        assert!(matches!(assemble(&[chosen(2, E2), chosen(1, E1)], &parts), Err(StorageError::InvalidPartOrder)));
        assert!(matches!(assemble(&[chosen(1, E2)], &parts), Err(StorageError::InvalidPart(1))));
        assert!(matches!(assemble(&[chosen(3, E1)], &parts), Err(StorageError::InvalidPart(3))));
        let small = [stored(1, 1, E1), stored(2, 1, E2)];
        assert!(matches!(
            assemble(&[chosen(1, E1), chosen(2, E2)], &small),
            Err(StorageError::EntityTooSmall { part: 1, .. })
        ));
    }
}
