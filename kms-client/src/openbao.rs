//! OpenBao's transit secrets engine as the KMS: data keys from `datakey/plaintext/<key>`,
//! unsealed by `decrypt/<key>`, rewrapped by `rewrap/<key>` after a rotation. Authenticates with
//! a token, AppRole or a Kubernetes service-account JWT, renewing the token before it expires.
//! Every call has a timeout, transient failures are retried a bounded number of times with
//! backoff, and a circuit breaker fails calls at once while OpenBao is down, so encrypted
//! requests fail fast and recover by themselves when it returns.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::breaker::Breaker;
use crate::{DataKey, Kms, KmsError, PlainKey, Result};

/// Header that carries the OpenBao token.
const TOKEN_HEADER: &str = "X-Vault-Token";
/// A token is renewed (or a new one obtained) once this fraction of its lifetime has passed.
const RENEW_AT_FRACTION: f64 = 2.0 / 3.0;

/// How the gateway authenticates to OpenBao.
#[derive(Clone)]
pub enum Auth {
    /// A token given in the configuration (renewed when it is renewable).
    Token(Zeroizing<String>),
    /// AppRole login at `auth/<mount>/login`.
    AppRole {
        /// Mount path of the AppRole method (`approle`).
        mount: String,
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: Zeroizing<String>,
    },
    /// Kubernetes login at `auth/<mount>/login` with the pod's service-account token.
    Kubernetes {
        /// Mount path of the Kubernetes method (`kubernetes`).
        mount: String,
        /// The OpenBao role.
        role: String,
        /// File holding the service-account JWT (read at every login: it is rotated).
        jwt_file: PathBuf,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::AppRole { mount, role_id, .. } => write!(f, "AppRole {{ mount: {mount:?}, role_id: {role_id:?} }}"),
            Auth::Kubernetes { mount, role, jwt_file } => {
                write!(f, "Kubernetes {{ mount: {mount:?}, role: {role:?}, jwt_file: {jwt_file:?} }}")
            }
        }
    }
}

/// Settings of the OpenBao client.
#[derive(Debug, Clone)]
pub struct OpenBaoConfig {
    /// Base address, `http://host:port` or `https://host:port`.
    pub address: String,
    /// Mount path of the transit engine (`transit`).
    pub transit_mount: String,
    /// How to authenticate.
    pub auth: Auth,
    /// PEM file of the CA that signed OpenBao's certificate (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Time allowed for one HTTP exchange.
    pub request_timeout: Duration,
    /// Attempts of a call whose failure is transient (at least 1).
    pub attempts: u32,
    /// Pause before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl OpenBaoConfig {
    /// Settings with the default timeout (2 s), 3 attempts and 50 ms backoff.
    pub fn new(address: &str, auth: Auth) -> Self {
        Self {
            address: address.trim_end_matches('/').to_owned(),
            transit_mount: "transit".into(),
            auth,
            ca_file: None,
            request_timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(50),
        }
    }
}

/// A token and when to renew it.
struct Session {
    token: Zeroizing<String>,
    renew_at: Option<Instant>,
    renewable: bool,
}

/// Facts about a transit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The version new data keys are sealed with.
    pub latest_version: u64,
    /// The oldest version that can still decrypt.
    pub min_decryption_version: u64,
}

/// The OpenBao transit client.
pub struct OpenBao {
    config: OpenBaoConfig,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    session: Mutex<Option<Session>>,
    breaker: Breaker,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What one HTTP exchange returned.
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    /// OpenBao's error messages, joined.
    fn errors(&self) -> String {
        match self.body.get("errors").and_then(Value::as_array) {
            Some(errors) => errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
            None => self.status.to_string(),
        }
    }

    fn data_str(&self, field: &str) -> Result<&str> {
        self.body
            .get("data")
            .and_then(|d| d.get(field))
            .and_then(Value::as_str)
            .ok_or_else(|| KmsError::Protocol(format!("no data.{field} in the answer")))
    }
}

