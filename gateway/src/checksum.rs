//! Request-body integrity: the x-amz-checksum-* algorithms (value sent as a header or as an
//! aws-chunked trailer) and Content-MD5. The checksum is computed while the body streams into
//! the object layer; MD5 comes from the object layer, which computes it anyway for the ETag.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::StreamExt;
use hyper::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::{Checksum, StreamingBlob};
use s3s::{s3_error, S3Result, TrailingHeaders};
use storage::meta::StoredChecksum;
use storage::put::BodyStream;
use storage::StorageError;

/// Checksum kind of a whole-object checksum.
pub const FULL_OBJECT: &str = "FULL_OBJECT";
/// Checksum kind of a multipart checksum of part checksums.
pub const COMPOSITE: &str = "COMPOSITE";

/// A checksum algorithm S3 supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// CRC-32 (IEEE).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// CRC-64/NVME, the default when a client sends none.
    Crc64Nvme,
}

const ALL: [Algorithm; 5] =
    [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Sha1, Algorithm::Sha256, Algorithm::Crc64Nvme];

impl Algorithm {
    /// The name S3 uses (`CRC32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Crc64Nvme => "CRC64NVME",
        }
    }

    /// Parses an algorithm name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name().to_ascii_lowercase())
    }

    fn hasher(self) -> ChecksumHasher {
        let mut hasher = ChecksumHasher::default();
        match self {
            Self::Crc32 => hasher.crc32 = Some(Crc32::new()),
            Self::Crc32c => hasher.crc32c = Some(Crc32c::new()),
            Self::Sha1 => hasher.sha1 = Some(Sha1::new()),
            Self::Sha256 => hasher.sha256 = Some(Sha256::new()),
            Self::Crc64Nvme => hasher.crc64nvme = Some(Crc64Nvme::new()),
        }
        hasher
    }

    fn pick(self, checksum: Checksum) -> Option<String> {
        match self {
            Self::Crc32 => checksum.checksum_crc32,
            Self::Crc32c => checksum.checksum_crc32c,
            Self::Sha1 => checksum.checksum_sha1,
            Self::Sha256 => checksum.checksum_sha256,
            Self::Crc64Nvme => checksum.checksum_crc64nvme,
        }
    }

    /// Digest of `data` in base64.
    pub fn digest(self, data: &[u8]) -> Option<String> {
        let mut hasher = self.hasher();
        hasher.update(data);
        self.pick(hasher.finalize())
    }
}

/// Where the expected checksum of a body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// Sent as a header.
    Header(String),
    /// Announced in x-amz-trailer; arrives after the body.
    Trailer,
    /// None sent: computed and stored only.
    Nothing,
}

/// The checksum a write computes and what it is checked against.
pub struct BodyCheck {
    algorithm: Algorithm,
    expected: Expected,
    hasher: Arc<Mutex<Option<ChecksumHasher>>>,
}

impl std::fmt::Debug for BodyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCheck").field("algorithm", &self.algorithm).field("expected", &self.expected).finish()
    }
}

