//! GetObjectAttributes: the ETag, checksum, parts (paged), storage class and size of an object
//! in one call, each only when asked for.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::VersionRecord;

use super::convert;
use super::{versioning, Gateway};
use crate::checksum;
use crate::error::OrS3;

/// Parts listed per page by default and at most.
const MAX_LISTED_PARTS: i32 = 1000;

/// The parts section: only multipart objects have one (their ETag ends in `-N`).
fn object_parts(
    record: &VersionRecord,
    marker: Option<i32>,
    max: Option<i32>,
) -> S3Result<Option<GetObjectAttributesParts>> {
    if !record.etag.contains('-') {
        return Ok(None);
    }
    let max = match max {
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "Argument max-parts must be an integer between 0 and 2147483647"))
        }
        Some(n) => n.min(MAX_LISTED_PARTS),
        None => MAX_LISTED_PARTS,
    };
    let marker = marker.unwrap_or(0);
    let mut remaining = record.parts.iter().filter(|p| p.number > marker).peekable();
    let page: Vec<_> = remaining.by_ref().take(max as usize).collect();
    let truncated = remaining.peek().is_some();
    let parts = page
        .iter()
        .map(|part| {
            let sums = part.checksum.as_ref().map(checksum::to_dto).unwrap_or_default();
            ObjectPart {
                part_number: Some(part.number),
                size: Some(part.size as i64),
                checksum_crc32: sums.checksum_crc32,
                checksum_crc32c: sums.checksum_crc32c,
                checksum_sha1: sums.checksum_sha1,
                checksum_sha256: sums.checksum_sha256,
                checksum_crc64nvme: sums.checksum_crc64nvme,
            }
        })
        .collect();
    Ok(Some(GetObjectAttributesParts {
        is_truncated: Some(truncated),
        max_parts: Some(max),
        next_part_number_marker: page.last().map(|p| p.number).filter(|_| truncated),
        part_number_marker: Some(marker),
        parts: Some(parts),
        total_parts_count: Some(record.parts.len() as i32),
    }))
}

impl Gateway {
    pub(super) async fn get_object_attributes_impl(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let record = handle.record();
        let wants = |attribute: &str| input.object_attributes.iter().any(|a| a.as_str() == attribute);
        let sums = record.checksum.as_ref().filter(|_| wants(ObjectAttributes::CHECKSUM));
        let checksum = sums.map(|stored| Checksum {
            checksum_type: Some(ChecksumType::from(stored.kind.clone())),
            ..checksum::to_dto(stored)
        });
        let object_parts = if wants(ObjectAttributes::OBJECT_PARTS) {
            object_parts(record, input.part_number_marker, input.max_parts)?
        } else {
            None
        };
        let output = GetObjectAttributesOutput {
            e_tag: wants(ObjectAttributes::ETAG).then(|| convert::etag(record)),
            checksum,
            object_parts,
            object_size: wants(ObjectAttributes::OBJECT_SIZE).then_some(record.size as i64),
            storage_class: wants(ObjectAttributes::STORAGE_CLASS)
                .then(|| StorageClass::from_static(StorageClass::STANDARD)),
            last_modified: Some(convert::last_modified(record)),
            version_id: versioning::reported(record, &config),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
