//! The object store: erasure sets over drives, and the operations the gateway calls. Writes are
//! two-phase (stage the data, then commit the record) so the caller can verify checksums of the
//! body before anything becomes visible.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use uuid::Uuid;

use crate::drive::Drive;
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::format::{self, DriveFormat};
use crate::get;
use crate::heal::{self, HealQueue};
use crate::list::{self, ListPage};
use crate::local::LocalDrive;
use crate::meta::{BucketRecord, DataPart, ObjectTemplate, PartRecord, StoredChecksum, UploadRecord, VersionRecord};
use crate::multipart::{self, ChosenPart};
use crate::offline::OfflineDrive;
use crate::placement::{self, object_hash, set_index};
use crate::put::{self, BodyStream, Staged, StagedContent};
use crate::quorum::{Agreed, Answer, Quorum};
use crate::set::{ErasureSet, KeyLocks, OnRollback};

/// Present in a drive's root while it is being healed into its set; survives restarts.
const HEALING_MARKER: &str = "healing";

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
}

/// A located object version, ready to be read.
#[derive(Debug)]
pub struct ObjectHandle {
    set: Arc<ErasureSet>,
    bucket: String,
    key: String,
    agreed: Agreed,
}

impl ObjectHandle {
    /// The version record.
    pub fn record(&self) -> &VersionRecord {
        self.agreed.record()
    }

