//! Issue 15: the core S3 behaviours where real clients and AWS disagreed with this server, each
//! driven end to end through aws-sdk-s3, or through boto3 and curl where the request is one the
//! Rust SDK cannot send.

use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use sovereign_e2e::*;

/// A CompleteMultipartUpload body from (part number, ETag) pairs.
fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    let parts =
        parts.iter().map(|(number, etag)| CompletedPart::builder().part_number(*number).e_tag(*etag).build()).collect();
    CompletedMultipartUpload::builder().set_parts(Some(parts)).build()
}

async fn complete(
    s3: &Client,
    key: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    s3.complete_multipart_upload().bucket(BUCKET).key(key).upload_id(id).multipart_upload(completed(parts)).send().await
}

/// Deletes every object of [`BUCKET`] and then the bucket: fails when anything (an upload, a
/// part, a stray version) was left behind.
async fn empty_and_delete_bucket(s3: &Client) {
    for key in list_keys(s3, BUCKET).await {
        s3.delete_object().bucket(BUCKET).key(&key).send().await.expect("delete object");
    }
    s3.delete_bucket().bucket(BUCKET).send().await.expect("bucket left empty and deletable");
}

#[tokio::test]
async fn a_repeated_complete_answers_the_same_etag() {
    let (_server, s3) = server_with_bucket(4).await;
    let id = create_multipart_upload(&s3, BUCKET, "k").await;
    let (first, last) = (random_bytes(MIN_PART_SIZE_BYTES), random_bytes(100));
    let etag1 = upload_part(&s3, BUCKET, "k", &id, 1, &first).await;
    let etag2 = upload_part(&s3, BUCKET, "k", &id, 2, &last).await;
    let parts = [(1, etag1.as_str()), (2, etag2.as_str())];
    let done = complete(&s3, "k", &id, &parts).await.expect("complete");
    // The SDK retries a Complete whose answer was lost: the retry must not look like a failure.
    let again = complete(&s3, "k", &id, &parts).await.expect("repeated complete");
    assert_eq!(again.e_tag(), done.e_tag());
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&first, &last]).as_str()));
    // Another part list is not the completed upload.
    assert_s3_error(complete(&s3, "k", &id, &parts[..1]).await, 404, &["NoSuchUpload"]);
    // Nor is another upload id.
    let other = "0190c3f2-7c2e-7000-8000-000000000000";
    assert_s3_error(complete(&s3, "k", other, &parts).await, 404, &["NoSuchUpload"]);
    assert_same_bytes(&get_bytes(&s3, BUCKET, "k").await, &[first, last].concat(), "object");
}

/// Uploads part `number` with curl, throttled so that it takes several seconds, and returns
/// the thread that yields its ETag.
fn slow_part_upload(server: &Server, key: &str, id: &str, number: i32, data: &[u8]) -> std::thread::JoinHandle<String> {
    let file = tempfile::NamedTempFile::new().expect("body file");
    std::fs::write(file.path(), data).expect("write body file");
    let url = format!("{}/{BUCKET}/{key}?partNumber={number}&uploadId={id}", server.url());
    let path = file.path().to_string_lossy().into_owned();
    std::thread::spawn(move || {
        let _keep = file;
        let mut args = signed_curl_args();
        args.extend(["--limit-rate", "1M", "-X", "PUT", "-T", &path, &url].map(str::to_owned));
        let reply = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(reply.status, 200, "slow part upload: {}", reply.text());
        reply.header("etag").expect("part ETag").to_owned()
    })
}

