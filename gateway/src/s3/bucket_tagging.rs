//! Bucket tagging: PutBucketTagging, GetBucketTagging, DeleteBucketTagging, kept in the
//! bucket's configuration record.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::Gateway;
use crate::error::OrS3;
use crate::parse;

impl Gateway {
    pub(super) async fn put_bucket_tagging_impl(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let input = req.input;
        let tags: Vec<(String, String)> = input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        parse::check_bucket_tags(&tags)?;
        self.store
            .update_bucket_config(&input.bucket, |config| {
                config.tags = Some(tags);
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(PutBucketTaggingOutput::default()))
    }

    pub(super) async fn get_bucket_tagging_impl(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let tags = config.tags.ok_or_else(|| s3_error!(NoSuchTagSet, "The TagSet does not exist"))?;
        let tag_set = tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
        Ok(S3Response::new(GetBucketTaggingOutput { tag_set }))
    }

    pub(super) async fn delete_bucket_tagging_impl(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        self.store
            .update_bucket_config(&req.input.bucket, |config| {
                config.tags = None;
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
    }
}
