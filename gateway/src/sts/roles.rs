//! Roles that `AssumeRoleWithWebIdentity` may name in `RoleArn`: each grants its own policies
//! to the tokens its trust policy admits (AWS's IAM roles for OIDC federation, configured in
//! the config file rather than stored).
//!
//! A trust policy is an AWS trust policy document ([`Kind::Trust`]): its `Principal` names the
//! identity providers (`{"Federated": "<issuer URL>"}` or the AWS-style
//! `arn:aws:iam::<account>:oidc-provider/<issuer host and path>`), its `Action` is
//! `sts:AssumeRoleWithWebIdentity`, and its conditions test the token's claims: every claim
//! as `jwt:<claim>` (arrays as several values, objects' members as `jwt:<claim>.<member>`),
//! AWS's `<issuer host and path>:sub`, `:aud`, `:azp` and `:amr` keys, and `aws:CurrentTime`,
//! so that a trust policy written for AWS's OIDC federation works here when it names the same
//! provider. An explicit Deny wins; a token no statement allows may not assume the role.
//! [`Role::check`] refuses, at start-up, a trust policy that names an unconfigured provider or
//! tests a key no token has.

use std::time::SystemTime;

use policy::{decide, normalize_key, Caller, Context, Kind, Policy, Request};
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

    /// Refuses a trust policy that names a provider not among `issuers`, or tests a condition
    /// key a token never has (a Deny on such a key would never apply): only `jwt:<claim>`,
    /// `<provider>:sub`/`:aud`/`:azp`/`:amr` of a trusted provider, and `aws:CurrentTime`.
    pub fn check(&self, issuers: &[&str]) -> Result<(), String> {
        for principal in self.trust.principal_names() {
            if !issuers.iter().any(|issuer| names_provider(principal, issuer)) {
                return Err(format!(
                    "role {}: its trust policy names {principal}, which is not a configured OIDC provider",
                    self.arn
                ));
            }
        }
        let provider_keys: Vec<String> = issuers
            .iter()
            .flat_map(|issuer| {
                PROVIDER_KEYS.iter().map(move |claim| normalize_key(&format!("{}:{claim}", provider_path(issuer))))
            })
            .collect();
        for key in self.trust.condition_keys() {
            let known = key.starts_with("jwt:") || key == "aws:currenttime" || provider_keys.contains(&key);
            if !known {
                return Err(format!(
                    "role {}: its trust policy tests {key}, which a web identity token never has (jwt:<claim>, <provider>:sub|aud|azp|amr, aws:CurrentTime)",
                    self.arn
                ));
            }
        }
        Ok(())
    }

    /// Whether the role's trust policy admits `token` at `now`.
    pub fn trusts(&self, token: &VerifiedToken, now: SystemTime) -> bool {
        let provider = provider_path(&token.issuer);
        // The token's provider, by every name the trust policy uses for it.
        let mut names: Vec<String> = self
            .trust
            .principal_names()
            .into_iter()
            .filter(|p| names_provider(p, &token.issuer))
            .map(str::to_owned)
            .collect();
        names.push(token.issuer.clone());
        let caller = Caller::Named(names);
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
/// provider in ARNs and condition keys (a trailing `/` stays, as AWS keeps it).
pub(crate) fn provider_path(issuer: &str) -> &str {
    issuer.strip_prefix("https://").or_else(|| issuer.strip_prefix("http://")).unwrap_or(issuer)
}

/// Whether `principal` names the provider `issuer`: its URL, or an `oidc-provider` ARN of it
/// (of any account).
fn names_provider(principal: &str, issuer: &str) -> bool {
    if principal == issuer {
        return true;
    }
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", _, resource]
        if resource.strip_prefix("oidc-provider/") == Some(provider_path(issuer)))
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
    fn trust_policies_may_name_only_configured_providers_and_token_keys() {
        let issuers = [ISSUER];
        let check = |trust: &str| role(trust).check(&issuers);
        let by_arn = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"idp.example/realms/r:sub":"a","jwt:azp":"app"},"DateLessThan":{"aws:CurrentTime":"2100-01-01T00:00:00Z"}}}}"#;
        assert_eq!(check(by_arn), Ok(()));
        let other = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://other.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
        assert!(check(other).unwrap_err().contains("not a configured OIDC provider"));
        let source_ip = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity"},
            {"Effect":"Deny","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        assert!(check(source_ip).unwrap_err().contains("aws:sourceip"));
        let other_provider_key = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"other.example/realms/r:sub":"a"}}}}"#;
        assert!(check(other_provider_key).is_err());
    }

    #[test]
    fn bad_roles_are_refused_at_start() {
        let allow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
        assert!(Role::new("arn:aws:iam:::user/x", vec!["readonly".into()], allow).is_err());
        assert!(Role::new("arn:aws:iam:::role/x", vec![], allow).is_err());
        let error = Role::new("arn:aws:iam:::role/x", vec!["readonly".into()], "{").unwrap_err();
        assert!(error.contains("trust policy"), "{error}");
        assert!(Role::new("arn:aws:iam:::role/x", vec!["readonly".into()], allow).is_ok());
    }
}