#[tokio::test]
async fn a_part_uploaded_twice_at_once_is_the_last_to_finish() {
    let (server, s3) = server_with_bucket(4).await;
    let id = create_multipart_upload(&s3, BUCKET, "k").await;
    let (slow, fast) = (random_bytes(MIN_PART_SIZE_BYTES), random_bytes(MIN_PART_SIZE_BYTES));
    let slow_upload = slow_part_upload(&server, "k", &id, 1, &slow);
    let fast_etag = upload_part(&s3, BUCKET, "k", &id, 1, &fast).await;
    assert!(!slow_upload.is_finished(), "the throttled upload must finish after the fast one");
    let slow_etag =
        tokio::task::spawn_blocking(move || slow_upload.join().expect("slow upload")).await.expect("join slow upload");
    assert_eq!(slow_etag, etag_of(&slow));
    assert_ne!(slow_etag, fast_etag);
    let listed = s3.list_parts().bucket(BUCKET).key("k").upload_id(&id).send().await.expect("list parts");
    let listed: Vec<_> = listed.parts().iter().map(|p| (p.part_number(), p.e_tag())).collect();
    assert_eq!(listed, [(Some(1), Some(slow_etag.as_str()))]);
    assert_s3_error(complete(&s3, "k", &id, &[(1, &fast_etag)]).await, 400, &["InvalidPart"]);
    complete(&s3, "k", &id, &[(1, &slow_etag)]).await.expect("complete with the last part to finish");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "k").await, &slow, "object");
    empty_and_delete_bucket(&s3).await;
}

#[tokio::test]
async fn a_completed_object_has_the_etag_and_checksums_of_the_parts_named() {
    let (_server, s3) = server_with_bucket(4).await;
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("create upload");
    let id = upload.upload_id().expect("upload id").to_owned();
    let send_part = |data: Vec<u8>| {
        s3.upload_part()
            .bucket(BUCKET)
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(data))
            .send()
    };
    let (old, new) = (random_bytes(1000), random_bytes(2000));
    let old_part = send_part(old).await.expect("first upload of part 1");
    let new_part = send_part(new.clone()).await.expect("second upload of part 1");
    let named = |etag: &str, sha256: &str| {
        CompletedMultipartUpload::builder()
            .parts(CompletedPart::builder().part_number(1).e_tag(etag).checksum_sha256(sha256).build())
            .build()
    };
    let (new_etag, new_sum) = (new_part.e_tag().expect("ETag"), new_part.checksum_sha256().expect("SHA256"));
    let (old_etag, old_sum) = (old_part.e_tag().expect("ETag"), old_part.checksum_sha256().expect("SHA256"));
    let finish =
        |parts| s3.complete_multipart_upload().bucket(BUCKET).key("k").upload_id(&id).multipart_upload(parts).send();
    // The replaced part, or the new part with the old part's checksum, is not a part of the upload.
    assert_s3_error(finish(named(old_etag, old_sum)).await, 400, &["InvalidPart"]);
    assert_s3_error(finish(named(new_etag, old_sum)).await, 400, &["InvalidPart"]);
    let done = finish(named(new_etag, new_sum)).await.expect("complete");
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&new]).as_str()));
    let composite = composite_sha256(&[new_sum]);
    assert_eq!(done.checksum_sha256(), Some(composite.as_str()));
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(head.checksum_sha256(), Some(composite.as_str()));
}

/// S3's composite checksum of parts: the digest of the concatenated part digests, `-N`.
fn composite_sha256(parts: &[&str]) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut joined = Vec::new();
    for part in parts {
        joined.extend(engine.decode(part).expect("base64 part checksum"));
    }
    let out = Command::new("python3")
        .args(["-c", "import hashlib,sys,base64; print(base64.b64encode(hashlib.sha256(bytes.fromhex(sys.argv[1])).digest()).decode())"])
        .arg(hex::encode(&joined))
        .output()
        .expect("python3");
    format!("{}-{}", String::from_utf8_lossy(&out.stdout).trim(), parts.len())
}

#[tokio::test]
async fn a_part_number_past_the_part_count_is_an_invalid_part() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "simple", b"data").await;
    let id = create_multipart_upload(&s3, BUCKET, "multi").await;
    let (first, last) = (random_bytes(MIN_PART_SIZE_BYTES), random_bytes(10));
    let etag1 = upload_part(&s3, BUCKET, "multi", &id, 1, &first).await;
    let etag2 = upload_part(&s3, BUCKET, "multi", &id, 2, &last).await;
    complete(&s3, "multi", &id, &[(1, &etag1), (2, &etag2)]).await.expect("complete");
    for (key, past) in [("simple", 2), ("multi", 3)] {
        assert_s3_error(s3.get_object().bucket(BUCKET).key(key).part_number(past).send().await, 400, &["InvalidPart"]);
        assert_s3_error(s3.head_object().bucket(BUCKET).key(key).part_number(past).send().await, 400, &[]);
    }
    let part2 = s3.get_object().bucket(BUCKET).key("multi").part_number(2).send().await.expect("part 2");
    assert_eq!(part2.parts_count(), Some(2));
    assert_same_bytes(&collect_body(part2.body).await, &last, "part 2");
}

