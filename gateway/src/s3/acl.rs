//! The ACL operations and the ACL of new objects and buckets, as the bucket's object ownership
//! decides ([`crate::acl`]). With `BucketOwnerEnforced` (the default) ACLs are disabled:
//! Get*Acl report the owner's FULL_CONTROL, and a write or Put*Acl asking for anything but
//! that is refused with AccessControlListNotSupported. With `ObjectWriter`,
//! `BucketOwnerPreferred` or no ownership controls, canned ACLs, grant headers and
//! AccessControlPolicy bodies are stored (a bucket's in its configuration record, an object's
//! in its version record) and reported as stored; a new object is owned by its writer, or by
//! the bucket owner when a `BucketOwnerPreferred` bucket is written with
//! `bucket-owner-full-control`. Get/Put/DeleteBucketOwnershipControls read and store the
//! setting; switching to `BucketOwnerEnforced` is refused while the bucket's ACL grants anyone
//! but the owner (InvalidBucketAclWithObjectOwnership).

use hyper::http::Extensions;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use storage::acl::{Acl, AclPermission, Grantee as StoredGrantee};
use storage::bucket_config::ObjectOwnership as StoredOwnership;
use storage::versions::VersionId;
use storage::StorageError;

use super::{versioning, Gateway};
use crate::acl::requested::{AclRequest, Requested};
use crate::acl::{self, ANONYMOUS_ID};
use crate::authz::{AclIdentity, Authorization};
use crate::error::OrS3;

/// The [`AclRequest`] of an s3s input with the canned ACL and object grant fields (`acl`,
/// `grant_read`, `grant_read_acp`, `grant_write_acp`, `grant_full_control`), plus the named
/// extra fields (`write`, `body`) of inputs that have them.
macro_rules! acl_request {
    ($input:expr $(, $field:ident: $value:expr)*) => {{
        #[allow(unused_mut)]
        let mut request = $crate::acl::requested::AclRequest {
            canned: $input.acl.as_ref().map(|acl| acl.as_str()),
            read: $input.grant_read.as_deref(),
            read_acp: $input.grant_read_acp.as_deref(),
            write_acp: $input.grant_write_acp.as_deref(),
            full_control: $input.grant_full_control.as_deref(),
            ..Default::default()
        };
        $(request.$field = $value;)*
        request
    }};
}

/// AWS's refusal of an ACL in a bucket whose object ownership disables ACLs.
fn not_supported() -> S3Error {
    s3_error!(AccessControlListNotSupported, "The bucket does not allow ACLs")
}

/// AWS's refusal of a bucket ACL that grants others alongside `BucketOwnerEnforced`.
fn invalid_with_ownership() -> S3Error {
    s3_error!(
        InvalidBucketAclWithObjectOwnership,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
    )
}

/// The ACL a Put*Acl asks for, parsed; one that names none gets AWS's MissingSecurityHeader.
fn named_acl(request: &AclRequest<'_>) -> S3Result<Requested> {
    match request.parse()? {
        Requested::Nothing => Err(s3_error!(MissingSecurityHeader, "Your request was missing a required header")),
        requested => Ok(requested),
    }
}

/// The stored form of an ownership setting named in a request.
fn parse_ownership(value: &str) -> Option<StoredOwnership> {
    match value {
        ObjectOwnership::BUCKET_OWNER_ENFORCED => Some(StoredOwnership::BucketOwnerEnforced),
        ObjectOwnership::BUCKET_OWNER_PREFERRED => Some(StoredOwnership::BucketOwnerPreferred),
        ObjectOwnership::OBJECT_WRITER => Some(StoredOwnership::ObjectWriter),
        _ => None,
    }
}

impl Gateway {
    /// The canonical id of the request's caller (the owner's for root; fails closed to the
    /// anonymous id when the access step left no decision).
    fn caller_id(&self, extensions: &Extensions) -> String {
        match extensions.get::<Authorization>().map(Authorization::acl_identity) {
            Some(AclIdentity::Owner) => self.owner_id.clone(),
            Some(AclIdentity::User(id)) => id,
            Some(AclIdentity::Anonymous) | None => ANONYMOUS_ID.to_owned(),
        }
    }

