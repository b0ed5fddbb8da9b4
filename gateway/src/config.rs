//! Command line and environment configuration of the `sovereign-s3` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sovereign_kms_client::openbao::{Auth, OpenBaoConfig};
use zeroize::Zeroizing;

use crate::telemetry::logging::LogFormat;

/// sovereign-s3: an S3-compatible object store on erasure-coded drives.
#[derive(Debug, Parser)]
#[command(
    name = "sovereign-s3",
    version,
    about = "sovereign-s3: an S3-compatible object store on erasure-coded drives."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of the binary.
#[derive(Debug, Subcommand)]
// Parsed once at start-up: the size of the server's settings does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Runs the all-in-one server: S3 gateway and storage on local drives.
    Server(ServerArgs),
    /// Administers users, groups, service accounts and policies through the admin API, signed
    /// with the aws cli's credentials (environment or profile).
    Admin(crate::admin::cli::AdminArgs),
}

/// Largest inline threshold: every record of an inline object holds its share of the bytes, and
/// RocksDB keeps records whole in memory (ADR 0005).
pub const MAX_INLINE_THRESHOLD_BYTES: u64 = 1024 * 1024;

/// Settings of `sovereign-s3 server`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Drive directories: one means a single drive without erasure coding, several an erasure
    /// set. A pattern such as `./data/d{1...4}` expands to four directories.
    #[arg(required = true, env = "SOVEREIGN_S3_DRIVES", value_delimiter = ' ')]
    pub drives: Vec<String>,

    /// Address to listen on.
    #[arg(long, env = "SOVEREIGN_S3_ADDRESS", default_value = "127.0.0.1:9000")]
    pub address: SocketAddr,

    /// Parity shards per erasure set (default: 0 for 1 drive, 1 for 2-3, 2 for 4-7, 4 for 8-16).
    #[arg(long, env = "SOVEREIGN_S3_PARITY")]
    pub parity: Option<usize>,

    /// Region reported to clients; requests signed for another region are refused.
    #[arg(long, env = "SOVEREIGN_S3_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Base domain for virtual-host style requests (`bucket.DOMAIN`); path style always works.
    #[arg(long, env = "SOVEREIGN_S3_DOMAIN", value_delimiter = ',')]
    pub domain: Vec<String>,

    /// PEM certificate chain: serve HTTPS instead of HTTP (needs --tls-key).
    #[arg(long, env = "SOVEREIGN_S3_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "SOVEREIGN_S3_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Root access key; generated and stored on every drive when absent.
    #[arg(long, env = "SOVEREIGN_S3_ROOT_USER", hide_env_values = true)]
    pub root_user: Option<String>,

    /// Root secret key; generated and stored on every drive when absent.
    #[arg(long, env = "SOVEREIGN_S3_ROOT_PASSWORD", hide_env_values = true)]
    pub root_password: Option<String>,

    /// Accept requests signed with Signature Version 2 (legacy clients, the aws cli v1's
    /// presigned URLs), under V4's clock-skew window and expiry cap; `false` answers them
    /// InvalidRequest, as AWS regions without V2 do.
    #[arg(long, env = "SOVEREIGN_S3_SIGV2", default_value_t = true, action = clap::ArgAction::Set)]
    pub sigv2: bool,

    /// Sync every write to stable storage before acknowledging it (`false` trades crash
    /// safety for speed).
    #[arg(long, env = "SOVEREIGN_S3_FSYNC", default_value_t = true, action = clap::ArgAction::Set)]
    pub fsync: bool,

    /// Append one JSON line per request to this file (rotated by size).
    #[arg(long, env = "SOVEREIGN_S3_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// Rotate the audit log when it would exceed this many bytes.
    #[arg(long, env = "SOVEREIGN_S3_AUDIT_LOG_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub audit_log_max_bytes: u64,

    /// Require `Authorization: Bearer TOKEN` on /metrics.
    #[arg(long, env = "SOVEREIGN_S3_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Export traces over OTLP/HTTP to this collector base URL (e.g. `http://127.0.0.1:4318`).
    #[arg(long, env = "SOVEREIGN_S3_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Log line format on stderr.
    #[arg(long, env = "SOVEREIGN_S3_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Objects up to this many bytes (at most 1 MiB) are stored inside their metadata records.
    #[arg(
        long,
        env = "SOVEREIGN_S3_INLINE_THRESHOLD",
        default_value_t = 128 * 1024,
        value_parser = clap::value_parser!(u64).range(0..=MAX_INLINE_THRESHOLD_BYTES)
    )]
    pub inline_threshold: u64,

    /// Client connections served at once; further ones wait in the listen backlog until one
    /// closes (default: the open-file limit less a reserve for the drives, at most 4096).
    #[arg(long, env = "SOVEREIGN_S3_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT_SETTING))]
    pub max_connections: Option<u64>,

    /// S3 requests served at once; further ones are answered `503 SlowDown` at once.
    #[arg(
        long,
        env = "SOVEREIGN_S3_MAX_REQUESTS_IN_FLIGHT",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT_SETTING)
    )]
    pub max_requests_in_flight: u64,

    /// Seconds a client has for the TLS handshake and a request's headers (on HTTP/1.1 also
    /// counted from the end of the previous response, so an idle kept-alive connection closes
    /// after it).
    #[arg(
        long = "header-timeout",
        env = "SOVEREIGN_S3_HEADER_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub header_timeout_secs: u64,

    /// Seconds a connection may stay open with no request in progress after its first request
    /// (HTTP/2 connections; HTTP/1.1 ones are closed sooner by the header timeout).
    #[arg(
        long = "idle-timeout",
        env = "SOVEREIGN_S3_IDLE_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub idle_timeout_secs: u64,

    /// Seconds a request body may deliver no bytes while the server waits for them (the
    /// request then fails with `400 RequestTimeout`), and a client may take no bytes of a
    /// response while the server has some to send (the connection is then closed).
    #[arg(
        long = "body-timeout",
        env = "SOVEREIGN_S3_BODY_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub body_timeout_secs: u64,

    /// Key management for server-side encryption: `local` (a master key file) or `openbao`
    /// (OpenBao's transit engine).
    #[arg(long, env = "SOVEREIGN_S3_KMS", value_enum, default_value = "local")]
    pub kms: KmsKind,

    /// The KMS key that seals data keys of SSE-S3 objects and of SSE-KMS objects written
    /// without a key id (an OpenBao transit key name).
    #[arg(long, env = "SOVEREIGN_S3_KMS_DEFAULT_KEY", default_value = "sovereign-s3")]
    pub kms_default_key: String,

    /// Master key file of the local KMS, created (mode 0600) on first start (default:
    /// `kms-master.key` beside the first drive directory).
    #[arg(long, env = "SOVEREIGN_S3_KMS_LOCAL_KEY_FILE")]
    pub kms_local_key_file: Option<PathBuf>,

    /// Milliseconds allowed for one KMS request; failed requests are retried twice.
    #[arg(
        long = "kms-timeout-ms",
        env = "SOVEREIGN_S3_KMS_TIMEOUT_MS",
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    pub kms_timeout_ms: u64,

    /// Unsealed data keys kept in memory so that hot objects need no KMS call per read; 0
    /// turns the cache off (every read asks the KMS).
    #[arg(long, env = "SOVEREIGN_S3_KMS_CACHE_ENTRIES", default_value_t = 1024)]
    pub kms_cache_entries: usize,

    /// Seconds a cached data key is kept (its memory is zeroed when it leaves the cache).
    #[arg(
        long = "kms-cache-ttl-secs",
        env = "SOVEREIGN_S3_KMS_CACHE_TTL_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub kms_cache_ttl_secs: u64,

    /// OpenBao address for `--kms openbao` (`https://host:8200`; `http://` for tests).
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_ADDR")]
    pub openbao_addr: Option<String>,

    /// OpenBao token (or use AppRole or Kubernetes login).
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_TOKEN", hide_env_values = true)]
    pub openbao_token: Option<String>,

    /// AppRole role id.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_ROLE_ID", requires = "openbao_secret_id")]
    pub openbao_role_id: Option<String>,

    /// AppRole secret id.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_SECRET_ID", hide_env_values = true, requires = "openbao_role_id")]
    pub openbao_secret_id: Option<String>,

    /// Mount path of OpenBao's AppRole auth method.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_APPROLE_MOUNT", default_value = "approle")]
    pub openbao_approle_mount: String,

    /// OpenBao role for Kubernetes login with the pod's service-account token.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_K8S_ROLE")]
    pub openbao_k8s_role: Option<String>,

    /// Service-account token file for Kubernetes login.
    #[arg(
        long,
        env = "SOVEREIGN_S3_OPENBAO_K8S_TOKEN_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub openbao_k8s_token_file: PathBuf,

    /// Mount path of OpenBao's Kubernetes auth method.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_K8S_MOUNT", default_value = "kubernetes")]
    pub openbao_k8s_mount: String,

    /// Mount path of OpenBao's transit secrets engine.
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_TRANSIT_MOUNT", default_value = "transit")]
    pub openbao_transit_mount: String,

    /// PEM file of the CA that signed OpenBao's certificate (default: the system's roots).
    #[arg(long, env = "SOVEREIGN_S3_OPENBAO_CA_FILE")]
    pub openbao_ca_file: Option<PathBuf>,

    /// A TOML config file: several OpenID providers, each with its own clients and claim
    /// mapping, and roles with trust policies (see docs/security.md).
    #[arg(long, env = "SOVEREIGN_S3_CONFIG", value_parser = crate::config_file::ConfigFile::load)]
    pub config: Option<crate::config_file::ConfigFile>,

    /// Trusted OpenID Connect issuers (exact `iss`, e.g.
    /// `https://keycloak.example/realms/sovereign`): turns on STS AssumeRoleWithWebIdentity.
    #[arg(long, env = "SOVEREIGN_S3_OIDC_ISSUER", value_delimiter = ',')]
    pub oidc_issuer: Vec<String>,

    /// A name for the `--oidc-issuer` provider, which namespaces its identities (`<name>:<sub>`):
    /// needed when the config file trusts more providers.
    #[arg(long, env = "SOVEREIGN_S3_OIDC_NAME")]
    pub oidc_name: Option<String>,

    /// Client ids a web identity token must be issued for (its `aud` or `azp`).
    #[arg(long, env = "SOVEREIGN_S3_OIDC_CLIENT_ID", value_delimiter = ',')]
    pub oidc_client_id: Vec<String>,

    /// The token claim that names policies (a string, comma-separated list or array).
    #[arg(long, env = "SOVEREIGN_S3_OIDC_POLICY_CLAIM", default_value = "policy")]
    pub oidc_policy_claim: String,

    /// `ROLE=POLICY`: a Keycloak realm role, client role (of the client ids) or group that
    /// grants a policy; repeat the flag (or separate with commas) for several.
    #[arg(long, env = "SOVEREIGN_S3_OIDC_ROLE_POLICY", value_delimiter = ',')]
    pub oidc_role_policy: Vec<String>,

    /// The cluster key that seals STS session credentials (64 hex characters), created on
    /// first start if missing; every gateway of a cluster must have the same (default:
    /// `sts-cluster.key` beside the first drive directory).
    #[arg(long, env = "SOVEREIGN_S3_STS_KEY_FILE")]
    pub sts_key_file: Option<PathBuf>,

    /// Longest STS session granted, in seconds (AWS: 900 to 43200).
    #[arg(
        long = "sts-max-duration-secs",
        env = "SOVEREIGN_S3_STS_MAX_DURATION_SECS",
        default_value_t = 43_200,
        value_parser = clap::value_parser!(u64).range(900..=43_200)
    )]
    pub sts_max_duration_secs: u64,
}

