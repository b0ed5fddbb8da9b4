//! Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{versioning, Gateway};
use crate::error::OrS3;
use crate::parse;

impl Gateway {
    pub(super) async fn get_object_tagging_impl(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let record = handle.record();
        let tag_set = record.tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect();
        let version_id = versioning::reported(record, &config);
        Ok(S3Response::new(GetObjectTaggingOutput { tag_set, version_id }))
    }

    pub(super) async fn put_object_tagging_impl(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let tags: Vec<(String, String)> = input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        parse::check_tags(&tags)?;
        let which = versioning::requested(input.version_id.as_deref())?;
        let record = self.store.set_version_tags(&input.bucket, &input.key, which, tags).await.or_s3()?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id: versioning::reported(&record, &config) }))
    }

    pub(super) async fn delete_object_tagging_impl(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let record = self.store.set_version_tags(&input.bucket, &input.key, which, Vec::new()).await.or_s3()?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        Ok(S3Response::new(DeleteObjectTaggingOutput { version_id: versioning::reported(&record, &config) }))
    }
}
