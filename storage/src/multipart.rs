//! Multipart uploads: upload records, parts committed like small objects of their own, and the
//! completion that turns chosen parts into one object without copying their data.

use std::collections::BTreeMap;

use futures::future::join_all;
use md5::{Digest, Md5};
use uuid::Uuid;

use crate::error::{Result, StorageError};
use crate::meta::{DataPart, PartRecord, StoredChecksum, UploadRecord, VersionRecord};
use crate::placement::shard_of_drive;
use crate::put::{discard_files, Staged, StagedContent};
use crate::quorum::Answer;
use crate::set::{ErasureSet, OnRollback};

/// Smallest size of every part but the last, as S3 requires.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Part numbers S3 accepts.
pub const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

/// Stores a new upload record on every drive of the set.
pub async fn create(set: &ErasureSet, bucket: &str, record: UploadRecord) -> Result<()> {
    let results = set.on_all(|drive| drive.put_upload(bucket, record.clone())).await;
    set.quorum.check_write("create multipart upload", ErasureSet::count_ok(&results))
}

/// Reads an upload record under quorum.
pub async fn find(set: &ErasureSet, bucket: &str, key: &str, upload_id: Uuid) -> Result<UploadRecord> {
    let results = set.on_all(|drive| drive.upload(bucket, key, upload_id)).await;
    let answers = set.answers(results);
    let unknown = answers.iter().filter(|a| matches!(a, Answer::Unknown)).count();
    set.quorum.check_read("multipart upload", answers.len() - unknown)?;
    let mut found = answers.into_iter().filter_map(|a| match a {
        Answer::Found(record) => Some(record),
        _ => None,
    });
    let first = found.next();
    let holders = usize::from(first.is_some()) + found.count();
    match first {
        Some(record) if set.quorum.may_be_committed(holders, unknown) => Ok(record),
        _ => Err(StorageError::NoSuchUpload(upload_id.to_string())),
    }
}

/// Commits a staged part on the drives that hold its shards.
pub async fn commit_part(
    set: &ErasureSet,
    upload_id: Uuid,
    number: i32,
    staged: &Staged,
    checksum: Option<StoredChecksum>,
    now_ns: i64,
) -> Result<DataPart> {
    let StagedContent::Files(written) = &staged.content else {
        return Err(StorageError::Config("parts are never stored inline".into()));
    };
    let part = DataPart { number, size: staged.size, data_id: staged.data_id, etag: staged.md5_hex(), checksum };
    let total = set.drives.len();
    let results = join_all(set.drives.iter().enumerate().zip(written).map(|((index, drive), written)| {
        let record = PartRecord {
            part: part.clone(),
            mod_time_ns: now_ns,
            erasure: staged.erasure,
            shard_index: shard_of_drive(staged.hash, index, total),
        };
        async move {
            if *written {
                drive.commit_part(upload_id, record).await.map(|()| true)
            } else {
                Ok(false)
            }
        }
    }))
    .await;
    let committed = results.iter().filter(|r| matches!(r, Ok(true))).count();
    if let Err(e) = set.quorum.check_write("upload part", committed) {
        discard_files(set, staged.data_id).await;
        return Err(e);
    }
    Ok(part)
}

/// The parts of an upload in part-number order, each as a write quorum committed it.
pub async fn list_parts(set: &ErasureSet, upload_id: Uuid) -> Result<Vec<PartRecord>> {
    let results = set.on_all(|drive| drive.list_parts(upload_id)).await;
    let answered = ErasureSet::count_ok(&results);
    set.quorum.check_read("list parts", answered)?;
    let unknown = results.len() - answered;
    let mut by_number: BTreeMap<i32, Vec<(PartRecord, usize)>> = BTreeMap::new();
    for record in results.into_iter().flatten().flatten() {
        let candidates = by_number.entry(record.part.number).or_default();
        match candidates.iter_mut().find(|(r, _)| r.part.data_id == record.part.data_id) {
            Some((_, holders)) => *holders += 1,
            None => candidates.push((record, 1)),
        }
    }
    Ok(by_number
        .into_values()
        .filter_map(|candidates| {
            candidates
                .into_iter()
                .filter(|(_, holders)| set.quorum.may_be_committed(*holders, unknown))
                .max_by_key(|(r, _)| r.mod_time_ns)
                .map(|(r, _)| r)
        })
        .collect())
}

/// A part as CompleteMultipartUpload names it.
#[derive(Debug, Clone)]
pub struct ChosenPart {
    /// Part number.
    pub number: i32,
    /// ETag the client was given for it (quotes allowed).
    pub etag: String,
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
        .map(|wanted| {
            let etag = wanted.etag.trim_matches('"');
            stored
                .iter()
                .find(|p| p.part.number == wanted.number && p.part.etag == etag)
                .ok_or(StorageError::InvalidPart(wanted.number))
        })
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

/// Commits the completed object like any write (rolled back when short of quorum, which leaves
/// the upload in place for a retry), then removes the upload; the parts the object assembled
/// stay, as its version names them.
pub async fn complete(
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    upload_id: Uuid,
    record: &VersionRecord,
    hash: u64,
) -> Result<()> {
    let total = set.drives.len();
    let records = (0..total)
        .map(|index| Some(VersionRecord { shard_index: shard_of_drive(hash, index, total), ..record.clone() }))
        .collect();
    set.commit_records(bucket, key, records, "complete multipart upload", OnRollback::KeepData).await?;
    let assembled: Vec<Uuid> = record.parts.iter().map(|p| p.data_id).collect();
    let results = set.on_all(|drive| drive.remove_upload(bucket, key, upload_id, assembled.clone())).await;
    for (result, drive) in results.iter().zip(&set.drives) {
        if let Err(e) = result {
            tracing::warn!(drive = drive.label(), error = %e, "completed upload not removed from drive");
        }
    }
    Ok(())
}

/// Removes an upload and its parts from every drive.
pub async fn abort(set: &ErasureSet, bucket: &str, key: &str, upload_id: Uuid) -> Result<()> {
    let results = set.on_all(|drive| drive.remove_upload(bucket, key, upload_id, Vec::new())).await;
    set.quorum.check_write("abort multipart upload", ErasureSet::count_ok(&results))
}

/// The uploads of one set for a bucket whose keys start with `prefix`, in no particular order
/// (the store orders the uploads of all sets once).
pub async fn list_uploads(set: &ErasureSet, bucket: &str, prefix: &str) -> Result<Vec<UploadRecord>> {
    let results = set.on_all(|drive| drive.list_uploads(bucket, prefix)).await;
    let answered = ErasureSet::count_ok(&results);
    set.quorum.check_read("list multipart uploads", answered)?;
    let unknown = results.len() - answered;
    let mut seen: BTreeMap<Uuid, (UploadRecord, usize)> = BTreeMap::new();
    for record in results.into_iter().flatten().flatten() {
        seen.entry(record.upload_id).or_insert_with(|| (record, 0)).1 += 1;
    }
    Ok(seen
        .into_values()
        .filter(|(_, holders)| set.quorum.may_be_committed(*holders, unknown))
        .map(|(record, _)| record)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erasure::Erasure;

    fn stored(number: i32, size: u64, etag: &str) -> PartRecord {
        PartRecord {
            part: DataPart { number, size, data_id: Uuid::new_v4(), etag: etag.into(), checksum: None },
            mod_time_ns: 1,
            erasure: Erasure::new(2, 2, 1 << 20).unwrap(),
            shard_index: 0,
        }
    }

    fn chosen(number: i32, etag: &str) -> ChosenPart {
        ChosenPart { number, etag: format!("\"{etag}\"") }
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
