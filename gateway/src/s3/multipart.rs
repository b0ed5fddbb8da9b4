//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
//! ListMultipartUploads.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::{ObjectTemplate, StoredChecksum, UploadRecord};
use storage::multipart::{ChosenPart, MIN_PART_SIZE, PART_NUMBERS};
use storage::upload_list::{UploadEntry, UploadMarker, UploadQuery};
use storage::StorageError;
use uuid::Uuid;

use super::conditions::{write_condition, Conditions};
use super::convert::{self, StandardHeaders};
use super::copy::copy_source;
use super::list::Encoder;
use super::{versioning, Gateway};
use crate::checksum::{self, Algorithm, BodyCheck};
use crate::error::OrS3;
use crate::parse;
use crate::sse::headers::{CustomerHeaders, SseOutput, WriteHeaders};
use crate::sse::package::Layout;
use crate::sse::Sealing;

/// Largest single part (5 GiB).
const MAX_PART_SIZE: i64 = 5 * 1024 * 1024 * 1024;
/// Entries per ListParts / ListMultipartUploads page by default and at most.
const MAX_LISTED: i32 = 1000;

fn upload_id(id: &str) -> S3Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        s3_error!(NoSuchUpload, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
    })
}

fn check_part_number(number: i32) -> S3Result<()> {
    if !PART_NUMBERS.contains(&number) {
        return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
    }
    Ok(())
}

fn page_size(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        Some(n) if n < 0 => {
            Err(s3_error!(InvalidArgument, "Argument max-parts must be an integer between 0 and 2147483647"))
        }
        Some(n) => Ok(n.min(MAX_LISTED) as usize),
        None => Ok(MAX_LISTED as usize),
    }
}

/// The object checksum CompleteMultipartUpload stores: composite of the part checksums when
/// the upload declared an algorithm and every part carries it.
/// The 5 MiB minimum of every part but the last applies to the plaintext the client sent. The
/// object layer judges stored sizes, which for sealed parts include the package headers and
/// tags (ADR 0009), so a sealed part up to 1,312 bytes short of 5 MiB of plaintext passes it.
fn check_plain_part_sizes(upload: &UploadRecord, parts: &[storage::meta::DataPart]) -> storage::Result<()> {
    let Some(encryption) = &upload.template.encryption else {
        return Ok(());
    };
    let layout = Layout::new(encryption.package_bytes);
    let all_but_last = &parts[..parts.len().saturating_sub(1)];
    match all_but_last.iter().find(|part| layout.plain_size(part.size) < MIN_PART_SIZE) {
        Some(part) => Err(StorageError::EntityTooSmall { part: part.number, size: layout.plain_size(part.size) }),
        None => Ok(()),
    }
}

fn completed_checksum(upload: &UploadRecord, parts: &[storage::meta::DataPart]) -> Option<StoredChecksum> {
    let algorithm = upload.template.checksum_algorithm.as_deref().and_then(Algorithm::parse)?;
    if upload.template.checksum_type.as_deref() == Some(checksum::FULL_OBJECT) {
        return None;
    }
    let sums: Vec<Option<&StoredChecksum>> = parts.iter().map(|p| p.checksum.as_ref()).collect();
    checksum::composite(algorithm, &sums)
}

/// The checksum a CompleteMultipartUpload names for a part, as (algorithm, base64 value).
fn named_checksum(part: &CompletedPart) -> Option<(String, String)> {
    [
        (Algorithm::Crc32, &part.checksum_crc32),
        (Algorithm::Crc32c, &part.checksum_crc32c),
        (Algorithm::Sha1, &part.checksum_sha1),
        (Algorithm::Sha256, &part.checksum_sha256),
        (Algorithm::Crc64Nvme, &part.checksum_crc64nvme),
    ]
    .into_iter()
    .find_map(|(algorithm, value)| value.as_ref().map(|v| (algorithm.name().to_owned(), v.clone())))
}

