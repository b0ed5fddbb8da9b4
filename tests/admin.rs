//! Helpers of the IAM and admin API tests: the `sovereign-s3 admin` command line as the admin
//! client (so every test drives it end to end), SigV4-signed curl for raw admin requests, and
//! aws-sdk-s3 clients with an identity's keys.
// Each test file uses a part of the helpers.
#![allow(dead_code)]

use std::process::Command;

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};

use sovereign_e2e::{curl, server_binary, HttpReply, Server, REGION, ROOT_PASSWORD, ROOT_USER};

/// The path prefix of the admin API.
pub const PREFIX: &str = "/sovereign-admin/v1";

/// Signing keys of one identity.
#[derive(Debug, Clone)]
pub struct Keys {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl Keys {
    pub fn new(access_key: &str, secret_key: &str) -> Keys {
        Keys { access_key: access_key.to_owned(), secret_key: secret_key.to_owned(), session_token: None }
    }
}

/// The root key pair of test servers.
pub fn root() -> Keys {
    Keys::new(ROOT_USER, ROOT_PASSWORD)
}

/// Runs `sovereign-s3 admin <args>` as `keys`: the JSON printed (Null when nothing), or the
/// HTTP status and JSON error body of a refusal.
pub fn admin(server: &Server, keys: &Keys, args: &[&str]) -> Result<Value, (u16, Value)> {
    let mut command = Command::new(server_binary());
    command
        .arg("admin")
        .args(["--endpoint-url", server.url()])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &keys.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_key)
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    if let Some(token) = &keys.session_token {
        command.env("AWS_SESSION_TOKEN", token);
    }
    let output = command.output().expect("run sovereign-s3 admin");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        return Ok(if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).expect("JSON output")
        });
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rest = stderr.split("HTTP ").nth(1).unwrap_or_else(|| panic!("admin {args:?} failed: {stderr}"));
    let (status, body) = rest.split_once(": ").unwrap_or_else(|| panic!("unexpected error output {stderr}"));
    let body = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("admin {args:?}: {e}: {stderr}"));
    Err((status.trim().parse().expect("status"), body))
}

/// Like [`admin`], panicking on a refusal.
pub fn admin_ok(server: &Server, keys: &Keys, args: &[&str]) -> Value {
    admin(server, keys, args).unwrap_or_else(|(status, body)| panic!("admin {args:?}: HTTP {status} {body}"))
}

/// Asserts that `admin <args>` is refused with `status` and `code`.
pub fn assert_refused(server: &Server, keys: &Keys, args: &[&str], status: u16, code: &str) {
    match admin(server, keys, args) {
        Ok(value) => panic!("admin {args:?} as {} succeeded: {value}", keys.access_key),
        Err((got, body)) => {
            assert_eq!((got, body["code"].as_str()), (status, Some(code)), "admin {args:?}: {body}");
        }
    }
}

/// Creates user `name` with `policies` (as root) and returns its keys.
pub fn create_user(server: &Server, name: &str, policies: &[&str]) -> Keys {
    let mut args = vec!["user", "create", name];
    for policy in policies {
        args.extend(["--policy", policy]);
    }
    let created = admin_ok(server, &root(), &args);
    Keys::new(name, created["secretKey"].as_str().expect("secretKey"))
}

/// Creates a named policy from `document` (as root).
pub fn create_policy(server: &Server, name: &str, document: &Value) {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), document.to_string()).expect("write policy");
    admin_ok(server, &root(), &["policy", "create", name, &file.path().to_string_lossy()]);
}

/// Writes `document` to a temporary file for `--policy-file`.
pub fn policy_file(document: &Value) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), document.to_string()).expect("write policy");
    file
}

/// An aws-sdk-s3 client signing with `keys`.
pub fn client_for(server: &Server, keys: &Keys) -> Client {
    let credentials = Credentials::new(&keys.access_key, &keys.secret_key, keys.session_token.clone(), None, "e2e-iam");
    Client::from_conf(server.sdk_config().credentials_provider(credentials).build())
}

/// A raw admin request signed as `keys` (curl, with the body's SHA-256 signed, as the admin API
/// requires): `path` is below the prefix.
pub fn admin_http(server: &Server, keys: &Keys, method: &str, path: &str, body: Option<&str>) -> HttpReply {
    admin_http_with_hash(server, keys, method, path, body, &hex::encode(Sha256::digest(body.unwrap_or_default())))
}

/// [`admin_http`] with `payload_hash` as the signed x-amz-content-sha256.
pub fn admin_http_with_hash(
    server: &Server,
    keys: &Keys,
    method: &str,
    path: &str,
    body: Option<&str>,
    payload_hash: &str,
) -> HttpReply {
    let user = format!("{}:{}", keys.access_key, keys.secret_key);
    let sigv4 = format!("aws:amz:{REGION}:s3");
    let url = format!("{}{PREFIX}{path}", server.url());
    let hash = format!("x-amz-content-sha256: {payload_hash}");
    let mut args = vec!["--aws-sigv4", &sigv4, "--user", &user, "-H", &hash, "-X", method];
    if let Some(body) = body {
        args.extend(["-H", "content-type: application/json", "--data-binary", body]);
    }
    args.push(&url);
    curl(&args)
}
