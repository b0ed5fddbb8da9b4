//! S3 Bucket Keys: SSE-KMS writes that enable them share one data key per bucket and KMS key
//! for [`BUCKET_KEY_LIFETIME`], so the KMS sees one data-key request per bucket, key and period
//! instead of one per object. Sharing is safe under the package format (ADR 0009): every piece
//! derives its own key from a fresh random salt, and its packages are bound to their bucket,
//! object, part and upload.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sovereign_kms_client::{DataKey, Kms, KmsError};
// Tokio's clock, so that tests can move past a period with `tokio::time::advance`.
use tokio::time::Instant;

/// How long one bucket key seals new objects before the KMS is asked for the next.
pub const BUCKET_KEY_LIFETIME: Duration = Duration::from_secs(300);

/// The current bucket key of each (bucket, KMS key), with the end of its period.
#[derive(Debug, Default)]
pub struct BucketKeys {
    keys: Mutex<HashMap<(String, String), (DataKey, Instant)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BucketKeys {
    /// The data key for a new object of `bucket` sealed under `key_id`: the bucket key of the
    /// current period, asked of `kms` when there is none. Two writes that miss at once may
    /// both ask; the later key then serves the rest of the period.
    pub async fn data_key(&self, kms: &dyn Kms, bucket: &str, key_id: &str) -> Result<DataKey, KmsError> {
        let id = (bucket.to_owned(), key_id.to_owned());
        if let Some((key, _)) = lock(&self.keys).get(&id).filter(|(_, until)| *until > Instant::now()) {
            return Ok(key.clone());
        }
        let key = kms.generate_data_key(key_id).await?;
        let now = Instant::now();
        let mut keys = lock(&self.keys);
        keys.retain(|_, (_, until)| *until > now);
        keys.insert(id, (key.clone(), now + BUCKET_KEY_LIFETIME));
        Ok(key)
    }
}
