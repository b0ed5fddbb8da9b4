//! The object store: erasure sets over drives, and the object operations the gateway calls.
//! Writes are two-phase (stage the data, then commit the record) so the caller can verify
//! checksums of the body before anything becomes visible; every commit goes through
//! [`crate::commit`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use uuid::Uuid;

use crate::acl::Acl;
use crate::bucket_config::{BucketCache, VersioningStatus};
use crate::cleanup::Cleanups;
use crate::commit;
use crate::drive::{Condition, Drive, DriveOp};
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::get;
use crate::heal::{self, HealQueue};
use crate::list::{self, ListPage};
use crate::local::LocalDrive;
use crate::meta::{
    self, DataPart, ObjectEncryption, ObjectTemplate, PartRecord, StoredChecksum, UploadRecord, VersionRecord,
};
use crate::multipart::{self, ChosenPart};
use crate::placement::{self, object_hash, set_index};
use crate::put::{self, BodyStream, Staged, StagedContent};
use crate::quorum::{Agreed, Quorum};
use crate::set::ErasureSet;
use crate::stamp::{Clock, Stamp};
use crate::startup;
use crate::upload_list::{self, UploadPage, UploadQuery};
use crate::versions::{Deleted, VersionId};

/// How to build the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Drive directories, in set order.
    pub drives: Vec<PathBuf>,
    /// Parity shards per set; `None` picks [`placement::default_parity`].
    pub parity: Option<usize>,
    /// Objects up to this size are stored inside their records.
    pub inline_threshold_bytes: usize,
    /// Sync data and records to stable storage before acknowledging writes.
    pub durable: bool,
    /// Object bytes per erasure stripe.
    pub block_size: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            drives: Vec::new(),
            parity: None,
            inline_threshold_bytes: 128 * 1024,
            durable: true,
            block_size: 1 << 20,
        }
    }
}

/// Headers, metadata, tags and checksum of a new object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectMeta {
    /// Standard headers (content-type, ...) by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// User metadata by lower-case name without `x-amz-meta-`.
    pub user_metadata: BTreeMap<String, String>,
    /// Object tags.
    pub tags: Vec<(String, String)>,
    /// Checksum to store and return.
    pub checksum: Option<StoredChecksum>,
    /// How the data is sealed, when the gateway encrypted it.
    pub encryption: Option<ObjectEncryption>,
    /// The owner and ACL, when the bucket has ACLs enabled.
    pub acl: Option<Acl>,
}

/// A located object version, ready to be read (a clone reads the same version again).
#[derive(Debug, Clone)]
pub struct ObjectHandle {
    set: Arc<ErasureSet>,
    bucket: String,
    key: String,
    agreed: Agreed,
    map: get::ShardMap,
}

impl ObjectHandle {
    pub(crate) fn new(set: Arc<ErasureSet>, bucket: &str, key: &str, agreed: Agreed, map: get::ShardMap) -> Self {
        Self { set, bucket: bucket.to_owned(), key: key.to_owned(), agreed, map }
    }

    /// The drives holding the version.
    pub(crate) fn holders(&self) -> impl Iterator<Item = usize> + '_ {
        self.agreed.holders.iter().map(|(drive, _)| *drive)
    }

    /// The version record.
    pub fn record(&self) -> &VersionRecord {
        self.agreed.record()
    }

    /// Streams `range` of the object (the whole object when `None`).
    #[tracing::instrument(name = "storage.read", skip_all)]
    pub async fn read(self, range: Option<Range<u64>>) -> Result<BodyStream> {
        let range = range.unwrap_or(0..self.record().size);
        get::read_object(self.set, &self.bucket, &self.key, self.agreed, self.map, range).await
    }
}

/// Layout facts for logs and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of erasure sets.
    pub sets: usize,
    /// Drives per set.
    pub set_drives: usize,
    /// Erasure layout of new objects.
    pub erasure: Erasure,
}

/// Health of one erasure set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetHealth {
    /// Drives that answered a probe.
    pub online: usize,
    /// Drives a read needs.
    pub read_quorum: usize,
    /// Drives a write needs.
    pub write_quorum: usize,
}