#[tokio::test]
async fn conditional_completes_are_atomic() {
    let (_server, s3) = server_with_bucket(4).await;
    let finish =
        |id: String, parts: Vec<(i32, String)>, if_none_match: Option<&'static str>, if_match: Option<String>| {
            let s3 = s3.clone();
            async move {
                let parts: Vec<(i32, &str)> = parts.iter().map(|(n, e)| (*n, e.as_str())).collect();
                s3.complete_multipart_upload()
                    .bucket(BUCKET)
                    .key("k")
                    .upload_id(id)
                    .multipart_upload(completed(&parts))
                    .set_if_none_match(if_none_match.map(str::to_owned))
                    .set_if_match(if_match)
                    .send()
                    .await
            }
        };
    let prepare = || async {
        let id = create_multipart_upload(&s3, BUCKET, "k").await;
        let data = random_bytes(100);
        let etag = upload_part(&s3, BUCKET, "k", &id, 1, &data).await;
        (id, vec![(1, etag)], data)
    };
    // Racing If-None-Match completions of the same key: exactly one wins.
    let (a, b) = (prepare().await, prepare().await);
    let (ra, rb) = tokio::join!(
        finish(a.0.clone(), a.1.clone(), Some("*"), None),
        finish(b.0.clone(), b.1.clone(), Some("*"), None)
    );
    assert!(ra.is_ok() != rb.is_ok(), "exactly one If-None-Match completion wins: {ra:?} {rb:?}");
    let (winner, loser) = if ra.is_ok() { (a, b) } else { (b, a) };
    assert_s3_error(if ra.is_ok() { rb } else { ra }, 412, &["PreconditionFailed"]);
    assert_same_bytes(&get_bytes(&s3, BUCKET, "k").await, &winner.2, "object");
    let current = s3.head_object().bucket(BUCKET).key("k").send().await.expect("head");
    let current_etag = current.e_tag().expect("ETag").to_owned();
    // The loser's upload is still there, for an If-Match completion against the winner.
    assert_s3_error(
        finish(loser.0.clone(), loser.1.clone(), None, Some("\"0123\"".into())).await,
        412,
        &["PreconditionFailed"],
    );
    finish(loser.0.clone(), loser.1.clone(), None, Some(current_etag)).await.expect("If-Match completion");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "k").await, &loser.2, "object after If-Match");
}

/// Sends a signed request through tests/raw_request.py: `declared` as its Content-Length ("-"
/// for none), `sent` bytes of body, then a half-close. Returns the status and the error code.
fn raw_request(server: &Server, method: &str, path_and_query: &str, declared: &str, sent: usize) -> (u16, String) {
    let (status, body) = raw_reply(server, method, path_and_query, declared, sent, &[]);
    (status, error_code(&body))
}

/// The `<Code>` of an S3 error body, or "".
fn error_code(body: &str) -> String {
    body.split("<Code>").nth(1).and_then(|rest| rest.split("</Code>").next()).unwrap_or_default().to_owned()
}

/// Like [`raw_request`], with settings of tests/raw_request.py in `env` (`RAW_TIME`,
/// `RAW_SKEW_SECONDS`); returns the status and the body.
fn raw_reply(
    server: &Server,
    method: &str,
    path_and_query: &str,
    declared: &str,
    sent: usize,
    env: &[(&str, &str)],
) -> (u16, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/raw_request.py");
    let url = format!("{}{path_and_query}", server.url());
    let output = Command::new("python3")
        .args([script, method, &url, declared, &sent.to_string()])
        .envs(env.iter().copied())
        .env("AWS_ACCESS_KEY_ID", ROOT_USER)
        .env("AWS_SECRET_ACCESS_KEY", ROOT_PASSWORD)
        .env("AWS_REGION", REGION)
        .output()
        .expect("run python3");
    assert!(output.status.success(), "raw_request.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status_line, body) = text.split_once('\n').unwrap_or((&text, ""));
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.strip_suffix('\n').unwrap_or(body).to_owned())
}

