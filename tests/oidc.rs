//! A real OpenID provider for the STS tests: the npm `oidc-provider` (installed by
//! scripts/test.sh under `~/.cache/sovereign-s3/oidc`) run by tests/oidc/provider.cjs with
//! Keycloak's URL layout, on a free 127.0.0.1 port, with a signing key the test holds so that it
//! can also forge tokens (tests/oidc/forge.cjs). Stopped on drop.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use sovereign_e2e::{curl, wait_until};

/// How long the provider may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The realm path, as Keycloak names it.
const REALM_PATH: &str = "/realms/sovereign";

/// The node_modules folder holding oidc-provider, koa, koa-mount (and jose).
fn node_modules() -> PathBuf {
    let dir = match std::env::var_os("SOVEREIGN_OIDC_NODE_MODULES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sovereign-s3/oidc/node_modules"),
    };
    assert!(
        dir.join("oidc-provider").exists(),
        "{} has no oidc-provider: run scripts/test.sh (it installs it with npm) or set SOVEREIGN_OIDC_NODE_MODULES",
        dir.display()
    );
    dir
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc").join(name)
}

/// Runs tests/oidc/forge.cjs and returns its stdout.
fn forge(args: &[&str]) -> String {
    let output = Command::new("node")
        .arg(script("forge.cjs"))
        .args(args)
        .env("OIDC_NODE_MODULES", node_modules())
        .output()
        .expect("run node (apt-get install nodejs)");
    assert!(output.status.success(), "forge.cjs {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes a new private RS256 JWKS with a random `kid` to `path`.
pub fn new_signing_key(path: &Path) {
    forge(&["keygen", &path.to_string_lossy()]);
}

/// An RS256 JWT of `claims` signed with the key in `key_file`, naming `kid` (default: the key's).
pub fn sign(key_file: &Path, claims: &serde_json::Value, kid: Option<&str>) -> String {
    let claims = claims.to_string();
    let mut args = vec!["sign", key_file.to_str().expect("UTF-8 path"), claims.as_str()];
    args.extend(kid);
    forge(&args)
}

/// The `kid` of the key in `key_file`.
pub fn key_id(key_file: &Path) -> String {
    let jwks: serde_json::Value = serde_json::from_slice(&fs::read(key_file).expect("read key")).expect("JWKS");
    jwks["keys"][0]["kid"].as_str().expect("kid").to_owned()
}

/// A running provider, killed on drop.
pub struct OidcProvider {
    dir: TempDir,
    port: u16,
    process: Option<Child>,
}

impl OidcProvider {
    /// Starts the provider with a new signing key.
    pub fn start() -> OidcProvider {
        let dir = tempfile::Builder::new().prefix("sovereign-e2e-oidc-").tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut provider = OidcProvider { dir, port, process: None };
        new_signing_key(&provider.key_file());
        provider.spawn();
        provider
    }

    /// The private JWKS the provider signs with.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("signing-key.json")
    }

    /// `http://127.0.0.1:PORT/realms/sovereign`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}{REALM_PATH}", self.port)
    }

    /// Restarts the provider on the same port with a new signing key (key rotation).
    pub fn rotate_key(&mut self) {
        self.stop();
        new_signing_key(&self.key_file());
        self.spawn();
    }

    /// A client_credentials access token for `client_id` (secret `<client_id>-secret`).
    pub fn token(&self, client_id: &str) -> String {
        let url = format!("{}/protocol/openid-connect/token", self.issuer());
        let secret = format!("client_secret={client_id}-secret");
        let id = format!("client_id={client_id}");
        let reply = curl(&["-d", "grant_type=client_credentials", "-d", &id, "-d", &secret, &url]);
        assert_eq!(reply.status, 200, "token request: {}", reply.text());
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("token JSON");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.dir.path().join("provider.log")).expect("provider log");
        let child = Command::new("node")
            .arg(script("provider.cjs"))
            .arg(self.port.to_string())
            .env("OIDC_NODE_MODULES", node_modules())
            .env("OIDC_JWKS_FILE", self.key_file())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start node (apt-get install nodejs)");
        self.process = Some(child);
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer());
        wait_until("the OIDC provider answers", READY_TIMEOUT, || {
            let output = Command::new("curl").args(["--silent", "--fail", &discovery]).output();
            output.is_ok_and(|o| o.status.success())
        });
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