impl BodyCheck {
    /// Reads the checksum headers of a request; without any, CRC64NVME is computed as AWS does.
    pub fn from_headers(headers: &HeaderMap) -> S3Result<Self> {
        let sent: Vec<(Algorithm, String)> = ALL
            .into_iter()
            .filter_map(|a| headers.get(a.header()).map(|v| (a, v.to_str().unwrap_or_default().to_owned())))
            .collect();
        if sent.len() > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }
        let trailer = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).map(str::trim);
        let declared = headers.get("x-amz-sdk-checksum-algorithm").and_then(|v| v.to_str().ok());
        let (algorithm, expected) = if let Some((algorithm, value)) = sent.into_iter().next() {
            (algorithm, Expected::Header(value))
        } else if let Some(trailer) = trailer {
            let name = trailer.strip_prefix("x-amz-checksum-").ok_or_else(|| {
                s3_error!(InvalidRequest, "The value specified in the x-amz-trailer header is not supported")
            })?;
            let algorithm = Algorithm::parse(name).ok_or_else(|| {
                s3_error!(InvalidRequest, "The value specified in the x-amz-trailer header is not supported")
            })?;
            (algorithm, Expected::Trailer)
        } else if let Some(declared) = declared {
            let algorithm = Algorithm::parse(declared).ok_or_else(|| {
                s3_error!(InvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
            })?;
            (algorithm, Expected::Nothing)
        } else {
            (Algorithm::Crc64Nvme, Expected::Nothing)
        };
        if let Expected::Header(value) = &expected {
            check_base64_len(algorithm, value)?;
        }
        Ok(Self { algorithm, expected, hasher: Arc::new(Mutex::new(Some(algorithm.hasher()))) })
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Computes `algorithm` over a body without checking it against anything (a copy's new
    /// checksum).
    pub fn compute(algorithm: Algorithm) -> Self {
        Self { algorithm, expected: Expected::Nothing, hasher: Arc::new(Mutex::new(Some(algorithm.hasher()))) }
    }

    /// Wraps a request body so that the checksum is computed as it streams.
    pub fn wrap(&self, body: StreamingBlob) -> BodyStream {
        self.observe(body, |e| StorageError::Body(e.to_string()))
    }

    /// Wraps an object read (a copy source) so that the checksum is computed as it streams.
    pub fn wrap_read(&self, body: BodyStream) -> BodyStream {
        self.observe(body, |e| e)
    }

    fn observe<S, E: 'static>(&self, body: S, error: fn(E) -> StorageError) -> BodyStream
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Sync + 'static,
    {
        let hasher = Arc::clone(&self.hasher);
        Box::pin(body.map(move |chunk| match chunk {
            Ok(bytes) => {
                if let Ok(mut guard) = hasher.lock() {
                    if let Some(h) = guard.as_mut() {
                        h.update(&bytes);
                    }
                }
                Ok(bytes)
            }
            Err(e) => Err(error(e)),
        }))
    }

    /// After the body was consumed: checks the computed checksum against the header or trailer
    /// and returns it for storing.
    pub fn finish(self, trailers: Option<&TrailingHeaders>) -> S3Result<StoredChecksum> {
        let computed = self
            .hasher
            .lock()
            .ok()
            .and_then(|mut h| h.take())
            .and_then(|h| self.algorithm.pick(h.finalize()))
            .ok_or_else(|| s3_error!(InternalError, "checksum was not computed"))?;
        let expected = match self.expected {
            Expected::Header(value) => Some(value),
            Expected::Trailer => {
                let header = self.algorithm.header();
                let value = trailers
                    .and_then(|t| t.take())
                    .and_then(|map| map.get(header.as_str()).and_then(|v| v.to_str().ok()).map(str::to_owned));
                Some(
                    value
                        .ok_or_else(|| s3_error!(InvalidRequest, "The trailing checksum {header} was not received."))?,
                )
            }
            Expected::Nothing => None,
        };
        if let Some(expected) = expected {
            if expected != computed {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    self.algorithm.name()
                ));
            }
        }
        Ok(StoredChecksum { algorithm: self.algorithm.name().into(), value: computed, kind: FULL_OBJECT.into() })
    }
}

fn check_base64_len(algorithm: Algorithm, value: &str) -> S3Result<()> {
    let expected_len = algorithm.digest(b"").map(|d| d.len());
    let decodes = base64::engine::general_purpose::STANDARD.decode(value).is_ok();
    // AWS answers a checksum value that cannot be the algorithm's digest as a wrong digest.
    if !decodes || Some(value.len()) != expected_len {
        return Err(s3_error!(
            BadDigest,
            "Value for x-amz-checksum-{} header is invalid.",
            algorithm.name().to_ascii_lowercase()
        ));
    }
    Ok(())
}

/// Checks Content-MD5 (base64 of the body's MD5) against the MD5 the object layer computed.
pub fn check_content_md5(header: Option<&str>, md5: &[u8; 16]) -> S3Result<()> {
    let Some(header) = header else { return Ok(()) };
    let sent = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()
        .filter(|d| d.len() == 16)
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?;
    if sent != md5 {
        return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what was received."));
    }
    Ok(())
}

