//! Bucket operations: CreateBucket, HeadBucket, ListBuckets, GetBucketLocation,
//! DeleteBucket.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{convert, Gateway};
use crate::error::OrS3;
use crate::parse;

/// The region where re-creating one's own bucket succeeds.
const US_EAST_1: &str = "us-east-1";
/// Buckets per ListBuckets page by default and at most.
const MAX_LISTED_BUCKETS: i32 = 10_000;

impl Gateway {
    pub(super) async fn create_bucket_impl(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        parse::check_bucket_name(&input.bucket)?;
        let settings = self.new_bucket_settings(
            input.object_ownership.as_ref(),
            acl_request!(input, write: input.grant_write.as_deref()),
        )?;
        let requested =
            input.create_bucket_configuration.and_then(|c| c.location_constraint).map(|l| l.as_str().to_owned());
        // us-east-1 is the region without a constraint: naming it is an error.
        if requested.as_deref() == Some(US_EAST_1) {
            return Err(s3_error!(InvalidLocationConstraint, "The specified location-constraint is not valid"));
        }
        if let Some(location) = requested.filter(|l| !l.is_empty() && *l != self.region) {
            return Err(s3_error!(
                IllegalLocationConstraintException,
                "The {location} location constraint is incompatible for the region specific endpoint this request was sent to."
            ));
        }
        match self.store.create_bucket(&input.bucket).await {
            // us-east-1 answers a repeated CreateBucket of one's own bucket with success (its
            // legacy behaviour); every other region with BucketAlreadyOwnedByYou.
            Err(storage::StorageError::BucketExists(_)) if self.region == US_EAST_1 => {}
            created => {
                created.or_s3()?;
                if let Some((ownership, acl)) = settings {
                    self.store
                        .update_bucket_config(&input.bucket, |config| {
                            config.ownership = ownership;
                            config.acl = acl;
                            Ok(())
                        })
                        .await
                        .or_s3()?;
                }
            }
        }
        let output = CreateBucketOutput { location: Some(format!("/{}", input.bucket)) };
        Ok(S3Response::new(output))
    }

    pub(super) async fn head_bucket_impl(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store.bucket(&req.input.bucket).await.or_s3()?;
        let output = HeadBucketOutput { bucket_region: Some(self.region.clone()), ..Default::default() };
        Ok(S3Response::new(output))
    }

    pub(super) async fn list_buckets_impl(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let max = match input.max_buckets {
            Some(n) if !(1..=MAX_LISTED_BUCKETS).contains(&n) => {
                return Err(s3_error!(InvalidArgument, "Argument max-buckets must be an integer between 1 and 10000"))
            }
            Some(n) => n as usize,
            None => MAX_LISTED_BUCKETS as usize,
        };
        let after = input.continuation_token.as_deref().map(parse::decode_token).transpose()?;
        let prefix = input.prefix.clone().unwrap_or_default();
        // Every bucket is in this server's region: another region lists none.
        let other_region = input.bucket_region.as_deref().is_some_and(|r| r != self.region);
        let all = if other_region { Vec::new() } else { self.store.list_buckets().await.or_s3()? };
        let mut remaining = all
            .into_iter()
            .filter(|b| b.name != crate::iam::store::SYSTEM_BUCKET)
            .filter(|b| b.name.starts_with(&prefix) && after.as_ref().is_none_or(|after| b.name > *after))
            .peekable();
        let page: Vec<_> = remaining.by_ref().take(max).collect();
        let next = remaining.peek().and(page.last()).map(|b| parse::encode_token(&b.name));
        let buckets = page
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(convert::timestamp_ns(b.created_ns)),
                bucket_region: Some(self.region.clone()),
            })
            .collect();
        let output = ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(self.owner()),
            continuation_token: next,
            prefix: input.prefix,
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn get_bucket_location_impl(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store.bucket(&req.input.bucket).await.or_s3()?;
        // S3 reports us-east-1 as an empty constraint.
        let constraint = (self.region != US_EAST_1).then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint: constraint }))
    }

    pub(super) async fn delete_bucket_impl(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store.delete_bucket(&req.input.bucket).await.or_s3()?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }
}