#[tokio::test]
async fn xml_bodies_too_large_or_cut_short_are_client_errors() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"data").await;
    let id = create_multipart_upload(&s3, BUCKET, "k").await;
    let targets = [
        ("POST", format!("/{BUCKET}?delete")),
        ("POST", format!("/{BUCKET}/k?uploadId={id}")),
        ("PUT", format!("/{BUCKET}/k?tagging")),
    ];
    let too_large = ["MaxMessageLengthExceeded", "MalformedXML", "EntityTooLarge"];
    for (method, target) in &targets {
        for declared in ["5368709120", "9223372036854775808"] {
            let (status, code) = raw_request(&server, method, target, declared, 1024);
            assert!(
                status == 400 && too_large.contains(&code.as_str()),
                "{method} {target} declaring {declared} bytes: HTTP {status} {code}"
            );
        }
        let (status, code) = raw_request(&server, method, target, "2000", 1024);
        assert_eq!((status, code.as_str()), (400, "IncompleteBody"), "{method} {target} cut short");
    }
    // Nothing was changed, and the server still serves (a new client: the old one's pooled
    // connections have outlived the server's header timeout meanwhile).
    let s3 = server.client();
    assert_eq!(get_bytes(&s3, BUCKET, "k").await, b"data");
    let tags = s3.get_object_tagging().bucket(BUCKET).key("k").send().await.expect("tagging");
    assert!(tags.tag_set().is_empty());
}

#[tokio::test]
async fn malformed_or_mismatching_checksums_are_bad_digests() {
    let (_server, s3) = server_with_bucket(4).await;
    let put = || s3.put_object().bucket(BUCKET).key("k").body(ByteStream::from(b"data".to_vec()));
    assert_s3_error(put().checksum_sha256("bad").send().await, 400, &["BadDigest"]);
    assert_s3_error(put().checksum_crc64_nvme("bad").send().await, 400, &["BadDigest"]);
    assert_s3_error(put().checksum_crc32("bad").send().await, 400, &["BadDigest"]);
    assert_s3_error(put().checksum_sha1("AAAA").send().await, 400, &["BadDigest"]);
    assert_s3_error(put().checksum_crc32_c("AAAAAA==").send().await, 400, &["BadDigest"]);
    assert_s3_error(s3.head_object().bucket(BUCKET).key("k").send().await, 404, &[]);
}

#[tokio::test]
async fn a_malformed_presigned_signature_does_not_match() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"data").await;
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).expect("config");
    let presigned = s3.get_object().bucket(BUCKET).key("k").presigned(config).await.expect("presign");
    let uri = presigned.uri().to_owned();
    let (base, signature) = uri.rsplit_once("X-Amz-Signature=").expect("signature parameter");
    assert_eq!(signature.len(), 64);
    for bad in ["bad", "", &signature[..63], &"z".repeat(64)] {
        curl(&[&format!("{base}X-Amz-Signature={bad}")]).assert_error(403, "SignatureDoesNotMatch");
    }
    let ok = curl(&[&uri]);
    assert_eq!((ok.status, ok.body.as_slice()), (200, b"data".as_slice()));
}

#[tokio::test]
async fn tags_are_counted_on_get_and_head_and_parsed_like_a_query_string() {
    let (server, s3) = server_with_bucket(4).await;
    s3.put_object()
        .bucket(BUCKET)
        .key("k")
        .tagging("b=2&&a=&c&d=x+y%2B%26z&")
        .body(ByteStream::from(b"data".to_vec()))
        .send()
        .await
        .expect("put with tags");
    let tags = s3.get_object_tagging().bucket(BUCKET).key("k").send().await.expect("tagging");
    let tags: Vec<_> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("b", "2"), ("a", ""), ("c", ""), ("d", "x y+&z")]);
    let got = s3.get_object().bucket(BUCKET).key("k").send().await.expect("get");
    assert_eq!(got.tag_count(), Some(4));
    let head = server.signed_curl(&["-I", &format!("{}/{BUCKET}/k", server.url())]);
    assert_eq!(head.header("x-amz-tagging-count"), Some("4"), "{:?}", head.headers);
    put_bytes(&s3, BUCKET, "untagged", b"data").await;
    let head = server.signed_curl(&["-I", &format!("{}/{BUCKET}/untagged", server.url())]);
    assert_eq!(head.header("x-amz-tagging-count"), None);
}

