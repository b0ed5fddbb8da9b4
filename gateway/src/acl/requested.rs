//! What a request asks for as an ACL: a canned ACL (`x-amz-acl`, the POST form's `acl`),
//! explicit grants (`x-amz-grant-*` headers) or an AccessControlPolicy body (Put*Acl),
//! checked and answered as AWS does, and expanded to the [`Acl`] to store.

use s3s::dto::{AccessControlPolicy, Grant};
use s3s::{s3_error, S3Error, S3Result};
use storage::acl::{Acl, AclGrant, AclPermission, Grantee};

use super::{ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY};

/// The ACL parts of one request, as s3s parsed them.
#[derive(Debug, Clone, Copy, Default)]
pub struct AclRequest<'a> {
    /// The canned ACL.
    pub canned: Option<&'a str>,
    /// `x-amz-grant-read`.
    pub read: Option<&'a str>,
    /// `x-amz-grant-write` (buckets).
    pub write: Option<&'a str>,
    /// `x-amz-grant-read-acp`.
    pub read_acp: Option<&'a str>,
    /// `x-amz-grant-write-acp`.
    pub write_acp: Option<&'a str>,
    /// `x-amz-grant-full-control`.
    pub full_control: Option<&'a str>,
    /// The AccessControlPolicy body (Put*Acl).
    pub body: Option<&'a AccessControlPolicy>,
}

/// A canned ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    /// The owner's FULL_CONTROL.
    Private,
    /// And READ to AllUsers.
    PublicRead,
    /// And READ and WRITE to AllUsers.
    PublicReadWrite,
    /// And READ to AuthenticatedUsers.
    AuthenticatedRead,
    /// And READ to the bucket owner (objects).
    BucketOwnerRead,
    /// And FULL_CONTROL to the bucket owner (objects).
    BucketOwnerFullControl,
    /// And WRITE and READ_ACP to the LogDelivery group (buckets).
    LogDeliveryWrite,
}

/// What a request asks for, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// No ACL at all: a new object or bucket gets `private`.
    Nothing,
    /// A canned ACL.
    Canned(Canned),
    /// Grant headers: exactly these grants.
    Grants(Vec<AclGrant>),
    /// A policy body: its owner and its grants.
    Policy {
        /// The owner's canonical id the body names.
        owner: String,
        /// Its grants.
        grants: Vec<AclGrant>,
    },
}

impl AclRequest<'_> {
    /// Parses the request's ACL, refusing what AWS refuses: a canned ACL with grant headers
    /// (InvalidRequest), headers with a body (UnexpectedContent), malformed grants
    /// (InvalidArgument, MalformedACLError) and grants by e-mail address
    /// (UnresolvableGrantByEmailAddress: this server has no e-mail directory).
    pub fn parse(&self) -> S3Result<Requested> {
        let headers = [
            (AclPermission::Read, self.read),
            (AclPermission::Write, self.write),
            (AclPermission::ReadAcp, self.read_acp),
            (AclPermission::WriteAcp, self.write_acp),
            (AclPermission::FullControl, self.full_control),
        ];
        let has_grants = headers.iter().any(|(_, value)| value.is_some());
        if self.body.is_some() && (has_grants || self.canned.is_some()) {
            return Err(s3_error!(UnexpectedContent, "This request does not support content"));
        }
        if has_grants && self.canned.is_some() {
            return Err(s3_error!(InvalidRequest, "Specifying both Canned ACLs and Header Grants is not allowed"));
        }
        if let Some(body) = self.body {
            return policy_body(body);
        }
        if let Some(canned) = self.canned {
            return canned_acl(canned).map(Requested::Canned);
        }
        if !has_grants {
            return Ok(Requested::Nothing);
        }
        let mut grants = Vec::new();
        for (permission, value) in headers {
            for grantee in value.map(grant_header).transpose()?.into_iter().flatten() {
                grants.push(AclGrant { grantee, permission });
            }
        }
        Ok(Requested::Grants(grants))
    }
}