/// Where data keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KmsKind {
    /// A master key file on this machine.
    Local,
    /// OpenBao's transit secrets engine.
    Openbao,
}

/// File name of the local KMS master key when no path is configured.
pub const LOCAL_KEY_FILE_NAME: &str = "kms-master.key";

impl ServerArgs {
    /// The OpenBao client settings, checked: an address and exactly one way to log in.
    pub fn openbao(&self) -> Result<OpenBaoConfig, String> {
        let address =
            self.openbao_addr.as_deref().ok_or("--kms openbao needs --openbao-addr (SOVEREIGN_S3_OPENBAO_ADDR)")?;
        let mut ways = Vec::new();
        if let Some(token) = &self.openbao_token {
            ways.push(Auth::Token(Zeroizing::new(token.clone())));
        }
        if let (Some(role_id), Some(secret_id)) = (&self.openbao_role_id, &self.openbao_secret_id) {
            ways.push(Auth::AppRole {
                mount: self.openbao_approle_mount.clone(),
                role_id: role_id.clone(),
                secret_id: Zeroizing::new(secret_id.clone()),
            });
        }
        if let Some(role) = &self.openbao_k8s_role {
            ways.push(Auth::Kubernetes {
                mount: self.openbao_k8s_mount.clone(),
                role: role.clone(),
                jwt_file: self.openbao_k8s_token_file.clone(),
            });
        }
        if ways.len() != 1 {
            return Err("--kms openbao needs exactly one of --openbao-token, --openbao-role-id with --openbao-secret-id, or --openbao-k8s-role".into());
        }
        let mut config = OpenBaoConfig::new(address, ways.remove(0));
        config.transit_mount = self.openbao_transit_mount.clone();
        config.ca_file = self.openbao_ca_file.clone();
        config.request_timeout = std::time::Duration::from_millis(self.kms_timeout_ms);
        Ok(config)
    }