#[tokio::test]
async fn list_buckets_pages_by_prefix_region_and_token() {
    let server = Server::start(4);
    let s3 = server.client();
    let names = ["alpha-1", "alpha-2", "alpha-3", "beta-1"];
    for name in names {
        create_bucket(&s3, name).await;
    }
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_buckets()
            .max_buckets(2)
            .prefix("alpha-")
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list buckets page");
        assert_eq!(page.prefix(), Some("alpha-"));
        assert!(page.buckets().len() <= 2);
        listed.extend(page.buckets().iter().filter_map(|b| b.name().map(str::to_owned)));
        match page.continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, ["alpha-1", "alpha-2", "alpha-3"]);
    let here = s3.list_buckets().bucket_region(REGION).send().await.expect("list in this region");
    assert_eq!(here.buckets().len(), names.len());
    assert!(here.continuation_token().is_none());
    let elsewhere = s3.list_buckets().bucket_region("eu-west-3").send().await.expect("list in another region");
    assert!(elsewhere.buckets().is_empty());
    assert_s3_error(s3.list_buckets().max_buckets(0).send().await, 400, &["InvalidArgument"]);
}

#[tokio::test]
async fn an_empty_delimiter_is_not_echoed() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "a/b", b"data").await;
    for query in ["list-type=2&delimiter=", "delimiter=", "uploads&delimiter="] {
        let (status, body) = raw_reply(&server, "GET", &format!("/{BUCKET}?{query}"), "-", 0, &[]);
        assert_eq!(status, 200, "{query}: {body}");
        assert!(!body.contains("<Delimiter>"), "{query}: {body}");
    }
    let listed = s3.list_objects_v2().bucket(BUCKET).delimiter("").send().await.expect("list");
    assert_eq!(listed.delimiter(), None);
    assert_eq!(listed.contents().len(), 1);
}

#[tokio::test]
async fn creating_an_owned_bucket_again_succeeds_in_us_east_1_only() {
    let (_server, s3) = server_with_bucket(4).await;
    s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket of an owned bucket in us-east-1");
    let elsewhere = Server::start_with_args(4, &["--region", "eu-west-3"]);
    let client = Client::from_conf(elsewhere.sdk_config().region(aws_sdk_s3::config::Region::new("eu-west-3")).build());
    let in_region = || {
        client.create_bucket().bucket(BUCKET).create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest3)
                .build(),
        )
    };
    in_region().send().await.expect("create in eu-west-3");
    assert_s3_error(in_region().send().await, 409, &["BucketAlreadyOwnedByYou"]);
}

