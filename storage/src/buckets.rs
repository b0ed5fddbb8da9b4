//! Buckets: records kept on every drive of every set, looked up under quorum and cached in the
//! process with their configuration ([`crate::bucket_config`]). Removal is decided on each
//! drive under its bucket lock, so an object committed while a bucket is being deleted either
//! keeps the bucket alive or is refused: none survives in a deleted bucket to reappear when the
//! name is created again.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;

use crate::drive::DriveOp;
use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use crate::set::ErasureSet;
use crate::stamp::Stamp;
use crate::store::{now_ns, ObjectStore};
use crate::upload_list::UploadQuery;

impl ObjectStore {
    /// The bucket record some set agrees on (bucket records are kept on every drive), with
    /// that set.
    pub(crate) async fn find_bucket_record(&self, name: &str) -> Result<Option<(&Arc<ErasureSet>, BucketRecord)>> {
        for set in self.sets() {
            let results = set.on_all(|drive| drive.bucket(name)).await;
            let answers = set.list_answers(results.into_iter().map(|r| r.map(|b| b.into_iter().collect())).collect());
            let agreed = set.quorum.agreed_items(answers, |b: &BucketRecord| b.created_ns, "head bucket")?;
            if let Some((record, _)) = agreed.into_iter().max_by_key(|(record, _)| record.created_ns) {
                return Ok(Some((set, record)));
            }
        }
        Ok(None)
    }

    /// The bucket's record, or [`StorageError::NoSuchBucket`].
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        Ok(self.bucket_state(name).await?.record)
    }

    /// Creates a bucket on every drive.
    pub async fn create_bucket(&self, name: &str) -> Result<BucketRecord> {
        if self.find_bucket_record(name).await?.is_some() {
            return Err(StorageError::BucketExists(name.to_owned()));
        }
        let record = BucketRecord { name: name.to_owned(), created_ns: now_ns() };
        self.bucket_cache().invalidate(name);
        for set in self.sets() {
            let results = set.on_all(|drive| drive.put_bucket(record.clone())).await;
            set.quorum.check_write("create bucket", ErasureSet::count_ok(&results))?;
        }
        self.bucket_cache().invalidate(name);
        Ok(record)
    }

    /// All buckets in name order.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let mut listed: BTreeMap<String, BucketRecord> = BTreeMap::new();
        for set in self.sets() {
            let answers = set.list_answers(set.on_all(|drive| drive.list_buckets()).await);
            for (record, _) in set.quorum.agreed_items(answers, |b: &BucketRecord| b.name.clone(), "list buckets")? {
                listed.entry(record.name.clone()).or_insert(record);
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Deletes an empty bucket. Each drive removes its record only if it holds no object or
    /// upload of the bucket, under a lock its commits share; if some drive still holds one (a
    /// write that raced the delete), the drives that removed the record get it back and the
    /// bucket stays.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let _turn = self.config_turn().lock().await;
        let state = self.bucket_state_on_drives(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.into()))?;
        if self.holds_versions(name).await?
            || !self.list_uploads(name, &UploadQuery::first(1)).await?.entries.is_empty()
        {
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        self.bucket_cache().invalidate(name);
        let mut outcomes = Vec::new();
        for set in self.sets() {
            outcomes.push(set.on_all(|drive| drive.delete_bucket_if_empty(name)).await);
        }
        let refused = outcomes.iter().flatten().any(|r| matches!(r, Ok(false)));
        if refused {
            // The removal took the configuration with it: both come back.
            let config = DriveOp::AddBucketConfig { config: state.config.clone() };
            for (set, results) in self.sets().iter().zip(&outcomes) {
                let restore = set.drives.iter().zip(results).filter(|(_, r)| matches!(r, Ok(true)));
                join_all(restore.map(|(drive, _)| async {
                    drive.put_bucket(state.record.clone()).await?;
                    if state.config.stamp != Stamp::default() {
                        drive.commit(name, "", config.clone()).await?;
                    }
                    Ok::<_, StorageError>(())
                }))
                .await;
            }
            self.bucket_cache().invalidate(name);
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        for (set, results) in self.sets().iter().zip(&outcomes) {
            set.quorum.check_write("delete bucket", ErasureSet::count_ok(results))?;
        }
        // A lookup that ran during the removal may have cached the bucket again.
        self.bucket_cache().invalidate(name);
        Ok(())
    }
}
