//! Bad input of issue 2: each request gets the AWS error code and status, nothing is written and
//! the server keeps serving.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_async::time::TimeSource;
use sovereign_e2e::*;

/// Asserts the bucket holds exactly `keys` and that the server still takes writes and reads.
async fn assert_bucket_holds(s3: &Client, keys: &[&str]) {
    assert_eq!(list_keys(s3, BUCKET).await, keys);
    put_bytes(s3, BUCKET, "still-serving", b"yes").await;
    assert_eq!(get_bytes(s3, BUCKET, "still-serving").await, b"yes");
    s3.delete_object().bucket(BUCKET).key("still-serving").send().await.expect("delete probe");
}

/// A PutObject of a few bytes that a test expects to be refused.
fn put_request(s3: &Client, key: &str) -> PutObjectFluentBuilder {
    s3.put_object().bucket(BUCKET).key(key).body(ByteStream::from_static(b"must not be stored"))
}

#[tokio::test]
async fn invalid_bucket_names_are_rejected() {
    let (_server, s3) = server_with_bucket(4).await;
    let too_long = "a".repeat(64);
    for name in [
        "ab",
        "UpperCase",
        "under_score",
        "-leading-dash",
        "trailing-dash-",
        "double..dot",
        "xn--punycode-prefix",
        "dash-.dot",
        "dot.-dash",
        "sthree-reserved",
        "name--ol-s3",
        "192.168.5.4",
        too_long.as_str(),
    ] {
        let error = assert_s3_error(s3.create_bucket().bucket(name).send().await, 400, &["InvalidBucketName"]);
        assert!(error.code.is_some(), "{name}");
    }
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    let names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [BUCKET]);
    assert_bucket_holds(&s3, &[]).await;
}

#[tokio::test]
async fn keys_over_1024_bytes_are_rejected() {
    let (_server, s3) = server_with_bucket(4).await;
    let ascii = "k".repeat(1025);
    // 513 two-byte characters: 1026 bytes, the limit counts bytes.
    let multibyte = "é".repeat(513);
    for key in [&ascii, &multibyte] {
        assert_s3_error(put_request(&s3, key).send().await, 400, &["KeyTooLongError"]);
    }
    assert_bucket_holds(&s3, &[]).await;

    let longest = "k".repeat(1024);
    put_bytes(&s3, BUCKET, &longest, b"fits").await;
    assert_eq!(get_bytes(&s3, BUCKET, &longest).await, b"fits");
}

#[tokio::test]
async fn keys_with_nul_are_rejected() {
    let (_server, s3) = server_with_bucket(4).await;
    let error = assert_s3_error(put_request(&s3, "nul\0key").send().await, 400, &[]);
    assert!(error.code.is_some(), "{error:?}");
    assert_bucket_holds(&s3, &[]).await;
}

#[tokio::test]
async fn dot_dot_keys_are_plain_keys_inside_the_drives() {
    let (server, s3) = server_with_bucket(4).await;
    // Sharded sizes, so that the server writes files for them. Dot segments and doubled slashes
    // are part of a key, never resolved.
    let objects = [
        ("../../escape", random_bytes(300 * 1024)),
        ("./dir//double", random_bytes(1000)),
        ("a/../../../escape", random_bytes(300 * 1024)),
        ("dir/double", random_bytes(1000)),
        ("escape", random_bytes(1000)),
    ];
    for (key, data) in &objects {
        put_bytes(&s3, BUCKET, key, data).await;
    }
    for (key, data) in &objects {
        assert_same_bytes(&get_bytes(&s3, BUCKET, key).await, data, key);
    }
    let keys: Vec<&str> = objects.iter().map(|(key, _)| *key).collect();
    assert_eq!(list_keys(&s3, BUCKET).await, keys);

    let root = server.root_dir();
    for file in files_under(root) {
        let inside_a_drive = server.dirs().iter().any(|drive| file.starts_with(drive));
        // The server's own files beside the drives: its log, and the local KMS's master key.
        let own = file == root.join("server.log") || file.file_name().is_some_and(|n| n == "kms-master.key");
        assert!(inside_a_drive || own, "{} is outside the drives", file.display());
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        assert!(!name.contains("escape"), "{} named after a key", file.display());
    }
    let tmp = root.parent().unwrap_or(Path::new("/"));
    assert!(!tmp.join("escape").exists(), "a key escaped to {}", tmp.display());
}

#[tokio::test]
async fn part_numbers_outside_1_to_10000_are_rejected() {
    let (_server, s3) = server_with_bucket(4).await;
    let id = create_multipart_upload(&s3, BUCKET, "k").await;
    for part_number in [0, 10001] {
        assert_s3_error(
            s3.upload_part()
                .bucket(BUCKET)
                .key("k")
                .upload_id(&id)
                .part_number(part_number)
                .body(ByteStream::from_static(b"part"))
                .send()
                .await,
            400,
            &["InvalidArgument"],
        );
    }
    let parts = s3.list_parts().bucket(BUCKET).key("k").upload_id(&id).send().await.expect("list parts");
    assert!(parts.parts().is_empty(), "{parts:?}");
    upload_part(&s3, BUCKET, "k", &id, 10000, b"the last valid number").await;
}

