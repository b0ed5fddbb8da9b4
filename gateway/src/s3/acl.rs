//! Access control as a bucket with ACLs disabled (object ownership `BucketOwnerEnforced`,
//! AWS's default) answers it: GetBucketAcl/GetObjectAcl report the owner's FULL_CONTROL;
//! PutBucketAcl/PutObjectAcl accept only what grants the owner alone (canned `private` or
//! `bucket-owner-full-control`, or a policy with the owner's FULL_CONTROL), and refuse grants
//! to anyone else with AccessControlListNotSupported; Get/Put/DeleteBucketOwnershipControls
//! read and store the bucket's ownership setting, which can only be `BucketOwnerEnforced` or
//! deleted. Grant and canned-ACL headers are refused at the front door
//! ([`crate::unsupported`]); the bodies are judged here.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::bucket_config::ObjectOwnership as StoredOwnership;

use super::{versioning, Gateway};
use crate::error::OrS3;

/// The only object ownership this server has: ACLs disabled, the bucket owner owns everything.
const OWNERSHIP: &str = ObjectOwnership::BUCKET_OWNER_ENFORCED;

impl Gateway {
    /// The one ACL every bucket and object has: the owner's FULL_CONTROL.
    fn owner_only_grants(&self) -> Grants {
        let owner = self.owner();
        vec![Grant {
            grantee: Some(Grantee {
                display_name: owner.display_name,
                email_address: None,
                id: owner.id,
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
        }]
    }

    /// Refuses an access control policy that grants anything to anyone but the owner.
    fn check_policy(&self, policy: Option<&AccessControlPolicy>) -> S3Result<()> {
        let Some(grants) = policy.and_then(|p| p.grants.as_ref()) else { return Ok(()) };
        let owner_only = grants.iter().all(|grant| {
            let grantee = grant.grantee.as_ref();
            grantee.is_some_and(|g| {
                g.type_.as_str() == Type::CANONICAL_USER && g.id.as_deref() == Some(self.owner_id.as_str())
            }) && grant.permission.as_ref().is_some_and(|p| p.as_str() == Permission::FULL_CONTROL)
        });
        if !owner_only {
            return Err(s3_error!(AccessControlListNotSupported, "The bucket does not allow ACLs"));
        }
        Ok(())
    }

    pub(super) async fn get_bucket_acl_impl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        self.store.bucket(&req.input.bucket).await.or_s3()?;
        let output = GetBucketAclOutput { grants: Some(self.owner_only_grants()), owner: Some(self.owner()) };
        Ok(S3Response::new(output))
    }

    pub(super) async fn put_bucket_acl_impl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        self.store.bucket(&req.input.bucket).await.or_s3()?;
        self.check_policy(req.input.access_control_policy.as_ref())?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(super) async fn get_object_acl_impl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let output = GetObjectAclOutput {
            grants: Some(self.owner_only_grants()),
            owner: Some(self.owner()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn put_object_acl_impl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        self.store.get_version(&input.bucket, &input.key, which).await.or_s3()?;
        self.check_policy(input.access_control_policy.as_ref())?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    pub(super) async fn get_bucket_ownership_controls_impl(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let ownership = match config.ownership {
            StoredOwnership::BucketOwnerEnforced => ObjectOwnership::BUCKET_OWNER_ENFORCED,
            StoredOwnership::BucketOwnerPreferred => ObjectOwnership::BUCKET_OWNER_PREFERRED,
            StoredOwnership::ObjectWriter => ObjectOwnership::OBJECT_WRITER,
            StoredOwnership::Deleted => {
                return Err(s3_error!(OwnershipControlsNotFoundError, "The bucket ownership controls were not found"))
            }
        };
        let rule = OwnershipControlsRule { object_ownership: ObjectOwnership::from_static(ownership) };
        let output =
            GetBucketOwnershipControlsOutput { ownership_controls: Some(OwnershipControls { rules: vec![rule] }) };
        Ok(S3Response::new(output))
    }

    /// Stores `BucketOwnerEnforced`; the other settings would enable ACLs, which this server
    /// does not implement.
    pub(super) async fn put_bucket_ownership_controls_impl(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let input = req.input;
        self.store.bucket(&input.bucket).await.or_s3()?;
        let rules = &input.ownership_controls.rules;
        if rules.len() != 1 {
            return Err(s3_error!(MalformedXML, "OwnershipControls must hold exactly one rule."));
        }
        if rules.iter().any(|rule| rule.object_ownership.as_str() != OWNERSHIP) {
            return Err(s3_error!(
                NotImplemented,
                "Only the BucketOwnerEnforced object ownership is implemented: ACLs are disabled on every bucket."
            ));
        }
        self.set_ownership(&input.bucket, StoredOwnership::BucketOwnerEnforced).await?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    /// Removes the bucket's ownership controls, as AWS does: GetBucketOwnershipControls then
    /// answers OwnershipControlsNotFoundError. ACLs stay disabled (this server has no others).
    pub(super) async fn delete_bucket_ownership_controls_impl(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        self.set_ownership(&req.input.bucket, StoredOwnership::Deleted).await?;
        Ok(S3Response::new(DeleteBucketOwnershipControlsOutput::default()))
    }

    async fn set_ownership(&self, bucket: &str, ownership: StoredOwnership) -> S3Result<()> {
        self.store
            .update_bucket_config(bucket, |config| {
                config.ownership = ownership;
                Ok(())
            })
            .await
            .or_s3()
            .map(drop)
    }
}
