//! Who signed a request, as the authorization step sees it. Authentication (the root key pair,
//! STS session credentials minted for an OIDC identity, the access keys of IAM users and
//! service accounts) resolves the signing credentials to a [`Principal`]; the access step then
//! decides what that principal may do from its policies.

use std::sync::Arc;
use std::time::SystemTime;

use policy::Policy;
use s3s::S3Result;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// An unsigned request: only what bucket policies and ACLs grant to everyone.
    Anonymous,
    /// The root key pair: allowed everything.
    Root {
        /// The root access key id.
        access_key: String,
    },
    /// Temporary credentials that STS issued for a web identity (a Keycloak token).
    Session(Session),
    /// A user of the IAM store, signing with its access key.
    User(User),
    /// A service account, acting for its parent within its own policy.
    ServiceAccount(ServiceAccount),
}

/// The identity behind temporary credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The temporary access key id the request was signed with.
    pub access_key: String,
    /// The web identity token's issuer (`iss`).
    pub issuer: String,
    /// The web identity token's subject (`sub`).
    pub subject: String,
    /// Names of the policies that apply: built-in (`readonly`, `readwrite`, ...) or named.
    pub policies: Vec<String>,
    /// The token's claims, for `${jwt:...}` policy variables and conditions on claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// When the credentials expire.
    pub expires: SystemTime,
}

/// A policy that applies to an identity: built in, or named and stored.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityPolicy {
    /// One of the built-in policies (`readonly`, `readwrite`, ...).
    Builtin(&'static Policy),
    /// A named policy of the IAM store, parsed.
    Named(Arc<Policy>),
}

impl IdentityPolicy {
    /// The parsed document.
    pub fn policy(&self) -> &Policy {
        match self {
            Self::Builtin(policy) => policy,
            Self::Named(policy) => policy,
        }
    }
}

/// An IAM user: its name is its access key id.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user name and access key id.
    pub name: String,
    /// Names of the policies attached to the user and to its groups.
    pub policy_names: Vec<String>,
    /// Those policies, resolved (names of no policy left out: they grant nothing).
    pub policies: Arc<[IdentityPolicy]>,
}

/// A service account: what it may do is what its parent may do AND what its own policy allows.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccount {
    /// The access key id.
    pub access_key: String,
    /// The parent: an IAM user or an OpenID identity.
    pub parent: crate::iam::entities::Parent,
    /// The parent's policies, resolved.
    pub parent_policies: Arc<[IdentityPolicy]>,
    /// The account's own policy, which can only narrow the parent's.
    pub own_policy: Option<Arc<Policy>>,
}

impl Principal {
    /// The name `${aws:username}` stands for: a user's name, a session's or a service
    /// account's parent's subject.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::Root { access_key } => Some(access_key),
            Self::Session(session) => Some(&session.subject),
            Self::User(user) => Some(&user.name),
            Self::ServiceAccount(account) => Some(account.parent.name()),
        }
    }
}

/// Resolves the credentials a request was signed with to its principal.
#[async_trait::async_trait]
pub trait Principals: Send + Sync + 'static {
    /// `access_key` is the key id of the verified signature, `session_token` the request's
    /// `x-amz-security-token` if it has one. Errors are the S3 errors to answer
    /// (InvalidAccessKeyId, ExpiredToken, InvalidToken).
    async fn resolve(&self, access_key: &str, session_token: Option<&str>) -> S3Result<Principal>;
}

#[cfg(test)]
mod tests {
    use policy::{builtin, Context, Kind};

    use super::*;
    use crate::authz::Authorization;
    use crate::iam::entities::Parent;

    fn named(text: &str) -> IdentityPolicy {
        IdentityPolicy::Named(Arc::new(Policy::parse(text, Kind::Identity).unwrap()))
    }

    fn context(principal: &Principal) -> Context {
        let mut context = Context::default();
        if let Some(name) = principal.user_name() {
            context.insert("aws:username", name);
        }
        context
    }

    fn authorization(principal: &Principal) -> Authorization {
        Authorization::of(principal, context(principal), None)
    }

    #[test]
    fn users_get_their_named_and_builtin_policies_with_their_name_as_username() {
        let home = named(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}}"#,
        );
        let user = Principal::User(User {
            name: "alice".into(),
            policy_names: vec!["home".into(), "readonly".into()],
            policies: vec![home, IdentityPolicy::Builtin(builtin("readonly").unwrap())].into(),
        });
        let a = authorization(&user);
        assert!(a.allows("s3:PutObject", "arn:aws:s3:::b/home/alice/f"));
        assert!(!a.allows("s3:PutObject", "arn:aws:s3:::b/home/bob/f"));
        assert!(a.allows("s3:GetObject", "arn:aws:s3:::b/any"));
        assert!(!a.allows("admin:CreateUser", "arn:aws:s3:::*"));
    }

    #[test]
    fn a_service_account_policy_only_narrows_its_parent() {
        let parent = Parent::User { name: "dan".into() };
        let readonly: Arc<[IdentityPolicy]> = vec![IdentityPolicy::Builtin(builtin("readonly").unwrap())].into();
        let everything = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:*","admin:*"],"Resource":"*"}}"#,
            Kind::Identity,
        )
        .unwrap();
        let wide = Principal::ServiceAccount(ServiceAccount {
            access_key: "SA".into(),
            parent: parent.clone(),
            parent_policies: Arc::clone(&readonly),
            own_policy: Some(Arc::new(everything)),
        });
        let a = authorization(&wide);
        assert!(a.allows("s3:GetObject", "arn:aws:s3:::b/k"), "what the parent may");
        assert!(!a.allows("s3:PutObject", "arn:aws:s3:::b/k"), "a wider own policy gains nothing");
        assert!(!a.allows("admin:ListUsers", "arn:aws:s3:::*"));
        let narrow_policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"}}"#,
            Kind::Identity,
        )
        .unwrap();
        let narrow = Principal::ServiceAccount(ServiceAccount {
            access_key: "SA2".into(),
            parent,
            parent_policies: readonly,
            own_policy: Some(Arc::new(narrow_policy)),
        });
        let a = authorization(&narrow);
        assert!(a.allows("s3:GetObject", "arn:aws:s3:::b/public/k"));
        assert!(!a.allows("s3:GetObject", "arn:aws:s3:::b/private/k"), "narrowed");
        assert_eq!(narrow.user_name(), Some("dan"), "aws:username is the parent's");
    }
}
