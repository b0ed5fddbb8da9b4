//! Server-side encryption with the local KMS (the embedded default): SSE-S3 and SSE-KMS round
//! trips with the headers AWS returns, range reads across packages, CopyObject between modes,
//! SSE-C (over TLS only, as on AWS), bucket default encryption, multipart uploads in every
//! mode, and proof that the drives hold no plaintext. Tampering the bitrot hash cannot see
//! (data resealed through the object layer) is tested in gateway/src/sse/read.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_s3::Client;
use base64::Engine;
use md5::{Digest, Md5};
use sovereign_e2e::*;

/// Plaintext bytes per sealed package (ADR 0009).
const PACKAGE_BYTES: usize = 64 * 1024;
/// Marker written in encrypted objects: it must not be found on any drive.
const SECRET_MARKER: &[u8] = b"SECRET-MARKER-7f3a9c1e-must-never-be-on-a-drive";
/// Marker written in a plaintext object: it must be found, or the search proves nothing.
const CONTROL_MARKER: &[u8] = b"CONTROL-MARKER-2b8d4e6f-stored-in-plaintext";

fn marked(marker: &[u8], len: usize) -> Vec<u8> {
    marker.iter().copied().cycle().take(len).collect()
}

async fn put_sse_s3(s3: &Client, key: &str, data: &[u8]) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSE-S3 put {key}: {e:?}"))
}

async fn get_range(s3: &Client, key: &str, range: &str) -> Vec<u8> {
    let out = s3.get_object().bucket(BUCKET).key(key).range(range).send().await;
    collect_body(out.unwrap_or_else(|e| panic!("get {key} {range}: {e:?}")).body).await
}

/// Whether any file under `dir` contains `needle`.
fn found_under(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir).iter().any(|file| {
        let bytes = fs::read(file).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test]
async fn sse_s3_round_trips_with_aws_headers_and_ranges() {
    let (server, s3) = server_with_bucket(4).await;
    for (key, size) in [("empty", 0), ("small", 1000), ("packages", 3 * PACKAGE_BYTES + 17), ("big", 3 * MIB + 5)] {
        let data = random_bytes(size);
        let put = put_sse_s3(&s3, key, &data).await;
        assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::Aes256), "{key}");
        assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()), "SSE-S3 ETag is the plaintext MD5: {key}");
        let get = s3.get_object().bucket(BUCKET).key(key).send().await.expect("get");
        assert_eq!(get.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
        assert_eq!(get.content_length(), Some(size as i64));
        assert_eq!(get.e_tag(), Some(etag_of(&data).as_str()));
        assert_same_bytes(&collect_body(get.body).await, &data, key);
        let head = s3.head_object().bucket(BUCKET).key(key).send().await.expect("head");
        assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
        assert_eq!(head.content_length(), Some(size as i64));
    }
    let data = random_bytes(3 * PACKAGE_BYTES + 17);
    put_sse_s3(&s3, "ranges", &data).await;
    let p = PACKAGE_BYTES;
    for (from, to) in [(0, 0), (p - 1, p), (p - 3, 2 * p + 5), (100, 3 * p + 16), (3 * p, 3 * p + 16), (5, 6)] {
        let got = get_range(&s3, "ranges", &format!("bytes={from}-{to}")).await;
        assert_same_bytes(&got, &data[from..=to], &format!("range {from}-{to}"));
    }
    assert_same_bytes(&get_range(&s3, "ranges", "bytes=-10").await, &data[data.len() - 10..], "suffix");
    assert_same_bytes(&get_range(&s3, "ranges", &format!("bytes={}-", 2 * p + 1)).await, &data[2 * p + 1..], "open");
    let listed = s3.list_objects_v2().bucket(BUCKET).prefix("ranges").send().await.expect("list");
    assert_eq!(listed.contents()[0].size(), Some(data.len() as i64), "listing shows the plaintext size");
    let versions = s3.list_object_versions().bucket(BUCKET).prefix("ranges").send().await.expect("list versions");
    assert_eq!(versions.versions()[0].size(), Some(data.len() as i64), "so does the versions listing");

    // The local master key sits beside the drives, private, and survives a restart.
    let key_file = server.dirs()[0].parent().expect("drives dir").join("kms-master.key");
    assert_eq!(fs::metadata(&key_file).expect("master key file").permissions().mode() & 0o777, 0o600);
    let mut server = server;
    server.restart();
    let s3 = server.client();
    assert_same_bytes(&get_bytes(&s3, BUCKET, "ranges").await, &data, "after restart");
}

