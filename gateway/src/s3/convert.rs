//! Conversions between S3 request/response values and the object layer's records.

use std::collections::BTreeMap;

use s3s::dto::{ETag, Metadata, Timestamp, TimestampFormat};
use s3s::{s3_error, S3Result};
use storage::meta::VersionRecord;
use time::OffsetDateTime;

/// Standard headers kept with an object, by the names they are stored under.
#[derive(Debug, Default)]
pub struct StandardHeaders {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Expires.
    pub expires: Option<Timestamp>,
}

const CONTENT_TYPE: &str = "content-type";
/// The Content-Type S3 serves for an object stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";
const CONTENT_ENCODING: &str = "content-encoding";
const CONTENT_DISPOSITION: &str = "content-disposition";
const CONTENT_LANGUAGE: &str = "content-language";
const CACHE_CONTROL: &str = "cache-control";
const EXPIRES: &str = "expires";

impl StandardHeaders {
    /// The stored form.
    pub fn into_map(self) -> S3Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        let pairs = [
            (CONTENT_TYPE, self.content_type),
            (CONTENT_ENCODING, self.content_encoding.and_then(|e| without_aws_chunked(&e))),
            (CONTENT_DISPOSITION, self.content_disposition),
            (CONTENT_LANGUAGE, self.content_language),
            (CACHE_CONTROL, self.cache_control),
        ];
        for (name, value) in pairs {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        }
        if let Some(expires) = self.expires {
            map.insert(EXPIRES.to_owned(), format_http_date(&expires)?);
        }
        Ok(map)
    }

    /// As served for a record: without a stored Content-Type, S3's default.
    pub fn of(record: &VersionRecord) -> Self {
        let get = |name: &str| record.headers.get(name).cloned();
        Self {
            content_type: get(CONTENT_TYPE).or_else(|| Some(DEFAULT_CONTENT_TYPE.to_owned())),
            content_encoding: get(CONTENT_ENCODING),
            content_disposition: get(CONTENT_DISPOSITION),
            content_language: get(CONTENT_LANGUAGE),
            cache_control: get(CACHE_CONTROL),
            expires: get(EXPIRES).and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, &v).ok()),
        }
    }
}

/// A Content-Encoding without `aws-chunked`, which names how the request body was framed, not
/// how the object is encoded (S3 does not store it); `None` when nothing else remains.
fn without_aws_chunked(encoding: &str) -> Option<String> {
    let kept: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// An HTTP date (`Last-Modified`, `Expires`).
pub fn format_http_date(t: &Timestamp) -> S3Result<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).map_err(|_| s3_error!(InvalidArgument, "invalid Expires date"))?;
    String::from_utf8(out).map_err(|_| s3_error!(InvalidArgument, "invalid Expires date"))
}

/// User metadata as stored (lower-case names).
pub fn user_metadata(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let metadata = metadata.unwrap_or_default();
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 2048 {
        return Err(s3_error!(MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size."));
    }
    Ok(metadata.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
}

/// User metadata for a response.
pub fn metadata_out(record: &VersionRecord) -> Option<Metadata> {
    if record.user_metadata.is_empty() {
        return None;
    }
    Some(record.user_metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The ETag of a record, as clients see it (of the plaintext, for SSE-S3 objects).
pub fn etag(record: &VersionRecord) -> ETag {
    ETag::Strong(crate::sse::etag(record).to_owned())
}

/// The `ETag` and `Last-Modified` headers of a record, for responses without a body (304).
pub fn validator_headers(record: &VersionRecord) -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    let etag = format!("\"{}\"", crate::sse::etag(record));
    let pairs = [
        (hyper::header::ETAG, Some(etag)),
        (hyper::header::LAST_MODIFIED, format_http_date(&last_modified(record)).ok()),
    ];
    for (name, value) in pairs {
        if let Some(value) = value.and_then(|v| hyper::header::HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Last-Modified of a record, at the second granularity HTTP dates carry.
pub fn last_modified(record: &VersionRecord) -> Timestamp {
    let seconds = record.mod_time_ns.div_euclid(1_000_000_000);
    let millis = record.mod_time_ns.rem_euclid(1_000_000_000) / 1_000_000;
    let time = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        + time::Duration::milliseconds(millis);
    Timestamp::from(time)
}

/// Time of a nanosecond Unix timestamp.
pub fn timestamp_ns(ns: i64) -> Timestamp {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_not_stored_as_a_content_encoding() {
        assert_eq!(without_aws_chunked("aws-chunked"), None);
        assert_eq!(without_aws_chunked("gzip, aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(without_aws_chunked("aws-chunked,gzip,br").as_deref(), Some("gzip, br"));
        assert_eq!(without_aws_chunked("identity").as_deref(), Some("identity"));
    }
}
