//! Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::Gateway;
use crate::error::OrS3;
use crate::parse;

impl Gateway {
    pub(super) async fn get_object_tagging_impl(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        parse::check_version_id(input.version_id.as_deref())?;
        let handle = self.store.get_object(&input.bucket, &input.key).await.or_s3()?;
        let tag_set =
            handle.record().tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect();
        Ok(S3Response::new(GetObjectTaggingOutput { tag_set, ..Default::default() }))
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
        parse::check_version_id(input.version_id.as_deref())?;
        self.store.set_tags(&input.bucket, &input.key, tags).await.or_s3()?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    pub(super) async fn delete_object_tagging_impl(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        parse::check_version_id(input.version_id.as_deref())?;
        self.store.set_tags(&input.bucket, &input.key, Vec::new()).await.or_s3()?;
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }
}