fn https_client(config: &OpenBaoConfig) -> Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>> {
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| KmsError::Config(format!("TLS: {e}")))?;
    let tls = match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| KmsError::Config(format!("CA file {}: {e}", path.display())))?;
            let mut roots = RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| KmsError::Config(format!("CA file {}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| KmsError::Config(format!("CA file {}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_native_roots()
            .map_err(|e| KmsError::Config(format!("system CA roots: {e}")))?
            .with_no_client_auth(),
    };
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.request_timeout));
    let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// Whether a key name can be put in a URL path as is (transit key names are simple).
fn check_key_name(key_id: &str) -> Result<()> {
    let valid = !key_id.is_empty()
        && key_id.len() <= 128
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && key_id != "."
        && key_id != "..";
    if valid {
        Ok(())
    } else {
        Err(KmsError::KeyNotFound(key_id.to_owned()))
    }
}

impl OpenBao {
    /// A client for the OpenBao at `config.address`. Nothing is sent until the first call.
    pub fn new(config: OpenBaoConfig) -> Result<Self> {
        if !(config.address.starts_with("http://") || config.address.starts_with("https://")) {
            return Err(KmsError::Config(format!(
                "OpenBao address {:?} must start with http:// or https://",
                config.address
            )));
        }
        let client = https_client(&config)?;
        Ok(Self { config, client, session: Mutex::new(None), breaker: Breaker::default() })
    }

