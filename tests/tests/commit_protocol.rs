//! The commit protocol seen by real clients (aws-sdk-s3 against the real binary, 2+2): the
//! defects of issue 14 that a client can observe, each of which failed before the fix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sovereign_e2e::*;

/// Defect 3: conditional writes decided at the commit point. Eight writers create one key with
/// If-None-Match `*` at the same moment, forty times: exactly one wins each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_if_none_match_writers_have_exactly_one_winner() {
    let (_server, s3) = server_with_bucket(4).await;
    for trial in 0..40 {
        let key = format!("lock-{trial}");
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let writers = (0..8).map(|writer| {
            let (s3, key, barrier) = (s3.clone(), key.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .if_none_match("*")
                    .body(ByteStream::from(format!("writer {writer}").into_bytes()))
                    .send()
                    .await
            })
        });
        let results = futures::future::join_all(writers).await;
        let mut won = 0;
        for result in results {
            match result.expect("writer task") {
                Ok(_) => won += 1,
                Err(e) => {
                    let status = e.raw_response().map(|r| r.status().as_u16());
                    assert!(matches!(status, Some(412 | 409)), "trial {trial}: unexpected failure {e:?}");
                }
            }
        }
        assert_eq!(won, 1, "trial {trial}: {won} conditional writers won");
        // The winner's object is there, and a later If-None-Match fails with 412.
        let later = s3
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .if_none_match("*")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_s3_error(later, 412, &["PreconditionFailed"]);
    }
}

/// If-Match on a write: the current ETag wins, another ETag is 412, a missing key is 404.
#[tokio::test]
async fn if_match_writes_compare_and_set() {
    let (_server, s3) = server_with_bucket(4).await;
    let first = put_bytes(&s3, BUCKET, "k", b"one").await;
    let etag = first.e_tag().expect("etag").to_owned();
    let stale =
        s3.put_object().bucket(BUCKET).key("k").if_match("\"0123\"").body(ByteStream::from_static(b"x")).send().await;
    assert_s3_error(stale, 412, &["PreconditionFailed"]);
    s3.put_object()
        .bucket(BUCKET)
        .key("k")
        .if_match(&etag)
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .expect("if-match put");
    let again =
        s3.put_object().bucket(BUCKET).key("k").if_match(&etag).body(ByteStream::from_static(b"3")).send().await;
    assert_s3_error(again, 412, &["PreconditionFailed"]);
    let missing =
        s3.put_object().bucket(BUCKET).key("none").if_match(&etag).body(ByteStream::from_static(b"x")).send().await;
    assert_s3_error(missing, 404, &["NoSuchKey"]);
    let body = s3.get_object().bucket(BUCKET).key("k").send().await.expect("get").body.collect().await.expect("body");
    assert_eq!(body.into_bytes().as_ref(), b"two");
}

/// Defect 2: a key with NUL never acts on the key before the NUL, whatever the operation.
#[tokio::test]
async fn a_key_with_nul_never_aliases_another_key() {
    let (_server, s3) = server_with_bucket(4).await;
    put_bytes(&s3, BUCKET, "a", b"the real a").await;
    let nul = "a\u{0}";
    assert_s3_error(s3.get_object().bucket(BUCKET).key(nul).send().await, 400, &["InvalidArgument"]);
    assert_s3_error(s3.head_object().bucket(BUCKET).key(nul).send().await, 400, &[]);
    assert_s3_error(s3.delete_object().bucket(BUCKET).key(nul).send().await, 400, &["InvalidArgument"]);
    assert_s3_error(s3.get_object_tagging().bucket(BUCKET).key(nul).send().await, 400, &["InvalidArgument"]);
    assert_s3_error(
        s3.copy_object().bucket(BUCKET).key("copy").copy_source(format!("{BUCKET}/a%00")).send().await,
        400,
        &["InvalidArgument"],
    );
    let body = s3.get_object().bucket(BUCKET).key("a").send().await.expect("a is intact").body.collect().await.unwrap();
    assert_eq!(body.into_bytes().as_ref(), b"the real a");
}

/// Defect 13: readers racing overwrites of one key never see it vanish nor get a cut body.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_racing_overwrites_always_see_a_whole_version() {
    let (_server, s3) = server_with_bucket(4).await;
    let size = 1536 * 1024;
    let versions: Arc<Vec<Vec<u8>>> = Arc::new((0..4).map(|_| random_bytes(size)).collect());
    put_bytes(&s3, BUCKET, "hot", &versions[0]).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let (s3, versions) = (s3.clone(), Arc::clone(&versions));
        tasks.push(tokio::spawn(async move {
            let mut n = writer;
            while Instant::now() < deadline {
                put_bytes(&s3, BUCKET, "hot", &versions[n % versions.len()]).await;
                n += 1;
            }
            0usize
        }));
    }
    for _ in 0..6 {
        let (s3, versions) = (s3.clone(), Arc::clone(&versions));
        tasks.push(tokio::spawn(async move {
            let mut reads = 0;
            while Instant::now() < deadline {
                let reply = s3.get_object().bucket(BUCKET).key("hot").send().await.expect("key must never vanish");
                let body = reply.body.collect().await.expect("body must not be cut off").into_bytes();
                assert!(versions.iter().any(|v| v.as_slice() == body.as_ref()), "read bytes of no version");
                reads += 1;
            }
            reads
        }));
    }
    let reads: usize = futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).sum();
    assert!(reads > 10, "only {reads} reads");
}

/// Defect 8: a zero-byte part (and a completed upload of it) works.
#[tokio::test]
async fn a_zero_byte_part_uploads_and_completes() {
    let (_server, s3) = server_with_bucket(4).await;
    let upload = create_multipart_upload(&s3, BUCKET, "empty").await;
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key("empty")
        .upload_id(&upload)
        .part_number(1)
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .expect("zero-byte part");
    let etag = part.e_tag().expect("etag").to_owned();
    assert_eq!(etag.trim_matches('"'), md5_hex(b""));
    let completed =
        CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(&etag).build()).build();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("empty")
        .upload_id(&upload)
        .multipart_upload(completed)
        .send()
        .await
        .expect("complete");
    let head = s3.head_object().bucket(BUCKET).key("empty").send().await.expect("head");
    assert_eq!(head.content_length(), Some(0));
}

/// Defect 6: DeleteBucket racing PUTs: no object survives in, or reappears with, a deleted
/// bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_bucket_racing_puts_leaves_no_object_behind() {
    let server = Server::start(4);
    let s3 = server.client();
    for round in 0..10 {
        let bucket = format!("race-{round}");
        create_bucket(&s3, &bucket).await;
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (s3, bucket) = (s3.clone(), bucket.clone());
                tokio::spawn(async move {
                    s3.put_object()
                        .bucket(&bucket)
                        .key(format!("k{i}"))
                        .body(ByteStream::from_static(b"x"))
                        .send()
                        .await
                        .is_ok()
                })
            })
            .collect();
        let deleted = s3.delete_bucket().bucket(&bucket).send().await.is_ok();
        let acked =
            futures::future::join_all(writers).await.into_iter().filter(|r| *r.as_ref().unwrap_or(&false)).count();
        if deleted {
            // Recreated, the bucket is empty: nothing written during the race came back.
            create_bucket(&s3, &bucket).await;
            let listed = s3.list_objects_v2().bucket(&bucket).send().await.expect("list");
            assert_eq!(listed.key_count(), Some(0), "round {round}: objects reappeared ({acked} PUTs acknowledged)");
        }
    }
}
