//! Bucket policies end to end: Put/Get/Delete/GetBucketPolicyStatus through the SDK, malformed
//! policies refused, and unsigned requests (curl) getting exactly what a bucket policy gives
//! everyone and nothing else; root unaffected.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use sovereign_e2e::*;

/// Everyone may read `public/` and list it; nothing else.
fn public_prefix_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
  {{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/public/*"}},
  {{"Sid":"PublicList","Effect":"Allow","Principal":{{"AWS":["*"]}},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}","Condition":{{"StringLike":{{"s3:prefix":"public/*"}}}}}}]}}"#
    )
}

fn url(server: &Server, path: &str) -> String {
    format!("{}/{BUCKET}{path}", server.url())
}

#[tokio::test]
async fn bucket_policy_round_trip_and_status() {
    let (_server, s3) = server_with_bucket(4).await;
    assert_s3_error(s3.get_bucket_policy().bucket(BUCKET).send().await, 404, &["NoSuchBucketPolicy"]);
    assert_s3_error(s3.get_bucket_policy_status().bucket(BUCKET).send().await, 404, &["NoSuchBucketPolicy"]);

    let named = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam:::user/alice"}},"Action":"s3:*","Resource":"arn:aws:s3:::{BUCKET}/*"}}}}"#
    );
    s3.put_bucket_policy().bucket(BUCKET).policy(&named).send().await.unwrap();
    let status = s3.get_bucket_policy_status().bucket(BUCKET).send().await.unwrap();
    assert_eq!(status.policy_status().and_then(|s| s.is_public()), Some(false));

    let public = public_prefix_policy(BUCKET);
    s3.put_bucket_policy().bucket(BUCKET).policy(&public).send().await.unwrap();
    let stored = s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    assert_eq!(stored.policy(), Some(public.as_str()), "the policy reads back as it was put");
    let status = s3.get_bucket_policy_status().bucket(BUCKET).send().await.unwrap();
    assert_eq!(status.policy_status().and_then(|s| s.is_public()), Some(true));

    s3.delete_bucket_policy().bucket(BUCKET).send().await.unwrap();
    assert_s3_error(s3.get_bucket_policy().bucket(BUCKET).send().await, 404, &["NoSuchBucketPolicy"]);
    assert_s3_error(s3.get_bucket_policy().bucket("no-such-bucket").send().await, 404, &["NoSuchBucket"]);
}

#[tokio::test]
async fn malformed_policies_are_refused_with_the_position() {
    let (server, s3) = server_with_bucket(4).await;
    let bad_json = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [ }\n}";
    let error =
        assert_s3_error(s3.put_bucket_policy().bucket(BUCKET).policy(bad_json).send().await, 400, &["MalformedPolicy"]);
    assert!(error.message.as_deref().unwrap_or_default().contains("line 3"), "{error:?}");

    let no_effect = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{BUCKET}/*"}}]}}"#
    );
    let error = assert_s3_error(
        s3.put_bucket_policy().bucket(BUCKET).policy(no_effect).send().await,
        400,
        &["MalformedPolicy"],
    );
    assert!(error.message.as_deref().unwrap_or_default().contains("Statement[0]"), "{error:?}");

    let other_bucket = public_prefix_policy("someone-elses-bucket");
    let error = assert_s3_error(
        s3.put_bucket_policy().bucket(BUCKET).policy(other_bucket).send().await,
        400,
        &["MalformedPolicy"],
    );
    assert!(error.message.as_deref().unwrap_or_default().contains("Policy has invalid resource"), "{error:?}");

    let padded = format!("{}{}", public_prefix_policy(BUCKET), " ".repeat(21 * 1024));
    assert_s3_error(s3.put_bucket_policy().bucket(BUCKET).policy(padded).send().await, 400, &["PolicyTooLarge"]);

    assert_s3_error(s3.get_bucket_policy().bucket(BUCKET).send().await, 404, &["NoSuchBucketPolicy"]);
    // Nothing was stored, and the server still serves.
    curl(&[&url(&server, "/public/x")]).assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn unsigned_requests_get_what_the_bucket_policy_gives_everyone_and_nothing_else() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "public/photo.jpg", b"public bytes").await;
    put_bytes(&s3, BUCKET, "private/diary.txt", b"private bytes").await;

    // Without a policy, unsigned requests get nothing.
    curl(&[&url(&server, "/public/photo.jpg")]).assert_error(403, "AccessDenied");

    s3.put_bucket_policy().bucket(BUCKET).policy(public_prefix_policy(BUCKET)).send().await.unwrap();

    let got = curl(&[&url(&server, "/public/photo.jpg")]);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"public bytes"[..]), "{}", got.text());
    let head = curl(&["-I", &url(&server, "/public/photo.jpg")]);
    assert_eq!(head.status, 200);
    let listed = curl(&[&url(&server, "?list-type=2&prefix=public/")]);
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.text().contains("<Key>public/photo.jpg</Key>"), "{}", listed.text());
    assert!(!listed.text().contains("private"), "{}", listed.text());

    // Everything else is the same 403, whether the object exists or not.
    let existing = curl(&[&url(&server, "/private/diary.txt")]);
    let missing = curl(&[&url(&server, "/private/nothing-here")]);
    let missing_public = curl(&[&url(&server, "/public/nothing-here")]);
    for reply in [&existing, &missing, &missing_public] {
        reply.assert_error(403, "AccessDenied");
        assert!(reply.text().contains("<Message>Access Denied</Message>"), "{}", reply.text());
        assert!(!reply.text().contains("diary") && !reply.text().contains("nothing-here"), "{}", reply.text());
    }
    curl(&[&url(&server, "?list-type=2")]).assert_error(403, "AccessDenied");
    curl(&[&url(&server, "?list-type=2&prefix=private/")]).assert_error(403, "AccessDenied");
    curl(&[&url(&server, "?policy")]).assert_error(403, "AccessDenied");
    curl(&[&format!("{}/", server.url())]).assert_error(403, "AccessDenied");
    curl(&["-X", "PUT", "--data-binary", "overwritten", &url(&server, "/public/photo.jpg")])
        .assert_error(403, "AccessDenied");
    curl(&["-X", "PUT", "--data-binary", "new", &url(&server, "/public/new.txt")]).assert_error(403, "AccessDenied");
    curl(&["-X", "DELETE", &url(&server, "/public/photo.jpg")]).assert_error(403, "AccessDenied");
    let policy_put = ["-X", "PUT", "--data-binary", "{}", &url(&server, "?policy")];
    curl(&policy_put).assert_error(403, "AccessDenied");
    let batch = "<Delete><Object><Key>public/photo.jpg</Key></Object></Delete>";
    let md5 = format!("Content-MD5: {}", content_md5(batch.as_bytes()));
    let deleted = curl(&["-X", "POST", "-H", &md5, "--data-binary", batch, &url(&server, "?delete")]);
    assert!(deleted.text().contains("<Code>AccessDenied</Code>"), "each key is refused: {}", deleted.text());

    // Root is unaffected, and nothing above changed anything.
    assert_eq!(get_bytes(&s3, BUCKET, "public/photo.jpg").await, b"public bytes");
    assert_eq!(get_bytes(&s3, BUCKET, "private/diary.txt").await, b"private bytes");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("public/new.txt").send().await, 404, &[]);
    s3.put_object().bucket(BUCKET).key("private/more").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let objects = ["public/photo.jpg", "private/more"].map(|k| ObjectIdentifier::builder().key(k).build().unwrap());
    let delete = Delete::builder().set_objects(Some(objects.to_vec())).build().unwrap();
    let result = s3.delete_objects().bucket(BUCKET).delete(delete).send().await.unwrap();
    assert_eq!(result.deleted().len(), 2, "{result:?}");
    assert!(result.errors().is_empty(), "{result:?}");

    // Once the policy is gone, so is the public access.
    put_bytes(&s3, BUCKET, "public/photo.jpg", b"public bytes").await;
    s3.delete_bucket_policy().bucket(BUCKET).send().await.unwrap();
    curl(&[&url(&server, "/public/photo.jpg")]).assert_error(403, "AccessDenied");
}

/// Setting tags with a write needs s3:PutObjectTagging as well as s3:PutObject, as on AWS: an
/// unsigned PUT that a bucket policy allows is refused when it carries `x-amz-tagging`, and
/// nothing is written, until the policy allows tagging too.
#[tokio::test]
async fn tags_on_a_write_need_put_object_tagging() {
    let (server, s3) = server_with_bucket(4).await;
    let policy = |actions: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":{actions},"Resource":"arn:aws:s3:::{BUCKET}/drop/*"}}]}}"#
        )
    };
    s3.put_bucket_policy().bucket(BUCKET).policy(policy(r#""s3:PutObject""#)).send().await.unwrap();
    let put = |key: &str, tags: Option<&str>| {
        let mut args = vec!["-X".to_owned(), "PUT".to_owned(), "--data-binary".to_owned(), "x".to_owned()];
        if let Some(tags) = tags {
            args.extend(["-H".to_owned(), format!("x-amz-tagging: {tags}")]);
        }
        args.push(url(&server, key));
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(put("/drop/plain", None).status, 200);
    put("/drop/tagged", Some("team=blue")).assert_error(403, "AccessDenied");
    assert_s3_error(s3.head_object().bucket(BUCKET).key("drop/tagged").send().await, 404, &[]);

    s3.put_bucket_policy()
        .bucket(BUCKET)
        .policy(policy(r#"["s3:PutObject","s3:PutObjectTagging"]"#))
        .send()
        .await
        .unwrap();
    assert_eq!(put("/drop/tagged", Some("team=blue")).status, 200);
    let tags = s3.get_object_tagging().bucket(BUCKET).key("drop/tagged").send().await.unwrap();
    assert_eq!(tags.tag_set().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("team", "blue")]);
}

/// `s3:ExistingObjectTag/<key>` conditions are judged on the tags of the object the request
/// reads: a bucket policy that lets everyone read objects tagged `public=yes` serves those and
/// refuses the others, and the object's tags are re-read after they change.
#[tokio::test]
async fn existing_object_tags_decide_reads() {
    let (server, s3) = server_with_bucket(4).await;
    let tagged = |key: &'static str, value: &'static str| {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .tagging(format!("public={value}"))
            .body(ByteStream::from_static(b"bytes"))
            .send()
    };
    tagged("open", "yes").await.unwrap();
    tagged("closed", "no").await.unwrap();
    put_bytes(&s3, BUCKET, "untagged", b"bytes").await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{BUCKET}/*","Condition":{{"StringEquals":{{"s3:ExistingObjectTag/public":"yes"}}}}}}]}}"#
    );
    s3.put_bucket_policy().bucket(BUCKET).policy(policy).send().await.unwrap();

    let got = curl(&[&url(&server, "/open")]);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"bytes"[..]), "{}", got.text());
    for key in ["/closed", "/untagged", "/missing"] {
        curl(&[&url(&server, key)]).assert_error(403, "AccessDenied");
    }
    let retag = |value: &str| {
        let tag = Tag::builder().key("public").value(value).build().unwrap();
        s3.put_object_tagging()
            .bucket(BUCKET)
            .key("closed")
            .tagging(Tagging::builder().tag_set(tag).build().unwrap())
            .send()
    };
    retag("yes").await.unwrap();
    assert_eq!(curl(&[&url(&server, "/closed")]).status, 200);
    retag("no").await.unwrap();
    curl(&[&url(&server, "/closed")]).assert_error(403, "AccessDenied");
}

/// Everyone may read objects (their data, tags, attributes and ACL), copy them and upload
/// parts, and, with `list`, list the bucket.
fn readers_policy(bucket: &str, list: bool) -> String {
    let listing = if list {
        format!(r#",{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}"}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:GetObjectTagging","s3:GetObjectAttributes","s3:GetObjectAcl","s3:PutObject"],"Resource":"arn:aws:s3:::{bucket}/*"}}{listing}]}}"#
    )
}

#[tokio::test]
async fn missing_keys_are_hidden_from_callers_who_may_not_list() {
    let (server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "present", b"here").await;
    s3.put_bucket_policy().bucket(BUCKET).policy(readers_policy(BUCKET, false)).send().await.unwrap();
    let upload = curl(&["-X", "POST", &url(&server, "/dest-part?uploads")]);
    assert_eq!(upload.status, 200, "{}", upload.text());
    let text = upload.text();
    let id = text.split("<UploadId>").nth(1).and_then(|r| r.split("</UploadId>").next()).expect("UploadId").to_owned();
    let attributes = "x-amz-object-attributes: ETag";
    // Each read of `key`, by an unsigned caller the bucket policy lets read but not list.
    let reads = |key: &str| {
        let source = format!("x-amz-copy-source: /{BUCKET}/{key}");
        [
            ("GetObject", curl(&[&url(&server, &format!("/{key}"))])),
            ("GetObjectTagging", curl(&[&url(&server, &format!("/{key}?tagging"))])),
            ("GetObjectAttributes", curl(&["-H", attributes, &url(&server, &format!("/{key}?attributes"))])),
            ("GetObjectAcl", curl(&[&url(&server, &format!("/{key}?acl"))])),
            ("CopyObject", curl(&["-X", "PUT", "-H", &source, &url(&server, "/dest")])),
            (
                "UploadPartCopy",
                curl(&["-X", "PUT", "-H", &source, &url(&server, &format!("/dest-part?partNumber=1&uploadId={id}"))]),
            ),
        ]
    };
    for (operation, reply) in reads("present") {
        assert_eq!(reply.status, 200, "{operation} of an existing key is allowed: {}", reply.text());
    }
    for (operation, reply) in reads("missing") {
        assert!(
            reply.status == 403 && reply.error_code().as_deref() == Some("AccessDenied"),
            "{operation} of a missing key by a caller who may not list: {} {}",
            reply.status,
            reply.text()
        );
    }
    s3.put_bucket_policy().bucket(BUCKET).policy(readers_policy(BUCKET, true)).send().await.unwrap();
    for (operation, reply) in reads("missing") {
        assert!(
            reply.status == 404 && reply.error_code().as_deref() == Some("NoSuchKey"),
            "{operation} of a missing key by a caller who may list: {} {}",
            reply.status,
            reply.text()
        );
    }
}