impl Requested {
    /// Whether this is the `bucket-owner-full-control` canned ACL (which gives a
    /// `BucketOwnerPreferred` bucket's owner the object).
    pub fn is_bucket_owner_full_control(&self) -> bool {
        *self == Self::Canned(Canned::BucketOwnerFullControl)
    }

    /// The ACL to store for a resource owned by `owner` in a bucket owned by `bucket_owner`.
    /// A policy body must name the resource's owner (AccessDenied otherwise: an ACL cannot
    /// change who owns what).
    pub fn acl(&self, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
        let grants = match self {
            Self::Nothing => canned_grants(Canned::Private, owner, bucket_owner),
            Self::Canned(canned) => canned_grants(*canned, owner, bucket_owner),
            Self::Grants(grants) => grants.clone(),
            Self::Policy { owner: named, grants } => {
                if named != owner {
                    return Err(s3_error!(AccessDenied, "The Owner of an access control policy cannot be changed"));
                }
                grants.clone()
            }
        };
        Ok(Acl { owner: owner.to_owned(), grants })
    }
}

/// The grants of a canned ACL.
fn canned_grants(canned: Canned, owner: &str, bucket_owner: &str) -> Vec<AclGrant> {
    let user = |id: &str, permission| AclGrant { grantee: Grantee::CanonicalUser(id.to_owned()), permission };
    let to_group = |uri: &str, permission| AclGrant { grantee: Grantee::Group(uri.to_owned()), permission };
    let mut grants = vec![user(owner, AclPermission::FullControl)];
    match canned {
        Canned::Private => {}
        Canned::PublicRead => grants.push(to_group(ALL_USERS, AclPermission::Read)),
        Canned::PublicReadWrite => {
            grants.push(to_group(ALL_USERS, AclPermission::Read));
            grants.push(to_group(ALL_USERS, AclPermission::Write));
        }
        Canned::AuthenticatedRead => grants.push(to_group(AUTHENTICATED_USERS, AclPermission::Read)),
        Canned::BucketOwnerRead if owner != bucket_owner => grants.push(user(bucket_owner, AclPermission::Read)),
        Canned::BucketOwnerFullControl if owner != bucket_owner => {
            grants.push(user(bucket_owner, AclPermission::FullControl));
        }
        Canned::BucketOwnerRead | Canned::BucketOwnerFullControl => {}
        Canned::LogDeliveryWrite => {
            grants.push(to_group(LOG_DELIVERY, AclPermission::Write));
            grants.push(to_group(LOG_DELIVERY, AclPermission::ReadAcp));
        }
    }
    grants
}

fn canned_acl(name: &str) -> S3Result<Canned> {
    match name {
        "private" => Ok(Canned::Private),
        "public-read" => Ok(Canned::PublicRead),
        "public-read-write" => Ok(Canned::PublicReadWrite),
        "authenticated-read" => Ok(Canned::AuthenticatedRead),
        "bucket-owner-read" => Ok(Canned::BucketOwnerRead),
        "bucket-owner-full-control" => Ok(Canned::BucketOwnerFullControl),
        "log-delivery-write" => Ok(Canned::LogDeliveryWrite),
        // It grants READ to an AWS service account that does not exist here.
        "aws-exec-read" => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented: x-amz-acl"
        )),
        _ => Err(invalid_argument("x-amz-acl", name)),
    }
}

/// The grantees of one `x-amz-grant-*` header: `type="value"` pairs separated by commas,
/// the type `id`, `uri` or `emailAddress`.
fn grant_header(value: &str) -> S3Result<Vec<Grantee>> {
    value
        .split(',')
        .map(|pair| {
            let (kind, quoted) = pair.trim().split_once('=').ok_or_else(|| invalid_argument("x-amz-grant", value))?;
            let text = quoted.trim();
            let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
            match kind.trim() {
                "id" if !text.is_empty() => Ok(Grantee::CanonicalUser(text.to_owned())),
                "uri" => group(text),
                "emailAddress" => Err(unresolvable_email()),
                _ => Err(invalid_argument("x-amz-grant", value)),
            }
        })
        .collect()
}