#[tokio::test]
async fn acls_answer_as_a_bucket_with_acls_disabled() {
    use aws_sdk_s3::types::{
        AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, ObjectOwnership, OwnershipControls,
        OwnershipControlsRule, Permission, Type,
    };
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"data").await;
    let bucket_acl = s3.get_bucket_acl().bucket(BUCKET).send().await.expect("get bucket acl");
    let object_acl = s3.get_object_acl().bucket(BUCKET).key("k").send().await.expect("get object acl");
    for (grants, owner) in [(bucket_acl.grants(), bucket_acl.owner()), (object_acl.grants(), object_acl.owner())] {
        let owner_id = owner.and_then(|o| o.id()).expect("owner id");
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert_eq!(grants[0].permission(), Some(&Permission::FullControl));
        let grantee = grants[0].grantee().expect("grantee");
        assert_eq!((grantee.r#type(), grantee.id()), (&Type::CanonicalUser, Some(owner_id)));
    }
    let owner_id = bucket_acl.owner().and_then(|o| o.id()).expect("owner id").to_owned();

    s3.put_bucket_acl().bucket(BUCKET).acl(BucketCannedAcl::Private).send().await.expect("private bucket acl");
    s3.put_object_acl().bucket(BUCKET).key("k").acl(ObjectCannedAcl::Private).send().await.expect("private acl");
    s3.put_object_acl()
        .bucket(BUCKET)
        .key("k")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .send()
        .await
        .expect("bucket-owner-full-control");
    let policy = |grantee: Grantee, permission: Permission| {
        AccessControlPolicy::builder()
            .owner(aws_sdk_s3::types::Owner::builder().id(&owner_id).build())
            .grants(Grant::builder().grantee(grantee).permission(permission).build())
            .build()
    };
    let owner = || Grantee::builder().r#type(Type::CanonicalUser).id(&owner_id).build().expect("grantee");
    let everyone = || {
        Grantee::builder()
            .r#type(Type::Group)
            .uri("http://acs.amazonaws.com/groups/global/AllUsers")
            .build()
            .expect("grantee")
    };
    s3.put_bucket_acl()
        .bucket(BUCKET)
        .access_control_policy(policy(owner(), Permission::FullControl))
        .send()
        .await
        .expect("the owner's FULL_CONTROL as a policy");
    let refused = &["AccessControlListNotSupported"];
    assert_s3_error(
        s3.put_bucket_acl().bucket(BUCKET).access_control_policy(policy(everyone(), Permission::Read)).send().await,
        400,
        refused,
    );
    assert_s3_error(
        s3.put_object_acl()
            .bucket(BUCKET)
            .key("k")
            .access_control_policy(policy(everyone(), Permission::Read))
            .send()
            .await,
        400,
        refused,
    );
    assert_s3_error(s3.put_bucket_acl().bucket(BUCKET).acl(BucketCannedAcl::PublicRead).send().await, 400, refused);
    assert_s3_error(s3.put_object_acl().bucket(BUCKET).key("k").grant_read("id=someone").send().await, 400, refused);
    assert_s3_error(s3.get_object_acl().bucket(BUCKET).key("missing").send().await, 404, &["NoSuchKey"]);
    assert_s3_error(s3.get_bucket_acl().bucket("no-such-bucket").send().await, 404, &["NoSuchBucket"]);

    assert_s3_error(s3.get_bucket_policy_status().bucket(BUCKET).send().await, 404, &["NoSuchBucketPolicy"]);
    let controls = s3.get_bucket_ownership_controls().bucket(BUCKET).send().await.expect("ownership controls");
    let rules = controls.ownership_controls().map(|c| c.rules().to_vec()).unwrap_or_default();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].object_ownership(), &ObjectOwnership::BucketOwnerEnforced);
    let controls = |ownership: ObjectOwnership| {
        OwnershipControls::builder()
            .rules(OwnershipControlsRule::builder().object_ownership(ownership).build().expect("rule"))
            .build()
            .expect("controls")
    };
    s3.put_bucket_ownership_controls()
        .bucket(BUCKET)
        .ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced))
        .send()
        .await
        .expect("BucketOwnerEnforced");
    // ObjectWriter enables ACLs (tests/tests/acl.rs); back to BucketOwnerEnforced below.
    s3.put_bucket_ownership_controls()
        .bucket(BUCKET)
        .ownership_controls(controls(ObjectOwnership::ObjectWriter))
        .send()
        .await
        .expect("ObjectWriter");
    let controls_now = s3.get_bucket_ownership_controls().bucket(BUCKET).send().await.expect("ownership controls");
    let rules = controls_now.ownership_controls().map(|c| c.rules().to_vec()).unwrap_or_default();
    assert_eq!(rules[0].object_ownership(), &ObjectOwnership::ObjectWriter);
    // DeleteBucketOwnershipControls removes the setting, as on AWS; putting it back restores it.
    s3.delete_bucket_ownership_controls().bucket(BUCKET).send().await.expect("delete ownership controls");
    assert_s3_error(
        s3.get_bucket_ownership_controls().bucket(BUCKET).send().await,
        404,
        &["OwnershipControlsNotFoundError"],
    );
    s3.put_bucket_ownership_controls()
        .bucket(BUCKET)
        .ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced))
        .send()
        .await
        .expect("BucketOwnerEnforced again");
    let controls = s3.get_bucket_ownership_controls().bucket(BUCKET).send().await.expect("ownership controls");
    let rules = controls.ownership_controls().map(|c| c.rules().to_vec()).unwrap_or_default();
    assert_eq!(rules.first().map(|r| r.object_ownership()), Some(&ObjectOwnership::BucketOwnerEnforced));
}

