//! The `Drive` trait: everything the object layer asks of one drive. A local directory
//! implements it today ([`crate::local::LocalDrive`]); a remote storage node will implement it
//! over the network, so calls are coarse-grained and carry whole records.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::acl::Acl;
use crate::bucket_config::BucketConfig;
use crate::error::Result;
use crate::meta::{BucketRecord, ChangeRecord, PartRecord, UploadRecord, VersionRecord};
use crate::stamp::Stamp;
use crate::versions::VersionId;

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
    /// A bucket's configuration records, newest first (one, or a few while a change is being
    /// acknowledged).
    async fn bucket_configs(&self, bucket: &str) -> Result<Vec<BucketConfig>>;
    /// Lists all bucket records in name order.
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>>;
    /// Removes the record of the bucket created at `created_ns` (no other incarnation of the
    /// name), the first step of DeleteBucket: commits to the bucket on this drive that are in
    /// progress finish first, and those after it find no bucket ([`Outcome::Missing`]). The
    /// bucket's records stay until [`Drive::purge_bucket`], so the bucket comes back whole with
    /// [`Drive::restore_bucket`].
    async fn fence_bucket(&self, name: &str, created_ns: i64) -> Result<()>;
    /// Puts a fenced bucket's record back, unless the drive holds a record of the name again (a
    /// bucket created meanwhile, which must not be reverted).
    async fn restore_bucket(&self, record: BucketRecord) -> Result<()>;
    /// Removes every version, upload, part and configuration record of a fenced bucket (the
    /// debris of writes that never reached a quorum) and, after a grace period, their shard
    /// files. Does nothing while the drive holds the bucket's record.
    async fn purge_bucket(&self, name: &str) -> Result<()>;

    /// The newest versions of a key, newest first: at most `limit` of them.
    async fn versions(&self, bucket: &str, key: &str, limit: usize) -> Result<DriveVersions>;
    /// One version of a key: the one with this stamp and id (one seek), or the newest null
    /// version.
    async fn version(&self, bucket: &str, key: &str, which: VersionId) -> Result<Option<VersionRecord>>;
    /// Lists versions (without inline data) and common prefixes in key order, newest first
    /// within a key.
    async fn list_versions(&self, bucket: &str, query: &VersionsQuery) -> Result<Vec<VersionEntry>>;
    /// Applies one mutation atomically, with its change-log entry in the same durable batch.
    /// This is the drive's only write path for objects, parts and uploads.
    async fn commit(&self, bucket: &str, key: &str, op: DriveOp) -> Result<Outcome>;
    /// Lists the newest versions of each key, or common prefixes, in key order.
    async fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>>;

    /// Change-log entries after `after`, in order, at most `limit`; only entries below every
    /// write still in flight are returned, so a reader that resumes from the last `seq` it saw
    /// misses nothing.
    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>>;
    /// Removes change-log entries up to and including `through`.
    async fn trim_changes(&self, through: u64) -> Result<()>;

    /// Opens a staged shard file for `data_id`; it becomes visible only on commit.
    async fn create_shard(&self, data_id: Uuid) -> Result<Box<dyn ShardWriter>>;
    /// Opens a committed shard file for reading. The handle keeps reading the file it opened
    /// even if a newer version supersedes it and its file is reclaimed meanwhile.
    async fn open_shard(&self, data_id: Uuid) -> Result<Arc<dyn ShardReader>>;
    /// Removes a staged shard file that no record references (idempotent).
    async fn discard_shard(&self, data_id: Uuid) -> Result<()>;

    /// Reads an upload record.
    async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Option<UploadRecord>>;
    /// Lists the open uploads of a bucket whose keys start with `prefix`, strictly after
    /// `after` (key, upload id), in key then id order, at most `limit`.
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Uuid)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>>;
    /// Lists the part records of an upload in part-number order, newest first within a number.
    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>>;
}

/// A key's newest versions on one drive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriveVersions {
    /// Newest first.
    pub versions: Vec<VersionRecord>,
    /// False when the drive holds older versions than those listed.
    pub complete: bool,
}

/// What a write asks of the key's current version, checked on each drive in the same step as
/// the write (compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always write.
    None,
    /// If-None-Match `*`: only when the key has no current version (or it is a delete marker).
    Absent,
    /// If-Match: only when the current version's ETag is this.
    ETag(String),
}