    /// Streams `range` of the object (the whole object when `None`).
    #[tracing::instrument(name = "storage.read", skip_all)]
    pub async fn read(self, range: Option<Range<u64>>) -> Result<BodyStream> {
        let range = range.unwrap_or(0..self.record().size);
        get::read_object(self.set, &self.bucket, &self.key, self.agreed, range).await
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

/// The erasure-coded object store over local drives.
#[derive(Debug)]
pub struct ObjectStore {
    sets: Vec<Arc<ErasureSet>>,
    local: Vec<Arc<LocalDrive>>,
    buckets: RwLock<HashMap<String, BucketRecord>>,
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
        let (drives, local) =
            tokio::task::spawn_blocking(move || open_drives(&config.drives, set_drives, parity, config.durable))
                .await??;
        let mut sets = Vec::new();
        for chunk in drives.chunks(set_drives) {
            let (queue, rx) = HealQueue::new();
            let set = Arc::new(ErasureSet {
                drives: chunk.to_vec(),
                erasure,
                quorum: Quorum::new(erasure.data, erasure.parity),
                inline_threshold_bytes: config.inline_threshold_bytes,
                heal: queue,
                writers: KeyLocks::default(),
            });
            heal::spawn_healer(Arc::downgrade(&set), rx);
            sets.push(set);
        }
        let store = Arc::new(Self { sets, local, buckets: RwLock::default() });
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

    fn set_for(&self, bucket: &str, key: &str) -> (&Arc<ErasureSet>, u64) {
        let hash = object_hash(bucket, key);
        (&self.sets[set_index(hash, self.sets.len())], hash)
    }

    async fn background_startup(self: Arc<Self>, started: SystemTime) {
        for drive in &self.local {
            match drive.reclaim_orphans(started).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(drive = drive.label(), removed, "reclaimed orphaned shard files"),
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "orphan reclaim failed")
                }
            }
        }
        if self.local.iter().any(|d| d.is_healing()) {
            if let Err(e) = self.heal_blank_drives().await {
                tracing::warn!(error = %e, "healing blank drives failed; will retry at next start");
            }
        }
    }

    /// Copies bucket records and every object to drives that joined blank, then marks them
    /// healed.
    async fn heal_blank_drives(&self) -> Result<()> {
        let buckets = self.list_buckets().await?;
        for drive in self.local.iter().filter(|d| d.is_healing()) {
            for bucket in &buckets {
                drive.put_bucket(bucket.clone()).await?;
            }
        }
        let mut healed = 0;
        for set in &self.sets {
            for bucket in &buckets {
                healed += heal::heal_bucket(set, &bucket.name).await?;
            }
        }
        for drive in self.local.iter().filter(|d| d.is_healing()) {
            drive.set_healing(false);
            let marker = drive.root().join(HEALING_MARKER);
            std::fs::remove_file(&marker).map_err(|e| StorageError::io(format!("remove {}", marker.display()), e))?;
        }
        tracing::info!(healed, "blank drives healed");
        Ok(())
    }

    fn all_drives(&self) -> impl Iterator<Item = &Arc<dyn Drive>> {
        self.sets.iter().flat_map(|s| s.drives.iter())
    }

    /// Bucket records are kept on every drive; a bucket exists when some set agrees it does.
    async fn lookup_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let cached = self.buckets.read().map(|b| b.get(name).cloned()).unwrap_or(None);
        if cached.is_some() {
            return Ok(cached);
        }
        let mut found = None;
        for set in &self.sets {
            let answers = set.answers(set.on_all(|drive| drive.bucket(name)).await);
            let unknown = answers.iter().filter(|a| matches!(a, Answer::Unknown)).count();
            set.quorum.check_read("head bucket", answers.len() - unknown)?;
            let holders: Vec<BucketRecord> = answers
                .into_iter()
                .filter_map(|a| match a {
                    Answer::Found(record) => Some(record),
                    _ => None,
                })
                .collect();
            if !holders.is_empty() && set.quorum.may_be_committed(holders.len(), unknown) {
                found = holders.into_iter().next();
                break;
            }
        }
        if let (Some(record), Ok(mut cache)) = (&found, self.buckets.write()) {
            cache.insert(name.to_owned(), record.clone());
        }
        Ok(found)
    }

    /// The bucket's record, or [`StorageError::NoSuchBucket`].
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        self.lookup_bucket(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.to_owned()))
    }

    /// Creates a bucket on every drive.
    pub async fn create_bucket(&self, name: &str) -> Result<BucketRecord> {
        if self.lookup_bucket(name).await?.is_some() {
            return Err(StorageError::BucketExists(name.to_owned()));
        }
        let record = BucketRecord { name: name.to_owned(), created_ns: now_ns() };
        for set in &self.sets {
            let results = set.on_all(|drive| drive.put_bucket(record.clone())).await;
            set.quorum.check_write("create bucket", ErasureSet::count_ok(&results))?;
        }
        if let Ok(mut cache) = self.buckets.write() {
            cache.insert(name.to_owned(), record.clone());
        }
        Ok(record)
    }

    /// All buckets in name order.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let mut listed: BTreeMap<String, BucketRecord> = BTreeMap::new();
        for set in &self.sets {
            let results = set.on_all(|drive| drive.list_buckets()).await;
            set.quorum.check_read("list buckets", ErasureSet::count_ok(&results))?;
            let unknown = results.iter().zip(&set.drives).filter(|(r, d)| r.is_err() || d.is_healing()).count();
            let mut seen: BTreeMap<String, (BucketRecord, usize)> = BTreeMap::new();
            for record in results.into_iter().flatten().flatten() {
                seen.entry(record.name.clone()).or_insert_with(|| (record, 0)).1 += 1;
            }
            for (name, (record, holders)) in seen {
                if set.quorum.may_be_committed(holders, unknown) {
                    listed.entry(name).or_insert(record);
                }
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.bucket(name).await?;
        let listing = self.list_objects(name, "", None, None, 1).await?;
        if !listing.entries.is_empty() || !self.list_uploads(name, "").await?.is_empty() {
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        if let Ok(mut cache) = self.buckets.write() {
            cache.remove(name);
        }
        for set in &self.sets {
            let results = set.on_all(|drive| drive.delete_bucket(name)).await;
            set.quorum.check_write("delete bucket", ErasureSet::count_ok(&results))?;
        }
        Ok(())
    }

    /// Streams a body into the object's set without making it visible. Small bodies stay in
    /// memory to be stored inline.
    #[tracing::instrument(name = "storage.stage", skip_all, fields(bucket = %bucket))]
    pub async fn stage(&self, bucket: &str, key: &str, body: BodyStream, size: Option<u64>) -> Result<Staged> {
        self.bucket(bucket).await?;
        let (set, hash) = self.set_for(bucket, key);
        put::stage(set, hash, body, size, true).await
    }

    /// Like [`ObjectStore::stage`] for a multipart part (never inline).
    #[tracing::instrument(name = "storage.stage_part", skip_all, fields(bucket = %bucket))]
    pub async fn stage_part(&self, bucket: &str, key: &str, body: BodyStream, size: Option<u64>) -> Result<Staged> {
        let (set, hash) = self.set_for(bucket, key);
        put::stage(set, hash, body, size, false).await
    }

    /// Drops staged data that will not be committed.
    pub async fn discard(&self, bucket: &str, key: &str, staged: Staged) {
        if let StagedContent::Files(_) = staged.content {
            put::discard_files(self.set_for(bucket, key).0, staged.data_id).await;
        }
    }

    /// Makes staged data the object's current version.
    #[tracing::instrument(name = "storage.commit_object", skip_all, fields(bucket = %bucket))]
    pub async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        staged: Staged,
        meta: ObjectMeta,
    ) -> Result<VersionRecord> {
        let (set, hash) = self.set_for(bucket, key);
        // Taken before the modification time is read, so times follow the order of commits.
        let _writing = set.writers.lock(hash).await;
        let total = set.drives.len();
        let record = VersionRecord {
            version_id: Uuid::new_v4(),
            null_version: true,
            mod_time_ns: now_ns(),
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
        };
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
        if let Err(e) = set.commit_records(bucket, key, records, "put object", OnRollback::ReleaseData).await {
            self.discard(bucket, key, staged).await;
            return Err(e);
        }
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
        self.commit_object(bucket, key, staged, meta).await
    }

    /// Locates the current version of an object (delete markers count as absent).
    #[tracing::instrument(name = "storage.get_object", skip_all, fields(bucket = %bucket))]
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<ObjectHandle> {
        let (set, _) = self.set_for(bucket, key);
        match set.latest(bucket, key, "get object").await? {
            Some(agreed) if !agreed.record().delete_marker => {
                Ok(ObjectHandle { set: Arc::clone(set), bucket: bucket.to_owned(), key: key.to_owned(), agreed })
            }
            _ => {
                self.bucket(bucket).await?;
                Err(StorageError::NoSuchKey { bucket: bucket.to_owned(), key: key.to_owned() })
            }
        }
    }

    /// Removes the current version of an object; absent objects are not an error.
    #[tracing::instrument(name = "storage.delete_object", skip_all, fields(bucket = %bucket))]
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let (set, hash) = self.set_for(bucket, key);
        let _writing = set.writers.lock(hash).await;
        let handle = match self.get_object(bucket, key).await {
            Ok(handle) => handle,
            Err(StorageError::NoSuchKey { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let version_id = handle.record().version_id;
        let results = handle.set.on_all(|drive| drive.delete_version(bucket, key, version_id)).await;
        handle.set.quorum.check_write("delete object", ErasureSet::count_ok(&results))
    }

    /// Replaces the tags of the current version in place.
    pub async fn set_tags(&self, bucket: &str, key: &str, tags: Vec<(String, String)>) -> Result<VersionRecord> {
        let (set, hash) = self.set_for(bucket, key);
        let _writing = set.writers.lock(hash).await;
        let handle = self.get_object(bucket, key).await?;
        let total = handle.set.drives.len();
        let mut records: Vec<Option<VersionRecord>> = vec![None; total];
        for (drive, record) in &handle.agreed.holders {
            let mut copy = record.clone();
            copy.tags = tags.clone();
            records[*drive] = Some(copy);
        }
        let mut updated = handle.record().clone();
        updated.tags = tags;
        let results = join_all(handle.set.drives.iter().zip(records).map(|(drive, record)| async move {
            match record {
                Some(record) => drive.repair_version(bucket, key, record).await,
                None => Ok(false),
            }
        }))
        .await;
        let written = results.iter().filter(|r| matches!(r, Ok(true))).count();
        handle.set.quorum.check_write("put object tagging", written)?;
        Ok(updated)
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
        self.bucket(bucket).await?;
        let record = UploadRecord { upload_id: Uuid::new_v4(), key: key.to_owned(), initiated_ns: now_ns(), template };
        multipart::create(self.set_for(bucket, key).0, bucket, record.clone()).await?;
        Ok(record)
    }

    /// Reads an upload, or [`StorageError::NoSuchUpload`].
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<UploadRecord> {
        self.bucket(bucket).await?;
        multipart::find(self.set_for(bucket, key).0, bucket, key, upload_id).await
    }

    /// Commits a staged part of an upload.
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
        let (set, hash) = self.set_for(bucket, key);
        // Held from the upload check to the commit, so a part never lands in an upload that a
        // completion or abort is removing.
        let _writing = set.writers.lock(hash).await;
        if let Err(e) = multipart::find(set, bucket, key, upload_id).await {
            self.discard(bucket, key, staged).await;
            return Err(e);
        }
        multipart::commit_part(set, upload_id, number, &staged, checksum, now_ns()).await
    }

    /// The committed parts of an upload.
    pub async fn list_parts(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.upload(bucket, key, upload_id).await?;
        multipart::list_parts(self.set_for(bucket, key).0, upload_id).await
    }

    /// Completes an upload from the chosen parts; `checksum` is the object's checksum, computed
    /// by the caller from the parts' checksums.
    #[tracing::instrument(name = "storage.complete_upload", skip_all, fields(bucket = %bucket))]
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: Uuid,
        chosen: &[ChosenPart],
        checksum: impl FnOnce(&UploadRecord, &[DataPart]) -> Result<Option<StoredChecksum>>,
    ) -> Result<VersionRecord> {
        let (set, hash) = self.set_for(bucket, key);
        let _writing = set.writers.lock(hash).await;
        let upload = self.upload(bucket, key, upload_id).await?;
        let stored = multipart::list_parts(set, upload_id).await?;
        let (parts, etag) = multipart::assemble(chosen, &stored)?;
        let checksum = checksum(&upload, &parts)?;
        let template = upload.template;
        let record = VersionRecord {
            version_id: Uuid::new_v4(),
            null_version: true,
            mod_time_ns: now_ns(),
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
        };
        multipart::complete(set, bucket, key, upload_id, &record, hash).await?;
        Ok(record)
    }

    /// Aborts an upload and reclaims its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<()> {
        let (set, hash) = self.set_for(bucket, key);
        let _writing = set.writers.lock(hash).await;
        self.upload(bucket, key, upload_id).await?;
        multipart::abort(set, bucket, key, upload_id).await
    }

    /// In-progress uploads of a bucket whose keys start with `prefix`, in key, then initiation
    /// (then id) order.
    pub async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadRecord>> {
        self.bucket(bucket).await?;
        let lists = join_all(self.sets.iter().map(|set| multipart::list_uploads(set, bucket, prefix))).await;
        let mut uploads: Vec<UploadRecord> =
            lists.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect();
        uploads.sort_by(|a, b| (&a.key, a.initiated_ns, a.upload_id).cmp(&(&b.key, b.initiated_ns, b.upload_id)));
        Ok(uploads)
    }
}

