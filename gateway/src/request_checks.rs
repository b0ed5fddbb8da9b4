//! Checks and normalisations S3 applies to a request before its operation, where s3s does not:
//! an empty `Authorization`, Signature Version 2's rules ([`sigv2`]), requests for security
//! settings this release does not have ([`unsupported`]), the request time of SigV4 requests
//! timed by `Date`, presigned-URL limits, and the XML bodies of configuration, batch and
//! completion requests (size, completeness, Content-MD5). (Signed headers cannot be rewritten
//! here: the signature covers them.)

use std::sync::LazyLock;

use futures::StreamExt;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, DATE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use md5::{Digest, Md5};
use s3s::{s3_error, Body, S3Error, S3ErrorCode, S3Result};
use tokio::sync::Semaphore;

use crate::{checksum, parse, post_object, sigv2, unsupported};

/// The longest validity of a presigned URL: seven days.
pub const MAX_PRESIGNED_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// The largest XML body accepted: a DeleteObjects request naming 1000 keys of 1024 bytes, or a
/// CompleteMultipartUpload naming 10000 parts with their checksums, fits with room to spare.
/// s3s's own limit (20 MiB) is never reached, as bodies are read here first.
const MAX_XML_BODY_BYTES: usize = 4 << 20;

/// XML bodies buffered at once, so that requests (read before their signature is checked)
/// cannot make the server hold more than this many times `MAX_XML_BODY_BYTES`; further ones
/// wait their turn within [`BODY_READ_TIMEOUT`].
static XML_BODIES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(32));

/// How long such a body may take to arrive.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Query parameters naming the PUT operations whose body is a configuration document.
const XML_SUBRESOURCES: [&str; 20] = [
    "tagging",
    "acl",
    "cors",
    "versioning",
    "lifecycle",
    "policy",
    "ownershipControls",
    "encryption",
    "notification",
    "replication",
    "object-lock",
    "publicAccessBlock",
    "logging",
    "website",
    "accelerate",
    "requestPayment",
    "retention",
    "legal-hold",
    "intelligent-tiering",
    "inventory",
];

const CONTENT_MD5: &str = "content-md5";
const X_AMZ_DATE: &str = "x-amz-date";
/// How a SigV4 `Authorization` header starts.
const SIGV4_ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Removes an empty `Authorization`: S3 treats the request as anonymous (403), not malformed.
pub fn normalise(headers: &mut HeaderMap) {
    if headers.get(AUTHORIZATION).is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace)) {
        headers.remove(AUTHORIZATION);
    }
}

/// Rejects a V2-signed request that V4's rules would refuse (or any, with V2 off), a request
/// for an unsupported security setting or a form upload, a presigned URL valid for longer than
/// S3 allows or with a malformed signature, an empty Content-MD5, and an XML body that is too
/// large, cut short, or does not match its Content-MD5. XML bodies are read here (and passed
/// on buffered) rather than by s3s, which answers a body it fails to read with a 500; object
/// data is not read.
pub async fn check(req: &mut Request<Body>) -> S3Result<()> {
    sigv2::check(req).await?;
    unsupported::check(req)?;
    date_for_sigv4(req.headers_mut())?;
    let query = req.uri().query().unwrap_or_default();
    check_presigned(query)?;
    let content_md5 = match req.headers().get(CONTENT_MD5) {
        Some(sent) => {
            let sent = sent.to_str().map_err(|_| invalid_digest())?.trim().to_owned();
            if sent.is_empty() {
                return Err(invalid_digest());
            }
            Some(sent)
        }
        None => None,
    };
    // An aws-chunked body's MD5 is that of the decoded payload, which s3s checks on the way.
    let streaming = req.headers().get("x-amz-content-sha256").is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
    // A POST form upload is read as a stream by `post_object`, never buffered here.
    let form = post_object::is_form_upload(req.method(), req.headers());
    if !carries_xml_body(req.method(), query) || streaming || form {
        return Ok(());
    }
    let body = read_xml_body(req).await?;
    match content_md5 {
        Some(sent) => checksum::check_content_md5(Some(&sent), &Md5::digest(&body).into()),
        None => Ok(()),
    }
}

/// SigV4 takes the request time from `x-amz-date`, or, without it, from a signed `Date` header
/// (AWS ignores `Date` when both are sent). s3s reads only `x-amz-date`, so a request timed by
/// `Date` alone gets its time as `x-amz-date` too: the string to sign carries the time in that
/// format either way, and `x-amz-date` is then not among the signed headers, so the signature
/// still holds. A V4 request with neither (or an unsigned `Date`) is refused as AWS does.
fn date_for_sigv4(headers: &mut HeaderMap) -> S3Result<()> {
    let Some(authorization) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    if !authorization.starts_with(SIGV4_ALGORITHM) || headers.contains_key(X_AMZ_DATE) {
        return Ok(());
    }
    let signed_headers = authorization.split([',', ' ']).find_map(|part| part.trim().strip_prefix("SignedHeaders="));
    let date_signed =
        signed_headers.is_some_and(|names| names.split(';').any(|name| name.eq_ignore_ascii_case("date")));
    let date = headers.get(DATE).and_then(|v| v.to_str().ok()).and_then(parse::http_date).filter(|_| date_signed);
    let value = date
        .and_then(|date| date.to_offset(time::UtcOffset::UTC).format(parse::ISO8601_BASIC).ok())
        .and_then(|text| HeaderValue::from_str(&text).ok())
        .ok_or_else(|| s3_error!(AccessDenied, "AWS authentication requires a valid Date or x-amz-date header"))?;
    headers.insert(X_AMZ_DATE, value);
    Ok(())
}

