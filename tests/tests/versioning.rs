//! Bucket versioning, delete markers, bucket tagging and CORS (issue 16) through aws-sdk-s3,
//! curl and boto3 against a 4-drive (2+2) server.

use std::process::Command;

use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, Delete, MfaDelete,
    ObjectIdentifier, Tag, Tagging, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use sovereign_e2e::*;

/// A listed version or marker: key, version id, is latest, is a delete marker, modified.
type ListedEntry = (String, String, bool, bool, (i64, u32));

async fn set_versioning(s3: &Client, status: BucketVersioningStatus) {
    let configuration = VersioningConfiguration::builder().status(status).build();
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(configuration)
        .send()
        .await
        .expect("put bucket versioning");
}

async fn put_version(s3: &Client, key: &str, data: &[u8]) -> String {
    let output = put_bytes(s3, BUCKET, key, data).await;
    output.version_id().expect("x-amz-version-id on a versioned PUT").to_owned()
}

async fn get_version(s3: &Client, key: &str, version: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(BUCKET).key(key).version_id(version).send().await.expect("get version");
    assert_eq!(got.version_id(), Some(version));
    collect_body(got.body).await
}

/// Every version and delete marker of the bucket, `page` entries at a time:
/// (key, version id, is latest, is a delete marker), in listing order.
async fn all_versions(s3: &Client, page: i32) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let listed = s3
            .list_object_versions()
            .bucket(BUCKET)
            .max_keys(page)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .expect("list object versions");
        let mut entries: Vec<ListedEntry> = Vec::new();
        for v in listed.versions() {
            let key = v.key().expect("key").to_owned();
            let id = v.version_id().expect("version id").to_owned();
            let modified = v.last_modified().map(|t| (t.secs(), t.subsec_nanos())).unwrap_or_default();
            entries.push((key, id, v.is_latest() == Some(true), false, modified));
        }
        for m in listed.delete_markers() {
            let key = m.key().expect("key").to_owned();
            let id = m.version_id().expect("version id").to_owned();
            let modified = m.last_modified().map(|t| (t.secs(), t.subsec_nanos())).unwrap_or_default();
            entries.push((key, id, m.is_latest() == Some(true), true, modified));
        }
        // Versions and markers come in two lists, each in order; merged by key, newest first
        // (a stable sort: versions of the same millisecond keep the server's order).
        entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.4.cmp(&a.4)));
        assert!(entries.len() <= page as usize);
        out.extend(entries.into_iter().map(|(k, id, latest, marker, _)| (k, id, latest, marker)));
        if listed.is_truncated() != Some(true) {
            return out;
        }
        key_marker = listed.next_key_marker().map(str::to_owned);
        version_marker = listed.next_version_id_marker().map(str::to_owned);
    }
}

#[tokio::test]
async fn versioning_configuration() {
    let (_server, s3) = server_with_bucket(4).await;
    let status = s3.get_bucket_versioning().bucket(BUCKET).send().await.expect("get versioning");
    assert_eq!(status.status(), None);
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let status = s3.get_bucket_versioning().bucket(BUCKET).send().await.expect("get versioning");
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));
    set_versioning(&s3, BucketVersioningStatus::Suspended).await;
    let status = s3.get_bucket_versioning().bucket(BUCKET).send().await.expect("get versioning");
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Suspended));

    let mfa = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .mfa_delete(MfaDelete::Enabled)
        .build();
    let refused = s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(mfa).send().await;
    assert_s3_error(refused, 501, &["NotImplemented"]);
    let missing = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    let refused = s3.put_bucket_versioning().bucket("no-such-bucket").versioning_configuration(missing).send().await;
    assert_s3_error(refused, 404, &["NoSuchBucket"]);
}

