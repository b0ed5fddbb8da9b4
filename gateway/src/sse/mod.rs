//! Server-side encryption (SSE-S3, SSE-KMS, SSE-C): the gateway seals object data before the
//! object layer erasure-codes it, so drives only ever hold ciphertext, and opens it on reads.
//! Data keys come from the KMS ([`sovereign_kms_client::Kms`]) or, for SSE-C, from the request.
//! The handlers call [`Sse`]; the package format is in [`package`].

mod bucket_key;
pub mod headers;
pub mod package;
mod read;
pub mod rewrap;
pub mod stream;

use std::ops::Range;
use std::sync::Arc;

use s3s::dto::ServerSideEncryption;
use s3s::{s3_error, S3Result};
use sovereign_kms_client::{Kms, PlainKey};
use storage::meta::{ObjectEncryption, UploadRecord, VersionRecord};
use storage::put::BodyStream;
use storage::store::ObjectHandle;
use uuid::Uuid;

use crate::error::kms_to_s3;
use bucket_key::BucketKeys;
use headers::{CustomerHeaders, CustomerKey, Requested, WriteHeaders, MODE_CUSTOMER};
use package::{Identity, Layout, PieceSealer, PACKAGE_PLAIN_BYTES};
use stream::PlainDigest;

/// A bucket's default encryption (PutBucketEncryption), applied to writes without headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDefault {
    /// `AES256` or `aws:kms`.
    pub algorithm: ServerSideEncryption,
    /// The transit key for `aws:kms` (the configured default key when absent).
    pub kms_key_id: Option<String>,
    /// Whether S3 Bucket Keys are enabled.
    pub bucket_key_enabled: bool,
}

/// Seals and opens object data with keys from one KMS.
#[derive(Debug, Clone)]
pub struct Sse {
    kms: Arc<dyn Kms>,
    default_key: String,
    bucket_keys: Arc<BucketKeys>,
}

/// The sealing of one new object (or of the parts of one multipart upload).
#[derive(Debug)]
pub struct Sealing {
    key: PlainKey,
    encryption: ObjectEncryption,
    bucket: String,
    object: String,
    digest: PlainDigest,
    customer_key_md5: Option<String>,
    /// The multipart upload whose parts this seals, if any.
    upload_id: Option<Uuid>,
}

impl Sse {
    /// Encryption with data keys from `kms`; SSE-S3 and SSE-KMS without a key id use
    /// `default_key`.
    pub fn new(kms: Arc<dyn Kms>, default_key: String) -> Self {
        Self { kms, default_key, bucket_keys: Arc::default() }
    }

    /// The KMS that seals the data keys (for the rewrap after a rotation).
    pub fn kms(&self) -> Arc<dyn Kms> {
        Arc::clone(&self.kms)
    }

    /// Decides how a new object `bucket`/`key` is sealed, from its headers or else the bucket's
    /// default; `None` stores it in plaintext. Asks the KMS for a data key.
    pub async fn begin_write(
        &self,
        bucket: &str,
        key: &str,
        headers: &WriteHeaders,
        bucket_default: Option<&BucketDefault>,
    ) -> S3Result<Option<Sealing>> {
        // Without the header, the bucket's default setting applies, as on AWS.
        let bucket_key = headers.bucket_key_enabled.or(bucket_default.map(|d| d.bucket_key_enabled)).unwrap_or(false);
        let (mode, key_id, context, bucket_key) = match headers.requested()? {
            Requested::Customer(customer) => return Ok(Some(Sealing::customer(bucket, key, customer)?)),
            Requested::S3 => (ServerSideEncryption::AES256, None, None, bucket_key),
            Requested::Kms { key_id, context } => (ServerSideEncryption::AWS_KMS, key_id, context, bucket_key),
            Requested::Nothing => match bucket_default {
                None => return Ok(None),
                Some(d) => {
                    let key_id = d.kms_key_id.clone().filter(|_| d.algorithm.as_str() == ServerSideEncryption::AWS_KMS);
                    let mode = if d.algorithm.as_str() == ServerSideEncryption::AWS_KMS {
                        ServerSideEncryption::AWS_KMS
                    } else {
                        ServerSideEncryption::AES256
                    };
                    (mode, key_id, None, d.bucket_key_enabled)
                }
            },
        };
        let key_id = key_id.unwrap_or_else(|| self.default_key.clone());
        // S3 Bucket Keys apply to SSE-KMS only, as on AWS.
        let bucket_key = bucket_key && mode == ServerSideEncryption::AWS_KMS;
        let data_key = if bucket_key {
            self.bucket_keys.data_key(self.kms.as_ref(), bucket, &key_id).await
        } else {
            self.kms.generate_data_key(&key_id).await
        };
        let data_key = data_key.map_err(kms_to_s3)?;
        let encryption = ObjectEncryption {
            mode: mode.to_owned(),
            key_id,
            sealed_key: data_key.sealed,
            customer_key_mac: None,
            context,
            bucket_key_enabled: bucket_key,
            etag: None,
            package_bytes: PACKAGE_PLAIN_BYTES,
        };
        Ok(Some(Sealing::new(bucket, key, data_key.plaintext, encryption, None)))
    }

