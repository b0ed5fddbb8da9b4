//! Who signed a request, as the authorization step sees it. Authentication (the root key pair,
//! STS session credentials minted for an OIDC identity) resolves the signing credentials to a
//! [`Principal`]; the access step then decides what that principal may do from its policies.

use std::time::SystemTime;

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

/// Resolves the credentials a request was signed with to its principal.
pub trait Principals: Send + Sync + 'static {
    /// `access_key` is the key id of the verified signature, `session_token` the request's
    /// `x-amz-security-token` if it has one. Errors are the S3 errors to answer
    /// (InvalidAccessKeyId, ExpiredToken, InvalidToken).
    fn resolve(&self, access_key: &str, session_token: Option<&str>) -> S3Result<Principal>;
}