    /// The ACL a new object written to `bucket` by the request's caller gets from `request`:
    /// `None` when nothing need be stored (the bucket owner's FULL_CONTROL alone, or ACLs
    /// disabled, where only that is accepted). The plain write by root asks nothing.
    pub(super) async fn new_object_acl(
        &self,
        extensions: &Extensions,
        bucket: &str,
        request: AclRequest<'_>,
    ) -> S3Result<Option<Acl>> {
        let requested = request.parse()?;
        let writer = self.caller_id(extensions);
        if requested == Requested::Nothing && writer == self.owner_id {
            return Ok(None);
        }
        let ownership = self.store.bucket_config(bucket).await.or_s3()?.ownership;
        if !acl::enabled(ownership) {
            self.check_owner_only(&requested)?;
            return Ok(None);
        }
        let owner = match ownership {
            StoredOwnership::BucketOwnerPreferred if requested.is_bucket_owner_full_control() => &self.owner_id,
            _ => &writer,
        };
        let acl = requested.acl(owner, &self.owner_id)?;
        Ok((!acl::is_owner_only(&acl, &self.owner_id)).then_some(acl))
    }

    /// Refuses what a bucket with ACLs disabled refuses: an ACL granting anything beyond the
    /// owner's FULL_CONTROL.
    fn check_owner_only(&self, requested: &Requested) -> S3Result<()> {
        let acl = requested.acl(&self.owner_id, &self.owner_id)?;
        if acl::is_owner_only(&acl, &self.owner_id) {
            Ok(())
        } else {
            Err(not_supported())
        }
    }

    /// Creates the bucket's ownership and ACL settings from CreateBucket's
    /// `x-amz-object-ownership` and ACL headers: the configuration to store, or `None` for the
    /// default (BucketOwnerEnforced, the owner's ACL).
    pub(super) fn new_bucket_settings(
        &self,
        ownership: Option<&ObjectOwnership>,
        request: AclRequest<'_>,
    ) -> S3Result<Option<(StoredOwnership, Option<Acl>)>> {
        let ownership = match ownership {
            Some(value) => parse_ownership(value.as_str()).ok_or_else(|| {
                s3_error!(InvalidArgument, "Invalid x-amz-object-ownership header: {}", value.as_str())
            })?,
            None => StoredOwnership::BucketOwnerEnforced,
        };
        let acl = request.parse()?.acl(&self.owner_id, &self.owner_id)?;
        let owner_only = acl::is_owner_only(&acl, &self.owner_id);
        if ownership == StoredOwnership::BucketOwnerEnforced {
            return if owner_only { Ok(None) } else { Err(invalid_with_ownership()) };
        }
        Ok(Some((ownership, (!owner_only).then_some(acl))))
    }

    /// An ACL in the response's shapes.
    fn report(&self, acl: &Acl) -> (Owner, Grants) {
        let display_name = |id: &str| (id == self.owner_id).then(|| "root".to_owned());
        let grants = acl
            .grants
            .iter()
            .map(|grant| {
                let grantee = match &grant.grantee {
                    StoredGrantee::CanonicalUser(id) => Grantee {
                        display_name: display_name(id),
                        email_address: None,
                        id: Some(id.clone()),
                        type_: Type::from_static(Type::CANONICAL_USER),
                        uri: None,
                    },
                    StoredGrantee::Group(uri) => Grantee {
                        display_name: None,
                        email_address: None,
                        id: None,
                        type_: Type::from_static(Type::GROUP),
                        uri: Some(uri.clone()),
                    },
                };
                let permission = match grant.permission {
                    AclPermission::Read => Permission::READ,
                    AclPermission::Write => Permission::WRITE,
                    AclPermission::ReadAcp => Permission::READ_ACP,
                    AclPermission::WriteAcp => Permission::WRITE_ACP,
                    AclPermission::FullControl => Permission::FULL_CONTROL,
                };
                Grant { grantee: Some(grantee), permission: Some(Permission::from_static(permission)) }
            })
            .collect();
        (Owner { display_name: display_name(&acl.owner), id: Some(acl.owner.clone()) }, grants)
    }

