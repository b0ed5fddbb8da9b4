//! A drive that is a local directory: RocksDB for records under `meta/`, shard files under
//! `data/`. Every call that may touch the disk runs on the blocking pool so the async runtime
//! never waits on it.

mod records;
mod shard;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use rocksdb::{Options, DB};
use uuid::Uuid;

use crate::bucket_config::BucketConfig;
use crate::drive::{
    Drive, DriveOp, DriveUsage, DriveVersions, ListEntry, ListQuery, Outcome, ShardReader, ShardWriter, VersionEntry,
    VersionsQuery,
};
use crate::error::{Result, StorageError};
use crate::meta::{self, BucketRecord, ChangeRecord, PartRecord, UploadRecord, VersionRecord};
use crate::metrics;
use crate::versions::VersionId;
use records::ChangeLog;
use shard::{sync_dir, LocalShardReader, LocalShardWriter};

const META_DIR: &str = "meta";
const DATA_DIR: &str = "data";
/// A shard file being written is named `<data id>.<boot>-<n>.partial` until it is complete and
/// synced; `<boot>` names the process that wrote it, so leftovers of earlier runs are known.
const PARTIAL_EXTENSION: &str = "partial";
/// Unreferenced complete shard files younger than this at start may belong to a write that is
/// about to commit; older ones are orphans.
const RECLAIM_MARGIN: Duration = Duration::from_secs(2);
/// How long the shard files of a removed version stay on disk, for reads that located it just
/// before its removal.
const RECLAIM_GRACE: Duration = Duration::from_secs(2);
/// Written and removed by every probe, to find drives that refuse writes.
const PROBE_FILE: &str = "probe.tmp";
/// Key locks are striped: read-modify-write commits of one key on one drive run one at a time.
const KEY_LOCK_STRIPES: usize = 256;

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
    /// Read-modify-write commits of a key (conditions, tags, cleanup) hold its stripe.
    key_locks: Vec<Mutex<()>>,
    /// Commits hold it shared; removing a bucket holds it exclusively, so no commit lands in a
    /// bucket between its emptiness check and its removal.
    buckets: RwLock<()>,
    changes: ChangeLog,
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
        if durable {
            // The directories `data/` and `meta/` must survive a power cut as well as the files
            // created in them: their names live in the root, which nothing else syncs.
            for dir in [data.as_path(), root] {
                sync_dir(dir).map_err(|e| StorageError::io(format!("sync {}", dir.display()), e))?;
            }
        }
        let changes = ChangeLog::open(&db)?;
        Ok(Self {
            label: root.display().to_string(),
            inner: Arc::new(Inner {
                root: root.to_owned(),
                db,
                durable,
                healing: AtomicBool::new(false),
                key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                buckets: RwLock::new(()),
                changes,
                boot: Uuid::new_v4().simple().to_string()[..8].to_owned(),
                staged: AtomicU64::new(0),
            }),
        })
    }

    /// A handle that tells when every holder of this drive has let go of it, and so its
    /// database is closed and its lock released.
    pub(crate) fn release_watch(&self) -> ReleaseWatch {
        ReleaseWatch(Arc::downgrade(&self.inner))
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

    /// Removes the shard files among `released` that no record references any more, after a
    /// grace period: a GET that located a superseded version just before its removal opens its
    /// files within moments. After a crash, the next start's orphan reclaim removes them.
    fn reclaim_later(&self, released: Vec<Uuid>) {
        if released.is_empty() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(RECLAIM_GRACE).await;
            let reclaimed = tokio::task::spawn_blocking(move || inner.reclaim(&released)).await;
            if let Err(e) = reclaimed {
                tracing::warn!(error = %e, "shard reclaim task failed");
            }
        });
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

/// See [`LocalDrive::release_watch`].
pub(crate) struct ReleaseWatch(Weak<Inner>);

