//! HTTP-level details of S3 that SDKs hide but clients and conformance suites rely on: status
//! codes of ranged HEADs and 304s and the headers they carry, error bodies, request ids, and
//! request checks made before an operation runs.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CreateBucketConfiguration, MetadataDirective, Tag, Tagging};
use sovereign_e2e::*;

fn object_url(server: &Server, key: &str) -> String {
    format!("{}/{BUCKET}/{key}", server.url())
}

/// A signed PUT of `body` to `url` with extra curl arguments (curl signs `--upload-file` PUTs).
fn signed_put(server: &Server, url: &str, body: &[u8], args: &[&str]) -> HttpReply {
    let file = tempfile::NamedTempFile::new().expect("body file");
    std::fs::write(file.path(), body).expect("write body file");
    let path = file.path().to_string_lossy().into_owned();
    let mut all_args = args.to_vec();
    all_args.extend(["--upload-file", path.as_str(), url]);
    server.signed_curl(&all_args)
}

#[tokio::test]
async fn ranged_heads_are_206_and_not_modified_carries_validators() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "r", b"0123456789").await;
    let url = object_url(&server, "r");

    let head = server.signed_curl(&["-I", "-H", "Range: bytes=2-4", &url]);
    assert_eq!(head.status, 206, "{head:?}");
    assert_eq!(head.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(head.header("content-length"), Some("3"));

    let etag = etag_of(b"0123456789");
    for method in [&["-I"][..], &[][..]] {
        let mut args = method.to_vec();
        let condition = format!("If-None-Match: {etag}");
        args.extend(["-H", condition.as_str(), url.as_str()]);
        let reply = server.signed_curl(&args);
        assert_eq!(reply.status, 304, "{reply:?}");
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        assert!(reply.header("last-modified").is_some_and(|d| d.ends_with(" GMT")), "{reply:?}");
    }

    let unsatisfiable = server.signed_curl(&["-H", "Range: bytes=20-", &url]);
    unsatisfiable.assert_error(416, "InvalidRange");
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */10"));
    put_bytes(&s3, BUCKET, "empty", b"").await;
    server.signed_curl(&["-H", "Range: bytes=-1", &object_url(&server, "empty")]).assert_error(416, "InvalidRange");
    server.signed_curl(&[&format!("{url}?partNumber=0")]).assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn every_reply_names_its_request_and_errors_are_complete() {
    let (server, _s3) = server_with_bucket(4).await;
    let reply = server.signed_curl(&[&format!("{}/no-such-bucket/key", server.url())]);
    reply.assert_error(404, "NoSuchBucket");
    let request_id = reply.header("x-amz-request-id").expect("request id header");
    assert!(reply.text().contains(&format!("<RequestId>{request_id}</RequestId>")), "{}", reply.text());
    let host_id = reply.header("x-amz-id-2").expect("host id header");
    assert!(reply.text().contains(&format!("<HostId>{host_id}</HostId>")), "{}", reply.text());
    assert_eq!(reply.header("server"), Some("sovereign-s3"));

    // An error s3s raises without a message gets the one AWS sends.
    let invalid = server.signed_curl(&["-X", "PUT", &format!("{}/Bad_Name", server.url())]);
    invalid.assert_error(400, "InvalidBucketName");
    assert!(invalid.text().contains("<Message>The specified bucket is not valid.</Message>"), "{}", invalid.text());

    // An empty Authorization header is an anonymous request.
    curl(&["-H", "Authorization:  ", &format!("{}/{BUCKET}", server.url())]).assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn content_md5_is_checked_on_xml_bodies_and_must_not_be_empty() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "kept", b"kept").await;
    let body = "<Delete><Object><Key>kept</Key></Object></Delete>";
    let wrong_md5 = format!("Content-MD5: {}", content_md5(b"something else"));
    let url = format!("{}/{BUCKET}?delete", server.url());
    let reply = server.signed_curl(&["-X", "POST", "-H", &wrong_md5, "--data-binary", body, &url]);
    reply.assert_error(400, "BadDigest");
    assert_eq!(get_bytes(&s3, BUCKET, "kept").await, b"kept");

    let tagging = "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>";
    let url = format!("{}?tagging=", object_url(&server, "kept"));
    signed_put(&server, &url, tagging.as_bytes(), &["-H", &wrong_md5]).assert_error(400, "BadDigest");
    let right_md5 = format!("Content-MD5: {}", content_md5(tagging.as_bytes()));
    let tagged = signed_put(&server, &url, tagging.as_bytes(), &["-H", &right_md5]);
    assert_eq!(tagged.status, 200, "{}", tagged.text());

    let empty = signed_put(&server, &object_url(&server, "new"), b"x", &["-H", "Content-MD5;"]);
    empty.assert_error(400, "InvalidDigest");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("new").send().await, 404, &[]);
}

