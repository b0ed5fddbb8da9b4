//! Presigned URLs used over plain HTTP (curl), their expiry, and virtual-host style addressing.

use std::fs;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::Client;
use sovereign_e2e::*;

const PRESIGNED_LIFETIME: Duration = Duration::from_secs(300);
/// The domain given to `--domain`: buckets are then addressed as `<bucket>.vhost.localhost`.
const DOMAIN: &str = "vhost.localhost";

/// Presigning for URLs that stay valid through the test.
fn valid_for_a_while() -> PresigningConfig {
    PresigningConfig::expires_in(PRESIGNED_LIFETIME).expect("presigning config")
}

/// curl arguments that send the headers a presigned request was signed with.
fn presigned_headers(request: &PresignedRequest) -> Vec<String> {
    request.headers().flat_map(|(name, value)| ["-H".to_owned(), format!("{name}: {value}")]).collect()
}

/// Runs curl with `args` followed by the presigned request's headers and URL.
fn curl_presigned(args: &[&str], request: &PresignedRequest) -> HttpReply {
    let headers = presigned_headers(request);
    let mut all_args: Vec<&str> = args.to_vec();
    all_args.extend(headers.iter().map(String::as_str));
    all_args.push(request.uri());
    curl(&all_args)
}

#[tokio::test]
async fn presigned_put_and_get_over_plain_http() {
    let (_server, s3) = server_with_bucket(4).await;
    let data = random_bytes(300 * 1024);
    let body_file = tempfile::NamedTempFile::new().expect("body file");
    fs::write(body_file.path(), &data).expect("write body file");

    let put =
        s3.put_object().bucket(BUCKET).key("presigned").presigned(valid_for_a_while()).await.expect("presign PUT");
    let body_path = body_file.path().to_string_lossy();
    let reply = curl_presigned(&["-X", "PUT", "--upload-file", &body_path], &put);
    assert_eq!(reply.status, 200, "presigned PUT: {}", reply.text());
    assert_eq!(reply.header("etag"), Some(etag_of(&data).as_str()));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "presigned").await, &data, "uploaded");

    let get = s3
        .get_object()
        .bucket(BUCKET)
        .key("presigned")
        .response_content_type("text/csv")
        .presigned(valid_for_a_while())
        .await
        .expect("presign GET");
    let reply = curl_presigned(&[], &get);
    assert_eq!(reply.status, 200, "presigned GET: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/csv"));
    assert_same_bytes(&reply.body, &data, "downloaded");
}

#[tokio::test]
async fn expired_presigned_url_is_refused() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"secret").await;
    // Signed ten seconds ago for one second: expired by the time it is used.
    let expired = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(10))
        .expires_in(Duration::from_secs(1))
        .build()
        .expect("presigning config");
    let get = s3.get_object().bucket(BUCKET).key("k").presigned(expired).await.expect("presign GET");
    let reply = curl_presigned(&[], &get);
    reply.assert_error(403, "AccessDenied");
    assert!(reply.text().to_lowercase().contains("expired"), "{}", reply.text());
}

#[tokio::test]
async fn tampered_presigned_url_is_refused() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "public", b"public").await;
    put_bytes(&s3, BUCKET, "private", b"private").await;
    let get = s3.get_object().bucket(BUCKET).key("public").presigned(valid_for_a_while()).await.expect("presign GET");
    let tampered = get.uri().replace("/public?", "/private?");
    assert_ne!(tampered, get.uri());
    curl(&[&tampered]).assert_error(403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn virtual_host_style() {
    let server = Server::start_with_args(4, &["--domain", DOMAIN]);
    let endpoint = format!("http://{DOMAIN}:{}", server.port());
    let vhost = Client::from_conf(server.sdk_config().endpoint_url(&endpoint).force_path_style(false).build());
    let bucket = "vhost-bucket";
    create_bucket(&vhost, bucket).await;
    let data = random_bytes(300 * 1024);
    put_streaming(&vhost, bucket, "dir/object", &data).await;
    assert_same_bytes(&get_bytes(&vhost, bucket, "dir/object").await, &data, "vhost GET");
    assert_eq!(list_keys(&vhost, bucket).await, ["dir/object"]);
    // Path style still reaches the same bucket.
    let path_style = server.client();
    assert_same_bytes(&get_bytes(&path_style, bucket, "dir/object").await, &data, "path GET");

    let host = format!("{bucket}.{DOMAIN}");
    let resolve = format!("{host}:{}:127.0.0.1", server.port());
    let get =
        vhost.get_object().bucket(bucket).key("dir/object").presigned(valid_for_a_while()).await.expect("presign GET");
    assert!(get.uri().contains(&host), "{} is not virtual-host style", get.uri());
    let reply = curl_presigned(&["--resolve", &resolve], &get);
    assert_eq!(reply.status, 200, "presigned vhost GET: {}", reply.text());
    assert_same_bytes(&reply.body, &data, "presigned vhost GET");

    // curl's own SigV4 signer, virtual-host style.
    let listing =
        server.signed_curl(&["--resolve", &resolve, &format!("http://{host}:{}/?list-type=2", server.port())]);
    assert_eq!(listing.status, 200, "{}", listing.text());
    assert!(listing.text().contains("<Key>dir/object</Key>"), "{}", listing.text());
}
