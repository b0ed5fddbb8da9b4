//! What the server refuses rather than accept and ignore: server-side encryption it does not
//! implement (dual-layer SSE-KMS), object lock and ACL headers (nothing is stored), unsigned POST form uploads no bucket policy allows (refused before the file is read),
//! and Signature Version 2 outside V4's rules (clock skew, presigned expiry) or when turned off.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectCannedAcl, ObjectLockMode, ServerSideEncryption};
use aws_sdk_s3::Client;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sovereign_e2e::*;

/// Size of the form upload whose file the server must not read.
const FORM_UPLOAD_BYTES: u64 = 200 * MIB as u64;
/// How much the server's resident memory may grow while it refuses that upload.
const MAX_RSS_GROWTH_KIB: u64 = 32 * 1024;
/// A Date this far in the past is outside the 15-minute skew window.
const STALE_BY: Duration = Duration::from_secs(20 * 60);
/// One day, for presigned expiries.
const DAY: Duration = Duration::from_secs(24 * 3600);

async fn assert_absent(s3: &Client, key: &str) {
    let result = s3.head_object().bucket(BUCKET).key(key).send().await;
    assert_s3_error(result, 404, &[]);
}

#[tokio::test]
async fn unimplemented_encryption_is_refused_and_nothing_is_stored() {
    let (_server, s3) = server_with_bucket(4).await;
    let put = s3.put_object().bucket(BUCKET).key("sse").body(ByteStream::from_static(b"plaintext"));
    let error = assert_s3_error(
        put.server_side_encryption(ServerSideEncryption::AwsKmsDsse).send().await,
        501,
        &["NotImplemented"],
    );
    assert!(error.message.unwrap_or_default().contains("aws:kms:dsse"));
    assert_absent(&s3, "sse").await;
    let create = s3.create_multipart_upload().bucket(BUCKET).key("mpu");
    let create = create.server_side_encryption(ServerSideEncryption::AwsKmsDsse).send().await;
    assert_s3_error(create, 501, &["NotImplemented"]);
    let uploads = s3.list_multipart_uploads().bucket(BUCKET).send().await.expect("list uploads");
    assert!(uploads.uploads().is_empty(), "a refused upload was created: {uploads:?}");
}

#[tokio::test]
async fn object_lock_and_acl_headers_are_refused_and_owner_acls_accepted() {
    let (_server, s3) = server_with_bucket(4).await;
    let retain_until = DateTime::from(SystemTime::now() + DAY);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("locked")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(retain_until);
    assert_s3_error(put.send().await, 501, &["NotImplemented"]);
    assert_absent(&s3, "locked").await;

    let create = s3.create_bucket().bucket("locked-bucket").object_lock_enabled_for_bucket(true);
    assert_s3_error(create.send().await, 501, &["NotImplemented"]);
    assert_s3_error(s3.head_bucket().bucket("locked-bucket").send().await, 404, &[]);

    let public = s3.put_object().bucket(BUCKET).key("public").body(ByteStream::from_static(b"x"));
    assert_s3_error(public.acl(ObjectCannedAcl::PublicRead).send().await, 400, &["AccessControlListNotSupported"]);
    let granted = s3.put_object().bucket(BUCKET).key("public").body(ByteStream::from_static(b"x"));
    let everyone = "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"";
    assert_s3_error(granted.grant_read(everyone).send().await, 400, &["AccessControlListNotSupported"]);
    assert_absent(&s3, "public").await;

    for acl in [ObjectCannedAcl::Private, ObjectCannedAcl::BucketOwnerFullControl] {
        let put = s3.put_object().bucket(BUCKET).key("owned").body(ByteStream::from_static(b"x"));
        put.acl(acl).send().await.expect("an owner-only canned ACL is what every object has");
    }
}

/// `VmRSS` of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS value")
}

