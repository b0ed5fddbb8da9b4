//! The commit protocol under crashes, as a state machine: a separate process is killed at each
//! step of a commit (after 0, 1, ... n drives applied it) for 2+2 and 12+4 sets, then the store
//! is reopened and the invariants checked:
//! - an acknowledged write is never lost, and the key never shows "neither" version;
//! - a key shows its last acknowledged version or a newer one, with the bytes a client wrote;
//! - the previous version's data survives the restart's orphan reclaim when it is still current;
//! - reads are monotonic: once a version was returned, later reads (after the healer ran) never
//!   return an older one;
//! - in a bucket with versioning enabled, the overwritten version stays readable by its id.
//!
//! The child is this test binary itself, running the ignored `crash_child` test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use sovereign_storage::bucket_config::VersioningStatus;
use sovereign_storage::put::BodyStream;
use sovereign_storage::versions::{ListedVersion, VersionId};
use sovereign_storage::{ObjectMeta, ObjectStore, StorageError, StoreConfig};

const CHILD_DRIVES: &str = "CRASH_CHILD_DRIVES";
const CHILD_PHASE: &str = "CRASH_CHILD_PHASE";
const CHILD_SIZE: &str = "CRASH_CHILD_SIZE";
const CHILD_VERSIONED: &str = "CRASH_CHILD_VERSIONED";
const CRASH_ENV: &str = "SOVEREIGN_S3_TEST_CRASH";
const ACKED: &str = "CRASH-CHILD-ACKED";

fn data(len: usize, version: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(version)).collect()
}

fn body(bytes: Bytes) -> BodyStream {
    let chunks: Vec<_> = bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn open(drives: &[PathBuf]) -> std::sync::Arc<ObjectStore> {
    let config = StoreConfig { drives: drives.to_vec(), durable: true, ..StoreConfig::default() };
    ObjectStore::open(config).await.expect("open store")
}

async fn read(store: &ObjectStore) -> Result<Bytes, StorageError> {
    read_version(store, None).await
}

async fn read_version(store: &ObjectStore, which: Option<VersionId>) -> Result<Bytes, StorageError> {
    let mut stream = store.get_version("b", "k", which).await?.read(None).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out.into())
}

/// The child process: phase 1 creates the bucket and writes version 1; phase 2 overwrites it
/// with version 2 and reports the acknowledgement, then waits for the cleanup to run (or for
/// the crash hook to abort it).
#[test]
#[ignore = "run by the crash tests as their child process"]
fn crash_child() {
    let Ok(drives) = std::env::var(CHILD_DRIVES) else { return };
    let drives: Vec<PathBuf> = drives.split(':').map(PathBuf::from).collect();
    let phase: u8 = std::env::var(CHILD_PHASE).unwrap().parse().unwrap();
    let size: usize = std::env::var(CHILD_SIZE).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = open(&drives).await;
        if phase == 1 {
            store.create_bucket("b").await.unwrap();
            if std::env::var(CHILD_VERSIONED).is_ok() {
                let enable = |config: &mut sovereign_storage::bucket_config::BucketConfig| {
                    config.versioning = Some(VersioningStatus::Enabled);
                    Ok(())
                };
                store.update_bucket_config("b", enable).await.unwrap();
            }
        }
        let bytes = data(size, phase);
        store.put_object("b", "k", body(bytes.clone()), Some(size as u64), ObjectMeta::default()).await.unwrap();
        println!("{ACKED}");
        if std::env::var(CRASH_ENV).is_ok() {
            // The crash hook aborts this process during the cleanup that follows the
            // acknowledgement; a child still alive after this never reached its crash point.
            tokio::time::sleep(Duration::from_secs(10)).await;
            panic!("the crash hook never fired");
        }
    });
}

/// Runs the child for `phase`, crashing at `point` once `after` drives applied it.
fn run_child(drives: &[PathBuf], phase: u8, size: usize, versioned: bool, crash: Option<(&str, usize)>) -> bool {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DRIVES, drives.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":"))
        .env(CHILD_PHASE, phase.to_string())
        .env(CHILD_SIZE, size.to_string())
        .env_remove(CHILD_VERSIONED)
        .env_remove(CRASH_ENV);
    if versioned {
        command.env(CHILD_VERSIONED, "1");
    }
    if let Some((point, after)) = crash {
        command.env(CRASH_ENV, format!("{point}:{after}"));
    }
    let output = command.output().expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if crash.is_none() {
        assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    } else {
        // Aborted by the hook (SIGABRT), not exited or panicked: the crash happened where asked.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(6), "child not aborted at its crash point: {:?}", output.status);
    }
    stdout.contains(ACKED)
}

