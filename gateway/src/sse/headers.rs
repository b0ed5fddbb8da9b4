//! The server-side encryption headers of requests and responses, with AWS's answers to
//! incomplete or inconsistent ones.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::{Digest, Md5};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use s3s::dto::{
    CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput, CreateMultipartUploadInput,
    CreateMultipartUploadOutput, GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput, PutObjectInput,
    PutObjectOutput, ServerSideEncryption, UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput,
    UploadPartOutput,
};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};
use sovereign_kms_client::{PlainKey, DATA_KEY_BYTES};
use storage::meta::ObjectEncryption;

/// The only SSE-C algorithm.
pub const CUSTOMER_ALGORITHM: &str = "AES256";
/// The mode name stored for SSE-C objects.
pub const MODE_CUSTOMER: &str = "SSE-C";
/// Bytes of the random salt of an SSE-C key's MAC.
const MAC_SALT_BYTES: usize = 16;
/// Header (and presigned query parameter) prefixes that carry an SSE-C key: the object's
/// (`x-amz-server-side-encryption-customer-{algorithm,key,key-MD5}`) and a copy source's.
const CUSTOMER_KEY_PREFIXES: &[&str] =
    &["x-amz-server-side-encryption-customer-", "x-amz-copy-source-server-side-encryption-customer-"];

/// Refuses a request that carries SSE-C headers (or their presigned query parameters) over a
/// connection without TLS, as AWS does: the key must never cross the network in the clear.
/// Runs before anything else reads the request, so nothing is written or read.
pub fn refuse_customer_key_in_clear(secure: bool, headers: &hyper::HeaderMap, query: Option<&str>) -> S3Result<()> {
    let header_names = headers.keys().map(hyper::header::HeaderName::as_str);
    let query_names = query.unwrap_or_default().split('&').map(|pair| pair.split('=').next().unwrap_or_default());
    refuse_customer_key_names_in_clear(secure, header_names.chain(query_names))
}

/// The same refusal for a request whose SSE-C settings arrive under other `names` (a POST
/// form's fields): any name that carries an SSE-C key, over a connection without TLS.
pub fn refuse_customer_key_names_in_clear<'a>(secure: bool, names: impl IntoIterator<Item = &'a str>) -> S3Result<()> {
    if secure {
        return Ok(());
    }
    let customer = |name: &str| {
        CUSTOMER_KEY_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && name.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
    };
    if names.into_iter().any(customer) {
        return Err(s3_error!(
            InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
        ));
    }
    Ok(())
}

/// The encryption a write asks for in its headers.
#[derive(Debug, Clone, Default)]
pub struct WriteHeaders {
    /// `x-amz-server-side-encryption`.
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub kms_key_id: Option<String>,
    /// `x-amz-server-side-encryption-context`.
    pub context: Option<String>,
    /// `x-amz-server-side-encryption-bucket-key-enabled`.
    pub bucket_key_enabled: Option<bool>,
    /// The SSE-C headers.
    pub customer: CustomerHeaders,
}

/// `x-amz-server-side-encryption-customer-{algorithm,key,key-MD5}` (or their
/// `x-amz-copy-source-` forms).
#[derive(Debug, Clone, Default)]
pub struct CustomerHeaders {
    /// The algorithm, `AES256`.
    pub algorithm: Option<String>,
    /// Base64 of the 256-bit key.
    pub key: Option<String>,
    /// Base64 of the key's MD5.
    pub key_md5: Option<String>,
}

/// What a write asks for, once its headers are checked.
#[derive(Debug)]
pub enum Requested {
    /// No encryption header: the bucket default, if any, applies.
    Nothing,
    /// SSE-S3.
    S3,
    /// SSE-KMS under `key_id` (the default key when absent).
    Kms {
        /// The transit key named by the client.
        key_id: Option<String>,
        /// The client's encryption context (base64 JSON).
        context: Option<String>,
    },
    /// SSE-C.
    Customer(CustomerKey),
}

/// A customer-provided key, checked against its MD5.
#[derive(Debug)]
pub struct CustomerKey {
    /// The key.
    pub key: PlainKey,
    /// Base64 of its MD5, echoed in responses.
    pub key_md5: String,
}

fn invalid(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned())
}

