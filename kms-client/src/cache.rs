//! A bounded, TTL-limited cache of unsealed data keys in front of a [`Kms`], so reading a hot
//! object is not a KMS round trip per GET. Keys are held at most `ttl` (a sweeper drops expired
//! ones even when nothing reads them) and at most `capacity` at once; a dropped key's memory is
//! zeroed ([`PlainKey`]). Capacity 0 turns the cache off. Only unsealing is cached: new data
//! keys, rewraps and health checks always reach the KMS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
// Tokio's clock, so that tests can move time with `tokio::time::advance`.
use tokio::time::Instant;

use crate::{DataKey, Kms, PlainKey, Result};

/// Shortest pause between two sweeps of expired keys.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

struct Entry {
    key: PlainKey,
    expires: Instant,
}

/// Cached keys by (master key id, sealed data key).
#[derive(Default)]
struct Entries(HashMap<(String, String), Entry>);

impl Entries {
    fn purge_expired(&mut self, now: Instant) {
        self.0.retain(|_, entry| entry.expires > now);
    }

    fn insert(&mut self, id: (String, String), entry: Entry, capacity: usize) {
        self.purge_expired(Instant::now());
        while self.0.len() >= capacity {
            let oldest = self.0.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone());
            match oldest {
                Some(oldest) => self.0.remove(&oldest),
                None => break,
            };
        }
        self.0.insert(id, entry);
    }
}

/// A [`Kms`] whose unsealed data keys are cached.
pub struct CachedKms {
    inner: Arc<dyn Kms>,
    entries: Arc<Mutex<Entries>>,
    capacity: usize,
    ttl: Duration,
}

impl std::fmt::Debug for CachedKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKms")
            .field("inner", &self.inner)
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn lock(entries: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CachedKms {
    /// Caches up to `capacity` keys of `inner` for `ttl` each. Must run inside a Tokio runtime
    /// (the sweeper is a task, which ends when the cache is dropped).
    pub fn new(inner: Arc<dyn Kms>, capacity: usize, ttl: Duration) -> Self {
        let entries = Arc::new(Mutex::new(Entries::default()));
        if capacity > 0 {
            tokio::spawn(sweep(Arc::downgrade(&entries), (ttl / 2).max(MIN_SWEEP_INTERVAL)));
        }
        Self { inner, entries, capacity, ttl }
    }

    /// Keys cached now (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        lock(&self.entries).0.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops expired keys every `interval` until the cache is gone.
async fn sweep(entries: Weak<Mutex<Entries>>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(entries) = entries.upgrade() else { return };
        lock(&entries).purge_expired(Instant::now());
    }
}

#[async_trait]
impl Kms for CachedKms {
    async fn generate_data_key(&self, key_id: &str) -> Result<DataKey> {
        self.inner.generate_data_key(key_id).await
    }

    async fn decrypt(&self, key_id: &str, sealed: &str) -> Result<PlainKey> {
        if self.capacity == 0 {
            return self.inner.decrypt(key_id, sealed).await;
        }
        let id = (key_id.to_owned(), sealed.to_owned());
        if let Some(entry) = lock(&self.entries).0.get(&id).filter(|e| e.expires > Instant::now()) {
            return Ok(entry.key.clone());
        }
        let key = self.inner.decrypt(key_id, sealed).await?;
        let entry = Entry { key: key.clone(), expires: Instant::now() + self.ttl };
        lock(&self.entries).insert(id, entry, self.capacity);
        Ok(key)
    }

    async fn rewrap(&self, key_id: &str, sealed: &str) -> Result<String> {
        self.inner.rewrap(key_id, sealed).await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    fn provider(&self) -> &'static str {
        self.inner.provider()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts unseals; every sealed key unseals to its first byte repeated.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl Kms for Counting {
        async fn generate_data_key(&self, _: &str) -> Result<DataKey> {
            Ok(DataKey { plaintext: PlainKey::new([1; 32]), sealed: "1".into() })
        }
        async fn decrypt(&self, _: &str, sealed: &str) -> Result<PlainKey> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(PlainKey::new([sealed.as_bytes()[0]; 32]))
        }
        async fn rewrap(&self, _: &str, sealed: &str) -> Result<String> {
            Ok(sealed.to_owned())
        }
        async fn health(&self) -> Result<()> {
            Ok(())
        }
        fn provider(&self) -> &'static str {
            "counting"
        }
    }

    #[tokio::test]
    async fn hits_are_served_from_memory_and_bounded() {
        let inner = Arc::new(Counting::default());
        let cache = CachedKms::new(inner.clone(), 2, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(cache.decrypt("k", "a").await.unwrap().bytes(), &[b'a'; 32]);
        }
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        cache.decrypt("k", "b").await.unwrap();
        cache.decrypt("k", "c").await.unwrap();
        assert_eq!(cache.len(), 2, "capacity bounds the cache");
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_swept_without_reads() {
        let inner = Arc::new(Counting::default());
        let ttl = Duration::from_millis(200);
        let cache = CachedKms::new(inner.clone(), 8, ttl);
        cache.decrypt("k", "a").await.unwrap();
        assert_eq!(cache.len(), 1);
        // Just before expiry the key is still held; one sweep interval after it, it is gone.
        tokio::time::advance(ttl - Duration::from_millis(1)).await;
        assert_eq!(cache.len(), 1, "kept until it expires");
        tokio::time::advance(MIN_SWEEP_INTERVAL + Duration::from_millis(1)).await;
        // Let the woken sweeper task run (paused time advances no further while it does).
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert!(cache.is_empty(), "the sweeper dropped the expired key");
        cache.decrypt("k", "a").await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn capacity_zero_turns_it_off() {
        let inner = Arc::new(Counting::default());
        let cache = CachedKms::new(inner.clone(), 0, Duration::from_secs(60));
        cache.decrypt("k", "a").await.unwrap();
        cache.decrypt("k", "a").await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        assert!(cache.is_empty());
    }
}
