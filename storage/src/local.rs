//! A drive that is a local directory: RocksDB for records under `meta/`, shard files under
//! `data/`. Every call runs on the blocking pool so the async runtime never waits on disk.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use rocksdb::{DBRawIterator, Direction, IteratorMode, Options, ReadOptions, ReadTier, WriteBatch, WriteOptions, DB};
use uuid::Uuid;

use crate::drive::{Drive, DriveUsage, ListEntry, ListQuery, Replaced, ShardWriter};
use crate::error::{Result, StorageError};
use crate::meta::{self, BucketRecord, PartRecord, UploadRecord, VersionRecord};
use crate::metrics;
use crate::placement;

const META_DIR: &str = "meta";
const DATA_DIR: &str = "data";
/// A shard file being written is named `<data id>.<boot>.partial` until it is complete and
/// synced; `<boot>` names the process that wrote it, so leftovers of earlier runs are known.
const PARTIAL_EXTENSION: &str = "partial";
/// Unreferenced complete shard files younger than this at start may belong to a write that is
/// about to commit; older ones are orphans.
const RECLAIM_MARGIN: Duration = Duration::from_secs(2);
/// Key locks are striped: writers of one key on one drive serialise their read-modify-write.
const KEY_LOCK_STRIPES: usize = 64;

/// A drive backed by a local directory.
#[derive(Debug)]
pub struct LocalDrive {
    label: String,
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    db: DB,
    durable: bool,
    healing: AtomicBool,
    key_locks: Vec<Mutex<()>>,
    /// Names this process's staged files.
    boot: String,
    /// Numbers staged files.
    staged: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("root", &self.root).field("durable", &self.durable).finish()
    }
}

impl LocalDrive {
    /// Opens (creating if needed) the drive at `root`. With `durable`, every commit is synced to
    /// stable storage before it returns.
    pub fn open(root: &Path, durable: bool) -> Result<Self> {
        let data = root.join(DATA_DIR);
        fs::create_dir_all(&data).map_err(|e| StorageError::io(format!("create {}", data.display()), e))?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_max_background_jobs(2);
        options.set_keep_log_file_num(4);
        let db = DB::open(&options, root.join(META_DIR))?;
        Ok(Self {
            label: root.display().to_string(),
            inner: Arc::new(Inner {
                root: root.to_owned(),
                db,
                durable,
                healing: AtomicBool::new(false),
                key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                boot: Uuid::new_v4().simple().to_string()[..8].to_owned(),
                staged: AtomicU64::new(0),
            }),
        })
    }

    /// The drive's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Marks the drive as freshly formatted into an existing set.
    pub fn set_healing(&self, healing: bool) {
        self.inner.healing.store(healing, Ordering::Relaxed);
    }

    /// Removes shard files that no record references and that are older than `before`: the
    /// leftovers of writes that a crash interrupted. Returns how many were removed.
    pub async fn reclaim_orphans(&self, before: SystemTime) -> Result<usize> {
        self.blocking(move |inner| inner.reclaim_orphans(before)).await
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner)).await?
    }
}