/// Makes every file old, so the restart's orphan reclaim considers all of them.
fn age_files(root: &std::path::Path) {
    let status = Command::new("find")
        .arg(root)
        .args(["-type", "f", "-exec", "touch", "-d", "1 hour ago", "{}", "+"])
        .status()
        .expect("find");
    assert!(status.success());
}

/// One crash scenario: returns which version the reopened store shows.
async fn scenario(drive_count: usize, size: usize, versioned: bool, point: &str, after: usize) -> u8 {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (0..drive_count).map(|i| dir.path().join(format!("d{i}"))).collect();
    assert!(run_child(&drives, 1, size, versioned, None), "version 1 acknowledged");
    let acked = run_child(&drives, 2, size, versioned, Some((point, after)));
    age_files(dir.path());
    let store = open(&drives).await;
    let context = format!("{drive_count} drives, {size} bytes, crash at {point} after {after} drives");
    let first = read(&store).await.unwrap_or_else(|e| panic!("{context}: the key vanished: {e}"));
    let version = match first {
        ref b if *b == data(size, 2) => 2,
        ref b if *b == data(size, 1) => 1,
        _ => panic!("{context}: bytes no client wrote"),
    };
    if acked {
        assert_eq!(version, 2, "{context}: the acknowledged version 2 was lost");
    }
    // Once the start-up reclaim has run, reads stay on the same version or move forward.
    store.startup_finished().await;
    for _ in 0..3 {
        let again = read(&store).await.unwrap_or_else(|e| panic!("{context}: read after reclaim failed: {e}"));
        let now = if again == data(size, 2) { 2 } else { 1 };
        assert!(now >= version, "{context}: a read went back from version {version} to {now}");
        assert_eq!(again, data(size, now), "{context}");
    }
    if versioned {
        // Both versions survive a crash mid-overwrite: the one overwritten is listed and read by
        // its id, and so is the new one once it shows.
        let listed = store.list_object_versions("b", "", None, None, None, 10).await.unwrap();
        let mut kept = Vec::new();
        for entry in listed.entries {
            let ListedVersion::Version { record, .. } = entry else { continue };
            let bytes = read_version(&store, Some(VersionId::of(&record))).await.unwrap();
            kept.push(if bytes == data(size, 2) { 2 } else { 1 });
        }
        let expected: Vec<u8> = if version == 2 { vec![2, 1] } else { vec![1] };
        assert_eq!(kept, expected, "{context}: versions listed and readable by id");
    }
    version
}

async fn every_split(drive_count: usize, sizes: &[usize], versioned: bool, point: &str) {
    for &size in sizes {
        let mut seen = Vec::new();
        for after in 0..=drive_count {
            seen.push(scenario(drive_count, size, versioned, point, after).await);
        }
        // Before any drive applied version 2, version 1 stays; once all did, version 2 shows.
        assert_eq!(seen[0], 1, "{drive_count} drives, {size} bytes: {seen:?}");
        assert_eq!(seen[drive_count], 2, "{drive_count} drives, {size} bytes: {seen:?}");
    }
}

/// Inline (4 KiB) and file-backed (300 KiB) objects.
const SIZES: [usize; 2] = [4096, 300 * 1024];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_an_overwrite_keeps_the_last_acknowledged_version_2_plus_2() {
    every_split(4, &SIZES, false, "add_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_versioned_overwrite_keeps_both_versions() {
    every_split(4, &SIZES, true, "add_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_an_overwrite_keeps_the_last_acknowledged_version_12_plus_4() {
    every_split(16, &SIZES, false, "add_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_cleanup_after_an_overwrite_keeps_the_new_version() {
    for &size in &SIZES {
        for after in 0..=4 {
            assert_eq!(
                scenario(4, size, false, "cleanup", after).await,
                2,
                "{size} bytes, cleanup cut after {after} drives"
            );
        }
    }
}
