//! The RocksDB side of a local drive: reading records, and [`Inner::commit`], the one place
//! where a drive's records change, each change in one batch with its change-log entry.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{DBRawIterator, Direction, IteratorMode, ReadOptions, ReadTier, WriteBatch, WriteOptions, DB};
use uuid::Uuid;

use super::{Inner, KEY_LOCK_STRIPES};
use crate::bucket_config::BucketConfig;
use crate::drive::{Condition, DriveOp, DriveVersions, ListEntry, ListQuery, Outcome, VersionEntry, VersionsQuery};
use crate::error::Result;
use crate::meta::{self, ChangeKind, ChangeRecord, PartRecord, UploadRecord, VersionRecord};
use crate::placement;
use crate::versions::VersionId;

/// Versions of one key a listing reads per drive: the current one and, while an overwrite is
/// being acknowledged or after a crash cut one short, the one before it.
const LIST_VERSIONS_PER_KEY: usize = 2;

/// Sequence numbers of a drive's change log. A number is taken before its batch is written
/// and released after, so readers are shown only entries below every batch still in flight.
pub(super) struct ChangeLog {
    next: AtomicU64,
    in_flight: Mutex<BTreeSet<u64>>,
}

impl ChangeLog {
    /// Continues after the last entry on disk.
    pub(super) fn open(db: &DB) -> Result<Self> {
        let mut iter = db.raw_iterator();
        iter.seek_for_prev([meta::change_prefix()[0], 0xFF]);
        iter.status()?;
        let last = iter.key().and_then(meta::change_seq).unwrap_or(0);
        Ok(Self { next: AtomicU64::new(last + 1), in_flight: Mutex::default() })
    }

    fn take(&self) -> u64 {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        in_flight.insert(seq);
        seq
    }

    fn release(&self, seq: u64) {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&seq);
    }

    /// Every entry at or below this is written (or will never be).
    fn stable(&self) -> u64 {
        let in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        match in_flight.first() {
            Some(first) => first - 1,
            None => self.next.load(Ordering::Relaxed) - 1,
        }
    }
}

/// A batch under construction, with the shard files whose references it drops.
struct Change {
    batch: WriteBatch,
    released: Vec<Uuid>,
    logged: Option<ChangeRecord>,
}

impl Change {
    fn new() -> Self {
        Self { batch: WriteBatch::default(), released: Vec::new(), logged: None }
    }

    fn add_version(&mut self, bucket: &str, key: &str, record: &VersionRecord) -> Result<()> {
        for part in &record.parts {
            self.batch.put(meta::version_ref_key(part.data_id, record.version_id), []);
        }
        self.batch.put(meta::version_key(bucket, key, record), meta::encode(record)?);
        Ok(())
    }

    fn remove_version(&mut self, db_key: &[u8], record: &VersionRecord) {
        self.batch.delete(db_key);
        for part in &record.parts {
            self.batch.delete(meta::version_ref_key(part.data_id, record.version_id));
            self.released.push(part.data_id);
        }
    }

    fn remove_part(&mut self, db_key: &[u8], upload_id: Uuid, record: &PartRecord) {
        self.batch.delete(db_key);
        self.batch.delete(meta::part_ref_key(upload_id, record));
        self.released.push(record.part.data_id);
    }

    fn log(&mut self, bucket: &str, key: &str, record: &VersionRecord, kind: ChangeKind) {
        self.logged = Some(ChangeRecord {
            seq: 0,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: record.version_id,
            null_version: record.null_version,
            kind,
            size: record.size,
            etag: record.etag.clone(),
            stamp: record.stamp,
        });
    }
}

