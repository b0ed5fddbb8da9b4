//! The bucket configuration store: one record per bucket holding its sub-resources
//! (versioning, tags, CORS, encryption, policy, and the slots of those still to come), written with quorum on
//! every drive of every set through [`crate::commit`], read under quorum, and cached in the
//! process with a generation that no acknowledged change can outrun.
//!
//! Records are immutable like versions: each change adds a record under
//! `C bucket 0x00 !stamp`, the newest committed stamp is the configuration, and older records
//! are removed in the background once the change is acknowledged
//! (docs/adr/0008-bucket-configuration-and-versioning.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::cleanup;
use crate::commit;
use crate::drive::DriveOp;
use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use crate::quorum::Answer;
use crate::set::ErasureSet;
use crate::stamp::Stamp;
use crate::store::ObjectStore;

/// How long a cached bucket is trusted without asking the drives. Changes made through this
/// process invalidate the cache at once (by generation); the bound covers changes made through
/// other gateways sharing the drives.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// Versioning state of a bucket, once configured (a bucket that never had it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersioningStatus {
    /// Every write makes a new version with its own id.
    Enabled,
    /// Writes replace the null version; versions made while enabled stay.
    Suspended,
}

/// One CORS rule, as PutBucketCors stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// Optional rule id.
    pub id: Option<String>,
    /// Origins allowed, each with at most one `*` wildcard.
    pub allowed_origins: Vec<String>,
    /// Methods allowed: GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for, each with at most one `*` wildcard.
    pub allowed_headers: Vec<String>,
    /// Response headers browsers may expose to scripts.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    pub max_age_seconds: Option<i32>,
}

/// Default encryption of new objects (PutBucketEncryption): the slot the SSE work fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEncryption {
    /// `AES256` or `aws:kms`.
    pub algorithm: String,
    /// The KMS key, for `aws:kms`.
    pub kms_key_id: Option<String>,
    /// Whether S3 Bucket Keys are enabled.
    pub bucket_key_enabled: bool,
}

/// Object ownership (PutBucketOwnershipControls): who owns the objects written to a bucket, and
/// whether ACLs apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs disabled, the bucket owner owns every object: AWS's default for new buckets.
    #[default]
    BucketOwnerEnforced,
    /// The bucket owner owns objects written with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    /// The writer owns the objects it writes.
    ObjectWriter,
    /// No ownership controls (DeleteBucketOwnershipControls): ACLs apply and the writer owns
    /// what it writes, as with `ObjectWriter`.
    Deleted,
}

/// A bucket's configuration: every sub-resource, `None` where it was never set (or was
/// deleted). Further sub-resources (lifecycle, notification, replication, object lock)
/// are added as fields with serde defaults, which records written before them read as unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketConfig {
    /// Orders a bucket's configuration records: the newest committed one applies.
    pub stamp: Stamp,
    /// `created_ns` of the bucket the record belongs to: a record left behind on a drive that
    /// missed a DeleteBucket never applies to a bucket created again under the same name.
    pub bucket_created_ns: i64,
    /// Versioning.
    #[serde(default)]
    pub versioning: Option<VersioningStatus>,
    /// Bucket tags (PutBucketTagging).
    #[serde(default)]
    pub tags: Option<Vec<(String, String)>>,
    /// CORS rules (PutBucketCors).
    #[serde(default)]
    pub cors: Option<Vec<CorsRule>>,
    /// Default encryption (PutBucketEncryption).
    #[serde(default)]
    pub encryption: Option<BucketEncryption>,
    /// The bucket policy (PutBucketPolicy), as the JSON text the client sent, validated by
    /// the gateway before it is stored.
    #[serde(default)]
    pub policy: Option<String>,
    /// Object ownership; records written before it was stored read as AWS's default.
    #[serde(default)]
    pub ownership: ObjectOwnership,
    /// The bucket's owner and ACL (CreateBucket, PutBucketAcl); unset, the owner alone has
    /// FULL_CONTROL.
    #[serde(default)]
    pub acl: Option<Acl>,
}

impl BucketConfig {
    /// Whether new writes make versions with ids.
    pub fn versioning_enabled(&self) -> bool {
        self.versioning == Some(VersioningStatus::Enabled)
    }
}

/// A bucket as requests see it: its record and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    /// The bucket record.
    pub record: BucketRecord,
    /// Its configuration.
    pub config: BucketConfig,
}

/// Buckets looked up recently. Every change made through this process bumps the generation
/// before and after it writes the drives, and a lookup caches what it read only if the
/// generation did not move meanwhile: once a change is acknowledged, no entry older than it
/// remains and none can be added.
#[derive(Debug, Default)]
pub(crate) struct BucketCache {
    generation: AtomicU64,
    entries: RwLock<HashMap<String, (BucketState, Instant)>>,
}

impl BucketCache {
    /// The cached state of `name`, if fresh.
    pub(crate) fn get(&self, name: &str) -> Option<BucketState> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(name).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(state, _)| state.clone())
    }

    /// The generation to pass to [`BucketCache::insert`] for a lookup starting now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches what a lookup that started at `generation` read, unless a change began since.
    pub(crate) fn insert(&self, state: BucketState, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(state.record.name.clone(), (state, Instant::now()));
        }
    }

    /// Forgets `name` and turns away lookups in flight: called before and after every change.
    pub(crate) fn invalidate(&self, name: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(name);
    }
}