#[tokio::test]
async fn presigned_urls_cannot_outlive_a_week() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"data").await;
    let config = PresigningConfig::expires_in(Duration::from_secs(3600)).expect("presigning config");
    let presigned = s3.get_object().bucket(BUCKET).key("k").presigned(config).await.expect("presign");
    let too_long = presigned.uri().replace("X-Amz-Expires=3600", "X-Amz-Expires=604801");
    assert_ne!(too_long, presigned.uri());
    let reply = curl(&[&too_long]);
    reply.assert_error(400, "AuthorizationQueryParametersError");
    assert!(reply.text().contains("604800"), "{}", reply.text());
}

#[tokio::test]
async fn stored_headers_are_the_objects_own() {
    let (server, s3) = server_with_bucket(4).await;
    // aws-chunked frames the request body; it is not an encoding of the object.
    put_streaming(&s3, BUCKET, "streamed", b"streamed body").await;
    let head = s3.head_object().bucket(BUCKET).key("streamed").send().await.expect("head");
    assert_eq!(head.content_encoding(), None, "{head:?}");
    // Without a Content-Type, S3 serves binary/octet-stream.
    let put = signed_put(&server, &object_url(&server, "plain"), b"x", &[]);
    assert_eq!(put.status, 200, "{}", put.text());
    let head = s3.head_object().bucket(BUCKET).key("plain").send().await.expect("head");
    assert_eq!(head.content_type(), Some("binary/octet-stream"));
}

#[tokio::test]
async fn invalid_directives_tags_and_constraints_are_rejected() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "src", b"source").await;
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("dst")
        .copy_source(format!("{BUCKET}/src"))
        .metadata_directive(MetadataDirective::from("BOGUS"))
        .send()
        .await;
    assert_s3_error(copy, 400, &["InvalidArgument"]);
    let reserved = Tag::builder().key("aws:owner").value("x").build().expect("tag");
    let tagging = Tagging::builder().tag_set(reserved).build().expect("tagging");
    let put = s3.put_object_tagging().bucket(BUCKET).key("src").tagging(tagging).send().await;
    assert_s3_error(put, 400, &["InvalidTag"]);
    let us_east_1 = CreateBucketConfiguration::builder().location_constraint("us-east-1".into()).build();
    let create = s3.create_bucket().bucket("east").create_bucket_configuration(us_east_1).send().await;
    assert_s3_error(create, 400, &["InvalidLocationConstraint"]);
    let listed = list_keys(&s3, BUCKET).await;
    assert_eq!(listed, ["src"]);
}

#[tokio::test]
async fn a_body_that_does_not_match_its_signed_hash_is_refused() {
    let (server, s3) = server_with_bucket(4).await;
    let file = tempfile::NamedTempFile::new().expect("body file");
    std::fs::write(file.path(), b"the body sent").expect("write body file");
    let path = file.path().to_string_lossy().into_owned();
    // The SHA-256 of the empty body.
    let other_hash = "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let user = format!("{ROOT_USER}:{ROOT_PASSWORD}");
    let reply = curl(&[
        "--aws-sigv4",
        &format!("aws:amz:{REGION}:s3"),
        "--user",
        &user,
        "-H",
        other_hash,
        "--upload-file",
        &path,
        &object_url(&server, "tampered"),
    ]);
    reply.assert_error(400, "XAmzContentSHA256Mismatch");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("tampered").send().await, 404, &[]);
}