#[tokio::test]
async fn drives_hold_no_plaintext_of_encrypted_objects() {
    let (server, s3) = tls_server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "control-inline", &marked(CONTROL_MARKER, 4096)).await;
    put_bytes(&s3, BUCKET, "control-shards", &marked(CONTROL_MARKER, 2 * MIB)).await;
    put_sse_s3(&s3, "secret-inline", &marked(SECRET_MARKER, 4096)).await;
    put_sse_s3(&s3, "secret-shards", &marked(SECRET_MARKER, 2 * MIB)).await;
    let kms = s3
        .put_object()
        .bucket(BUCKET)
        .key("secret-kms")
        .body(ByteStream::from(marked(SECRET_MARKER, 300 * 1024)))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await
        .expect("SSE-KMS put");
    assert_eq!(kms.ssekms_key_id(), Some("sovereign-s3"));
    let (key, key_md5) = customer_key(9);
    s3.put_object()
        .bucket(BUCKET)
        .key("secret-c")
        .body(ByteStream::from(marked(SECRET_MARKER, 300 * 1024)))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("SSE-C put");
    // Drives holding parity shards of the control objects have no plaintext of them: the
    // search must find it on the drives holding data shards.
    assert!(server.dirs().iter().any(|d| found_under(d, CONTROL_MARKER)), "the search finds stored plaintext");
    for drive in server.dirs() {
        assert!(!found_under(drive, SECRET_MARKER), "plaintext of an encrypted object on {}", drive.display());
    }
    assert!(!server.log().as_bytes().windows(SECRET_MARKER.len()).any(|w| w == SECRET_MARKER));
}

