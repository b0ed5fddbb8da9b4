//! Bucket policies as the access step reads them: parsed once per configuration record (the
//! text is stored in the bucket's configuration, validated when it was put), not per request;
//! and the ACLs and tags it reads only when a decision needs them.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use policy::{Kind, Policy};
use s3s::S3Result;
use storage::acl::Acl;
use storage::meta::VersionRecord;
use storage::stamp::Stamp;
use storage::versions::VersionId;
use storage::{ObjectStore, StorageError};

use crate::acl;
use crate::error::OrS3;

/// What the access step reads from the store: a bucket's policy, the tags of an existing
/// object for `s3:ExistingObjectTag` conditions, and the ACLs of buckets and objects.
#[async_trait::async_trait]
pub trait BucketPolicies: Send + Sync + 'static {
    /// The policy of `bucket`; `None` if it has none or the bucket does not exist.
    async fn policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>>;

    /// The tags of `key` (of its version `version_id`, else the current one); `None` when there
    /// is no such object (or the version is a delete marker).
    async fn object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<Option<Vec<(String, String)>>>;

    /// The ACL of `bucket` as the access step judges it: [`BucketAcl::Disabled`] when its
    /// object ownership disables ACLs or there is no such bucket.
    async fn bucket_acl(&self, bucket: &str) -> S3Result<BucketAcl>;

    /// The stored ACL of `key` (of its version `version_id`, else the current one); `None`
    /// when it has none (the bucket owner's alone) or there is no such object.
    async fn object_acl(&self, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<Option<Acl>>;
}

/// A bucket's ACL, for the access step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketAcl {
    /// ACLs grant nothing in the bucket.
    Disabled,
    /// ACLs apply; the bucket's own is this (`None`: the owner's alone).
    Enabled(Option<Acl>),
}

/// The policies stored in the buckets' configuration, parsed once per configuration record.
#[derive(Debug)]
pub struct StoredPolicies {
    store: Arc<ObjectStore>,
    /// Per bucket: the configuration record (incarnation and stamp) the policy was parsed from.
    parsed: RwLock<HashMap<String, Parsed>>,
}

#[derive(Debug, Clone)]
struct Parsed {
    bucket_created_ns: i64,
    stamp: Stamp,
    policy: Option<Arc<Policy>>,
}

impl StoredPolicies {
    /// Reads policies from `store`'s bucket configuration (itself cached by the store).
    pub fn new(store: Arc<ObjectStore>) -> Self {
        Self { store, parsed: RwLock::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl BucketPolicies for StoredPolicies {
    async fn policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>> {
        let config = match self.store.bucket_config(bucket).await {
            Ok(config) => config,
            Err(StorageError::NoSuchBucket(_)) => {
                self.parsed.write().unwrap_or_else(PoisonError::into_inner).remove(bucket);
                return Ok(None);
            }
            Err(e) => return Err(e).or_s3(),
        };
        let same_record = |p: &Parsed| p.stamp == config.stamp && p.bucket_created_ns == config.bucket_created_ns;
        {
            let parsed = self.parsed.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = parsed.get(bucket).filter(|p| same_record(p)) {
                return Ok(p.policy.clone());
            }
        }
        let policy = match config.policy.as_deref() {
            None => None,
            Some(text) => match Policy::parse(text, Kind::Bucket(bucket)) {
                Ok(policy) => Some(Arc::new(policy)),
                // PutBucketPolicy validated it; a stored policy that no longer parses denies
                // everything it would have allowed and refuses the request.
                Err(e) => {
                    tracing::error!(bucket, error = %e, "stored bucket policy does not parse");
                    return Err(crate::authz::access_denied());
                }
            },
        };
        let entry = Parsed { bucket_created_ns: config.bucket_created_ns, stamp: config.stamp, policy: policy.clone() };
        self.parsed.write().unwrap_or_else(PoisonError::into_inner).insert(bucket.to_owned(), entry);
        Ok(policy)
    }

    async fn object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<Option<Vec<(String, String)>>> {
        Ok(self.version(bucket, key, version_id).await?.map(|record| record.tags))
    }

    async fn bucket_acl(&self, bucket: &str) -> S3Result<BucketAcl> {
        match self.store.bucket_config(bucket).await {
            Ok(config) if acl::enabled(config.ownership) => Ok(BucketAcl::Enabled(config.acl)),
            Ok(_) | Err(StorageError::NoSuchBucket(_)) => Ok(BucketAcl::Disabled),
            Err(e) => Err(e).or_s3(),
        }
    }

    async fn object_acl(&self, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<Option<Acl>> {
        Ok(self.version(bucket, key, version_id).await?.and_then(|record| record.acl))
    }
}

impl StoredPolicies {
    /// The record of `key` (of its version `version_id`, else the current one); `None` when
    /// there is no such object (or the version is a delete marker).
    async fn version(&self, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<Option<VersionRecord>> {
        let which = match version_id {
            // A malformed id names no object: its request fails later with the operation's error.
            Some(id) => match VersionId::parse(id) {
                Ok(which) => Some(which),
                Err(_) => return Ok(None),
            },
            None => None,
        };
        match self.store.get_version(bucket, key, which).await {
            Ok(handle) => Ok(Some(handle.record().clone())),
            Err(
                StorageError::NoSuchKey { .. }
                | StorageError::NoSuchVersion { .. }
                | StorageError::DeleteMarker { .. }
                | StorageError::NoSuchBucket(_),
            ) => Ok(None),
            Err(e) => Err(e).or_s3(),
        }
    }
}
