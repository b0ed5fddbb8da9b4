//! Roles that `AssumeRoleWithWebIdentity` may name in `RoleArn`: each grants its own policies
//! to the tokens its trust policy admits (AWS's IAM roles for OIDC federation, configured in
//! the config file rather than stored).
//!
//! A trust policy is an AWS trust policy document ([`Kind::Trust`]): its `Principal` names the
//! identity providers (`{"Federated": "<issuer URL>"}` or the AWS-style
//! `arn:aws:iam::<account>:oidc-provider/<issuer host and path>`), its `Action` is
//! `sts:AssumeRoleWithWebIdentity`, and its conditions test the token's claims: every claim
//! as `jwt:<claim>` (arrays as several values), and AWS's `<issuer host and path>:sub`,
//! `:aud` and `:azp` keys, so that a trust policy written for AWS works unchanged. An explicit
//! Deny wins; a token no statement allows may not assume the role.

use std::time::SystemTime;

use policy::{decide, Caller, Context, Kind, Policy, Request};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::sts::claims::{claim_keys, scalars};
use crate::sts::oidc::VerifiedToken;

/// The action a trust policy must allow.
const ASSUME_ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// The claims AWS exposes as `<provider>:<claim>` condition keys.
const PROVIDER_KEYS: &[&str] = &["sub", "aud", "azp", "amr"];

/// A role: who may assume it, and what it grants.
#[derive(Debug, Clone)]
pub struct Role {
    /// The role's ARN, as clients send it in `RoleArn`.
    pub arn: String,
    /// Policy names (built in or named) a session of this role gets.
    pub policies: Vec<String>,
    /// Who may assume it.
    pub trust: Policy,
}

impl Role {
    /// A role named `arn` granting `policies` to the tokens `trust_policy` admits; refuses
    /// an ARN that is not an IAM role's, no policies, or a trust policy that does not parse.
    pub fn new(arn: &str, policies: Vec<String>, trust_policy: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let is_role = matches!(parts.as_slice(), ["arn", _, "iam", "", _, resource]
            if resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()));
        if !is_role {
            return Err(format!("role {arn:?}: not a role ARN (arn:aws:iam::<account>:role/<name>)"));
        }
        if policies.iter().all(|p| p.trim().is_empty()) {
            return Err(format!("role {arn}: grants no policy"));
        }
        let trust = Policy::parse(trust_policy, Kind::Trust)
            .map_err(|e| format!("role {arn}: trust policy: {} {}", e.message, e.position))?;
        Ok(Self { arn: arn.to_owned(), policies, trust })
    }

    /// Whether the role's trust policy admits `token` at `now`.
    pub fn trusts(&self, token: &VerifiedToken, now: SystemTime) -> bool {
        let provider = provider_path(&token.issuer);
        let caller = Caller::Named(vec![
            token.issuer.clone(),
            format!("arn:aws:iam:::oidc-provider/{provider}"),
            format!("arn:aws:iam::{}:oidc-provider/{provider}", account_of(&self.arn)),
        ]);
        let mut context = Context::default();
        claim_keys(&mut context, &token.claims);
        for claim in PROVIDER_KEYS {
            for value in token.claims.get(*claim).into_iter().flat_map(scalars) {
                context.insert(&format!("{provider}:{claim}"), value);
            }
        }
        if let Ok(now) = OffsetDateTime::from(now).format(&Rfc3339) {
            context.insert("aws:CurrentTime", now);
        }
        let request = Request { action: ASSUME_ACTION, resource: &self.arn, caller: &caller, context: &context };
        // The trust policy is the role's resource policy: its Principal decides who it speaks of.
        decide(&[], Some(&self.trust), &request)
    }
}

/// The issuer without its scheme (`keycloak.example/realms/sovereign`): how AWS names an OIDC
/// provider in ARNs and condition keys.
fn provider_path(issuer: &str) -> &str {
    let bare = issuer.strip_prefix("https://").or_else(|| issuer.strip_prefix("http://")).unwrap_or(issuer);
    bare.trim_end_matches('/')
}

/// The account field of an ARN (empty on this server's own ARNs).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;

    const ISSUER: &str = "https://idp.example/realms/r";

    fn token(claims: Value) -> VerifiedToken {
        let Value::Object(claims) = claims else { panic!("claims must be an object") };
        VerifiedToken {
            issuer: ISSUER.into(),
            subject: claims.get("sub").and_then(Value::as_str).unwrap_or_default().into(),
            audience: "app".into(),
            expires: SystemTime::now() + Duration::from_secs(300),
            claims,
        }
    }

    fn role(trust: &str) -> Role {
        Role::new("arn:aws:iam::123456789012:role/uploader", vec!["writeonly".into()], trust).unwrap()
    }

    #[test]
    fn aws_style_trust_policies_test_provider_keys_and_claims() {
        let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
            "Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/idp.example/realms/r"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"idp.example/realms/r:aud":"app"},
                         "ForAnyValue:StringEquals":{"jwt:groups":"/uploaders"}}}}"#;
        let role = role(trust);
        let now = SystemTime::now();
        assert!(role.trusts(&token(json!({"sub":"a","aud":"app","groups":["/staff","/uploaders"]})), now));
        assert!(!role.trusts(&token(json!({"sub":"a","aud":"app","groups":["/staff"]})), now));
        assert!(!role.trusts(&token(json!({"sub":"a","aud":"other","groups":["/uploaders"]})), now));
        let mut elsewhere = token(json!({"sub":"a","aud":"app","groups":["/uploaders"]}));
        elsewhere.issuer = "https://evil.example/realms/r".into();
        assert!(!role.trusts(&elsewhere, now), "a token of another provider");
    }

    #[test]
    fn nested_keycloak_roles_are_dotted_claims() {
        let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"ForAnyValue:StringEquals":{"jwt:realm_access.roles":"uploader","jwt:resource_access.app.roles":"put"}}}}"#;
        let role = role(trust);
        let now = SystemTime::now();
        let both =
            json!({"sub":"a","realm_access":{"roles":["user","uploader"]},"resource_access":{"app":{"roles":["put"]}}});
        assert!(role.trusts(&token(both), now));
        let realm_only = json!({"sub":"a","realm_access":{"roles":["uploader"]}});
        assert!(!role.trusts(&token(realm_only), now), "every condition key must hold");
    }

    #[test]
    fn issuer_principals_and_denials() {
        let trust = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity"},
            {"Effect":"Deny","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"jwt:sub":"guest-*"}}}]}"#;
        let role = role(trust);
        let now = SystemTime::now();
        assert!(role.trusts(&token(json!({"sub":"alice"})), now));
        assert!(!role.trusts(&token(json!({"sub":"guest-1"})), now));
    }

    #[test]
    fn bad_roles_are_refused_at_start() {
        let allow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity"}}"#;
        assert!(Role::new("arn:aws:iam:::user/x", vec!["readonly".into()], allow).is_err());
        assert!(Role::new("arn:aws:iam:::role/x", vec![], allow).is_err());
        let error = Role::new("arn:aws:iam:::role/x", vec!["readonly".into()], "{").unwrap_err();
        assert!(error.contains("trust policy"), "{error}");
        assert!(Role::new("arn:aws:iam:::role/x", vec!["readonly".into()], allow).is_ok());
    }
}
