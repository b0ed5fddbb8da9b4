//! Authentication of S3 requests signed with the root key pair, with STS session credentials,
//! or with the access keys of IAM users and service accounts: the secret for the signature
//! check ([`S3Auth`]), the session token check, and the caller's [`Principal`] for the access
//! step.

use std::sync::Arc;
use std::time::SystemTime;

use hyper::{HeaderMap, Uri};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Error, S3Result};

use crate::iam::resolve::Credential;
use crate::iam::{Iam, IamError};
use crate::identity::RootAuth;
use crate::principal::{Principal, Principals, Session};
use crate::sts::session::{self, ClusterKey, SessionError};

/// The header that carries a session token.
const TOKEN_HEADER: &str = "x-amz-security-token";
/// The query parameter that carries a session token in a presigned URL.
const TOKEN_QUERY: &str = "X-Amz-Security-Token";

/// Root, session and IAM credentials. A session access key (`STS...`) gets its secret only
/// while the expiry written in it lies ahead, and a request signed with one is accepted only
/// with the session token it was minted with ([`Authenticator::check_session_token`]). Any
/// other key is looked up in the IAM store, when there is one.
#[derive(Clone)]
pub struct Authenticator {
    root: RootAuth,
    sessions: Option<Arc<ClusterKey>>,
    iam: Option<Arc<Iam>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("sessions", &self.sessions.is_some()).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Root, plus sessions sealed with `sessions` when STS is on.
    pub fn new(root: RootAuth, sessions: Option<Arc<ClusterKey>>) -> Self {
        Self { root, sessions, iam: None }
    }

    /// Also accepts the keys of the users and service accounts of `iam`.
    pub fn with_iam(mut self, iam: Arc<Iam>) -> Self {
        self.iam = Some(iam);
        self
    }

    /// The IAM store's credential for `access_key`, or InvalidAccessKeyId.
    async fn iam_credential(&self, access_key: &str) -> S3Result<Arc<Credential>> {
        let Some(iam) = &self.iam else {
            return Err(unknown_access_key());
        };
        match iam.credential(access_key).await {
            Ok(Some(credential)) => Ok(credential),
            Ok(None) => Err(unknown_access_key()),
            Err(e) => Err(iam_unavailable(&e)),
        }
    }

    /// The session key of this cluster, for an access key id shaped like a session key.
    fn session_key(&self, access_key: &str) -> Option<&ClusterKey> {
        self.sessions.as_deref().filter(|_| session::is_session_key(access_key))
    }

    /// Opens a session: `token` must have been sealed by this cluster for `access_key`.
    fn open_session(&self, key: &ClusterKey, access_key: &str, token: Option<&str>) -> S3Result<Session> {
        let token = token.ok_or_else(|| {
            s3_error!(InvalidToken, "Temporary credentials need their session token (x-amz-security-token).")
        })?;
        let (identity, expires) = key.open(access_key, token, SystemTime::now()).map_err(session_error)?;
        Ok(Session {
            access_key: access_key.to_owned(),
            issuer: identity.issuer,
            subject: identity.subject,
            policies: identity.policies,
            claims: identity.claims,
            expires,
        })
    }

    /// Refuses a request signed with a session access key unless it carries that session's
    /// valid token (header or presigned query). Requests signed otherwise pass.
    pub fn check_session_token(&self, headers: &HeaderMap, uri: &Uri) -> S3Result<()> {
        let Some(access_key) = signing_access_key(headers, uri) else {
            return Ok(());
        };
        let Some(key) = self.session_key(&access_key) else {
            return Ok(());
        };
        self.open_session(key, &access_key, session_token(headers, uri).as_deref()).map(drop)
    }
}

fn unknown_access_key() -> S3Error {
    s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
}

/// The answer when the IAM store cannot be read: the cause goes to the log, never a secret.
fn iam_unavailable(e: &IamError) -> S3Error {
    tracing::warn!(error = %e, "IAM lookup failed");
    match e {
        IamError::Storage(_) | IamError::Kms(_) | IamError::Busy(_) => {
            s3_error!(ServiceUnavailable, "Please reduce your request rate.")
        }
        _ => s3_error!(InternalError, "We encountered an internal error. Please try again."),
    }
}

fn session_error(e: SessionError) -> S3Error {
    match e {
        SessionError::Expired => s3_error!(ExpiredToken, "The provided token has expired."),
        SessionError::Invalid(_) => s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."),
    }
}

#[async_trait::async_trait]
impl S3Auth for Authenticator {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.session_key(access_key) {
            Some(key) => {
                let secret = key.secret_key(access_key, SystemTime::now()).map_err(session_error)?;
                Ok(SecretKey::from(secret.as_str()))
            }
            None if self.root.is_root(access_key) => self.root.get_secret_key(access_key).await,
            None => Ok(SecretKey::from(self.iam_credential(access_key).await?.secret.expose())),
        }
    }
}

