//! Signature Version 2 at the front door. s3s accepts V2 (it tries V2 before V4) without V4's
//! protections: no clock-skew window for header-signed requests, no cap on a presigned URL's
//! `Expires`, and a variable-time signature comparison. Before s3s sees a V2-signed request,
//! [`check`] refuses it when V2 is turned off (`--sigv2 false`), applies V4's skew window and
//! expiry cap, and verifies the signature itself in constant time, so that s3s's own comparison
//! only ever sees signatures that already matched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, DATE, HOST};
use hyper::{HeaderMap, Request};
use s3s::auth::S3Auth;
use s3s::{s3_error, Body, S3Error, S3Result};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::request_checks::MAX_PRESIGNED_EXPIRY_SECS;

/// How far the `Date` (or `x-amz-date`) of a header-signed request may be from the server's
/// clock, either way: V4's window.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The sub-resources that belong to the signed resource, in the order V2 signs them (the
/// list s3s verifies against; AWS's documented list).
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Whether V2 signatures are accepted (`--sigv2`); on unless turned off at start-up.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// The auth provider V2 signatures are verified against: the one s3s uses. Process-wide
/// because the front end reaches this module through `request_checks::check`, which has no
/// handle on the server's state.
static VERIFIER: RwLock<Option<Arc<dyn S3Auth>>> = RwLock::new(None);

/// Turns Signature Version 2 on or off for this process.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Verifies V2 signatures against the key pairs `auth` knows. Until one is set, V2-signed
/// requests are refused.
pub fn verify_with(auth: Arc<dyn S3Auth>) {
    if let Ok(mut slot) = VERIFIER.write() {
        *slot = Some(auth);
    }
}

/// A V2 signature as the request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum V2Signature {
    /// `Authorization: AWS ACCESS_KEY:SIGNATURE`, dated by `Date` or `x-amz-date`.
    Header { access_key: String, signature: String },
    /// `?AWSAccessKeyId=...&Expires=...&Signature=...`.
    Presigned { access_key: String, signature: String, expires: String },
}

/// Refuses a V2-signed request that V4's rules would refuse, or any V2-signed request when V2
/// is off; verifies the signature of the others. Requests not signed with V2 pass untouched.
pub async fn check(req: &Request<Body>) -> S3Result<()> {
    let query = decoded_query(req.uri().query().unwrap_or_default());
    let Some(found) = v2_signature(req.headers(), &query) else { return Ok(()) };
    if !ENABLED.load(Ordering::Relaxed) {
        return Err(not_supported());
    }
    let signature = found?;
    let now = OffsetDateTime::now_utc();
    match &signature {
        V2Signature::Header { .. } => check_request_time(req.headers(), now)?,
        V2Signature::Presigned { expires, .. } => check_expiry(expires, now)?,
    }
    verify(req, &query, &signature).await
}

/// The answer AWS gives a V2-signed request in a region without V2.
fn not_supported() -> S3Error {
    s3_error!(
        InvalidRequest,
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
    )
}

/// Finds a V2 signature the way s3s does: a `Signature` query parameter first, then an
/// `Authorization: AWS ...` header. `Some(Err)` is a V2 presigned URL missing a field.
fn v2_signature(headers: &HeaderMap, query: &[(String, String)]) -> Option<S3Result<V2Signature>> {
    if query.iter().any(|(name, _)| name == "Signature") {
        let fields = (unique(query, "AWSAccessKeyId"), unique(query, "Signature"), unique(query, "Expires"));
        let (Some(access_key), Some(signature), Some(expires)) = fields else {
            return Some(Err(s3_error!(
                AuthorizationQueryParametersError,
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
            )));
        };
        // s3s decodes the signature once more after the query string: so does this check.
        let signature = percent_encoding::percent_decode_str(signature).decode_utf8_lossy().into_owned();
        let (access_key, expires) = (access_key.to_owned(), expires.to_owned());
        return Some(Ok(V2Signature::Presigned { access_key, signature, expires }));
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (access_key, signature) = auth.strip_prefix("AWS ")?.split_once(':')?;
    Some(Ok(V2Signature::Header { access_key: access_key.to_owned(), signature: signature.to_owned() }))
}

/// Refuses a header-signed request without a readable date, or dated outside the skew window.
fn check_request_time(headers: &HeaderMap, now: OffsetDateTime) -> S3Result<()> {
    let sent = headers.get("x-amz-date").or_else(|| headers.get(DATE));
    let Some(signed_at) = sent.and_then(|v| v.to_str().ok()).and_then(crate::parse::http_date) else {
        return Err(s3_error!(AccessDenied, "AWS authentication requires a valid Date or x-amz-date header"));
    };
    if (now - signed_at).unsigned_abs() > MAX_CLOCK_SKEW {
        return Err(s3_error!(
            RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large."
        ));
    }
    Ok(())
}

/// Refuses a presigned URL that has expired, or that expires further ahead than V4 allows.
fn check_expiry(expires: &str, now: OffsetDateTime) -> S3Result<()> {
    let Some(expires_at) = expires.parse::<i64>().ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()) else {
        return Err(s3_error!(AccessDenied, "Invalid date (should be seconds since epoch): {expires}"));
    };
    if expires_at < now {
        return Err(s3_error!(AccessDenied, "Request has expired"));
    }
    if (expires_at - now).whole_seconds() > i64::try_from(MAX_PRESIGNED_EXPIRY_SECS).unwrap_or(i64::MAX) {
        return Err(s3_error!(
            AuthorizationQueryParametersError,
            "Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRY_SECS} from now"
        ));
    }
    Ok(())
}