/// The grants of an AccessControlPolicy body, which must name its owner.
fn policy_body(body: &AccessControlPolicy) -> S3Result<Requested> {
    let owner = body.owner.as_ref().and_then(|o| o.id.clone()).filter(|id| !id.is_empty()).ok_or_else(malformed)?;
    let grants = body.grants.iter().flatten().map(body_grant).collect::<S3Result<_>>()?;
    Ok(Requested::Policy { owner, grants })
}

fn body_grant(grant: &Grant) -> S3Result<AclGrant> {
    let grantee = grant.grantee.as_ref().ok_or_else(malformed)?;
    let permission = match grant.permission.as_ref().map(|p| p.as_str()) {
        Some("READ") => AclPermission::Read,
        Some("WRITE") => AclPermission::Write,
        Some("READ_ACP") => AclPermission::ReadAcp,
        Some("WRITE_ACP") => AclPermission::WriteAcp,
        Some("FULL_CONTROL") => AclPermission::FullControl,
        _ => return Err(malformed()),
    };
    let grantee = match grantee.type_.as_str() {
        "CanonicalUser" => {
            Grantee::CanonicalUser(grantee.id.clone().filter(|id| !id.is_empty()).ok_or_else(malformed)?)
        }
        "Group" => group(grantee.uri.as_deref().ok_or_else(malformed)?)?,
        "AmazonCustomerByEmail" => return Err(unresolvable_email()),
        _ => return Err(malformed()),
    };
    Ok(AclGrant { grantee, permission })
}

/// One of the predefined groups, by URI.
fn group(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS | AUTHENTICATED_USERS | LOG_DELIVERY => Ok(Grantee::Group(uri.to_owned())),
        _ => Err(s3_error!(InvalidArgument, "Invalid group uri")),
    }
}

fn invalid_argument(name: &str, value: &str) -> S3Error {
    s3_error!(InvalidArgument, "Argument format not recognized: {name}: {value}")
}

