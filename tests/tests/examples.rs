//! The onboarding examples of examples/ run as a new application would run them: against a
//! real gateway with STS on and a real OpenID provider (tests/oidc.rs), each exchanges a token
//! for session credentials and writes and reads an object with its SDK (aws-sdk-rust, boto3).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// Only the provider is used here; the token forging helpers serve sts.rs.
#[allow(dead_code)]
#[path = "../oidc.rs"]
mod oidc;

use oidc::OidcProvider;
use sovereign_e2e::*;

/// The client of the provider whose tokens carry `policy: readwrite`.
const CLIENT_ID: &str = "sovereign-s3";
/// The bucket the examples write to.
const APP_BUCKET: &str = "app";

/// A gateway trusting `provider`, with the examples' bucket.
async fn gateway(provider: &OidcProvider, key_file: &Path) -> Server {
    let key_file = key_file.to_string_lossy();
    let issuer = provider.issuer();
    let server = Server::start_with_args(
        1,
        &["--oidc-issuer", &issuer, "--oidc-client-id", CLIENT_ID, "--sts-key-file", &key_file],
    );
    create_bucket(&server.client(), APP_BUCKET).await;
    server
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Asserts that an example succeeded and wrote its object; returns what it printed.
async fn assert_ran(server: &Server, output: Output, greeting: &[u8]) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stdout}{stderr}", output.status);
    assert!(stdout.contains("assumed arn:aws:sts::000000000000:assumed-role/app/onboarding-example"), "{stdout}");
    assert_eq!(get_bytes(&server.client(), APP_BUCKET, "onboarding/hello.txt").await, greeting);
    stdout
}

#[tokio::test]
async fn the_aws_sdk_rust_example_onboards_with_a_token_file() {
    let provider = OidcProvider::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = gateway(&provider, &dir.path().join("sts-cluster.key")).await;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, provider.token(CLIENT_ID)).expect("write the token");
    let output = Command::new(server_binary().with_file_name("onboarding"))
        .env("SOVEREIGN_S3_ENDPOINT", server.url())
        .env("AWS_REGION", REGION)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("BUCKET", APP_BUCKET)
        .env_remove("AWS_ROLE_ARN")
        .output()
        .expect("run the Rust example (built by cargo build --workspace)");
    assert_ran(&server, output, b"hello from aws-sdk-rust\n").await;

    // A token of another client (not trusted) gets the STS error, and the example says so.
    std::fs::write(&token_file, provider.token("other-app")).expect("write the token");
    let output = Command::new(server_binary().with_file_name("onboarding"))
        .env("SOVEREIGN_S3_ENDPOINT", server.url())
        .env("AWS_REGION", REGION)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("BUCKET", APP_BUCKET)
        .output()
        .expect("run the Rust example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("InvalidIdentityToken"), "{stderr}");
}

#[tokio::test]
async fn the_boto3_example_onboards_with_a_client_credentials_grant() {
    let provider = OidcProvider::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = gateway(&provider, &dir.path().join("sts-cluster.key")).await;
    let output = Command::new("python3")
        .arg(examples_dir().join("python/onboarding.py"))
        .env("SOVEREIGN_S3_ENDPOINT", server.url())
        .env("AWS_REGION", REGION)
        .env("KEYCLOAK_TOKEN_URL", format!("{}/protocol/openid-connect/token", provider.issuer()))
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", format!("{CLIENT_ID}-secret"))
        .env("BUCKET", APP_BUCKET)
        // boto3 must not find other credentials: the session's are the only ones it gets.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .output()
        .expect("run python3");
    assert_ran(&server, output, b"hello from boto3\n").await;
}
