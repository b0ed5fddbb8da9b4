//! Records kept in each drive's metadata store, and the keys they are stored under.
//!
//! Keys sort so that a bucket's objects are contiguous and in key order, and the versions of one
//! key sort newest first by their ordering stamp:
//! `O bucket 0x00 key 0x00 !hlc !writer version_id` (`!` = bitwise not, big-endian). Bucket
//! names and object keys never contain NUL ([`check_key`] refuses them at the object layer's
//! door), so `0x00` sorts a key before every longer key and no key's versions are a prefix of
//! another key's. Versions are immutable: a write adds a record under its own key and never
//! rewrites or removes another in the same step.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::Acl;
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::stamp::Stamp;

const BUCKET_TAG: u8 = b'B';
const OBJECT_TAG: u8 = b'O';
const UPLOAD_TAG: u8 = b'U';
const PART_TAG: u8 = b'P';
const DATA_REF_TAG: u8 = b'D';
const CHANGE_TAG: u8 = b'L';
const CONFIG_TAG: u8 = b'C';
/// A data reference held by a version record.
const REF_BY_VERSION: u8 = b'V';
/// A data reference held by a part record.
const REF_BY_PART: u8 = b'P';
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
    /// Orders this version among the key's versions: the newest stamp is current.
    pub stamp: Stamp,
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
    /// The multipart upload this version completed, so that a repeated
    /// CompleteMultipartUpload of it answers as the first did. Absent from older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_upload: Option<Uuid>,
    /// How the gateway sealed the data, when it is encrypted; `size`, `etag` and `parts` then
    /// describe the sealed bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ObjectEncryption>,
    /// The version's owner and ACL, when set by a bucket with ACLs enabled; absent (older
    /// records too), the bucket owner owns it with FULL_CONTROL alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
}

/// How a version's data is sealed by the gateway's server-side encryption (ADR 0009). The object
/// layer stores it and never interprets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEncryption {
    /// `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `SSE-C`.
    pub mode: String,
    /// The KMS key that seals the data key (empty for SSE-C).
    pub key_id: String,
    /// The data key as the KMS sealed it (empty for SSE-C).
    pub sealed_key: String,
    /// SSE-C: base64 of a random salt followed by the HMAC-SHA256 of the customer key under it.
    pub customer_key_mac: Option<String>,
    /// SSE-KMS encryption context as the client sent it (base64 of a JSON object).
    pub context: Option<String>,
    /// Whether the client asked for an S3 Bucket Key (reported back, as AWS does).
    pub bucket_key_enabled: bool,
    /// The ETag reported instead of the sealed data's (SSE-S3: the plaintext's MD5).
    pub etag: Option<String>,
    /// Plaintext bytes per sealed package.
    pub package_bytes: u32,
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
    /// How every part is sealed (each with its own salt), when the object is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ObjectEncryption>,
    /// The object's owner and ACL, when the upload set them (ACLs enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
}

/// One uploaded part of a multipart upload, as stored on each drive of the set. Part records
/// are immutable like versions: a re-upload adds a newer record, and the older one is removed
/// only once the newer one is acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's data.
    pub part: DataPart,
    /// Orders uploads of the same part number: the newest committed one counts.
    pub stamp: Stamp,
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

/// The fields of a version record that listings report and resolve versions by: the rest
/// (standard headers, user metadata, tags, inline frames) is skipped by the decoder, not
/// allocated, and left empty in the [`VersionRecord`] it becomes.
#[derive(Deserialize)]
struct ListedFields {
    version_id: Uuid,
    stamp: Stamp,
    null_version: bool,
    mod_time_ns: i64,
    delete_marker: bool,
    size: u64,
    etag: String,
    checksum: Option<StoredChecksum>,
    erasure: Erasure,
    shard_index: usize,
    parts: Vec<DataPart>,
    #[serde(default)]
    completed_upload: Option<Uuid>,
    #[serde(default)]
    encryption: Option<ObjectEncryption>,
}

