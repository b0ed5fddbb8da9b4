//! Bucket versioning: PutBucketVersioning, GetBucketVersioning, and how version ids are read
//! from requests and reported on responses.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::bucket_config::{BucketConfig, VersioningStatus};
use storage::meta::VersionRecord;
use storage::versions::VersionId;

use super::Gateway;
use crate::error::OrS3;

/// The version a request names with `versionId` (none: the current one).
pub(super) fn requested(text: Option<&str>) -> S3Result<Option<VersionId>> {
    text.map(VersionId::parse).transpose().or_s3()
}

/// The `x-amz-version-id` to answer with for `record`: none in a bucket that never had
/// versioning, `null` for a null version, the id otherwise.
pub(super) fn reported(record: &VersionRecord, config: &BucketConfig) -> Option<String> {
    (!record.null_version || config.versioning.is_some()).then(|| VersionId::of(record).to_string())
}

impl Gateway {
    pub(super) async fn put_bucket_versioning_impl(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let configuration = input.versioning_configuration;
        let mfa_delete = configuration.mfa_delete.as_ref().map(MFADelete::as_str);
        if input.mfa.is_some() || mfa_delete == Some(MFADelete::ENABLED) {
            return Err(s3_error!(NotImplemented, "MFA delete is not implemented."));
        }
        if mfa_delete.is_some_and(|m| m != MFADelete::DISABLED) {
            return Err(s3_error!(MalformedXML, "The MfaDelete value must be Enabled or Disabled."));
        }
        let status = match configuration.status.as_ref().map(BucketVersioningStatus::as_str) {
            Some(BucketVersioningStatus::ENABLED) => Some(VersioningStatus::Enabled),
            Some(BucketVersioningStatus::SUSPENDED) => Some(VersioningStatus::Suspended),
            Some(_) => return Err(s3_error!(MalformedXML, "The versioning Status must be Enabled or Suspended.")),
            None => None,
        };
        self.store
            .update_bucket_config(&input.bucket, |config| {
                if status.is_some() {
                    config.versioning = status;
                }
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    /// A bucket that never had versioning answers without a status.
    pub(super) async fn get_bucket_versioning_impl(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let status = config.versioning.map(|status| match status {
            VersioningStatus::Enabled => BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED),
            VersioningStatus::Suspended => BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED),
        });
        Ok(S3Response::new(GetBucketVersioningOutput { status, mfa_delete: None }))
    }
}
