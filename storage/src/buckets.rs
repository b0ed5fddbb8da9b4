//! Buckets: records kept on every drive of every set, looked up under quorum and cached in the
//! process. Removal is decided on each drive under its bucket lock, so an object committed
//! while a bucket is being deleted either keeps the bucket alive or is refused: none survives
//! in a deleted bucket to reappear when the name is created again.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use crate::set::ErasureSet;
use crate::store::{now_ns, ObjectStore};
use crate::upload_list::UploadQuery;

impl ObjectStore {
    /// Bucket records are kept on every drive; a bucket exists when some set agrees it does.
    async fn lookup_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let cached = self.bucket_cache().read().map(|b| b.get(name).cloned()).unwrap_or(None);
        if cached.is_some() {
            return Ok(cached);
        }
        self.lookup_bucket_on_drives(name).await
    }

    /// Looks a bucket up on the drives, caching it when found unless a bucket was deleted
    /// meanwhile (the lookup may have seen it before its deletion).
    async fn lookup_bucket_on_drives(&self, name: &str) -> Result<Option<BucketRecord>> {
        let epoch = self.bucket_epoch().load(std::sync::atomic::Ordering::SeqCst);
        let mut found = None;
        for set in self.sets() {
            let results = set.on_all(|drive| drive.bucket(name)).await;
            let answers = set.list_answers(results.into_iter().map(|r| r.map(|b| b.into_iter().collect())).collect());
            let agreed = set.quorum.agreed_items(answers, |b: &BucketRecord| b.name.clone(), "head bucket")?;
            if let Some((record, _)) = agreed.into_iter().next() {
                found = Some(record);
                break;
            }
        }
        if let (Some(record), Ok(mut cache)) = (&found, self.bucket_cache().write()) {
            if self.bucket_epoch().load(std::sync::atomic::Ordering::SeqCst) == epoch {
                cache.insert(name.to_owned(), record.clone());
            }
        }
        Ok(found)
    }

    /// The bucket's record, or [`StorageError::NoSuchBucket`].
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        self.lookup_bucket(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.to_owned()))
    }

    /// Creates a bucket on every drive.
    pub async fn create_bucket(&self, name: &str) -> Result<BucketRecord> {
        if self.lookup_bucket_on_drives(name).await?.is_some() {
            return Err(StorageError::BucketExists(name.to_owned()));
        }
        let record = BucketRecord { name: name.to_owned(), created_ns: now_ns() };
        for set in self.sets() {
            let results = set.on_all(|drive| drive.put_bucket(record.clone())).await;
            set.quorum.check_write("create bucket", ErasureSet::count_ok(&results))?;
        }
        if let Ok(mut cache) = self.bucket_cache().write() {
            cache.insert(name.to_owned(), record.clone());
        }
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
        let record = self.bucket(name).await?;
        let listing = self.list_objects(name, "", None, None, 1).await?;
        if !listing.entries.is_empty() || !self.list_uploads(name, &UploadQuery::first(1)).await?.entries.is_empty() {
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        self.bucket_epoch().fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut cache) = self.bucket_cache().write() {
            cache.remove(name);
        }
        let mut outcomes = Vec::new();
        for set in self.sets() {
            outcomes.push(set.on_all(|drive| drive.delete_bucket_if_empty(name)).await);
        }
        let refused = outcomes.iter().flatten().any(|r| matches!(r, Ok(false)));
        if refused {
            for (set, results) in self.sets().iter().zip(&outcomes) {
                let restore = set.drives.iter().zip(results).filter(|(_, r)| matches!(r, Ok(true)));
                join_all(restore.map(|(drive, _)| drive.put_bucket(record.clone()))).await;
            }
            return Err(StorageError::BucketNotEmpty(name.to_owned()));
        }
        for (set, results) in self.sets().iter().zip(&outcomes) {
            set.quorum.check_write("delete bucket", ErasureSet::count_ok(results))?;
        }
        // A lookup that ran during the removal may have cached the bucket again.
        self.bucket_epoch().fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut cache) = self.bucket_cache().write() {
            cache.remove(name);
        }
        Ok(())
    }
}
