//! Verifying web identity tokens: JWTs from trusted OpenID Connect providers (Keycloak realms),
//! whose signing keys come from OIDC discovery and the provider's JWKS.
//!
//! A token is accepted only if: its issuer is exactly a configured one; its header names
//! RS256, ES256 or PS256 (never `none`, never an HMAC) and a `kid` in the issuer's JWKS whose
//! key type fits; its signature verifies; `aud` or `azp` names a configured client; and `exp`,
//! `nbf` and `iat` hold within [`CLOCK_SKEW`]. The JWKS is cached for [`JWKS_MAX_AGE`] and
//! fetched again when a token names an unknown `kid` (the provider rotated its keys), at most
//! once per [`JWKS_REFETCH_INTERVAL`] so that forged `kid`s cannot make the gateway hammer the
//! provider.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// Clock difference tolerated between the gateway and the identity provider.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Least time between two JWKS fetches caused by an unknown `kid`.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Time allowed for one request to the identity provider.
const IDP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery document or JWKS accepted.
const IDP_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The only signature algorithms accepted.
const ALLOWED_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];

/// Why a web identity token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, forged, from an untrusted issuer, for another audience, or not yet valid.
    #[error("{0}")]
    Invalid(String),
    /// Past its `exp`.
    #[error("the web identity token has expired")]
    Expired,
    /// The provider's discovery document or JWKS could not be fetched.
    #[error("{0}")]
    Unreachable(String),
}

fn invalid(message: impl Into<String>) -> TokenError {
    TokenError::Invalid(message.into())
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// The configured client id the token was issued for (through `aud` or `azp`).
    pub audience: String,
    /// `exp`.
    pub expires: SystemTime,
    /// Every claim.
    pub claims: Map<String, Value>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The trusted identity providers.
pub struct OidcProviders {
    providers: Vec<Provider>,
}

impl OidcProviders {
    /// Trusts tokens of each `(issuer, client_ids)`: the exact `iss` (such as
    /// `https://keycloak.example/realms/sovereign`) and the clients its tokens must be issued
    /// for. Nothing is fetched until the first token arrives.
    pub fn new(trusted: &[(String, Vec<String>)]) -> Result<Self, String> {
        let http = http_client()?;
        let mut providers: Vec<Provider> = Vec::new();
        for (issuer, client_ids) in trusted {
            if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                return Err(format!("OIDC issuer {issuer:?} must start with https:// or http://"));
            }
            if providers.iter().any(|p| p.issuer == *issuer) {
                return Err(format!("OIDC issuer {issuer:?} is configured twice"));
            }
            let client_ids: Vec<String> =
                client_ids.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
            if client_ids.is_empty() {
                return Err(format!(
                    "OIDC issuer {issuer:?} needs client ids (--oidc-client-id, SOVEREIGN_S3_OIDC_CLIENT_ID, or client_ids in the config file)"
                ));
            }
            providers.push(Provider {
                issuer: issuer.clone(),
                client_ids,
                http: http.clone(),
                keys: Mutex::new(KeyState::default()),
            });
        }
        Ok(Self { providers })
    }

    /// Verifies `token` against the provider that its `iss` names.
    pub async fn verify(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, TokenError> {
        let header = parse_header(token)?;
        let issuer = unverified_issuer(token)?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.issuer == issuer)
            .ok_or_else(|| invalid("the token's issuer is not a trusted identity provider"))?;
        let kid = header.kid.as_deref().ok_or_else(|| invalid("the token names no signing key (kid)"))?;
        let jwk = provider.key(kid).await?;
        verify_with_key(token, &header, &jwk, &provider.issuer, &provider.client_ids, now)
    }
}

/// The header of a JWT signed with an allowed algorithm.
fn parse_header(token: &str) -> Result<Header, TokenError> {
    if token.split('.').count() != 3 {
        return Err(invalid("the web identity token is not a JWT"));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid("the token header is malformed or its algorithm is not allowed"))?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(invalid(format!("signature algorithm {:?} is not allowed", header.alg)));
    }
    Ok(header)
}

/// The `iss` of a token, before its signature is checked: it only picks the keys to check with.
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid("the token payload is not base64url"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| invalid("the token payload is not a JSON object"))?;
    claims.get("iss").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| invalid("the token has no issuer"))
}