#[tokio::test]
async fn object_attributes_with_parts_page_by_page() {
    use aws_sdk_s3::types::{ObjectAttributes, StorageClass};
    let (_server, s3) = server_with_bucket(4).await;
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("multi")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("create upload");
    let id = upload.upload_id().expect("upload id").to_owned();
    let bodies = [random_bytes(MIN_PART_SIZE_BYTES), random_bytes(MIN_PART_SIZE_BYTES), random_bytes(1000)];
    let mut parts = Vec::new();
    for (index, body) in bodies.iter().enumerate() {
        let number = index as i32 + 1;
        let part = s3
            .upload_part()
            .bucket(BUCKET)
            .key("multi")
            .upload_id(&id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().expect("ETag"))
                .checksum_crc32(part.checksum_crc32().expect("part CRC32"))
                .build(),
        );
    }
    let part_sums: Vec<String> = parts.iter().map(|p| p.checksum_crc32().unwrap_or_default().to_owned()).collect();
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("multi")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect("complete");
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];
    let attributes = |marker: Option<&str>| {
        s3.get_object_attributes()
            .bucket(BUCKET)
            .key("multi")
            .set_object_attributes(Some(all.to_vec()))
            .max_parts(2)
            .set_part_number_marker(marker.map(str::to_owned))
            .send()
    };
    let first = attributes(None).await.expect("attributes");
    let total: usize = bodies.iter().map(Vec::len).sum();
    assert_eq!(first.object_size(), Some(total as i64));
    assert_eq!(first.storage_class(), Some(&StorageClass::Standard));
    // AWS answers GetObjectAttributes' ETag without the quotes of the ETag header.
    assert_eq!(first.e_tag(), done.e_tag().map(|e| e.trim_matches('"')));
    assert_eq!(first.checksum().and_then(|c| c.checksum_crc32()), done.checksum_crc32());
    let page = first.object_parts().expect("object parts");
    assert_eq!((page.total_parts_count(), page.is_truncated(), page.max_parts()), (Some(3), Some(true), Some(2)));
    let listed: Vec<_> = page.parts().iter().map(|p| (p.part_number(), p.size(), p.checksum_crc32())).collect();
    let size = Some(MIN_PART_SIZE_BYTES as i64);
    assert_eq!(listed, [(Some(1), size, Some(part_sums[0].as_str())), (Some(2), size, Some(part_sums[1].as_str()))]);
    let marker = page.next_part_number_marker().expect("next marker").to_owned();
    let second = attributes(Some(&marker)).await.expect("second page");
    let page = second.object_parts().expect("object parts");
    assert_eq!(page.is_truncated(), Some(false));
    let listed: Vec<_> = page.parts().iter().map(|p| (p.part_number(), p.size())).collect();
    assert_eq!(listed, [(Some(3), Some(1000))]);

    // A simple object has no parts section; only what is asked for is answered.
    put_bytes(&s3, BUCKET, "simple", b"data").await;
    let simple = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("simple")
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::ObjectParts)
        .send()
        .await
        .expect("simple attributes");
    assert_eq!(simple.object_size(), Some(4));
    assert!(simple.object_parts().is_none() && simple.e_tag().is_none() && simple.checksum().is_none());
    assert_s3_error(
        s3.get_object_attributes().bucket(BUCKET).key("missing").object_attributes(ObjectAttributes::Etag).send().await,
        404,
        &["NoSuchKey"],
    );
}

#[tokio::test]
async fn the_request_time_comes_from_x_amz_date_or_else_a_signed_date() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"data").await;
    let get = |env: &[(&str, &str)]| raw_reply(&server, "GET", &format!("/{BUCKET}/k"), "-", 0, env);
    let data = (200, "data".to_owned());
    assert_eq!(get(&[]), data);
    assert_eq!(get(&[("RAW_TIME", "date")]), data, "timed by a signed Date alone");
    assert_eq!(get(&[("RAW_TIME", "date+x-amz-date")]), data, "x-amz-date wins over an unsigned Date");
    let (status, body) = get(&[("RAW_TIME", "date"), ("RAW_SKEW_SECONDS", "-3600")]);
    assert_eq!((status, error_code(&body).as_str()), (403, "RequestTimeTooSkewed"), "a Date an hour old");
    // Without a signed time, AWS refuses: "AWS authentication requires a valid Date or
    // x-amz-date header".
    for mode in ["none", "unsigned-date"] {
        let (status, body) = get(&[("RAW_TIME", mode)]);
        assert_eq!((status, error_code(&body).as_str()), (403, "AccessDenied"), "{mode}: {body}");
    }
}

