//! Drive loss, bitrot and crashes on 4 drives at 2+2 (reads need 2 drives, writes 3), and a
//! single drive without erasure coding.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::Client;
use sovereign_e2e::*;

/// How long the healer may take to rewrite a shard after the read that found it bad.
const HEAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restarted server may take to remove what an interrupted PUT left.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to write the first shard bytes of a streaming PUT.
const FIRST_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Each frame of a shard file starts with the xxh3-128 hash of its block.
const FRAME_HASH_BYTES: usize = 16;
/// Where the tests flip bytes: inside the first block of a shard, past its hash.
const CORRUPT_OFFSET: usize = FRAME_HASH_BYTES + 100;
const CORRUPT_LEN: usize = 32;
/// Both 503 codes S3 uses when too few drives answer.
const UNAVAILABLE: &[&str] = &["SlowDown", "ServiceUnavailable"];

/// One object per storage path: inline, one sharded block, several blocks, several stripes with
/// an odd tail.
fn sample_objects() -> Vec<(String, Vec<u8>)> {
    [("inline-4k", 4 * 1024), ("sharded-200k", 200 * 1024), ("one-mib", MIB), ("five-mib-odd", 5 * MIB + 123)]
        .into_iter()
        .map(|(key, size)| (key.to_owned(), random_bytes(size)))
        .collect()
}

async fn assert_objects_read_back(s3: &Client, objects: &[(String, Vec<u8>)]) {
    for (key, data) in objects {
        assert_same_bytes(&get_bytes(s3, BUCKET, key).await, data, key);
    }
}

/// Removes everything inside `dir`, as if the disk behind it had been replaced by a blank one.
fn wipe_contents(dir: &Path) {
    for entry in fs::read_dir(dir).expect("read drive dir") {
        let path = entry.expect("drive dir entry").path();
        if path.is_dir() {
            fs::remove_dir_all(&path).expect("remove drive subdirectory");
        } else {
            fs::remove_file(&path).expect("remove drive file");
        }
    }
}

/// A server on `drive_count` drives with [`BUCKET`] holding the [`sample_objects`].
async fn server_with_samples(drive_count: usize) -> (Server, Vec<(String, Vec<u8>)>) {
    let (server, s3) = server_with_bucket(drive_count).await;
    let objects = sample_objects();
    for (key, data) in &objects {
        put_streaming(&s3, BUCKET, key, data).await;
    }
    (server, objects)
}

#[tokio::test]
async fn objects_survive_the_loss_of_two_drives_of_four() {
    let (mut server, objects) = server_with_samples(4).await;
    server.kill();
    for drive in &server.dirs()[..2] {
        wipe_contents(drive);
    }
    server.restart();
    let s3 = server.client();
    assert_objects_read_back(&s3, &objects).await;
    // The blank drives rejoined: writes reach their quorum of 3 again.
    let data = random_bytes(MIB);
    put_streaming(&s3, BUCKET, "after-replacement", &data).await;
    assert_same_bytes(&get_bytes(&s3, BUCKET, "after-replacement").await, &data, "new object");
}

#[tokio::test]
async fn below_read_quorum_a_get_is_503_never_a_partial_object() {
    let (mut server, objects) = server_with_samples(4).await;
    // Three drives lose their shard files: one shard of four is left, below the read quorum of 2.
    // Their metadata stays, so the server knows the objects exist and what is missing.
    server.kill();
    for drive in &server.dirs()[..3] {
        fs::remove_dir_all(drive.join("data")).expect("remove shard files");
    }
    server.restart();
    let s3 = server.client();
    for (key, data) in &objects {
        if data.len() > INLINE_THRESHOLD_BYTES {
            assert_s3_error(s3.get_object().bucket(BUCKET).key(key).send().await, 503, UNAVAILABLE);
        } else {
            // Inline data lives in the metadata records, which all four drives still hold.
            assert_same_bytes(&get_bytes(&s3, BUCKET, key).await, data, key);
        }
    }
}

/// The only shard file of a drive.
fn only_shard(drive: &Path) -> PathBuf {
    let files = shard_files(drive);
    assert_eq!(files.len(), 1, "expected one shard file on {}: {files:?}", drive.display());
    files.into_iter().next().expect("one shard file")
}

