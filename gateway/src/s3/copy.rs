//! CopyObject.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::store::ObjectMeta;
use storage::versions::VersionId;

use super::conditions::{header_condition, write_condition, Conditions};
use super::convert::{self, StandardHeaders};
use super::{versioning, Gateway};
use crate::checksum::{self, Algorithm, BodyCheck};
use crate::error::OrS3;
use crate::parse;
use crate::sse::headers::{CustomerHeaders, Requested, WriteHeaders};
use crate::sse::Sealing;

impl Gateway {
    pub(super) async fn copy_object_impl(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        parse::check_key(&input.key)?;
        let if_match = header_condition(&req.headers, hyper::header::IF_MATCH)?;
        let if_none_match = header_condition(&req.headers, hyper::header::IF_NONE_MATCH)?;
        let if_match_given = if_match.is_some();
        let condition = write_condition(if_match, if_none_match)?;
        // A copy gets the ACL its request asks for, never its source's (as on AWS).
        let acl = self.new_object_acl(&req.extensions, &input.bucket, acl_request!(input)).await?;
        let source_customer = CustomerHeaders::of_copy_source(&input);
        let encryption = WriteHeaders::of_copy(&input);
        let (src_bucket, src_key, src_version) = copy_source(&input.copy_source)?;
        let source = self.readable_version(&req.extensions, src_bucket, src_key, src_version).await?;
        let source_config = self.store.bucket_config(src_bucket).await.or_s3()?;
        let record = source.record().clone();
        let conditions = Conditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        conditions.check(&record, true)?;
        let source_key = self.sse.data_key(record.encryption.as_ref(), &source_customer).await?;
        let replace =
            parse::replaces(input.metadata_directive.as_ref().map(|d| d.as_str()), "x-amz-metadata-directive")?;
        let replace_tags =
            parse::replaces(input.tagging_directive.as_ref().map(|d| d.as_str()), "x-amz-tagging-directive")?;
        let same_version = src_version.is_none_or(|v| v == VersionId::of(&record));
        let changes_encryption = !matches!(encryption.requested()?, Requested::Nothing);
        if src_bucket == input.bucket
            && src_key == input.key
            && same_version
            && !replace
            && !replace_tags
            && !changes_encryption
        {
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
        let default = self.bucket_default(&input.bucket).await?;
        let sealing = self.sse.begin_write(&input.bucket, &input.key, &encryption, default.as_ref()).await?;
        let body = self.sse.read(source, None, source_key, src_bucket, src_key).await?;
        let body = match &check {
            Some(check) => check.wrap_read(body),
            None => body,
        };
        let size = crate::sse::object_size(&record);
        let (body, size) = match &sealing {
            Some(sealing) => (sealing.seal(body, 1)?, sealing.sealed_size(size)),
            None => (body, size),
        };
        let staged = self.store.stage(&input.bucket, &input.key, body, Some(size)).await.or_s3()?;
        let checksum = match check.map(|c| c.finish(None)).transpose() {
            Ok(computed) => computed.or(kept),
            Err(e) => {
                self.store.discard(&input.bucket, &input.key, staged).await;
                return Err(e);
            }
        };
        let encryption = sealing.as_ref().map(Sealing::finish);
        let meta = ObjectMeta { headers, user_metadata, tags, checksum, encryption, acl };
        let copied = self.store.commit_object(&input.bucket, &input.key, staged, meta, condition).await;
        let copied = self.condition_outcome(&input.bucket, &input.key, if_match_given, copied).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
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
        let mut output = CopyObjectOutput {
            copy_object_result: Some(result),
            copy_source_version_id: versioning::reported(&record, &source_config),
            version_id: versioning::reported(&copied, &config),
            ..Default::default()
        };
        if let Some(sealing) = &sealing {
            sealing.output().copy(&mut output);
        }
        Ok(S3Response::new(output))
    }
}

/// The bucket, key and version of an `x-amz-copy-source`.
pub fn copy_source(source: &CopySource) -> S3Result<(&str, &str, Option<VersionId>)> {
    match source {
        CopySource::Bucket { bucket, key, version_id } => {
            Ok((bucket, key, versioning::requested(version_id.as_deref())?))
        }
        _ => Err(s3_error!(NotImplemented, "Access point copy sources are not supported.")),
    }
}
