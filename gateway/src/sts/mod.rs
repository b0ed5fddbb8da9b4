//! Security Token Service: `AssumeRoleWithWebIdentity` turns a token from a trusted OpenID
//! Connect provider (Keycloak) into temporary S3 credentials that any gateway holding the
//! cluster key verifies on its own.

pub mod auth;
pub mod claims;
pub mod endpoint;
pub mod oidc;
pub mod session;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::sts::claims::ClaimMapping;
use crate::sts::oidc::{OidcProviders, TokenError, VerifiedToken};
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

/// Settings of the STS.
#[derive(Debug, Clone)]
pub struct StsConfig {
    /// Trusted issuers.
    pub issuers: Vec<String>,
    /// Client ids a token must be issued for.
    pub client_ids: Vec<String>,
    /// Claims to policies.
    pub mapping: ClaimMapping,
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

/// The STS: trusted providers, claim mapping, and the cluster key that seals sessions.
pub struct Sts {
    providers: OidcProviders,
    mapping: ClaimMapping,
    max_duration: Duration,
    key: Arc<ClusterKey>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts").field("client_ids", &self.client_ids()).finish_non_exhaustive()
    }
}

impl Sts {
    /// The STS for `config`, minting under `key`.
    pub fn new(config: StsConfig, key: Arc<ClusterKey>) -> Result<Self, String> {
        if config.max_duration < MIN_DURATION {
            return Err(format!("the STS maximum session duration must be at least {}s", MIN_DURATION.as_secs()));
        }
        let providers = OidcProviders::new(&config.issuers, &config.client_ids)?;
        Ok(Self { providers, mapping: config.mapping, max_duration: config.max_duration, key })
    }

    /// Verifies `web_identity_token` and mints credentials lasting `duration` (default one
    /// hour), never past the token's own expiry.
    pub async fn assume_role_with_web_identity(
        &self,
        web_identity_token: &str,
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
        let token = self.providers.verify(web_identity_token, now).await?;
        let policies = self.mapping.policies(&token.claims);
        if policies.is_empty() {
            return Err(StsError::AccessDenied(format!(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity: the token grants no policy (claim '{}' or a mapped role)",
                self.mapping.policy_claim
            )));
        }
        let identity = SessionIdentity {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            policies,
            claims: self.mapping.kept_claims(&token.claims),
        };
        let expires = (now + duration).min(token.expires);
        let credentials = self.key.mint(identity, expires).map_err(StsError::Internal)?;
        Ok(Minted { token, credentials })
    }

    /// The configured client ids.
    pub fn client_ids(&self) -> &[String] {
        self.providers.client_ids()
    }
}
