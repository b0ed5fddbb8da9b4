//! PutObject, GetObject, HeadObject, DeleteObject(s) and CopyObject.

use bytes::Bytes;
use futures::{stream, StreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use storage::meta::VersionRecord;
use storage::put::BodyStream;
use storage::store::ObjectMeta;

use super::convert::{self, StandardHeaders};
use super::Gateway;
use crate::checksum::{self, Algorithm, BodyCheck};
use crate::error::OrS3;
use crate::parse;

/// Largest object a single PUT may carry (5 GiB), as in S3.
const MAX_PUT_SIZE: i64 = 5 * 1024 * 1024 * 1024;
/// Most keys a DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

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
            ETagCondition::ETag(tag) => tag.value() == record.etag,
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

/// Turns an object-layer stream into a response body.
pub fn blob(body: BodyStream) -> StreamingBlob {
    StreamingBlob::wrap(body)
}

fn empty_body() -> BodyStream {
    Box::pin(stream::empty::<storage::Result<Bytes>>())
}

/// The byte range a GET or HEAD asks for, and the `Content-Range` to answer with.
fn resolve_range(
    record: &VersionRecord,
    range: Option<Range>,
    part_number: Option<i32>,
) -> S3Result<Option<std::ops::Range<u64>>> {
    let size = record.size;
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
        let index = index.ok_or_else(|| {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            e.set_status_code(hyper::StatusCode::RANGE_NOT_SATISFIABLE);
            e
        })?;
        let start: u64 = record.parts[..index].iter().map(|p| p.size).sum();
        return Ok(Some(start..start + record.parts[index].size));
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
    pub(super) async fn put_object_impl(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        parse::check_key(&input.key)?;
        if input.content_length.is_some_and(|len| len > MAX_PUT_SIZE) {
            return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
        }
        let check = BodyCheck::from_headers(&req.headers)?;
        let tags = parse::parse_tagging_header(input.tagging.as_deref())?;
        let headers = StandardHeaders {
            content_type: input.content_type.map(|c| c.to_string()),
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
        }
        .into_map()?;
        let user_metadata = convert::user_metadata(input.metadata)?;
        if input.if_match.is_some() || input.if_none_match.is_some() {
            self.check_write_conditions(&input.bucket, &input.key, input.if_match, input.if_none_match).await?;
        }
        let body = input.body.map_or_else(empty_body, |b| check.wrap(b));
        let size = input.content_length.map(|len| len as u64);
        let staged = self.store.stage(&input.bucket, &input.key, body, size).await.or_s3()?;
        let verified = checksum::check_content_md5(input.content_md5.as_deref(), &staged.md5)
            .and_then(|()| check.finish(req.trailing_headers.as_ref()));
        let checksum = match verified {
            Ok(checksum) => checksum,
            Err(e) => {
                self.store.discard(&input.bucket, &input.key, staged).await;
                return Err(e);
            }
        };
        let meta = ObjectMeta { headers, user_metadata, tags, checksum: Some(checksum.clone()) };
        let record = self.store.commit_object(&input.bucket, &input.key, staged, meta).await.or_s3()?;
        let sums = checksum::to_dto(&checksum);
        let output = PutObjectOutput {
            e_tag: Some(convert::etag(&record)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_type: Some(ChecksumType::from(checksum.kind)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    /// Conditional writes: If-Match needs the current ETag, If-None-Match `*` needs no object.
    async fn check_write_conditions(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<ETagCondition>,
        if_none_match: Option<ETagCondition>,
    ) -> S3Result<()> {
        let current = match self.store.get_object(bucket, key).await {
            Ok(handle) => Some(handle.record().clone()),
            Err(storage::StorageError::NoSuchKey { .. }) => None,
            Err(e) => return Err(crate::error::to_s3(e)),
        };
        let failed = || s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
        match (&current, if_match) {
            (None, Some(_)) => return Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
            (Some(record), Some(ETagCondition::ETag(tag))) if tag.value() != record.etag => return Err(failed()),
            _ => {}
        }
        if current.is_some() && if_none_match.is_some() {
            return Err(failed());
        }
        Ok(())
    }

    pub(super) async fn get_object_impl(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        parse::check_version_id(input.version_id.as_deref())?;
        let handle = self.store.get_object(&input.bucket, &input.key).await.or_s3()?;
        let record = handle.record().clone();
        let conditions = Conditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
            if_unmodified_since: input.if_unmodified_since,
        };
        conditions.check(&record, false)?;
        let range = resolve_range(&record, input.range, input.part_number)?;
        let length = range.as_ref().map_or(record.size, |r| r.end - r.start);
        let content_range = range.as_ref().map(|r| content_range(r, record.size));
        let whole = range.is_none();
        let body = handle.read(range).await.or_s3()?;
        let headers = StandardHeaders::of(&record);
        let sums = record.checksum.as_ref().filter(|_| whole && wants_checksum(input.checksum_mode.as_ref()));
        let checksum = sums.map(checksum::to_dto).unwrap_or_default();
        let output = GetObjectOutput {
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
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn head_object_impl(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        parse::check_version_id(input.version_id.as_deref())?;
        let handle = self.store.get_object(&input.bucket, &input.key).await.or_s3()?;
        let record = handle.record();
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
        let output = HeadObjectOutput {
            content_length: Some(range.as_ref().map_or(record.size, |r| r.end - r.start) as i64),
            content_range: range.as_ref().map(|r| content_range(r, record.size)),
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
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn delete_object_impl(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        parse::check_version_id(input.version_id.as_deref())?;
        self.store.delete_object(&input.bucket, &input.key).await.or_s3()?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub(super) async fn delete_objects_impl(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let objects = input.delete.objects;
        if objects.len() > MAX_DELETE_KEYS {
            return Err(s3_error!(MalformedXML, "The request may not name more than {MAX_DELETE_KEYS} keys."));
        }
        self.store.bucket(&input.bucket).await.or_s3()?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = &input.bucket;
        let results = stream::iter(objects)
            .map(|object| async move {
                let result = match parse::check_version_id(object.version_id.as_deref()) {
                    Ok(()) => self.store.delete_object(bucket, &object.key).await.or_s3(),
                    Err(e) => Err(e),
                };
                (object, result)
            })
            .buffered(16)
            .collect::<Vec<_>>()
            .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (object, result) in results {
            match result {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    ..Default::default()
                }),
                Err(e) => errors.push(s3s::dto::Error {
                    key: Some(object.key),
                    version_id: object.version_id,
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                }),
            }
        }
        let output = DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn copy_object_impl(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        parse::check_key(&input.key)?;
        let (src_bucket, src_key) = copy_source(&input.copy_source)?;
        let source = self.store.get_object(src_bucket, src_key).await.or_s3()?;
        let record = source.record().clone();
        let conditions = Conditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        conditions.check(&record, true)?;
        let replace =
            parse::replaces(input.metadata_directive.as_ref().map(|d| d.as_str()), "x-amz-metadata-directive")?;
        let replace_tags =
            parse::replaces(input.tagging_directive.as_ref().map(|d| d.as_str()), "x-amz-tagging-directive")?;
        if src_bucket == input.bucket && src_key == input.key && !replace && !replace_tags {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let (headers, user_metadata) = if replace {
            let headers = StandardHeaders {
                content_type: input.content_type.map(|c| c.to_string()),
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: input.expires,
            };
            (headers.into_map()?, convert::user_metadata(input.metadata)?)
        } else {
            (record.headers.clone(), record.user_metadata.clone())
        };
        let tags =
            if replace_tags { parse::parse_tagging_header(input.tagging.as_deref())? } else { record.tags.clone() };
        // The source's full-object checksum carries over unless another algorithm is asked for;
        // otherwise the copy's is computed as it streams (CRC64NVME by default, as AWS does).
        let requested =
            match &input.checksum_algorithm {
                Some(name) => Some(Algorithm::parse(name.as_str()).ok_or_else(|| {
                    s3_error!(InvalidRequest, "Value for x-amz-checksum-algorithm header is invalid.")
                })?),
                None => None,
            };
        let kept = record
            .checksum
            .clone()
            .filter(|sum| sum.kind == checksum::FULL_OBJECT && requested.is_none_or(|a| a.name() == sum.algorithm));
        let check = kept.is_none().then(|| BodyCheck::compute(requested.unwrap_or(Algorithm::Crc64Nvme)));
        let body = source.read(None).await.or_s3()?;
        let body = match &check {
            Some(check) => check.wrap_read(body),
            None => body,
        };
        let staged = self.store.stage(&input.bucket, &input.key, body, Some(record.size)).await.or_s3()?;
        let checksum = match check.map(|c| c.finish(None)).transpose() {
            Ok(computed) => computed.or(kept),
            Err(e) => {
                self.store.discard(&input.bucket, &input.key, staged).await;
                return Err(e);
            }
        };
        let meta = ObjectMeta { headers, user_metadata, tags, checksum };
        let copied = self.store.commit_object(&input.bucket, &input.key, staged, meta).await.or_s3()?;
        let sums = copied.checksum.as_ref().map(checksum::to_dto).unwrap_or_default();
        let result = CopyObjectResult {
            e_tag: Some(convert::etag(&copied)),
            last_modified: Some(convert::last_modified(&copied)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
    }
}

/// The bucket and key of an `x-amz-copy-source`.
pub fn copy_source(source: &CopySource) -> S3Result<(&str, &str)> {
    match source {
        CopySource::Bucket { bucket, key, version_id } => {
            parse::check_version_id(version_id.as_deref())?;
            Ok((bucket, key))
        }
        _ => Err(s3_error!(NotImplemented, "Access point copy sources are not supported.")),
    }
}
