//! Buckets: records kept on every drive of every set, looked up under quorum and cached in the
//! process with their configuration ([`crate::bucket_config`]). DeleteBucket fences the drives
//! before it decides, so an object committed while a bucket is being deleted either keeps the
//! bucket alive or is refused, and what is left of refused writes is purged: none survives in
//! a deleted bucket to reappear when the name is created again.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;

use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use crate::set::ErasureSet;
use crate::store::{now_ns, ObjectStore};
use crate::upload_list::{self, UploadQuery};

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

    /// Creates a bucket on every drive. Takes the turn DeleteBucket holds, so that in one
    /// process a bucket is never created between a deletion's fence and its decision.
    pub async fn create_bucket(&self, name: &str) -> Result<BucketRecord> {
        let _turn = self.config_turn().lock().await;
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

    /// Deletes an empty bucket, in three steps (docs/adr/0008-bucket-configuration-and-versioning.md):
    /// 1. fence: every drive removes the bucket's record, so no write can reach a quorum from
    ///    then on, and the writes in progress have landed or will fail;
    /// 2. decide on what the fenced drives hold: a version or upload that a read quorum holds
    ///    (an acknowledged write, or a racing one that got far enough to be seen) keeps the
    ///    bucket, whose record then goes back on the drives (BucketNotEmpty);
    /// 3. otherwise purge what is left: the debris of writes that never reached a quorum, which
    ///    no listing shows and which would otherwise block every later DeleteBucket.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let _turn = self.config_turn().lock().await;
        let state = self.bucket_state_on_drives(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.into()))?;
        if self.holds_data(name).await? {
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        self.bucket_cache().invalidate(name);
        let created_ns = state.record.created_ns;
        let mut fenced = Vec::new();
        for set in self.sets() {
            fenced.push(set.on_all(|drive| drive.fence_bucket(name, created_ns)).await);
        }
        let decided = self.decide_deletion(name, &fenced).await;
        if let Err(refusal) = decided {
            for (set, results) in self.sets().iter().zip(&fenced) {
                let restore = set.drives.iter().zip(results).filter(|(_, r)| r.is_ok());
                let restored = join_all(restore.map(|(drive, _)| drive.restore_bucket(state.record.clone()))).await;
                // Short of a write quorum the bucket would stay hidden with its objects: say
                // so (503) rather than BucketNotEmpty; the next request sees what quorum holds.
                set.quorum.check_write("restore bucket", ErasureSet::count_ok(&restored))?;
            }
            self.bucket_cache().invalidate(name);
            return Err(refusal);
        }
        for set in self.sets() {
            for (drive, purged) in set.drives.iter().zip(set.on_all(|drive| drive.purge_bucket(name)).await) {
                if let Err(e) = purged {
                    // Records left behind sit under no bucket record; the next DeleteBucket of
                    // the name purges them, and no quorum read shows them meanwhile.
                    tracing::warn!(drive = drive.label(), bucket = name, error = %e, "purging a deleted bucket failed");
                }
            }
        }
        // A lookup that ran during the removal may have cached the bucket again.
        self.bucket_cache().invalidate(name);
        Ok(())
    }

    /// Step 2 of [`ObjectStore::delete_bucket`]: the bucket may go if every set's write quorum
    /// was fenced and no read quorum holds a version or an upload.
    async fn decide_deletion(&self, name: &str, fenced: &[Vec<Result<()>>]) -> Result<()> {
        for (set, results) in self.sets().iter().zip(fenced) {
            set.quorum.check_write("delete bucket", ErasureSet::count_ok(results))?;
        }
        if self.holds_data(name).await? {
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        Ok(())
    }

    /// Whether a read quorum holds a version, delete marker or upload of the bucket.
    async fn holds_data(&self, name: &str) -> Result<bool> {
        Ok(self.holds_versions(name).await?
            || !upload_list::list_uploads(self.sets(), name, &UploadQuery::first(1)).await?.entries.is_empty())
    }
}