/// One mutation of one drive. Every object, part and upload write goes through
/// [`Drive::commit`] with one of these, so each lands in one atomic batch with its change-log
/// entry.
#[derive(Debug, Clone, PartialEq)]
pub enum DriveOp {
    /// Adds a version (PUT, copy, completed upload, delete marker) when `condition` holds on
    /// this drive. Nothing is removed: the version it supersedes stays until
    /// [`DriveOp::Supersede`] once the write is acknowledged.
    AddVersion {
        /// The version as this drive holds it.
        record: VersionRecord,
        /// Checked against this drive's newest version in the same step.
        condition: Condition,
    },
    /// Writes a version this drive lacks or holds damaged (heal, read repair); idempotent.
    RepairVersion {
        /// The version as this drive should hold it.
        record: VersionRecord,
    },
    /// Replaces the tags of one version.
    SetTags {
        /// The version.
        version_id: Uuid,
        /// The new tags.
        tags: Vec<(String, String)>,
    },
    /// Replaces the owner and ACL of one version.
    SetAcl {
        /// The version.
        version_id: Uuid,
        /// The new owner and ACL.
        acl: Acl,
    },
    /// Replaces the sealed data key of one encrypted version (a rewrap after the KMS key was
    /// rotated) when the drive holds `from`; holding `to` already is success, anything else is
    /// refused, so two rewraps racing on one version cannot leave a drive with a key neither
    /// chose.
    SetSealedKey {
        /// The version.
        version_id: Uuid,
        /// The sealed key the rewrap read.
        from: String,
        /// The same data key sealed under the KMS key's latest version.
        to: String,
    },
    /// Once the version `version_id` (stamp `through`) is acknowledged on a write quorum:
    /// removes the null versions older than it, and the version itself when it is a null
    /// delete marker and `remove_marker` (an unversioned bucket's delete). Idempotent, so a
    /// crash can repeat it.
    Supersede {
        /// The acknowledged version.
        version_id: Uuid,
        /// Its stamp.
        through: Stamp,
        /// Whether a null delete marker goes too (unversioned buckets keep none).
        remove_marker: bool,
    },
    /// Removes an acknowledged version or delete marker (DeleteObject with a version id).
    DeleteVersion {
        /// The version.
        version_id: Uuid,
        /// Its stamp, which places it.
        stamp: Stamp,
    },
    /// Adds a bucket configuration record (the bucket's newest committed one applies).
    AddBucketConfig {
        /// The whole configuration.
        config: BucketConfig,
    },
    /// Once a configuration is acknowledged: removes the bucket's older ones.
    SupersedeBucketConfigs {
        /// Stamp of the acknowledged configuration.
        through: Stamp,
    },
    /// Removes a configuration record that was never acknowledged.
    RemoveBucketConfig {
        /// Its stamp.
        stamp: Stamp,
    },
    /// Removes one version that was never acknowledged (a failed or conflicting write).
    RemoveVersion {
        /// The version.
        version_id: Uuid,
    },
    /// Stores a new upload record.
    CreateUpload {
        /// The upload.
        record: UploadRecord,
    },
    /// Adds a part record when its upload exists (a re-upload adds a newer one beside the old).
    AddPart {
        /// The upload.
        upload_id: Uuid,
        /// The part as this drive holds it.
        record: PartRecord,
    },
    /// Once a part is acknowledged: removes older uploads of the same part number.
    SupersedeParts {
        /// The upload.
        upload_id: Uuid,
        /// Part number.
        number: i32,
        /// Stamp of the acknowledged part.
        through: Stamp,
    },
    /// Removes a part record that was never acknowledged.
    RemovePart {
        /// The upload.
        upload_id: Uuid,
        /// Part number.
        number: i32,
        /// Stamp of the failed part.
        stamp: Stamp,
    },
    /// Removes an upload and its part records (abort, or once a completion is acknowledged).
    /// Shard files a version still names stay.
    RemoveUpload {
        /// The upload.
        upload_id: Uuid,
    },
}

/// What a drive did with a [`DriveOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and durable.
    Applied,
    /// Not applied: the condition did not hold on this drive.
    Refused,
    /// Not applied: the bucket (or the upload a part or completion needs) is not there.
    Missing,
}

/// Reads a committed shard file opened by [`Drive::open_shard`].
#[async_trait]
pub trait ShardReader: Send + Sync + Debug {
    /// Reads up to `len` bytes at `offset` (fewer at the end of the file).
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes>;
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

/// A ListObjectVersions request as each drive sees it.
#[derive(Debug, Clone, Default)]
pub struct VersionsQuery {
    /// Prefix, delimiter, limit, and the key marker as `start_after`.
    pub keys: ListQuery,
    /// With a key marker: start after this version of the marker's key (stamp and id) instead
    /// of after the whole key.
    pub after_version: Option<(Stamp, Uuid)>,
}

/// One entry of a versions listing.
// Listings are mostly made of the large variant: boxing it would add an allocation per entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum VersionEntry {
    /// One version or delete marker of a key.
    Version {
        /// Object key.
        key: String,
        /// The version (without inline data).
        record: VersionRecord,
    },
    /// A common prefix that rolls up keys.
    Prefix(String),
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    /// A key's newest versions (without inline data).
    Object {
        /// Object key.
        key: String,
        /// As a drive lists them: its newest versions, newest first. After resolution under
        /// quorum: the current version alone.
        versions: DriveVersions,
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
