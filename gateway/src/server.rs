//! Starting the all-in-one server: object store, S3 service, and the HTTP(S) listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::{S3Service, S3ServiceBuilder};
use sovereign_kms_client::cache::CachedKms;
use sovereign_kms_client::local::LocalKms;
use sovereign_kms_client::openbao::OpenBao;
use sovereign_kms_client::Kms;
use storage::{ObjectStore, StoreConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::access::Authorize;
use crate::admin::kms::KeyStore;
use crate::admin::AdminRoute;
use crate::admission::{
    AcceptBackoff, ConnectionActivity, Limits, RequestLimit, SendStallTimeout, Throttle, WARNING_INTERVAL,
};

use crate::authz::bucket_policies::StoredPolicies;
use crate::config::{self, KmsKind, ServerArgs};
use crate::cors::Cors;
use crate::credentials::{self, Origin};
use crate::frontend::{Frontend, FrontendState};
use crate::iam::Iam;
use crate::identity::{DomainHost, RootAuth};
use crate::post_object::PostObjects;
use crate::principal::Principals;
use crate::s3::Gateway;
use crate::sigv2;
use crate::sse::Sse;
use crate::sts::auth::Authenticator;
use crate::sts::claims::ClaimMapping;
use crate::sts::session::ClusterKey;
use crate::sts::{ProviderConfig, Sts, StsConfig};
use crate::telemetry::audit::AuditLog;

/// Interval of the HTTP/2 keep-alive pings that detect a vanished client.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// A client that does not answer an HTTP/2 ping within this time is disconnected.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds everything from the arguments and serves until the process is stopped.
pub async fn run(args: ServerArgs) -> Result<(), String> {
    let drives = config::expand_drives(&args.drives)?;
    if drives.is_empty() {
        return Err("at least one drive directory is needed".into());
    }
    let limits = Limits::from_args(&args, drives.len());
    let (root, origin) = credentials::resolve(args.root_user.clone(), args.root_password.clone(), &drives)?;
    let store_config = StoreConfig {
        drives: drives.clone(),
        parity: args.parity,
        inline_threshold_bytes: usize::try_from(args.inline_threshold).unwrap_or(usize::MAX),
        durable: args.fsync,
        ..StoreConfig::default()
    };
    let store = ObjectStore::open(store_config).await.map_err(|e| format!("cannot open the drives: {e}"))?;
    let layout = store.layout();
    tracing::info!(
        drives = drives.len(),
        sets = layout.sets,
        data = layout.erasure.data,
        parity = layout.erasure.parity,
        fsync = args.fsync,
        "object store open"
    );
    let kms = key_management(&args, &drives).await?;
    let ttl = Duration::from_secs(args.kms_cache_ttl_secs);
    let kms: Arc<dyn Kms> = Arc::new(CachedKms::new(kms, args.kms_cache_entries, ttl));
    let iam = Iam::open(Arc::clone(&store), Arc::clone(&kms), &args.kms_default_key, &root.access_key)
        .await
        .map_err(|e| format!("cannot open the IAM store: {e}"))?;
    let iam = Arc::new(iam);
    let sse = Sse::new(kms, args.kms_default_key.clone());
    std::sync::LazyLock::force(&crate::telemetry::metrics::METRICS);
    std::sync::LazyLock::force(&storage::metrics::METRICS);
    let audit = match &args.audit_log {
        Some(path) => Some(AuditLog::open(path, args.audit_log_max_bytes)?),
        None => None,
    };
    let sessions = session_key(&args, &drives)?;
    let auth = Authenticator::new(RootAuth::new(&root), sessions.clone()).with_iam(Arc::clone(&iam));
    let sts = security_token_service(&args, sessions)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let (s3, post) = build_service(&args, Arc::clone(&store), &root, sse, &auth, iam)?;
    let state = Arc::new(FrontendState {
        s3,
        post,
        sts,
        auth,
        store,
        audit,
        metrics_token: args.metrics_token.clone(),
        host_id: uuid::Uuid::new_v4().simple().to_string(),
        requests: RequestLimit::new(limits.max_requests_in_flight),
        body_idle_timeout: limits.body_idle_timeout,
        cors: Cors::new(if args.domain.is_empty() { None } else { Some(DomainHost::new(&args.domain)?) }),
    });
    let listener =
        TcpListener::bind(args.address).await.map_err(|e| format!("cannot listen on {}: {e}", args.address))?;
    let address = listener.local_addr().map_err(|e| format!("listener address: {e}"))?;
    if origin == Origin::Generated {
        println!("Generated root credentials (stored as {} on every drive):", credentials::CREDENTIALS_FILE);
        println!("  access key: {}", root.access_key);
        println!("  secret key: {}", root.secret_key);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        max_connections = limits.max_connections,
        max_requests_in_flight = limits.max_requests_in_flight,
        header_timeout_secs = limits.header_timeout.as_secs(),
        idle_timeout_secs = limits.idle_timeout.as_secs(),
        body_timeout_secs = limits.body_idle_timeout.as_secs(),
        "admission limits"
    );
    println!("sovereign-s3 listening on {scheme}://{address}");
    serve(listener, state, tls, limits).await
}

fn build_service(
    args: &ServerArgs,
    store: Arc<ObjectStore>,
    root: &credentials::RootCredentials,
    sse: Sse,
    auth: &Authenticator,
    iam: Arc<Iam>,
) -> Result<(S3Service, PostObjects), String> {
    let policies = Arc::new(StoredPolicies::new(Arc::clone(&store)));
    let keys = KeyStore { store: Arc::clone(&store), kms: sse.kms() };
    let gateway = Gateway::new(store, args.region.clone(), &root.access_key, sse);
    let authorize = Authorize::new(&args.region, principals(auth), policies);
    let host = if args.domain.is_empty() { None } else { Some(DomainHost::new(&args.domain)?) };
    let post = PostObjects::new(gateway.clone(), auth.clone(), authorize.clone(), host, &args.region);
    let mut builder = S3ServiceBuilder::new(gateway);
    // Signature V2 is checked in the front door (request_checks), against the same keys.
    sigv2::verify_with(Arc::new(auth.clone()));
    builder.set_auth(auth.clone());
    builder.set_access(authorize);
    // DomainHost is not Clone (s3s's MultiDomain is not): each user builds its own.
    let domains = if args.domain.is_empty() { None } else { Some(DomainHost::new(&args.domain)?) };
    builder.set_route(AdminRoute::new(iam, keys, principals(auth), &args.region, domains));
    if !args.domain.is_empty() {
        builder.set_host(DomainHost::new(&args.domain)?);
    }
    Ok((builder.build(), post))
}

/// Who signed a request (root, an STS session with its claims and policies, an IAM user or
/// service account), for the access step and the admin API: `Principals::resolve(access_key, x-amz-security-token)`.
pub fn principals(auth: &Authenticator) -> Arc<dyn Principals> {
    Arc::new(auth.clone())
}

/// The cluster key of STS sessions, when STS is on or a key file is configured (a gateway
/// that only verifies sessions minted by others).
fn session_key(args: &ServerArgs, drives: &[std::path::PathBuf]) -> Result<Option<Arc<ClusterKey>>, String> {
    if !args.sts_enabled() && args.sts_key_file.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(ClusterKey::load_or_create(&args.sts_key_file(drives))?)))
}