#[tokio::test]
async fn versions_delete_markers_and_their_answers() {
    let (server, s3) = server_with_bucket(4).await;
    let null_put = put_bytes(&s3, BUCKET, "k", b"unversioned").await;
    assert_eq!(null_put.version_id(), None, "a bucket that never had versioning reports no version");
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let v1 = put_version(&s3, "k", b"one").await;
    let v2 = put_version(&s3, "k", b"two").await;
    assert_ne!(v1, v2);
    assert_eq!(get_bytes(&s3, BUCKET, "k").await, b"two");
    assert_eq!(get_version(&s3, "k", &v1).await, b"one");
    assert_eq!(get_version(&s3, "k", "null").await, b"unversioned");
    let head = s3.head_object().bucket(BUCKET).key("k").version_id(&v1).send().await.expect("head version");
    assert_eq!((head.content_length(), head.version_id()), (Some(3), Some(v1.as_str())));

    // DELETE without an id adds a delete marker; the key then reads as deleted.
    let deleted = s3.delete_object().bucket(BUCKET).key("k").send().await.expect("delete");
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().expect("marker version id").to_owned();
    assert_s3_error(s3.get_object().bucket(BUCKET).key("k").send().await, 404, &["NoSuchKey"]);
    let reply = server.signed_curl(&[&format!("{}/{BUCKET}/k", server.url())]);
    reply.assert_error(404, "NoSuchKey");
    assert_eq!(reply.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(reply.header("x-amz-version-id"), Some(marker.as_str()));
    let head = server.signed_curl(&["--head", &format!("{}/{BUCKET}/k", server.url())]);
    assert_eq!((head.status, head.header("x-amz-delete-marker")), (404, Some("true")));
    // GET of the marker by id: 405.
    let reply = server.signed_curl(&[&format!("{}/{BUCKET}/k?versionId={marker}", server.url())]);
    reply.assert_error(405, "MethodNotAllowed");
    assert_eq!(reply.header("x-amz-delete-marker"), Some("true"));
    assert!(list_keys(&s3, BUCKET).await.is_empty(), "a key whose current version is a marker is not listed");

    let versions = all_versions(&s3, 1000).await;
    let expected = [
        ("k".to_owned(), marker.clone(), true, true),
        ("k".to_owned(), v2.clone(), false, false),
        ("k".to_owned(), v1.clone(), false, false),
        ("k".to_owned(), "null".to_owned(), false, false),
    ];
    assert_eq!(versions, expected);

    // DELETE by id removes exactly that version; the one before becomes current.
    let removed = s3.delete_object().bucket(BUCKET).key("k").version_id(&marker).send().await.expect("delete marker");
    assert_eq!((removed.delete_marker(), removed.version_id()), (Some(true), Some(marker.as_str())));
    assert_eq!(get_bytes(&s3, BUCKET, "k").await, b"two");
    s3.delete_object().bucket(BUCKET).key("k").version_id(&v2).send().await.expect("delete v2");
    assert_eq!(get_bytes(&s3, BUCKET, "k").await, b"one");
    let gone = s3.get_object().bucket(BUCKET).key("k").version_id(&v2).send().await;
    assert_s3_error(gone, 404, &["NoSuchVersion"]);
    let invalid = s3.get_object().bucket(BUCKET).key("k").version_id("not-a-version").send().await;
    assert_s3_error(invalid, 400, &["InvalidArgument"]);
    assert_s3_error(s3.delete_bucket().bucket(BUCKET).send().await, 409, &["BucketNotEmpty"]);
}

#[tokio::test]
async fn copies_uploads_and_tags_by_version() {
    let (_server, s3) = server_with_bucket(4).await;
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let v1 = put_version(&s3, "src", b"first").await;
    put_version(&s3, "src", b"second").await;

    let copied = s3
        .copy_object()
        .bucket(BUCKET)
        .key("dst")
        .copy_source(format!("{BUCKET}/src?versionId={v1}"))
        .send()
        .await
        .expect("copy a version");
    assert_eq!(copied.copy_source_version_id(), Some(v1.as_str()));
    let copy_version = copied.version_id().expect("the copy is a new version").to_owned();
    assert_eq!(get_version(&s3, "dst", &copy_version).await, b"first");

    let tagging = Tagging::builder().tag_set(Tag::builder().key("old").value("yes").build().unwrap()).build().unwrap();
    let tagged = s3
        .put_object_tagging()
        .bucket(BUCKET)
        .key("src")
        .version_id(&v1)
        .tagging(tagging)
        .send()
        .await
        .expect("tag a version");
    assert_eq!(tagged.version_id(), Some(v1.as_str()));
    let tags = s3.get_object_tagging().bucket(BUCKET).key("src").version_id(&v1).send().await.expect("tags of v1");
    assert_eq!(tags.tag_set().len(), 1);
    let current = s3.get_object_tagging().bucket(BUCKET).key("src").send().await.expect("tags of current");
    assert!(current.tag_set().is_empty(), "only the version named was tagged");

    let upload = create_multipart_upload(&s3, BUCKET, "big").await;
    let part = random_bytes(MIN_PART_SIZE_BYTES);
    let etag = upload_part(&s3, BUCKET, "big", &upload, 1, &part).await;
    let completed = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("big")
        .upload_id(&upload)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .expect("complete upload");
    let big_version = completed.version_id().expect("a completed upload is a new version").to_owned();
    let part_copy = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("big2")
        .upload_id(create_multipart_upload(&s3, BUCKET, "big2").await)
        .part_number(1)
        .copy_source(format!("{BUCKET}/big?versionId={big_version}"))
        .send()
        .await
        .expect("upload part copy from a version");
    assert!(part_copy.copy_part_result().is_some());
    assert_eq!(part_copy.copy_source_version_id(), Some(big_version.as_str()), "x-amz-copy-source-version-id");
}

#[tokio::test]
async fn suspended_versioning_replaces_only_the_null_version() {
    let (_server, s3) = server_with_bucket(4).await;
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let kept = put_version(&s3, "k", b"kept").await;
    set_versioning(&s3, BucketVersioningStatus::Suspended).await;
    assert_eq!(put_version(&s3, "k", b"null one").await, "null");
    assert_eq!(put_version(&s3, "k", b"null two").await, "null");
    let ids: Vec<String> = all_versions(&s3, 1000).await.into_iter().map(|v| v.1).collect();
    assert_eq!(ids, ["null".to_owned(), kept.clone()]);
    let deleted = s3.delete_object().bucket(BUCKET).key("k").send().await.expect("delete");
    assert_eq!((deleted.delete_marker(), deleted.version_id()), (Some(true), Some("null")));
    assert_eq!(get_version(&s3, "k", &kept).await, b"kept");
}

#[tokio::test]
async fn list_object_versions_pages_and_delete_objects_with_ids() {
    let (_server, s3) = server_with_bucket(4).await;
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let mut ids = Vec::new();
    for key in ["a", "b/1", "b/2", "c"] {
        for round in 0..3 {
            ids.push((key, put_version(&s3, key, format!("{key}{round}").as_bytes()).await));
        }
    }
    s3.delete_object().bucket(BUCKET).key("c").send().await.expect("marker on c");
    let whole = all_versions(&s3, 1000).await;
    assert_eq!(whole.len(), 13);
    assert_eq!(all_versions(&s3, 2).await, whole, "pages of 2 list the same versions once");
    assert_eq!(whole.iter().filter(|v| v.2).count(), 4, "one latest per key");

    let delimited = s3.list_object_versions().bucket(BUCKET).delimiter("/").send().await.expect("delimited");
    let prefixes: Vec<_> = delimited.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["b/"]);
    assert_eq!(delimited.versions().len(), 6);
    assert_eq!(delimited.delete_markers().len(), 1);

    let id_of = |key: &str, n: usize| ids.iter().filter(|(k, _)| *k == key).nth(n).unwrap().1.clone();
    let named = |key: &str, version: Option<String>| {
        ObjectIdentifier::builder().key(key).set_version_id(version).build().expect("object identifier")
    };
    let delete = Delete::builder()
        .objects(named("a", Some(id_of("a", 0))))
        .objects(named("b/1", None))
        .objects(named("b/2", Some("not-a-version".into())))
        .build()
        .expect("delete request");
    let result = s3.delete_objects().bucket(BUCKET).delete(delete).send().await.expect("delete objects");
    let deleted: Vec<_> = result
        .deleted()
        .iter()
        .map(|d| {
            (d.key().unwrap(), d.version_id().is_some(), d.delete_marker(), d.delete_marker_version_id().is_some())
        })
        .collect();
    assert_eq!(deleted, [("a", true, None, false), ("b/1", false, Some(true), true)]);
    let errors: Vec<_> = result.errors().iter().map(|e| (e.key(), e.code())).collect();
    assert_eq!(errors, [(Some("b/2"), Some("InvalidArgument"))]);
    let after = all_versions(&s3, 1000).await;
    assert_eq!(after.len(), 13, "one version removed, one marker added");
    assert!(!after.iter().any(|v| v.1 == id_of("a", 0)));
}