/// boto3's PutObject with `Transfer-Encoding: chunked` added before signing and the
/// `Content-Length` removed before sending: the payload hash is signed, the length unknown.
const BOTO3_CHUNKED_PUT: &str = r#"
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["AWS_REGION"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def add_chunked(request, **kwargs):
    request.headers["Transfer-Encoding"] = "chunked"
def drop_length(request, **kwargs):
    request.headers.pop("Content-Length", None)
    if len(sys.argv) > 3:  # tamper: the body no longer matches its signed SHA-256
        body = request.body.read() if hasattr(request.body, "read") else bytes(request.body)
        request.body = b"tampered" + body[8:]
s3.meta.events.register("before-sign.s3.PutObject", add_chunked)
s3.meta.events.register("before-send.s3.PutObject", drop_length)
body = open(sys.argv[1], "rb").read()
s3.put_object(Bucket=os.environ["BUCKET"], Key=sys.argv[2], Body=body)
"#;

#[tokio::test]
async fn chunked_puts_without_content_length_are_streamed() {
    let (server, s3) = server_with_bucket(4).await;
    let data = random_bytes(3 * MIB + 17);
    let file = tempfile::NamedTempFile::new().expect("body file");
    std::fs::write(file.path(), &data).expect("write body file");
    let path = file.path().to_string_lossy().into_owned();

    // Unsigned payload (curl).
    let url = format!("{}/{BUCKET}/curl", server.url());
    let data_arg = format!("@{path}");
    let reply =
        server.signed_curl(&["-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", &data_arg, &url]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("etag"), Some(etag_of(&data).as_str()));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "curl").await, &data, "curl chunked PUT");

    // Signed payload (boto3), and one whose body does not match its signed hash.
    let boto3 = |key: &str, tamper: bool| {
        Command::new("python3")
            .args(["-c", BOTO3_CHUNKED_PUT, &path, key])
            .args(tamper.then_some("tamper"))
            .env("ENDPOINT", server.url())
            .env("BUCKET", BUCKET)
            .env("AWS_ACCESS_KEY_ID", ROOT_USER)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_PASSWORD)
            .env("AWS_REGION", REGION)
            .output()
            .expect("run python3")
    };
    let put = boto3("boto3", false);
    assert!(put.status.success(), "boto3 chunked put: {}", String::from_utf8_lossy(&put.stderr));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "boto3").await, &data, "boto3 chunked PUT");
    let tampered = boto3("tampered", true);
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(!tampered.status.success() && stderr.contains("XAmzContentSHA256Mismatch"), "tampered body: {stderr}");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("tampered").send().await, 404, &[]);
}

#[tokio::test]
async fn malformed_range_and_date_conditions_are_ignored() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "k", b"0123456789").await;
    for range in ["bytes=abc", "bytes=5-2", "pages=1-2", "bytes=--1"] {
        let got = s3.get_object().bucket(BUCKET).key("k").range(range).send().await;
        let got = got.unwrap_or_else(|e| panic!("GET with Range {range}: {e:?}"));
        assert_eq!(got.content_range(), None, "{range}");
        assert_eq!(collect_body(got.body).await, b"0123456789", "{range}");
        let head = s3.head_object().bucket(BUCKET).key("k").range(range).send().await;
        assert_eq!(head.unwrap_or_else(|e| panic!("HEAD with Range {range}: {e:?}")).content_length(), Some(10));
    }
    let url = format!("{}/{BUCKET}/k", server.url());
    for header in ["If-Modified-Since: not a date", "If-Unmodified-Since: 2024-13-45"] {
        let reply = server.signed_curl(&["-H", header, &url]);
        assert_eq!((reply.status, reply.body.as_slice()), (200, b"0123456789".as_slice()), "{header}");
        let head = server.signed_curl(&["-I", "-H", header, &url]);
        assert_eq!(head.status, 200, "HEAD {header}");
    }
    // A well-formed range is still served, and an unsatisfiable one still refused.
    let part = s3.get_object().bucket(BUCKET).key("k").range("bytes=2-4").send().await.expect("range");
    assert_eq!(collect_body(part.body).await, b"234");
    assert_s3_error(s3.get_object().bucket(BUCKET).key("k").range("bytes=20-30").send().await, 416, &["InvalidRange"]);
}