/// State of one drive.
#[derive(Debug, Clone)]
pub struct DriveReport {
    /// The drive's label (its path).
    pub label: String,
    /// Whether it answered a probe.
    pub online: bool,
    /// Filesystem capacity, when known.
    pub usage: Option<crate::drive::DriveUsage>,
}

/// Heal activity across sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealStats {
    /// Objects waiting to be healed.
    pub backlog: usize,
    /// Objects healed since start.
    pub healed: u64,
}

/// Lookups a GET makes when the version it found is cleaned up before its files are opened.
const GET_ATTEMPTS: usize = 3;
/// Stripes of the turn conditional writes of one key take in this store.
const CONDITIONAL_STRIPES: usize = 256;
/// How long [`ObjectStore::close`] waits for the last holders of its drives, and how often it
/// looks.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const CLOSE_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// The erasure-coded object store over local drives.
#[derive(Debug)]
pub struct ObjectStore {
    sets: Vec<Arc<ErasureSet>>,
    local: Vec<Arc<LocalDrive>>,
    /// Buckets and their configuration seen recently. A stale entry about a bucket's
    /// existence costs at most a staged body: drives check the bucket again when they commit.
    buckets: BucketCache,
    /// Bucket configuration changes and bucket deletions through this store take turns.
    config_turn: tokio::sync::Mutex<()>,
    /// Conditional writes of one key through this store take turns, so that racing
    /// conditional writers in one gateway do not all lose (409) by splitting the drives; the
    /// drives' compare-and-set is what makes them safe, across gateways too.
    conditional: Vec<tokio::sync::Mutex<()>>,
    clock: Arc<Clock>,
    /// Becomes true once the start-up work (orphan reclaim, blank-drive healing) is done.
    started: tokio::sync::watch::Sender<bool>,
}

