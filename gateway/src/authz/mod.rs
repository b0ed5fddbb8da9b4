//! Authorization: what a principal may do. The access step ([`crate::access`]) names the
//! permissions a request needs ([`actions`]), gathers its condition keys ([`conditions`]) and
//! the bucket's policy ([`bucket_policies`]), and asks [`Authorization`]; handlers that
//! authorize item by item (DeleteObjects) ask the same [`Authorization`], which the access
//! step leaves in the request's extensions.

pub mod actions;
pub mod bucket_policies;
pub mod conditions;

use std::sync::{Arc, LazyLock};

use policy::{builtin, decide, evaluate, Caller, Context, Policy, Request, Verdict};
use s3s::{s3_error, S3Error, S3ErrorCode};

use crate::acl;
use crate::principal::{IdentityPolicy, Principal};

/// Resource ARNs of S3.
pub mod arn {
    /// The resource of operations on no bucket (ListBuckets): `arn:aws:s3:::*` and `*` match it.
    pub const SERVICE: &str = "arn:aws:s3:::";

    /// `arn:aws:s3:::bucket`.
    pub fn bucket(bucket: &str) -> String {
        format!("{SERVICE}{bucket}")
    }

    /// `arn:aws:s3:::bucket/key`.
    pub fn object(bucket: &str, key: &str) -> String {
        format!("{SERVICE}{bucket}/{key}")
    }
}

/// The refusal of every request that is not allowed: the same answer whether or not the
/// bucket or object exists.
pub fn access_denied() -> S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

/// The service prefix of the admin API's actions (`admin:CreateUser`, ...).
pub const ADMIN_SERVICE: &str = "admin:";

/// The family of condition keys that carry an existing object's tags (normalized).
pub const EXISTING_OBJECT_TAG: &str = "s3:existingobjecttag/";

/// What one request's principal may do: everything (root), or what its identity policies and
/// the request bucket's policy allow under the request's condition keys.
#[derive(Debug, Clone)]
pub struct Authorization(Arc<Grant>);

#[derive(Debug)]
enum Grant {
    Everything,
    Policies(Evaluation),
}

#[derive(Debug)]
struct Evaluation {
    caller: Caller,
    identity: Vec<IdentityPolicy>,
    /// A service account's own policy: a request must be allowed by it too.
    narrowing: Option<Arc<Policy>>,
    context: Context,
    bucket_policy: Option<Arc<Policy>>,
}

impl Authorization {
    /// The root principal's: everything (one shared value, no allocation per request).
    pub fn everything() -> Self {
        static EVERYTHING: LazyLock<Authorization> = LazyLock::new(|| Authorization(Arc::new(Grant::Everything)));
        EVERYTHING.clone()
    }

    /// A non-root principal's, in a request with condition keys `context` on a bucket whose
    /// policy is `bucket_policy`. Session policies are looked up by name among the built-in
    /// ones; a name that is not built in grants nothing. Users and service accounts come with
    /// their policies resolved; a service account acts as its parent, narrowed by its own
    /// policy.
    pub fn of(principal: &Principal, context: Context, bucket_policy: Option<Arc<Policy>>) -> Self {
        let (caller, identity, narrowing) = match principal {
            Principal::Root { .. } => return Self::everything(),
            Principal::Anonymous => (Caller::Anonymous, Vec::new(), None),
            Principal::Session(session) => (
                Caller::Named(vec![session_arn(&session.subject)]),
                session.policies.iter().filter_map(|name| builtin(name)).map(IdentityPolicy::Builtin).collect(),
                None,
            ),
            Principal::User(user) => (Caller::Named(vec![session_arn(&user.name)]), user.policies.to_vec(), None),
            Principal::ServiceAccount(account) => (
                Caller::Named(vec![account.parent.arn()]),
                account.parent_policies.to_vec(),
                account.own_policy.clone(),
            ),
        };
        Self(Arc::new(Grant::Policies(Evaluation { caller, identity, narrowing, context, bucket_policy })))
    }