/// Verifies `token` (whose parsed header is `header`) with the provider key `jwk`.
pub fn verify_with_key(
    token: &str,
    header: &Header,
    jwk: &Jwk,
    issuer: &str,
    client_ids: &[String],
    now: SystemTime,
) -> Result<VerifiedToken, TokenError> {
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(invalid("signature algorithm not allowed"));
    }
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(header.alg, Algorithm::RS256 | Algorithm::PS256),
        AlgorithmParameters::EllipticCurve(_) => header.alg == Algorithm::ES256,
        _ => false,
    };
    let alg_matches = jwk.common.key_algorithm.as_ref().is_none_or(|a| a.to_string() == format!("{:?}", header.alg));
    let for_signing = jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature);
    if !(fits && alg_matches && for_signing) {
        return Err(invalid("the signing key does not fit the token's algorithm"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid("the provider's signing key is unusable"))?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.leeway = CLOCK_SKEW.as_secs();
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidSignature => invalid("the token's signature is not valid"),
        ErrorKind::InvalidIssuer => invalid("the token's issuer is not a trusted identity provider"),
        ErrorKind::ImmatureSignature => invalid("the token is not valid yet (nbf)"),
        ErrorKind::MissingRequiredClaim(claim) => invalid(format!("the token has no {claim} claim")),
        _ => invalid("the token is malformed"),
    })?;
    let claims = data.claims;
    let audience = matching_audience(&claims, client_ids)
        .ok_or_else(|| invalid("the token was not issued for a configured client (aud, azp)"))?;
    let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if claims.get("iat").and_then(Value::as_u64).is_some_and(|iat| iat > now_secs + CLOCK_SKEW.as_secs()) {
        return Err(invalid("the token is issued in the future (iat)"));
    }
    let exp = claims.get("exp").and_then(Value::as_u64).ok_or_else(|| invalid("the token has no numeric exp"))?;
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
    if subject.is_empty() {
        return Err(invalid("the token has no subject"));
    }
    Ok(VerifiedToken {
        issuer: issuer.to_owned(),
        subject,
        audience,
        expires: UNIX_EPOCH + Duration::from_secs(exp),
        claims,
    })
}

/// The configured client named by `aud` (a string or a list), else by `azp`.
fn matching_audience(claims: &Map<String, Value>, client_ids: &[String]) -> Option<String> {
    let configured = |name: &str| client_ids.iter().any(|c| c == name);
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").and_then(Value::as_str);
    audiences.into_iter().chain(azp).find(|name| configured(name)).map(str::to_owned)
}

/// One trusted issuer, the clients its tokens must be for, and its cached signing keys.
struct Provider {
    issuer: String,
    client_ids: Vec<String>,
    http: HttpClient,
    keys: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    keys: Option<(JwkSet, Instant)>,
    last_refetch: Option<Instant>,
}

impl Provider {
    /// The signing key `kid`: from the cache, or from a fresh JWKS when the cache is old or
    /// (rate-limited) does not know `kid`.
    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        let mut state = self.keys.lock().await;
        let fresh = state.keys.as_ref().is_some_and(|(_, at)| at.elapsed() < JWKS_MAX_AGE);
        if !fresh {
            state.keys = Some((self.fetch_keys().await?, Instant::now()));
        }
        if let Some(jwk) = state.keys.as_ref().and_then(|(set, _)| set.find(kid)) {
            return Ok(jwk.clone());
        }
        let may_refetch = state.last_refetch.is_none_or(|at| at.elapsed() >= JWKS_REFETCH_INTERVAL);
        if fresh && may_refetch {
            state.last_refetch = Some(Instant::now());
            state.keys = Some((self.fetch_keys().await?, Instant::now()));
            tracing::info!(issuer = %self.issuer, "fetched the identity provider's keys again for an unknown kid");
            if let Some(jwk) = state.keys.as_ref().and_then(|(set, _)| set.find(kid)) {
                return Ok(jwk.clone());
            }
        }
        Err(invalid("the token's signing key (kid) is not one of the provider's keys"))
    }

    /// Discovery, then the JWKS it names.
    async fn fetch_keys(&self) -> Result<JwkSet, TokenError> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery = get_json(&self.http, &discovery_url).await?;
        if discovery.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Unreachable(format!("{discovery_url} names another issuer")));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::Unreachable(format!("{discovery_url} has no jwks_uri")))?;
        let jwks = get_json(&self.http, jwks_uri).await?;
        serde_json::from_value(jwks).map_err(|e| TokenError::Unreachable(format!("{jwks_uri}: not a JWKS: {e}")))
    }
}

fn http_client() -> Result<HttpClient, String> {
    https_client(IDP_TIMEOUT)
}

