//! Bucket policies: PutBucketPolicy (validated: grammar, resources of this bucket only, size),
//! GetBucketPolicy, DeleteBucketPolicy and GetBucketPolicyStatus, kept in the bucket's
//! configuration record. The access step reads them through [`crate::authz::bucket_policies`].

use policy::{Kind, Policy as PolicyDocument};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::Gateway;
use crate::authz::conditions;
use crate::error::OrS3;

/// The largest bucket policy AWS accepts.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The bucket policy in `text` for `bucket`, or the error AWS answers for it.
pub fn validate(text: &str, bucket: &str) -> S3Result<PolicyDocument> {
    if text.len() > MAX_POLICY_BYTES {
        let mut error = S3Error::with_message(
            S3ErrorCode::Custom("PolicyTooLarge".into()),
            format!("Policy exceeds the maximum allowed document size of {MAX_POLICY_BYTES} bytes."),
        );
        error.set_status_code(hyper::StatusCode::BAD_REQUEST);
        return Err(error);
    }
    let policy = PolicyDocument::parse(text, Kind::Bucket(bucket)).map_err(|e| s3_error!(MalformedPolicy, "{e}"))?;
    // A key the access step never supplies would make its condition silently never match.
    if let Some(key) = policy.condition_keys().into_iter().find(|key| !conditions::supplies(key)) {
        return Err(s3_error!(MalformedPolicy, "Policy has an unsupported condition key: {key}"));
    }
    Ok(policy)
}

impl Gateway {
    pub(super) async fn put_bucket_policy_impl(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        validate(&input.policy, &input.bucket)?;
        let text = input.policy;
        self.store
            .update_bucket_config(&input.bucket, |config| {
                config.policy = Some(text);
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub(super) async fn get_bucket_policy_impl(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let policy = config.policy.ok_or_else(no_such_policy)?;
        Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
    }

    pub(super) async fn delete_bucket_policy_impl(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.store
            .update_bucket_config(&req.input.bucket, |config| {
                config.policy = None;
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    /// IsPublic when a statement allows anything to everyone without a condition narrowing who
    /// ([`PolicyDocument::is_public`]); NoSuchBucketPolicy for a bucket without a policy.
    pub(super) async fn get_bucket_policy_status_impl(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let bucket = &req.input.bucket;
        let config = self.store.bucket_config(bucket).await.or_s3()?;
        let text = config.policy.ok_or_else(no_such_policy)?;
        let policy = PolicyDocument::parse(&text, Kind::Bucket(bucket)).map_err(|e| {
            tracing::error!(bucket = %bucket, error = %e, "stored bucket policy does not parse");
            s3_error!(InternalError, "The stored bucket policy cannot be read")
        })?;
        let status = PolicyStatus { is_public: Some(policy.is_public()) };
        Ok(S3Response::new(GetBucketPolicyStatusOutput { policy_status: Some(status) }))
    }
}

fn no_such_policy() -> S3Error {
    s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_answers_as_aws() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"}]}"#;
        assert!(validate(ok, "b").is_ok());
        let other = ok.replace("arn:aws:s3:::b/", "arn:aws:s3:::c/");
        let err = validate(&other, "b").unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::MalformedPolicy);
        assert!(err.message().unwrap_or_default().contains("Policy has invalid resource"), "{err:?}");
        let err = validate("{\"Version\":", "b").unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::MalformedPolicy);
        assert!(err.message().unwrap_or_default().contains("line 1"), "{err:?}");
        let big = format!("{}{}", ok, " ".repeat(MAX_POLICY_BYTES));
        let err = validate(&big, "b").unwrap_err();
        assert_eq!(err.code().as_str(), "PolicyTooLarge");
        let unknown =
            ok.replace(r#""Resource""#, r#""Condition":{"StringEquals":{"s3:DataAccessPointArn":"x"}},"Resource""#);
        let err = validate(&unknown, "b").unwrap_err();
        assert!(err.message().unwrap_or_default().contains("unsupported condition key"), "{err:?}");
        // A Deny on a key that is never supplied would never apply: refused too.
        let arn = ok.replace(
            r#""Resource""#,
            r#""Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:iam:::user/contractor-*"}},"Resource""#,
        );
        assert!(validate(&arn, "b").unwrap_err().message().unwrap_or_default().contains("aws:principalarn"));
        let supplied = ok.replace(
            r#""Resource""#,
            r#""Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringEquals":{"s3:x-amz-acl":"private","jwt:azp":"app","s3:RequestObjectTag/team":"a","s3:ExistingObjectTag/team":"b"}},"Resource""#,
        );
        assert!(validate(&supplied, "b").is_ok(), "{:?}", validate(&supplied, "b").err());
    }
}
