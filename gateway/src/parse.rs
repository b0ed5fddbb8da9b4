//! Parsers of client-supplied text that the gateway owns (s3s parses the rest): the tagging
//! header, object keys, continuation tokens, SigV4 credential scopes and Host headers. They
//! depend on nothing but s3s and small codecs, so the fuzz targets under `fuzz/` include them.

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use s3s::{s3_error, S3Result};

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
    // Parsed as a URL query string, as AWS does: empty pairs are skipped, a key without `=`
    // has an empty value, order is kept.
    for pair in header.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(key)?, decode(value)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

/// A date as clients send it in `Date` (or V2's `x-amz-date`): RFC 1123 (`Tue, 27 Mar 2007
/// 19:36:42 GMT` or `+0000`), or ISO 8601 basic (`20070327T193642Z`), which AWS also accepts.
pub fn http_date(value: &str) -> Option<time::OffsetDateTime> {
    let value = value.trim();
    if let Ok(date) = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822) {
        return Some(date);
    }
    time::PrimitiveDateTime::parse(value, ISO8601_BASIC).ok().map(time::PrimitiveDateTime::assume_utc)
}

/// SigV4's time format (`20070327T193642Z`).
pub const ISO8601_BASIC: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// Most tags an object may carry.
const MAX_OBJECT_TAGS: usize = 10;
/// Most tags a bucket may carry.
const MAX_BUCKET_TAGS: usize = 50;

/// Enforces S3's limits on object tags.
pub fn check_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > MAX_OBJECT_TAGS {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than {MAX_OBJECT_TAGS}"));
    }
    check_tag_pairs(tags)
}

/// Enforces S3's limits on bucket tags.
pub fn check_bucket_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > MAX_BUCKET_TAGS {
        return Err(s3_error!(InvalidTag, "Bucket tag count cannot be greater than {MAX_BUCKET_TAGS}"));
    }
    check_tag_pairs(tags)
}

/// Each tag's key and value within S3's limits, no reserved prefix, no key twice.
fn check_tag_pairs(tags: &[(String, String)]) -> S3Result<()> {
    for (index, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagKey or TagValue you have provided is invalid"));
        }
        if key.starts_with("aws:") {
            return Err(s3_error!(InvalidTag, "Your TagKey cannot be prefixed with aws:"));
        }
        if tags[..index].iter().any(|(k, _)| k == key) {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// Reads a COPY/REPLACE directive (`x-amz-metadata-directive`, `x-amz-tagging-directive`):
/// true for REPLACE, false for COPY or none, an error for anything else.
pub fn replaces(directive: Option<&str>, header: &str) -> S3Result<bool> {
    match directive {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(s3_error!(InvalidArgument, "Unknown {header} value: {other}")),
    }
}

/// Rejects bucket names that s3s lets through but S3 refuses: a dash next to a dot, and the
/// prefixes and suffixes S3 reserves.
pub fn check_bucket_name(name: &str) -> S3Result<()> {
    const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    // The admin API's path starts with this name (crate::admin::PREFIX).
    let reserved = RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        || RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
        || name == crate::admin::RESERVED_BUCKET;
    if reserved || name.contains("-.") || name.contains(".-") || name.contains("..") {
        return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid."));
    }
    Ok(())
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

/// Continuation tokens are opaque to clients: the base64 of the last name returned.
pub fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

/// The name a continuation token carries.
pub fn decode_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

/// The region of a SigV4 credential scope (`AKID/date/region/service/aws4_request`).
pub fn scope_region(credential: &str) -> Option<&str> {
    credential.split('/').nth(2)
}

/// The host part of a Host header, without `:port` (IPv6 literals keep their brackets).
pub fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_header_decodes_and_enforces_limits() {
        let tags = parse_tagging_header(Some("a=1&b%20c=d+e&empty=&&bare&")).unwrap();
        let expected = [("a", "1"), ("b c", "d e"), ("empty", ""), ("bare", "")];
        assert_eq!(tags, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(parse_tagging_header(Some("a=1&a=2")).is_err());
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tagging_header(Some(&many.join("&"))).is_err());
    }

    #[test]
    fn dates_are_read_in_the_formats_clients_send() {
        let expected = time::OffsetDateTime::from_unix_timestamp(1_175_024_202).unwrap();
        assert_eq!(http_date("Tue, 27 Mar 2007 19:36:42 GMT"), Some(expected));
        assert_eq!(http_date("Tue, 27 Mar 2007 19:36:42 +0000"), Some(expected));
        assert_eq!(http_date("20070327T193642Z"), Some(expected));
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("../../etc/passwd").is_ok());
        assert!(check_key("a\0b").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_key("").is_err());
    }

    #[test]
    fn tokens_roundtrip_and_garbage_is_rejected() {
        let token = encode_token("dir/ké y");
        assert_eq!(decode_token(&token).unwrap(), "dir/ké y");
        assert!(decode_token("!!!").is_err());
    }

    #[test]
    fn region_is_the_third_scope_component() {
        assert_eq!(scope_region("AKID/20261123/eu-west-1/s3/aws4_request"), Some("eu-west-1"));
        assert_eq!(scope_region("AKID"), None);
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(without_port("b.s3.local:9000"), "b.s3.local");
        assert_eq!(without_port("s3.local"), "s3.local");
        assert_eq!(without_port("[::1]:9000"), "[::1]");
    }
}