#[tokio::test]
async fn an_unsigned_form_upload_is_refused_before_its_file_is_read() {
    let (server, _s3) = server_with_bucket(4).await;
    let pid = server.pid();
    let file = tempfile::NamedTempFile::new().expect("form file");
    file.as_file().set_len(FORM_UPLOAD_BYTES).expect("sparse 200 MiB file");
    let before = resident_kib(pid);
    let started = Instant::now();
    let output = Command::new("curl")
        .args(["--silent", "--output", "/dev/null", "--write-out", "%{http_code} %{size_upload}"])
        // No `Expect: 100-continue`: curl sends the body at once, as a browser does.
        .args(["-H", "Expect:", "-F", "key=uploaded", "-F"])
        .arg(format!("file=@{}", file.path().display()))
        .arg(format!("{}/{BUCKET}", server.url()))
        .output()
        .expect("run curl");
    let elapsed = started.elapsed();
    let growth = resident_kib(pid).saturating_sub(before);
    let reply = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, uploaded) = reply.split_once(' ').expect("curl's --write-out");
    // The server answers 403 and closes without reading the rest: curl, still sending, may see
    // the connection reset before it reads the answer (000). Either way the body was not read.
    assert!(
        status == "403" || status == "000",
        "form upload answered {reply} ({:?})",
        String::from_utf8_lossy(&output.stderr)
    );
    let uploaded: f64 = uploaded.parse().expect("size_upload");
    assert!(uploaded < FORM_UPLOAD_BYTES as f64 / 2.0, "curl sent {uploaded} bytes: the server read the form");
    assert!(growth < MAX_RSS_GROWTH_KIB, "server memory grew by {growth} KiB");
    eprintln!("form upload refused in {elapsed:?}, {uploaded} bytes sent, RSS +{growth} KiB");
    let reply = curl(&["-X", "POST", "-F", "key=k", "-F", "file=@/dev/null", &format!("{}/{BUCKET}", server.url())]);
    reply.assert_error(403, "AccessDenied");
}

