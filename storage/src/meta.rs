//! Records kept in each drive's metadata store, and the keys they are stored under.
//!
//! Keys sort so that a bucket's objects are contiguous and in key order, and the versions of one
//! key sort newest first: `O bucket 0x00 key 0x00 (u64::MAX - mod_time_ns) version_id`. Bucket
//! names and object keys never contain NUL, so `0x00` sorts a key before every longer key.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::erasure::Erasure;
use crate::error::Result;

const BUCKET_TAG: u8 = b'B';
const OBJECT_TAG: u8 = b'O';
const UPLOAD_TAG: u8 = b'U';
const PART_TAG: u8 = b'P';
const DATA_REF_TAG: u8 = b'D';
const SEPARATOR: u8 = 0x00;
/// A byte that never occurs in UTF-8: seeking to `prefix ++ 0xFF` skips every key under `prefix`.
pub const PAST_PREFIX: u8 = 0xFF;

/// A bucket as stored on every drive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Bucket name.
    pub name: String,
    /// Creation time, Unix nanoseconds.
    pub created_ns: i64,
}

/// One version of an object, or a delete marker: the commit point of every write.
///
/// Each drive holds its own copy, which differs only in `shard_index` and `inline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Unique id of this version (reported as "null" while `null_version` is set).
    pub version_id: Uuid,
    /// Whether this is the bucket's "null" version (unversioned writes replace it).
    pub null_version: bool,
    /// Last-modified time, Unix nanoseconds.
    pub mod_time_ns: i64,
    /// A delete marker has no data.
    pub delete_marker: bool,
    /// Object size in bytes.
    pub size: u64,
    /// ETag without quotes: hex MD5, or `md5-of-md5s-N` for multipart objects.
    pub etag: String,
    /// Content-Type, Content-Encoding and the other standard headers, by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// User metadata (x-amz-meta-*), by lower-case name without the prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// Object tags, in order.
    pub tags: Vec<(String, String)>,
    /// Checksum stored with the object, if the client sent or asked for one.
    pub checksum: Option<StoredChecksum>,
    /// Erasure layout of the data.
    pub erasure: Erasure,
    /// Which shard of each stripe this drive holds.
    pub shard_index: usize,
    /// Data pieces in object order: one for a simple object, one per part for multipart.
    pub parts: Vec<DataPart>,
    /// This drive's shard frames when the object is small enough to live in the record.
    pub inline: Option<Bytes>,
}

/// A checksum algorithm and its base64 value, as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `SHA1`, `SHA256` or `CRC64NVME`.
    pub algorithm: String,
    /// Base64 of the digest (for multipart: of the part digests, with `-N`).
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
}

/// One erasure-coded piece of an object's data: a simple object's body or one multipart part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPart {
    /// Part number (1 for simple objects).
    pub number: i32,
    /// Bytes of object data in this piece.
    pub size: u64,
    /// Names the shard files of this piece on every drive of the set.
    pub data_id: Uuid,
    /// The part's own ETag (multipart) or the object's.
    pub etag: String,
    /// The part's checksum, when one was sent.
    pub checksum: Option<StoredChecksum>,
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Upload id handed to the client.
    pub upload_id: Uuid,
    /// Object key the upload will create.
    pub key: String,
    /// Initiation time, Unix nanoseconds.
    pub initiated_ns: i64,
    /// Headers, metadata, tags and checksum algorithm for the final object.
    pub template: ObjectTemplate,
}