/// Whether `shard` (a shard file's bytes) is a data shard of `object` rather than parity:
/// systematic Reed-Solomon stores the object's own bytes in data shards.
fn is_data_shard(shard: &[u8], object: &[u8]) -> bool {
    let sample = &shard[FRAME_HASH_BYTES..FRAME_HASH_BYTES + 64];
    object.windows(sample.len()).any(|window| window == sample)
}

/// Flips bytes inside the first block of a shard file, past its hash.
fn corrupt(shard: &Path) {
    let mut bytes = fs::read(shard).expect("read shard");
    for byte in &mut bytes[CORRUPT_OFFSET..CORRUPT_OFFSET + CORRUPT_LEN] {
        *byte ^= 0xff;
    }
    fs::write(shard, bytes).expect("write corrupted shard");
}

/// Waits until each drive in `drives` again holds exactly its original shard bytes.
fn wait_until_repaired(server: &Server, drives: &[usize], originals: &[Vec<u8>]) {
    wait_until(&format!("the healer to repair the shards on drives {drives:?}"), HEAL_TIMEOUT, || {
        drives.iter().all(|&i| {
            let files = shard_files(&server.dirs()[i]);
            files.len() == 1 && fs::read(&files[0]).ok().as_ref() == Some(&originals[i])
        })
    });
}

#[tokio::test]
async fn corrupt_and_missing_shards_are_repaired_on_read() {
    let (server, s3) = server_with_bucket(4).await;
    let data = random_bytes(5 * MIB + 123);
    put_streaming(&s3, BUCKET, "victim", &data).await;
    let originals: Vec<Vec<u8>> =
        server.dirs().iter().map(|drive| fs::read(only_shard(drive)).expect("read shard")).collect();
    // A GET reads data shards first, so damage there is sure to be seen by the next read;
    // damaged parity would only be found by a read that needs it.
    let data_drives: Vec<usize> = (0..originals.len()).filter(|&i| is_data_shard(&originals[i], &data)).collect();
    assert_eq!(data_drives.len(), 2, "2+2 spreads 2 data shards");

    for damaged in [&data_drives[..1], &data_drives[..]] {
        for &i in damaged {
            corrupt(&only_shard(&server.dirs()[i]));
        }
        assert_same_bytes(&get_bytes(&s3, BUCKET, "victim").await, &data, "read over bitrot");
        wait_until_repaired(&server, damaged, &originals);
    }

    let lost = data_drives[1];
    fs::remove_file(only_shard(&server.dirs()[lost])).expect("remove shard");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "victim").await, &data, "read over a lost shard");
    wait_until_repaired(&server, &[lost], &originals);
}

/// Files of a drive that belong to objects: all but its metadata store and format.json.
fn object_files(drive: &Path) -> Vec<PathBuf> {
    files_under(drive)
        .into_iter()
        .filter(|file| !file.starts_with(drive.join("meta")) && *file != drive.join("format.json"))
        .collect()
}

/// Connects to the server and sends the head of a presigned PUT with a body of `length` bytes,
/// leaving the body to the caller.
fn start_raw_put(request: &PresignedRequest, length: usize) -> TcpStream {
    let without_scheme = request.uri().strip_prefix("http://").expect("http URL");
    let path_start = without_scheme.find('/').expect("path in URL");
    let (authority, path_and_query) = without_scheme.split_at(path_start);
    let mut head = format!("PUT {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {length}\r\n");
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(authority).expect("connect to the server");
    stream.write_all(head.as_bytes()).expect("send request head");
    stream
}