    /// What GetBucketAcl/GetObjectAcl report: `stored` where ACLs are enabled, the owner's
    /// FULL_CONTROL otherwise (as AWS does once ACLs are disabled) or when none is stored.
    fn effective(&self, ownership: StoredOwnership, stored: Option<Acl>) -> Acl {
        stored.filter(|_| acl::enabled(ownership)).unwrap_or_else(|| acl::owner_only(&self.owner_id))
    }

    pub(super) async fn get_bucket_acl_impl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let (owner, grants) = self.report(&self.effective(config.ownership, config.acl));
        Ok(S3Response::new(GetBucketAclOutput { grants: Some(grants), owner: Some(owner) }))
    }

    pub(super) async fn put_bucket_acl_impl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let request =
            acl_request!(input, write: input.grant_write.as_deref(), body: input.access_control_policy.as_ref());
        let requested = named_acl(&request)?;
        let acl = requested.acl(&self.owner_id, &self.owner_id)?;
        let owner_only = acl::is_owner_only(&acl, &self.owner_id);
        let mut disabled = false;
        let updated = self
            .store
            .update_bucket_config(&input.bucket, |config| {
                if !acl::enabled(config.ownership) && !owner_only {
                    disabled = true;
                    return Err(StorageError::Config("ACLs are disabled".into()));
                }
                config.acl = (!owner_only).then_some(acl);
                Ok(())
            })
            .await;
        if disabled {
            return Err(not_supported());
        }
        updated.or_s3()?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(super) async fn get_object_acl_impl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        let (owner, grants) = self.report(&self.effective(config.ownership, handle.record().acl.clone()));
        let output = GetObjectAclOutput { grants: Some(grants), owner: Some(owner), ..Default::default() };
        Ok(S3Response::new(output))
    }

    pub(super) async fn put_object_acl_impl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        let request =
            acl_request!(input, write: input.grant_write.as_deref(), body: input.access_control_policy.as_ref());
        let requested = named_acl(&request)?;
        let which = versioning::requested(input.version_id.as_deref())?;
        let handle = self.readable_version(&req.extensions, &input.bucket, &input.key, which).await?;
        let config = self.store.bucket_config(&input.bucket).await.or_s3()?;
        if !acl::enabled(config.ownership) {
            self.check_owner_only(&requested)?;
            return Ok(S3Response::new(PutObjectAclOutput::default()));
        }
        let owner = handle.record().acl.as_ref().map_or(self.owner_id.as_str(), |acl| acl.owner.as_str());
        let acl = requested.acl(owner, &self.owner_id)?;
        let which = Some(VersionId::of(handle.record()));
        self.store.set_version_acl(&input.bucket, &input.key, which, acl).await.or_s3()?;
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

    pub(super) async fn put_bucket_ownership_controls_impl(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let input = req.input;
        let [rule] = input.ownership_controls.rules.as_slice() else {
            return Err(s3_error!(MalformedXML, "OwnershipControls must hold exactly one rule."));
        };
        let ownership = parse_ownership(rule.object_ownership.as_str()).ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        })?;
        self.set_ownership(&input.bucket, ownership).await?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    /// Removes the bucket's ownership controls, as AWS does: GetBucketOwnershipControls then
    /// answers OwnershipControlsNotFoundError, and ACLs apply as with `ObjectWriter`.
    pub(super) async fn delete_bucket_ownership_controls_impl(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        self.set_ownership(&req.input.bucket, StoredOwnership::Deleted).await?;
        Ok(S3Response::new(DeleteBucketOwnershipControlsOutput::default()))
    }

    /// Stores `ownership`, refusing `BucketOwnerEnforced` while the bucket's ACL grants anyone
    /// but the owner (decided in the same configuration change as the write).
    async fn set_ownership(&self, bucket: &str, ownership: StoredOwnership) -> S3Result<()> {
        let mut conflict = false;
        let updated = self
            .store
            .update_bucket_config(bucket, |config| {
                let shared = config.acl.as_ref().is_some_and(|acl| !acl::is_owner_only(acl, &self.owner_id));
                if ownership == StoredOwnership::BucketOwnerEnforced && shared {
                    conflict = true;
                    return Err(StorageError::Config("the bucket ACL grants others".into()));
                }
                config.ownership = ownership;
                Ok(())
            })
            .await;
        if conflict {
            return Err(invalid_with_ownership());
        }
        updated.or_s3().map(drop)
    }
}
