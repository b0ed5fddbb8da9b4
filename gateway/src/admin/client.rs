//! The client side of `sovereign-s3 admin`: finds credentials as the aws cli does
//! (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the profile of
//! AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), signs the request with SigV4 for
//! service `s3` (aws-sigv4, with the payload hash), sends it and prints the JSON answer.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use zeroize::Zeroizing;

use crate::admin::cli::{rewrap_request, AdminArgs, AdminRequest, KmsCommand, Resource};
use crate::admin::PREFIX;

/// How long the client waits to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client waits for a whole answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Signing credentials.
pub struct SigningKeys {
    access_key: String,
    secret_key: Zeroizing<String>,
    session_token: Option<String>,
}

/// The credentials the aws cli would use: the environment, else `profile` (default
/// `default`) of the shared credentials file.
pub fn credentials(profile: Option<&str>) -> Result<SigningKeys, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(access_key), Some(secret_key)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(SigningKeys {
            access_key,
            secret_key: Zeroizing::new(secret_key),
            session_token: env("AWS_SESSION_TOKEN"),
        });
    }
    let path = match env("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => PathBuf::from(path),
        None => {
            PathBuf::from(env("HOME").ok_or("no credentials: set AWS_ACCESS_KEY_ID or HOME")?).join(".aws/credentials")
        }
    };
    let profile = profile.unwrap_or("default");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no credentials in the environment, and {}: {e}", path.display()))?;
    profile_keys(&text, profile)
        .ok_or_else(|| format!("profile '{profile}' of {} has no access key pair", path.display()))
}

/// The keys of `[profile]` in an aws credentials file.
fn profile_keys(text: &str, profile: &str) -> Option<SigningKeys> {
    let mut in_profile = false;
    let (mut access_key, mut secret_key, mut session_token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_profile) else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim() {
            "aws_access_key_id" => access_key = Some(value),
            "aws_secret_access_key" => secret_key = Some(value),
            "aws_session_token" => session_token = Some(value),
            _ => {}
        }
    }
    Some(SigningKeys { access_key: access_key?, secret_key: Zeroizing::new(secret_key?), session_token })
}

/// The answer of the server. Debug leaves the body out: it may show a new secret.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON, or empty for 204).
    pub body: Bytes,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer").field("status", &self.status).field("body_bytes", &self.body.len()).finish()
    }
}

/// Signs and sends `request` to `endpoint`.
pub async fn send(endpoint: &str, region: &str, keys: &SigningKeys, request: &AdminRequest) -> Result<Answer, String> {
    let url = format!("{}{PREFIX}{}", endpoint.trim_end_matches('/'), request.path);
    let body = request.body.clone().unwrap_or_default();
    let mut http_request = hyper::Request::builder()
        .method(request.method.clone())
        .uri(&url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.clone())))
        .map_err(|e| format!("bad request for {url}: {e}"))?;
    let host = http_request.uri().authority().map(|a| a.to_string()).ok_or_else(|| format!("no host in {url}"))?;
    http_request.headers_mut().insert(hyper::header::HOST, host.parse().map_err(|e| format!("host {host}: {e}"))?);
    sign_request(&mut http_request, region, keys, &body)?;
    let client = crate::sts::oidc::https_client::<Full<Bytes>>(CONNECT_TIMEOUT)?;
    let exchange = async {
        let response = client.request(http_request).await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| format!("{url}: reading the answer: {e}"))?;
        Ok::<_, String>(Answer { status, body: body.to_bytes() })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {REQUEST_TIMEOUT:?}"))?
}

fn sign_request(
    request: &mut hyper::Request<Full<Bytes>>,
    region: &str,
    keys: &SigningKeys,
    body: &[u8],
) -> Result<(), String> {
    let identity = Credentials::new(
        keys.access_key.clone(),
        keys.secret_key.as_str().to_owned(),
        keys.session_token.clone(),
        None,
        "sovereign-s3-admin",
    )
    .into();
    let mut settings = SigningSettings::default();
    // As S3 signs: the path once encoded, never normalised, and the payload hash in a header.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Runs `sovereign-s3 admin ...`: prints the JSON answer on stdout, or the error on stderr
/// (and fails).
pub async fn run(args: AdminArgs) -> Result<(), String> {
    let keys = credentials(args.profile.as_deref())?;
    if let Resource::Kms(KmsCommand::Rewrap { after, limit }) = &args.resource {
        return rewrap(&args, &keys, after.clone(), *limit).await;
    }
    let request = args.resource.request()?;
    let answer = send(&args.endpoint_url, &args.region, &keys, &request).await?;
    let text = String::from_utf8_lossy(&answer.body);
    let shown = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.into_owned());
    if (200..300).contains(&answer.status) {
        if !shown.is_empty() {
            println!("{shown}");
        }
        return Ok(());
    }
    Err(format!("HTTP {}: {shown}", answer.status))
}

/// Runs a rewrap batch by batch until the walk is done, printing each batch's answer as one
/// JSON line; an error names the cursor to resume from.
async fn rewrap(args: &AdminArgs, keys: &SigningKeys, mut after: Option<String>, limit: usize) -> Result<(), String> {
    let mut failures = 0;
    loop {
        let answer = send(&args.endpoint_url, &args.region, keys, &rewrap_request(after.as_deref(), limit)).await;
        let resume = || after.as_deref().map_or(String::new(), |a| format!(" (resume with --after {a})"));
        let answer = answer.map_err(|e| format!("{e}{}", resume()))?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if answer.status != 200 {
            return Err(format!("HTTP {}: {text}{}", answer.status, resume()));
        }
        println!("{text}");
        let page: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("the answer is not JSON: {e}"))?;
        failures += page["failures"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None if failures == 0 => return Ok(()),
            None => return Err(format!("{failures} versions were not rewrapped (see the failures above)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_like_the_aws_cli() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n[ops]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token = X\n";
        let ops = profile_keys(text, "ops").unwrap();
        assert_eq!(
            (ops.access_key.as_str(), ops.secret_key.as_str(), ops.session_token.as_deref()),
            ("B", "T", Some("X"))
        );
        assert_eq!(profile_keys(text, "default").unwrap().access_key, "A");
        assert!(profile_keys(text, "missing").is_none());
    }
}