    /// The data key of a sealed object, checking the SSE-C key the request carries against the
    /// stored MAC (AWS's 400 when it is missing, 403 when it is wrong). `None` for plaintext
    /// objects, which must not be read with SSE-C headers.
    pub async fn data_key(
        &self,
        encryption: Option<&ObjectEncryption>,
        customer: &CustomerHeaders,
    ) -> S3Result<Option<PlainKey>> {
        let given = customer.key()?;
        let Some(encryption) = encryption else {
            if given.is_some() {
                return Err(s3_error!(InvalidRequest, "The encryption parameters are not applicable to this object."));
            }
            return Ok(None);
        };
        if encryption.mode != MODE_CUSTOMER {
            if given.is_some() {
                return Err(s3_error!(InvalidRequest, "The encryption parameters are not applicable to this object."));
            }
            let key = self.kms.decrypt(&encryption.key_id, &encryption.sealed_key).await.map_err(kms_to_s3)?;
            return Ok(Some(key));
        }
        let given = given.ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
            )
        })?;
        let matches = encryption.customer_key_mac.as_deref().is_some_and(|mac| given.matches(mac));
        if !matches {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(Some(given.key))
    }

    /// The sealing of a part of `upload` (UploadPart, UploadPartCopy), as CreateMultipartUpload
    /// chose it: the data key unsealed by the KMS or, for SSE-C, the request's key checked
    /// against the upload's MAC (403 when it is another key, 400 when it is missing). `None`
    /// for a plaintext upload, which refuses SSE-C headers.
    pub async fn part_sealing(
        &self,
        upload: &UploadRecord,
        customer: &CustomerHeaders,
        bucket: &str,
        object: &str,
    ) -> S3Result<Option<Sealing>> {
        let encryption = upload.template.encryption.as_ref();
        let key = self.data_key(encryption, customer).await?;
        let (Some(key), Some(encryption)) = (key, encryption) else { return Ok(None) };
        let customer_key_md5 = customer.key_md5.clone().filter(|_| encryption.mode == MODE_CUSTOMER);
        let mut sealing = Sealing::new(bucket, object, key, encryption.clone(), customer_key_md5);
        sealing.upload_id = Some(upload.upload_id);
        Ok(Some(sealing))
    }

    /// Checks that a request may see a sealed object's metadata (HeadObject): SSE-C objects
    /// need their key.
    pub async fn check_access(&self, record: &VersionRecord, customer: &CustomerHeaders) -> S3Result<()> {
        let customer_mode = record.encryption.as_ref().is_some_and(|e| e.mode == MODE_CUSTOMER);
        if customer_mode || customer.present() {
            self.data_key(record.encryption.as_ref(), customer).await?;
        }
        Ok(())
    }

    /// Streams `range` of the object's plaintext (all of it when `None`): sealed objects are
    /// opened with `key` (from [`Sse::data_key`]), others read as stored.
    pub async fn read(
        &self,
        handle: ObjectHandle,
        range: Option<Range<u64>>,
        key: Option<PlainKey>,
        bucket: &str,
        object: &str,
    ) -> S3Result<BodyStream> {
        match (key, handle.record().encryption.clone()) {
            (Some(key), Some(encryption)) => read::open(handle, &encryption, key, range, bucket, object).await,
            _ => handle.read(range).await.map_err(crate::error::to_s3),
        }
    }
}