/// Verifies the signature in constant time against the resource as s3s will sign it:
/// path style, or under the bucket named by the Host header's first label (virtual-host style
/// with `--domain`; s3s tells which, and checks again).
async fn verify(req: &Request<Body>, query: &[(String, String)], signature: &V2Signature) -> S3Result<()> {
    let auth = VERIFIER.read().ok().and_then(|slot| slot.clone()).ok_or_else(not_supported)?;
    let (access_key, sent, mode) = match signature {
        V2Signature::Header { access_key, signature } => (access_key, signature, Mode::Header),
        V2Signature::Presigned { access_key, signature, expires } => (access_key, signature, Mode::Presigned(expires)),
    };
    let secret = auth.get_secret_key(access_key).await?;
    let matches = |bucket: Option<&str>| {
        let string_to_sign = string_to_sign(req, query, mode, bucket);
        compute_signature(secret.expose().as_bytes(), &string_to_sign).as_bytes().ct_eq(sent.as_bytes())
    };
    let mut matched = matches(None);
    if let Some(bucket) = host_bucket(req) {
        matched |= matches(Some(&bucket));
    }
    if bool::from(matched) {
        return Ok(());
    }
    Err(s3_error!(
        SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    ))
}

/// What the third line of the string to sign holds.
#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    /// The `Date` header (empty when `x-amz-date` is sent).
    Header,
    /// The `Expires` query parameter.
    Presigned(&'a str),
}

/// The bucket a virtual-host style Host header would name: its first label, unless the host is
/// an IP address or a single label.
fn host_bucket(req: &Request<Body>) -> Option<String> {
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok()).or_else(|| req.uri().host())?;
    let name = crate::parse::without_port(host);
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return None;
    }
    let (bucket, rest) = name.split_once('.')?;
    (!bucket.is_empty() && !rest.is_empty()).then(|| bucket.to_owned())
}

/// Base64 of HMAC-SHA1 over the string to sign.
fn compute_signature(secret: &[u8], string_to_sign: &str) -> String {
    use base64::Engine;
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else { return String::new() };
    mac.update(string_to_sign.as_bytes());
    let digest: [u8; 20] = mac.finalize().into_bytes().into();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The V2 string to sign, built as s3s builds it: verb, Content-MD5, Content-Type, date or
/// expiry, the `x-amz-*` headers in name order (repeated values joined by commas), then the
/// resource with its signed sub-resources.
fn string_to_sign(req: &Request<Body>, query: &[(String, String)], mode: Mode<'_>, bucket: Option<&str>) -> String {
    let headers = sorted_headers(req.headers());
    let header = |name: &str| unique(&headers, name).unwrap_or_default();
    let mut out = String::with_capacity(256);
    for line in [req.method().as_str(), header("content-md5"), header(CONTENT_TYPE.as_str())] {
        out.push_str(line);
        out.push('\n');
    }
    match mode {
        Mode::Header if unique(&headers, "x-amz-date").is_some() => {}
        Mode::Header => out.push_str(header(DATE.as_str())),
        Mode::Presigned(expires) => out.push_str(expires),
    }
    out.push('\n');
    let mut previous = "";
    for (name, _) in headers.iter().filter(|(name, _)| name.starts_with("x-amz-")) {
        if *name == previous {
            continue;
        }
        previous = *name;
        let values: Vec<&str> = headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.trim()).collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    if let Some(bucket) = bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(req.uri().path());
    let mut separator = '?';
    for name in SIGNED_SUBRESOURCES {
        if let Some(value) = unique(query, name) {
            out.push(separator);
            separator = '&';
            out.push_str(name);
            if !value.is_empty() {
                out.push('=');
                out.push_str(value);
            }
        }
    }
    out
}

/// Headers as (lower-case name, value) in name order, keeping the order of repeated names;
/// values that are not UTF-8 are left out (as s3s leaves them out).
fn sorted_headers(map: &HeaderMap) -> Vec<(&str, &str)> {
    let mut headers: Vec<(&str, &str)> =
        map.iter().filter_map(|(n, v)| std::str::from_utf8(v.as_bytes()).ok().map(|v| (n.as_str(), v))).collect();
    headers.sort_by(|a, b| a.0.cmp(b.0));
    headers
}

/// The value of `name` when it occurs exactly once.
fn unique<'a, K: AsRef<str>, V: AsRef<str>>(pairs: &'a [(K, V)], name: &str) -> Option<&'a str> {
    let mut found = pairs.iter().filter(|(n, _)| n.as_ref() == name);
    let first = found.next()?;
    found.next().is_none().then(|| first.1.as_ref())
}