/// AssumeRoleWithWebIdentity, when some OIDC issuer is trusted.
fn security_token_service(args: &ServerArgs, key: Option<Arc<ClusterKey>>) -> Result<Option<Arc<Sts>>, String> {
    let Some(key) = key.filter(|_| args.sts_enabled()) else {
        return Ok(None);
    };
    // The provider of the flags and those of the file; Sts::new refuses several unless each
    // has a name.
    let mut providers: Vec<ProviderConfig> = args
        .oidc_issuer
        .iter()
        .map(|issuer| {
            Ok(ProviderConfig {
                name: args.oidc_name.clone(),
                issuer: issuer.clone(),
                mapping: ClaimMapping {
                    policy_claim: args.oidc_policy_claim.clone(),
                    role_policies: ClaimMapping::parse_role_policies(&args.oidc_role_policy)?,
                    client_ids: args.oidc_client_id.clone(),
                },
            })
        })
        .collect::<Result<_, String>>()?;
    let file = args.config.clone().unwrap_or_default();
    providers.extend(file.providers);
    let config =
        StsConfig { providers, roles: file.roles, max_duration: Duration::from_secs(args.sts_max_duration_secs) };
    let issuers: Vec<&str> = config.providers.iter().map(|p| p.issuer.as_str()).collect();
    let roles: Vec<&str> = config.roles.iter().map(|r| r.arn.as_str()).collect();
    tracing::info!(?issuers, ?roles, "STS AssumeRoleWithWebIdentity on");
    Ok(Some(Arc::new(Sts::new(config, key)?)))
}