/// Base64 HMAC-SHA1 of a V2 string to sign with the root secret.
fn sign_v2(string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(ROOT_PASSWORD.as_bytes()).expect("HMAC key");
    mac.update(string_to_sign.as_bytes());
    let digest: [u8; 20] = mac.finalize().into_bytes().into();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// `time` as an HTTP date (`Tue, 27 Mar 2007 19:36:42 GMT`), by date(1).
fn http_date(time: SystemTime) -> String {
    let output = Command::new("date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", &format!("@{}", unix_seconds(time)), "+%a, %d %b %Y %H:%M:%S GMT"])
        .output()
        .expect("run date");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A header-signed V2 request by curl: `method` on `/BUCKET/key`, dated `date`.
fn curl_v2(server: &Server, method: &str, key: &str, date: SystemTime, body: Option<&str>) -> HttpReply {
    let date = http_date(date);
    let content_type = if body.is_some() { "text/plain" } else { "" };
    let signature = sign_v2(&format!("{method}\n\n{content_type}\n{date}\n/{BUCKET}/{key}"));
    let url = format!("{}/{BUCKET}/{key}", server.url());
    let (date_header, auth) = (format!("Date: {date}"), format!("Authorization: AWS {ROOT_USER}:{signature}"));
    let mut args: Vec<&str> = vec!["-X", method, "-H", &date_header, "-H", &auth];
    let type_header = format!("Content-Type: {content_type}");
    if let Some(body) = body {
        args.extend(["-H", type_header.as_str(), "--data-binary", body]);
    }
    args.push(&url);
    curl(&args)
}

/// A V2 presigned GET URL of `/BUCKET/key` that expires at `expires`.
fn presigned_v2(server: &Server, key: &str, expires: SystemTime) -> String {
    let expires = unix_seconds(expires);
    let signature = sign_v2(&format!("GET\n\n\n{expires}\n/{BUCKET}/{key}"));
    let signature = url_encode(&signature);
    format!("{}/{BUCKET}/{key}?AWSAccessKeyId={ROOT_USER}&Expires={expires}&Signature={signature}", server.url())
}

#[tokio::test]
async fn sigv2_header_signed_requests_are_held_to_the_skew_window() {
    let (server, s3) = server_with_bucket(1).await;
    let now = SystemTime::now();
    let put = curl_v2(&server, "PUT", "v2", now, Some("signed with V2"));
    assert_eq!(put.status, 200, "fresh V2 PUT: {}", put.text());
    assert_eq!(get_bytes(&s3, BUCKET, "v2").await, b"signed with V2");
    let get = curl_v2(&server, "GET", "v2", now, None);
    assert_eq!((get.status, get.text().as_str()), (200, "signed with V2"));

    curl_v2(&server, "GET", "v2", now - STALE_BY, None).assert_error(403, "RequestTimeTooSkewed");
    curl_v2(&server, "GET", "v2", now + STALE_BY, None).assert_error(403, "RequestTimeTooSkewed");
    curl_v2(&server, "PUT", "stale", now - STALE_BY, Some("replayed")).assert_error(403, "RequestTimeTooSkewed");
    assert_absent(&s3, "stale").await;

    let date = http_date(now);
    let forged = format!("Authorization: AWS {ROOT_USER}:{}", sign_v2("something else"));
    let url = format!("{}/{BUCKET}/v2", server.url());
    let reply = curl(&["-H", &format!("Date: {date}"), "-H", &forged, &url]);
    reply.assert_error(403, "SignatureDoesNotMatch");
    // AWS's wording, which only the front door's constant-time check uses (s3s's own, variable-time
    // comparison would answer with the default message): the signature never reached s3s.
    assert!(reply.text().contains("Check your key and signing method."), "{}", reply.text());
    let undated = format!("Authorization: AWS {ROOT_USER}:{}", sign_v2(&format!("GET\n\n\n\n/{BUCKET}/v2")));
    curl(&["-H", &undated, &url]).assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn sigv2_presigned_urls_expire_and_are_capped_at_a_week() {
    let (server, s3) = server_with_bucket(1).await;
    put_bytes(&s3, BUCKET, "shared", b"shared bytes").await;
    let now = SystemTime::now();
    let fresh = curl(&[&presigned_v2(&server, "shared", now + Duration::from_secs(300))]);
    assert_eq!((fresh.status, fresh.text().as_str()), (200, "shared bytes"));

    let long = curl(&[&presigned_v2(&server, "shared", now + 8 * DAY)]);
    long.assert_error(400, "AuthorizationQueryParametersError");
    let expired = curl(&[&presigned_v2(&server, "shared", now - Duration::from_secs(10))]);
    expired.assert_error(403, "AccessDenied");
    assert!(expired.text().contains("Request has expired"), "{}", expired.text());
}

#[tokio::test]
async fn sigv2_can_be_turned_off() {
    let server = Server::start_with_args(1, &["--sigv2", "false"]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    put_bytes(&s3, BUCKET, "k", b"V4 still works").await;
    let now = SystemTime::now();
    for reply in [curl_v2(&server, "GET", "k", now, None), curl(&[&presigned_v2(&server, "k", now + DAY)])] {
        reply.assert_error(400, "InvalidRequest");
        assert!(reply.text().contains("Please use AWS4-HMAC-SHA256"), "{}", reply.text());
    }
    let env_off = Server::start_with_env(1, &[], &[("SOVEREIGN_S3_SIGV2", "false")]);
    curl_v2(&env_off, "GET", "k", now, None).assert_error(400, "InvalidRequest");
}

/// The aws cli v1, which presigns with V2 by default; `None` when there is none.
fn aws_cli_v1() -> Option<&'static str> {
    ["/usr/bin/aws", "aws"].into_iter().find(|cli| {
        let version = Command::new(cli).arg("--version").output();
        version.is_ok_and(|out| {
            let text = [out.stdout, out.stderr].concat();
            out.status.success() && String::from_utf8_lossy(&text).starts_with("aws-cli/1.")
        })
    })
}

fn aws_presign(cli: &str, server: &Server, key: &str, expires_in: Duration) -> String {
    let output = Command::new(cli)
        .args(["s3", "presign", &format!("s3://{BUCKET}/{key}"), "--endpoint-url", server.url()])
        .args(["--expires-in", &expires_in.as_secs().to_string()])
        .env("AWS_ACCESS_KEY_ID", ROOT_USER)
        .env("AWS_SECRET_ACCESS_KEY", ROOT_PASSWORD)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws s3 presign");
    assert!(output.status.success(), "aws s3 presign: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn aws_cli_v1_presigned_urls_work_within_the_cap() {
    let Some(cli) = aws_cli_v1() else {
        eprintln!("skipped: no aws cli v1 installed");
        return;
    };
    let (server, s3) = server_with_bucket(1).await;
    put_bytes(&s3, BUCKET, "cli", b"presigned by the aws cli").await;
    let url = aws_presign(cli, &server, "cli", Duration::from_secs(3600));
    assert!(url.contains("Signature=") && url.contains("Expires="), "not a V2 URL: {url}");
    let reply = curl(&[&url]);
    assert_eq!((reply.status, reply.text().as_str()), (200, "presigned by the aws cli"));
    let url = aws_presign(cli, &server, "cli", 8 * DAY);
    curl(&[&url]).assert_error(400, "AuthorizationQueryParametersError");
}
