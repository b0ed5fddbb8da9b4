//! The object store end to end in-process: real drives in temporary directories, failures
//! made by deleting and corrupting their files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use sovereign_storage::drive::Condition;
use sovereign_storage::multipart::{ChosenPart, MIN_PART_SIZE};
use sovereign_storage::put::BodyStream;
use sovereign_storage::upload_list::{UploadEntry, UploadMarker, UploadQuery};
use sovereign_storage::{ObjectMeta, ObjectStore, StorageError, StoreConfig};
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    drives: Vec<PathBuf>,
}

impl Fixture {
    fn new(count: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let drives = (1..=count).map(|i| dir.path().join(format!("d{i}"))).collect();
        Self { _dir: dir, drives }
    }

    async fn open(&self) -> std::sync::Arc<ObjectStore> {
        ObjectStore::open(StoreConfig { drives: self.drives.clone(), durable: false, ..StoreConfig::default() })
            .await
            .unwrap()
    }

    fn shard_files(&self, drive: usize) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in std::fs::read_dir(self.drives[drive].join("data")).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                files.push(file.unwrap().path());
            }
        }
        files
    }
}

fn data(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed as u32) as u8).collect()
}

fn body(bytes: Bytes) -> BodyStream {
    let chunks: Vec<_> = bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn put(store: &ObjectStore, key: &str, bytes: &Bytes) {
    store.put_object("b", key, body(bytes.clone()), Some(bytes.len() as u64), ObjectMeta::default()).await.unwrap();
}

async fn read(store: &ObjectStore, key: &str, range: Option<std::ops::Range<u64>>) -> Result<Bytes, StorageError> {
    let mut stream = store.get_object("b", key).await?.read(range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out.into())
}

fn wipe(path: &Path) {
    std::fs::remove_dir_all(path).unwrap();
    std::fs::create_dir_all(path).unwrap();
}

const SIZES: [usize; 5] = [0, 4096, 200 * 1024, 1 << 20, (5 << 20) + 123];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_roundtrip_with_ranges() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    for (i, size) in SIZES.into_iter().enumerate() {
        let bytes = data(size, i as u8);
        put(&store, &format!("k{i}"), &bytes).await;
        assert_eq!(read(&store, &format!("k{i}"), None).await.unwrap(), bytes);
        if size > 10 {
            let range = 3..(size as u64 - 5);
            assert_eq!(read(&store, &format!("k{i}"), Some(range.clone())).await.unwrap(), bytes.slice(3..size - 5));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lost_drives_still_read_and_a_third_is_quorum_lost() {
    let fixture = Fixture::new(4);
    let objects: Vec<Bytes> = SIZES.iter().enumerate().map(|(i, s)| data(*s, i as u8)).collect();
    {
        let store = fixture.open().await;
        store.create_bucket("b").await.unwrap();
        for (i, bytes) in objects.iter().enumerate() {
            put(&store, &format!("k{i}"), bytes).await;
        }
        store.close().await.unwrap();
    }
    wipe(&fixture.drives[0]);
    wipe(&fixture.drives[2]);
    let store = fixture.open().await;
    for (i, bytes) in objects.iter().enumerate() {
        assert_eq!(&read(&store, &format!("k{i}"), None).await.unwrap(), bytes, "object {i}");
    }
    let listed = store.list_objects("b", "", None, None, 100).await.unwrap();
    assert_eq!(listed.entries.len(), objects.len());
    // The blank drives are healed in the background: wait for their shard files to return.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fixture.shard_files(0).len() < 2 || fixture.drives[0].join("healing").exists() {
        assert!(Instant::now() < deadline, "drive was not healed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await.unwrap();
    wipe(&fixture.drives[1]);
    wipe(&fixture.drives[3]);
    let store = fixture.open().await;
    for (i, bytes) in objects.iter().enumerate() {
        assert_eq!(&read(&store, &format!("k{i}"), None).await.unwrap(), bytes, "after heal, object {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_lost_drives_is_quorum_lost() {
    let fixture = Fixture::new(4);
    {
        let store = fixture.open().await;
        store.create_bucket("b").await.unwrap();
        put(&store, "k", &data(1 << 20, 1)).await;
        store.close().await.unwrap();
    }
    for drive in 0..3 {
        wipe(&fixture.drives[drive]);
    }
    let store = fixture.open().await;
    let err = read(&store, "k", None).await.unwrap_err();
    assert!(matches!(err, StorageError::QuorumLost { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_shards_are_detected_repaired_and_healed() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    let bytes = data((3 << 20) + 77, 9);
    put(&store, "k", &bytes).await;
    let victims: Vec<PathBuf> = [0, 1].iter().map(|d| fixture.shard_files(*d)[0].clone()).collect();
    let originals: Vec<Vec<u8>> = victims.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for path in &victims {
        let mut corrupt = std::fs::read(path).unwrap();
        for at in [20, 5000, corrupt.len() - 1] {
            corrupt[at] ^= 0x5A;
        }
        std::fs::write(path, corrupt).unwrap();
    }
    assert_eq!(read(&store, "k", None).await.unwrap(), bytes);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Vec<Vec<u8>> = victims.iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
        if now == originals {
            break;
        }
        assert!(Instant::now() < deadline, "corrupt shards were not rewritten");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_and_delete_reclaim_shard_files() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    put(&store, "k", &data(2 << 20, 1)).await;
    put(&store, "k", &data(2 << 20, 2)).await;
    assert_eq!(read(&store, "k", None).await.unwrap(), data(2 << 20, 2));
    // The replaced version's files are reclaimed in the background once the overwrite is acked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (0..4).any(|drive| fixture.shard_files(drive).len() != 1) {
        assert!(std::time::Instant::now() < deadline, "replaced shard files still present");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    store.delete_object("b", "k", None).await.unwrap();
    assert!(matches!(read(&store, "k", None).await, Err(StorageError::NoSuchKey { .. })));
    // The delete marker's cleanup removes the version, the marker and the files.
    while (0..4).any(|drive| !fixture.shard_files(drive).is_empty()) {
        assert!(std::time::Instant::now() < deadline, "deleted version's shard files still present");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_overwrites_of_one_key_leave_one_readable_winner() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    for round in 0..4u8 {
        let bodies: Vec<Bytes> = (0..8u8).map(|i| data(300 << 10, round * 8 + i)).collect();
        let writes = bodies.iter().map(|body| put(&store, "hot", body));
        futures::future::join_all(writes).await;
        let read = read(&store, "hot", None).await.expect("the key reads after concurrent overwrites");
        assert!(bodies.contains(&read), "round {round}: the object is one of the bodies written");
    }
    // Every replaced version's files are reclaimed; the winner's remain, one per drive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (0..4).any(|drive| fixture.shard_files(drive).len() != 1) {
        assert!(std::time::Instant::now() < deadline, "replaced shard files still present");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_writes_are_invisible_and_reclaimed_at_start() {
    let fixture = Fixture::new(4);
    {
        let store = fixture.open().await;
        store.create_bucket("b").await.unwrap();
        put(&store, "kept", &data(1 << 20, 3)).await;
        let failing: BodyStream = Box::pin(futures::stream::iter(vec![
            Ok(data(3 << 20, 4)),
            Err(StorageError::Body("client went away".into())),
        ]));
        assert!(store.put_object("b", "lost", failing, None, ObjectMeta::default()).await.is_err());
        // A crash leaves staged files behind: simulate one.
        std::fs::create_dir_all(fixture.drives[0].join("data/00")).unwrap();
        std::fs::write(fixture.drives[0].join("data/00/0000000000000000000000000000abcd.0badb007.partial"), b"x")
            .unwrap();
        let orphan = fixture.drives[0].join("data/00/00000000000000000000000000001234");
        std::fs::write(&orphan, b"orphan").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(old).unwrap();
        store.close().await.unwrap();
    }
    let store = fixture.open().await;
    assert!(matches!(read(&store, "lost", None).await, Err(StorageError::NoSuchKey { .. })));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture.shard_files(0).len() != 1 {
        assert!(Instant::now() < deadline, "orphans not reclaimed: {:?}", fixture.shard_files(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read(&store, "kept", None).await.unwrap(), data(1 << 20, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_completes_into_one_object() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    let upload = store.create_upload("b", "mp", Default::default()).await.unwrap();
    let parts = [data(MIN_PART_SIZE as usize, 1), data(1000, 2)];
    let mut chosen = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i as i32 + 1;
        let staged = store.stage_part("b", "mp", body(part.clone()), Some(part.len() as u64)).await.unwrap();
        let piece = store.commit_part("b", "mp", upload.upload_id, number, staged, None).await.unwrap();
        chosen.push(ChosenPart { number, etag: piece.etag, checksum: None });
    }
    assert_eq!(store.list_uploads("b", &UploadQuery::first(10)).await.unwrap().entries.len(), 1);
    let record =
        store.complete_upload("b", "mp", upload.upload_id, &chosen, Condition::None, |_, _| Ok(None)).await.unwrap();
    assert!(record.etag.ends_with("-2"));
    let whole: Vec<u8> = parts.concat();
    assert_eq!(read(&store, "mp", None).await.unwrap(), whole);
    let range = (MIN_PART_SIZE - 10)..(MIN_PART_SIZE + 10);
    assert_eq!(read(&store, "mp", Some(range.clone())).await.unwrap(), whole[range.start as usize..range.end as usize]);
    assert!(store.list_uploads("b", &UploadQuery::first(10)).await.unwrap().entries.is_empty());
    assert!(matches!(store.abort_upload("b", "mp", upload.upload_id).await, Err(StorageError::NoSuchUpload(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_several_sets() {
    let fixture = Fixture::new(20);
    let store = fixture.open().await;
    assert_eq!(store.layout().sets, 2);
    store.create_bucket("b").await.unwrap();
    let mut keys: Vec<String> = (0..30).map(|i| format!("dir{}/obj{i:02}", i % 3)).collect();
    keys.extend((0..5).map(|i| format!("top{i}")));
    for key in &keys {
        put(&store, key, &Bytes::from_static(b"x")).await;
    }
    keys.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_objects("b", "", None, after.as_deref(), 7).await.unwrap();
        seen.extend(page.entries.iter().map(|e| e.name().to_owned()));
        if !page.truncated {
            break;
        }
        after = page.entries.last().map(|e| e.name().to_owned());
    }
    assert_eq!(seen, keys);
    let rolled = store.list_objects("b", "", Some("/"), None, 100).await.unwrap();
    let names: Vec<&str> = rolled.entries.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["dir0/", "dir1/", "dir2/", "top0", "top1", "top2", "top3", "top4"]);
    let inside = store.list_objects("b", "dir1/", Some("/"), None, 100).await.unwrap();
    assert_eq!(inside.entries.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_ending_in_the_delimiter_pages_like_any_key() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    for key in ["d/", "d/e", "d/f/g", "d0"] {
        put(&store, key, &Bytes::from_static(b"x")).await;
    }
    // Under prefix `d/`, the folder marker `d/` is a key, not a common prefix: a page that ends
    // on it must not skip `d/e` and `d/f/`. At the top level `d/` is a common prefix, which
    // skips all of them.
    for (prefix, expected) in [("d/", vec!["d/", "d/e", "d/f/"]), ("", vec!["d/", "d0"])] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_objects("b", prefix, Some("/"), after.as_deref(), 1).await.unwrap();
            seen.extend(page.entries.iter().map(|e| e.name().to_owned()));
            if !page.truncated {
                break;
            }
            after = page.entries.last().map(|e| e.name().to_owned());
        }
        assert_eq!(seen, expected, "prefix {prefix:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_created_listed_and_deleted_only_when_empty() {
    let fixture = Fixture::new(1);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    assert!(matches!(store.create_bucket("b").await, Err(StorageError::BucketExists(_))));
    put(&store, "k", &data(10, 1)).await;
    assert!(matches!(store.delete_bucket("b").await, Err(StorageError::BucketNotEmpty(_))));
    store.delete_object("b", "k", None).await.unwrap();
    store.delete_bucket("b").await.unwrap();
    assert!(store.list_buckets().await.unwrap().is_empty());
    assert!(matches!(store.bucket("b").await, Err(StorageError::NoSuchBucket(_))));
}

/// Pages through uploads as ListMultipartUploads does: every upload exactly once, in key then
/// id order, whatever the page size, with common prefixes rolled up once, and markers that
/// resume after a key, after an upload, and after a common prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_listed_page_by_page_exactly_once() {
    let fixture = Fixture::new(4);
    let store = fixture.open().await;
    store.create_bucket("b").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..150 {
        for _ in 0..2 {
            let key = format!("k{i:03}");
            let upload = store.create_upload("b", &key, Default::default()).await.unwrap();
            expected.push((key, upload.upload_id));
        }
    }
    for i in 0..30 {
        store.create_upload("b", &format!("d/{i}"), Default::default()).await.unwrap();
    }
    expected.sort();
    for max in [1, 7, 1000] {
        let mut listed = Vec::new();
        let mut prefixes = Vec::new();
        let mut marker = UploadMarker::Start;
        loop {
            let query = UploadQuery { prefix: String::new(), delimiter: Some("/".into()), marker, max };
            let page = store.list_uploads("b", &query).await.unwrap();
            assert!(page.entries.len() <= max);
            marker = match page.entries.last() {
                Some(UploadEntry::Upload(u)) => UploadMarker::AfterUpload(u.key.clone(), u.upload_id.to_string()),
                Some(UploadEntry::Prefix(p)) => UploadMarker::AfterKey(p.clone()),
                None => UploadMarker::Start,
            };
            for entry in page.entries {
                match entry {
                    UploadEntry::Upload(u) => listed.push((u.key, u.upload_id)),
                    UploadEntry::Prefix(p) => prefixes.push(p),
                }
            }
            if !page.truncated {
                break;
            }
        }
        assert_eq!(prefixes, ["d/"], "page size {max}");
        assert_eq!(listed, expected, "page size {max}");
    }
    let after_key =
        UploadQuery { prefix: "k".into(), delimiter: None, marker: UploadMarker::AfterKey("k148".into()), max: 10 };
    let page = store.list_uploads("b", &after_key).await.unwrap();
    let keys: Vec<_> = page
        .entries
        .iter()
        .map(|e| match e {
            UploadEntry::Upload(u) => u.key.as_str(),
            UploadEntry::Prefix(p) => p.as_str(),
        })
        .collect();
    assert_eq!(keys, ["k149", "k149"]);
    assert!(!page.truncated);
}

/// An ACL decides access and a read takes the first holder's copy of a version's metadata, so
/// an ACL change is acknowledged only when every drive of the set took it: with a drive offline
/// it is refused and changes nothing, while tags (quorum) still change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_change_needs_every_drive() {
    use sovereign_storage::acl::Acl;
    let fixture = Fixture::new(4);
    {
        let store = fixture.open().await;
        store.create_bucket("b").await.unwrap();
        put(&store, "k", &data(100, 1)).await;
        store.close().await.unwrap();
    }
    // Drive 4 cannot be opened (its directory is a file): it stays offline for this run.
    let parked = fixture.drives[3].with_extension("parked");
    std::fs::rename(&fixture.drives[3], &parked).unwrap();
    std::fs::write(&fixture.drives[3], b"not a drive").unwrap();
    let public = Acl { owner: "owner".into(), grants: Vec::new() };
    {
        let store = fixture.open().await;
        store.set_version_tags("b", "k", None, vec![("t".into(), "v".into())]).await.unwrap();
        let refused = store.set_version_acl("b", "k", None, public.clone()).await;
        assert!(matches!(refused, Err(StorageError::QuorumLost { needed: 4, online: 3, .. })), "{refused:?}");
        let acl = store.get_version("b", "k", None).await.unwrap().record().acl.clone();
        assert_eq!(acl, None, "nothing applied");
        store.close().await.unwrap();
    }
    std::fs::remove_file(&fixture.drives[3]).unwrap();
    std::fs::rename(&parked, &fixture.drives[3]).unwrap();
    let store = fixture.open().await;
    store.set_version_acl("b", "k", None, public.clone()).await.unwrap();
    assert_eq!(store.get_version("b", "k", None).await.unwrap().record().acl, Some(public));
}