    /// The local KMS master key file: configured, or beside the first drive directory (so that
    /// it is not inside a drive, whose contents are ciphertext only).
    pub fn local_key_file(&self, drives: &[PathBuf]) -> PathBuf {
        match &self.kms_local_key_file {
            Some(path) => path.clone(),
            None => beside_drives(drives, LOCAL_KEY_FILE_NAME),
        }
    }
}

/// A file named `name` in the directory that holds the first drive directory.
fn beside_drives(drives: &[PathBuf], name: &str) -> PathBuf {
    let first = drives.first().map(PathBuf::as_path).unwrap_or(std::path::Path::new("."));
    let parent = std::path::absolute(first).ok().and_then(|p| p.parent().map(PathBuf::from));
    parent.unwrap_or_else(|| PathBuf::from(".")).join(name)
}

/// File name of the STS cluster key when no path is configured.
pub const STS_KEY_FILE_NAME: &str = "sts-cluster.key";

impl ServerArgs {
    /// Whether STS (and so session credentials) is on: some OIDC issuer is trusted, by flag or
    /// in the config file.
    pub fn sts_enabled(&self) -> bool {
        !self.oidc_issuer.is_empty() || self.config.as_ref().is_some_and(|c| !c.providers.is_empty())
    }

    /// The STS cluster key file: configured, or beside the first drive directory.
    pub fn sts_key_file(&self, drives: &[PathBuf]) -> PathBuf {
        match &self.sts_key_file {
            Some(path) => path.clone(),
            None => beside_drives(drives, STS_KEY_FILE_NAME),
        }
    }
}

