//! Rewrapping stored data keys after the KMS key that sealed them was rotated (issue 17).
//!
//! A walk visits every version of every bucket in (bucket, key, version) order, asks the KMS to
//! seal each SSE-S3 and SSE-KMS data key again under its master key's latest version, and
//! stores the result with a compare-and-set on every drive of the version's set
//! ([`ObjectStore::set_sealed_key`]). The data itself is not touched: the data key stays the
//! same, only its sealed form changes. Each call covers at most `limit` versions and returns a
//! cursor to go on from, so a bulk rewrap is resumable (by the same or another gateway) and
//! running it again over versions already rewrapped changes nothing. SSE-C keys are the
//! customer's and are never stored, so there is nothing to rewrap for them.
//!
//! A version counts as rewrapped only once every drive of its set holds the new sealed key: a
//! drive left with the old one could serve a read that fails once the old KMS key version is
//! retired (`min_decryption_version`). Such versions are reported, to be run again after heal.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sovereign_kms_client::{sealing_version, Kms, KmsError};
use storage::meta::VersionRecord;
use storage::versions::{ListedVersion, VersionId};
use storage::{ObjectStore, StorageError};

/// Why a rewrap page stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    /// The cursor is not one a rewrap handed out.
    #[error("invalid rewrap cursor")]
    InvalidCursor,
    /// The object layer failed (a listing short of quorum, a drive error).
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The KMS cannot be reached or did not answer: nothing more can be rewrapped until it is back.
    #[error("{0}")]
    Kms(KmsError),
}

/// One version the rewrap could not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewrapFailure {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Version id as S3 reports it (`null` for the null version).
    pub version_id: String,
    /// What went wrong.
    pub reason: String,
}

/// What one call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewrapPage {
    /// Versions and delete markers looked at.
    pub scanned: u64,
    /// Data keys now sealed under a newer master key version on every drive.
    pub rewrapped: u64,
    /// Data keys already sealed under their master key's latest version.
    pub current: u64,
    /// Versions left as they were, with the reason.
    pub failures: Vec<RewrapFailure>,
    /// Where the next call goes on; `None` once every bucket was walked.
    pub next: Option<String>,
}

/// The last version a page looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    bucket: String,
    key: String,
    version_id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        // Serializing three strings cannot fail.
        BASE64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<Self, RewrapError> {
        let bytes = BASE64.decode(text).map_err(|_| RewrapError::InvalidCursor)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| RewrapError::InvalidCursor)?;
        VersionId::parse(&cursor.version_id).map_err(|_| RewrapError::InvalidCursor)?;
        Ok(cursor)
    }
}

/// Rewraps the data keys of at most `limit` versions after `after` (a cursor from a previous
/// page; `None` starts with the first bucket).
pub async fn rewrap_page(
    store: &ObjectStore,
    kms: &dyn Kms,
    after: Option<&str>,
    limit: usize,
) -> Result<RewrapPage, RewrapError> {
    let start = after.map(Cursor::decode).transpose()?;
    let limit = limit.max(1);
    let mut walk = Walk { store, kms, page: RewrapPage::default(), resealed: HashMap::new() };
    let mut buckets = store.list_buckets().await?;
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    for bucket in buckets {
        let (mut key_marker, mut version_marker) = match &start {
            Some(cursor) if cursor.bucket > bucket.name => continue,
            Some(cursor) if cursor.bucket == bucket.name => (
                Some(cursor.key.clone()),
                Some(VersionId::parse(&cursor.version_id).map_err(|_| RewrapError::InvalidCursor)?),
            ),
            _ => (None, None),
        };
        loop {
            let room = limit.saturating_sub(walk.page.scanned as usize);
            let listed =
                store.list_object_versions(&bucket.name, "", None, key_marker.as_deref(), version_marker, room).await;
            let listed = match listed {
                Err(StorageError::NoSuchBucket(_)) => break,
                other => other?,
            };
            for entry in listed.entries {
                if let ListedVersion::Version { key, record, .. } = entry {
                    walk.version(&bucket.name, &key, &record).await?;
                    version_marker = Some(VersionId::of(&record));
                    key_marker = Some(key);
                }
            }
            if walk.page.scanned as usize >= limit {
                if let (Some(key), Some(version)) = (key_marker, version_marker) {
                    let cursor = Cursor { bucket: bucket.name.clone(), key, version_id: version.to_string() };
                    walk.page.next = Some(cursor.encode());
                }
                return Ok(walk.page);
            }
            if !listed.truncated {
                break;
            }
        }
    }
    Ok(walk.page)
}

struct Walk<'a> {
    store: &'a ObjectStore,
    kms: &'a dyn Kms,
    page: RewrapPage,
    /// Sealed keys already rewrapped in this page: objects sharing an S3 Bucket Key share one
    /// sealed key, which the KMS then rewraps once.
    resealed: HashMap<(String, String), String>,
}

impl Walk<'_> {
    async fn version(&mut self, bucket: &str, key: &str, record: &VersionRecord) -> Result<(), RewrapError> {
        self.page.scanned += 1;
        let Some(encryption) = record.encryption.as_ref().filter(|e| !e.sealed_key.is_empty()) else {
            return Ok(());
        };
        let fail = |reason: String| RewrapFailure {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: VersionId::of(record).to_string(),
            reason,
        };
        let id = (encryption.key_id.clone(), encryption.sealed_key.clone());
        let resealed = match self.resealed.get(&id) {
            Some(resealed) => resealed.clone(),
            None => match self.kms.rewrap(&encryption.key_id, &encryption.sealed_key).await {
                Ok(resealed) => {
                    self.resealed.insert(id, resealed.clone());
                    resealed
                }
                Err(error) if error.is_transient() => return Err(RewrapError::Kms(error)),
                Err(error) => {
                    self.page.failures.push(fail(error.to_string()));
                    return Ok(());
                }
            },
        };
        let newer = match (sealing_version(&encryption.sealed_key), sealing_version(&resealed)) {
            (Some(old), Some(new)) => new > old,
            _ => true,
        };
        if !newer {
            self.page.current += 1;
            return Ok(());
        }
        let which = VersionId::of(record);
        match self.store.set_sealed_key(bucket, key, which, &encryption.sealed_key, &resealed).await {
            Ok(update) if update.everywhere() => self.page.rewrapped += 1,
            Ok(update) => self.page.failures.push(fail(format!(
                "the new sealed key is on {} of {} drives ({} held another one): run the rewrap again once the set is healed",
                update.applied, update.drives, update.refused
            ))),
            Err(error) => self.page.failures.push(fail(error.to_string())),
        }
        Ok(())
    }
}
