//! Onboarding an application with aws-sdk-rust: the Keycloak access token in
//! `AWS_WEB_IDENTITY_TOKEN_FILE` (where Kubernetes projects a service account token, or a
//! sidecar writes one) is exchanged at the gateway's STS for temporary credentials
//! (`AssumeRoleWithWebIdentity`, unsigned: the token is the proof), which aws-sdk-s3 then uses.
//!
//! Settings come from the environment; see examples/README.md.

use std::error::Error;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;

/// An environment variable, or `default`.
fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let endpoint = setting("SOVEREIGN_S3_ENDPOINT", "http://127.0.0.1:9000");
    let region = Region::new(setting("AWS_REGION", "us-east-1"));
    let role_arn = setting("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/app");
    let bucket = setting("BUCKET", "app");
    let token_file = std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE")
        .map_err(|_| "set AWS_WEB_IDENTITY_TOKEN_FILE to the file holding the access token")?;
    let token = std::fs::read_to_string(&token_file).map_err(|e| format!("{token_file}: {e}"))?;

    // One HTTPS-capable client for both SDKs (rustls with ring, the system's CA roots).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();

    // 1. STS: the token becomes temporary credentials.
    let sts_config = aws_sdk_sts::Config::builder()
        .behavior_version_latest()
        .region(region.clone())
        .endpoint_url(&endpoint)
        .http_client(http.clone())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(sts_config);
    let session = sts
        .assume_role_with_web_identity()
        .role_arn(&role_arn)
        .role_session_name("onboarding-example")
        .web_identity_token(token.trim())
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| format!("AssumeRoleWithWebIdentity: {}", aws_sdk_sts::error::DisplayErrorContext(&e)))?;
    let granted = session.credentials().ok_or("STS answered without credentials")?;
    let expires = SystemTime::try_from(*granted.expiration()).map_err(|e| format!("Expiration: {e}"))?;
    let credentials = Credentials::new(
        granted.access_key_id(),
        granted.secret_access_key(),
        Some(granted.session_token().to_owned()),
        Some(expires),
        "sovereign-s3-sts",
    );

    // 2. S3 with those credentials (path-style addressing).
    let s3_config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(region)
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(http)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_config);
    let body = b"hello from aws-sdk-rust\n";
    let key = "onboarding/hello.txt";
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .map_err(|e| format!("PutObject: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("GetObject: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    let read = got.body.collect().await.map_err(|e| format!("reading the object: {e}"))?.into_bytes();
    if read.as_ref() != body {
        return Err(format!("read back {} bytes that differ from what was written", read.len()).into());
    }
    let arn = session.assumed_role_user().map(|user| user.arn()).unwrap_or("?");
    println!("assumed {arn} until {}", granted.expiration());
    println!("wrote and read s3://{bucket}/{key}, ETag {}", put.e_tag().unwrap_or("?"));
    Ok(())
}
