//! PutObject.

use bytes::Bytes;
use futures::{stream, StreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::VersionRecord;
use storage::put::BodyStream;
use storage::store::ObjectMeta;
use storage::StorageError;

use super::conditions::write_condition;
use super::convert::{self, StandardHeaders};
use super::{versioning, Gateway};
use crate::checksum::{self, BodyCheck};
use crate::error::{to_s3, OrS3};
use crate::parse;
use crate::sse::headers::WriteHeaders;
use crate::sse::Sealing;

/// Largest object a single PUT may carry (5 GiB), as in S3.
const MAX_PUT_SIZE: i64 = 5 * 1024 * 1024 * 1024;

fn empty_body() -> BodyStream {
    Box::pin(stream::empty::<storage::Result<Bytes>>())
}

/// A body of undeclared length (`Transfer-Encoding: chunked` without Content-Length) that
/// fails with EntityTooLarge once more than `max` bytes have come, so that nothing larger than
/// a declared body could be is ever staged.
pub(super) fn at_most(body: BodyStream, max: u64) -> BodyStream {
    let mut seen = 0u64;
    Box::pin(body.map(move |chunk| {
        let bytes = chunk?;
        seen += bytes.len() as u64;
        if seen > max {
            return Err(StorageError::EntityTooLarge { max });
        }
        Ok(bytes)
    }))
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
        let acl = self.new_object_acl(&req.extensions, &input.bucket, acl_request!(input)).await?;
        let default = self.bucket_default(&input.bucket).await?;
        let sealing =
            self.sse.begin_write(&input.bucket, &input.key, &WriteHeaders::of_put(&input), default.as_ref()).await?;
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
        let if_match = input.if_match.is_some();
        let condition = write_condition(input.if_match, input.if_none_match)?;
        let body = input.body.map_or_else(empty_body, |b| check.wrap(b));
        let size = input.content_length.map(|len| len as u64);
        let body = if size.is_none() { at_most(body, MAX_PUT_SIZE as u64) } else { body };
        let (body, size) = match &sealing {
            Some(sealing) => (sealing.seal(body, 1)?, size.map(|n| sealing.sealed_size(n))),
            None => (body, size),
        };
        let staged = self.store.stage(&input.bucket, &input.key, body, size).await.or_s3()?;
        let plain_md5 = sealing.as_ref().map_or(staged.md5, Sealing::plain_md5);
        let verified = checksum::check_content_md5(input.content_md5.as_deref(), &plain_md5)
            .and_then(|()| check.finish(req.trailing_headers.as_ref()));
        let checksum = match verified {
            Ok(checksum) => checksum,
            Err(e) => {
                self.store.discard(&input.bucket, &input.key, staged).await;
                return Err(e);
            }
        };
        let encryption = sealing.as_ref().map(Sealing::finish);
        let meta = ObjectMeta { headers, user_metadata, tags, checksum: Some(checksum.clone()), encryption, acl };
        let committed = self.store.commit_object(&input.bucket, &input.key, staged, meta, condition).await;
        let record = self.condition_outcome(&input.bucket, &input.key, if_match, committed).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let sums = checksum::to_dto(&checksum);
        let mut output = PutObjectOutput {
            e_tag: Some(convert::etag(&record)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_type: Some(ChecksumType::from(checksum.kind)),
            version_id: versioning::reported(&record, &config),
            ..Default::default()
        };
        if let Some(sealing) = &sealing {
            sealing.output().put(&mut output);
        }
        Ok(S3Response::new(output))
    }

    /// The answer to a conditional write: an If-Match whose object does not exist is
    /// NoSuchKey (404) on AWS, not PreconditionFailed.
    pub(super) async fn condition_outcome(
        &self,
        bucket: &str,
        key: &str,
        if_match: bool,
        committed: Result<VersionRecord, StorageError>,
    ) -> S3Result<VersionRecord> {
        match committed {
            Err(StorageError::PreconditionFailed) if if_match => match self.store.get_object(bucket, key).await {
                Err(StorageError::NoSuchKey { .. } | StorageError::DeleteMarker { .. }) => {
                    Err(s3_error!(NoSuchKey, "The specified key does not exist."))
                }
                _ => Err(to_s3(StorageError::PreconditionFailed)),
            },
            other => other.or_s3(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> BodyStream {
        let chunks: Vec<storage::Result<Bytes>> = sizes.iter().map(|n| Ok(Bytes::from(vec![0u8; *n]))).collect();
        Box::pin(stream::iter(chunks))
    }

    async fn drain(body: BodyStream) -> storage::Result<u64> {
        let mut body = body;
        let mut total = 0;
        while let Some(chunk) = body.next().await {
            total += chunk?.len() as u64;
        }
        Ok(total)
    }

    #[tokio::test]
    async fn an_undeclared_body_fails_once_it_passes_the_limit() {
        assert_eq!(drain(at_most(chunks(&[4, 6]), 10)).await.unwrap(), 10);
        let err = drain(at_most(chunks(&[4, 6, 1]), 10)).await.unwrap_err();
        assert!(matches!(err, StorageError::EntityTooLarge { max: 10 }), "{err}");
        assert_eq!(to_s3(err).code().as_str(), "EntityTooLarge");
    }
}