impl ObjectStore {
    /// Opens (formatting blank drives) the store and starts its background work: healers,
    /// reclaiming shard files that crashed writes left, and healing blank drives.
    pub async fn open(config: StoreConfig) -> Result<Arc<Self>> {
        let started = SystemTime::now();
        let set_drives = placement::set_size(config.drives.len())?;
        let parity = config.parity.unwrap_or_else(|| placement::default_parity(set_drives));
        placement::check_parity(set_drives, parity)?;
        let erasure = Erasure::new(set_drives - parity, parity, config.block_size)?;
        let (drives, local) = tokio::task::spawn_blocking(move || {
            startup::open_drives(&config.drives, set_drives, parity, config.durable)
        })
        .await??;
        let clock = Arc::new(Clock::new(rand_writer_id()));
        let mut sets = Vec::new();
        for chunk in drives.chunks(set_drives) {
            let (queue, rx) = HealQueue::new();
            let set = Arc::new(ErasureSet {
                drives: chunk.to_vec(),
                erasure,
                quorum: Quorum::new(erasure.data, erasure.parity),
                inline_threshold_bytes: config.inline_threshold_bytes,
                heal: queue,
                clock: Arc::clone(&clock),
                cleanups: Cleanups::default(),
            });
            heal::spawn_healer(Arc::downgrade(&set), rx);
            sets.push(set);
        }
        let store = Arc::new(Self {
            sets,
            local,
            buckets: BucketCache::default(),
            config_turn: tokio::sync::Mutex::new(()),
            conditional: (0..CONDITIONAL_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            clock,
            started: tokio::sync::watch::Sender::new(false),
        });
        tokio::spawn(Arc::clone(&store).background_startup(started));
        Ok(store)
    }

    /// How the store is laid out.
    pub fn layout(&self) -> Layout {
        let erasure = self.sets[0].erasure;
        Layout { sets: self.sets.len(), set_drives: self.sets[0].drives.len(), erasure }
    }

    /// Probes every drive.
    pub async fn drives(&self) -> Vec<DriveReport> {
        let probes = join_all(self.all_drives().map(|drive| drive.probe())).await;
        self.all_drives()
            .zip(probes)
            .map(|(drive, probe)| DriveReport {
                label: drive.label().to_owned(),
                online: probe.is_ok(),
                usage: drive.usage(),
            })
            .collect()
    }

    /// Probes every drive and reports each set against its quorums.
    pub async fn health(&self) -> Vec<SetHealth> {
        let mut out = Vec::with_capacity(self.sets.len());
        for set in &self.sets {
            let probes = set.on_all(|drive| drive.probe()).await;
            out.push(SetHealth {
                online: ErasureSet::count_ok(&probes),
                read_quorum: set.quorum.read,
                write_quorum: set.quorum.write,
            });
        }
        out
    }

    /// Heal queue lengths and objects healed, summed over sets.
    pub fn heal_stats(&self) -> HealStats {
        HealStats {
            backlog: self.sets.iter().map(|s| s.heal.backlog()).sum(),
            healed: self.sets.iter().map(|s| s.heal.healed()).sum(),
        }
    }

    /// The set holding `bucket/key`, and the key's placement hash. Every object operation
    /// starts here, so a key the layout cannot hold is refused before any drive is asked.
    pub(crate) fn set_for(&self, bucket: &str, key: &str) -> Result<(&Arc<ErasureSet>, u64)> {
        meta::check_key(key)?;
        let hash = object_hash(bucket, key);
        Ok((&self.sets[set_index(hash, self.sets.len())], hash))
    }

    pub(crate) fn sets(&self) -> &[Arc<ErasureSet>] {
        &self.sets
    }

    pub(crate) fn local_drives(&self) -> &[Arc<LocalDrive>] {
        &self.local
    }

    pub(crate) fn bucket_cache(&self) -> &BucketCache {
        &self.buckets
    }

    pub(crate) fn config_turn(&self) -> &tokio::sync::Mutex<()> {
        &self.config_turn
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Waits until the start-up work (orphan reclaim, healing of blank drives) has finished.
    pub async fn startup_finished(&self) {
        let mut started = self.started.subscribe();
        // The sender lives as long as the store, so this only ends when the flag is set.
        let _ = started.wait_for(|done| *done).await;
    }

    /// Closes the store and returns once every local drive is released (its database closed
    /// and its lock free), so that the drives can be opened again in this process. Waits for
    /// the start-up work first; requests and cleanups still running finish before their drives
    /// are let go.
    pub async fn close(self: Arc<Self>) -> Result<()> {
        self.startup_finished().await;
        let watches: Vec<_> = self.local.iter().map(|drive| drive.release_watch()).collect();
        drop(self);
        let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        while !watches.iter().all(|watch| watch.released()) {
            if tokio::time::Instant::now() >= deadline {
                return Err(StorageError::Meta(format!(
                    "drives still in use {} s after the store was closed",
                    CLOSE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(CLOSE_POLL).await;
        }
        Ok(())
    }

    pub(crate) fn mark_started(&self) {
        self.started.send_replace(true);
    }

    /// Holds the turn of conditional writes of the key with placement hash `hash`.
    async fn conditional_turn(&self, hash: u64, condition: &Condition) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if *condition == Condition::None {
            return None;
        }
        Some(self.conditional[hash as usize % CONDITIONAL_STRIPES].lock().await)
    }

    fn all_drives(&self) -> impl Iterator<Item = &Arc<dyn Drive>> {
        self.sets.iter().flat_map(|s| s.drives.iter())
    }

    /// Streams a body into the object's set without making it visible. Small bodies stay in
    /// memory to be stored inline.
    #[tracing::instrument(name = "storage.stage", skip_all, fields(bucket = %bucket))]
    pub async fn stage(&self, bucket: &str, key: &str, body: BodyStream, size: Option<u64>) -> Result<Staged> {
        let (set, hash) = self.set_for(bucket, key)?;
        self.bucket(bucket).await?;
        put::stage(set, hash, body, size, true).await
    }

    /// Like [`ObjectStore::stage`] for a multipart part (never inline).
    #[tracing::instrument(name = "storage.stage_part", skip_all, fields(bucket = %bucket))]
    pub async fn stage_part(&self, bucket: &str, key: &str, body: BodyStream, size: Option<u64>) -> Result<Staged> {
        let (set, hash) = self.set_for(bucket, key)?;
        put::stage(set, hash, body, size, false).await
    }

    /// Drops staged data that will not be committed.
    pub async fn discard(&self, bucket: &str, key: &str, mut staged: Staged) {
        if let (StagedContent::Files(_), Ok((set, _))) = (&staged.content, self.set_for(bucket, key)) {
            put::discard_files(set, staged.data_id).await;
        }
        staged.guard.disarm();
    }

    /// Makes staged data the object's current version when `condition` holds (decided on each
    /// drive as it commits, so of two racing conditional writers at most one succeeds).
    #[tracing::instrument(name = "storage.commit_object", skip_all, fields(bucket = %bucket))]
    pub async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        staged: Staged,
        meta: ObjectMeta,
        condition: Condition,
    ) -> Result<VersionRecord> {
        let (set, hash) = self.set_for(bucket, key)?;
        let versioned = self.bucket_config(bucket).await?.versioning_enabled();
        let _turn = self.conditional_turn(hash, &condition).await;
        let stamp = self.clock.next();
        let record = VersionRecord {
            version_id: Uuid::new_v4(),
            stamp,
            null_version: !versioned,
            mod_time_ns: stamp.unix_ns(),
            delete_marker: false,
            size: staged.size,
            etag: staged.md5_hex(),
            headers: meta.headers,
            user_metadata: meta.user_metadata,
            tags: meta.tags,
            checksum: meta.checksum.clone(),
            erasure: staged.erasure,
            shard_index: 0,
            parts: Vec::new(),
            inline: None,
            completed_upload: None,
            encryption: meta.encryption,
            acl: meta.acl,
        };
        let total = set.drives.len();
        let records: Vec<Option<VersionRecord>> = (0..total)
            .map(|drive| {
                let mut copy = record.clone();
                copy.shard_index = placement::shard_of_drive(hash, drive, total);
                match &staged.content {
                    StagedContent::Inline(shards) => copy.inline = Some(shards[copy.shard_index].clone()),
                    StagedContent::Files(written) if written[drive] => {
                        copy.parts = vec![DataPart {
                            number: 1,
                            size: staged.size,
                            data_id: staged.data_id,
                            etag: record.etag.clone(),
                            checksum: meta.checksum.clone(),
                        }];
                    }
                    StagedContent::Files(_) => return None,
                }
                Some(copy)
            })
            .collect();
        let committed = records.iter().flatten().next().cloned();
        let mut staged = staged;
        if let Err(e) = commit::add_version(set, bucket, key, records, condition, "put object").await {
            self.discard(bucket, key, staged).await;
            return Err(e);
        }
        staged.guard.disarm();
        committed.ok_or_else(|| StorageError::Corrupt("no record committed".into()))
    }

    /// Stages and commits in one step.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: BodyStream,
        size: Option<u64>,
        meta: ObjectMeta,
    ) -> Result<VersionRecord> {
        let staged = self.stage(bucket, key, body, size).await?;
        self.commit_object(bucket, key, staged, meta, Condition::None).await
    }

    /// Locates the current version of an object (delete markers count as absent).
    #[tracing::instrument(name = "storage.get_object", skip_all, fields(bucket = %bucket))]
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<ObjectHandle> {
        let (set, _) = self.set_for(bucket, key)?;
        let mut attempt = 0;
        let mut previous = None;
        loop {
            attempt += 1;
            let agreed = match set.latest(bucket, key, "get object").await? {
                Some(agreed) if !agreed.record().delete_marker => agreed,
                Some(marker) => {
                    let version_id = VersionId::of(marker.record()).to_string();
                    return Err(StorageError::DeleteMarker { version_id, requested: false });
                }
                None => {
                    self.bucket(bucket).await?;
                    return Err(StorageError::NoSuchKey { bucket: bucket.to_owned(), key: key.to_owned() });
                }
            };
            // The version's files are opened now: an overwrite acknowledged between the lookup
            // and here may have cleaned them up, and then the newer version is read instead.
            // (A drive that lost the files keeps the same version current: read it degraded.)
            let map = get::ShardMap::of(&agreed);
            let opened = map.open_first_part(set, agreed.record()).await;
            let version = agreed.record().version_id;
            if opened < agreed.record().erasure.data && attempt < GET_ATTEMPTS && previous != Some(version) {
                previous = Some(version);
                continue;
            }
            return Ok(ObjectHandle::new(Arc::clone(set), bucket, key, agreed, map));
        }
    }

    /// Deletes an object as its bucket's versioning says: a bucket that never had versioning
    /// loses the current version (absent objects are not an error), through a null delete
    /// marker that the cleanup after its acknowledgement removes together with what it
    /// superseded; an enabled bucket gains a delete marker with an id; a suspended one a null
    /// delete marker that replaces the null version. With `which`, exactly that version goes.
    #[tracing::instrument(name = "storage.delete_object", skip_all, fields(bucket = %bucket))]
    pub async fn delete_object(&self, bucket: &str, key: &str, which: Option<VersionId>) -> Result<Deleted> {
        if let Some(which) = which {
            return self.delete_version(bucket, key, which).await;
        }
        let (set, hash) = self.set_for(bucket, key)?;
        let versioning = self.bucket_config(bucket).await?.versioning;
        if versioning.is_none() {
            match self.get_object(bucket, key).await {
                Ok(_) => {}
                Err(StorageError::NoSuchKey { .. } | StorageError::DeleteMarker { .. }) => {
                    return Ok(Deleted { version_id: None, delete_marker: false });
                }
                Err(e) => return Err(e),
            }
        }
        let stamp = self.clock.next();
        let total = set.drives.len();
        let mut marker = delete_marker(stamp, set.erasure);
        marker.null_version = versioning != Some(VersioningStatus::Enabled);
        let records = (0..total)
            .map(|drive| {
                Some(VersionRecord { shard_index: placement::shard_of_drive(hash, drive, total), ..marker.clone() })
            })
            .collect();
        if versioning.is_none() {
            commit::add_version(set, bucket, key, records, Condition::None, "delete object").await?;
            return Ok(Deleted { version_id: None, delete_marker: false });
        }
        commit::add_lasting_marker(set, bucket, key, records).await?;
        Ok(Deleted { version_id: Some(VersionId::of(&marker)), delete_marker: true })
    }

    /// Lists one page of a bucket's objects and common prefixes.
    #[tracing::instrument(name = "storage.list_objects", skip_all, fields(bucket = %bucket))]
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<ListPage> {
        self.bucket(bucket).await?;
        if max == 0 {
            return Ok(ListPage::default());
        }
        list::list_sets(&self.sets, bucket, prefix, delimiter, start_after, max).await
    }

    /// Starts a multipart upload.
    pub async fn create_upload(&self, bucket: &str, key: &str, template: ObjectTemplate) -> Result<UploadRecord> {
        let (set, _) = self.set_for(bucket, key)?;
        self.bucket(bucket).await?;
        let record = UploadRecord { upload_id: Uuid::now_v7(), key: key.to_owned(), initiated_ns: now_ns(), template };
        let op = DriveOp::CreateUpload { record: record.clone() };
        commit::everywhere(set, bucket, key, op, "create multipart upload").await?;
        Ok(record)
    }

    /// Reads an upload, or [`StorageError::NoSuchUpload`].
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<UploadRecord> {
        let (set, _) = self.set_for(bucket, key)?;
        self.bucket(bucket).await?;
        multipart::find(set, bucket, key, upload_id).await
    }

    /// Commits a staged part of an upload. A part uploaded again replaces the earlier one only
    /// once it is acknowledged.
    #[tracing::instrument(name = "storage.commit_part", skip_all, fields(bucket = %bucket))]
    pub async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: Uuid,
        number: i32,
        staged: Staged,
        checksum: Option<StoredChecksum>,
    ) -> Result<DataPart> {
        let (set, _) = self.set_for(bucket, key)?;
        let stamp = self.clock.next();
        let mut staged = staged;
        match multipart::commit_part(set, bucket, key, upload_id, number, &staged, checksum, stamp).await {
            Ok(part) => {
                staged.guard.disarm();
                Ok(part)
            }
            Err(e) => {
                self.discard(bucket, key, staged).await;
                Err(e)
            }
        }
    }

    /// The committed parts of an upload.
    pub async fn list_parts(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.upload(bucket, key, upload_id).await?;
        multipart::list_parts(self.set_for(bucket, key)?.0, upload_id).await
    }

    /// Completes an upload from the chosen parts when `condition` holds; `checksum` is the
    /// object's checksum, computed by the caller from the parts' checksums.
    #[tracing::instrument(name = "storage.complete_upload", skip_all, fields(bucket = %bucket))]
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: Uuid,
        chosen: &[ChosenPart],
        condition: Condition,
        checksum: impl FnOnce(&UploadRecord, &[DataPart]) -> Result<Option<StoredChecksum>>,
    ) -> Result<VersionRecord> {
        let (set, hash) = self.set_for(bucket, key)?;
        let _turn = self.conditional_turn(hash, &condition).await;
        let upload = match self.upload(bucket, key, upload_id).await {
            Err(StorageError::NoSuchUpload(id)) => {
                // A retry of a completion whose answer was lost gets the answer again.
                let current = set.latest(bucket, key, "complete multipart upload").await?;
                let record = current.map(|agreed| agreed.record().clone());
                return record
                    .filter(|record| multipart::completed_by(record, upload_id, chosen))
                    .ok_or(StorageError::NoSuchUpload(id));
            }
            found => found?,
        };
        let stored = multipart::list_parts(set, upload_id).await?;
        let (parts, etag) = multipart::assemble(chosen, &stored)?;
        let checksum = checksum(&upload, &parts)?;
        let template = upload.template;
        let versioned = self.bucket_config(bucket).await?.versioning_enabled();
        let stamp = self.clock.next();
        let record = VersionRecord {
            version_id: Uuid::new_v4(),
            stamp,
            null_version: !versioned,
            mod_time_ns: stamp.unix_ns(),
            delete_marker: false,
            size: parts.iter().map(|p| p.size).sum(),
            etag,
            headers: template.headers,
            user_metadata: template.user_metadata,
            tags: template.tags,
            checksum,
            erasure: stored.first().map_or(set.erasure, |p| p.erasure),
            shard_index: 0,
            parts,
            inline: None,
            completed_upload: Some(upload_id),
            encryption: template.encryption,
            acl: template.acl,
        };
        multipart::complete(set, bucket, key, upload_id, &record, hash, condition).await?;
        Ok(record)
    }

    /// Aborts an upload and reclaims its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<()> {
        let (set, _) = self.set_for(bucket, key)?;
        self.upload(bucket, key, upload_id).await?;
        commit::everywhere(set, bucket, key, DriveOp::RemoveUpload { upload_id }, "abort multipart upload").await
    }