impl WriteHeaders {
    /// The encryption these headers ask for.
    pub fn requested(&self) -> S3Result<Requested> {
        let customer = self.customer.key()?;
        let kms_only = self.kms_key_id.is_some() || self.context.is_some();
        match (self.server_side_encryption.as_ref().map(ServerSideEncryption::as_str), customer) {
            (Some(_), Some(_)) => Err(invalid(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            )),
            (None, Some(key)) if !kms_only => Ok(Requested::Customer(key)),
            (Some(ServerSideEncryption::AES256), None) if !kms_only => Ok(Requested::S3),
            (Some(ServerSideEncryption::AWS_KMS), None) => {
                if let Some(context) = &self.context {
                    check_context(context)?;
                }
                Ok(Requested::Kms { key_id: self.kms_key_id.clone(), context: self.context.clone() })
            }
            (Some(ServerSideEncryption::AWS_KMS_DSSE), None) => Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented: x-amz-server-side-encryption: aws:kms:dsse"
            )),
            (Some(ServerSideEncryption::AES256) | None, _) if kms_only => Err(invalid(
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
            )),
            (None, None) => Ok(Requested::Nothing),
            (Some(_), None) => Err(invalid("The encryption method specified is not supported")),
            (None, Some(_)) => Err(invalid("The encryption method specified is not supported")),
        }
    }
}

/// An encryption context must be base64 of a JSON object of strings.
fn check_context(context: &str) -> S3Result<()> {
    let bad = || invalid("The encryption context must be base64-encoded UTF-8 JSON of string keys and values.");
    let json = BASE64.decode(context).map_err(|_| bad())?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if map.values().all(serde_json::Value::is_string) {
        Ok(())
    } else {
        Err(bad())
    }
}

impl CustomerHeaders {
    /// Whether any SSE-C header is present.
    pub fn present(&self) -> bool {
        self.algorithm.is_some() || self.key.is_some() || self.key_md5.is_some()
    }

    /// The customer key, or `None` without SSE-C headers; AWS's errors for incomplete ones.
    pub fn key(&self) -> S3Result<Option<CustomerKey>> {
        if !self.present() {
            return Ok(None);
        }
        let algorithm = self.algorithm.as_deref().ok_or_else(|| {
            invalid("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
        })?;
        if algorithm != CUSTOMER_ALGORITHM {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidEncryptionAlgorithmError".into()),
                "The encryption request you specified is not valid. The valid value is AES256.",
            );
            e.set_status_code(hyper::StatusCode::BAD_REQUEST);
            return Err(e);
        }
        let encoded = self.key.as_deref().ok_or_else(|| {
            invalid("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
        })?;
        let bytes = zeroize::Zeroizing::new(BASE64.decode(encoded).unwrap_or_default());
        let key = PlainKey::from_slice(&bytes)
            .filter(|_| bytes.len() == DATA_KEY_BYTES)
            .ok_or_else(|| invalid("The secret key was invalid for the specified algorithm."))?;
        let key_md5 = self.key_md5.clone().ok_or_else(|| {
            invalid("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
        })?;
        if BASE64.encode(Md5::digest(key.bytes())) != key_md5 {
            return Err(invalid("The calculated MD5 hash of the key did not match the hash that was provided."));
        }
        Ok(Some(CustomerKey { key, key_md5 }))
    }
}

impl CustomerKey {
    /// A salted MAC of the key, stored so that a later request's key can be checked without
    /// storing the key: base64 of salt and HMAC-SHA256(salt, key).
    pub fn mac(&self) -> S3Result<String> {
        let mut salt = [0u8; MAC_SALT_BYTES];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| s3_error!(InternalError, "We encountered an internal error. Please try again."))?;
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salt), self.key.bytes());
        let mut out = salt.to_vec();
        out.extend_from_slice(tag.as_ref());
        Ok(BASE64.encode(out))
    }

    /// Whether this is the key whose MAC is `stored` (compared in constant time).
    pub fn matches(&self, stored: &str) -> bool {
        let Ok(bytes) = BASE64.decode(stored) else { return false };
        if bytes.len() <= MAC_SALT_BYTES {
            return false;
        }
        let (salt, tag) = bytes.split_at(MAC_SALT_BYTES);
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, salt), self.key.bytes(), tag).is_ok()
    }
}

/// The SSE headers AWS returns for an object, by mode.
#[derive(Debug, Clone, Default)]
pub struct SseOutput {
    /// `x-amz-server-side-encryption` (SSE-S3 and SSE-KMS).
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// `x-amz-server-side-encryption-aws-kms-key-id` (SSE-KMS).
    pub kms_key_id: Option<String>,
    /// `x-amz-server-side-encryption-context` (SSE-KMS, on writes).
    pub context: Option<String>,
    /// `x-amz-server-side-encryption-bucket-key-enabled`, when asked for.
    pub bucket_key_enabled: Option<bool>,
    /// `x-amz-server-side-encryption-customer-algorithm` (SSE-C).
    pub customer_algorithm: Option<String>,
    /// `x-amz-server-side-encryption-customer-key-MD5` (SSE-C).
    pub customer_key_md5: Option<String>,
}