/// An SSE-C key and its MD5, both base64.
fn customer_key(seed: u8) -> (String, String) {
    let key = [seed; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    (b64.encode(key), b64.encode(Md5::digest(key)))
}

#[tokio::test]
async fn sse_c_needs_the_right_key() {
    let (_server, s3) = tls_server_with_bucket(4).await;
    let data = random_bytes(200 * 1024);
    let (key, key_md5) = customer_key(1);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("c")
        .body(ByteStream::from(data.clone()))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("SSE-C put");
    assert_eq!(put.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(put.sse_customer_key_md5(), Some(key_md5.as_str()));
    assert_eq!(put.server_side_encryption(), None);
    assert_ne!(put.e_tag(), Some(etag_of(&data).as_str()), "SSE-C ETags are not the plaintext MD5");
    let get = s3
        .get_object()
        .bucket(BUCKET)
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .range("bytes=70000-140000")
        .send()
        .await
        .expect("SSE-C get");
    assert_eq!(get.sse_customer_key_md5(), Some(key_md5.as_str()));
    assert_same_bytes(&collect_body(get.body).await, &data[70000..=140000], "SSE-C range");
    let (wrong, wrong_md5) = customer_key(2);
    let get = s3
        .get_object()
        .bucket(BUCKET)
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&wrong)
        .sse_customer_key_md5(&wrong_md5)
        .send()
        .await;
    assert_s3_error(get, 403, &["AccessDenied"]);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&wrong)
        .sse_customer_key_md5(&wrong_md5)
        .send()
        .await;
    assert_s3_error(head, 403, &[]);
    assert_s3_error(s3.get_object().bucket(BUCKET).key("c").send().await, 400, &["InvalidRequest"]);
    let bad_md5 = s3
        .put_object()
        .bucket(BUCKET)
        .key("c2")
        .body(ByteStream::from_static(b"x"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&wrong_md5)
        .send()
        .await;
    assert_s3_error(bad_md5, 400, &["InvalidArgument"]);
}

#[tokio::test]
async fn copy_object_moves_between_modes() {
    let (_server, s3) = tls_server_with_bucket(4).await;
    let data = random_bytes(150 * 1024);
    put_bytes(&s3, BUCKET, "plain", &data).await;
    let (key, key_md5) = customer_key(5);
    let to_c = s3
        .copy_object()
        .bucket(BUCKET)
        .key("as-c")
        .copy_source(format!("{BUCKET}/plain"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("copy plain -> SSE-C");
    assert_eq!(to_c.sse_customer_algorithm(), Some("AES256"));
    let to_kms = s3
        .copy_object()
        .bucket(BUCKET)
        .key("as-kms")
        .copy_source(format!("{BUCKET}/as-c"))
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key)
        .copy_source_sse_customer_key_md5(&key_md5)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await
        .expect("copy SSE-C -> SSE-KMS");
    assert_eq!(to_kms.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    let to_plain = s3.copy_object().bucket(BUCKET).key("as-plain").copy_source(format!("{BUCKET}/as-kms")).send().await;
    to_plain.expect("copy SSE-KMS -> plaintext");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "as-kms").await, &data, "SSE-KMS copy");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "as-plain").await, &data, "plaintext copy");
    let head = s3.head_object().bucket(BUCKET).key("as-plain").send().await.expect("head");
    assert_eq!(head.server_side_encryption(), None);
    let unknown = s3
        .put_object()
        .bucket(BUCKET)
        .key("unknown-key")
        .body(ByteStream::from_static(b"x"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("no-such-key")
        .send()
        .await;
    assert_s3_error(unknown, 400, &["KMS.NotFoundException"]);
}

#[tokio::test]
async fn upload_part_copy_from_an_encrypted_source_copies_its_plaintext() {
    let (_server, s3) = server_with_bucket(4).await;
    let data = random_bytes(300 * 1024);
    put_sse_s3(&s3, "source", &data).await;
    let upload_id = create_multipart_upload(&s3, BUCKET, "assembled").await;
    let part = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("assembled")
        .upload_id(&upload_id)
        .part_number(1)
        .copy_source(format!("{BUCKET}/source"))
        .copy_source_range("bytes=70000-307199")
        .send()
        .await
        .expect("part copy");
    let etag = part.copy_part_result().and_then(|r| r.e_tag()).expect("ETag").to_owned();
    let parts = vec![CompletedPart::builder().part_number(1).e_tag(etag).build()];
    let upload = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    let complete = s3.complete_multipart_upload().bucket(BUCKET).key("assembled").upload_id(&upload_id);
    complete.multipart_upload(upload).send().await.expect("complete");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "assembled").await, &data[70000..], "copied plaintext");
}

/// What AWS answers to SSE-C headers on a connection without TLS.
const SSE_C_NEEDS_TLS: &str =
    "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.";

fn assert_needs_tls(error: S3Error, what: &str) {
    assert_eq!(error.message.as_deref(), Some(SSE_C_NEEDS_TLS), "{what}");
}

#[tokio::test]
async fn sse_c_over_plain_http_is_refused_and_nothing_is_written() {
    let (_server, s3) = server_with_bucket(4).await;
    let data = random_bytes(1000);
    put_bytes(&s3, BUCKET, "plain", &data).await;
    let (key, key_md5) = customer_key(3);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("c")
        .body(ByteStream::from(data.clone()))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_needs_tls(assert_s3_error(put, 400, &["InvalidRequest"]), "PutObject");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("c").send().await, 404, &[]);
    let get = s3
        .get_object()
        .bucket(BUCKET)
        .key("plain")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_needs_tls(assert_s3_error(get, 400, &["InvalidRequest"]), "GetObject");
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("plain")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_s3_error(head, 400, &[]);
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/plain"))
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key)
        .copy_source_sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_needs_tls(assert_s3_error(copy, 400, &["InvalidRequest"]), "CopyObject source");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("copied").send().await, 404, &[]);
    let create = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mpu")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_needs_tls(assert_s3_error(create, 400, &["InvalidRequest"]), "CreateMultipartUpload");
    let uploads = s3.list_multipart_uploads().bucket(BUCKET).send().await.expect("list uploads");
    assert!(uploads.uploads().is_empty(), "a refused upload was created: {uploads:?}");
    let upload_id = create_multipart_upload(&s3, BUCKET, "mpu").await;
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key("mpu")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_needs_tls(assert_s3_error(part, 400, &["InvalidRequest"]), "UploadPart");
    let parts = s3.list_parts().bucket(BUCKET).key("mpu").upload_id(&upload_id).send().await.expect("list parts");
    assert!(parts.parts().is_empty(), "a refused part was stored: {parts:?}");
}