#[async_trait::async_trait]
impl Principals for Authenticator {
    async fn resolve(&self, access_key: &str, session_token: Option<&str>) -> S3Result<Principal> {
        match self.session_key(access_key) {
            Some(key) => self.open_session(key, access_key, session_token).map(Principal::Session),
            None if self.root.is_root(access_key) => self.root.resolve(access_key, session_token).await,
            None => {
                let credential = self.iam_credential(access_key).await?;
                if let Some(iam) = &self.iam {
                    iam.record_use(access_key);
                }
                Ok(credential.principal.clone())
            }
        }
    }
}

/// The access key id a request is signed with: SigV4 or V2, header or presigned query.
fn signing_access_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(auth) = headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
            let credential = rest.split("Credential=").nth(1)?;
            return credential.split('/').next().map(|k| k.trim().to_owned());
        }
        if let Some(rest) = auth.strip_prefix("AWS ") {
            return rest.split(':').next().map(|k| k.trim().to_owned());
        }
        return None;
    }
    let credential = query_param(uri, "X-Amz-Credential").or_else(|| query_param(uri, "AWSAccessKeyId"))?;
    credential.split('/').next().map(str::to_owned)
}

/// The session token of the request, from its header or presigned query (percent-decoded): the
/// one the front end checks and the access step resolves.
pub(crate) fn session_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    match headers.get(TOKEN_HEADER) {
        Some(value) => value.to_str().ok().map(str::to_owned),
        None => query_param(uri, TOKEN_QUERY),
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credentials::RootCredentials;
    use crate::sts::session::SessionIdentity;

    fn authenticator(key_byte: u8) -> (Authenticator, Arc<ClusterKey>) {
        let root = RootCredentials { access_key: "root".into(), secret_key: "root-secret".into() };
        let key = Arc::new(ClusterKey::from_bytes(&[key_byte; 32]).unwrap());
        (Authenticator::new(RootAuth::new(&root), Some(Arc::clone(&key))), key)
    }

    fn identity() -> SessionIdentity {
        SessionIdentity {
            issuer: "iss".into(),
            subject: "sub".into(),
            policies: vec!["readonly".into()],
            claims: serde_json::Map::new(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[tokio::test]
    async fn sessions_resolve_with_their_token_only() {
        let (auth, key) = authenticator(1);
        let creds = key.mint(identity(), SystemTime::now() + Duration::from_secs(900)).unwrap();
        let secret = auth.get_secret_key(&creds.access_key).await.unwrap();
        assert_eq!(secret.expose(), creds.secret_key.as_str());
        let principal = auth.resolve(&creds.access_key, Some(&creds.session_token)).await.unwrap();
        assert!(matches!(principal, Principal::Session(s) if s.policies == ["readonly"] && s.subject == "sub"));
        assert_eq!(*auth.resolve(&creds.access_key, None).await.unwrap_err().code(), s3s::S3ErrorCode::InvalidToken);
        let other = key.mint(identity(), SystemTime::now() + Duration::from_secs(900)).unwrap();
        let swapped = auth.resolve(&creds.access_key, Some(&other.session_token)).await.unwrap_err();
        assert_eq!(*swapped.code(), s3s::S3ErrorCode::InvalidToken);
        assert_eq!(auth.resolve("root", None).await.unwrap(), Principal::Root { access_key: "root".into() });
        let unknown = auth.resolve("someone", None).await.unwrap_err();
        assert_eq!(*unknown.code(), s3s::S3ErrorCode::InvalidAccessKeyId, "no IAM store, no users");
        let (foreign, _) = authenticator(2);
        assert!(foreign.resolve(&creds.access_key, Some(&creds.session_token)).await.is_err());
    }

    #[test]
    fn the_front_door_finds_the_key_and_token_in_headers_and_queries() {
        let (auth, key) = authenticator(1);
        let creds = key.mint(identity(), SystemTime::now() + Duration::from_secs(900)).unwrap();
        let authz = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            creds.access_key
        );
        let uri: Uri = "/b/k".parse().unwrap();
        assert!(auth.check_session_token(&headers(&[("authorization", &authz)]), &uri).is_err());
        let with_token = headers(&[("authorization", &authz), (TOKEN_HEADER, &creds.session_token)]);
        assert!(auth.check_session_token(&with_token, &uri).is_ok());
        let presigned: Uri =
            format!("/b/k?X-Amz-Credential={}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", creds.access_key)
                .parse()
                .unwrap();
        assert!(auth.check_session_token(&HeaderMap::new(), &presigned).is_err());
        let presigned: Uri = format!("{presigned}&X-Amz-Security-Token={}", creds.session_token).parse().unwrap();
        assert!(auth.check_session_token(&HeaderMap::new(), &presigned).is_ok());
        let v2 = format!("AWS {}:c2ln", creds.access_key);
        assert!(auth.check_session_token(&headers(&[("authorization", &v2)]), &uri).is_err());
        assert!(auth.check_session_token(&headers(&[("authorization", "AWS root:c2ln")]), &uri).is_ok());
    }
}