/// What CreateMultipartUpload fixes for the object that CompleteMultipartUpload will create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectTemplate {
    /// Standard headers by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// User metadata by lower-case name.
    pub user_metadata: BTreeMap<String, String>,
    /// Object tags.
    pub tags: Vec<(String, String)>,
    /// Checksum algorithm the parts must carry, if any.
    pub checksum_algorithm: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`, for the checksum algorithm.
    pub checksum_type: Option<String>,
}

/// One uploaded part of a multipart upload, as stored on each drive of the set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's data.
    pub part: DataPart,
    /// Upload time, Unix nanoseconds.
    pub mod_time_ns: i64,
    /// Erasure layout of the part.
    pub erasure: Erasure,
    /// Which shard this drive holds.
    pub shard_index: usize,
}

/// Serializes a record.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    Ok(rmp_serde::to_vec_named(record)?)
}

/// Deserializes a record.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    Ok(rmp_serde::from_slice(bytes)?)
}

/// Key of a bucket record.
pub fn bucket_key(bucket: &str) -> Vec<u8> {
    tagged(BUCKET_TAG, &[bucket.as_bytes()])
}

/// Prefix of all bucket records.
pub fn bucket_prefix() -> Vec<u8> {
    vec![BUCKET_TAG]
}

/// Prefix of all objects of a bucket.
pub fn objects_prefix(bucket: &str) -> Vec<u8> {
    tagged(OBJECT_TAG, &[bucket.as_bytes(), &[SEPARATOR]])
}

/// Prefix of all versions of one key.
pub fn versions_prefix(bucket: &str, key: &str) -> Vec<u8> {
    tagged(OBJECT_TAG, &[bucket.as_bytes(), &[SEPARATOR], key.as_bytes(), &[SEPARATOR]])
}

/// Key of one version. Versions with an id sort newest first, by age then id; the null
/// version (the only one an unversioned bucket has) has one fixed key, first of all, so that an
/// overwrite replaces it in place instead of leaving a deletion tombstone behind per overwrite.
pub fn version_key(bucket: &str, key: &str, record: &VersionRecord) -> Vec<u8> {
    let (age, id) = if record.null_version {
        (0, Uuid::nil())
    } else {
        (u64::MAX - record.mod_time_ns.max(0) as u64, record.version_id)
    };
    let mut out = versions_prefix(bucket, key);
    out.extend_from_slice(&age.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out
}

/// Splits a version key of `bucket` into the object key.
pub fn object_key_of(bucket_prefix_len: usize, version_key: &[u8]) -> Option<&str> {
    let rest = version_key.get(bucket_prefix_len..)?;
    let end = rest.iter().position(|b| *b == SEPARATOR)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Seek position just past every version of `key` (and before keys that extend it).
pub fn after_key(bucket: &str, key: &str) -> Vec<u8> {
    tagged(OBJECT_TAG, &[bucket.as_bytes(), &[SEPARATOR], key.as_bytes(), &[SEPARATOR + 1]])
}

/// Seek position past every key that starts with `prefix`.
pub fn after_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    tagged(OBJECT_TAG, &[bucket.as_bytes(), &[SEPARATOR], prefix.as_bytes(), &[PAST_PREFIX]])
}

/// Seek position of the first key at or after `key`.
pub fn at_key(bucket: &str, key: &str) -> Vec<u8> {
    tagged(OBJECT_TAG, &[bucket.as_bytes(), &[SEPARATOR], key.as_bytes()])
}

/// Prefix of all uploads of a bucket.
pub fn uploads_prefix(bucket: &str) -> Vec<u8> {
    tagged(UPLOAD_TAG, &[bucket.as_bytes(), &[SEPARATOR]])
}

/// Key of an upload record.
pub fn upload_key(bucket: &str, key: &str, upload_id: Uuid) -> Vec<u8> {
    tagged(UPLOAD_TAG, &[bucket.as_bytes(), &[SEPARATOR], key.as_bytes(), &[SEPARATOR], upload_id.as_bytes()])
}

/// Prefix of all parts of an upload.
pub fn parts_prefix(upload_id: Uuid) -> Vec<u8> {
    tagged(PART_TAG, &[upload_id.as_bytes()])
}

/// Key of one part record.
pub fn part_key(upload_id: Uuid, number: i32) -> Vec<u8> {
    tagged(PART_TAG, &[upload_id.as_bytes(), &number.to_be_bytes()])
}

/// Key marking that shard files named `data_id` are referenced by a record.
pub fn data_ref_key(data_id: Uuid) -> Vec<u8> {
    tagged(DATA_REF_TAG, &[data_id.as_bytes()])
}

fn tagged(tag: u8, pieces: &[&[u8]]) -> Vec<u8> {
    let len = 1 + pieces.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(tag);
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    out
}

/// An empty inline null version, for tests.
#[cfg(test)]
pub(crate) fn test_record(mod_time_ns: i64) -> VersionRecord {
    VersionRecord {
        version_id: Uuid::new_v4(),
        null_version: true,
        mod_time_ns,
        delete_marker: false,
        size: 0,
        etag: String::new(),
        headers: BTreeMap::new(),
        user_metadata: BTreeMap::new(),
        tags: Vec::new(),
        checksum: None,
        erasure: Erasure::new(1, 0, 1024).unwrap(),
        shard_index: 0,
        parts: Vec::new(),
        inline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mod_time_ns: i64) -> VersionRecord {
        test_record(mod_time_ns)
    }

    #[test]
    fn keys_sort_in_object_key_order() {
        let keys = ["a", "a/b", "a0", "ab", "b", "é"];
        let mut encoded: Vec<Vec<u8>> = keys.iter().map(|k| version_key("bkt", k, &record(5))).collect();
        encoded.sort();
        let prefix = objects_prefix("bkt").len();
        let decoded: Vec<&str> = encoded.iter().map(|k| object_key_of(prefix, k).unwrap()).collect();
        assert_eq!(decoded, keys);
    }

    #[test]
    fn newest_version_sorts_first() {
        let versioned = |mod_time_ns| VersionRecord { null_version: false, ..record(mod_time_ns) };
        let old = version_key("b", "k", &versioned(100));
        let new = version_key("b", "k", &versioned(200));
        assert!(new < old);
        assert!(new.starts_with(&versions_prefix("b", "k")));
        assert!(version_key("b", "k", &record(50)) < new, "the null version sorts first");
    }

    #[test]
    fn null_versions_share_one_key() {
        assert_eq!(version_key("b", "k", &record(100)), version_key("b", "k", &record(200)));
        assert_ne!(version_key("b", "k", &record(100)), version_key("b", "k0", &record(100)));
    }

    #[test]
    fn seek_positions_bracket_keys() {
        let v = version_key("b", "dir/x", &record(1));
        assert!(after_key("b", "dir/x") > v);
        assert!(after_key("b", "dir/x") < version_key("b", "dir/x0", &record(1)));
        assert!(after_prefix("b", "dir/") > v);
        assert!(after_prefix("b", "dir/") < version_key("b", "dir0", &record(1)));
        assert!(at_key("b", "dir/x") <= v);
    }

    #[test]
    fn record_roundtrips() {
        let mut r = record(42);
        r.inline = Some(Bytes::from_static(b"frames"));
        r.tags.push(("k".into(), "v".into()));
        let bytes = encode(&r).unwrap();
        let back: VersionRecord = decode(&bytes).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn buckets_do_not_share_object_ranges() {
        let a = version_key("ab", "c", &record(1));
        assert!(!a.starts_with(&objects_prefix("a")));
    }
}