    /// Whether `action` on `resource`, a resource of the request's bucket, is allowed.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        match &*self.0 {
            Grant::Everything => true,
            Grant::Policies(e) => e.allows(action, resource, e.bucket_policy.as_deref()),
        }
    }

    /// The policies' verdict on `action` on `resource`, a resource of the request's bucket.
    pub fn verdict(&self, action: &str, resource: &str) -> Verdict {
        match &*self.0 {
            Grant::Everything => Verdict::Allowed,
            Grant::Policies(e) => e.verdict(action, resource, e.bucket_policy.as_deref()),
        }
    }

    /// The policies' verdict on `action` on `resource` of another bucket, whose policy is
    /// `bucket_policy` (the source of a copy). A service account's own policy refusing it
    /// counts as an explicit deny: it narrows what ACLs grant too.
    pub fn verdict_in(&self, action: &str, resource: &str, bucket_policy: Option<&Policy>) -> Verdict {
        match &*self.0 {
            Grant::Everything => Verdict::Allowed,
            Grant::Policies(e) => e.verdict(action, resource, bucket_policy),
        }
    }

    /// The caller as ACLs name it.
    pub fn acl_identity(&self) -> AclIdentity {
        match &*self.0 {
            Grant::Everything => AclIdentity::Owner,
            Grant::Policies(e) => match &e.caller {
                Caller::Anonymous => AclIdentity::Anonymous,
                Caller::Named(arns) => {
                    arns.first().map_or(AclIdentity::Anonymous, |arn| AclIdentity::User(acl::canonical_id(arn)))
                }
            },
        }
    }

    /// Whether the admin action `action` is allowed: as [`Authorization::allows`], counting only
    /// the statements that name admin actions by their `admin:` prefix
    /// ([`Policy::restricted_to_service`]), so that an S3 policy with `"Action": "*"` or a
    /// NotAction grants no administration.
    pub fn allows_admin(&self, action: &str, resource: &str) -> bool {
        match &*self.0 {
            Grant::Everything => true,
            Grant::Policies(e) => {
                let restricted: Vec<Policy> =
                    e.identity.iter().map(|p| p.policy().restricted_to_service(ADMIN_SERVICE)).collect();
                let identity: Vec<&Policy> = restricted.iter().collect();
                let request = Request { action, resource, caller: &e.caller, context: &e.context };
                let narrowing = e.narrowing.as_deref().map(|own| own.restricted_to_service(ADMIN_SERVICE));
                decide(&identity, None, &request) && narrowing.is_none_or(|own| decide(&[&own], None, &request))
            }
        }
    }

    /// Whether some identity policy or the bucket's policy has a condition on a key starting
    /// with `prefix` (normalized).
    pub fn has_condition_on(&self, prefix: &str) -> bool {
        match &*self.0 {
            Grant::Everything => false,
            Grant::Policies(e) => {
                e.identity.iter().any(|p| p.policy().has_condition_on(prefix))
                    || e.narrowing.as_ref().is_some_and(|p| p.has_condition_on(prefix))
                    || e.bucket_policy.as_ref().is_some_and(|p| p.has_condition_on(prefix))
            }
        }
    }

    /// The same authorization with the tags of the object the request acts on as its
    /// `s3:ExistingObjectTag/<key>` condition keys.
    pub fn with_existing_tags(&self, tags: &[(String, String)]) -> Self {
        match &*self.0 {
            Grant::Everything => self.clone(),
            Grant::Policies(e) => {
                let mut context = e.context.clone();
                for (key, value) in tags {
                    context.insert(&format!("{EXISTING_OBJECT_TAG}{key}"), value.clone());
                }
                let evaluation = Evaluation {
                    caller: e.caller.clone(),
                    identity: e.identity.clone(),
                    narrowing: e.narrowing.clone(),
                    context,
                    bucket_policy: e.bucket_policy.clone(),
                };
                Self(Arc::new(Grant::Policies(evaluation)))
            }
        }
    }

    /// Whether anything at all may be allowed: root, or some identity or bucket policy.
    pub fn has_policies(&self) -> bool {
        match &*self.0 {
            Grant::Everything => true,
            Grant::Policies(e) => !e.identity.is_empty() || e.bucket_policy.is_some(),
        }
    }

    /// Whether the request may act on `key` of `bucket` (the request's bucket) for an
    /// operation whose permission is checked per key of its body (DeleteObjects): the
    /// operation's action, or its version action when `version_id` names a version.
    pub fn allows_key(&self, operation: &str, bucket: &str, key: &str, version_id: Option<&str>) -> bool {
        match actions::rule(operation) {
            Some(rule) => self.allows(rule.action_for(version_id), &arn::object(bucket, key)),
            None => false,
        }
    }
}

