//! S3 access control lists: what a request asks for ([`requested`]), and what a stored ACL
//! grants to a caller ([`permissions`]). Whether ACLs apply at all is the bucket's object
//! ownership: `BucketOwnerEnforced` (the default) disables them; `BucketOwnerPreferred`,
//! `ObjectWriter` and a bucket without ownership controls enable them. The handlers are in
//! [`crate::s3`] (`acl.rs`), the decision in the access step ([`crate::access`]).
//!
//! Canonical ids: the root principal's is the gateway owner's id; every other identity's is the
//! hex SHA-256 of the principal ARN its bucket-policy statements name (an IAM user and an STS
//! session `arn:aws:iam:::user/<name or subject>`, a service account its parent's), so it is
//! stable across its access keys and sessions; an unsigned request is AWS's anonymous id.

pub mod permissions;
pub mod requested;

use storage::acl::{Acl, AclGrant, AclPermission, Grantee};
use storage::bucket_config::ObjectOwnership;

/// The group of everyone, unsigned requests included.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The group of every signed request.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The group of S3 server access logging (`log-delivery-write`); no caller belongs to it here.
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The canonical id AWS reports for what unsigned requests own.
pub const ANONYMOUS_ID: &str = "65a011a29cdf8ec533ec3d1ccaae921c";

/// The canonical id of the identity named by `principal_arn` in bucket policies.
pub fn canonical_id(principal_arn: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, principal_arn.as_bytes()))
}

/// Whether ACLs apply in a bucket with this object ownership.
pub fn enabled(ownership: ObjectOwnership) -> bool {
    ownership != ObjectOwnership::BucketOwnerEnforced
}

/// The ACL of what has no stored one: its owner alone, with FULL_CONTROL.
pub fn owner_only(owner: &str) -> Acl {
    Acl { owner: owner.to_owned(), grants: vec![full_control(owner)] }
}

/// Whether `acl` grants nothing but FULL_CONTROL to `owner` (what a bucket with ACLs
/// disabled accepts, and what need not be stored).
pub fn is_owner_only(acl: &Acl, owner: &str) -> bool {
    acl.owner == owner && acl.grants.iter().all(|g| *g == full_control(owner))
}

/// FULL_CONTROL to the canonical user `id`.
fn full_control(id: &str) -> AclGrant {
    AclGrant { grantee: Grantee::CanonicalUser(id.to_owned()), permission: AclPermission::FullControl }
}