impl Sealing {
    fn new(
        bucket: &str,
        object: &str,
        key: PlainKey,
        encryption: ObjectEncryption,
        customer_key_md5: Option<String>,
    ) -> Self {
        let (bucket, object) = (bucket.to_owned(), object.to_owned());
        Self { key, encryption, bucket, object, digest: PlainDigest::default(), customer_key_md5, upload_id: None }
    }

    fn customer(bucket: &str, object: &str, customer: CustomerKey) -> S3Result<Self> {
        let encryption = ObjectEncryption {
            mode: MODE_CUSTOMER.to_owned(),
            key_id: String::new(),
            sealed_key: String::new(),
            customer_key_mac: Some(customer.mac()?),
            context: None,
            bucket_key_enabled: false,
            etag: None,
            package_bytes: PACKAGE_PLAIN_BYTES,
        };
        Ok(Self::new(bucket, object, customer.key, encryption, Some(customer.key_md5)))
    }

    /// Seals `body` as part `part_number` (1 for a simple object).
    pub fn seal(&self, body: BodyStream, part_number: i32) -> S3Result<BodyStream> {
        let identity = identity(&self.encryption, &self.bucket, &self.object, part_number, self.upload_id);
        let (sealer, header) = PieceSealer::new(self.key.bytes(), identity)
            .map_err(|_| s3_error!(InternalError, "We encountered an internal error. Please try again."))?;
        let layout = Layout::new(self.encryption.package_bytes);
        Ok(stream::seal(body, sealer, header, layout, self.digest.clone()))
    }

    /// Stored size of a plaintext body of `plain` bytes.
    pub fn sealed_size(&self, plain: u64) -> u64 {
        Layout::new(self.encryption.package_bytes).sealed_size(plain)
    }

    /// MD5 of the plaintext sealed so far.
    pub fn plain_md5(&self) -> [u8; 16] {
        self.digest.md5()
    }

    /// How the parts of a multipart upload are to be sealed (CreateMultipartUpload's record):
    /// the mode and the sealed data key, without an ETag of its own.
    pub fn template(&self) -> ObjectEncryption {
        self.encryption.clone()
    }

    /// Whether the ETag reported for the sealed data is the plaintext's MD5 (SSE-S3, as on
    /// AWS) rather than the stored bytes'.
    pub fn reports_plain_md5(&self) -> bool {
        self.encryption.mode == ServerSideEncryption::AES256
    }

    /// The record of the sealed object; SSE-S3 objects report the plaintext's MD5 as ETag, the
    /// others the sealed data's, as AWS does.
    pub fn finish(&self) -> ObjectEncryption {
        let mut encryption = self.encryption.clone();
        if self.reports_plain_md5() {
            encryption.etag = Some(hex::encode(self.digest.md5()));
        }
        encryption
    }

    /// The response headers for the object being written.
    pub fn output(&self) -> headers::SseOutput {
        headers::SseOutput::of(Some(&self.encryption), self.customer_key_md5.clone())
    }
}

/// What the packages of part `part_number` of `bucket`/`object` are bound to; the parts of a
/// multipart object also to their upload.
fn identity(
    encryption: &ObjectEncryption,
    bucket: &str,
    object: &str,
    part_number: i32,
    upload_id: Option<Uuid>,
) -> Identity {
    let context = encryption.context.as_deref().unwrap_or_default();
    let identity = Identity::new(bucket, object, part_number, context, encryption.package_bytes);
    match upload_id {
        Some(id) => identity.in_upload(id.as_bytes()),
        None => identity,
    }
}