/// The configuration one set agrees on for `bucket`: the newest record of this incarnation
/// held by enough drives that it may have met the write quorum (default when none).
pub(crate) async fn resolve(set: &ErasureSet, bucket: &BucketRecord) -> Result<BucketConfig> {
    let results = set.on_all(|drive| drive.bucket_configs(&bucket.name)).await;
    let answers = set.list_answers(results);
    let unknown = answers.iter().filter(|a| matches!(a, Answer::Unknown)).count();
    set.quorum.check_read("get bucket configuration", answers.len() - unknown)?;
    let mut held: Vec<(BucketConfig, usize)> = Vec::new();
    for answer in answers {
        let Answer::Found(configs) = answer else { continue };
        for config in configs.into_iter().filter(|c| c.bucket_created_ns == bucket.created_ns) {
            match held.iter_mut().find(|(c, _)| c.stamp == config.stamp) {
                Some((_, holders)) => *holders += 1,
                None => held.push((config, 1)),
            }
        }
    }
    held.sort_by_key(|held| std::cmp::Reverse(held.0.stamp));
    let committed = held.into_iter().find(|(_, holders)| set.quorum.may_be_committed(*holders, unknown));
    Ok(committed
        .map(|(config, _)| config)
        .unwrap_or_else(|| BucketConfig { bucket_created_ns: bucket.created_ns, ..BucketConfig::default() }))
}

impl ObjectStore {
    /// The bucket's record and configuration (cached), or [`StorageError::NoSuchBucket`].
    pub async fn bucket_state(&self, name: &str) -> Result<BucketState> {
        if let Some(state) = self.bucket_cache().get(name) {
            return Ok(state);
        }
        self.bucket_state_on_drives(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.to_owned()))
    }

    /// The bucket's configuration (cached).
    pub async fn bucket_config(&self, name: &str) -> Result<BucketConfig> {
        Ok(self.bucket_state(name).await?.config)
    }

    /// Reads a bucket from the drives, bypassing the cache, and caches what it found.
    pub(crate) async fn bucket_state_on_drives(&self, name: &str) -> Result<Option<BucketState>> {
        let generation = self.bucket_cache().generation();
        let Some((set, record)) = self.find_bucket_record(name).await? else { return Ok(None) };
        let config = resolve(set, &record).await?;
        let state = BucketState { record, config };
        self.bucket_cache().insert(state.clone(), generation);
        Ok(Some(state))
    }

    /// Changes a bucket's configuration: `change` edits the current one, and the result is
    /// written to every drive of every set, acknowledged only when each set's write quorum
    /// took it. Changes through this store take turns, so none is lost to a concurrent one.
    pub async fn update_bucket_config(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketConfig) -> Result<()>,
    ) -> Result<BucketConfig> {
        let _turn = self.config_turn().lock().await;
        let state = self.bucket_state_on_drives(name).await?.ok_or_else(|| StorageError::NoSuchBucket(name.into()))?;
        let mut config = state.config;
        change(&mut config)?;
        config.stamp = self.clock().next();
        config.bucket_created_ns = state.record.created_ns;
        self.bucket_cache().invalidate(name);
        let written = write_everywhere(self.sets(), name, &config).await;
        self.bucket_cache().invalidate(name);
        written.map(|()| config)
    }
}

/// Adds `config` on every drive of every set; short of a write quorum in any set, removes it
/// again from the drives that took it.
async fn write_everywhere(sets: &[Arc<ErasureSet>], bucket: &str, config: &BucketConfig) -> Result<()> {
    let add = DriveOp::AddBucketConfig { config: config.clone() };
    let tallies = join_all(sets.iter().map(|set| {
        let ops = vec![Some(add.clone()); set.drives.len()];
        commit::apply(set, bucket, "", ops, "add_bucket_config")
    }))
    .await;
    let short = sets.iter().zip(&tallies).find(|(set, tally)| tally.applied.len() < set.quorum.write);
    let Some((short_set, short_tally)) = short else {
        for set in sets {
            let cleanup = DriveOp::SupersedeBucketConfigs { through: config.stamp };
            cleanup::schedule(set, bucket, "", (0..set.drives.len()).collect(), cleanup);
        }
        return Ok(());
    };
    let total = short_set.drives.len();
    let error = if short_tally.missing > total - short_set.quorum.write {
        StorageError::NoSuchBucket(bucket.to_owned())
    } else {
        StorageError::QuorumLost {
            op: "put bucket configuration",
            needed: short_set.quorum.write,
            online: short_tally.applied.len(),
        }
    };
    let undo = DriveOp::RemoveBucketConfig { stamp: config.stamp };
    join_all(sets.iter().zip(&tallies).map(|(set, tally)| {
        let ops = (0..set.drives.len()).map(|i| tally.applied.contains(&i).then(|| undo.clone())).collect();
        commit::apply(set, bucket, "", ops, "remove_bucket_config")
    }))
    .await;
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, created_ns: i64) -> BucketState {
        let record = BucketRecord { name: name.into(), created_ns };
        BucketState { record, config: BucketConfig { bucket_created_ns: created_ns, ..BucketConfig::default() } }
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_cached() {
        let cache = BucketCache::default();
        let before = cache.generation();
        cache.invalidate("b");
        cache.insert(state("b", 1), before);
        assert_eq!(cache.get("b"), None, "the lookup started before the change");
        cache.insert(state("b", 1), cache.generation());
        assert!(cache.get("b").is_some());
    }

    #[test]
    fn a_change_removes_what_was_cached_before_it_finished() {
        let cache = BucketCache::default();
        // A lookup that started before the change and finished while it ran...
        let lookup = cache.generation();
        cache.invalidate("b");
        let during = cache.generation();
        cache.insert(state("b", 1), during);
        // ...is gone once the change is acknowledged (its second invalidation).
        cache.invalidate("b");
        assert_eq!(cache.get("b"), None);
        cache.insert(state("b", 1), lookup);
        assert_eq!(cache.get("b"), None);
    }
}
