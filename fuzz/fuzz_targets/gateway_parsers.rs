//! Every parser of `gateway/src/parse.rs` on arbitrary text: none panics, and each keeps the
//! contract the gateway relies on (tag limits, key limits, token round trip, scope and host
//! slicing).

#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use s3s::S3ErrorCode;

#[path = "../../gateway/src/parse.rs"]
mod parse;

/// S3's tag limits, restated here so that `check_tags` is compared with a model, not with itself.
const MAX_TAGS: usize = 10;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;
/// S3's key limit.
const MAX_KEY_BYTES: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    tagging_header(&text);
    tag_limits(&text);
    key(&text);
    token(&text);
    for line in text.split('\n') {
        scope_region(line);
        without_port(line);
    }
});

/// Whether `tags` obey S3's limits.
fn within_tag_limits(tags: &[(String, String)]) -> bool {
    tags.len() <= MAX_TAGS
        && tags.iter().enumerate().all(|(i, (k, v))| {
            !k.is_empty()
                && k.chars().count() <= MAX_TAG_KEY_CHARS
                && v.chars().count() <= MAX_TAG_VALUE_CHARS
                && tags[..i].iter().all(|(other, _)| other != k)
        })
}

/// The `x-amz-tagging` header: accepted tags obey the limits, one tag per `&`-separated pair,
/// and the same tags encoded again parse back to themselves.
fn tagging_header(text: &str) {
    assert!(parse::parse_tagging_header(None).unwrap().is_empty());
    let Ok(tags) = parse::parse_tagging_header(Some(text)) else { return };
    assert!(within_tag_limits(&tags), "accepted tags break the limits: {tags:?}");
    assert!(parse::check_tags(&tags).is_ok());
    let expected_count = if text.is_empty() { 0 } else { text.split('&').count() };
    assert_eq!(tags.len(), expected_count, "one tag per pair in {text:?}");

    let encoded: Vec<String> = tags
        .iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect();
    let again = parse::parse_tagging_header(Some(&encoded.join("&"))).expect("re-encoded tags parse");
    assert_eq!(again, tags);
}

/// `check_tags` (also used for PutObjectTagging's XML) agrees with the model on tags taken from
/// the lines of the input, `key=value` each, without any decoding.
fn tag_limits(text: &str) {
    let tags: Vec<(String, String)> = text
        .split('\n')
        .map(|line| line.split_once('=').unwrap_or((line, "")))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let result = parse::check_tags(&tags);
    assert_eq!(result.is_ok(), within_tag_limits(&tags), "check_tags disagrees on {tags:?}: {result:?}");
    if let Err(e) = result {
        assert_eq!(*e.code(), S3ErrorCode::InvalidTag);
    }
}

/// Object keys: accepted exactly when non-empty, at most 1024 bytes and free of NUL.
fn key(text: &str) {
    let result = parse::check_key(text);
    let valid = !text.is_empty() && text.len() <= MAX_KEY_BYTES && !text.contains('\0');
    assert_eq!(result.is_ok(), valid, "check_key disagrees on a key of {} bytes: {result:?}", text.len());
    if !text.is_empty() && text.len() > MAX_KEY_BYTES {
        assert_eq!(*result.unwrap_err().code(), S3ErrorCode::KeyTooLongError);
    }
}

/// Continuation tokens: any name survives the round trip, tokens are URL-safe, and a token that
/// decodes is the one canonical encoding of its name (so a client cannot alias a position).
fn token(text: &str) {
    let encoded = parse::encode_token(text);
    assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{encoded:?}");
    assert_eq!(parse::decode_token(&encoded).unwrap(), text);
    if let Ok(name) = parse::decode_token(text) {
        assert_eq!(parse::encode_token(&name), text, "token {text:?} is not canonical");
    }
}

/// The region of a credential scope is its third `/`-separated field, exactly.
fn scope_region(credential: &str) {
    match parse::scope_region(credential) {
        Some(region) => {
            assert!(!region.contains('/'));
            let mut fields = credential.splitn(3, '/');
            let (first, second) = (fields.next().unwrap(), fields.next().unwrap());
            let prefix = format!("{first}/{second}/{region}");
            assert!(credential.starts_with(&prefix), "{credential:?} does not start with {prefix:?}");
            assert!(credential.len() == prefix.len() || credential[prefix.len()..].starts_with('/'));
        }
        None => assert!(credential.matches('/').count() < 2, "{credential:?} has a third field"),
    }
}

/// A Host header without its port: a prefix of the header, and what it drops is `:digits`
/// (or, for an IPv6 literal, whatever follows the closing bracket).
fn without_port(host: &str) {
    let name = parse::without_port(host);
    assert!(host.starts_with(name), "{name:?} is not a prefix of {host:?}");
    let rest = &host[name.len()..];
    if host.starts_with('[') && host.contains(']') {
        assert!(name.ends_with(']') && !name[..name.len() - 1].contains(']'), "{host:?} -> {name:?}");
    } else if !rest.is_empty() {
        let port = rest.strip_prefix(':').expect("only a port is dropped");
        assert!(!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()), "{host:?} -> {name:?}");
    }
}
