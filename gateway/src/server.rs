//! Starting the all-in-one server: object store, S3 service, and the HTTP(S) listener.

use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::{S3Service, S3ServiceBuilder};
use storage::{ObjectStore, StoreConfig};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::access::SignedOnly;
use crate::config::{self, ServerArgs};
use crate::credentials::{self, Origin};
use crate::frontend::{Frontend, FrontendState};
use crate::identity::{DomainHost, RootAuth};
use crate::s3::Gateway;
use crate::telemetry::audit::AuditLog;

/// Builds everything from the arguments and serves until the process is stopped.
pub async fn run(args: ServerArgs) -> Result<(), String> {
    let drives = config::expand_drives(&args.drives)?;
    if drives.is_empty() {
        return Err("at least one drive directory is needed".into());
    }
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
    std::sync::LazyLock::force(&crate::telemetry::metrics::METRICS);
    std::sync::LazyLock::force(&storage::metrics::METRICS);
    let audit = match &args.audit_log {
        Some(path) => Some(AuditLog::open(path, args.audit_log_max_bytes)?),
        None => None,
    };
    let state = Arc::new(FrontendState {
        s3: build_service(&args, Arc::clone(&store), &root)?,
        store,
        audit,
        metrics_token: args.metrics_token.clone(),
        host_id: uuid::Uuid::new_v4().simple().to_string(),
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener =
        TcpListener::bind(args.address).await.map_err(|e| format!("cannot listen on {}: {e}", args.address))?;
    let address = listener.local_addr().map_err(|e| format!("listener address: {e}"))?;
    if origin == Origin::Generated {
        println!("Generated root credentials (stored as {} on every drive):", credentials::CREDENTIALS_FILE);
        println!("  access key: {}", root.access_key);
        println!("  secret key: {}", root.secret_key);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("sovereign-s3 listening on {scheme}://{address}");
    serve(listener, state, tls).await
}

fn build_service(
    args: &ServerArgs,
    store: Arc<ObjectStore>,
    root: &credentials::RootCredentials,
) -> Result<S3Service, String> {
    let gateway = Gateway::new(store, args.region.clone(), &root.access_key);
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(RootAuth::new(root));
    builder.set_access(SignedOnly::new(&args.region));
    if !args.domain.is_empty() {
        builder.set_host(DomainHost::new(&args.domain)?);
    }
    Ok(builder.build())
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

async fn serve(listener: TcpListener, state: Arc<FrontendState>, tls: Option<TlsAcceptor>) -> Result<(), String> {
    let connections = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = Frontend::new(Arc::clone(&state), peer);
        let (connections, tls) = (connections.clone(), tls.clone());
        tokio::spawn(async move {
            let result = match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => connections.serve_connection(TokioIo::new(stream), service).await,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => connections.serve_connection(TokioIo::new(socket), service).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
