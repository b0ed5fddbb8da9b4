//! Conversions between S3 request/response values and the object layer's records.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
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
            (CONTENT_ENCODING, self.content_encoding),
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

    /// Read back from a record.
    pub fn of(record: &VersionRecord) -> Self {
        let get = |name: &str| record.headers.get(name).cloned();
        Self {
            content_type: get(CONTENT_TYPE),
            content_encoding: get(CONTENT_ENCODING),
            content_disposition: get(CONTENT_DISPOSITION),
            content_language: get(CONTENT_LANGUAGE),
            cache_control: get(CACHE_CONTROL),
            expires: get(EXPIRES).and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, &v).ok()),
        }
    }
}

fn format_http_date(t: &Timestamp) -> S3Result<String> {
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

/// Parses the `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub fn parse_tagging_header(header: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(header) = header.filter(|h| !h.is_empty()) else {
        return Ok(Vec::new());
    };
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| s3_error!(InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut tags = Vec::new();
    for pair in header.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(key)?, decode(value)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

/// Enforces S3's tag limits.
pub fn check_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than 10"));
    }
    for (index, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagKey or TagValue you have provided is invalid"));
        }
        if tags[..index].iter().any(|(k, _)| k == key) {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// The ETag of a record.
pub fn etag(record: &VersionRecord) -> ETag {
    ETag::Strong(record.etag.clone())
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

/// Rejects keys the object layer cannot hold.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "Object key must not be empty."));
    }
    if key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    if key.contains('\0') {
        return Err(s3_error!(InvalidArgument, "Object key must not contain NUL characters."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_header_decodes_and_enforces_limits() {
        let tags = parse_tagging_header(Some("a=1&b%20c=d+e&empty=")).unwrap();
        assert_eq!(tags, vec![("a".into(), "1".into()), ("b c".into(), "d e".into()), ("empty".into(), "".into())]);
        assert!(parse_tagging_header(Some("a=1&a=2")).is_err());
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tagging_header(Some(&many.join("&"))).is_err());
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("../../etc/passwd").is_ok());
        assert!(check_key("a\0b").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_key("").is_err());
    }
}