impl Inner {
    fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.durable);
        options
    }

    fn lock_key(&self, bucket: &str, key: &str) -> std::sync::MutexGuard<'_, ()> {
        let stripe = &self.key_locks[placement::object_hash(bucket, key) as usize % KEY_LOCK_STRIPES];
        stripe.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shard_path(&self, data_id: Uuid) -> PathBuf {
        let hex = data_id.simple().to_string();
        self.root.join(DATA_DIR).join(&hex[..2]).join(hex)
    }

    /// A fresh staged-file name for `data_id`: concurrent writers (a write and a heal) never
    /// share one.
    fn partial_path(&self, data_id: Uuid) -> PathBuf {
        let n = self.staged.fetch_add(1, Ordering::Relaxed);
        self.shard_path(data_id).with_extension(format!("{}-{n}.{PARTIAL_EXTENSION}", self.boot))
    }

    fn get<T: for<'de> serde::Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get_pinned(key)? {
            Some(bytes) => Ok(Some(meta::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// [`Inner::get`] from the memtables and block cache alone (no I/O); `None` when the
    /// answer needs a disk read.
    fn get_cached<T: for<'de> serde::Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<Option<T>>> {
        match self.db.get_pinned_opt(key, &cache_only()) {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Ok(Some(bytes)) => Ok(Some(Some(meta::decode(&bytes)?))),
            Ok(None) => Ok(Some(None)),
            Err(e) => Err(e.into()),
        }
    }

    fn scan<T: for<'de> serde::Deserialize<'de>>(&self, prefix: &[u8]) -> Result<Vec<(Box<[u8]>, T)>> {
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

    fn latest_version(&self, bucket: &str, key: &str) -> Result<Option<VersionRecord>> {
        let prefix = meta::versions_prefix(bucket, key);
        let mut iter = self.db.raw_iterator();
        iter.seek(&prefix);
        iter.status()?;
        first_record(&iter, &prefix)
    }

    /// [`Inner::latest_version`] from the memtables and block cache alone, so without I/O and
    /// cheap enough for an async thread; `None` when the answer needs a disk read.
    fn latest_version_cached(&self, bucket: &str, key: &str) -> Result<Option<Option<VersionRecord>>> {
        let prefix = meta::versions_prefix(bucket, key);
        let mut iter = self.db.raw_iterator_opt(cache_only());
        iter.seek(&prefix);
        match iter.status() {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            status => {
                status?;
                first_record(&iter, &prefix).map(Some)
            }
        }
    }

    /// Deletes the matching versions of a key, and the references to their shard files, in
    /// `batch`; returns the versions removed.
    fn remove_versions(
        &self,
        batch: &mut WriteBatch,
        bucket: &str,
        key: &str,
        matches: impl Fn(&VersionRecord) -> bool,
    ) -> Result<Vec<VersionRecord>> {
        let mut removed = Vec::new();
        for (db_key, record) in self.scan::<VersionRecord>(&meta::versions_prefix(bucket, key))? {
            if matches(&record) {
                batch.delete(db_key);
                for part in &record.parts {
                    batch.delete(meta::data_ref_key(part.data_id));
                }
                removed.push(record);
            }
        }
        Ok(removed)
    }

    fn commit_version(&self, bucket: &str, key: &str, record: &VersionRecord) -> Result<Replaced> {
        let _guard = self.lock_key(bucket, key);
        self.commit_locked(bucket, key, record)
    }

    fn repair_version(&self, bucket: &str, key: &str, record: &VersionRecord) -> Result<bool> {
        let _guard = self.lock_key(bucket, key);
        let newer = self
            .latest_version(bucket, key)?
            .is_some_and(|latest| latest.version_id != record.version_id && latest.mod_time_ns >= record.mod_time_ns);
        if newer {
            return Ok(false);
        }
        let replaced = self.commit_locked(bucket, key, record)?;
        self.remove_shards(&replaced.unreferenced);
        Ok(true)
    }

    /// Commits a version record, replacing the null version when it is one; the caller holds
    /// the key lock. The replaced version's shard files are left in place for the caller.
    fn commit_locked(&self, bucket: &str, key: &str, record: &VersionRecord) -> Result<Replaced> {
        let mut batch = WriteBatch::default();
        let removed = if record.null_version {
            self.remove_versions(&mut batch, bucket, key, |old| old.null_version)?
        } else {
            Vec::new()
        };
        for part in &record.parts {
            batch.put(meta::data_ref_key(part.data_id), []);
        }
        batch.put(meta::version_key(bucket, key, record), meta::encode(record)?);
        self.db.write_opt(batch, &self.write_options())?;
        Ok(Replaced::of(removed, record))
    }

    fn delete_version(&self, bucket: &str, key: &str, version_id: Uuid) -> Result<()> {
        let _guard = self.lock_key(bucket, key);
        let mut batch = WriteBatch::default();
        let removed = self.remove_versions(&mut batch, bucket, key, |old| old.version_id == version_id)?;
        self.db.write_opt(batch, &self.write_options())?;
        let reclaimed: Vec<Uuid> = removed.iter().flat_map(|r| r.parts.iter().map(|p| p.data_id)).collect();
        self.remove_shards(&reclaimed);
        Ok(())
    }

    fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        failed: Uuid,
        previous: Option<&VersionRecord>,
        release_data: bool,
    ) -> Result<()> {
        let _guard = self.lock_key(bucket, key);
        let current = self.scan::<VersionRecord>(&meta::versions_prefix(bucket, key))?;
        let Some((db_key, current)) = current.into_iter().find(|(_, v)| v.null_version && v.version_id == failed)
        else {
            return Ok(());
        };
        let kept = |id: &Uuid| previous.is_some_and(|p| p.parts.iter().any(|part| part.data_id == *id));
        let released: Vec<Uuid> =
            current.parts.iter().map(|p| p.data_id).filter(|id| release_data && !kept(id)).collect();
        let mut batch = WriteBatch::default();
        batch.delete(db_key);
        for data_id in &released {
            batch.delete(meta::data_ref_key(*data_id));
        }
        if let Some(previous) = previous {
            for part in &previous.parts {
                batch.put(meta::data_ref_key(part.data_id), []);
            }
            batch.put(meta::version_key(bucket, key, previous), meta::encode(previous)?);
        }
        self.db.write_opt(batch, &self.write_options())?;
        self.remove_shards(&released);
        Ok(())
    }

    fn remove_shards(&self, data_ids: &[Uuid]) {
        for data_id in data_ids {
            let path = self.shard_path(*data_id);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not reclaim shard file");
                }
            }
        }
    }

    fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>> {
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
            let (Some(db_key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            let Some(key) = meta::object_key_of(base.len(), db_key).filter(|_| db_key.starts_with(&base)) else {
                break;
            };
            if !key.starts_with(&query.prefix) {
                break;
            }
            match query.common_prefix(key).map(str::to_owned) {
                Some(prefix) => {
                    let next = meta::after_prefix(bucket, &prefix);
                    if query.start_after.as_deref().is_none_or(|after| prefix.as_str() > after) {
                        out.push(ListEntry::Prefix(prefix));
                    }
                    iter.seek(next);
                }
                None => {
                    let mut record: VersionRecord = meta::decode(value)?;
                    record.inline = None;
                    let next = meta::after_key(bucket, key);
                    out.push(ListEntry::Object { key: key.to_owned(), record: Box::new(record) });
                    iter.seek(next);
                }
            }
        }
        iter.status()?;
        Ok(out)
    }

    fn commit_part(&self, upload_id: Uuid, record: &PartRecord) -> Result<()> {
        let key = meta::part_key(upload_id, record.part.number);
        let _guard = self.lock_key(&upload_id.to_string(), &record.part.number.to_string());
        let previous: Option<PartRecord> = self.get(&key)?;
        let mut batch = WriteBatch::default();
        if let Some(old) = &previous {
            batch.delete(meta::data_ref_key(old.part.data_id));
        }
        batch.put(meta::data_ref_key(record.part.data_id), []);
        batch.put(key, meta::encode(record)?);
        self.db.write_opt(batch, &self.write_options())?;
        if let Some(old) = previous.filter(|old| old.part.data_id != record.part.data_id) {
            self.remove_shards(&[old.part.data_id]);
        }
        Ok(())
    }

    /// Removes an upload and its part records, and reclaims the parts' shard files except those
    /// in `keep` and those a version of the key names (the parts a completed upload assembled).
    fn remove_upload(&self, bucket: &str, key: &str, upload_id: Uuid, keep: &[Uuid]) -> Result<()> {
        let _guard = self.lock_key(bucket, key);
        let versions = self.scan::<VersionRecord>(&meta::versions_prefix(bucket, key))?;
        let named =
            |id: &Uuid| keep.contains(id) || versions.iter().any(|(_, v)| v.parts.iter().any(|p| p.data_id == *id));
        let mut batch = WriteBatch::default();
        batch.delete(meta::upload_key(bucket, key, upload_id));
        let mut reclaimed = Vec::new();
        for (db_key, part) in self.scan::<PartRecord>(&meta::parts_prefix(upload_id))? {
            batch.delete(db_key);
            if !named(&part.part.data_id) {
                batch.delete(meta::data_ref_key(part.part.data_id));
                reclaimed.push(part.part.data_id);
            }
        }
        self.db.write_opt(batch, &self.write_options())?;
        self.remove_shards(&reclaimed);
        Ok(())
    }

    /// Removes staged files of earlier runs, and complete shard files that no record references
    /// and that were written more than [`RECLAIM_MARGIN`] before `started`.
    fn reclaim_orphans(&self, started: SystemTime) -> Result<usize> {
        let cutoff = started.checked_sub(RECLAIM_MARGIN).unwrap_or(started);
        let data = self.root.join(DATA_DIR);
        let mut removed = 0;
        for dir in read_dir(&data)? {
            for file in read_dir(&dir)? {
                let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let orphan = match name.split_once('.') {
                    Some((_, suffix)) => !suffix.starts_with(&format!("{}-", self.boot)),
                    None => {
                        let modified = file.metadata().and_then(|m| m.modified()).unwrap_or(started);
                        let referenced = match Uuid::parse_str(name) {
                            Ok(data_id) => self.db.get_pinned(meta::data_ref_key(data_id))?.is_some(),
                            Err(_) => false,
                        };
                        modified < cutoff && !referenced
                    }
                };
                if orphan {
                    match fs::remove_file(&file) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StorageError::io(format!("remove {}", file.display()), e)),
                    }
                }
            }
        }
        Ok(removed)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(format!("read {}", dir.display()), e))?;
    Ok(entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl Drive for LocalDrive {
    fn label(&self) -> &str {
        &self.label
    }

    fn is_healing(&self) -> bool {
        self.inner.healing.load(Ordering::Relaxed)
    }

    async fn probe(&self) -> Result<()> {
        self.blocking(|inner| {
            let format = inner.root.join(crate::format::FORMAT_FILE);
            fs::metadata(&format).map_err(|e| StorageError::io(format!("stat {}", format.display()), e))?;
            inner.db.get_pinned(meta::bucket_prefix())?;
            Ok(())
        })
        .await
    }

    fn usage(&self) -> Option<DriveUsage> {
        let stats = rustix::fs::statvfs(&self.inner.root).ok()?;
        let unit = stats.f_frsize.max(1);
        let total = stats.f_blocks * unit;
        let free = stats.f_bavail * unit;
        Some(DriveUsage {
            total_bytes: total,
            free_bytes: free,
            used_bytes: total.saturating_sub(stats.f_bfree * unit),
        })
    }

    async fn put_bucket(&self, record: BucketRecord) -> Result<()> {
        self.blocking(move |inner| {
            inner.db.put_opt(meta::bucket_key(&record.name), meta::encode(&record)?, &inner.write_options())?;
            Ok(())
        })
        .await
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        if let Some(found) = self.inner.get_cached(&meta::bucket_key(name))? {
            return Ok(found);
        }
        let name = name.to_owned();
        self.blocking(move |inner| inner.get(&meta::bucket_key(&name))).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.blocking(|inner| Ok(inner.scan(&meta::bucket_prefix())?.into_iter().map(|(_, r)| r).collect())).await
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            inner.db.delete_opt(meta::bucket_key(&name), &inner.write_options())?;
            Ok(())
        })
        .await
    }

    async fn bucket_is_empty(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            Ok(!inner.has_any(&meta::objects_prefix(&name))? && !inner.has_any(&meta::uploads_prefix(&name))?)
        })
        .await
    }

    async fn latest_version(&self, bucket: &str, key: &str) -> Result<Option<VersionRecord>> {
        // Hot records are answered in place: a trip through the blocking pool costs more than
        // the lookup itself.
        if let Some(found) = self.inner.latest_version_cached(bucket, key)? {
            return Ok(found);
        }
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.latest_version(&bucket, &key)).await
    }

    async fn commit_version(&self, bucket: &str, key: &str, record: VersionRecord) -> Result<Replaced> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.commit_version(&bucket, &key, &record)).await
    }

    async fn repair_version(&self, bucket: &str, key: &str, record: VersionRecord) -> Result<bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.repair_version(&bucket, &key, &record)).await
    }

    async fn delete_version(&self, bucket: &str, key: &str, version_id: Uuid) -> Result<()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.delete_version(&bucket, &key, version_id)).await
    }

    async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        failed: Uuid,
        previous: Option<VersionRecord>,
        release_data: bool,
    ) -> Result<()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.restore_version(&bucket, &key, failed, previous.as_ref(), release_data)).await
    }

    async fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.blocking(move |inner| inner.list_latest(&bucket, &query)).await
    }

    async fn create_shard(&self, data_id: Uuid) -> Result<Box<dyn ShardWriter>> {
        let path = self.inner.shard_path(data_id);
        let partial = self.inner.partial_path(data_id);
        let durable = self.inner.durable;
        let file = tokio::task::spawn_blocking({
            let partial = partial.clone();
            move || {
                fs::create_dir_all(partial.parent().unwrap_or(Path::new(".")))?;
                File::create(&partial)
            }
        })
        .await?
        .map_err(|e| StorageError::io(format!("create {}", partial.display()), e))?;
        Ok(Box::new(LocalShardWriter {
            file: Some(file),
            partial,
            path,
            durable,
            label: self.label.clone(),
            renamed: false,
        }))
    }

    async fn read_shard(&self, data_id: Uuid, offset: u64, len: usize) -> Result<Bytes> {
        let path = self.inner.shard_path(data_id);
        let started = Instant::now();
        let read = tokio::task::spawn_blocking(move || {
            let mut file = File::open(&path).map_err(|e| StorageError::io(format!("open {}", path.display()), e))?;
            // Read into spare capacity: no zeroing of a buffer the read overwrites anyway.
            let mut buf = Vec::with_capacity(len);
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.take(len as u64).read_to_end(&mut buf))
                .map_err(|e| StorageError::io(format!("read {}", path.display()), e))?;
            Ok(Bytes::from(buf))
        })
        .await?;
        metrics::observe(|m| &m.shard_read, &self.label, started.elapsed().as_secs_f64());
        read
    }

    async fn discard_shard(&self, data_id: Uuid) -> Result<()> {
        self.blocking(move |inner| {
            inner.remove_shards(&[data_id]);
            Ok(())
        })
        .await
    }

    async fn put_upload(&self, bucket: &str, record: UploadRecord) -> Result<()> {
        let bucket = bucket.to_owned();
        self.blocking(move |inner| {
            let key = meta::upload_key(&bucket, &record.key, record.upload_id);
            inner.db.put_opt(key, meta::encode(&record)?, &inner.write_options())?;
            Ok(())
        })
        .await
    }

    async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Option<UploadRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.get(&meta::upload_key(&bucket, &key, upload_id))).await
    }

    async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadRecord>> {
        let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |inner| {
            let mut scan_prefix = meta::uploads_prefix(&bucket);
            scan_prefix.extend_from_slice(prefix.as_bytes());
            Ok(inner.scan(&scan_prefix)?.into_iter().map(|(_, r)| r).collect())
        })
        .await
    }

    async fn commit_part(&self, upload_id: Uuid, record: PartRecord) -> Result<()> {
        self.blocking(move |inner| inner.commit_part(upload_id, &record)).await
    }

    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.blocking(move |inner| {
            Ok(inner.scan(&meta::parts_prefix(upload_id))?.into_iter().map(|(_, r)| r).collect())
        })
        .await
    }

    async fn remove_upload(&self, bucket: &str, key: &str, upload_id: Uuid, keep: Vec<Uuid>) -> Result<()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.remove_upload(&bucket, &key, upload_id, &keep)).await
    }
}