    /// One HTTP exchange, with the timeout.
    async fn exchange(&self, method: Method, path: &str, body: Option<&Value>, token: Option<&str>) -> Result<Reply> {
        let uri = format!("{}/v1/{path}", self.config.address);
        let mut request = Request::builder().method(method).uri(&uri).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request =
            request.body(Full::new(payload)).map_err(|e| KmsError::Config(format!("request to {uri}: {e}")))?;
        let timeout = self.config.request_timeout;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| KmsError::Unavailable(format!("{uri}: {e}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| KmsError::Unavailable(format!("{uri}: reading the answer: {e}")))?
                .to_bytes();
            let body =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
            Ok(Reply { status, body })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| KmsError::Timeout(timeout))?
    }

    /// The current token, logging in or renewing first when needed.
    async fn token(&self) -> Result<Zeroizing<String>> {
        let mut session = self.session.lock().await;
        let now = Instant::now();
        if let Some(current) = session.as_ref() {
            if current.renew_at.is_none_or(|at| now < at) {
                return Ok(current.token.clone());
            }
            if current.renewable {
                match self.renew(&current.token).await {
                    Ok(renewed) => {
                        let token = renewed.token.clone();
                        *session = Some(renewed);
                        return Ok(token);
                    }
                    Err(e) if matches!(self.config.auth, Auth::Token(_)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "OpenBao token renewal failed; logging in again"),
                }
            }
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *session = Some(fresh);
        Ok(token)
    }

    /// Forgets the token, so the next call logs in again (after a 403 on a login token).
    async fn forget_token(&self) {
        *self.session.lock().await = None;
    }

    fn session_from(auth: &Value, fallback: Option<Zeroizing<String>>) -> Result<Session> {
        let token = match auth.get("client_token").and_then(Value::as_str) {
            Some(token) => Zeroizing::new(token.to_owned()),
            None => fallback.ok_or_else(|| KmsError::Protocol("no auth.client_token in the answer".into()))?,
        };
        let lease = auth.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
        let renewable = auth.get("renewable").and_then(Value::as_bool).unwrap_or(false);
        let renew_at = (lease > 0).then(|| Instant::now() + Duration::from_secs_f64(lease as f64 * RENEW_AT_FRACTION));
        Ok(Session { token, renew_at, renewable })
    }

    async fn login(&self) -> Result<Session> {
        let (path, body) = match &self.config.auth {
            Auth::Token(token) => {
                let reply = self.exchange(Method::GET, "auth/token/lookup-self", None, Some(token)).await?;
                if reply.status == StatusCode::FORBIDDEN {
                    return Err(KmsError::AccessDenied(reply.errors()));
                }
                if !reply.status.is_success() {
                    return Err(transient_or(reply, KmsError::Protocol));
                }
                let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
                let ttl = data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
                let renewable = data.get("renewable").and_then(Value::as_bool).unwrap_or(false);
                let auth = json!({ "lease_duration": ttl, "renewable": renewable });
                return Self::session_from(&auth, Some(token.clone()));
            }
            Auth::AppRole { mount, role_id, secret_id } => {
                (format!("auth/{mount}/login"), json!({ "role_id": role_id, "secret_id": secret_id.as_str() }))
            }
            Auth::Kubernetes { mount, role, jwt_file } => {
                let jwt = Zeroizing::new(
                    std::fs::read_to_string(jwt_file)
                        .map_err(|e| KmsError::Config(format!("service-account token {}: {e}", jwt_file.display())))?,
                );
                (format!("auth/{mount}/login"), json!({ "role": role, "jwt": jwt.trim() }))
            }
        };
        let reply = self.exchange(Method::POST, &path, Some(&body), None).await?;
        if matches!(reply.status, StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST) {
            return Err(KmsError::AccessDenied(format!("login at {path}: {}", reply.errors())));
        }
        if !reply.status.is_success() {
            return Err(transient_or(reply, KmsError::Protocol));
        }
        tracing::info!(method = %path, "logged in to OpenBao");
        Self::session_from(reply.body.get("auth").unwrap_or(&Value::Null), None)
    }

    async fn renew(&self, token: &str) -> Result<Session> {
        let reply = self.exchange(Method::POST, "auth/token/renew-self", Some(&json!({})), Some(token)).await?;
        if !reply.status.is_success() {
            return Err(transient_or(reply, KmsError::AccessDenied));
        }
        Self::session_from(reply.body.get("auth").unwrap_or(&Value::Null), Some(Zeroizing::new(token.to_owned())))
    }

    /// An authenticated call, retried with backoff while its failure is transient; a 403 on a
    /// login token logs in again once.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        self.breaker.check()?;
        let mut delay = self.config.backoff;
        let mut relogged = false;
        let mut attempt = 1;
        loop {
            let result = match self.token().await {
                Ok(token) => self.exchange(method.clone(), path, body, Some(&token)).await,
                Err(e) => Err(e),
            };
            let result = match result {
                Ok(reply) if reply.status.is_server_error() => Err(KmsError::Unavailable(reply.errors())),
                other => other,
            };
            match result {
                Ok(reply)
                    if reply.status == StatusCode::FORBIDDEN
                        && !relogged
                        && !matches!(self.config.auth, Auth::Token(_)) =>
                {
                    relogged = true;
                    self.forget_token().await;
                }
                Ok(reply) => {
                    self.breaker.success();
                    return Ok(reply);
                }
                Err(e) if e.is_transient() && attempt < self.config.attempts.max(1) => {
                    tracing::debug!(error = %e, attempt, "OpenBao call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    if e.is_transient() {
                        self.breaker.failure();
                    }
                    return Err(e);
                }
            }
        }
    }

    fn transit(&self, op: &str, key_id: &str) -> Result<String> {
        check_key_name(key_id)?;
        Ok(format!("{}/{op}/{key_id}", self.config.transit_mount))
    }

    /// Creates a transit key (aes256-gcm96) that may later be destroyed (crypto-shredding).
    pub async fn create_key(&self, key_id: &str) -> Result<()> {
        let path = self.transit("keys", key_id)?;
        let reply = self.call(Method::POST, &path, Some(&json!({ "type": "aes256-gcm96" }))).await?;
        expect_success(reply, key_id)?;
        let config = format!("{path}/config");
        let reply = self.call(Method::POST, &config, Some(&json!({ "deletion_allowed": true }))).await?;
        expect_success(reply, key_id).map(|_| ())
    }

    /// Rotates a transit key: new data keys use the new version, old ones still decrypt.
    pub async fn rotate_key(&self, key_id: &str) -> Result<()> {
        let path = format!("{}/rotate", self.transit("keys", key_id)?);
        expect_success(self.call(Method::POST, &path, Some(&json!({}))).await?, key_id).map(|_| ())
    }

    /// The versions of a transit key.
    pub async fn key_info(&self, key_id: &str) -> Result<KeyInfo> {
        let path = self.transit("keys", key_id)?;
        let reply = expect_success(self.call(Method::GET, &path, None).await?, key_id)?;
        let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
        let field = |name: &str| {
            data.get(name).and_then(Value::as_u64).ok_or_else(|| KmsError::Protocol(format!("no data.{name}")))
        };
        Ok(KeyInfo {
            latest_version: field("latest_version")?,
            min_decryption_version: field("min_decryption_version")?,
        })
    }
}

/// A transient error for 5xx answers, `other` for the rest.
fn transient_or(reply: Reply, other: fn(String) -> KmsError) -> KmsError {
    if reply.status.is_server_error() {
        KmsError::Unavailable(reply.errors())
    } else {
        other(format!("{}: {}", reply.status, reply.errors()))
    }
}

/// The reply when it succeeded; `KeyNotFound`, `AccessDenied` or `Protocol` otherwise.
fn expect_success(reply: Reply, key_id: &str) -> Result<Reply> {
    if reply.status.is_success() {
        return Ok(reply);
    }
    let errors = reply.errors();
    if reply.status == StatusCode::NOT_FOUND || errors.contains("not found") {
        return Err(KmsError::KeyNotFound(key_id.to_owned()));
    }
    if reply.status == StatusCode::FORBIDDEN {
        return Err(KmsError::AccessDenied(errors));
    }
    Err(KmsError::Protocol(format!("{}: {errors}", reply.status)))
}

#[async_trait]
impl Kms for OpenBao {
    async fn generate_data_key(&self, key_id: &str) -> Result<DataKey> {
        let path = self.transit("datakey/plaintext", key_id)?;
        let reply = expect_success(self.call(Method::POST, &path, Some(&json!({ "bits": 256 }))).await?, key_id)?;
        let plain = Zeroizing::new(
            BASE64
                .decode(reply.data_str("plaintext")?)
                .map_err(|_| KmsError::Protocol("plaintext is not base64".into()))?,
        );
        let plaintext =
            PlainKey::from_slice(&plain).ok_or_else(|| KmsError::Protocol("data key is not 256 bits".into()))?;
        Ok(DataKey { plaintext, sealed: reply.data_str("ciphertext")?.to_owned() })
    }

