//! What an ACL grants: the IAM actions each ACL permission stands for (AWS's "Mapping of ACL
//! permissions and access policy permissions"), and whether a stored ACL gives one to a caller.

use storage::acl::{Acl, AclPermission, Grantee};

use super::{ALL_USERS, AUTHENTICATED_USERS};

/// Which ACL an action is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The bucket's.
    Bucket,
    /// The object version's.
    Object,
}

/// The ACL permission that allows `action`, and whose ACL holds it; `None` for actions no
/// ACL grants. Changing an ACL (WRITE_ACP) is never granted by an ACL: it always needs the
/// caller's policies, so that a principal whose policies do not allow `s3:PutObjectAcl` cannot
/// publish an object through the FULL_CONTROL it holds as the object's writer.
pub fn needed(action: &str) -> Option<(Target, AclPermission)> {
    let needed = match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => {
            (Target::Bucket, AclPermission::Read)
        }
        "s3:PutObject" | "s3:DeleteObject" => (Target::Bucket, AclPermission::Write),
        "s3:GetBucketAcl" => (Target::Bucket, AclPermission::ReadAcp),
        "s3:GetObject" | "s3:GetObjectVersion" => (Target::Object, AclPermission::Read),
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => (Target::Object, AclPermission::ReadAcp),
        _ => return None,
    };
    Some(needed)
}

/// Whether `acl` gives `permission` (directly or by FULL_CONTROL) to the caller whose
/// canonical id is `caller` (`None`: an unsigned request): by that id, as one of AllUsers, or
/// as one of AuthenticatedUsers when signed. The owner's own grant gives its owner nothing:
/// what a principal may do with what it wrote is what its policies allow (a `writeonly`
/// writer does not read its objects back through the FULL_CONTROL it holds on them).
pub fn grants(acl: &Acl, caller: Option<&str>, permission: AclPermission) -> bool {
    acl.grants.iter().any(|grant| {
        let covers = grant.permission == permission || grant.permission == AclPermission::FullControl;
        let names = match &grant.grantee {
            Grantee::CanonicalUser(id) => caller == Some(id.as_str()) && *id != acl.owner,
            Grantee::Group(uri) => uri == ALL_USERS || (uri == AUTHENTICATED_USERS && caller.is_some()),
        };
        covers && names
    })
}

#[cfg(test)]
mod tests {
    use storage::acl::AclGrant;

    use super::*;

    fn acl(grants: &[(Grantee, AclPermission)]) -> Acl {
        let grants =
            grants.iter().map(|(grantee, permission)| AclGrant { grantee: grantee.clone(), permission: *permission });
        Acl { owner: "owner".into(), grants: grants.collect() }
    }

    #[test]
    fn acl_permissions_map_to_the_actions_aws_lists() {
        assert_eq!(needed("s3:ListBucketVersions"), Some((Target::Bucket, AclPermission::Read)));
        assert_eq!(needed("s3:PutObject"), Some((Target::Bucket, AclPermission::Write)));
        assert_eq!(needed("s3:GetObjectVersion"), Some((Target::Object, AclPermission::Read)));
        assert_eq!(needed("s3:PutObjectVersionAcl"), None, "changing an ACL always needs the policies");
        assert_eq!(needed("s3:PutBucketAcl"), None);
        assert_eq!(needed("s3:PutBucketPolicy"), None);
        assert_eq!(needed("s3:PutObjectTagging"), None);
        assert_eq!(needed("s3:DeleteObjectVersion"), None, "only the bucket owner, who needs no ACL");
    }

    #[test]
    fn grantees_are_matched_by_id_and_group() {
        let (anonymous, alice, bob) = (None, Some("alice"), Some("bob"));
        let public = acl(&[(Grantee::Group(ALL_USERS.into()), AclPermission::Read)]);
        assert!(grants(&public, anonymous, AclPermission::Read));
        assert!(!grants(&public, anonymous, AclPermission::ReadAcp));
        let signed = acl(&[(Grantee::Group(AUTHENTICATED_USERS.into()), AclPermission::Read)]);
        assert!(!grants(&signed, anonymous, AclPermission::Read));
        assert!(grants(&signed, bob, AclPermission::Read));
        let named = acl(&[(Grantee::CanonicalUser("alice".into()), AclPermission::FullControl)]);
        assert!(grants(&named, alice, AclPermission::WriteAcp));
        assert!(!grants(&named, bob, AclPermission::Read));
        assert!(!grants(&named, anonymous, AclPermission::Read));
        let own = acl(&[(Grantee::CanonicalUser("owner".into()), AclPermission::FullControl)]);
        assert!(!grants(&own, Some("owner"), AclPermission::Read), "the owner's grant gives its owner nothing");
    }
}
