//! Security Token Service: `AssumeRoleWithWebIdentity` turns a token from a trusted OpenID
//! Connect provider (Keycloak) into temporary S3 credentials that any gateway holding the
//! cluster key verifies on its own.

pub mod auth;
pub mod claims;
pub mod endpoint;
pub mod oidc;
pub mod roles;
pub mod session;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::sts::claims::ClaimMapping;
use crate::sts::oidc::{OidcProviders, TokenError, VerifiedToken};
use crate::sts::roles::Role;
use crate::sts::session::{ClusterKey, SessionCredentials, SessionIdentity};

/// Shortest session AWS STS grants.
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// Session length when the request does not ask for one.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// Why STS refused to mint credentials, as the AWS STS error it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// The token is not acceptable.
    #[error("{0}")]
    InvalidIdentityToken(String),
    /// The token has expired.
    #[error("Token expired: the web identity token has expired")]
    ExpiredToken,
    /// The token is valid but grants no policy.
    #[error("{0}")]
    AccessDenied(String),
    /// The identity provider could not be reached.
    #[error("{0}")]
    IdpCommunication(String),
    /// A parameter is out of range or malformed.
    #[error("{0}")]
    Validation(String),
    /// A required parameter is absent.
    #[error("{0}")]
    MissingParameter(String),
    /// Not an action this endpoint offers.
    #[error("{0}")]
    InvalidAction(String),
    /// Minting failed on this side.
    #[error("{0}")]
    Internal(String),
}

impl StsError {
    /// The AWS STS error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidIdentityToken(_) => "InvalidIdentityToken",
            Self::ExpiredToken => "ExpiredTokenException",
            Self::AccessDenied(_) => "AccessDenied",
            Self::IdpCommunication(_) => "IDPCommunicationError",
            Self::Validation(_) => "ValidationError",
            Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidAction(_) => "InvalidAction",
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status AWS STS answers it with.
    pub fn status(&self) -> u16 {
        match self {
            Self::AccessDenied(_) => 403,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

impl From<TokenError> for StsError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(message) => Self::InvalidIdentityToken(message),
            TokenError::Expired => Self::ExpiredToken,
            TokenError::Unreachable(message) => Self::IdpCommunication(message),
        }
    }
}

/// One trusted identity provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its name, which namespaces the identities of its tokens (`<name>:<sub>`); needed when
    /// several providers are trusted, since `sub` is unique only within one issuer.
    pub name: Option<String>,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Client ids its tokens must be issued for, and how its claims become policies.
    pub mapping: ClaimMapping,
}

/// Settings of the STS.
#[derive(Debug, Clone)]
pub struct StsConfig {
    /// Trusted identity providers.
    pub providers: Vec<ProviderConfig>,
    /// Roles a request may name in `RoleArn`.
    pub roles: Vec<Role>,
    /// Longest session granted.
    pub max_duration: Duration,
}

/// Credentials minted for a verified token.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The verified token.
    pub token: VerifiedToken,
    /// The new credentials.
    pub credentials: SessionCredentials,
}

/// The STS: trusted providers, claim mapping, roles, and the cluster key that seals sessions.
pub struct Sts {
    verifier: OidcProviders,
    providers: Vec<ProviderConfig>,
    roles: Vec<Role>,
    max_duration: Duration,
    key: Arc<ClusterKey>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts").field("providers", &self.providers).finish_non_exhaustive()
    }
}

impl Sts {
    /// The STS for `config`, minting under `key`. Refuses several providers unless each has a
    /// distinct name, and two roles with one ARN.
    pub fn new(config: StsConfig, key: Arc<ClusterKey>) -> Result<Self, String> {
        if config.max_duration < MIN_DURATION {
            return Err(format!("the STS maximum session duration must be at least {}s", MIN_DURATION.as_secs()));
        }
        check_names(&config.providers)?;
        let issuers: Vec<&str> = config.providers.iter().map(|p| p.issuer.as_str()).collect();
        for (i, issuer) in issuers.iter().enumerate() {
            if issuers[..i].iter().any(|other| roles::provider_path(other) == roles::provider_path(issuer)) {
                return Err(format!("OIDC issuer {issuer} is configured twice (with http:// and https://?)"));
            }
        }
        for (i, role) in config.roles.iter().enumerate() {
            if config.roles[..i].iter().any(|other| other.arn == role.arn) {
                return Err(format!("role {} is configured twice", role.arn));
            }
            role.check(&issuers)?;
        }
        let trusted: Vec<(String, Vec<String>)> =
            config.providers.iter().map(|p| (p.issuer.clone(), p.mapping.client_ids.clone())).collect();
        let verifier = OidcProviders::new(&trusted)?;
        Ok(Self { verifier, providers: config.providers, roles: config.roles, max_duration: config.max_duration, key })
    }

