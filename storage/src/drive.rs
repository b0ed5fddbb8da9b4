//! The `Drive` trait: everything the object layer asks of one drive. A local directory
//! implements it today ([`crate::local::LocalDrive`]); a remote storage node will implement it
//! over the network, so calls are coarse-grained and carry whole records.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::error::Result;
use crate::meta::{BucketRecord, PartRecord, UploadRecord, VersionRecord};

/// One drive of an erasure set.
#[async_trait]
pub trait Drive: Send + Sync + Debug {
    /// Human-readable location (path or endpoint) for logs and metrics.
    fn label(&self) -> &str;

    /// True while the drive was freshly formatted into an existing set: its "not found"
    /// answers do not count towards quorum until it has been healed.
    fn is_healing(&self) -> bool;

    /// Checks that the drive is present and answers (for readiness and metrics).
    async fn probe(&self) -> Result<()>;
    /// Capacity of the filesystem holding the drive, when known.
    fn usage(&self) -> Option<DriveUsage>;

    /// Stores a bucket record (idempotent).
    async fn put_bucket(&self, record: BucketRecord) -> Result<()>;
    /// Reads a bucket record.
    async fn bucket(&self, name: &str) -> Result<Option<BucketRecord>>;
    /// Lists all bucket records in name order.
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>>;
    /// Removes a bucket record (idempotent).
    async fn delete_bucket(&self, name: &str) -> Result<()>;
    /// True when the bucket has neither objects nor uploads on this drive.
    async fn bucket_is_empty(&self, name: &str) -> Result<bool>;

    /// Reads the newest version record of a key.
    async fn latest_version(&self, bucket: &str, key: &str) -> Result<Option<VersionRecord>>;
    /// Makes `record` durable as the newest version of the key. Staged shard files it names are
    /// promoted; a replaced null version is removed, but its shard files stay until the caller
    /// knows the write reached quorum: it then discards them, or else commits the previous
    /// version back.
    async fn commit_version(&self, bucket: &str, key: &str, record: VersionRecord) -> Result<Replaced>;
    /// Heal's variant of [`Drive::commit_version`]: commits `record` unless the drive already
    /// holds a different, newer version of the key (a write that raced the heal). Returns
    /// whether it committed.
    async fn repair_version(&self, bucket: &str, key: &str, record: VersionRecord) -> Result<bool>;
    /// Removes one version and reclaims its shard files (idempotent).
    async fn delete_version(&self, bucket: &str, key: &str, version_id: Uuid) -> Result<()>;
    /// Undoes a commit of the null version `failed` that missed quorum: if it is still the
    /// current null version, it is replaced by `previous` (or removed when there was none);
    /// if a newer write has replaced it since, nothing changes. With `release_data`, shard
    /// files only the failed version named are unreferenced and removed; without, they stay
    /// referenced (the parts of an upload that a retry may complete).
    async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        failed: Uuid,
        previous: Option<VersionRecord>,
        release_data: bool,
    ) -> Result<()>;
    /// Lists the newest version of each key, or common prefixes, in key order.
    async fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>>;

    /// Opens a staged shard file for `data_id`; it becomes visible only on commit.
    async fn create_shard(&self, data_id: Uuid) -> Result<Box<dyn ShardWriter>>;
    /// Reads `len` bytes at `offset` of a committed shard file.
    async fn read_shard(&self, data_id: Uuid, offset: u64, len: usize) -> Result<Bytes>;
    /// Removes a staged or unreferenced shard file (idempotent).
    async fn discard_shard(&self, data_id: Uuid) -> Result<()>;

    /// Stores an upload record.
    async fn put_upload(&self, bucket: &str, record: UploadRecord) -> Result<()>;
    /// Reads an upload record.
    async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Option<UploadRecord>>;
    /// Lists the uploads of a bucket whose keys start with `prefix`, in key then id order.
    async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadRecord>>;
    /// Makes a part durable, promoting its staged shard and reclaiming a replaced part.
    async fn commit_part(&self, upload_id: Uuid, record: PartRecord) -> Result<()>;
    /// Lists the parts of an upload in part-number order.
    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>>;
    /// Removes an upload and its parts (idempotent), reclaiming the parts' shard files except
    /// those in `keep` (the parts a completion assembled) and those a version of the key names.
    async fn remove_upload(&self, bucket: &str, key: &str, upload_id: Uuid, keep: Vec<Uuid>) -> Result<()>;
}

/// What a commit replaced on one drive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replaced {
    /// The null version the commit replaced, as this drive held it.
    pub previous: Option<VersionRecord>,
    /// Shard files of the replaced version that the new record does not name: unreferenced now,
    /// still on disk.
    pub unreferenced: Vec<Uuid>,
}

impl Replaced {
    /// What committing `record` in place of the `removed` versions leaves behind.
    pub fn of(removed: Vec<VersionRecord>, record: &VersionRecord) -> Self {
        let kept = |id: &Uuid| record.parts.iter().any(|p| p.data_id == *id);
        let unreferenced =
            removed.iter().flat_map(|r| r.parts.iter().map(|p| p.data_id)).filter(|id| !kept(id)).collect();
        Self { previous: removed.into_iter().next(), unreferenced }
    }
}

/// Capacity figures of a drive's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriveUsage {
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// Bytes available to the store.
    pub free_bytes: u64,
    /// Bytes in use (by anything on the filesystem).
    pub used_bytes: u64,
}

/// Receives the frames of one shard file, in order.
#[async_trait]
pub trait ShardWriter: Send {
    /// Appends frames to the staged shard file.
    async fn write(&mut self, frames: Bytes) -> Result<()>;
    /// Makes the staged file durable; it is still invisible until committed.
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// A listing request as each drive sees it.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys that start with this.
    pub prefix: String,
    /// Roll keys up into common prefixes at the first delimiter after `prefix`.
    pub delimiter: Option<String>,
    /// Only entries strictly after this key or common prefix.
    pub start_after: Option<String>,
    /// Return at most this many entries.
    pub limit: usize,
}

impl ListQuery {
    /// The common prefix that `name` rolls up into: `prefix` and what follows it up to and
    /// including the first delimiter. `None` for a name outside `prefix` or without a delimiter
    /// after it, which lists as itself.
    pub fn common_prefix<'a>(&self, name: &'a str) -> Option<&'a str> {
        let delimiter = self.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = name.strip_prefix(self.prefix.as_str())?;
        rest.find(delimiter).map(|at| &name[..self.prefix.len() + at + delimiter.len()])
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    /// The newest version of a key (without inline data).
    Object {
        /// Object key.
        key: String,
        /// Its newest version record.
        record: Box<VersionRecord>,
    },
    /// A common prefix that rolls up keys.
    Prefix(String),
}

impl ListEntry {
    /// The key or prefix, which orders entries.
    pub fn name(&self) -> &str {
        match self {
            Self::Object { key, .. } => key,
            Self::Prefix(prefix) => prefix,
        }
    }
}