/// Current time in Unix nanoseconds.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The drives in set order, and those of them that opened.
type OpenedDrives = (Vec<Arc<dyn Drive>>, Vec<Arc<LocalDrive>>);

/// Reads or writes each drive's format and opens it. Blank drives joining an existing
/// deployment are marked for healing; a drive whose format file or metadata store does not open
/// (corrupt, unreadable, locked) stays offline until the next start, its set serving from the others.
fn open_drives(roots: &[PathBuf], set_drives: usize, parity: usize, durable: bool) -> Result<OpenedDrives> {
    let found: Vec<Result<Option<DriveFormat>>> = roots.iter().map(|root| format::read(root)).collect();
    let readable: Vec<Option<DriveFormat>> = found.iter().map(|f| f.as_ref().ok().cloned().flatten()).collect();
    let deployment_id = format::reconcile(&readable, set_drives, parity)?;
    let existing = readable.iter().any(Option::is_some);
    let mut drives: Vec<Arc<dyn Drive>> = Vec::with_capacity(roots.len());
    let mut local = Vec::with_capacity(roots.len());
    for (index, (root, format)) in roots.iter().zip(found).enumerate() {
        let blank =
            || DriveFormat { version: 1, deployment_id, set: index / set_drives, drive: index % set_drives, parity };
        let opened = format.and_then(|format| match format {
            Some(_) => Ok(()),
            None => format_blank(root, &blank(), existing),
        });
        match opened.and_then(|()| LocalDrive::open(root, durable)) {
            Ok(drive) => {
                drive.set_healing(root.join(HEALING_MARKER).exists());
                let drive = Arc::new(drive);
                drives.push(Arc::clone(&drive) as Arc<dyn Drive>);
                local.push(drive);
            }
            Err(e) if roots.len() > 1 => {
                tracing::error!(drive = %root.display(), error = %e, "drive cannot be opened; it stays offline until the next start");
                drives.push(Arc::new(OfflineDrive::new(root.display().to_string(), e.to_string())));
            }
            // A single drive that does not open leaves nothing to serve from.
            Err(e) => return Err(e),
        }
    }
    Ok((drives, local))
}

/// Formats a blank drive; one joining an existing deployment is marked for healing.
fn format_blank(root: &Path, format: &DriveFormat, existing: bool) -> Result<()> {
    if existing {
        std::fs::create_dir_all(root).map_err(|e| StorageError::io(format!("create {}", root.display()), e))?;
        let marker = root.join(HEALING_MARKER);
        std::fs::write(&marker, b"").map_err(|e| StorageError::io(format!("write {}", marker.display()), e))?;
        tracing::warn!(drive = %root.display(), "blank drive joins the set; it will be healed");
    }
    format::write(root, format)
}