    /// One page of the in-progress uploads of a bucket, in key then upload-id order.
    pub async fn list_uploads(&self, bucket: &str, query: &UploadQuery) -> Result<UploadPage> {
        self.bucket(bucket).await?;
        upload_list::list_uploads(&self.sets, bucket, query).await
    }

    /// Change-log entries of every drive after the positions in `after` (one per drive, in
    /// [`ObjectStore::drives`] order), at most `limit` per drive. Consumers (notifications,
    /// replication, lifecycle) keep one position per drive and treat an entry as a hint to
    /// read the key under quorum, so debris of failed writes never reaches them as fact.
    pub async fn changes_since(&self, after: &[u64], limit: usize) -> Vec<Result<Vec<meta::ChangeRecord>>> {
        join_all(
            self.all_drives()
                .enumerate()
                .map(|(i, drive)| drive.changes_since(after.get(i).copied().unwrap_or(0), limit)),
        )
        .await
    }

    /// Removes change-log entries every consumer has read: up to `through[i]` on drive `i`.
    pub async fn trim_changes(&self, through: &[u64]) -> Vec<Result<()>> {
        join_all(self.all_drives().zip(through).map(|(drive, seq)| drive.trim_changes(*seq))).await
    }
}

/// A delete marker: a null one unless the caller makes it otherwise.
fn delete_marker(stamp: Stamp, erasure: Erasure) -> VersionRecord {
    VersionRecord {
        version_id: Uuid::new_v4(),
        stamp,
        null_version: true,
        mod_time_ns: stamp.unix_ns(),
        delete_marker: true,
        size: 0,
        etag: String::new(),
        headers: BTreeMap::new(),
        user_metadata: BTreeMap::new(),
        tags: Vec::new(),
        checksum: None,
        erasure,
        shard_index: 0,
        parts: Vec::new(),
        inline: None,
        completed_upload: None,
        encryption: None,
        acl: None,
    }
}

/// A random id naming this store instance in the stamps it issues.
fn rand_writer_id() -> u64 {
    Uuid::new_v4().as_u64_pair().0
}

/// Current time in Unix nanoseconds.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}