fn malformed() -> S3Error {
    s3_error!(
        MalformedACLError,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

fn unresolvable_email() -> S3Error {
    s3_error!(UnresolvableGrantByEmailAddress, "The e-mail address you provided does not match any account on record.")
}

#[cfg(test)]
mod tests {
    use s3s::dto::{Grantee as DtoGrantee, Owner, Permission, Type};
    use s3s::S3ErrorCode;

    use super::*;

    fn code(result: S3Result<Requested>) -> S3ErrorCode {
        result.unwrap_err().code().clone()
    }

    #[test]
    fn grant_headers_name_users_and_groups() {
        let request = AclRequest {
            read: Some(r#"uri="http://acs.amazonaws.com/groups/global/AllUsers", id="abc""#),
            full_control: Some("id=owner"),
            ..Default::default()
        };
        let Requested::Grants(grants) = request.parse().unwrap() else { panic!("grants") };
        assert_eq!(
            grants,
            vec![
                AclGrant { grantee: Grantee::Group(ALL_USERS.into()), permission: AclPermission::Read },
                AclGrant { grantee: Grantee::CanonicalUser("abc".into()), permission: AclPermission::Read },
                AclGrant { grantee: Grantee::CanonicalUser("owner".into()), permission: AclPermission::FullControl },
            ]
        );
    }

    #[test]
    fn malformed_grant_headers_are_refused_as_aws_does() {
        let read = |value| AclRequest { read: Some(value), ..Default::default() }.parse();
        assert_eq!(code(read("nonsense")), S3ErrorCode::InvalidArgument);
        assert_eq!(code(read(r#"name="x""#)), S3ErrorCode::InvalidArgument);
        assert_eq!(code(read(r#"id="""#)), S3ErrorCode::InvalidArgument);
        assert_eq!(code(read(r#"uri="http://acs.amazonaws.com/groups/global/Nobody""#)), S3ErrorCode::InvalidArgument);
        assert_eq!(code(read(r#"emailAddress="a@example.com""#)), S3ErrorCode::UnresolvableGrantByEmailAddress);
        let both = AclRequest { canned: Some("private"), read: Some("id=a"), ..Default::default() };
        assert_eq!(code(both.parse()), S3ErrorCode::InvalidRequest);
        let unknown = AclRequest { canned: Some("world-writable"), ..Default::default() };
        assert_eq!(code(unknown.parse()), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn canned_acls_expand_as_aws_documents() {
        let canned = |name| AclRequest { canned: Some(name), ..Default::default() }.parse().unwrap();
        let acl = canned("public-read").acl("writer", "bucket-owner").unwrap();
        assert_eq!(acl.owner, "writer");
        assert_eq!(acl.grants.len(), 2);
        assert_eq!(acl.grants[1].grantee, Grantee::Group(ALL_USERS.into()));
        let full = canned("bucket-owner-full-control");
        assert!(full.is_bucket_owner_full_control());
        assert_eq!(full.acl("writer", "bucket-owner").unwrap().grants.len(), 2);
        assert_eq!(full.acl("bucket-owner", "bucket-owner").unwrap(), super::super::owner_only("bucket-owner"));
        assert_eq!(Requested::Nothing.acl("o", "o").unwrap(), super::super::owner_only("o"));
        assert_eq!(canned("public-read-write").acl("o", "o").unwrap().grants.len(), 3);
    }

    fn body(owner: Option<&str>, grants: Vec<Grant>) -> AccessControlPolicy {
        AccessControlPolicy {
            owner: Some(Owner { display_name: None, id: owner.map(Into::into) }),
            grants: Some(grants),
        }
    }

    fn grant(type_: &str, id: Option<&str>, uri: Option<&str>, permission: &str) -> Grant {
        Grant {
            grantee: Some(DtoGrantee {
                display_name: None,
                email_address: None,
                id: id.map(Into::into),
                type_: Type::from(type_.to_owned()),
                uri: uri.map(Into::into),
            }),
            permission: Some(Permission::from(permission.to_owned())),
        }
    }

    #[test]
    fn policy_bodies_keep_their_owner_and_are_checked() {
        let policy = body(Some("o"), vec![grant("CanonicalUser", Some("u"), None, "READ_ACP")]);
        let parsed = AclRequest { body: Some(&policy), ..Default::default() }.parse().unwrap();
        let acl = parsed.acl("o", "o").unwrap();
        assert_eq!(
            acl.grants,
            vec![AclGrant { grantee: Grantee::CanonicalUser("u".into()), permission: AclPermission::ReadAcp }]
        );
        assert_eq!(parsed.acl("someone-else", "o").unwrap_err().code(), &S3ErrorCode::AccessDenied);
        let parse = |policy: &AccessControlPolicy| AclRequest { body: Some(policy), ..Default::default() }.parse();
        assert_eq!(code(parse(&body(None, vec![]))), S3ErrorCode::MalformedACLError);
        assert_eq!(
            code(parse(&body(Some("o"), vec![grant("Group", None, None, "READ")]))),
            S3ErrorCode::MalformedACLError
        );
        assert_eq!(
            code(parse(&body(Some("o"), vec![grant("CanonicalUser", Some("u"), None, "EVERYTHING")]))),
            S3ErrorCode::MalformedACLError
        );
        let email = body(Some("o"), vec![grant("AmazonCustomerByEmail", None, None, "READ")]);
        assert_eq!(code(parse(&email)), S3ErrorCode::UnresolvableGrantByEmailAddress);
        let with_header = AclRequest { canned: Some("private"), body: Some(&policy), ..Default::default() };
        assert_eq!(code(with_header.parse()), S3ErrorCode::UnexpectedContent);
    }
}
