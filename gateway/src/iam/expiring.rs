//! The one kind of cache the IAM keeps: a map whose entries expire a fixed time after they
//! were inserted and which never holds more than a fixed number of them, so that neither a
//! flood of distinct keys nor a quiet gateway keeps anything (resolved secrets above all) in
//! memory longer or in greater number than configured. Expired entries go on every insert and
//! on the periodic [`ExpiringMap::spawn_sweeper`] task, without waiting for a lookup.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Entries every IAM cache holds at most.
pub const MAX_CACHE_ENTRIES: usize = 10_000;

/// An entry and when it was inserted, with the sequence number of that insertion so that the
/// age queue can tell a re-inserted key from the entry it once held.
#[derive(Debug)]
struct Entry<V> {
    value: V,
    inserted: Instant,
    sequence: u64,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// Insertions oldest first; since every entry lives equally long, also expiries in order.
    /// Items whose sequence no longer matches their key's entry are stale and skipped.
    ages: VecDeque<(K, u64)>,
    next_sequence: u64,
}

/// A map of at most `capacity` entries, each forgotten `ttl` after its insertion.
#[derive(Debug)]
pub struct ExpiringMap<K, V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> ExpiringMap<K, V> {
    /// An empty map of entries that live `ttl`, `capacity` of them at most (at least one).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let inner = Inner { entries: HashMap::new(), ages: VecDeque::new(), next_sequence: 0 };
        Self { ttl, capacity: capacity.max(1), inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` unless it expired.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let inner = self.lock();
        inner.entries.get(key).filter(|e| e.inserted.elapsed() < self.ttl).map(|e| e.value.clone())
    }

    /// Inserts `value` at `key` if `keep()` still holds once the map is locked (so that a
    /// caller's invalidation cannot slip between its check and the insertion), evicting the
    /// oldest entry when the map is full. True when inserted.
    pub fn insert_if(&self, key: K, value: V, keep: impl FnOnce() -> bool) -> bool {
        let mut inner = self.lock();
        if !keep() {
            return false;
        }
        self.insert_locked(&mut inner, key, value);
        true
    }

    /// Inserts `value` at `key` unless `key` holds an entry that has not expired: true when
    /// inserted (a throttle: once per TTL per key).
    pub fn insert_new(&self, key: K, value: V) -> bool {
        let mut inner = self.lock();
        if inner.entries.get(&key).is_some_and(|e| e.inserted.elapsed() < self.ttl) {
            return false;
        }
        self.insert_locked(&mut inner, key, value);
        true
    }

    /// Inserts `value` at `key`.
    #[cfg(test)]
    pub fn insert(&self, key: K, value: V) {
        self.insert_if(key, value, || true);
    }

    fn insert_locked(&self, inner: &mut Inner<K, V>, key: K, value: V) {
        let now = Instant::now();
        Self::drop_expired(inner, self.ttl, now);
        if !inner.entries.contains_key(&key) {
            while inner.entries.len() >= self.capacity {
                if !Self::evict_oldest(inner) {
                    break;
                }
            }
        }
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner.entries.insert(key.clone(), Entry { value, inserted: now, sequence });
        inner.ages.push_back((key, sequence));
        // Re-insertions leave stale items behind; keep the queue proportional to the map.
        if inner.ages.len() > 2 * self.capacity {
            let Inner { entries, ages, .. } = inner;
            ages.retain(|(key, sequence)| entries.get(key).is_some_and(|e| e.sequence == *sequence));
        }
    }

    /// Forgets `key`.
    pub fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.lock().entries.remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.ages.clear();
    }

    /// Forgets the entries that expired.
    pub fn sweep(&self) {
        Self::drop_expired(&mut self.lock(), self.ttl, Instant::now());
    }

    /// Entries held, expired or not (what the bound and the sweep are about).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the expired entries from the front of the age queue.
    fn drop_expired(inner: &mut Inner<K, V>, ttl: Duration, now: Instant) {
        while let Some((key, sequence)) = inner.ages.front() {
            match inner.entries.get(key) {
                Some(entry) if entry.sequence == *sequence => {
                    if now.duration_since(entry.inserted) < ttl {
                        return;
                    }
                    inner.entries.remove(key);
                }
                // Stale: the key was removed or re-inserted since.
                _ => {}
            }
            inner.ages.pop_front();
        }
    }

    /// Removes the oldest live entry; false when there is none.
    fn evict_oldest(inner: &mut Inner<K, V>) -> bool {
        while let Some((key, sequence)) = inner.ages.pop_front() {
            if inner.entries.get(&key).is_some_and(|e| e.sequence == sequence) {
                inner.entries.remove(&key);
                return true;
            }
        }
        false
    }
}

impl<K, V> ExpiringMap<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Sweeps `map` every `period` in a background task (on the current tokio runtime) until
    /// the map is dropped, so that expired entries go even when nothing looks them up.
    pub fn spawn_sweeper(map: &Arc<Self>, period: Duration) {
        let map: Weak<Self> = Arc::downgrade(map);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match map.upgrade() {
                    Some(map) => map.sweep(),
                    None => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(200);

    #[test]
    fn never_holds_more_than_its_capacity_and_evicts_the_oldest() {
        let map = ExpiringMap::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            map.insert(i, i);
            assert!(map.len() <= 3);
        }
        assert_eq!((map.get(&6), map.get(&7), map.get(&9)), (None, Some(7), Some(9)));
        map.insert(9, 90);
        assert_eq!((map.len(), map.get(&9), map.get(&7)), (3, Some(90), Some(7)), "a re-insert evicts nothing");
        for _ in 0..100 {
            map.insert(8, 8);
        }
        assert_eq!(map.len(), 3);
        assert!(map.lock().ages.len() <= 6, "stale queue items are compacted");
    }

    #[test]
    fn entries_expire_and_a_refused_condition_inserts_nothing() {
        let map = ExpiringMap::new(TTL, 10);
        assert!(!map.insert_if("k", 1, || false));
        assert!(map.is_empty());
        assert!(map.insert_new("k", 1));
        assert!(!map.insert_new("k", 2), "held until it expires");
        assert_eq!(map.get(&"k"), Some(1));
        std::thread::sleep(TTL);
        assert_eq!(map.get(&"k"), None, "expired, though still held");
        assert!(map.insert_new("k", 3), "expired, so new again");
        std::thread::sleep(TTL);
        map.insert("other", 2);
        assert_eq!(map.len(), 1, "an insert drops what expired");
    }

    #[tokio::test]
    async fn the_sweeper_forgets_expired_entries_without_lookups() {
        let map = Arc::new(ExpiringMap::new(TTL, 10));
        ExpiringMap::spawn_sweeper(&map, TTL / 4);
        map.insert("secret", "s3cr3t");
        tokio::time::sleep(TTL / 2).await;
        assert_eq!(map.len(), 1);
        tokio::time::sleep(TTL).await;
        assert_eq!(map.len(), 0, "swept");
    }
}