/// The presigned-URL checks s3s makes otherwise with the wrong answer: an expiry beyond a week
/// (AWS: AuthorizationQueryParametersError) and a signature that is not 64 hex digits (AWS:
/// SignatureDoesNotMatch, 403, as for any wrong signature; s3s says InvalidRequest).
fn check_presigned(query: &str) -> S3Result<()> {
    let param = |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='));
    if param("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e > MAX_PRESIGNED_EXPIRY_SECS) {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        );
        e.set_status_code(StatusCode::BAD_REQUEST);
        return Err(e);
    }
    let well_formed = |signature: &str| signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
    if param("X-Amz-Signature").is_some_and(|signature| !well_formed(signature)) {
        return Err(s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided."
        ));
    }
    Ok(())
}

/// Reads an XML request body into the request (s3s then finds it buffered): one declared
/// larger than any XML body S3 accepts is refused unread, and one that ends before its
/// declared length is an incomplete body (400), never a server error.
async fn read_xml_body(req: &mut Request<Body>) -> S3Result<bytes::Bytes> {
    let declared = match req.headers().get(CONTENT_LENGTH) {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "The Content-Length header is not a valid number."))?,
        ),
        None => None,
    };
    if declared.is_some_and(|len| len > MAX_XML_BODY_BYTES as u64) {
        return Err(s3_error!(MaxMessageLengthExceeded, "Your request was too big."));
    }
    let timeout = || {
        s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period."
        )
    };
    let read = async {
        let _permit =
            XML_BODIES.acquire().await.map_err(|_| s3_error!(SlowDown, "Please reduce your request rate."))?;
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = req.body_mut().next().await {
            let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "The request body could not be read: {e}"))?;
            if body.len() + chunk.len() > MAX_XML_BODY_BYTES {
                return Err(s3_error!(MaxMessageLengthExceeded, "Your request was too big."));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(BODY_READ_TIMEOUT, read).await.map_err(|_| timeout())??;
    *req.body_mut() = Body::from(body.clone());
    if declared.is_some_and(|len| len != body.len() as u64) {
        return Err(s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        ));
    }
    Ok(body)
}

/// Requests whose body is an XML (or JSON policy) document the operation parses: POSTs
/// (DeleteObjects, CompleteMultipartUpload; form uploads are refused before), and PUTs of a
/// bucket or object subresource, as opposed to object data, which the object handlers verify
/// while it streams.
fn carries_xml_body(method: &Method, query: &str) -> bool {
    let subresource = query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        XML_SUBRESOURCES.contains(&name)
    });
    *method == Method::POST || (*method == Method::PUT && subresource)
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
        assert!(carries_xml_body(&Method::PUT, "acl"));
        assert!(carries_xml_body(&Method::PUT, "ownershipControls"));
        assert!(!carries_xml_body(&Method::PUT, "x-id=PutObject"));
        assert!(!carries_xml_body(&Method::PUT, "partNumber=1&uploadId=u"));
        assert!(!carries_xml_body(&Method::PUT, "x-amz-meta-acl=1"));
    }

    #[test]
    fn presigned_signatures_must_be_hex() {
        let signature = "a".repeat(64);
        assert!(check_presigned(&format!("X-Amz-Signature={signature}")).is_ok());
        for bad in ["abc", "", &"g".repeat(64)] {
            let e = check_presigned(&format!("X-Amz-Expires=60&X-Amz-Signature={bad}")).unwrap_err();
            assert_eq!(e.code(), &S3ErrorCode::SignatureDoesNotMatch, "{bad:?}");
        }
        assert!(check_presigned("X-Amz-Expires=604801").is_err());
    }

    #[test]
    fn a_signed_date_times_a_sigv4_request_without_x_amz_date() {
        let authorization = |signed: &str| {
            format!("AWS4-HMAC-SHA256 Credential=AK/20261201/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature=00")
        };
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization("date;host").parse().unwrap());
        headers.insert(DATE, "Tue, 01 Dec 2026 12:00:00 GMT".parse().unwrap());
        date_for_sigv4(&mut headers).unwrap();
        assert_eq!(headers.get(X_AMZ_DATE).unwrap(), "20261201T120000Z");
        // x-amz-date, when sent, is the time: Date is ignored.
        headers.insert(DATE, "garbage".parse().unwrap());
        date_for_sigv4(&mut headers).unwrap();
        assert_eq!(headers.get(X_AMZ_DATE).unwrap(), "20261201T120000Z");
        // An unsigned Date does not time the request.
        headers.remove(X_AMZ_DATE);
        headers.insert(AUTHORIZATION, authorization("host").parse().unwrap());
        headers.insert(DATE, "Tue, 01 Dec 2026 12:00:00 GMT".parse().unwrap());
        assert_eq!(date_for_sigv4(&mut headers).unwrap_err().code(), &S3ErrorCode::AccessDenied);
    }
}