impl ReleaseWatch {
    pub(crate) fn released(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl Inner {
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

    /// Removes shard files whose last reference went in a batch that is now durable.
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

    /// Creates the fan-out directory of a shard file; durably, so the file's rename into it
    /// cannot be lost with the directory.
    fn create_fanout_dir(&self, partial: &Path) -> io::Result<()> {
        let Some(dir) = partial.parent() else { return Ok(()) };
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        if self.durable {
            sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(())
    }

    /// Removes staged files of earlier runs, and complete shard files that no record references
    /// and that were written more than [`RECLAIM_MARGIN`] before `started`. A drive's records
    /// keep every version until a cleanup that follows an acknowledged write removes it, so an
    /// unreferenced file here was never part of an acknowledged version on this drive.
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
                            Ok(data_id) => self.is_referenced(data_id)?,
                            Err(_) => true,
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

#[async_trait]
impl Drive for LocalDrive {
    fn label(&self) -> &str {
        &self.label
    }

    fn is_healing(&self) -> bool {
        self.inner.healing.load(Ordering::Relaxed)
    }

    /// The drive is online when its format file is there, RocksDB answers, and a small file can
    /// be written to it: a full or read-only filesystem takes the drive out of readiness.
    async fn probe(&self) -> Result<()> {
        self.blocking(|inner| {
            let format = inner.root.join(crate::format::FORMAT_FILE);
            fs::metadata(&format).map_err(|e| StorageError::io(format!("stat {}", format.display()), e))?;
            inner.db.get_pinned(meta::bucket_prefix())?;
            let probe = inner.root.join(PROBE_FILE);
            let written = fs::write(&probe, b"probe").and_then(|()| fs::remove_file(&probe));
            written.map_err(|e| StorageError::io(format!("write {}", probe.display()), e))
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

    async fn bucket_configs(&self, bucket: &str) -> Result<Vec<BucketConfig>> {
        let prefix = meta::bucket_config_prefix(bucket);
        self.blocking(move |inner| Ok(inner.scan(&prefix)?.into_iter().map(|(_, c)| c).collect())).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.blocking(|inner| Ok(inner.scan(&meta::bucket_prefix())?.into_iter().map(|(_, r)| r).collect())).await
    }

    async fn fence_bucket(&self, name: &str, created_ns: i64) -> Result<()> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.fence_bucket(&name, created_ns)).await
    }

    async fn restore_bucket(&self, record: BucketRecord) -> Result<()> {
        self.blocking(move |inner| inner.restore_bucket(&record)).await
    }

    async fn purge_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        let released = self.blocking(move |inner| inner.purge_bucket(&name)).await?;
        self.reclaim_later(released);
        Ok(())
    }

    async fn versions(&self, bucket: &str, key: &str, limit: usize) -> Result<DriveVersions> {
        // Hot records are answered in place: a trip through the blocking pool costs more than
        // the lookup itself.
        if let Some(found) = self.inner.versions_cached(bucket, key, limit)? {
            return Ok(found);
        }
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.versions(&bucket, &key, limit)).await
    }

    async fn version(&self, bucket: &str, key: &str, which: VersionId) -> Result<Option<VersionRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.version(&bucket, &key, which)).await
    }

    async fn list_versions(&self, bucket: &str, query: &VersionsQuery) -> Result<Vec<VersionEntry>> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.blocking(move |inner| inner.list_versions(&bucket, &query)).await
    }

    async fn commit(&self, bucket: &str, key: &str, op: DriveOp) -> Result<Outcome> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let (outcome, released) = self.blocking(move |inner| inner.commit(&bucket, &key, op)).await?;
        self.reclaim_later(released);
        Ok(outcome)
    }

    async fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.blocking(move |inner| inner.list_latest(&bucket, &query)).await
    }

    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.blocking(move |inner| inner.changes_since(after, limit)).await
    }

    async fn trim_changes(&self, through: u64) -> Result<()> {
        self.blocking(move |inner| inner.trim_changes(through)).await
    }

    async fn create_shard(&self, data_id: Uuid) -> Result<Box<dyn ShardWriter>> {
        let path = self.inner.shard_path(data_id);
        let partial = self.inner.partial_path(data_id);
        let durable = self.inner.durable;
        let inner = Arc::clone(&self.inner);
        let file = tokio::task::spawn_blocking({
            let partial = partial.clone();
            move || {
                inner.create_fanout_dir(&partial)?;
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

    async fn open_shard(&self, data_id: Uuid) -> Result<Arc<dyn ShardReader>> {
        let path = self.inner.shard_path(data_id);
        let started = Instant::now();
        let file = tokio::task::spawn_blocking({
            let path = path.clone();
            move || File::open(&path)
        })
        .await?
        .map_err(|e| StorageError::io(format!("open {}", path.display()), e))?;
        metrics::observe(|m| &m.shard_read, &self.label, started.elapsed().as_secs_f64());
        Ok(Arc::new(LocalShardReader { file: Arc::new(file), path, label: self.label.clone() }))
    }

    async fn discard_shard(&self, data_id: Uuid) -> Result<()> {
        self.blocking(move |inner| {
            if !inner.is_referenced(data_id)? {
                inner.remove_shards(&[data_id]);
            }
            Ok(())
        })
        .await
    }

    async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Option<UploadRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |inner| inner.get(&meta::upload_key(&bucket, &key, upload_id))).await
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Uuid)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>> {
        let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |inner| inner.list_uploads(&bucket, &prefix, after, limit)).await
    }

    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.blocking(move |inner| {
            Ok(inner.scan(&meta::parts_prefix(upload_id))?.into_iter().map(|(_, r)| r).collect())
        })
        .await
    }
}

/// The bytes of every shard file tests write.
#[cfg(test)]
pub(crate) const TEST_FRAMES: &[u8] = b"frames";

/// Writes [`TEST_FRAMES`] as the shard file of a new data piece on `drive`, for tests.
#[cfg(test)]
pub(crate) async fn test_data_part(drive: &LocalDrive, number: i32) -> crate::meta::DataPart {
    let data_id = Uuid::new_v4();
    let mut writer = drive.create_shard(data_id).await.expect("create test shard");
    writer.write(bytes::Bytes::from_static(TEST_FRAMES)).await.expect("write test shard");
    writer.finish().await.expect("finish test shard");
    crate::meta::DataPart { number, size: TEST_FRAMES.len() as u64, data_id, etag: String::new(), checksum: None }
}

/// A null version whose data is one shard file on `drive`, for tests.
#[cfg(test)]
pub(crate) async fn test_version_with_file(drive: &LocalDrive, mod_time_ns: i64) -> crate::meta::VersionRecord {
    crate::meta::VersionRecord { parts: vec![test_data_part(drive, 1).await], ..meta::test_record(mod_time_ns) }
}

/// Whether `drive` still has the shard file of `data_id`, for tests.
#[cfg(test)]
pub(crate) fn test_has_shard(drive: &LocalDrive, data_id: Uuid) -> bool {
    drive.inner.shard_path(data_id).exists()
}

#[cfg(test)]
mod tests;