impl Evaluation {
    fn allows(&self, action: &str, resource: &str, bucket_policy: Option<&Policy>) -> bool {
        self.verdict(action, resource, bucket_policy) == Verdict::Allowed
    }

    fn verdict(&self, action: &str, resource: &str, bucket_policy: Option<&Policy>) -> Verdict {
        let request = Request { action, resource, caller: &self.caller, context: &self.context };
        let identity: Vec<&Policy> = self.identity.iter().map(IdentityPolicy::policy).collect();
        if self.narrowing.as_deref().is_some_and(|own| !decide(&[own], None, &request)) {
            return Verdict::ExplicitDeny;
        }
        evaluate(&identity, bucket_policy, &request)
    }
}

/// Who a request's caller is, as ACLs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclIdentity {
    /// Root: the owner of every bucket.
    Owner,
    /// An unsigned request.
    Anonymous,
    /// A signed request by this canonical id.
    User(String),
}

/// The error to answer when an object read finds no object (NoSuchKey, NoSuchVersion): as AWS
/// does, only callers who may list the bucket (s3:ListBucket) learn that the key does not
/// exist; the others get the AccessDenied of a key they may not read, so a read permission
/// does not reveal which keys exist.
pub fn conceal_missing(authorization: Option<&Authorization>, bucket: &str, error: S3Error) -> S3Error {
    let missing = matches!(error.code(), S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion);
    let may_list = authorization.is_some_and(|a| a.allows("s3:ListBucket", &arn::bucket(bucket)));
    if missing && !may_list {
        return access_denied();
    }
    error
}

/// The principal ARN of a session or an IAM user, as bucket policies name it:
/// `arn:aws:iam:::user/<sub or name>`.
pub fn session_arn(subject: &str) -> String {
    format!("arn:aws:iam:::user/{subject}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_object_is_revealed_only_to_callers_that_may_list() {
        let missing = || s3_error!(NoSuchKey, "The specified key does not exist.");
        let root = Authorization::everything();
        assert_eq!(conceal_missing(Some(&root), "b", missing()).code(), &S3ErrorCode::NoSuchKey);
        let anonymous = Authorization::of(&Principal::Anonymous, Context::default(), None);
        assert_eq!(conceal_missing(Some(&anonymous), "b", missing()).code(), &S3ErrorCode::AccessDenied);
        assert_eq!(conceal_missing(None, "b", missing()).code(), &S3ErrorCode::AccessDenied, "fails closed");
        let lister = policy::Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#,
            policy::Kind::Bucket("b"),
        )
        .unwrap();
        let listing = Authorization::of(&Principal::Anonymous, Context::default(), Some(Arc::new(lister)));
        assert_eq!(conceal_missing(Some(&listing), "b", missing()).code(), &S3ErrorCode::NoSuchKey);
        let other = s3_error!(SlowDown);
        assert_eq!(conceal_missing(Some(&anonymous), "b", other).code(), &S3ErrorCode::SlowDown);
    }
}