/// POSTs an XML body to `path_and_query`, signed as root with curl's own SigV4.
fn post_xml(server: &Server, path_and_query: &str, body: &str) -> HttpReply {
    server.signed_curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/xml",
        "-H",
        &format!("Content-MD5: {}", content_md5(body.as_bytes())),
        "--data-binary",
        body,
        &format!("{}{path_and_query}", server.url()),
    ])
}

#[tokio::test]
async fn malformed_xml_is_rejected() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "kept", b"kept").await;
    let id = create_multipart_upload(&s3, BUCKET, "assembled").await;
    let etag = upload_part(&s3, BUCKET, "assembled", &id, 1, b"part").await;
    let delete_path = format!("/{BUCKET}?delete=");
    let complete_path = format!("/{BUCKET}/assembled?uploadId={}", url_encode(&id));
    let cases = [
        (&delete_path, "<Delete><Object><Key>kept</Key></Object>".to_owned()),
        (&delete_path, "this is not xml".to_owned()),
        (&delete_path, "<Delete><Object><Key>kept</Key></Object></Wrong>".to_owned()),
        (&complete_path, format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>")),
        (&complete_path, "<CompleteMultipartUpload><Part>".to_owned()),
    ];
    for (path, body) in &cases {
        post_xml(&server, path, body).assert_error(400, "MalformedXML");
    }
    assert_eq!(get_bytes(&s3, BUCKET, "kept").await, b"kept");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("assembled").send().await, 404, &[]);
    let parts = s3
        .list_parts()
        .bucket(BUCKET)
        .key("assembled")
        .upload_id(&id)
        .send()
        .await
        .expect("the upload survives a malformed completion");
    assert_eq!(parts.parts().len(), 1);

    // The same route with a well-formed body works: the failures above were about the XML.
    let valid = "<Delete><Quiet>true</Quiet><Object><Key>kept</Key></Object></Delete>";
    let reply = post_xml(&server, &delete_path, valid);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_bucket_holds(&s3, &[]).await;
}

/// A client signing as `access_key` / `secret_key`.
fn client_as(server: &Server, access_key: &str, secret_key: &str) -> Client {
    let credentials = Credentials::new(access_key, secret_key, None, None, "e2e");
    Client::from_conf(server.sdk_config().credentials_provider(credentials).build())
}

#[tokio::test]
async fn wrong_credentials_are_rejected() {
    let (server, s3) = server_with_bucket(4).await;
    let impostors = [
        (client_as(&server, ROOT_USER, "not-the-root-password"), "SignatureDoesNotMatch"),
        (client_as(&server, "no-such-access-key", ROOT_PASSWORD), "InvalidAccessKeyId"),
    ];
    for (client, code) in &impostors {
        assert_s3_error(put_request(client, "k").send().await, 403, &[*code]);
        assert_s3_error(client.list_buckets().send().await, 403, &[*code]);
        assert_s3_error(client.create_bucket().bucket("intruder").send().await, 403, &[*code]);
    }
    let anonymous = curl(&[&format!("{}/{BUCKET}/k", server.url())]);
    anonymous.assert_error(403, "AccessDenied");

    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert_eq!(buckets.buckets().len(), 1, "{buckets:?}");
    assert_bucket_holds(&s3, &[]).await;
}

/// A clock running `behind` the real one, for requests signed in the past.
#[derive(Debug)]
struct LateClock {
    behind: Duration,
}

impl TimeSource for LateClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() - self.behind
    }
}

#[tokio::test]
async fn signatures_from_a_skewed_clock_are_rejected() {
    let (server, s3) = server_with_bucket(4).await;
    let late = LateClock { behind: Duration::from_secs(3600) };
    let skewed = Client::from_conf(server.sdk_config().time_source(late).build());
    assert_s3_error(put_request(&skewed, "k").send().await, 403, &["RequestTimeTooSkewed"]);
    assert_bucket_holds(&s3, &[]).await;
}

#[tokio::test]
async fn oversized_headers_are_rejected() {
    let (server, s3) = server_with_bucket(4).await;
    // S3 caps user metadata at 2 KiB.
    assert_s3_error(
        put_request(&s3, "k").metadata("big", "m".repeat(3 * 1024)).send().await,
        400,
        &["MetadataTooLarge"],
    );

    // 800 KiB of header lines, read by curl from a file (too long for one command-line argument).
    // Unsigned: curl's SigV4 signer cannot sign that much, and the size must be refused before
    // any authentication anyway.
    let mut headers = tempfile::NamedTempFile::new().expect("header file");
    for i in 0..200 {
        writeln!(headers, "x-padding-{i}: {}", "p".repeat(4096)).expect("write header file");
    }
    let header_file = format!("@{}", headers.path().display());
    let url = format!("{}/{BUCKET}/k", server.url());
    let reply = curl(&["-X", "PUT", "-H", &header_file, "--data-binary", "must not be stored", &url]);
    assert!(matches!(reply.status, 400 | 431), "oversized headers got HTTP {}: {}", reply.status, reply.text());
    assert_bucket_holds(&s3, &[]).await;
}