/// The KMS that seals data keys, as configured.
async fn key_management(args: &ServerArgs, drives: &[std::path::PathBuf]) -> Result<Arc<dyn Kms>, String> {
    match args.kms {
        KmsKind::Local => {
            let path = args.local_key_file(drives);
            let kms = LocalKms::open(&path, vec![args.kms_default_key.clone()]).map_err(|e| e.to_string())?;
            tracing::info!(provider = "local", key_file = %path.display(), default_key = %args.kms_default_key, "KMS ready");
            Ok(Arc::new(kms))
        }
        KmsKind::Openbao => {
            let config = args.openbao()?;
            let address = config.address.clone();
            let kms = OpenBao::new(config).map_err(|e| e.to_string())?;
            // OpenBao being down at start-up is not fatal: encrypted requests fail with a KMS
            // error until it answers, and everything else works.
            match kms.health().await {
                Ok(()) => {
                    tracing::info!(provider = "openbao", %address, default_key = %args.kms_default_key, "KMS ready")
                }
                Err(e) => tracing::warn!(provider = "openbao", %address, error = %e, "KMS not reachable yet"),
            }
            Ok(Arc::new(kms))
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("parse {}: {e}", cert.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("parse {}: {e}", key.display()))?
        .ok_or_else(|| format!("no private key in {}", key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The accept loop: one task per connection, at most `max_connections` at once. At the cap it
/// waits for a connection to close before accepting; when accepting fails for lack of
/// descriptors or memory it pauses (10 ms doubling to 1 s) instead of retrying at once.
async fn serve(
    listener: TcpListener,
    state: Arc<FrontendState>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
) -> Result<(), String> {
    let connections = Arc::new(Connections::new(limits.clone()));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = AcceptBackoff::default();
    let mut cap_warnings = Throttle::new(WARNING_INTERVAL);
    loop {
        let slot = next_slot(&slots, &mut cap_warnings, limits.max_connections).await?;
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                let pause = backoff.failed(&e);
                drop(slot);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        backoff.succeeded();
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = Frontend::new(Arc::clone(&state), peer, ConnectionActivity::default(), tls.is_some());
        tokio::spawn(Arc::clone(&connections).serve(socket, peer, service, tls.clone(), slot));
    }
}

/// A connection slot, waiting for one when all are taken (and saying so, once in a while).
async fn next_slot(
    slots: &Arc<Semaphore>,
    warnings: &mut Throttle,
    max_connections: usize,
) -> Result<OwnedSemaphorePermit, String> {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return Ok(slot);
    }
    if let Some(held_back) = warnings.allow(Instant::now()) {
        tracing::warn!(max_connections, times_not_logged = held_back, "connection cap reached; new connections wait");
    }
    Arc::clone(slots).acquire_owned().await.map_err(|e| format!("connection slots closed: {e}"))
}

/// How connections are served: the HTTP/1.1 and HTTP/2 settings and the timeouts.
struct Connections {
    http: ConnBuilder<TokioExecutor>,
    limits: Limits,
}

impl Connections {
    fn new(limits: Limits) -> Self {
        let mut http = ConnBuilder::new(TokioExecutor::new());
        http.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
        http.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
        Self { http, limits }
    }

    /// Serves one connection (after the TLS handshake, if any), holding its slot until it
    /// closes.
    async fn serve(
        self: Arc<Self>,
        socket: TcpStream,
        peer: SocketAddr,
        service: Frontend,
        tls: Option<TlsAcceptor>,
        _slot: OwnedSemaphorePermit,
    ) {
        let socket = SendStallTimeout::new(socket, self.limits.body_idle_timeout);
        let Some(acceptor) = tls else {
            return self.serve_http(TokioIo::new(socket), peer, service).await;
        };
        match tokio::time::timeout(self.limits.header_timeout, acceptor.accept(socket)).await {
            Ok(Ok(stream)) => self.serve_http(TokioIo::new(stream), peer, service).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// Serves HTTP on `io` until the client closes, or until the connection has been idle too
    /// long: no request within the header timeout of opening, or none in progress for the idle
    /// timeout since.
    async fn serve_http<I>(&self, io: TokioIo<I>, peer: SocketAddr, service: Frontend)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = service.activity().clone();
        let connection = self.http.serve_connection(io, service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = activity.idle(self.limits.header_timeout, self.limits.idle_timeout) => {
                tracing::debug!(%peer, "closing an idle connection");
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(self.limits.header_timeout, connection).await {
                    Ok(result) => result,
                    Err(_) => return,
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