impl Inner {
    pub(super) fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.durable);
        options
    }

    fn lock_key(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        let stripe = &self.key_locks[placement::object_hash(bucket, key) as usize % KEY_LOCK_STRIPES];
        stripe.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get<T: for<'de> serde::Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get_pinned(key)? {
            Some(bytes) => Ok(Some(meta::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// [`Inner::get`] from the memtables and block cache alone (no I/O); `None` when the
    /// answer needs a disk read.
    pub(super) fn get_cached<T: for<'de> serde::Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<Option<T>>> {
        match self.db.get_pinned_opt(key, &cache_only()) {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Ok(Some(bytes)) => Ok(Some(Some(meta::decode(&bytes)?))),
            Ok(None) => Ok(Some(None)),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn scan<T: for<'de> serde::Deserialize<'de>>(&self, prefix: &[u8]) -> Result<Vec<(Box<[u8]>, T)>> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, meta::decode(&value)?));
        }
        Ok(out)
    }

    fn has_any(&self, prefix: &[u8]) -> Result<bool> {
        let mut iter = self.db.raw_iterator();
        iter.seek(prefix);
        iter.status()?;
        Ok(iter.key().is_some_and(|k| k.starts_with(prefix)))
    }

    /// Whether any record references the shard files named `data_id`.
    pub(super) fn is_referenced(&self, data_id: Uuid) -> Result<bool> {
        self.has_any(&meta::data_refs_prefix(data_id))
    }

    pub(super) fn versions(&self, bucket: &str, key: &str, limit: usize) -> Result<DriveVersions> {
        let prefix = meta::versions_prefix(bucket, key);
        let mut iter = self.db.raw_iterator();
        iter.seek(&prefix);
        let found = collect_versions(&mut iter, &prefix, limit, meta::decode)?;
        iter.status()?;
        Ok(found)
    }

    /// [`Inner::versions`] from the memtables and block cache alone, so without I/O and cheap
    /// enough for an async thread; `None` when the answer needs a disk read.
    pub(super) fn versions_cached(&self, bucket: &str, key: &str, limit: usize) -> Result<Option<DriveVersions>> {
        let prefix = meta::versions_prefix(bucket, key);
        let mut iter = self.db.raw_iterator_opt(cache_only());
        iter.seek(&prefix);
        let found = collect_versions(&mut iter, &prefix, limit, meta::decode);
        match iter.status() {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            status => {
                status?;
                found.map(Some)
            }
        }
    }

    /// Applies one mutation: reads what it depends on, writes one batch with its change-log
    /// entry. Returns the outcome and the shard files that lost their last reference, for the
    /// caller to reclaim after a grace period.
    pub(super) fn commit(&self, bucket: &str, key: &str, op: DriveOp) -> Result<(Outcome, Vec<Uuid>)> {
        let _bucket_guard = self.buckets.read().unwrap_or_else(PoisonError::into_inner);
        if self.get_cached::<meta::BucketRecord>(&meta::bucket_key(bucket))?.flatten().is_none()
            && self.get::<meta::BucketRecord>(&meta::bucket_key(bucket))?.is_none()
        {
            return Ok((Outcome::Missing, Vec::new()));
        }
        // Plain additions read nothing, so they need no key lock and share group commits.
        let needs_lock = !matches!(op, DriveOp::AddVersion { condition: Condition::None, .. });
        let _key_guard = needs_lock.then(|| self.lock_key(bucket, key));
        // Removing what no acknowledged write needs any more can wait for the next sync: lost in
        // a power cut, it leaves records that reads pass over and the next cleanup removes.
        let cleanup = matches!(
            op,
            DriveOp::Supersede { .. }
                | DriveOp::SupersedeParts { .. }
                | DriveOp::SupersedeBucketConfigs { .. }
                | DriveOp::RemoveBucketConfig { .. }
                | DriveOp::RemoveVersion { .. }
                | DriveOp::RemovePart { .. }
        );
        let mut change = Change::new();
        let outcome = self.prepare(bucket, key, op, &mut change)?;
        if outcome != Outcome::Applied || change.batch.is_empty() {
            return Ok((outcome, Vec::new()));
        }
        let seq = change.logged.as_ref().map(|_| self.changes.take());
        if let (Some(seq), Some(entry)) = (seq, change.logged.as_mut()) {
            entry.seq = seq;
            change.batch.put(meta::change_key(seq), meta::encode(entry)?);
        }
        let mut options = self.write_options();
        if cleanup {
            options.set_sync(false);
        }
        let written = self.db.write_opt(change.batch, &options);
        if let Some(seq) = seq {
            self.changes.release(seq);
        }
        written?;
        let released: BTreeSet<Uuid> = change.released.into_iter().collect();
        Ok((Outcome::Applied, released.into_iter().collect()))
    }

    /// Removes the shard files among `data_ids` that no record references (any more).
    pub(super) fn reclaim(&self, data_ids: &[Uuid]) {
        let unreferenced: Vec<Uuid> =
            data_ids.iter().copied().filter(|id| !self.is_referenced(*id).unwrap_or(true)).collect();
        self.remove_shards(&unreferenced);
    }

    /// Fills `change` with the writes of `op`, or says why it does not apply.
    fn prepare(&self, bucket: &str, key: &str, op: DriveOp, change: &mut Change) -> Result<Outcome> {
        match op {
            DriveOp::AddVersion { record, condition } => {
                if !self.condition_holds(bucket, key, &condition)? {
                    return Ok(Outcome::Refused);
                }
                change.add_version(bucket, key, &record)?;
                let kind = if record.delete_marker { ChangeKind::DeleteMarker } else { ChangeKind::Put };
                change.log(bucket, key, &record, kind);
            }
            DriveOp::RepairVersion { record } => {
                // The record is immutable but for this drive's inline frames, which a repair
                // of rotted frames rewrites: writing it again is idempotent.
                change.add_version(bucket, key, &record)?;
                change.log(bucket, key, &record, ChangeKind::Repair);
            }
            DriveOp::SetTags { version_id, tags } => {
                let Some((db_key, mut record)) = self.find_version(bucket, key, |v| v.version_id == version_id)? else {
                    return Ok(Outcome::Missing);
                };
                record.tags = tags;
                change.batch.put(db_key, meta::encode(&record)?);
                change.log(bucket, key, &record, ChangeKind::Metadata);
            }
            DriveOp::SetAcl { version_id, acl } => {
                let Some((db_key, mut record)) = self.find_version(bucket, key, |v| v.version_id == version_id)? else {
                    return Ok(Outcome::Missing);
                };
                record.acl = Some(acl);
                change.batch.put(db_key, meta::encode(&record)?);
                change.log(bucket, key, &record, ChangeKind::Metadata);
            }
            DriveOp::SetSealedKey { version_id, from, to } => {
                let Some((db_key, mut record)) = self.find_version(bucket, key, |v| v.version_id == version_id)? else {
                    return Ok(Outcome::Missing);
                };
                let Some(encryption) = record.encryption.as_mut() else {
                    return Ok(Outcome::Refused);
                };
                if encryption.sealed_key == to {
                    return Ok(Outcome::Applied);
                }
                if encryption.sealed_key != from {
                    return Ok(Outcome::Refused);
                }
                encryption.sealed_key = to;
                change.batch.put(db_key, meta::encode(&record)?);
                change.log(bucket, key, &record, ChangeKind::Metadata);
            }
            DriveOp::Supersede { version_id, through, remove_marker } => {
                for (db_key, record) in self.scan::<VersionRecord>(&meta::versions_prefix(bucket, key))? {
                    let older_null = record.null_version && record.stamp < through;
                    let null_marker =
                        remove_marker && record.version_id == version_id && record.null_version && record.delete_marker;
                    if older_null || null_marker {
                        change.remove_version(&db_key, &record);
                    }
                }
            }
            DriveOp::RemoveVersion { version_id } => {
                if let Some((db_key, record)) = self.find_version(bucket, key, |v| v.version_id == version_id)? {
                    change.remove_version(&db_key, &record);
                    change.log(bucket, key, &record, ChangeKind::Delete);
                }
            }
            DriveOp::DeleteVersion { version_id, stamp } => {
                let db_key = meta::version_key_at(bucket, key, stamp, version_id);
                if let Some(record) = self.get::<VersionRecord>(&db_key)? {
                    change.remove_version(&db_key, &record);
                    change.log(bucket, key, &record, ChangeKind::Delete);
                }
            }
            DriveOp::AddBucketConfig { config } => {
                change.batch.put(meta::bucket_config_key(bucket, config.stamp), meta::encode(&config)?);
            }
            DriveOp::SupersedeBucketConfigs { through } => {
                for (db_key, config) in self.scan::<BucketConfig>(&meta::bucket_config_prefix(bucket))? {
                    if config.stamp < through {
                        change.batch.delete(db_key);
                    }
                }
            }
            DriveOp::RemoveBucketConfig { stamp } => {
                change.batch.delete(meta::bucket_config_key(bucket, stamp));
            }
            DriveOp::CreateUpload { record } => {
                change.batch.put(meta::upload_key(bucket, key, record.upload_id), meta::encode(&record)?);
            }
            DriveOp::AddPart { upload_id, record } => {
                if self.get::<UploadRecord>(&meta::upload_key(bucket, key, upload_id))?.is_none() {
                    return Ok(Outcome::Missing);
                }
                change.batch.put(meta::part_ref_key(upload_id, &record), []);
                change.batch.put(meta::part_key(upload_id, &record), meta::encode(&record)?);
            }
            DriveOp::SupersedeParts { upload_id, number, through } => {
                for (db_key, record) in self.scan::<PartRecord>(&meta::part_number_prefix(upload_id, number))? {
                    if record.stamp < through {
                        change.remove_part(&db_key, upload_id, &record);
                    }
                }
            }
            DriveOp::RemovePart { upload_id, number, stamp } => {
                for (db_key, record) in self.scan::<PartRecord>(&meta::part_number_prefix(upload_id, number))? {
                    if record.stamp == stamp {
                        change.remove_part(&db_key, upload_id, &record);
                    }
                }
            }
            DriveOp::RemoveUpload { upload_id } => {
                change.batch.delete(meta::upload_key(bucket, key, upload_id));
                for (db_key, record) in self.scan::<PartRecord>(&meta::parts_prefix(upload_id))? {
                    change.remove_part(&db_key, upload_id, &record);
                }
            }
        }
        Ok(Outcome::Applied)
    }

    /// Evaluates a write's condition against this drive's newest version of the key.
    fn condition_holds(&self, bucket: &str, key: &str, condition: &Condition) -> Result<bool> {
        if *condition == Condition::None {
            return Ok(true);
        }
        let current = self.versions(bucket, key, 1)?.versions.into_iter().next().filter(|v| !v.delete_marker);
        Ok(match condition {
            Condition::None => true,
            Condition::Absent => current.is_none(),
            Condition::ETag(etag) => current.is_some_and(|v| v.etag == *etag),
        })
    }

    fn find_version(
        &self,
        bucket: &str,
        key: &str,
        wanted: impl Fn(&VersionRecord) -> bool,
    ) -> Result<Option<(Box<[u8]>, VersionRecord)>> {
        Ok(self.scan::<VersionRecord>(&meta::versions_prefix(bucket, key))?.into_iter().find(|(_, v)| wanted(v)))
    }

    pub(super) fn fence_bucket(&self, name: &str, created_ns: i64) -> Result<()> {
        let _exclusive = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        let key = meta::bucket_key(name);
        if self.get::<meta::BucketRecord>(&key)?.is_some_and(|r| r.created_ns == created_ns) {
            self.db.delete_opt(key, &self.write_options())?;
        }
        Ok(())
    }

    pub(super) fn restore_bucket(&self, record: &meta::BucketRecord) -> Result<()> {
        let _exclusive = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        let key = meta::bucket_key(&record.name);
        if self.get::<meta::BucketRecord>(&key)?.is_none() {
            self.db.put_opt(key, meta::encode(record)?, &self.write_options())?;
        }
        Ok(())
    }

    /// Removes every record of a fenced bucket; returns the shard files they released.
    pub(super) fn purge_bucket(&self, name: &str) -> Result<Vec<Uuid>> {
        let _exclusive = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        if self.get::<meta::BucketRecord>(&meta::bucket_key(name))?.is_some() {
            return Ok(Vec::new());
        }
        let mut change = Change::new();
        for (db_key, record) in self.scan::<VersionRecord>(&meta::objects_prefix(name))? {
            change.remove_version(&db_key, &record);
        }
        for (db_key, upload) in self.scan::<UploadRecord>(&meta::uploads_prefix(name))? {
            change.batch.delete(db_key);
            for (part_key, part) in self.scan::<PartRecord>(&meta::parts_prefix(upload.upload_id))? {
                change.remove_part(&part_key, upload.upload_id, &part);
            }
        }
        change.batch.delete_range(meta::bucket_config_prefix(name), meta::bucket_config_end(name));
        self.db.write_opt(change.batch, &self.write_options())?;
        Ok(change.released)
    }

    /// One version of a key: by stamp and id with one read, or the newest null version.
    pub(super) fn version(&self, bucket: &str, key: &str, which: VersionId) -> Result<Option<VersionRecord>> {
        match which {
            VersionId::Id { stamp, id } => self.get(&meta::version_key_at(bucket, key, stamp, id)),
            VersionId::Null => Ok(self.find_version(bucket, key, |v| v.null_version)?.map(|(_, v)| v)),
        }
    }

    pub(super) fn list_versions(&self, bucket: &str, query: &VersionsQuery) -> Result<Vec<VersionEntry>> {
        let keys = &query.keys;
        let base = meta::objects_prefix(bucket);
        let mut start = meta::at_key(bucket, &keys.prefix);
        if let Some(after) = &keys.start_after {
            let rolled_up = keys.common_prefix(after) == Some(after.as_str());
            let past = match query.after_version {
                Some((stamp, id)) if !rolled_up => {
                    let mut past = meta::version_key_at(bucket, after, stamp, id);
                    past.push(0);
                    past
                }
                _ if rolled_up => meta::after_prefix(bucket, after),
                _ => meta::after_key(bucket, after),
            };
            start = start.max(past);
        }
        let mut out = Vec::new();
        let mut iter = self.db.raw_iterator();
        iter.seek(&start);
        while out.len() < keys.limit {
            let (Some(db_key), Some(value)) = (iter.key(), iter.value()) else { break };
            let Some(key) = meta::object_key_of(base.len(), db_key).filter(|_| db_key.starts_with(&base)) else {
                break;
            };
            if !key.starts_with(&keys.prefix) {
                break;
            }
            match keys.common_prefix(key).map(str::to_owned) {
                Some(prefix) => {
                    let next = meta::after_prefix(bucket, &prefix);
                    if keys.start_after.as_deref().is_none_or(|after| prefix.as_str() > after) {
                        out.push(VersionEntry::Prefix(prefix));
                    }
                    iter.seek(next);
                }
                None => {
                    let key = key.to_owned();
                    out.push(VersionEntry::Version { key, record: meta::decode_listed(value)? });
                    iter.next();
                }
            }
        }
        iter.status()?;
        Ok(out)
    }

    pub(super) fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>> {
        let base = meta::objects_prefix(bucket);
        let mut start = meta::at_key(bucket, &query.prefix);
        if let Some(after) = &query.start_after {
            // A marker that is itself a common prefix skips every key under it; any other marker
            // (a key, possibly one that ends with the delimiter) skips just that key.
            let rolled_up = query.common_prefix(after) == Some(after.as_str());
            let past = if rolled_up { meta::after_prefix(bucket, after) } else { meta::after_key(bucket, after) };
            start = start.max(past);
        }
        let mut out = Vec::new();
        let mut iter = self.db.raw_iterator();
        iter.seek(&start);
        while out.len() < query.limit {
            let Some(db_key) = iter.key() else { break };
            let Some(key) = meta::object_key_of(base.len(), db_key).filter(|_| db_key.starts_with(&base)) else {
                break;
            };
            if !key.starts_with(&query.prefix) {
                break;
            }
            let key = key.to_owned();
            match query.common_prefix(&key).map(str::to_owned) {
                Some(prefix) => {
                    let next = meta::after_prefix(bucket, &prefix);
                    if query.start_after.as_deref().is_none_or(|after| prefix.as_str() > after) {
                        out.push(ListEntry::Prefix(prefix));
                    }
                    iter.seek(next);
                }
                None => {
                    let prefix = meta::versions_prefix(bucket, &key);
                    let versions = collect_versions(&mut iter, &prefix, LIST_VERSIONS_PER_KEY, meta::decode_listed)?;
                    // A key whose versions were all read leaves the iterator on the next key:
                    // a seek (a skiplist search in every memtable and level) is only needed
                    // past the versions left unread.
                    let complete = versions.complete;
                    out.push(ListEntry::Object { key: key.clone(), versions });
                    if !complete {
                        iter.seek(meta::after_key(bucket, &key));
                    }
                }
            }
        }
        iter.status()?;
        Ok(out)
    }

    pub(super) fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Uuid)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>> {
        let mut start = meta::uploads_prefix(bucket);
        start.extend_from_slice(prefix.as_bytes());
        let scan_prefix = start.clone();
        if let Some((key, upload_id)) = &after {
            let mut past = meta::upload_key(bucket, key, *upload_id);
            past.push(0);
            start = start.max(past);
        }
        let mut out = Vec::new();
        let mut iter = self.db.raw_iterator();
        iter.seek(&start);
        while out.len() < limit {
            let (Some(db_key), Some(value)) = (iter.key(), iter.value()) else { break };
            if !db_key.starts_with(&scan_prefix) {
                break;
            }
            out.push(meta::decode(value)?);
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    pub(super) fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        let stable = self.changes.stable();
        let mut out = Vec::new();
        let mut iter = self.db.raw_iterator();
        iter.seek(meta::change_key(after.saturating_add(1)));
        while out.len() < limit {
            let (Some(db_key), Some(value)) = (iter.key(), iter.value()) else { break };
            match meta::change_seq(db_key) {
                Some(seq) if seq <= stable => out.push(meta::decode(value)?),
                _ => break,
            }
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    pub(super) fn trim_changes(&self, through: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range(meta::change_key(0), meta::change_key(through.saturating_add(1)));
        self.db.write_opt(batch, &self.write_options())?;
        Ok(())
    }
}

/// Up to `limit` version records under `prefix` from the iterator's position, newest first,
/// decoded by `decode`.
fn collect_versions(
    iter: &mut DBRawIterator<'_>,
    prefix: &[u8],
    limit: usize,
    decode: fn(&[u8]) -> Result<VersionRecord>,
) -> Result<DriveVersions> {
    let mut versions = Vec::new();
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if !key.starts_with(prefix) {
            return Ok(DriveVersions { versions, complete: true });
        }
        if versions.len() == limit {
            return Ok(DriveVersions { versions, complete: false });
        }
        versions.push(decode(value)?);
        iter.next();
    }
    Ok(DriveVersions { versions, complete: true })
}

/// Read options that never touch the disk: reads needing I/O fail with `Incomplete`.
fn cache_only() -> ReadOptions {
    let mut options = ReadOptions::default();
    options.set_read_tier(ReadTier::BlockCache);
    options
}