/// A bucket default-encryption rule.
fn default_rule(
    algorithm: ServerSideEncryption,
    key: Option<&str>,
    bucket_key: bool,
) -> ServerSideEncryptionConfiguration {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(algorithm)
        .set_kms_master_key_id(key.map(str::to_owned))
        .build()
        .expect("default");
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(bucket_key)
        .build();
    ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("configuration")
}

async fn set_default(s3: &Client, rule: ServerSideEncryptionConfiguration) {
    let put = s3.put_bucket_encryption().bucket(BUCKET).server_side_encryption_configuration(rule);
    put.send().await.expect("put bucket encryption");
}

/// CompleteMultipartUpload of parts 1..=n with these ETags.
fn completion(s3: &Client, key: &str, upload_id: &str, etags: &[String]) -> CompleteMultipartUploadFluentBuilder {
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| CompletedPart::builder().part_number(i as i32 + 1).e_tag(etag).build())
        .collect();
    let upload = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    s3.complete_multipart_upload().bucket(BUCKET).key(key).upload_id(upload_id).multipart_upload(upload)
}

async fn complete(s3: &Client, key: &str, upload_id: &str, etags: &[String]) -> String {
    let done = completion(s3, key, upload_id, etags).send().await.unwrap_or_else(|e| panic!("complete {key}: {e:?}"));
    done.e_tag().expect("ETag").to_owned()
}

#[tokio::test]
async fn bucket_default_encryption_seals_writes_without_headers() {
    let (server, s3) = server_with_bucket(4).await;
    let missing = s3.get_bucket_encryption().bucket(BUCKET).send().await;
    assert_s3_error(missing, 404, &["ServerSideEncryptionConfigurationNotFoundError"]);
    let data = marked(SECRET_MARKER, 200 * 1024);
    put_bytes(&s3, BUCKET, "before", &marked(CONTROL_MARKER, 200 * 1024)).await;

    set_default(&s3, default_rule(ServerSideEncryption::Aes256, None, false)).await;
    let got = s3.get_bucket_encryption().bucket(BUCKET).send().await.expect("get bucket encryption");
    let rule = &got.server_side_encryption_configuration().expect("configuration").rules()[0];
    let default = rule.apply_server_side_encryption_by_default().expect("default");
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::Aes256);
    let put = put_bytes(&s3, BUCKET, "s3-default", &data).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let head = s3.head_object().bucket(BUCKET).key("s3-default").send().await.expect("head");
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "s3-default").await, &data, "SSE-S3 by default");
    let copy = s3.copy_object().bucket(BUCKET).key("copied").copy_source(format!("{BUCKET}/before")).send().await;
    assert_eq!(copy.expect("copy").server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let create = s3.create_multipart_upload().bucket(BUCKET).key("mpu").send().await.expect("create");
    assert_eq!(create.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let etag = upload_part(&s3, BUCKET, "mpu", create.upload_id().expect("id"), 1, &data).await;
    complete(&s3, "mpu", create.upload_id().expect("id"), &[etag]).await;
    let head = s3.head_object().bucket(BUCKET).key("mpu").send().await.expect("head");
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "mpu").await, &data, "multipart by default");

    set_default(&s3, default_rule(ServerSideEncryption::AwsKms, Some("sovereign-s3"), true)).await;
    let put = put_bytes(&s3, BUCKET, "kms-default", &data).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(put.ssekms_key_id(), Some("sovereign-s3"));
    assert_eq!(put.bucket_key_enabled(), Some(true));
    let explicit = s3
        .put_object()
        .bucket(BUCKET)
        .key("explicit")
        .body(ByteStream::from(data.clone()))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .expect("put with headers");
    assert_eq!(explicit.server_side_encryption(), Some(&ServerSideEncryption::Aes256), "headers win");

    // As on AWS, the key is not checked when the default is set, but every write under it fails.
    set_default(&s3, default_rule(ServerSideEncryption::AwsKms, Some("no-such-key"), false)).await;
    let put = s3.put_object().bucket(BUCKET).key("unknown-key").body(ByteStream::from_static(b"x")).send().await;
    assert_s3_error(put, 400, &["KMS.NotFoundException"]);
    assert_s3_error(s3.head_object().bucket(BUCKET).key("unknown-key").send().await, 404, &[]);

    let unknown = s3.put_bucket_encryption().bucket(BUCKET).server_side_encryption_configuration(default_rule(
        ServerSideEncryption::from("AES128"),
        None,
        false,
    ));
    assert_s3_error(unknown.send().await, 400, &["MalformedXML"]);
    let key_with_s3 = s3.put_bucket_encryption().bucket(BUCKET).server_side_encryption_configuration(default_rule(
        ServerSideEncryption::Aes256,
        Some("sovereign-s3"),
        false,
    ));
    assert_s3_error(key_with_s3.send().await, 400, &["InvalidArgument"]);
    let body = "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>";
    let malformed = server.signed_curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/xml",
        "-H",
        &format!("Content-MD5: {}", content_md5(body.as_bytes())),
        "--data-binary",
        body,
        &format!("{}/{BUCKET}?encryption=", server.url()),
    ]);
    malformed.assert_error(400, "MalformedXML");

    s3.delete_bucket_encryption().bucket(BUCKET).send().await.expect("delete bucket encryption");
    let missing = s3.get_bucket_encryption().bucket(BUCKET).send().await;
    assert_s3_error(missing, 404, &["ServerSideEncryptionConfigurationNotFoundError"]);
    let plain = put_bytes(&s3, BUCKET, "after", b"no default any more").await;
    assert_eq!(plain.server_side_encryption(), None);
    assert!(server.dirs().iter().any(|d| found_under(d, CONTROL_MARKER)), "the search finds stored plaintext");
    for drive in server.dirs() {
        assert!(!found_under(drive, SECRET_MARKER), "plaintext of a default-encrypted object on {}", drive.display());
    }
}