/// Plaintext size of a stored part of an upload sealed as `encryption` (ListParts).
pub fn part_plain_size(encryption: Option<&ObjectEncryption>, stored: u64) -> u64 {
    match encryption {
        Some(e) => Layout::new(e.package_bytes).plain_size(stored),
        None => stored,
    }
}

/// Plaintext sizes of the object's pieces (one per part; one for a simple object).
pub fn part_sizes(record: &VersionRecord) -> Vec<u64> {
    match &record.encryption {
        None => record.parts.iter().map(|p| p.size).collect(),
        Some(e) => {
            let layout = Layout::new(e.package_bytes);
            read::pieces(record).iter().map(|&(_, sealed)| layout.plain_size(sealed)).collect()
        }
    }
}

/// The object's size as clients see it (the plaintext's).
pub fn object_size(record: &VersionRecord) -> u64 {
    match &record.encryption {
        None => record.size,
        Some(_) => part_sizes(record).iter().sum(),
    }
}

/// The object's ETag as clients see it.
pub fn etag(record: &VersionRecord) -> &str {
    record.encryption.as_ref().and_then(|e| e.etag.as_deref()).unwrap_or(&record.etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use sovereign_kms_client::DataKey;

    /// Counts data-key requests; key `n` is the byte `n` repeated, sealed as `"n"`.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl Kms for Counting {
        async fn generate_data_key(&self, _: &str) -> sovereign_kms_client::Result<DataKey> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(DataKey { plaintext: PlainKey::new([n as u8; 32]), sealed: n.to_string() })
        }
        async fn decrypt(&self, _: &str, sealed: &str) -> sovereign_kms_client::Result<PlainKey> {
            Ok(PlainKey::new([sealed.parse().unwrap_or(0); 32]))
        }
        async fn rewrap(&self, _: &str, sealed: &str) -> sovereign_kms_client::Result<String> {
            Ok(sealed.to_owned())
        }
        async fn health(&self) -> sovereign_kms_client::Result<()> {
            Ok(())
        }
        fn provider(&self) -> &'static str {
            "counting"
        }
    }

    fn kms(bucket_key: bool) -> WriteHeaders {
        WriteHeaders {
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS)),
            bucket_key_enabled: Some(bucket_key),
            ..WriteHeaders::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_keys_ask_the_kms_once_per_bucket_and_period() {
        let counting = Arc::new(Counting::default());
        let sse = Sse::new(counting.clone(), "default".into());
        let calls = || counting.0.load(Ordering::SeqCst);
        let write = |bucket: &'static str, headers: WriteHeaders, default: Option<BucketDefault>| {
            let sse = sse.clone();
            async move { sse.begin_write(bucket, "o", &headers, default.as_ref()).await.unwrap().unwrap().finish() }
        };
        for _ in 0..10 {
            let sealed = write("b", kms(true), None).await;
            assert!(sealed.bucket_key_enabled);
            assert_eq!(sealed.sealed_key, "1", "one bucket key for the period");
        }
        assert_eq!(calls(), 1);
        let by_default = BucketDefault {
            algorithm: ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS),
            kms_key_id: None,
            bucket_key_enabled: true,
        };
        assert_eq!(write("b", WriteHeaders::default(), Some(by_default.clone())).await.sealed_key, "1");
        assert_eq!(calls(), 1, "the bucket default shares the bucket key");
        let mut kms_without_header = kms(false);
        kms_without_header.bucket_key_enabled = None;
        let explicit = write("b", kms_without_header, Some(by_default.clone())).await;
        assert_eq!(explicit.sealed_key, "1", "SSE-KMS without the header takes the bucket's setting");
        assert_eq!(calls(), 1);
        write("other", kms(true), None).await;
        assert_eq!(calls(), 2, "a bucket key per bucket");
        for _ in 0..3 {
            assert!(!write("b", kms(false), None).await.bucket_key_enabled);
        }
        assert_eq!(calls(), 5, "without a bucket key, one data key per object");
        tokio::time::advance(bucket_key::BUCKET_KEY_LIFETIME).await;
        assert_eq!(write("b", kms(true), None).await.sealed_key, "6", "a new bucket key for the next period");
    }
}
