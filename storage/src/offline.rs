//! A drive that could not be opened at start-up. It stands in its set's position so that the
//! set keeps its shape: every call fails, which quorum logic counts as "unknown", the way it
//! counts a drive that stops answering. The drive is opened again at the next start.

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::drive::{Drive, DriveUsage, ListEntry, ListQuery, Replaced, ShardWriter};
use crate::error::{Result, StorageError};
use crate::meta::{BucketRecord, PartRecord, UploadRecord, VersionRecord};

/// A drive that failed to open, with the reason.
#[derive(Debug)]
pub struct OfflineDrive {
    label: String,
    reason: String,
}

impl OfflineDrive {
    /// A stand-in for the drive at `label` that failed to open because of `reason`.
    pub fn new(label: String, reason: String) -> Self {
        Self { label, reason }
    }

    fn offline<T>(&self) -> Result<T> {
        Err(StorageError::DriveOffline { drive: self.label.clone(), reason: self.reason.clone() })
    }
}

#[async_trait]
impl Drive for OfflineDrive {
    fn label(&self) -> &str {
        &self.label
    }

    fn is_healing(&self) -> bool {
        false
    }

    async fn probe(&self) -> Result<()> {
        self.offline()
    }

    fn usage(&self) -> Option<DriveUsage> {
        None
    }

    async fn put_bucket(&self, _: BucketRecord) -> Result<()> {
        self.offline()
    }

    async fn bucket(&self, _: &str) -> Result<Option<BucketRecord>> {
        self.offline()
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.offline()
    }

    async fn delete_bucket(&self, _: &str) -> Result<()> {
        self.offline()
    }

    async fn bucket_is_empty(&self, _: &str) -> Result<bool> {
        self.offline()
    }

    async fn latest_version(&self, _: &str, _: &str) -> Result<Option<VersionRecord>> {
        self.offline()
    }

    async fn commit_version(&self, _: &str, _: &str, _: VersionRecord) -> Result<Replaced> {
        self.offline()
    }

    async fn repair_version(&self, _: &str, _: &str, _: VersionRecord) -> Result<bool> {
        self.offline()
    }

    async fn delete_version(&self, _: &str, _: &str, _: Uuid) -> Result<()> {
        self.offline()
    }

    async fn restore_version(&self, _: &str, _: &str, _: Uuid, _: Option<VersionRecord>, _: bool) -> Result<()> {
        self.offline()
    }

    async fn list_latest(&self, _: &str, _: &ListQuery) -> Result<Vec<ListEntry>> {
        self.offline()
    }

    async fn create_shard(&self, _: Uuid) -> Result<Box<dyn ShardWriter>> {
        self.offline()
    }

    async fn read_shard(&self, _: Uuid, _: u64, _: usize) -> Result<Bytes> {
        self.offline()
    }

    async fn discard_shard(&self, _: Uuid) -> Result<()> {
        self.offline()
    }

    async fn put_upload(&self, _: &str, _: UploadRecord) -> Result<()> {
        self.offline()
    }

    async fn upload(&self, _: &str, _: &str, _: Uuid) -> Result<Option<UploadRecord>> {
        self.offline()
    }

    async fn list_uploads(&self, _: &str, _: &str) -> Result<Vec<UploadRecord>> {
        self.offline()
    }

    async fn commit_part(&self, _: Uuid, _: PartRecord) -> Result<()> {
        self.offline()
    }

    async fn list_parts(&self, _: Uuid) -> Result<Vec<PartRecord>> {
        self.offline()
    }

    async fn remove_upload(&self, _: &str, _: &str, _: Uuid, _: Vec<Uuid>) -> Result<()> {
        self.offline()
    }
}
