//! Checks and normalisations S3 applies to a request before its operation, where s3s does not:
//! an empty `Authorization`, Signature Version 2's rules ([`sigv2`]), requests for security
//! settings this release does not have ([`unsupported`]), the presigned-URL expiry limit, and
//! Content-MD5 of the XML bodies of batch and tagging requests. (Signed headers cannot be
//! rewritten here: the signature covers them.)

use std::sync::LazyLock;

use hyper::header::{AUTHORIZATION, CONTENT_LENGTH};
use hyper::{HeaderMap, Method, Request, StatusCode};
use md5::{Digest, Md5};
use s3s::{s3_error, Body, S3Error, S3ErrorCode, S3Result};
use tokio::sync::Semaphore;

use crate::{checksum, sigv2, unsupported};

/// The longest validity of a presigned URL: seven days.
pub const MAX_PRESIGNED_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// The largest XML body whose Content-MD5 is checked before the operation sees it (a
/// DeleteObjects request naming 1000 keys of 1024 bytes each fits).
const MAX_CHECKED_BODY: usize = 2 << 20;

/// Bodies buffered for that check at once, so that requests (checked before their signature
/// is) cannot make the server hold more than this many times `MAX_CHECKED_BODY`; beyond it,
/// `SlowDown`.
static CHECKED_BODIES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(32));

/// How long such a body may take to arrive.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const CONTENT_MD5: &str = "content-md5";

/// Removes an empty `Authorization`: S3 treats the request as anonymous (403), not malformed.
pub fn normalise(headers: &mut HeaderMap) {
    if headers.get(AUTHORIZATION).is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace)) {
        headers.remove(AUTHORIZATION);
    }
}

/// Rejects a V2-signed request that V4's rules would refuse (or any, with V2 off), a request
/// for an unsupported security setting or a form upload, a presigned URL valid for longer than
/// S3 allows, an empty Content-MD5, and an XML body whose Content-MD5 does not match. Bodies
/// checked here are buffered and passed on; the others are not read.
pub async fn check(req: &mut Request<Body>) -> S3Result<()> {
    sigv2::check(req).await?;
    unsupported::check(req)?;
    let query = req.uri().query().unwrap_or_default();
    let expires = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Expires="));
    if expires.and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e > MAX_PRESIGNED_EXPIRY_SECS) {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        );
        e.set_status_code(StatusCode::BAD_REQUEST);
        return Err(e);
    }
    let Some(sent) = req.headers().get(CONTENT_MD5) else { return Ok(()) };
    let sent = sent.to_str().map_err(|_| invalid_digest())?.trim().to_owned();
    if sent.is_empty() {
        return Err(invalid_digest());
    }
    // An aws-chunked body's MD5 is that of the decoded payload, which s3s checks on the way.
    let streaming = req.headers().get("x-amz-content-sha256").is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
    if !carries_xml_body(req.method(), query) || streaming {
        return Ok(());
    }
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_CHECKED_BODY) {
        return Err(s3_error!(MaxMessageLengthExceeded, "Your request was too big."));
    }
    let _permit = CHECKED_BODIES.try_acquire().map_err(|_| s3_error!(SlowDown, "Please reduce your request rate."))?;
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, req.body_mut().store_all_limited(MAX_CHECKED_BODY)).await;
    let body = read
        .map_err(|_| {
            s3_error!(
                RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period."
            )
        })?
        .map_err(|e| s3_error!(IncompleteBody, "The request body could not be read: {e}"))?;
    checksum::check_content_md5(Some(&sent), &Md5::digest(&body).into())
}

/// Requests whose body is an XML document the operation parses (DeleteObjects,
/// CompleteMultipartUpload, PutObjectTagging), as opposed to object data, which the object
/// handlers verify while it streams.
fn carries_xml_body(method: &Method, query: &str) -> bool {
    let tagging = query.split('&').any(|pair| pair == "tagging" || pair.starts_with("tagging="));
    *method == Method::POST || (*method == Method::PUT && tagging)
}

fn invalid_digest() -> s3s::S3Error {
    s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_authorization_is_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, " ".parse().unwrap());
        normalise(&mut headers);
        assert!(headers.get(AUTHORIZATION).is_none());
        headers.insert(AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=x".parse().unwrap());
        normalise(&mut headers);
        assert!(headers.get(AUTHORIZATION).is_some());
    }

    #[test]
    fn xml_bodies_are_told_from_object_data() {
        assert!(carries_xml_body(&Method::POST, "delete"));
        assert!(carries_xml_body(&Method::PUT, "tagging"));
        assert!(carries_xml_body(&Method::PUT, "tagging=&x-id=PutObjectTagging"));
        assert!(!carries_xml_body(&Method::PUT, "x-id=PutObject"));
        assert!(!carries_xml_body(&Method::PUT, "partNumber=1&uploadId=u"));
    }
}
