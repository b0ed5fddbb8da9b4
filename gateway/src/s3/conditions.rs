//! Conditional requests: the read conditions (If-Match, If-None-Match, If-Modified-Since,
//! If-Unmodified-Since) judged against a version, and the write conditions of PUT, copy and
//! CompleteMultipartUpload, which the object layer decides on each drive as it commits.

use s3s::dto::*;
use s3s::{s3_error, S3Result};
use storage::drive::Condition;
use storage::meta::VersionRecord;

use super::convert;

/// The conditional headers of a read.
#[derive(Debug, Default)]
pub struct Conditions {
    /// If-Match.
    pub if_match: Option<ETagCondition>,
    /// If-None-Match.
    pub if_none_match: Option<ETagCondition>,
    /// If-Modified-Since.
    pub if_modified_since: Option<Timestamp>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<Timestamp>,
}

impl Conditions {
    /// Evaluates the conditions as S3 does: If-Match before If-Unmodified-Since (412), then
    /// If-None-Match before If-Modified-Since (304; 412 for copies).
    pub fn check(&self, record: &VersionRecord, for_copy: bool) -> S3Result<()> {
        let modified = seconds(&convert::last_modified(record));
        let matches = |cond: &ETagCondition| match cond {
            ETagCondition::Any => true,
            ETagCondition::ETag(tag) => tag.value() == crate::sse::etag(record),
        };
        let failed = || s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
        if let Some(cond) = &self.if_match {
            if !matches(cond) {
                return Err(failed());
            }
        } else if let Some(since) = &self.if_unmodified_since {
            if modified > seconds(since) {
                return Err(failed());
            }
        }
        let not_modified = || {
            if for_copy {
                failed()
            } else {
                let mut e = s3_error!(NotModified);
                e.set_headers(convert::validator_headers(record));
                e
            }
        };
        if let Some(cond) = &self.if_none_match {
            if matches(cond) {
                return Err(not_modified());
            }
        } else if let Some(since) = &self.if_modified_since {
            if modified <= seconds(since) {
                return Err(not_modified());
            }
        }
        Ok(())
    }
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// The object-layer condition of a write's If-Match / If-None-Match headers. If-None-Match
/// takes only `*` on writes, as on AWS.
pub fn write_condition(if_match: Option<ETagCondition>, if_none_match: Option<ETagCondition>) -> S3Result<Condition> {
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented: If-Match with If-None-Match"
        )),
        (Some(ETagCondition::ETag(tag)), None) => Ok(Condition::ETag(tag.value().to_owned())),
        (Some(ETagCondition::Any), None) => Err(s3_error!(NotImplemented, "If-Match: * is not supported on writes")),
        (None, Some(ETagCondition::Any)) => Ok(Condition::Absent),
        (None, Some(ETagCondition::ETag(_))) => {
            Err(s3_error!(NotImplemented, "If-None-Match on writes takes only the value *"))
        }
        (None, None) => Ok(Condition::None),
    }
}

/// A write condition header s3s does not parse for this operation (CopyObject's If-Match and
/// If-None-Match, which s3s 0.14 does not model), read from the request headers.
pub fn header_condition(
    headers: &hyper::HeaderMap,
    name: hyper::header::HeaderName,
) -> S3Result<Option<ETagCondition>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => ETagCondition::parse_http_header(value.as_bytes())
            .map(Some)
            .map_err(|_| s3_error!(InvalidArgument, "The conditional header is not a valid ETag or *.")),
    }
}
