//! Bucket default encryption: PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption,
//! kept in the bucket's configuration record. Writes without encryption headers (PutObject,
//! CopyObject, CreateMultipartUpload) are sealed as it says ([`Gateway::bucket_default`]).

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use storage::bucket_config::BucketEncryption;

use super::Gateway;
use crate::error::OrS3;
use crate::sse::BucketDefault;

/// AWS's answer to a schema violation in a configuration document.
fn malformed() -> S3Error {
    s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
}

/// The stored default of a PutBucketEncryption document, after AWS's checks: exactly one rule
/// with a default, an algorithm of the schema's (`aws:kms:dsse` is refused as not
/// implemented), and a KMS key only for `aws:kms`. The key is not looked up here: AWS does not
/// validate it either, and a write sealed under a missing key fails with KMS.NotFoundException.
fn stored_default(config: ServerSideEncryptionConfiguration) -> S3Result<BucketEncryption> {
    let [rule] = <[ServerSideEncryptionRule; 1]>::try_from(config.rules).map_err(|_| malformed())?;
    let default = rule.apply_server_side_encryption_by_default.ok_or_else(malformed)?;
    let algorithm = default.sse_algorithm.as_str();
    match algorithm {
        ServerSideEncryption::AES256 | ServerSideEncryption::AWS_KMS => {}
        ServerSideEncryption::AWS_KMS_DSSE => {
            return Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented: SSEAlgorithm aws:kms:dsse"
            ))
        }
        _ => return Err(malformed()),
    }
    let kms_key_id = default.kms_master_key_id.filter(|k| !k.is_empty());
    if kms_key_id.is_some() && algorithm != ServerSideEncryption::AWS_KMS {
        return Err(s3_error!(
            InvalidArgument,
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
        ));
    }
    Ok(BucketEncryption {
        algorithm: algorithm.to_owned(),
        kms_key_id,
        bucket_key_enabled: rule.bucket_key_enabled.unwrap_or(false),
    })
}

/// A stored default in the response's shape.
fn answered_default(stored: BucketEncryption) -> ServerSideEncryptionConfiguration {
    let default = ServerSideEncryptionByDefault {
        kms_master_key_id: stored.kms_key_id,
        sse_algorithm: ServerSideEncryption::from(stored.algorithm),
    };
    let rule = ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(default),
        bucket_key_enabled: Some(stored.bucket_key_enabled),
    };
    ServerSideEncryptionConfiguration { rules: vec![rule] }
}

impl Gateway {
    /// The default encryption of `bucket`, for writes that ask for none.
    pub(super) async fn bucket_default(&self, bucket: &str) -> S3Result<Option<BucketDefault>> {
        let config = self.store.bucket_config(bucket).await.or_s3()?;
        Ok(config.encryption.map(|e| BucketDefault {
            algorithm: ServerSideEncryption::from(e.algorithm),
            kms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key_enabled,
        }))
    }

    pub(super) async fn put_bucket_encryption_impl(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        let stored = stored_default(input.server_side_encryption_configuration)?;
        self.store
            .update_bucket_config(&input.bucket, |config| {
                config.encryption = Some(stored);
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    pub(super) async fn get_bucket_encryption_impl(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let stored = config.encryption.ok_or_else(not_found)?;
        let output = GetBucketEncryptionOutput { server_side_encryption_configuration: Some(answered_default(stored)) };
        Ok(S3Response::new(output))
    }

    pub(super) async fn delete_bucket_encryption_impl(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        self.store
            .update_bucket_config(&req.input.bucket, |config| {
                config.encryption = None;
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }
}

/// GetBucketEncryption on a bucket without a default: 404, as AWS answers it.
fn not_found() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
        "The server side encryption configuration was not found",
    );
    e.set_status_code(hyper::StatusCode::NOT_FOUND);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(algorithm: &str, key: Option<&str>) -> ServerSideEncryptionConfiguration {
        let default = ServerSideEncryptionByDefault {
            kms_master_key_id: key.map(str::to_owned),
            sse_algorithm: ServerSideEncryption::from(algorithm.to_owned()),
        };
        let rule = ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(default),
            bucket_key_enabled: None,
        };
        ServerSideEncryptionConfiguration { rules: vec![rule] }
    }

    fn code(config: ServerSideEncryptionConfiguration) -> String {
        stored_default(config).unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn defaults_are_checked_as_aws_checks_them() {
        let kms = stored_default(config("aws:kms", Some("k"))).unwrap();
        assert_eq!((kms.algorithm.as_str(), kms.kms_key_id.as_deref()), ("aws:kms", Some("k")));
        assert_eq!(stored_default(config("AES256", None)).unwrap().kms_key_id, None);
        assert_eq!(code(config("AES128", None)), "MalformedXML");
        assert_eq!(code(config("AES256", Some("k"))), "InvalidArgument");
        assert_eq!(code(config("aws:kms:dsse", None)), "NotImplemented");
        assert_eq!(code(ServerSideEncryptionConfiguration { rules: vec![] }), "MalformedXML");
        let mut two = config("AES256", None);
        two.rules.push(two.rules[0].clone());
        assert_eq!(code(two), "MalformedXML");
    }
}
