//! STS AssumeRoleWithWebIdentity against a real OpenID provider with Keycloak's layout
//! (tests/oidc.rs): tokens become session credentials that aws-sdk-s3 and the aws cli use;
//! forged, foreign, expired and unsigned tokens are refused with AWS STS's errors; the
//! provider's key rotation is followed; sessions are accepted by every gateway holding the
//! cluster key and by no other.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::Client;
use serde_json::json;
#[path = "../oidc.rs"]
mod oidc;

use oidc::OidcProvider;
use sovereign_e2e::*;

/// The client id the gateway trusts.
const CLIENT_ID: &str = "sovereign-s3";
/// A role ARN as clients send it (the gateway records it in the assumed-role ARN).
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/s3-writer";
/// Debian's aws cli (v2).
const AWS_CLI: &str = "/usr/bin/aws";

/// Session credentials as STS returned them.
#[derive(Debug, Clone)]
struct SessionCreds {
    access_key: String,
    secret_key: String,
    token: String,
    expiration: String,
}

/// The text of the first `<name>` element of `xml`.
fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// The gateway flags that trust `provider` with `key_file` as cluster key.
fn sts_args(provider: &OidcProvider, key_file: &Path) -> Vec<String> {
    [
        "--oidc-issuer",
        &provider.issuer(),
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-role-policy",
        "s3-writers=readwrite",
        "--sts-key-file",
        &key_file.to_string_lossy(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn start_gateway(args: &[String]) -> Server {
    Server::start_with_args(1, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// POSTs an STS form (unsigned, as AWS STS takes AssumeRoleWithWebIdentity).
fn sts_post(server: &Server, params: &[(&str, &str)]) -> HttpReply {
    let mut args = Vec::new();
    for (name, value) in params {
        args.push("--data-urlencode".to_owned());
        args.push(format!("{name}={value}"));
    }
    args.push(format!("{}/", server.url()));
    curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn assume(server: &Server, token: &str, duration: Option<&str>) -> HttpReply {
    let mut params = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "e2e-session"),
        ("WebIdentityToken", token),
    ];
    params.extend(duration.map(|d| ("DurationSeconds", d)));
    sts_post(server, &params)
}

/// The credentials of a successful STS reply.
fn creds_of(reply: &HttpReply) -> SessionCreds {
    assert_eq!(reply.status, 200, "AssumeRoleWithWebIdentity: {}", reply.text());
    let xml = reply.text();
    let field = |name| element(&xml, name).unwrap_or_else(|| panic!("no {name} in {xml}"));
    SessionCreds {
        access_key: field("AccessKeyId"),
        secret_key: field("SecretAccessKey"),
        token: field("SessionToken"),
        expiration: field("Expiration"),
    }
}

fn assume_ok(server: &Server, token: &str) -> SessionCreds {
    creds_of(&assume(server, token, None))
}

/// Asserts an STS error reply: status, `ErrorResponse/Error/Code`.
fn assert_sts_error(reply: &HttpReply, status: u16, code: &str) {
    let xml = reply.text();
    assert!(
        reply.status == status && xml.starts_with("<ErrorResponse") && element(&xml, "Code").as_deref() == Some(code),
        "expected HTTP {status} {code}, got HTTP {}: {xml}",
        reply.status
    );
    assert!(element(&xml, "Type").is_some() && element(&xml, "RequestId").is_some(), "{xml}");
}

fn session_client(server: &Server, creds: &SessionCreds, with_token: bool) -> Client {
    let token = with_token.then(|| creds.token.clone());
    let provider = Credentials::new(&creds.access_key, &creds.secret_key, token, None, "sts");
    Client::from_conf(server.sdk_config().credentials_provider(provider).build())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn scratch_key_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sts-cluster.key");
    (dir, path)
}

#[tokio::test]
async fn a_keycloak_token_becomes_s3_credentials() {
    let provider = OidcProvider::start();
    let (_keys, key_file) = scratch_key_file();
    let server = start_gateway(&sts_args(&provider, &key_file));
    create_bucket(&server.client(), BUCKET).await;

    let token = provider.token(CLIENT_ID);
    let reply = assume(&server, &token, Some("3600"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let xml = reply.text();
    assert!(xml.starts_with("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"));
    assert_eq!(element(&xml, "SubjectFromWebIdentityToken").as_deref(), Some(CLIENT_ID));
    assert_eq!(element(&xml, "Provider"), Some(provider.issuer()));
    assert_eq!(element(&xml, "Audience").as_deref(), Some(CLIENT_ID), "matched through azp");
    let arn = element(&xml, "Arn").expect("AssumedRoleUser/Arn");
    assert_eq!(arn, "arn:aws:sts::000000000000:assumed-role/s3-writer/e2e-session");
    assert!(element(&xml, "RequestId").is_some());
    let creds = assume_ok(&server, &token);
    assert!(creds.access_key.starts_with("STS"), "{creds:?}");

    // The session lasts no longer than the token (the provider's tokens live 600 s).
    let expiration = DateTime::from_str(&creds.expiration, DateTimeFormat::DateTime).expect("Expiration is RFC 3339");
    assert!(expiration.secs() as u64 <= now_secs() + 600, "{creds:?}");

    // The credentials work with aws-sdk-s3, signed headers and presigned URLs.
    let client = session_client(&server, &creds, true);
    client.put_object().bucket(BUCKET).key("k").body(ByteStream::from_static(b"hello")).send().await.expect("PUT");
    assert_eq!(get_bytes(&client, BUCKET, "k").await, b"hello");
    let presigned = client
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("presigning config"))
        .await
        .expect("presign");
    assert!(presigned.uri().contains("X-Amz-Security-Token="));
    let reply = curl(&[presigned.uri()]);
    assert_eq!((reply.status, reply.body.as_slice()), (200, b"hello".as_slice()), "{}", reply.text());

    // Without its token, or with another session's token, the access key is refused.
    let no_token = session_client(&server, &creds, false);
    assert_s3_error(no_token.get_object().bucket(BUCKET).key("k").send().await, 400, &["InvalidToken"]);
    let other = assume_ok(&server, &token);
    let swapped = SessionCreds { token: other.token, ..creds.clone() };
    let client = session_client(&server, &swapped, true);
    assert_s3_error(client.get_object().bucket(BUCKET).key("k").send().await, 400, &["InvalidToken"]);
    // A secret derived for one key id does not sign for another.
    let forged = SessionCreds { secret_key: other.secret_key, ..creds.clone() };
    let client = session_client(&server, &forged, true);
    assert_s3_error(client.get_object().bucket(BUCKET).key("k").send().await, 403, &["SignatureDoesNotMatch"]);
}

#[tokio::test]
async fn roles_map_to_policies_and_bad_requests_get_sts_errors() {
    let provider = OidcProvider::start();
    let (_keys, key_file) = scratch_key_file();
    let server = start_gateway(&sts_args(&provider, &key_file));
    // realm_access.roles ["s3-writers"] -> readwrite through --oidc-role-policy.
    assume_ok(&server, &provider.token("roles-only"));
    assert_sts_error(&assume(&server, &provider.token("no-policy"), None), 403, "AccessDenied");
    let token = provider.token(CLIENT_ID);
    assert_sts_error(&assume(&server, &token, Some("899")), 400, "ValidationError");
    assert_sts_error(&assume(&server, &token, Some("43201")), 400, "ValidationError");
    assert_sts_error(&assume(&server, &token, Some("ten")), 400, "ValidationError");
    let missing = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", ROLE_ARN)];
    assert_sts_error(&sts_post(&server, &missing), 400, "MissingParameter");
    let other = [("Action", "AssumeRole"), ("Version", "2011-06-15")];
    assert_sts_error(&sts_post(&server, &other), 400, "InvalidAction");
    let mut with_policy = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "s"),
        ("WebIdentityToken", token.as_str()),
    ];
    assert_sts_error(&sts_post(&server, &with_policy), 400, "ValidationError");
    with_policy[3] = ("RoleSessionName", "ok-name");
    with_policy.push(("Policy", "{}"));
    assert_sts_error(&sts_post(&server, &with_policy), 400, "ValidationError");
    // GET with the parameters in the query works too.
    let query = format!(
        "{}/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=query&WebIdentityToken={}",
        server.url(),
        url_encode(ROLE_ARN),
        url_encode(&token)
    );
    let reply = curl(&[&query]);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let provider = OidcProvider::start();
    let (keys, key_file) = scratch_key_file();
    let server = start_gateway(&sts_args(&provider, &key_file));
    let real_key = provider.key_file();
    let real_kid = oidc::key_id(&real_key);
    let attacker_key = keys.path().join("attacker.json");
    oidc::new_signing_key(&attacker_key);
    let now = now_secs();
    let claims = json!({
        "iss": provider.issuer(), "sub": "mallory", "aud": CLIENT_ID, "azp": CLIENT_ID,
        "iat": now, "exp": now + 300, "policy": "readwrite",
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    // The control: a token signed with the provider's own key and correct claims is accepted,
    // so every refusal below is caused by the one property it changes.
    assume_ok(&server, &oidc::sign(&real_key, &claims, None));

    let cases = [
        ("wrong signature", oidc::sign(&attacker_key, &claims, Some(&real_kid)), "InvalidIdentityToken"),
        ("unknown kid", oidc::sign(&attacker_key, &claims, None), "InvalidIdentityToken"),
        (
            "other issuer",
            oidc::sign(&real_key, &with("iss", json!("http://127.0.0.1:1/realms/sovereign")), None),
            "InvalidIdentityToken",
        ),
        (
            "issuer with a trailing slash",
            oidc::sign(&real_key, &with("iss", json!(format!("{}/", provider.issuer()))), None),
            "InvalidIdentityToken",
        ),
        ("wrong audience", provider.token("other-app"), "InvalidIdentityToken"),
        ("expired", oidc::sign(&real_key, &with("exp", json!(now - 600)), None), "ExpiredTokenException"),
        ("not yet valid", oidc::sign(&real_key, &with("nbf", json!(now + 600)), None), "InvalidIdentityToken"),
        ("not a JWT", "definitely-not-a-jwt".to_owned(), "InvalidIdentityToken"),
    ];
    for (what, token, code) in &cases {
        let reply = assume(&server, token, None);
        assert!(
            reply.status == 400 && element(&reply.text(), "Code").as_deref() == Some(code),
            "{what}: {}",
            reply.text()
        );
    }
    // alg none: the real token's claims, no signature.
    let real = provider.token(CLIENT_ID);
    let payload = real.split('.').nth(1).expect("payload");
    use base64::Engine;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{real_kid}"}}"#));
    assert_sts_error(&assume(&server, &format!("{header}.{payload}."), None), 400, "InvalidIdentityToken");
    // A signature stripped from a real token.
    let stripped = format!("{}.", real.rsplit_once('.').expect("signing input").0);
    assert_sts_error(&assume(&server, &stripped, None), 400, "InvalidIdentityToken");
}

#[tokio::test]
async fn rotated_provider_keys_are_fetched_again() {
    let mut provider = OidcProvider::start();
    let (_keys, key_file) = scratch_key_file();
    let server = start_gateway(&sts_args(&provider, &key_file));
    let old_token = provider.token(CLIENT_ID);
    assume_ok(&server, &old_token);
    provider.rotate_key();
    // The new kid is not in the cached JWKS: the gateway fetches it again and accepts.
    assume_ok(&server, &provider.token(CLIENT_ID));
    // The old key is gone from the provider's JWKS now.
    assert_sts_error(&assume(&server, &old_token, None), 400, "InvalidIdentityToken");
}

#[tokio::test]
async fn sessions_are_accepted_by_every_gateway_with_the_cluster_key_and_no_other() {
    let provider = OidcProvider::start();
    let (keys, key_file) = scratch_key_file();
    let minting = start_gateway(&sts_args(&provider, &key_file));
    let creds = assume_ok(&minting, &provider.token(CLIENT_ID));

    // Another process that shares only the key file (its own drives, no OIDC settings).
    let replica = start_gateway(&["--sts-key-file".to_owned(), key_file.to_string_lossy().into_owned()]);
    create_bucket(&replica.client(), BUCKET).await;
    let client = session_client(&replica, &creds, true);
    client.put_object().bucket(BUCKET).key("r").body(ByteStream::from_static(b"x")).send().await.expect("PUT");

    // A process with another cluster key refuses the token, and one without STS the key id.
    let stranger =
        start_gateway(&["--sts-key-file".to_owned(), keys.path().join("other.key").to_string_lossy().into_owned()]);
    create_bucket(&stranger.client(), BUCKET).await;
    let client = session_client(&stranger, &creds, true);
    assert_s3_error(client.get_object().bucket(BUCKET).key("r").send().await, 400, &["InvalidToken"]);
    let plain = start_gateway(&[]);
    create_bucket(&plain.client(), BUCKET).await;
    let client = session_client(&plain, &creds, true);
    assert_s3_error(client.get_object().bucket(BUCKET).key("r").send().await, 403, &["InvalidAccessKeyId"]);
}

#[tokio::test]
async fn the_aws_cli_parses_the_sts_response() {
    if !Path::new(AWS_CLI).exists() {
        eprintln!("skipped: {AWS_CLI} is not installed (Debian package awscli)");
        return;
    }
    let provider = OidcProvider::start();
    let (_keys, key_file) = scratch_key_file();
    let server = start_gateway(&sts_args(&provider, &key_file));
    create_bucket(&server.client(), BUCKET).await;
    let output = Command::new(AWS_CLI)
        .args([
            "sts",
            "assume-role-with-web-identity",
            "--endpoint-url",
            server.url(),
            "--no-cli-pager",
            "--output",
            "json",
        ])
        .args(["--role-arn", ROLE_ARN, "--role-session-name", "cli", "--duration-seconds", "900"])
        .args(["--web-identity-token", &provider.token(CLIENT_ID)])
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the aws cli");
    assert!(output.status.success(), "aws sts: {}", String::from_utf8_lossy(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("aws cli JSON");
    let field =
        |name: &str| answer["Credentials"][name].as_str().unwrap_or_else(|| panic!("{name} in {answer}")).to_owned();
    assert_eq!(answer["SubjectFromWebIdentityToken"], CLIENT_ID);
    let creds = SessionCreds {
        access_key: field("AccessKeyId"),
        secret_key: field("SecretAccessKey"),
        token: field("SessionToken"),
        expiration: field("Expiration"),
    };
    let client = session_client(&server, &creds, true);
    client.put_object().bucket(BUCKET).key("cli").body(ByteStream::from_static(b"c")).send().await.expect("PUT");
}

/// AssumeRoleWithWebIdentity naming `role_arn`.
fn assume_role(server: &Server, token: &str, role_arn: &str) -> HttpReply {
    let params = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", "e2e-session"),
        ("WebIdentityToken", token),
    ];
    sts_post(server, &params)
}

#[tokio::test]
async fn several_providers_and_trusted_roles_come_from_the_config_file() {
    let eu = OidcProvider::start();
    let uk = OidcProvider::start();
    let (keys, key_file) = scratch_key_file();
    let uploader = "arn:aws:iam::000000000000:role/uploader";
    let auditor = "arn:aws:iam::000000000000:role/auditor";
    let config = format!(
        r#"
[[oidc]]
name = "eu"
issuer = "{eu}"
client_ids = ["sovereign-s3"]

[[oidc]]
name = "uk"
issuer = "{uk}"
client_ids = ["sovereign-s3"]

[[role]]
arn = "{uploader}"
policies = ["writeonly"]
trust_policy = '''
{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow",
  "Principal": {{"Federated": "{eu}"}},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {{"ForAnyValue:StringEquals": {{"jwt:realm_access.roles": "s3-writers"}}}}}}}}
'''

[[role]]
arn = "{auditor}"
policies = ["writeonly"]
trust_policy = '''
{{"Version": "2012-10-17", "Statement": [
  {{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::000000000000:oidc-provider/{eu_path}"}},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {{"StringEquals": {{"{eu_path}:aud": "account", "jwt:azp": "sovereign-s3"}}}}}},
  {{"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {{"StringEquals": {{"jwt:azp": "no-policy"}}}}}}]}}
'''
"#,
        eu = eu.issuer(),
        uk = uk.issuer(),
        eu_path = eu.issuer().trim_start_matches("http://"),
    );
    let config_file = keys.path().join("sovereign-s3.toml");
    std::fs::write(&config_file, config).expect("write the config file");
    let args = ["--config".to_owned(), config_file.to_string_lossy().into_owned()]
        .into_iter()
        .chain(["--sts-key-file".to_owned(), key_file.to_string_lossy().into_owned()])
        .collect::<Vec<_>>();
    let server = start_gateway(&args);
    let root = server.client();
    create_bucket(&root, BUCKET).await;
    root.put_object().bucket(BUCKET).key("k").body(ByteStream::from_static(b"v")).send().await.expect("PUT");

    // Both providers are trusted; their tokens have the same `sub` (the client id) but are
    // different identities: a bucket policy that denies uk's does not touch eu's.
    let deny_uk = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam:::user/uk:sovereign-s3"}, "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]});
    root.put_bucket_policy().bucket(BUCKET).policy(deny_uk.to_string()).send().await.expect("PutBucketPolicy");
    let eu_session = session_client(&server, &creds_of(&assume(&server, &eu.token(CLIENT_ID), None)), true);
    assert_eq!(get_bytes(&eu_session, BUCKET, "k").await, b"v");
    let uk_session = session_client(&server, &creds_of(&assume(&server, &uk.token(CLIENT_ID), None)), true);
    assert_s3_error(uk_session.get_object().bucket(BUCKET).key("k").send().await, 403, &["AccessDenied"]);

    // The role admits eu's tokens with the realm role s3-writers, and grants writeonly.
    let writer = creds_of(&assume_role(&server, &eu.token("roles-only"), uploader));
    let writer = session_client(&server, &writer, true);
    writer.put_object().bucket(BUCKET).key("up").body(ByteStream::from_static(b"u")).send().await.expect("PUT");
    assert_s3_error(writer.get_object().bucket(BUCKET).key("up").send().await, 403, &["AccessDenied"]);
    // Not a token without the role, nor one of the other provider with it.
    assert_sts_error(&assume_role(&server, &eu.token(CLIENT_ID), uploader), 403, "AccessDenied");
    assert_sts_error(&assume_role(&server, &uk.token("roles-only"), uploader), 403, "AccessDenied");
    // A role ARN that is not configured falls back to the token's own policies: roles-only
    // has none under this provider (no role_policies in the file).
    assert_sts_error(&assume(&server, &eu.token("roles-only"), None), 403, "AccessDenied");

    // A role admitted by AWS-style provider keys grants the role's policies only, not the
    // token's own `policy: readwrite` claim.
    let role_session = creds_of(&assume_role(&server, &eu.token(CLIENT_ID), auditor));
    let role_session = session_client(&server, &role_session, true);
    role_session.put_object().bucket(BUCKET).key("a").body(ByteStream::from_static(b"a")).send().await.expect("PUT");
    assert_s3_error(role_session.get_object().bucket(BUCKET).key("k").send().await, 403, &["AccessDenied"]);
    // Its trust policy admits eu's sovereign-s3 client only.
    assert_sts_error(&assume_role(&server, &uk.token(CLIENT_ID), auditor), 403, "AccessDenied");
    assert_sts_error(&assume_role(&server, &eu.token("no-policy"), auditor), 403, "AccessDenied");
}

#[test]
fn two_unnamed_providers_do_not_start() {
    let (dir, key_file) = scratch_key_file();
    let config_file = dir.path().join("sovereign-s3.toml");
    std::fs::write(&config_file, "[[oidc]]\nissuer = \"http://127.0.0.1:1/realms/b\"\nclient_ids = [\"c\"]\n")
        .expect("write the config file");
    let drive = dir.path().join("d1");
    std::fs::create_dir(&drive).expect("drive directory");
    let mut child = Command::new(server_binary())
        .arg("server")
        .arg(&drive)
        .args(["--address", "127.0.0.1:0", "--oidc-issuer", "http://127.0.0.1:1/realms/a", "--oidc-client-id", "c"])
        .arg("--config")
        .arg(&config_file)
        .arg("--sts-key-file")
        .arg(&key_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sovereign-s3");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sovereign-s3") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with two unnamed OIDC providers");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    assert!(!status.success() && stderr.contains("needs a name"), "{status}: {stderr}");
}