    /// Verifies `web_identity_token` and mints credentials lasting `duration` (default one
    /// hour), never past the token's own expiry. The session's policies are those of the role
    /// `role_arn` names if it is a configured role whose trust policy admits the token (a
    /// configured role that does not admit it is refused), else those the token's claims map to.
    pub async fn assume_role_with_web_identity(
        &self,
        web_identity_token: &str,
        role_arn: &str,
        duration: Option<Duration>,
        now: SystemTime,
    ) -> Result<Minted, StsError> {
        let duration = duration.unwrap_or(DEFAULT_DURATION.min(self.max_duration));
        if duration < MIN_DURATION || duration > self.max_duration {
            return Err(StsError::Validation(format!(
                "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must be between {} and {}",
                MIN_DURATION.as_secs(),
                self.max_duration.as_secs()
            )));
        }
        let token = self.verifier.verify(web_identity_token, now).await?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.issuer == token.issuer)
            .ok_or_else(|| StsError::Internal("the verified token's provider is not configured".into()))?;
        let policies = match self.roles.iter().find(|role| role.arn == role_arn) {
            Some(role) if role.trusts(&token, now) => role.policies.clone(),
            Some(role) => {
                tracing::info!(role = %role.arn, issuer = %token.issuer, subject = %token.subject, "STS refused: the role's trust policy does not admit the token");
                return Err(StsError::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into()));
            }
            None => provider.mapping.policies(&token.claims),
        };
        if policies.is_empty() {
            return Err(StsError::AccessDenied(format!(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity: the token grants no policy (claim '{}' or a mapped role)",
                provider.mapping.policy_claim
            )));
        }
        // `:` is in no IAM user name: `eu:alice` is no user, nor under a user's `${aws:username}/`.
        let subject = match &provider.name {
            Some(name) => format!("{name}:{}", token.subject),
            None => token.subject.clone(),
        };
        let identity = SessionIdentity {
            issuer: token.issuer.clone(),
            subject,
            policies,
            claims: provider.mapping.kept_claims(&token.claims),
        };
        let expires = (now + duration).min(token.expires);
        let (subject, policies) = (identity.subject.clone(), identity.policies.clone());
        let credentials = self.key.mint(identity, expires).map_err(StsError::Internal)?;
        tracing::info!(
            issuer = %token.issuer,
            %subject,
            role = %role_arn,
            ?policies,
            access_key = %credentials.access_key,
            "STS session minted"
        );
        Ok(Minted { token, credentials })
    }
}

/// Provider names: each `[a-z0-9-]`, distinct, and present on every provider when there are
/// several.
fn check_names(providers: &[ProviderConfig]) -> Result<(), String> {
    for (i, provider) in providers.iter().enumerate() {
        match &provider.name {
            Some(name) => {
                let valid = !name.is_empty()
                    && name.len() <= 32
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    return Err(format!("OIDC provider name {name:?}: 1 to 32 characters of a-z, 0-9 and -"));
                }
                if providers[..i].iter().any(|p| p.name.as_deref() == Some(name)) {
                    return Err(format!("OIDC provider name {name:?} is used twice"));
                }
            }
            None if providers.len() > 1 => {
                return Err(format!(
                    "OIDC provider {} needs a name (`name` in the config file, --oidc-name for --oidc-issuer): \
                     with several providers, each namespaces its identities (a token's `sub` is unique only \
                     within its issuer)",
                    provider.issuer
                ))
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: Option<&str>, issuer: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.map(str::to_owned),
            issuer: issuer.to_owned(),
            mapping: ClaimMapping { client_ids: vec!["c".into()], ..ClaimMapping::default() },
        }
    }

    #[test]
    fn several_providers_need_distinct_names() {
        assert!(check_names(&[provider(None, "https://a")]).is_ok());
        assert!(check_names(&[provider(Some("eu"), "https://a"), provider(Some("uk"), "https://b")]).is_ok());
        let unnamed = check_names(&[provider(Some("eu"), "https://a"), provider(None, "https://b")]);
        assert!(unnamed.unwrap_err().contains("needs a name"));
        let twice = check_names(&[provider(Some("eu"), "https://a"), provider(Some("eu"), "https://b")]);
        assert!(twice.unwrap_err().contains("used twice"));
        assert!(check_names(&[provider(Some("EU/x"), "https://a")]).is_err());
    }
}
