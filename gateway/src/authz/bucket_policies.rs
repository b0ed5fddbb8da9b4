//! Bucket policies as the access step reads them: parsed once per configuration record (the
//! text is stored in the bucket's configuration, validated when it was put), not per request.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use policy::{Kind, Policy};
use s3s::S3Result;
use storage::stamp::Stamp;
use storage::{ObjectStore, StorageError};

use crate::error::OrS3;

/// Where the access step finds a bucket's policy.
#[async_trait::async_trait]
pub trait BucketPolicies: Send + Sync + 'static {
    /// The policy of `bucket`; `None` if it has none or the bucket does not exist.
    async fn policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>>;
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
}