    async fn decrypt(&self, key_id: &str, sealed: &str) -> Result<PlainKey> {
        let path = self.transit("decrypt", key_id)?;
        let reply = self.call(Method::POST, &path, Some(&json!({ "ciphertext": sealed }))).await?;
        let reply = match expect_success(reply, key_id) {
            Err(KmsError::Protocol(reason)) => {
                return Err(KmsError::InvalidCiphertext { key: key_id.to_owned(), reason })
            }
            other => other?,
        };
        let plain = Zeroizing::new(
            BASE64
                .decode(reply.data_str("plaintext")?)
                .map_err(|_| KmsError::Protocol("plaintext is not base64".into()))?,
        );
        PlainKey::from_slice(&plain).ok_or_else(|| KmsError::Protocol("data key is not 256 bits".into()))
    }

    async fn rewrap(&self, key_id: &str, sealed: &str) -> Result<String> {
        let path = self.transit("rewrap", key_id)?;
        let reply = self.call(Method::POST, &path, Some(&json!({ "ciphertext": sealed }))).await?;
        let reply = match expect_success(reply, key_id) {
            Err(KmsError::Protocol(reason)) => {
                return Err(KmsError::InvalidCiphertext { key: key_id.to_owned(), reason })
            }
            other => other?,
        };
        Ok(reply.data_str("ciphertext")?.to_owned())
    }

    async fn health(&self) -> Result<()> {
        let reply = self.exchange(Method::GET, "sys/health", None, None).await?;
        match reply.status.as_u16() {
            200 | 429 => Ok(()),
            503 => Err(KmsError::Unavailable("OpenBao is sealed".into())),
            status => Err(KmsError::Unavailable(format!("OpenBao health: HTTP {status}"))),
        }
    }

    fn provider(&self) -> &'static str {
        "openbao"
    }
}