/// The multipart checksum of part checksums: the digest of the concatenated binary part
/// digests, suffixed with the part count (`COMPOSITE`).
pub fn composite(algorithm: Algorithm, parts: &[Option<&StoredChecksum>]) -> Option<StoredChecksum> {
    let mut joined = Vec::new();
    for part in parts {
        let part = (*part).filter(|c| c.algorithm == algorithm.name())?;
        joined.extend(base64::engine::general_purpose::STANDARD.decode(&part.value).ok()?);
    }
    let digest = algorithm.digest(&joined)?;
    Some(StoredChecksum {
        algorithm: algorithm.name().into(),
        value: format!("{digest}-{}", parts.len()),
        kind: COMPOSITE.into(),
    })
}

/// Fills the checksum fields of an S3 output.
pub fn to_dto(stored: &StoredChecksum) -> Checksum {
    let value = Some(stored.value.clone());
    let mut out = Checksum::default();
    match Algorithm::parse(&stored.algorithm) {
        Some(Algorithm::Crc32) => out.checksum_crc32 = value,
        Some(Algorithm::Crc32c) => out.checksum_crc32c = value,
        Some(Algorithm::Sha1) => out.checksum_sha1 = value,
        Some(Algorithm::Sha256) => out.checksum_sha256 = value,
        Some(Algorithm::Crc64Nvme) => out.checksum_crc64nvme = value,
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn header_checksum_is_verified() {
        let good = Algorithm::Crc32.digest(b"hello").unwrap();
        let check = BodyCheck::from_headers(&headers(&[("x-amz-checksum-crc32", &good)])).unwrap();
        check.hasher.lock().unwrap().as_mut().unwrap().update(b"hello");
        assert_eq!(check.finish(None).unwrap().value, good);

        let check = BodyCheck::from_headers(&headers(&[("x-amz-checksum-crc32", &good)])).unwrap();
        check.hasher.lock().unwrap().as_mut().unwrap().update(b"other");
        assert_eq!(check.finish(None).unwrap_err().code(), &s3s::S3ErrorCode::BadDigest);
    }

    #[test]
    fn malformed_and_multiple_headers_are_invalid() {
        assert!(BodyCheck::from_headers(&headers(&[("x-amz-checksum-sha256", "nope")])).is_err());
        let crc = Algorithm::Crc32.digest(b"").unwrap();
        let sha = Algorithm::Sha1.digest(b"").unwrap();
        assert!(BodyCheck::from_headers(&headers(&[("x-amz-checksum-crc32", &crc), ("x-amz-checksum-sha1", &sha)]))
            .is_err());
    }

    #[test]
    fn default_is_crc64nvme_and_trailer_names_the_algorithm() {
        assert_eq!(BodyCheck::from_headers(&HeaderMap::new()).unwrap().algorithm(), Algorithm::Crc64Nvme);
        let check = BodyCheck::from_headers(&headers(&[("x-amz-trailer", "x-amz-checksum-crc32c")])).unwrap();
        assert_eq!(check.algorithm(), Algorithm::Crc32c);
    }

    #[test]
    fn content_md5_mismatch_is_bad_digest() {
        let md5 = [0u8; 16];
        let encoded = base64::engine::general_purpose::STANDARD.encode(md5);
        assert!(check_content_md5(Some(&encoded), &md5).is_ok());
        assert_eq!(check_content_md5(Some(&encoded), &[1; 16]).unwrap_err().code(), &s3s::S3ErrorCode::BadDigest);
        assert_eq!(check_content_md5(Some("zz"), &md5).unwrap_err().code(), &s3s::S3ErrorCode::InvalidDigest);
    }

    #[test]
    fn composite_checksum_of_parts() {
        let a = StoredChecksum {
            algorithm: "CRC32".into(),
            value: Algorithm::Crc32.digest(b"a").unwrap(),
            kind: FULL_OBJECT.into(),
        };
        let b = StoredChecksum {
            algorithm: "CRC32".into(),
            value: Algorithm::Crc32.digest(b"b").unwrap(),
            kind: FULL_OBJECT.into(),
        };
        let composite = composite(Algorithm::Crc32, &[Some(&a), Some(&b)]).unwrap();
        assert!(composite.value.ends_with("-2"));
        assert_eq!(composite.kind, COMPOSITE);
        assert!(super::composite(Algorithm::Crc32, &[Some(&a), None]).is_none());
    }
}