#[tokio::test]
async fn bucket_tagging() {
    let (_server, s3) = server_with_bucket(4).await;
    assert_s3_error(s3.get_bucket_tagging().bucket(BUCKET).send().await, 404, &["NoSuchTagSet"]);
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("team").value("storage").build().unwrap())
        .tag_set(Tag::builder().key("cost").value("42").build().unwrap())
        .build()
        .unwrap();
    s3.put_bucket_tagging().bucket(BUCKET).tagging(tagging).send().await.expect("put bucket tagging");
    let got = s3.get_bucket_tagging().bucket(BUCKET).send().await.expect("get bucket tagging");
    let tags: Vec<_> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("team", "storage"), ("cost", "42")]);
    let reserved = Tagging::builder().tag_set(Tag::builder().key("aws:x").value("y").build().unwrap()).build().unwrap();
    assert_s3_error(s3.put_bucket_tagging().bucket(BUCKET).tagging(reserved).send().await, 400, &["InvalidTag"]);
    s3.delete_bucket_tagging().bucket(BUCKET).send().await.expect("delete bucket tagging");
    assert_s3_error(s3.get_bucket_tagging().bucket(BUCKET).send().await, 404, &["NoSuchTagSet"]);
}

#[tokio::test]
async fn cors_configuration_preflight_and_response_headers() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "page.txt", b"hello").await;
    let url = format!("{}/{BUCKET}/page.txt", server.url());
    let preflight = |origin: &str, method: &str, headers: &str| {
        let mut args = vec!["-X", "OPTIONS", url.as_str(), "-H"];
        let origin = format!("Origin: {origin}");
        let method = format!("Access-Control-Request-Method: {method}");
        let headers = format!("Access-Control-Request-Headers: {headers}");
        args.extend([origin.as_str(), "-H", method.as_str()]);
        if !headers.ends_with(": ") {
            args.extend(["-H", headers.as_str()]);
        }
        curl(&args)
    };
    preflight("http://app.test", "GET", "").assert_error(403, "AccessForbidden");
    assert_s3_error(s3.get_bucket_cors().bucket(BUCKET).send().await, 404, &["NoSuchCORSConfiguration"]);

    let rules = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("http://*.app.test")
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("content-*")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    s3.put_bucket_cors().bucket(BUCKET).cors_configuration(rules).send().await.expect("put bucket cors");
    let got = s3.get_bucket_cors().bucket(BUCKET).send().await.expect("get bucket cors");
    assert_eq!(got.cors_rules().len(), 1);
    assert_eq!(got.cors_rules()[0].allowed_origins(), ["http://*.app.test"]);

    let allowed = preflight("http://www.app.test", "PUT", "Content-Type");
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.header("access-control-allow-origin"), Some("http://www.app.test"));
    assert_eq!(allowed.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(allowed.header("access-control-allow-headers"), Some("content-type"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    preflight("http://www.app.test", "DELETE", "").assert_error(403, "AccessForbidden");
    preflight("http://evil.test", "GET", "").assert_error(403, "AccessForbidden");
    preflight("http://www.app.test", "PUT", "x-custom").assert_error(403, "AccessForbidden");

    let actual = server.signed_curl(&["-H", "Origin: http://www.app.test", &url]);
    assert_eq!(actual.status, 200);
    assert_eq!(actual.header("access-control-allow-origin"), Some("http://www.app.test"));
    assert_eq!(actual.header("access-control-expose-headers"), Some("ETag"));
    let foreign = server.signed_curl(&["-H", "Origin: http://evil.test", &url]);
    assert_eq!((foreign.status, foreign.header("access-control-allow-origin")), (200, None));

    s3.delete_bucket_cors().bucket(BUCKET).send().await.expect("delete bucket cors");
    preflight("http://www.app.test", "GET", "").assert_error(403, "AccessForbidden");
}

#[tokio::test]
async fn boto3_sees_versions_and_delete_markers() {
    let (server, s3) = server_with_bucket(4).await;
    set_versioning(&s3, BucketVersioningStatus::Enabled).await;
    let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                  aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
bucket = sys.argv[5]
assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
marker = s3.delete_object(Bucket=bucket, Key="k")
assert marker["DeleteMarker"] is True
listed = s3.list_object_versions(Bucket=bucket)
assert [v["VersionId"] for v in listed["Versions"]] == [v2, v1], listed
assert [m["VersionId"] for m in listed["DeleteMarkers"]] == [marker["VersionId"]], listed
assert listed["DeleteMarkers"][0]["IsLatest"] is True
assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
try:
    s3.get_object(Bucket=bucket, Key="k")
    raise SystemExit("GET of a deleted key succeeded")
except s3.exceptions.NoSuchKey as e:
    assert e.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
print("ok")
"#;
    let output = Command::new("python3")
        .args(["-c", script, server.url(), REGION, ROOT_USER, ROOT_PASSWORD, BUCKET])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run python3 with boto3");
    assert!(
        output.status.success(),
        "boto3 script failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
