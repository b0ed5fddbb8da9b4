//! GetObject and HeadObject.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::VersionRecord;
use storage::put::BodyStream;

use super::conditions::Conditions;
use super::convert::{self, StandardHeaders};
use super::{versioning, Gateway};
use crate::checksum;
use crate::error::OrS3;
use crate::sse::headers::{CustomerHeaders, SseOutput};

/// Turns an object-layer stream into a response body.
pub fn blob(body: BodyStream) -> StreamingBlob {
    StreamingBlob::wrap(body)
}

/// The byte range a GET or HEAD asks for, and the `Content-Range` to answer with.
fn resolve_range(
    record: &VersionRecord,
    range: Option<Range>,
    part_number: Option<i32>,
) -> S3Result<Option<std::ops::Range<u64>>> {
    let size = crate::sse::object_size(record);
    let part_sizes = crate::sse::part_sizes(record);
    if let Some(number) = part_number {
        if !(1..=10_000).contains(&number) {
            return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
        }
        if range.is_some() {
            return Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber query parameter"));
        }
        if record.parts.len() <= 1 && number == 1 {
            return Ok(None);
        }
        let index = usize::try_from(number - 1).ok().filter(|i| *i < record.parts.len());
        // AWS answers a part number past the object's part count as an invalid part (400).
        let index = index.ok_or_else(|| s3_error!(InvalidPart, "The requested partnumber is not satisfiable"))?;
        let start: u64 = part_sizes[..index].iter().sum();
        return Ok(Some(start..start + part_sizes[index]));
    }
    match range {
        None => Ok(None),
        Some(range) => match range.check(size) {
            Ok(bytes) if !bytes.is_empty() => Ok(Some(bytes)),
            _ => {
                let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable");
                let mut headers = hyper::HeaderMap::new();
                headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/xml"));
                if let Ok(value) = hyper::header::HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(hyper::header::CONTENT_RANGE, value);
                }
                e.set_headers(headers);
                Err(e)
            }
        },
    }
}

fn content_range(range: &std::ops::Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{size}", range.start, range.end.saturating_sub(1))
}

fn wants_checksum(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

impl Gateway {
    pub(super) async fn get_object_impl(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let record = handle.record().clone();
        let customer = CustomerHeaders::of_get(&input);
        let data_key = self.sse.data_key(record.encryption.as_ref(), &customer).await?;
        let conditions = Conditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
            if_unmodified_since: input.if_unmodified_since,
        };
        conditions.check(&record, false)?;
        let range = resolve_range(&record, input.range, input.part_number)?;
        let size = crate::sse::object_size(&record);
        let length = range.as_ref().map_or(size, |r| r.end - r.start);
        let content_range = range.as_ref().map(|r| content_range(r, size));
        let whole = range.is_none();
        let body = self.sse.read(handle, range, data_key, &input.bucket, &input.key).await?;
        let headers = StandardHeaders::of(&record);
        let sums = record.checksum.as_ref().filter(|_| whole && wants_checksum(input.checksum_mode.as_ref()));
        let checksum = sums.map(checksum::to_dto).unwrap_or_default();
        let mut output = GetObjectOutput {
            body: Some(blob(body)),
            content_length: Some(length as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(convert::etag(&record)),
            last_modified: Some(convert::last_modified(&record)),
            metadata: convert::metadata_out(&record),
            content_type: input.response_content_type.or(headers.content_type.and_then(|c| c.parse().ok())),
            content_encoding: input.response_content_encoding.or(headers.content_encoding),
            content_disposition: input.response_content_disposition.or(headers.content_disposition),
            content_language: input.response_content_language.or(headers.content_language),
            cache_control: input.response_cache_control.or(headers.cache_control),
            expires: input.response_expires.or(headers.expires),
            tag_count: (!record.tags.is_empty()).then_some(record.tags.len() as i32),
            parts_count: input.part_number.map(|_| record.parts.len().max(1) as i32),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_type: sums.map(|s| ChecksumType::from(s.kind.clone())),
            version_id: versioning::reported(&record, &config),
            ..Default::default()
        };
        SseOutput::of(record.encryption.as_ref(), customer.key_md5).get(&mut output);
        Ok(S3Response::new(output))
    }

    pub(super) async fn head_object_impl(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let record = handle.record();
        let customer = CustomerHeaders::of_head(&input);
        self.sse.check_access(record, &customer).await?;
        let conditions = Conditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
            if_unmodified_since: input.if_unmodified_since,
        };
        conditions.check(record, false)?;
        let range = resolve_range(record, input.range, input.part_number)?;
        let headers = StandardHeaders::of(record);
        let sums = record.checksum.as_ref().filter(|_| range.is_none() && wants_checksum(input.checksum_mode.as_ref()));
        let checksum = sums.map(checksum::to_dto).unwrap_or_default();
        let size = crate::sse::object_size(record);
        let mut output = HeadObjectOutput {
            content_length: Some(range.as_ref().map_or(size, |r| r.end - r.start) as i64),
            content_range: range.as_ref().map(|r| content_range(r, size)),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(convert::etag(record)),
            last_modified: Some(convert::last_modified(record)),
            metadata: convert::metadata_out(record),
            content_type: input.response_content_type.or(headers.content_type.and_then(|c| c.parse().ok())),
            content_encoding: input.response_content_encoding.or(headers.content_encoding),
            content_disposition: input.response_content_disposition.or(headers.content_disposition),
            content_language: input.response_content_language.or(headers.content_language),
            cache_control: input.response_cache_control.or(headers.cache_control),
            expires: input.response_expires.or(headers.expires),
            parts_count: input.part_number.map(|_| record.parts.len().max(1) as i32),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_type: sums.map(|s| ChecksumType::from(s.kind.clone())),
            version_id: versioning::reported(record, &config),
            ..Default::default()
        };
        SseOutput::of(record.encryption.as_ref(), customer.key_md5).head(&mut output);
        let mut response = S3Response::new(output);
        // s3s's HeadObjectOutput has no tag count; AWS sends it on HEAD as on GET.
        if !record.tags.is_empty() {
            response.headers.insert(TAGGING_COUNT, hyper::header::HeaderValue::from(record.tags.len()));
        }
        Ok(response)
    }
}

/// The header that tells GET and HEAD how many tags the object has.
const TAGGING_COUNT: hyper::header::HeaderName = hyper::header::HeaderName::from_static("x-amz-tagging-count");