/// Deserializes a version record for a listing: [`ListedFields`], the rest empty.
pub fn decode_listed(bytes: &[u8]) -> Result<VersionRecord> {
    let fields: ListedFields = decode(bytes)?;
    Ok(VersionRecord {
        version_id: fields.version_id,
        stamp: fields.stamp,
        null_version: fields.null_version,
        mod_time_ns: fields.mod_time_ns,
        delete_marker: fields.delete_marker,
        size: fields.size,
        etag: fields.etag,
        headers: BTreeMap::new(),
        user_metadata: BTreeMap::new(),
        tags: Vec::new(),
        checksum: fields.checksum,
        erasure: fields.erasure,
        shard_index: fields.shard_index,
        parts: fields.parts,
        inline: None,
        completed_upload: fields.completed_upload,
        encryption: fields.encryption,
        acl: None,
    })
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

/// Key of one version: newest stamp first, the version id last (two versions never share a key).
pub fn version_key(bucket: &str, key: &str, record: &VersionRecord) -> Vec<u8> {
    version_key_at(bucket, key, record.stamp, record.version_id)
}

/// [`version_key`] from the version's stamp and id alone.
pub fn version_key_at(bucket: &str, key: &str, stamp: Stamp, version_id: Uuid) -> Vec<u8> {
    let mut out = versions_prefix(bucket, key);
    push_stamp(&mut out, stamp);
    out.extend_from_slice(version_id.as_bytes());
    out
}

/// Prefix of a bucket's configuration records.
pub fn bucket_config_prefix(bucket: &str) -> Vec<u8> {
    tagged(CONFIG_TAG, &[bucket.as_bytes(), &[SEPARATOR]])
}

/// Key of one configuration record of a bucket: the newest stamp sorts first.
pub fn bucket_config_key(bucket: &str, stamp: Stamp) -> Vec<u8> {
    let mut out = bucket_config_prefix(bucket);
    push_stamp(&mut out, stamp);
    out
}

/// The end (exclusive) of a bucket's configuration records.
pub fn bucket_config_end(bucket: &str) -> Vec<u8> {
    tagged(CONFIG_TAG, &[bucket.as_bytes(), &[SEPARATOR + 1]])
}

/// Appends a stamp so that newer stamps sort first.
fn push_stamp(out: &mut Vec<u8>, stamp: Stamp) {
    out.extend_from_slice(&(!stamp.hlc).to_be_bytes());
    out.extend_from_slice(&(!stamp.writer).to_be_bytes());
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

/// Prefix of every upload of one part number, newest first.
pub fn part_number_prefix(upload_id: Uuid, number: i32) -> Vec<u8> {
    tagged(PART_TAG, &[upload_id.as_bytes(), &number.to_be_bytes()])
}

/// Key of one part record.
pub fn part_key(upload_id: Uuid, record: &PartRecord) -> Vec<u8> {
    let mut out = part_number_prefix(upload_id, record.part.number);
    push_stamp(&mut out, record.stamp);
    out
}

/// Prefix of every reference to the shard files named `data_id`: the files may be reclaimed
/// only when no key with this prefix is left.
pub fn data_refs_prefix(data_id: Uuid) -> Vec<u8> {
    tagged(DATA_REF_TAG, &[data_id.as_bytes()])
}

/// The reference a version record holds on the shard files named `data_id`.
pub fn version_ref_key(data_id: Uuid, version_id: Uuid) -> Vec<u8> {
    tagged(DATA_REF_TAG, &[data_id.as_bytes(), &[REF_BY_VERSION], version_id.as_bytes()])
}

/// The reference a part record holds on its shard files.
pub fn part_ref_key(upload_id: Uuid, record: &PartRecord) -> Vec<u8> {
    let mut out = tagged(DATA_REF_TAG, &[record.part.data_id.as_bytes(), &[REF_BY_PART], upload_id.as_bytes()]);
    out.extend_from_slice(&record.part.number.to_be_bytes());
    push_stamp(&mut out, record.stamp);
    out
}

/// Key of one change-log entry.
pub fn change_key(seq: u64) -> Vec<u8> {
    tagged(CHANGE_TAG, &[&seq.to_be_bytes()])
}

/// Prefix of the change log.
pub fn change_prefix() -> Vec<u8> {
    vec![CHANGE_TAG]
}

/// The sequence number of a change-log key.
pub fn change_seq(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.strip_prefix(&[CHANGE_TAG])?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Refuses object keys the key layout cannot hold apart: a NUL would make one key's versions a
/// prefix of another's, so `a\0` would act on `a`.
pub fn check_key(key: &str) -> Result<()> {
    if key.contains('\0') {
        return Err(StorageError::InvalidKey(key.replace('\0', "\\0")));
    }
    Ok(())
}

/// What a change did, as the change log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// A new version (PUT, copy, completed multipart upload).
    Put,
    /// A delete marker was added.
    DeleteMarker,
    /// A version was removed (an unversioned delete, or a version deleted by id).
    Delete,
    /// Tags or other metadata of a version changed.
    Metadata,
    /// Heal wrote a version this drive lacked.
    Repair,
}

/// One entry of a drive's durable change log, written in the same batch as the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Position in this drive's log (increasing, with gaps where a write failed).
    pub seq: u64,
    /// Bucket of the object.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The version concerned.
    pub version_id: Uuid,
    /// Whether that version is the null version.
    pub null_version: bool,
    /// What happened.
    pub kind: ChangeKind,
    /// Object size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// The version's ordering stamp.
    pub stamp: Stamp,
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
        stamp: Stamp { hlc: mod_time_ns.max(0) as u64, writer: 1 },
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
        completed_upload: None,
        encryption: None,
        acl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mod_time_ns: i64) -> VersionRecord {
        test_record(mod_time_ns)
    }

    #[test]
    fn a_listing_decodes_what_it_reports_and_leaves_the_rest_empty() {
        let mut full = record(7);
        full.headers.insert("content-type".into(), "text/plain".into());
        full.user_metadata.insert("owner".into(), "me".into());
        full.tags.push(("team".into(), "blue".into()));
        full.inline = Some(Bytes::from_static(b"frames"));
        full.etag = "abc".into();
        full.size = 6;
        let listed = decode_listed(&encode(&full).unwrap()).unwrap();
        let expected = VersionRecord {
            headers: BTreeMap::new(),
            user_metadata: BTreeMap::new(),
            tags: Vec::new(),
            inline: None,
            ..full
        };
        assert_eq!(listed, expected);
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
        let old = version_key("b", "k", &record(100));
        let new = version_key("b", "k", &record(200));
        assert!(new < old);
        assert!(new.starts_with(&versions_prefix("b", "k")));
        let tie = VersionRecord { stamp: Stamp { hlc: 200, writer: 2 }, ..record(200) };
        assert!(version_key("b", "k", &tie) < new, "the higher writer id wins a tie");
    }

    #[test]
    fn every_version_has_its_own_key() {
        assert_ne!(version_key("b", "k", &record(100)), version_key("b", "k", &record(100)));
        assert_ne!(version_key("b", "k", &record(100)), version_key("b", "k0", &record(100)));
    }

    #[test]
    fn keys_with_nul_are_refused() {
        assert!(check_key("a\0").is_err());
        assert!(check_key("a/b c").is_ok());
    }

    #[test]
    fn change_keys_roundtrip_in_order() {
        assert!(change_key(9) < change_key(10));
        assert_eq!(change_seq(&change_key(77)), Some(77));
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
    fn records_without_an_acl_read_as_the_owners_alone() {
        let mut r = record(7);
        r.acl = Some(crate::acl::Acl { owner: "o".into(), grants: Vec::new() });
        let back: VersionRecord = decode(&encode(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A record written before ACLs were stored has no `acl` field at all.
        let old = record(8);
        let bytes = encode(&old).unwrap();
        assert!(!bytes.windows(3).any(|w| w == b"acl"), "an unset ACL is not written");
        assert_eq!(decode::<VersionRecord>(&bytes).unwrap().acl, None);
    }

    #[test]
    fn buckets_do_not_share_object_ranges() {
        let a = version_key("ab", "c", &record(1));
        assert!(!a.starts_with(&objects_prefix("a")));
    }
}