/// An HTTP(S) client trusting the system's CA roots, connecting within `connect_timeout`
/// (also the admin command line's client).
pub(crate) fn https_client<B>(connect_timeout: Duration) -> Result<Client<HttpsConnector<HttpConnector>, B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    use tokio_rustls::rustls::ClientConfig;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_native_roots()
        .map_err(|e| format!("system CA roots: {e}"))?
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// GETs a JSON document from the identity provider.
async fn get_json(http: &HttpClient, url: &str) -> Result<Value, TokenError> {
    let unreachable = |what: String| TokenError::Unreachable(format!("identity provider {url}: {what}"));
    let uri: hyper::Uri = url.parse().map_err(|e| unreachable(format!("bad URL: {e}")))?;
    let exchange = async {
        let response = http.get(uri).await.map_err(|e| unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("status {}", response.status())));
        }
        let body = Limited::new(response.into_body(), IDP_MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| unreachable(format!("not JSON: {e}")))
    };
    tokio::time::timeout(IDP_TIMEOUT, exchange).await.map_err(|_| unreachable("timed out".into()))?
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example/realms/sovereign";

    /// An ES256 key pair: the signing key and its public JWK.
    fn es256_key(kid: &str) -> (EncodingKey, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        (EncodingKey::from_ec_der(pkcs8.as_ref()), serde_json::from_value(jwk).unwrap())
    }

    fn now_secs() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn claims() -> Value {
        let now = now_secs();
        json!({"iss": ISSUER, "sub": "alice", "aud": "account", "azp": "sovereign-s3", "iat": now, "exp": now + 300, "policy": "readwrite"})
    }

    fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn check(token: &str, jwk: &Jwk) -> Result<VerifiedToken, TokenError> {
        let header = parse_header(token)?;
        verify_with_key(token, &header, jwk, ISSUER, &["sovereign-s3".to_owned()], SystemTime::now())
    }

    #[test]
    fn a_well_formed_token_verifies() {
        let (key, jwk) = es256_key("k1");
        let verified = check(&sign(&key, "k1", &claims()), &jwk).unwrap();
        assert_eq!((verified.subject.as_str(), verified.audience.as_str()), ("alice", "sovereign-s3"));
        assert_eq!(unverified_issuer(&sign(&key, "k1", &claims())).unwrap(), ISSUER);
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let (_, jwk) = es256_key("k1");
        let (other, _) = es256_key("k1");
        assert_eq!(check(&sign(&other, "k1", &claims()), &jwk), Err(invalid("the token's signature is not valid")));
    }

    #[test]
    fn issuer_audience_and_times_are_checked() {
        let (key, jwk) = es256_key("k1");
        let with = |field: &str, value: Value| {
            let mut c = claims();
            c[field] = value;
            check(&sign(&key, "k1", &c), &jwk)
        };
        assert!(matches!(with("iss", json!("https://evil.example/realms/sovereign")), Err(TokenError::Invalid(_))));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("azp");
        c["aud"] = json!(["account", "other"]);
        assert!(matches!(check(&sign(&key, "k1", &c), &jwk), Err(TokenError::Invalid(_))));
        assert!(with("aud", json!(["x", "sovereign-s3"])).is_ok());
        assert_eq!(with("exp", json!(now_secs() - 120)), Err(TokenError::Expired));
        assert!(with("exp", json!(now_secs() - 30)).is_ok(), "within the clock skew");
        assert!(matches!(with("nbf", json!(now_secs() + 600)), Err(TokenError::Invalid(_))));
        assert!(matches!(with("iat", json!(now_secs() + 600)), Err(TokenError::Invalid(_))));
        assert!(matches!(with("sub", json!("")), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn none_and_hmac_algorithms_are_refused() {
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#));
        assert!(matches!(parse_header(&none), Err(TokenError::Invalid(_))));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"public key bytes")).unwrap();
        assert!(matches!(parse_header(&hs), Err(TokenError::Invalid(_))));
        for garbage in ["", "abc", "a.b", "a.b.c.d", "not a jwt at all"] {
            assert!(matches!(parse_header(garbage), Err(TokenError::Invalid(_))), "{garbage}");
        }
    }

    #[test]
    fn a_key_of_another_type_or_algorithm_is_not_used() {
        let (key, mut jwk) = es256_key("k1");
        jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
        assert!(matches!(check(&sign(&key, "k1", &claims()), &jwk), Err(TokenError::Invalid(_))));
    }
}
