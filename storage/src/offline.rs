//! A drive that could not be opened at start-up. It stands in its set's position so that the
//! set keeps its shape: every call fails, which quorum logic counts as "unknown", the way it
//! counts a drive that stops answering. The drive is opened again at the next start.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::bucket_config::BucketConfig;
use crate::drive::{
    Drive, DriveOp, DriveUsage, DriveVersions, ListEntry, ListQuery, Outcome, ShardReader, ShardWriter, VersionEntry,
    VersionsQuery,
};
use crate::error::{Result, StorageError};
use crate::meta::{BucketRecord, ChangeRecord, PartRecord, UploadRecord, VersionRecord};
use crate::versions::VersionId;

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

    async fn bucket_configs(&self, _: &str) -> Result<Vec<BucketConfig>> {
        self.offline()
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.offline()
    }

    async fn fence_bucket(&self, _: &str, _: i64) -> Result<()> {
        self.offline()
    }

    async fn restore_bucket(&self, _: BucketRecord) -> Result<()> {
        self.offline()
    }

    async fn purge_bucket(&self, _: &str) -> Result<()> {
        self.offline()
    }

    async fn versions(&self, _: &str, _: &str, _: usize) -> Result<DriveVersions> {
        self.offline()
    }

    async fn version(&self, _: &str, _: &str, _: VersionId) -> Result<Option<VersionRecord>> {
        self.offline()
    }

    async fn list_versions(&self, _: &str, _: &VersionsQuery) -> Result<Vec<VersionEntry>> {
        self.offline()
    }

    async fn commit(&self, _: &str, _: &str, _: DriveOp) -> Result<Outcome> {
        self.offline()
    }

    async fn list_latest(&self, _: &str, _: &ListQuery) -> Result<Vec<ListEntry>> {
        self.offline()
    }

    async fn changes_since(&self, _: u64, _: usize) -> Result<Vec<ChangeRecord>> {
        self.offline()
    }

    async fn trim_changes(&self, _: u64) -> Result<()> {
        self.offline()
    }

    async fn create_shard(&self, _: Uuid) -> Result<Box<dyn ShardWriter>> {
        self.offline()
    }

    async fn open_shard(&self, _: Uuid) -> Result<Arc<dyn ShardReader>> {
        self.offline()
    }

    async fn discard_shard(&self, _: Uuid) -> Result<()> {
        self.offline()
    }

    async fn upload(&self, _: &str, _: &str, _: Uuid) -> Result<Option<UploadRecord>> {
        self.offline()
    }

    async fn list_uploads(&self, _: &str, _: &str, _: Option<(String, Uuid)>, _: usize) -> Result<Vec<UploadRecord>> {
        self.offline()
    }

    async fn list_parts(&self, _: Uuid) -> Result<Vec<PartRecord>> {
        self.offline()
    }
}