/// Writes one shard file as `<id>.partial`, then syncs it and renames it into place, so a
/// reader (or a heal rewriting a damaged shard) never sees a half-written file. Until a record
/// references it the file is invisible, and [`LocalDrive::reclaim_orphans`] removes it after
/// a crash.
struct LocalShardWriter {
    file: Option<File>,
    partial: PathBuf,
    path: PathBuf,
    durable: bool,
    label: String,
    renamed: bool,
}

impl Drop for LocalShardWriter {
    /// A writer dropped before `finish` (a failed or abandoned write) removes its staged file.
    fn drop(&mut self) {
        if !self.renamed {
            if let Err(e) = fs::remove_file(&self.partial) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(path = %self.partial.display(), error = %e, "could not remove staged file");
                }
            }
        }
    }
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write(&mut self, frames: Bytes) -> Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StorageError::io("write after failure", io::ErrorKind::BrokenPipe.into()))?;
        let started = Instant::now();
        let (file, written) = tokio::task::spawn_blocking(move || {
            let written = file.write_all(&frames);
            (file, written)
        })
        .await?;
        metrics::observe(|m| &m.shard_write, &self.label, started.elapsed().as_secs_f64());
        written.map_err(|e| StorageError::io(format!("write {}", self.partial.display()), e))?;
        self.file = Some(file);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StorageError::io("finish after failure", io::ErrorKind::BrokenPipe.into()))?;
        let (partial, path, durable) = (self.partial.clone(), self.path.clone(), self.durable);
        let started = Instant::now();
        let finished = tokio::task::spawn_blocking(move || {
            if durable {
                file.sync_data()?;
            }
            fs::rename(&partial, &path)?;
            if durable {
                sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            }
            Ok(())
        })
        .await?
        .map_err(|e: io::Error| StorageError::io(format!("complete {}", self.path.display()), e));
        metrics::observe(|m| &m.shard_write, &self.label, started.elapsed().as_secs_f64());
        self.renamed = finished.is_ok();
        finished
    }
}