/// The largest value accepted for a connection or request cap.
const MAX_COUNT_SETTING: u64 = 1_000_000;
/// The longest timeout accepted: an hour.
const MAX_TIMEOUT_SECS: u64 = 3600;

/// Expands drive arguments: `dir{1...4}` becomes `dir1` to `dir4`; other arguments stay.
pub fn expand_drives(args: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for arg in args {
        match expand_pattern(arg)? {
            Some(expanded) => out.extend(expanded.into_iter().map(PathBuf::from)),
            None => out.push(PathBuf::from(arg)),
        }
    }
    let mut unique = out.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != out.len() {
        return Err("the same drive directory is given twice".into());
    }
    Ok(out)
}

fn expand_pattern(arg: &str) -> Result<Option<Vec<String>>, String> {
    let (Some(open), Some(close)) = (arg.find('{'), arg.find('}')) else {
        return Ok(None);
    };
    let Some((low, high)) = arg[open + 1..close].split_once("...") else {
        return Ok(None);
    };
    let bad = |_| format!("invalid drive pattern {arg:?}: expected {{N...M}}");
    let (low, high): (u32, u32) = (low.parse().map_err(bad)?, high.parse().map_err(bad)?);
    if low > high {
        return Err(format!("invalid drive pattern {arg:?}: {low} > {high}"));
    }
    let (head, tail) = (&arg[..open], &arg[close + 1..]);
    let mut expanded = Vec::new();
    for n in low..=high {
        let rest = format!("{n}{tail}");
        match expand_pattern(&rest)? {
            Some(inner) => expanded.extend(inner.into_iter().map(|r| format!("{head}{r}"))),
            None => expanded.push(format!("{head}{rest}")),
        }
    }
    Ok(Some(expanded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str]) -> Result<Vec<String>, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        expand_drives(&args).map(|v| v.into_iter().map(|p| p.display().to_string()).collect())
    }

    #[test]
    fn patterns_expand_in_order() {
        assert_eq!(expand(&["./data/d{1...4}"]).unwrap(), ["./data/d1", "./data/d2", "./data/d3", "./data/d4"]);
        assert_eq!(expand(&["/a", "/b"]).unwrap(), ["/a", "/b"]);
        assert_eq!(expand(&["/n{1...2}/d{1...2}"]).unwrap(), ["/n1/d1", "/n1/d2", "/n2/d1", "/n2/d2"]);
    }

    #[test]
    fn bad_patterns_and_duplicates_are_rejected() {
        assert!(expand(&["/d{4...1}"]).is_err());
        assert!(expand(&["/d{a...b}"]).is_err());
        assert!(expand(&["/d1", "/d{1...2}"]).is_err());
    }
}
