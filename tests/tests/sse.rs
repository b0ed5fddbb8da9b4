//! Server-side encryption with the local KMS (the embedded default): SSE-S3 and SSE-KMS round
//! trips with the headers AWS returns, range reads across packages, CopyObject between modes,
//! SSE-C, and proof that the drives hold no plaintext. Tampering the bitrot hash cannot see
//! (data resealed through the object layer) is tested in gateway/src/sse/read.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
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
    let (server, s3) = server_with_bucket(4).await;
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
    let (_server, s3) = server_with_bucket(4).await;
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
    let (_server, s3) = server_with_bucket(4).await;
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
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
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