/// The query string as decoded (name, value) pairs, in their order (`+` is a space).
fn decoded_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::builder().method("GET").uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_string_to_sign_matches_the_aws_example() {
        // "Object GET" of AWS's RESTAuthentication examples, virtual-host style.
        let req = request(
            "/photos/puppy.jpg",
            &[("host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"), ("date", "Tue, 27 Mar 2007 19:36:42 +0000")],
        );
        let sts = string_to_sign(&req, &[], Mode::Header, host_bucket(&req).as_deref());
        assert_eq!(sts, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg");
        let signature = compute_signature(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sts);
        assert_eq!(signature, "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn amz_headers_and_subresources_are_signed_in_order() {
        let req = request(
            "/b/k?uploadId=u&partNumber=2&x-id=UploadPart",
            &[("x-amz-meta-b", "2"), ("x-amz-date", "d"), ("x-amz-meta-a", " 1 "), ("x-amz-meta-a", "3")],
        );
        let query = decoded_query(req.uri().query().unwrap());
        let sts = string_to_sign(&req, &query, Mode::Header, None);
        assert_eq!(sts, "GET\n\n\n\nx-amz-date:d\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n/b/k?partNumber=2&uploadId=u");
    }

    #[test]
    fn v2_signatures_are_found_in_the_header_or_the_query() {
        let headers = request("/", &[("authorization", "AWS AK:c2ln")]).headers().clone();
        assert_eq!(
            v2_signature(&headers, &[]).unwrap().unwrap(),
            V2Signature::Header { access_key: "AK".into(), signature: "c2ln".into() }
        );
        let v4 = request("/", &[("authorization", "AWS4-HMAC-SHA256 Credential=x")]).headers().clone();
        assert!(v2_signature(&v4, &[]).is_none());
        let query = decoded_query("AWSAccessKeyId=AK&Expires=10&Signature=a%2Bb");
        assert_eq!(
            v2_signature(&HeaderMap::new(), &query).unwrap().unwrap(),
            V2Signature::Presigned { access_key: "AK".into(), signature: "a+b".into(), expires: "10".into() }
        );
        assert!(v2_signature(&HeaderMap::new(), &decoded_query("Signature=x")).unwrap().is_err());
        assert!(v2_signature(&HeaderMap::new(), &decoded_query("X-Amz-Signature=x")).is_none());
    }

    #[test]
    fn the_skew_window_is_fifteen_minutes_either_way() {
        let now = OffsetDateTime::from_unix_timestamp(1_175_024_202).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(DATE, "Tue, 27 Mar 2007 19:36:42 GMT".parse().unwrap());
        assert!(check_request_time(&headers, now + time::Duration::minutes(14)).is_ok());
        let late = check_request_time(&headers, now + time::Duration::minutes(16)).unwrap_err();
        assert_eq!(late.code(), &S3ErrorCode::RequestTimeTooSkewed);
        assert!(check_request_time(&headers, now - time::Duration::minutes(16)).is_err());
        assert_eq!(check_request_time(&HeaderMap::new(), now).unwrap_err().code(), &S3ErrorCode::AccessDenied);
    }

    #[test]
    fn presigned_expiry_is_capped_at_a_week() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
        assert!(check_expiry("1000003600", now).is_ok());
        assert!(check_expiry("1000604800", now).is_ok());
        let far = check_expiry("1000604801", now).unwrap_err();
        assert_eq!(far.code(), &S3ErrorCode::AuthorizationQueryParametersError);
        assert_eq!(check_expiry("999999999", now).unwrap_err().code(), &S3ErrorCode::AccessDenied);
        assert_eq!(check_expiry("soon", now).unwrap_err().code(), &S3ErrorCode::AccessDenied);
    }

    #[test]
    fn virtual_host_buckets_come_from_named_hosts_only() {
        assert_eq!(host_bucket(&request("/", &[("host", "b.s3.local:9000")])).as_deref(), Some("b"));
        assert_eq!(host_bucket(&request("/", &[("host", "127.0.0.1:9000")])), None);
        assert_eq!(host_bucket(&request("/", &[("host", "localhost:9000")])), None);
    }
}
