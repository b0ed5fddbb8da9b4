//! The server's config file (`--config`, TOML): what does not fit flags and environment
//! variables: several OpenID providers, each with its own clients and claim mapping, and the
//! roles `AssumeRoleWithWebIdentity` may name, with their trust policies.
//!
//! ```toml
//! [[oidc]]
//! name = "eu"                                  # identities are `eu:<sub>`
//! issuer = "https://keycloak.eu.example/realms/sovereign"
//! client_ids = ["sovereign-s3"]
//! policy_claim = "policy"                      # the default
//! role_policies = { "s3-writers" = "readwrite", "/auditors" = "readonly" }
//!
//! [[role]]
//! arn = "arn:aws:iam::000000000000:role/uploader"
//! policies = ["writeonly"]
//! trust_policy = '''
//! {"Version": "2012-10-17", "Statement": {"Effect": "Allow",
//!   "Principal": {"Federated": "https://keycloak.eu.example/realms/sovereign"},
//!   "Action": "sts:AssumeRoleWithWebIdentity",
//!   "Condition": {"ForAnyValue:StringEquals": {"jwt:groups": "/uploaders"}}}}
//! '''
//! ```
//!
//! The file is read and checked once, at start-up: an unknown field, a malformed trust policy
//! or a role ARN that is not a role's stops the server with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::sts::claims::ClaimMapping;
use crate::sts::roles::Role;
use crate::sts::ProviderConfig;

/// The claim that names policies when a provider does not say.
const DEFAULT_POLICY_CLAIM: &str = "policy";

/// The parsed and checked config file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Trusted identity providers.
    pub providers: Vec<ProviderConfig>,
    /// Roles of `AssumeRoleWithWebIdentity`.
    pub roles: Vec<Role>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    oidc: Vec<ProviderEntry>,
    #[serde(default)]
    role: Vec<RoleEntry>,
}

/// One `[[oidc]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    name: Option<String>,
    issuer: String,
    client_ids: Vec<String>,
    policy_claim: Option<String>,
    #[serde(default)]
    role_policies: BTreeMap<String, String>,
}

/// One `[[role]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    arn: String,
    policies: Vec<String>,
    trust_policy: String,
}

impl ConfigFile {
    /// Reads and checks the file at `path` (clap's value parser of `--config`).
    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// Parses and checks the text of a config file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document: Document = toml::from_str(text).map_err(|e| e.to_string())?;
        let providers = document
            .oidc
            .into_iter()
            .map(|entry| {
                let role_policies = entry
                    .role_policies
                    .iter()
                    .map(|(role, policy)| ClaimMapping::role_policy(role, policy))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("OIDC provider {}: {e}", entry.issuer))?;
                Ok(ProviderConfig {
                    name: entry.name,
                    issuer: entry.issuer,
                    mapping: ClaimMapping {
                        policy_claim: entry.policy_claim.unwrap_or_else(|| DEFAULT_POLICY_CLAIM.to_owned()),
                        role_policies,
                        client_ids: entry.client_ids,
                    },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let document_roles = document.role;
        if providers.is_empty() && !document_roles.is_empty() {
            return Err("roles ([[role]]) need an OpenID provider ([[oidc]]) in the same file".into());
        }
        let roles = document_roles
            .into_iter()
            .map(|entry| Role::new(&entry.arn, entry.policies, &entry.trust_policy))
            .collect::<Result<_, _>>()?;
        Ok(Self { providers, roles })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[oidc]]
name = "eu"
issuer = "https://keycloak.eu.example/realms/sovereign"
client_ids = ["sovereign-s3"]
role_policies = { "s3-writers" = "readwrite" }

[[oidc]]
name = "uk"
issuer = "https://keycloak.uk.example/realms/sovereign"
client_ids = ["s3", "s3-batch"]
policy_claim = "minio_policy"

[[role]]
arn = "arn:aws:iam::000000000000:role/uploader"
policies = ["writeonly"]
trust_policy = '''
{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
  "Principal": {"Federated": "https://keycloak.eu.example/realms/sovereign"},
  "Action": "sts:AssumeRoleWithWebIdentity"}}
'''
"#;

    #[test]
    fn providers_and_roles_are_read() {
        let file = ConfigFile::parse(EXAMPLE).unwrap();
        assert_eq!(file.providers.len(), 2);
        assert_eq!(file.providers[0].name.as_deref(), Some("eu"));
        assert_eq!(file.providers[0].mapping.policy_claim, "policy");
        assert_eq!(file.providers[0].mapping.role_policies, [("s3-writers".to_owned(), "readwrite".to_owned())]);
        assert_eq!(file.providers[1].mapping.policy_claim, "minio_policy");
        assert_eq!(file.providers[1].mapping.client_ids, ["s3", "s3-batch"]);
        assert_eq!(file.roles.len(), 1);
        assert_eq!(file.roles[0].policies, ["writeonly"]);
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let unknown = ConfigFile::parse("[[oidc]]\nissuer = \"https://a\"\nclient_ids = [\"c\"]\nclaim = \"x\"\n");
        assert!(unknown.unwrap_err().contains("unknown field"));
        let provider = "[[oidc]]\nissuer = \"https://a\"\nclient_ids = [\"c\"]\n";
        let bad_trust = format!(
            "{provider}[[role]]\narn = \"arn:aws:iam:::role/r\"\npolicies = [\"readonly\"]\ntrust_policy = \"{{}}\"\n"
        );
        assert!(ConfigFile::parse(&bad_trust).unwrap_err().contains("trust policy"));
        let not_a_role = format!(
            "{provider}[[role]]\narn = \"arn:aws:iam:::user/r\"\npolicies = [\"readonly\"]\ntrust_policy = \"{{}}\"\n"
        );
        assert!(ConfigFile::parse(&not_a_role).unwrap_err().contains("not a role ARN"));
        assert!(ConfigFile::parse("").unwrap().providers.is_empty());
        let empty_role =
            "[[oidc]]\nissuer = \"https://a\"\nclient_ids = [\"c\"]\nrole_policies = { \" \" = \"readwrite\" }\n";
        assert!(ConfigFile::parse(empty_role).unwrap_err().contains("may be empty"));
        let allow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://a"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
        let orphan =
            format!("[[role]]\narn = \"arn:aws:iam:::role/r\"\npolicies = [\"readonly\"]\ntrust_policy = '{allow}'\n");
        assert!(ConfigFile::parse(&orphan).unwrap_err().contains("need an OpenID provider"));
    }
}
