//! Where IAM entities live: one small JSON object each in the reserved system bucket
//! [`SYSTEM_BUCKET`], written and read through the object store like any object (quorum
//! writes, healing, the change log), so every gateway over the same drives sees the same
//! identities (docs/adr/0011-iam-store.md). Updates are compare-and-set on the object's ETag
//! (the If-Match of a conditional PUT), retried on conflict, so concurrent updates of one
//! entity never lose one another. Reads are cached for [`CACHE_TTL`]: a change made through
//! this process is seen at once, one made through another gateway within the TTL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::drive::{Condition, ListEntry};
use storage::put::BodyStream;
use storage::{ObjectMeta, ObjectStore, StorageError};

use crate::iam::entities::Revisioned;
use crate::iam::expiring::{ExpiringMap, MAX_CACHE_ENTRIES};
use crate::iam::IamError;

/// The system bucket. Its name starts with a dot, which no S3 bucket name may (s3s refuses
/// it as InvalidBucketName on every request path), and ListBuckets does not show it.
pub const SYSTEM_BUCKET: &str = ".sovereign-s3";
/// How long a read is trusted without asking the drives: the bound on how late a change made
/// through another gateway is seen (the same as the bucket configuration's).
pub const CACHE_TTL: Duration = storage::bucket_config::CACHE_TTL;
/// The largest entity document read or written.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Compare-and-set attempts before an update gives up (each loses only to a write that
/// succeeded, so this many concurrent writers of one entity always get through).
const CAS_ATTEMPTS: usize = 64;
/// Upper bound of the random pause between attempts, so that losers do not retry in step.
const CAS_BACKOFF_MAX_MS: u64 = 20;
/// Keys listed per page.
const LIST_PAGE: usize = 1000;

/// A document and the ETag of the object that holds it.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The document.
    pub value: T,
    /// The object's ETag, for a compare-and-set.
    pub etag: String,
}

/// A cached read: the object's bytes and ETag, or its absence.
type CachedRead = Option<(Bytes, String)>;

/// Reads recently made. Every write bumps the generation before and after it reaches the
/// drives, and a read is cached only if the generation did not move meanwhile, so once a
/// write through this process is acknowledged no older read of anything remains cached.
#[derive(Debug)]
struct Cache {
    generation: AtomicU64,
    reads: Arc<ExpiringMap<String, CachedRead>>,
    lists: Arc<ExpiringMap<String, Arc<Vec<String>>>>,
}

impl Cache {
    /// An empty cache whose expired entries a background task sweeps.
    fn new() -> Self {
        let reads = Arc::new(ExpiringMap::new(CACHE_TTL, MAX_CACHE_ENTRIES));
        let lists = Arc::new(ExpiringMap::new(CACHE_TTL, MAX_CACHE_ENTRIES));
        ExpiringMap::spawn_sweeper(&reads, CACHE_TTL);
        ExpiringMap::spawn_sweeper(&lists, CACHE_TTL);
        Self { generation: AtomicU64::new(0), reads, lists }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn keep_read(&self, key: &str, read: CachedRead, generation: u64) {
        self.reads.insert_if(key.to_owned(), read, || self.generation() == generation);
    }

    fn keep_list(&self, prefix: &str, keys: Arc<Vec<String>>, generation: u64) {
        self.lists.insert_if(prefix.to_owned(), keys, || self.generation() == generation);
    }

    /// Forgets `key` and every listing, and turns away reads in flight.
    fn invalidate(&self, key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.reads.remove(key);
        self.lists.clear();
    }

    /// Forgets everything (tests of the TTL, and callers that must read the drives).
    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.reads.clear();
        self.lists.clear();
    }
}

/// JSON documents in the system bucket.
#[derive(Debug)]
pub struct DocumentStore {
    store: Arc<ObjectStore>,
    cache: Cache,
    /// Objects read and listing pages fetched from the drives, for tests that a path reads
    /// nothing.
    drive_reads: AtomicU64,
}

fn storage_error(e: StorageError) -> IamError {
    IamError::Storage(e.to_string())
}

fn body_of(bytes: Bytes) -> BodyStream {
    Box::pin(stream::iter([Ok(bytes)]))
}