#[tokio::test]
async fn a_put_killed_midway_leaves_no_object_and_no_files() {
    const OBJECT_SIZE_BYTES: usize = 50 * MIB;
    const SENT_BEFORE_KILL_MIB: usize = 20;

    let (mut server, s3) = server_with_bucket(4).await;
    let committed = random_bytes(MIB);
    put_streaming(&s3, BUCKET, "committed", &committed).await;
    let committed_files: Vec<Vec<PathBuf>> = server.dirs().iter().map(|d| object_files(d)).collect();
    for files in &committed_files {
        assert_eq!(files.len(), 1, "one shard per drive: {files:?}");
    }

    let presigned = s3
        .put_object()
        .bucket(BUCKET)
        .key("interrupted")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("presigning"))
        .await
        .expect("presign PUT");
    let mut upload = start_raw_put(&presigned, OBJECT_SIZE_BYTES);
    let chunk = random_bytes(MIB);
    for _ in 0..SENT_BEFORE_KILL_MIB {
        upload.write_all(&chunk).expect("send body");
    }
    wait_until("the server to write shards of the streaming PUT before its body ends", FIRST_WRITE_TIMEOUT, || {
        server.dirs().iter().any(|d| object_files(d).len() > 1)
    });
    server.kill();
    drop(upload);

    server.restart();
    let s3 = server.client();
    assert_s3_error(s3.head_object().bucket(BUCKET).key("interrupted").send().await, 404, &[]);
    wait_until("the restarted server to remove the interrupted PUT's files", CLEANUP_TIMEOUT, || {
        server.dirs().iter().map(|d| object_files(d)).eq(committed_files.iter().cloned())
    });
    assert_same_bytes(&get_bytes(&s3, BUCKET, "committed").await, &committed, "committed");
    let retry = random_bytes(300 * 1024);
    put_streaming(&s3, BUCKET, "interrupted", &retry).await;
    assert_same_bytes(&get_bytes(&s3, BUCKET, "interrupted").await, &retry, "retried PUT");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let (mut server, objects) = server_with_samples(4).await;
    let s3 = server.client();
    put_bytes(&s3, BUCKET, "deleted", b"gone").await;
    s3.delete_object().bucket(BUCKET).key("deleted").send().await.expect("delete");

    server.kill();
    server.restart();
    let s3 = server.client();
    assert_objects_read_back(&s3, &objects).await;
    assert_s3_error(s3.head_object().bucket(BUCKET).key("deleted").send().await, 404, &[]);
    let mut keys: Vec<_> = objects.iter().map(|(key, _)| key.clone()).collect();
    keys.sort();
    assert_eq!(list_keys(&s3, BUCKET).await, keys);
}

#[tokio::test]
async fn single_drive_round_trip() {
    let (mut server, mut objects) = server_with_samples(1).await;
    let s3 = server.client();
    assert_objects_read_back(&s3, &objects).await;

    let (key, data) = &mut objects[2];
    *data = random_bytes(2 * MIB + 1);
    put_streaming(&s3, BUCKET, key, data).await;
    let (removed, _) = objects.remove(0);
    s3.delete_object().bucket(BUCKET).key(&removed).send().await.expect("delete");

    server.restart();
    let s3 = server.client();
    assert_objects_read_back(&s3, &objects).await;
    assert_s3_error(s3.head_object().bucket(BUCKET).key(&removed).send().await, 404, &[]);
}

#[tokio::test]
async fn a_drive_whose_metadata_is_corrupt_stays_offline_and_the_set_serves() {
    // RocksDB's CURRENT file names the manifest; garbage there makes the store unopenable.
    serves_with_one_drive_corrupt(|drive| {
        fs::write(drive.join("meta").join("CURRENT"), b"not a manifest name\n").expect("corrupt CURRENT")
    })
    .await;
}

#[tokio::test]
async fn a_drive_whose_format_is_corrupt_stays_offline_and_the_set_serves() {
    serves_with_one_drive_corrupt(|drive| {
        fs::write(drive.join("format.json"), b"{\"version\": 1, garb").expect("corrupt format")
    })
    .await;
}

/// Corrupts drive 1 of a stopped 2+2 server with `corrupt`, restarts it, and checks that the
/// drive is reported offline while every object reads back and new writes succeed.
async fn serves_with_one_drive_corrupt(corrupt: impl FnOnce(&Path)) {
    let (mut server, objects) = server_with_samples(4).await;
    server.kill();
    corrupt(&server.dirs()[1]);
    server.restart();

    let s3 = server.client();
    assert_objects_read_back(&s3, &objects).await;
    let data = random_bytes(MIB + 7);
    put_streaming(&s3, BUCKET, "written-with-a-drive-offline", &data).await;
    assert_same_bytes(&get_bytes(&s3, BUCKET, "written-with-a-drive-offline").await, &data, "new object");

    assert_eq!(curl(&[&format!("{}/health/ready", server.url())]).status, 200, "3 of 4 drives reach write quorum");
    let metrics = curl(&[&format!("{}/metrics", server.url())]).text();
    let offline = format!(r#"sovereign_s3_drive_online{{drive="{}"}} 0"#, server.dirs()[1].display());
    assert!(metrics.lines().any(|line| line == offline), "expected {offline} in:\n{metrics}");
    assert!(server.log().contains("stays offline"), "the log names the offline drive");
}