/// A part's body as stored: sealed when the upload is encrypted (its declared length then
/// the sealed length), as received otherwise.
fn seal_part(
    sealing: Option<&Sealing>,
    body: storage::put::BodyStream,
    size: Option<u64>,
    part_number: i32,
) -> S3Result<(storage::put::BodyStream, Option<u64>)> {
    match sealing {
        Some(sealing) => Ok((sealing.seal(body, part_number)?, size.map(|n| sealing.sealed_size(n)))),
        None => Ok((body, size)),
    }
}

impl Gateway {
    pub(super) async fn create_multipart_upload_impl(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        parse::check_key(&input.key)?;
        let checksum_algorithm = match &input.checksum_algorithm {
            Some(name) => Some(
                Algorithm::parse(name.as_str())
                    .ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm provided is unsupported."))?
                    .name()
                    .to_owned(),
            ),
            None => None,
        };
        let acl = self.new_object_acl(&req.extensions, &input.bucket, acl_request!(input)).await?;
        let default = self.bucket_default(&input.bucket).await?;
        let headers = WriteHeaders::of_create(&input);
        let sealing = self.sse.begin_write(&input.bucket, &input.key, &headers, default.as_ref()).await?;
        let template = ObjectTemplate {
            encryption: sealing.as_ref().map(Sealing::template),
            headers: StandardHeaders {
                content_type: input.content_type.map(|c| c.to_string()),
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: input.expires,
            }
            .into_map()?,
            user_metadata: convert::user_metadata(input.metadata)?,
            tags: parse::parse_tagging_header(input.tagging.as_deref())?,
            checksum_algorithm: checksum_algorithm.clone(),
            checksum_type: input.checksum_type.map(|t| t.as_str().to_owned()),
            acl,
        };
        let upload = self.store.create_upload(&input.bucket, &input.key, template).await.or_s3()?;
        let mut output = CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.upload_id.to_string()),
            checksum_algorithm: checksum_algorithm.map(ChecksumAlgorithm::from),
            checksum_type: upload.template.checksum_type.map(ChecksumType::from),
            ..Default::default()
        };
        if let Some(sealing) = &sealing {
            sealing.output().create(&mut output);
        }
        Ok(S3Response::new(output))
    }

    pub(super) async fn upload_part_impl(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        check_part_number(input.part_number)?;
        if input.content_length.is_some_and(|len| len > MAX_PART_SIZE) {
            return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
        }
        let id = upload_id(&input.upload_id)?;
        let upload = self.store.upload(&input.bucket, &input.key, id).await.or_s3()?;
        let customer = CustomerHeaders::of_upload_part(&input);
        let sealing = self.sse.part_sealing(&upload, &customer, &input.bucket, &input.key).await?;
        let check = BodyCheck::from_headers(&req.headers)?;
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody, "The request body is missing."))?;
        let size = input.content_length.map(|len| len as u64);
        let body = check.wrap(body);
        let body = if size.is_none() { super::put::at_most(body, MAX_PART_SIZE as u64) } else { body };
        let (body, size) = seal_part(sealing.as_ref(), body, size, input.part_number)?;
        let mut staged = self.store.stage_part(&input.bucket, &input.key, body, size).await.or_s3()?;
        let plain_md5 = sealing.as_ref().map_or(staged.md5, Sealing::plain_md5);
        if sealing.as_ref().is_some_and(Sealing::reports_plain_md5) {
            // SSE-S3 parts report their plaintext's MD5 as ETag, as on AWS; the object's
            // multipart ETag is then AWS's too.
            staged.md5 = plain_md5;
        }
        let verified = checksum::check_content_md5(input.content_md5.as_deref(), &plain_md5)
            .and_then(|()| check.finish(req.trailing_headers.as_ref()));
        let sum = match verified {
            Ok(sum) => sum,
            Err(e) => {
                self.store.discard(&input.bucket, &input.key, staged).await;
                return Err(e);
            }
        };
        let part = self
            .store
            .commit_part(&input.bucket, &input.key, id, input.part_number, staged, Some(sum.clone()))
            .await
            .or_s3()?;
        let sums = checksum::to_dto(&sum);
        let mut output = UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            ..Default::default()
        };
        if let Some(sealing) = &sealing {
            sealing.output().upload_part(&mut output);
        }
        Ok(S3Response::new(output))
    }

    pub(super) async fn upload_part_copy_impl(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        check_part_number(input.part_number)?;
        let id = upload_id(&input.upload_id)?;
        let upload = self.store.upload(&input.bucket, &input.key, id).await.or_s3()?;
        let customer = CustomerHeaders::of_upload_part_copy(&input);
        let sealing = self.sse.part_sealing(&upload, &customer, &input.bucket, &input.key).await?;
        let source_customer = CustomerHeaders::of_upload_part_copy_source(&input);
        let (src_bucket, src_key, src_version) = copy_source(&input.copy_source)?;
        let source = self.readable_version(&req.extensions, src_bucket, src_key, src_version).await?;
        let record = source.record().clone();
        let conditions = Conditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        conditions.check(&record, true)?;
        // The source is opened (SSE-C sources with the copy-source key) and its plaintext
        // sealed as the upload's part.
        let source_key = self.sse.data_key(record.encryption.as_ref(), &source_customer).await?;
        let source_size = crate::sse::object_size(&record);
        let range = match &input.copy_source_range {
            Some(header) => {
                let range = Range::parse(header).map_err(|_| {
                    s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last")
                })?;
                let Range::Int { first, last: Some(last) } = range else {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The x-amz-copy-source-range value must be of the form bytes=first-last"
                    ));
                };
                if last >= source_size || first > last {
                    return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
                }
                first..last + 1
            }
            None => 0..source_size,
        };
        let length = range.end - range.start;
        let body = self.sse.read(source, Some(range), source_key, src_bucket, src_key).await?;
        let (body, size) = seal_part(sealing.as_ref(), body, Some(length), input.part_number)?;
        let mut staged = self.store.stage_part(&input.bucket, &input.key, body, size).await.or_s3()?;
        if let Some(sealing) = sealing.as_ref().filter(|s| s.reports_plain_md5()) {
            staged.md5 = sealing.plain_md5();
        }
        let part =
            self.store.commit_part(&input.bucket, &input.key, id, input.part_number, staged, None).await.or_s3()?;
        let result = CopyPartResult {
            e_tag: Some(ETag::Strong(part.etag)),
            last_modified: Some(convert::timestamp_ns(storage::store::now_ns())),
            ..Default::default()
        };
        let source_config = self.store.bucket_config(src_bucket).await.or_s3()?;
        let mut output = UploadPartCopyOutput {
            copy_part_result: Some(result),
            copy_source_version_id: versioning::reported(&record, &source_config),
            ..Default::default()
        };
        if let Some(sealing) = &sealing {
            sealing.output().upload_part_copy(&mut output);
        }
        Ok(S3Response::new(output))
    }

    pub(super) async fn complete_multipart_upload_impl(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let id = upload_id(&input.upload_id)?;
        let parts = input.multipart_upload.and_then(|m| m.parts).filter(|p| !p.is_empty()).ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        })?;
        let mut chosen = Vec::with_capacity(parts.len());
        for part in parts {
            let number =
                part.part_number.ok_or_else(|| s3_error!(MalformedXML, "A part is missing its PartNumber."))?;
            check_part_number(number)?;
            let checksum = named_checksum(&part);
            let etag = part.e_tag.map(|e| e.value().to_owned()).unwrap_or_default();
            chosen.push(ChosenPart { number, etag, checksum });
        }
        let if_match = input.if_match.is_some();
        let condition = write_condition(input.if_match, input.if_none_match)?;
        let completed = self
            .store
            .complete_upload(&input.bucket, &input.key, id, &chosen, condition, |upload, parts| {
                check_plain_part_sizes(upload, parts)?;
                Ok(completed_checksum(upload, parts))
            })
            .await;
        let record = self.condition_outcome(&input.bucket, &input.key, if_match, completed).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let sums = record.checksum.as_ref().map(checksum::to_dto).unwrap_or_default();
        let mut output = CompleteMultipartUploadOutput {
            version_id: versioning::reported(&record, &config),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(convert::etag(&record)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_type: record.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
            ..Default::default()
        };
        SseOutput::of(record.encryption.as_ref(), None).complete(&mut output);
        Ok(S3Response::new(output))
    }

    pub(super) async fn abort_multipart_upload_impl(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let id = upload_id(&input.upload_id)?;
        self.store.abort_upload(&input.bucket, &input.key, id).await.or_s3()?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn list_parts_impl(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let id = upload_id(&input.upload_id)?;
        let max = page_size(input.max_parts)?;
        let marker = input.part_number_marker.unwrap_or(0);
        let upload = self.store.upload(&input.bucket, &input.key, id).await.or_s3()?;
        let stored = self.store.list_parts(&input.bucket, &input.key, id).await.or_s3()?;
        let encryption = upload.template.encryption.as_ref();
        let mut remaining = stored.into_iter().filter(|p| p.part.number > marker).peekable();
        let page: Vec<_> = remaining.by_ref().take(max).collect();
        let truncated = remaining.peek().is_some();
        let parts: Vec<Part> = page
            .iter()
            .map(|p| {
                let sums = p.part.checksum.as_ref().map(checksum::to_dto).unwrap_or_default();
                Part {
                    part_number: Some(p.part.number),
                    e_tag: Some(ETag::Strong(p.part.etag.clone())),
                    size: Some(crate::sse::part_plain_size(encryption, p.part.size) as i64),
                    last_modified: Some(convert::timestamp_ns(p.mod_time_ns)),
                    checksum_crc32: sums.checksum_crc32,
                    checksum_crc32c: sums.checksum_crc32c,
                    checksum_sha1: sums.checksum_sha1,
                    checksum_sha256: sums.checksum_sha256,
                    checksum_crc64nvme: sums.checksum_crc64nvme,
                }
            })
            .collect();
        let output = ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: Some(input.part_number_marker.unwrap_or(0)),
            next_part_number_marker: if truncated { page.last().map(|p| p.part.number) } else { None },
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            owner: Some(self.owner()),
            initiator: Some(Initiator { display_name: Some("root".into()), id: Some(self.owner_id.clone()) }),
            checksum_algorithm: upload.template.checksum_algorithm.map(ChecksumAlgorithm::from),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn list_multipart_uploads_impl(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let max = page_size(input.max_uploads)?;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
        let marker = match (key_marker, input.upload_id_marker.clone().filter(|id| !id.is_empty())) {
            (None, _) => UploadMarker::Start,
            (Some(key), None) => UploadMarker::AfterKey(key),
            (Some(key), Some(id)) => UploadMarker::AfterUpload(key, id),
        };
        let query = UploadQuery {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            marker,
            max,
        };
        let page = self.store.list_uploads(&input.bucket, &query).await.or_s3()?;
        let truncated = page.truncated;
        let (mut listed, mut prefixes) = (Vec::new(), Vec::new());
        let (mut next_key, mut next_id) = (None, None);
        for entry in page.entries {
            match entry {
                UploadEntry::Upload(upload) => {
                    next_key = Some(upload.key.clone());
                    next_id = Some(upload.upload_id.to_string());
                    listed.push(MultipartUpload {
                        key: Some(encoder.apply(upload.key)),
                        upload_id: Some(upload.upload_id.to_string()),
                        initiated: Some(convert::timestamp_ns(upload.initiated_ns)),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        owner: Some(self.owner()),
                        initiator: Some(Initiator {
                            display_name: Some("root".into()),
                            id: Some(self.owner_id.clone()),
                        }),
                        checksum_algorithm: upload.template.checksum_algorithm.map(ChecksumAlgorithm::from),
                        ..Default::default()
                    });
                }
                UploadEntry::Prefix(common) => {
                    next_key = Some(common.clone());
                    next_id = None;
                    prefixes.push(CommonPrefix { prefix: Some(encoder.apply(common)) });
                }
            }
        }
        let output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix.map(|p| encoder.apply(p)),
            delimiter: input.delimiter.filter(|d| !d.is_empty()).map(|d| encoder.apply(d)),
            key_marker: input.key_marker.map(|k| encoder.apply(k)),
            upload_id_marker: input.upload_id_marker,
            encoding_type: input.encoding_type,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key.filter(|_| truncated).map(|k| encoder.apply(k)),
            next_upload_id_marker: if truncated { next_id } else { None },
            uploads: (!listed.is_empty()).then_some(listed),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