/// The record under the iterator when its key has `prefix` (the newest version of a key).
fn first_record(iter: &DBRawIterator<'_>, prefix: &[u8]) -> Result<Option<VersionRecord>> {
    match (iter.key(), iter.value()) {
        (Some(k), Some(v)) if k.starts_with(prefix) => Ok(Some(meta::decode(v)?)),
        _ => Ok(None),
    }
}

/// Read options that never touch the disk: reads needing I/O fail with `Incomplete`.
fn cache_only() -> ReadOptions {
    let mut options = ReadOptions::default();
    options.set_read_tier(ReadTier::BlockCache);
    options
}

/// The bytes of every shard file tests write.
#[cfg(test)]
pub(crate) const TEST_FRAMES: &[u8] = b"frames";

/// Writes [`TEST_FRAMES`] as the shard file of a new data piece on `drive`, for tests.
#[cfg(test)]
pub(crate) async fn test_data_part(drive: &LocalDrive, number: i32) -> crate::meta::DataPart {
    let data_id = Uuid::new_v4();
    let mut writer = drive.create_shard(data_id).await.expect("create test shard");
    writer.write(Bytes::from_static(TEST_FRAMES)).await.expect("write test shard");
    writer.finish().await.expect("finish test shard");
    crate::meta::DataPart { number, size: TEST_FRAMES.len() as u64, data_id, etag: String::new(), checksum: None }
}