impl SseOutput {
    /// The headers for an object sealed as `encryption`; `customer_key_md5` echoes the SSE-C
    /// key the request carried.
    pub fn of(encryption: Option<&ObjectEncryption>, customer_key_md5: Option<String>) -> Self {
        let Some(e) = encryption else { return Self::default() };
        if e.mode == MODE_CUSTOMER {
            return Self {
                customer_algorithm: Some(CUSTOMER_ALGORITHM.to_owned()),
                customer_key_md5,
                ..Self::default()
            };
        }
        let kms = e.mode == ServerSideEncryption::AWS_KMS;
        Self {
            server_side_encryption: Some(ServerSideEncryption::from(e.mode.clone())),
            kms_key_id: kms.then(|| e.key_id.clone()),
            context: e.context.clone().filter(|_| kms),
            bucket_key_enabled: e.bucket_key_enabled.then_some(true),
            customer_algorithm: None,
            customer_key_md5: None,
        }
    }
}

/// Reads the SSE headers of an operation's input (s3s has already parsed them).
macro_rules! write_headers {
    ($input:expr) => {
        WriteHeaders {
            server_side_encryption: $input.server_side_encryption.clone(),
            kms_key_id: $input.ssekms_key_id.clone(),
            context: $input.ssekms_encryption_context.clone(),
            bucket_key_enabled: $input.bucket_key_enabled,
            customer: customer_headers!($input),
        }
    };
}

/// Reads the SSE-C headers of an operation's input.
macro_rules! customer_headers {
    ($input:expr) => {
        CustomerHeaders {
            algorithm: $input.sse_customer_algorithm.clone(),
            key: $input.sse_customer_key.clone(),
            key_md5: $input.sse_customer_key_md5.clone(),
        }
    };
}

/// Reads the SSE-C headers of a copy source (`x-amz-copy-source-server-side-encryption-*`).
macro_rules! copy_source_customer_headers {
    ($input:expr) => {
        CustomerHeaders {
            algorithm: $input.copy_source_sse_customer_algorithm.clone(),
            key: $input.copy_source_sse_customer_key.clone(),
            key_md5: $input.copy_source_sse_customer_key_md5.clone(),
        }
    };
}

impl WriteHeaders {
    /// The encryption CreateMultipartUpload asks for the upload's parts.
    pub fn of_create(input: &CreateMultipartUploadInput) -> Self {
        write_headers!(input)
    }

    /// The encryption PutObject asks for.
    pub fn of_put(input: &PutObjectInput) -> Self {
        write_headers!(input)
    }

    /// The encryption CopyObject asks for its destination.
    pub fn of_copy(input: &CopyObjectInput) -> Self {
        write_headers!(input)
    }
}

impl CustomerHeaders {
    /// The SSE-C key of a GetObject.
    pub fn of_get(input: &GetObjectInput) -> Self {
        customer_headers!(input)
    }

    /// The SSE-C key of a HeadObject.
    pub fn of_head(input: &HeadObjectInput) -> Self {
        customer_headers!(input)
    }

    /// The SSE-C key of a CopyObject's source.
    pub fn of_copy_source(input: &CopyObjectInput) -> Self {
        copy_source_customer_headers!(input)
    }

    /// The SSE-C key of an UploadPart (the upload's key, for SSE-C uploads).
    pub fn of_upload_part(input: &UploadPartInput) -> Self {
        customer_headers!(input)
    }

    /// The SSE-C key of an UploadPartCopy's destination upload.
    pub fn of_upload_part_copy(input: &UploadPartCopyInput) -> Self {
        customer_headers!(input)
    }

    /// The SSE-C key of an UploadPartCopy's source.
    pub fn of_upload_part_copy_source(input: &UploadPartCopyInput) -> Self {
        copy_source_customer_headers!(input)
    }
}