/// How a multipart test upload is sealed.
#[derive(Debug, Clone)]
enum Mode {
    S3,
    Kms,
    /// SSE-C with this key and MD5 (base64).
    Customer(String, String),
}

macro_rules! with_customer_key {
    ($request:expr, $mode:expr) => {
        match $mode {
            Mode::Customer(key, md5) => {
                $request.sse_customer_algorithm("AES256").sse_customer_key(key).sse_customer_key_md5(md5)
            }
            _ => $request,
        }
    };
}

/// Random bytes with [`SECRET_MARKER`] at the start of every 4 KiB, so that a search of the
/// drives finds any of them stored in the clear.
fn secret_part(len: usize) -> Vec<u8> {
    let mut data = random_bytes(len);
    for chunk in data.chunks_mut(4096).filter(|c| c.len() >= SECRET_MARKER.len()) {
        chunk[..SECRET_MARKER.len()].copy_from_slice(SECRET_MARKER);
    }
    data
}

/// A three-part upload in `mode`, parts uploaded in parallel and out of order, part 2 copied
/// from `copy_from` (a plaintext object, `source_key` for an SSE-C one); returns the plaintext
/// and the object's ETag.
async fn encrypted_multipart(
    s3: &Client,
    key: &str,
    mode: &Mode,
    copy_from: (&str, Option<&Mode>),
    part2: &[u8],
) -> (Vec<u8>, String) {
    let create = s3.create_multipart_upload().bucket(BUCKET).key(key);
    let create = match mode {
        Mode::S3 => create.server_side_encryption(ServerSideEncryption::Aes256),
        Mode::Kms => create.server_side_encryption(ServerSideEncryption::AwsKms),
        Mode::Customer(..) => create,
    };
    let create = with_customer_key!(create, mode).send().await.expect("create");
    match mode {
        Mode::S3 => assert_eq!(create.server_side_encryption(), Some(&ServerSideEncryption::Aes256)),
        Mode::Kms => assert_eq!(create.ssekms_key_id(), Some("sovereign-s3")),
        Mode::Customer(_, md5) => assert_eq!(create.sse_customer_key_md5(), Some(md5.as_str())),
    }
    let upload_id = create.upload_id().expect("upload id").to_owned();
    let part1 = secret_part(MIN_PART_SIZE_BYTES + 17);
    let part3 = secret_part(300 * 1024 + 5);
    let send = |number: i32, data: Vec<u8>| {
        let request = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .content_md5(content_md5(&data))
            .body(ByteStream::from(data));
        with_customer_key!(request, mode).send()
    };
    // Part 3 first, then 1, concurrently with the copy of part 2.
    let copy = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .part_number(2)
        .copy_source(format!("{BUCKET}/{}", copy_from.0));
    let copy = match copy_from.1 {
        Some(Mode::Customer(k, md5)) => copy
            .copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key(k)
            .copy_source_sse_customer_key_md5(md5),
        _ => copy,
    };
    let (third, first, second) =
        tokio::join!(send(3, part3.clone()), send(1, part1.clone()), with_customer_key!(copy, mode).send());
    let (third, first, second) = (third.expect("part 3"), first.expect("part 1"), second.expect("part 2 copy"));
    if let Mode::S3 = mode {
        assert_eq!(first.e_tag(), Some(etag_of(&part1).as_str()), "SSE-S3 parts report the plaintext MD5");
    }
    if let Mode::Customer(_, md5) = mode {
        assert_eq!(first.sse_customer_key_md5(), Some(md5.as_str()));
    }
    let parts = s3.list_parts().bucket(BUCKET).key(key).upload_id(&upload_id).send().await.expect("list parts");
    let sizes: Vec<i64> = parts.parts().iter().map(|p| p.size().unwrap_or_default()).collect();
    assert_eq!(sizes, [part1.len() as i64, part2.len() as i64, part3.len() as i64], "ListParts shows plaintext sizes");
    let etags = [first.e_tag(), second.copy_part_result().and_then(|r| r.e_tag()), third.e_tag()]
        .map(|e| e.expect("part ETag").to_owned());
    let etag = complete(s3, key, &upload_id, &etags).await;
    ([part1, part2.to_vec(), part3].concat(), etag)
}