/// A null version whose data is one shard file on `drive`, for tests.
#[cfg(test)]
pub(crate) async fn test_version_with_file(drive: &LocalDrive, mod_time_ns: i64) -> VersionRecord {
    VersionRecord { parts: vec![test_data_part(drive, 1).await], ..meta::test_record(mod_time_ns) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::Drive;

    #[tokio::test]
    async fn lookups_from_disk_and_from_cache_agree() {
        let dir = tempfile::tempdir().unwrap();
        let record = meta::test_record(7);
        {
            let drive = LocalDrive::open(dir.path(), false).unwrap();
            drive.put_bucket(BucketRecord { name: "bkt".into(), created_ns: 1 }).await.unwrap();
            drive.commit_version("bkt", "key", record.clone()).await.unwrap();
            assert_eq!(drive.inner.latest_version_cached("bkt", "key").unwrap(), Some(Some(record.clone())));
            drive.inner.db.flush().unwrap();
        }
        // Reopened, the records are in table files and the block cache is cold: a lookup that
        // needs the disk is not answered from the cache, and the drive still answers it.
        let drive = LocalDrive::open(dir.path(), false).unwrap();
        assert!(matches!(drive.inner.latest_version_cached("bkt", "key").unwrap(), None | Some(Some(_))));
        assert_eq!(drive.latest_version("bkt", "key").await.unwrap(), Some(record.clone()));
        assert_eq!(drive.inner.latest_version_cached("bkt", "key").unwrap(), Some(Some(record)));
        assert_eq!(drive.inner.latest_version_cached("bkt", "other").unwrap(), Some(None));
        assert!(drive.bucket("bkt").await.unwrap().is_some());
        assert!(drive.bucket("none").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn removing_an_upload_keeps_the_parts_a_version_names() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path(), false).unwrap();
        let upload_id = Uuid::new_v4();
        let mut parts = Vec::new();
        for number in 1..=2 {
            let part = test_data_part(&drive, number).await;
            let record = PartRecord {
                part: part.clone(),
                mod_time_ns: 1,
                erasure: meta::test_record(1).erasure,
                shard_index: 0,
            };
            drive.commit_part(upload_id, record).await.unwrap();
            parts.push(part);
        }
        // The completed object assembled part 1 only; the upload is removed after the commit
        // (or aborted late, after a crash between the two): part 2 goes, part 1 stays.
        let completed = VersionRecord { parts: vec![parts[0].clone()], ..meta::test_record(2) };
        drive.commit_version("bkt", "key", completed).await.unwrap();
        drive.remove_upload("bkt", "key", upload_id, Vec::new()).await.unwrap();
        assert!(drive.read_shard(parts[0].data_id, 0, TEST_FRAMES.len()).await.is_ok(), "the object's part is kept");
        assert!(
            drive.read_shard(parts[1].data_id, 0, TEST_FRAMES.len()).await.is_err(),
            "the unused part is reclaimed"
        );
        assert!(drive.inner.db.get(meta::data_ref_key(parts[0].data_id)).unwrap().is_some(), "still referenced");
        assert!(drive.list_parts(upload_id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rollback_restores_the_previous_version_only_while_the_failed_one_is_current() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path(), false).unwrap();
        let original = test_version_with_file(&drive, 1).await;
        drive.commit_version("bkt", "key", original.clone()).await.unwrap();

        // A write that then misses quorum is undone: the original is back, its file intact,
        // and the failed write's file is released.
        let failed = test_version_with_file(&drive, 2).await;
        let replaced = drive.commit_version("bkt", "key", failed.clone()).await.unwrap();
        assert_eq!(replaced.previous.as_ref(), Some(&original));
        drive.restore_version("bkt", "key", failed.version_id, replaced.previous, true).await.unwrap();
        assert_eq!(drive.latest_version("bkt", "key").await.unwrap().as_ref(), Some(&original));
        assert!(drive.read_shard(original.parts[0].data_id, 0, TEST_FRAMES.len()).await.is_ok());
        assert!(drive.read_shard(failed.parts[0].data_id, 0, TEST_FRAMES.len()).await.is_err());

        // Once a newer write has replaced the failed one, the rollback changes nothing.
        let failed = test_version_with_file(&drive, 3).await;
        let replaced = drive.commit_version("bkt", "key", failed.clone()).await.unwrap();
        let newer = test_version_with_file(&drive, 4).await;
        drive.commit_version("bkt", "key", newer.clone()).await.unwrap();
        drive.restore_version("bkt", "key", failed.version_id, replaced.previous, true).await.unwrap();
        assert_eq!(drive.latest_version("bkt", "key").await.unwrap().as_ref(), Some(&newer));

        // Undoing a completion keeps the data referenced: it belongs to the upload's parts.
        let completed = test_version_with_file(&drive, 5).await;
        drive.commit_version("bkt", "parts", completed.clone()).await.unwrap();
        drive.restore_version("bkt", "parts", completed.version_id, None, false).await.unwrap();
        assert_eq!(drive.latest_version("bkt", "parts").await.unwrap(), None);
        let data_id = completed.parts[0].data_id;
        assert!(drive.read_shard(data_id, 0, TEST_FRAMES.len()).await.is_ok());
        assert!(drive.inner.db.get(meta::data_ref_key(data_id)).unwrap().is_some(), "still referenced");
    }

    #[test]
    fn overwrites_keep_one_null_version() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path(), false).unwrap();
        for mod_time_ns in 1..=50 {
            drive.inner.commit_version("bkt", "key", &meta::test_record(mod_time_ns)).unwrap();
        }
        let versions = drive.inner.scan::<VersionRecord>(&meta::versions_prefix("bkt", "key")).unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].1.mod_time_ns, 50);
    }
}