/// Defines the `SseOutput` methods that set an operation's answer headers: each names the
/// output type and which of its fields it sets from which of ours.
macro_rules! answer_headers {
    ($($(#[$doc:meta])* $name:ident($output:ty) { $($field:ident: $ours:ident),* $(,)? })*) => {
        impl SseOutput {
            $(
                $(#[$doc])*
                pub fn $name(self, out: &mut $output) {
                    $( out.$field = self.$ours; )*
                }
            )*
        }
    };
}

answer_headers! {
    /// Sets the headers of a PutObject answer.
    put(PutObjectOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        ssekms_encryption_context: context, bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of a CopyObject answer.
    copy(CopyObjectOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        ssekms_encryption_context: context, bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of a CreateMultipartUpload answer.
    create(CreateMultipartUploadOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        ssekms_encryption_context: context, bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of an UploadPart answer.
    upload_part(UploadPartOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of an UploadPartCopy answer.
    upload_part_copy(UploadPartCopyOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of a CompleteMultipartUpload answer (which has no SSE-C headers).
    complete(CompleteMultipartUploadOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        bucket_key_enabled: bucket_key_enabled,
    }
    /// Sets the headers of a GetObject answer.
    get(GetObjectOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
    /// Sets the headers of a HeadObject answer.
    head(HeadObjectOutput) {
        server_side_encryption: server_side_encryption, ssekms_key_id: kms_key_id,
        bucket_key_enabled: bucket_key_enabled,
        sse_customer_algorithm: customer_algorithm, sse_customer_key_md5: customer_key_md5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(key: &[u8]) -> CustomerHeaders {
        CustomerHeaders {
            algorithm: Some("AES256".into()),
            key: Some(BASE64.encode(key)),
            key_md5: Some(BASE64.encode(Md5::digest(key))),
        }
    }

    fn code(headers: &WriteHeaders) -> String {
        headers.requested().unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn modes_are_recognised() {
        let s3 = WriteHeaders { server_side_encryption: Some("AES256".to_owned().into()), ..Default::default() };
        assert!(matches!(s3.requested().unwrap(), Requested::S3));
        let kms = WriteHeaders {
            server_side_encryption: Some("aws:kms".to_owned().into()),
            kms_key_id: Some("k".into()),
            ..Default::default()
        };
        assert!(matches!(kms.requested().unwrap(), Requested::Kms { key_id: Some(_), .. }));
        let c = WriteHeaders { customer: customer(&[1; 32]), ..Default::default() };
        assert!(matches!(c.requested().unwrap(), Requested::Customer(_)));
        assert!(matches!(WriteHeaders::default().requested().unwrap(), Requested::Nothing));
    }

    #[test]
    fn inconsistent_headers_are_refused() {
        let both = WriteHeaders {
            server_side_encryption: Some("AES256".to_owned().into()),
            customer: customer(&[1; 32]),
            ..Default::default()
        };
        assert_eq!(code(&both), "InvalidArgument");
        let key_without_kms = WriteHeaders { kms_key_id: Some("k".into()), ..Default::default() };
        assert_eq!(code(&key_without_kms), "InvalidArgument");
        let short = WriteHeaders { customer: customer(&[1; 16]), ..Default::default() };
        assert_eq!(code(&short), "InvalidArgument");
        let mut wrong_md5 = customer(&[1; 32]);
        wrong_md5.key_md5 = Some(BASE64.encode(Md5::digest([2u8; 32])));
        assert_eq!(code(&WriteHeaders { customer: wrong_md5, ..Default::default() }), "InvalidArgument");
        let mut algorithm = customer(&[1; 32]);
        algorithm.algorithm = Some("AES128".into());
        assert_eq!(
            code(&WriteHeaders { customer: algorithm, ..Default::default() }),
            "InvalidEncryptionAlgorithmError"
        );
        let context = WriteHeaders {
            server_side_encryption: Some("aws:kms".to_owned().into()),
            context: Some(BASE64.encode("[1]")),
            ..Default::default()
        };
        assert_eq!(code(&context), "InvalidArgument");
    }

    #[test]
    fn customer_keys_need_a_secure_connection() {
        let mut headers = hyper::HeaderMap::new();
        assert!(refuse_customer_key_in_clear(false, &headers, Some("uploads")).is_ok());
        headers.insert("x-amz-server-side-encryption", hyper::header::HeaderValue::from_static("AES256"));
        assert!(refuse_customer_key_in_clear(false, &headers, None).is_ok(), "SSE-S3 is not SSE-C");
        for name in [
            "x-amz-server-side-encryption-customer-algorithm",
            "x-amz-server-side-encryption-customer-key",
            "x-amz-server-side-encryption-customer-key-md5",
            "x-amz-copy-source-server-side-encryption-customer-key",
        ] {
            let mut with = headers.clone();
            with.insert(name, hyper::header::HeaderValue::from_static("x"));
            let e = refuse_customer_key_in_clear(false, &with, None).unwrap_err();
            assert_eq!(e.code(), &S3ErrorCode::InvalidRequest, "{name}");
            assert!(refuse_customer_key_in_clear(true, &with, None).is_ok(), "{name} over TLS");
        }
        let presigned = "X-Amz-Signature=s&X-Amz-Server-Side-Encryption-Customer-Algorithm=AES256";
        assert!(refuse_customer_key_in_clear(false, &headers, Some(presigned)).is_err());
    }

    #[test]
    fn the_key_mac_recognises_only_its_key() {
        let key = customer(&[1; 32]).key().unwrap().unwrap();
        let other = customer(&[2; 32]).key().unwrap().unwrap();
        let mac = key.mac().unwrap();
        assert_ne!(mac, key.mac().unwrap(), "salted");
        assert!(key.matches(&mac));
        assert!(!other.matches(&mac));
        assert!(!key.matches("garbage"));
    }
}