#[tokio::test]
async fn multipart_uploads_are_sealed_in_every_mode() {
    let (server, s3) = tls_server_with_bucket(4).await;
    let plain_source = random_bytes(MIN_PART_SIZE_BYTES + 100_000);
    put_bytes(&s3, BUCKET, "plain-source", &plain_source).await;
    let (c_key, c_md5) = customer_key(11);
    let customer = Mode::Customer(c_key, c_md5);
    let (src_key, src_md5) = customer_key(12);
    let c_source_mode = Mode::Customer(src_key.clone(), src_md5.clone());
    let c_source = secret_part(MIN_PART_SIZE_BYTES + 3);
    s3.put_object()
        .bucket(BUCKET)
        .key("c-source")
        .body(ByteStream::from(c_source.clone()))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&src_key)
        .sse_customer_key_md5(&src_md5)
        .send()
        .await
        .expect("SSE-C source");
    let cases = [
        ("mpu-s3", Mode::S3, ("plain-source", None), &plain_source),
        ("mpu-kms", Mode::Kms, ("c-source", Some(&c_source_mode)), &c_source),
        ("mpu-c", customer.clone(), ("plain-source", None), &plain_source),
    ];
    for (key, mode, copy_from, part2) in cases {
        let (data, etag) = encrypted_multipart(&s3, key, &mode, copy_from, part2).await;
        let parts: Vec<&[u8]> = vec![
            &data[..MIN_PART_SIZE_BYTES + 17],
            &data[MIN_PART_SIZE_BYTES + 17..MIN_PART_SIZE_BYTES + 17 + part2.len()],
            &data[MIN_PART_SIZE_BYTES + 17 + part2.len()..],
        ];
        match mode {
            Mode::S3 => assert_eq!(etag, multipart_etag(&parts), "{key}: SSE-S3 multipart ETag as on AWS"),
            _ => assert_ne!(etag, multipart_etag(&parts), "{key}: not derived from the plaintext"),
        }
        let get = with_customer_key!(s3.get_object().bucket(BUCKET).key(key), &mode).send().await.expect("get");
        assert_eq!(get.content_length(), Some(data.len() as i64), "{key}");
        assert_eq!(get.e_tag(), Some(etag.as_str()), "{key}");
        assert_same_bytes(&collect_body(get.body).await, &data, key);
        let head = with_customer_key!(s3.head_object().bucket(BUCKET).key(key), &mode).send().await.expect("head");
        assert_eq!(head.content_length(), Some(data.len() as i64), "{key}");
        match &mode {
            Mode::S3 => assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256)),
            Mode::Kms => assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms)),
            Mode::Customer(..) => assert_eq!(head.sse_customer_algorithm(), Some("AES256")),
        }
        let boundary = parts[0].len();
        let second_end = boundary + parts[1].len();
        for (from, to) in
            [(boundary - 100, boundary + 100), (boundary - 70_000, second_end + 70_000), (boundary, boundary)]
        {
            let request = s3.get_object().bucket(BUCKET).key(key).range(format!("bytes={from}-{to}"));
            let got = with_customer_key!(request, &mode).send().await.expect("range get");
            assert_same_bytes(&collect_body(got.body).await, &data[from..=to], &format!("{key} {from}-{to}"));
        }
        let request = s3.get_object().bucket(BUCKET).key(key).part_number(2);
        let got = with_customer_key!(request, &mode).send().await.expect("part 2");
        assert_eq!(got.parts_count(), Some(3));
        assert_same_bytes(&collect_body(got.body).await, parts[1], &format!("{key} part 2"));
    }

    // SSE-C uploads need the upload's key on every part: another key is 403, none is 400.
    let create = with_customer_key!(s3.create_multipart_upload().bucket(BUCKET).key("keyed"), &customer);
    let upload_id = create.send().await.expect("create").upload_id().expect("id").to_owned();
    let part = || s3.upload_part().bucket(BUCKET).key("keyed").upload_id(&upload_id).part_number(1);
    let (wrong, wrong_md5) = customer_key(13);
    let with_wrong = part()
        .body(ByteStream::from_static(b"x"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&wrong)
        .sse_customer_key_md5(&wrong_md5);
    assert_s3_error(with_wrong.send().await, 403, &["AccessDenied"]);
    assert_s3_error(part().body(ByteStream::from_static(b"x")).send().await, 400, &["InvalidRequest"]);
    assert_s3_error(s3.get_object().bucket(BUCKET).key("mpu-c").send().await, 400, &["InvalidRequest"]);

    put_bytes(&s3, BUCKET, "control", &marked(CONTROL_MARKER, 2 * MIB)).await;
    assert!(server.dirs().iter().any(|d| found_under(d, CONTROL_MARKER)), "the search finds stored plaintext");
    for drive in server.dirs() {
        assert!(!found_under(drive, SECRET_MARKER), "plaintext of an encrypted part on {}", drive.display());
    }
}

/// The 5 MiB minimum of every part but the last is judged on the plaintext the client sent, as
/// on AWS, not on the sealed bytes stored (which are up to 1,312 bytes longer).
#[tokio::test]
async fn a_sealed_part_short_of_5_mib_of_plaintext_is_too_small() {
    let (_server, s3) = server_with_bucket(4).await;
    let key = "short-part";
    let create =
        s3.create_multipart_upload().bucket(BUCKET).key(key).server_side_encryption(ServerSideEncryption::Aes256);
    let upload_id = create.send().await.expect("create").upload_id().expect("upload id").to_owned();
    let mut etags = Vec::new();
    for (number, data) in [(1, random_bytes(MIN_PART_SIZE_BYTES - 100)), (2, random_bytes(10))] {
        let part = s3.upload_part().bucket(BUCKET).key(key).upload_id(&upload_id).part_number(number);
        let part = part.body(ByteStream::from(data)).send().await.expect("upload part");
        etags.push(part.e_tag().expect("part ETag").to_owned());
    }
    assert_s3_error(completion(&s3, key, &upload_id, &etags).send().await, 400, &["EntityTooSmall"]);
    assert_s3_error(s3.head_object().bucket(BUCKET).key(key).send().await, 404, &[]);
}