impl DocumentStore {
    /// The documents of `store`, creating the system bucket if it does not exist yet.
    pub async fn open(store: Arc<ObjectStore>) -> Result<Self, IamError> {
        match store.create_bucket(SYSTEM_BUCKET).await {
            Ok(_) | Err(StorageError::BucketExists(_)) => {}
            Err(e) => return Err(IamError::Storage(format!("cannot create the system bucket: {e}"))),
        }
        Ok(Self { store, cache: Cache::new(), drive_reads: AtomicU64::new(0) })
    }

    /// Forgets every cached read: the next reads go to the drives.
    pub fn forget_cached(&self) {
        self.cache.clear();
    }

    /// The document at `key`, from the cache when it is fresh.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>, IamError> {
        let read = match self.cache.reads.get(key) {
            Some(read) => read,
            None => {
                let generation = self.cache.generation();
                let read = self.read_drives(key).await?;
                self.cache.keep_read(key, read.clone(), generation);
                read
            }
        };
        read.map(|(bytes, etag)| decode(key, &bytes).map(|value| Versioned { value, etag })).transpose()
    }

    /// The document at `key` as the drives hold it now.
    pub async fn get_fresh<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>, IamError> {
        let read = self.read_drives(key).await?;
        read.map(|(bytes, etag)| decode(key, &bytes).map(|value| Versioned { value, etag })).transpose()
    }

    async fn read_drives(&self, key: &str) -> Result<CachedRead, IamError> {
        self.drive_reads.fetch_add(1, Ordering::Relaxed);
        let handle = match self.store.get_object(SYSTEM_BUCKET, key).await {
            Ok(handle) => handle,
            Err(StorageError::NoSuchKey { .. } | StorageError::DeleteMarker { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        let etag = handle.record().etag.clone();
        if handle.record().size > MAX_DOCUMENT_BYTES as u64 {
            return Err(IamError::Internal(format!("the IAM document {key} is too large")));
        }
        let mut body = handle.read(None).await.map_err(storage_error)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(storage_error)?);
        }
        Ok(Some((Bytes::from(bytes), etag)))
    }

    /// Writes `value` at `key` when `condition` holds; `Ok(false)` when it did not. The cache
    /// is invalidated around the write, so this process sees it at once.
    async fn write<T: Serialize>(&self, key: &str, value: &T, condition: Condition) -> Result<bool, IamError> {
        self.cache.invalidate(key);
        let result = self.write_drives(key, value, condition).await;
        self.cache.invalidate(key);
        result
    }

    /// Writes `value` at `key` when `condition` holds, leaving the cache alone.
    async fn write_drives<T: Serialize>(&self, key: &str, value: &T, condition: Condition) -> Result<bool, IamError> {
        let bytes = serde_json::to_vec(value).map_err(|e| IamError::Internal(format!("encoding {key}: {e}")))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(IamError::Invalid(format!("the document would exceed {MAX_DOCUMENT_BYTES} bytes")));
        }
        let size = bytes.len() as u64;
        let result = async {
            let staged = self.store.stage(SYSTEM_BUCKET, key, body_of(Bytes::from(bytes)), Some(size)).await?;
            self.store.commit_object(SYSTEM_BUCKET, key, staged, ObjectMeta::default(), condition).await
        }
        .await;
        match result {
            Ok(_) => Ok(true),
            // A false condition, or a race that another writer won on some drives (and which
            // may have left no winner at all): the caller reads again and decides.
            Err(StorageError::PreconditionFailed | StorageError::ConditionalConflict) => Ok(false),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// Creates the document at `key`; AlreadyExists when there is one.
    pub async fn create<T: Serialize>(&self, key: &str, value: &T, what: &str) -> Result<(), IamError> {
        for _ in 0..CAS_ATTEMPTS {
            if self.write(key, value, Condition::Absent).await? {
                return Ok(());
            }
            // Refused: a document exists, or a racing create split the drives and none won.
            if self.get_fresh::<serde_json::Value>(key).await?.is_some() {
                return Err(IamError::AlreadyExists(format!("{what} already exists")));
            }
            backoff().await;
        }
        Err(IamError::Busy(format!("{what} is being created by others; try again")))
    }

    /// Writes the document at `key` whatever is there, without invalidating any cached read or
    /// listing: for bookkeeping written often (last-used times) that no decision reads, so that
    /// it never turns the caches into a drive read per request. A cached read of `key` itself
    /// may show the previous value for up to [`CACHE_TTL`].
    pub async fn put_uncached<T: Serialize>(&self, key: &str, value: &T) -> Result<(), IamError> {
        self.write_drives(key, value, Condition::None).await.map(drop)
    }

    /// Applies `change` to the document at `key` and writes the result only if the document
    /// did not change since it was read (compare-and-set on its ETag), reading and applying
    /// again after a conflict. NotFound (with `what`) when there is no document.
    pub async fn update<T, F>(&self, key: &str, what: &str, mut change: F) -> Result<T, IamError>
    where
        T: Serialize + DeserializeOwned + Revisioned,
        F: FnMut(&mut T) -> Result<(), IamError>,
    {
        for _ in 0..CAS_ATTEMPTS {
            let Some(Versioned { mut value, etag }) = self.get_fresh::<T>(key).await? else {
                return Err(IamError::NotFound(format!("{what} does not exist")));
            };
            change(&mut value)?;
            value.bump();
            if self.write(key, &value, Condition::ETag(etag)).await? {
                return Ok(value);
            }
            backoff().await;
        }
        Err(IamError::Busy(format!("{what} is being changed by others; try again")))
    }

    /// Deletes the document at `key`; NotFound (with `what`) when there is none.
    pub async fn delete(&self, key: &str, what: &str) -> Result<(), IamError> {
        if self.get_fresh::<serde_json::Value>(key).await?.is_none() {
            return Err(IamError::NotFound(format!("{what} does not exist")));
        }
        self.cache.invalidate(key);
        let result = self.store.delete_object(SYSTEM_BUCKET, key, None).await;
        self.cache.invalidate(key);
        result.map(drop).map_err(storage_error)
    }

    /// The names under `prefix` (the keys without it), in order, from the cache when fresh.
    pub async fn names(&self, prefix: &str) -> Result<Arc<Vec<String>>, IamError> {
        if let Some(names) = self.cache.lists.get(prefix) {
            return Ok(names);
        }
        let generation = self.cache.generation();
        let names = Arc::new(self.names_fresh(prefix).await?);
        self.cache.keep_list(prefix, Arc::clone(&names), generation);
        Ok(names)
    }

    /// The names under `prefix` as the drives list them now.
    pub async fn names_fresh(&self, prefix: &str) -> Result<Vec<String>, IamError> {
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        loop {
            self.drive_reads.fetch_add(1, Ordering::Relaxed);
            let page = self
                .store
                .list_objects(SYSTEM_BUCKET, prefix, None, after.as_deref(), LIST_PAGE)
                .await
                .map_err(storage_error)?;
            for entry in &page.entries {
                if let ListEntry::Object { key, .. } = entry {
                    if let Some(name) = key.strip_prefix(prefix) {
                        names.push(name.to_owned());
                    }
                    after = Some(key.clone());
                }
            }
            if !page.truncated || after.is_none() {
                break;
            }
        }
        Ok(names)
    }

    /// Objects read and listing pages fetched from the drives so far.
    #[cfg(test)]
    pub(crate) fn drive_reads(&self) -> u64 {
        self.drive_reads.load(Ordering::Relaxed)
    }

    /// Entries the read and listing caches hold.
    #[cfg(test)]
    pub(crate) fn cached_entries(&self) -> usize {
        self.cache.reads.len() + self.cache.lists.len()
    }
}

/// A random pause between compare-and-set attempts, so that losers do not retry in step.
async fn backoff() {
    let pause = rand::thread_rng().gen_range(1..=CAS_BACKOFF_MAX_MS);
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, IamError> {
    serde_json::from_slice(bytes).map_err(|e| IamError::Internal(format!("the IAM document {key} does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    //! Two [`DocumentStore`]s over one [`ObjectStore`] stand for two gateways (see
    //! [`crate::iam::testing`]).

    use std::time::Instant;

    use serde::Deserialize;

    use super::*;
    use crate::iam::testing::object_store as store;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Doc {
        members: Vec<String>,
        revision: u64,
    }

    impl Revisioned for Doc {
        fn bump(&mut self) {
            self.revision += 1;
        }
    }

    #[tokio::test]
    async fn another_gateway_sees_a_change_within_the_ttl_and_this_one_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let objects = store(&dir).await;
        let here = DocumentStore::open(Arc::clone(&objects)).await.unwrap();
        let there = DocumentStore::open(Arc::clone(&objects)).await.unwrap();
        let doc = Doc { members: vec!["a".into()], revision: 0 };
        here.create("k", &doc, "doc").await.unwrap();
        assert_eq!(there.get::<Doc>("k").await.unwrap().unwrap().value, doc, "read through, then cached");
        here.update::<Doc, _>("k", "doc", |d| {
            d.members.push("b".into());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(here.get::<Doc>("k").await.unwrap().unwrap().value.members, ["a", "b"], "at once here");
        let started = Instant::now();
        assert_eq!(there.get::<Doc>("k").await.unwrap().unwrap().value.members, ["a"], "cached there");
        loop {
            let seen = there.get::<Doc>("k").await.unwrap().unwrap().value.members;
            if seen == ["a", "b"] {
                break;
            }
            assert!(started.elapsed() < CACHE_TTL + Duration::from_secs(1), "not seen within the TTL");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() + Duration::from_millis(100) >= CACHE_TTL / 2, "the cache did serve reads");
        here.delete("k", "doc").await.unwrap();
        assert!(here.get::<Doc>("k").await.unwrap().is_none());
        assert!(matches!(here.delete("k", "doc").await, Err(IamError::NotFound(_))));
        assert!(matches!(here.update::<Doc, _>("k", "doc", |_| Ok(())).await, Err(IamError::NotFound(_))));
    }

    // Several worker threads: on one thread the updates would run one after another and race
    // nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_from_two_gateways_lose_none() {
        let dir = tempfile::tempdir().unwrap();
        let objects = store(&dir).await;
        let gateways =
            [DocumentStore::open(Arc::clone(&objects)).await.unwrap(), DocumentStore::open(objects).await.unwrap()];
        let gateways = Arc::new(gateways);
        gateways[0].create("g", &Doc { members: Vec::new(), revision: 0 }, "group").await.unwrap();
        assert!(matches!(
            gateways[1].create("g", &Doc { members: Vec::new(), revision: 0 }, "group").await,
            Err(IamError::AlreadyExists(_))
        ));
        let tasks = (0..8).map(|i| {
            let gateways = Arc::clone(&gateways);
            tokio::spawn(async move {
                gateways[i % 2]
                    .update::<Doc, _>("g", "group", |d| {
                        d.members.push(format!("m{i}"));
                        Ok(())
                    })
                    .await
                    .unwrap();
            })
        });
        for task in tasks.collect::<Vec<_>>() {
            task.await.unwrap();
        }
        let mut members = gateways[1].get_fresh::<Doc>("g").await.unwrap().unwrap().value.members;
        members.sort();
        assert_eq!(members, (0..8).map(|i| format!("m{i}")).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn bookkeeping_writes_leave_the_caches_alone() {
        let dir = tempfile::tempdir().unwrap();
        let docs = DocumentStore::open(store(&dir).await).await.unwrap();
        docs.create("iam/users/u", &Doc { members: Vec::new(), revision: 0 }, "doc").await.unwrap();
        assert_eq!(*docs.names("iam/users/").await.unwrap(), ["u"]);
        assert!(docs.get::<Doc>("iam/users/u").await.unwrap().is_some());
        let reads = docs.drive_reads();
        docs.put_uncached("iam/last-used/u", &Doc { members: Vec::new(), revision: 0 }).await.unwrap();
        assert_eq!(*docs.names("iam/users/").await.unwrap(), ["u"]);
        assert!(docs.get::<Doc>("iam/users/u").await.unwrap().is_some());
        assert_eq!(docs.drive_reads(), reads, "the cached listing and read were not invalidated");
        assert!(docs.get_fresh::<Doc>("iam/last-used/u").await.unwrap().is_some(), "written");
    }
}
