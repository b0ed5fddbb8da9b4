//! The commit protocol checked against a model, with random operations: puts (some
//! conditional, some racing each other), deletes, drives going down and coming back, on a 2+2
//! set of real local drives behind a switch that makes a drive fail every call. After every
//! step, every key is read and checked against the model:
//! - an acknowledged write is never lost: the value read is the last acknowledged one or one
//!   written after it (a failed write may or may not have taken effect, as in S3);
//! - nothing is read that no writer wrote;
//! - racing writers converge on the one with the newest stamp (last writer wins);
//! - of conditional writers racing for an absent key, at most one succeeds;
//! - reads are monotonic while every drive answers.
//!
//! Each run is seeded; a failure names its seed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sovereign_storage::bucket_config::BucketConfig;
use sovereign_storage::drive::{
    Condition, Drive, DriveOp, DriveUsage, DriveVersions, ListEntry, ListQuery, Outcome, ShardReader, ShardWriter,
    VersionEntry, VersionsQuery,
};
use sovereign_storage::erasure::Erasure;
use sovereign_storage::get::decode_inline;
use sovereign_storage::heal::HealQueue;
use sovereign_storage::local::LocalDrive;
use sovereign_storage::meta::{self, BucketRecord, ChangeRecord, PartRecord, UploadRecord, VersionRecord};
use sovereign_storage::put::encode_all;
use sovereign_storage::quorum::Quorum;
use sovereign_storage::set::ErasureSet;
use sovereign_storage::stamp::{Clock, Stamp};
use sovereign_storage::versions::VersionId;
use sovereign_storage::{commit, Result, StorageError};
use uuid::Uuid;

/// A local drive behind a switch: while down, every call fails as an unreachable drive's would.
#[derive(Debug)]
struct Switched {
    drive: LocalDrive,
    down: AtomicBool,
}

impl Switched {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StorageError::DriveOffline { drive: "switched".into(), reason: "down".into() });
        }
        Ok(())
    }
}

#[async_trait]
impl Drive for Switched {
    fn label(&self) -> &str {
        self.drive.label()
    }
    fn is_healing(&self) -> bool {
        false
    }
    async fn probe(&self) -> Result<()> {
        self.check()?;
        self.drive.probe().await
    }
    fn usage(&self) -> Option<DriveUsage> {
        None
    }
    async fn put_bucket(&self, record: BucketRecord) -> Result<()> {
        self.check()?;
        self.drive.put_bucket(record).await
    }
    async fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        self.check()?;
        self.drive.bucket(name).await
    }
    async fn bucket_configs(&self, bucket: &str) -> Result<Vec<BucketConfig>> {
        self.check()?;
        self.drive.bucket_configs(bucket).await
    }
    async fn version(&self, bucket: &str, key: &str, which: VersionId) -> Result<Option<VersionRecord>> {
        self.check()?;
        self.drive.version(bucket, key, which).await
    }
    async fn list_versions(&self, bucket: &str, query: &VersionsQuery) -> Result<Vec<VersionEntry>> {
        self.check()?;
        self.drive.list_versions(bucket, query).await
    }
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.check()?;
        self.drive.list_buckets().await
    }
    async fn fence_bucket(&self, name: &str, created_ns: i64) -> Result<()> {
        self.check()?;
        self.drive.fence_bucket(name, created_ns).await
    }
    async fn restore_bucket(&self, record: BucketRecord) -> Result<()> {
        self.check()?;
        self.drive.restore_bucket(record).await
    }
    async fn purge_bucket(&self, name: &str) -> Result<()> {
        self.check()?;
        self.drive.purge_bucket(name).await
    }
    async fn versions(&self, bucket: &str, key: &str, limit: usize) -> Result<DriveVersions> {
        self.check()?;
        self.drive.versions(bucket, key, limit).await
    }
    async fn commit(&self, bucket: &str, key: &str, op: DriveOp) -> Result<Outcome> {
        self.check()?;
        self.drive.commit(bucket, key, op).await
    }
    async fn list_latest(&self, bucket: &str, query: &ListQuery) -> Result<Vec<ListEntry>> {
        self.check()?;
        self.drive.list_latest(bucket, query).await
    }
    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.check()?;
        self.drive.changes_since(after, limit).await
    }
    async fn trim_changes(&self, through: u64) -> Result<()> {
        self.check()?;
        self.drive.trim_changes(through).await
    }
    async fn create_shard(&self, data_id: Uuid) -> Result<Box<dyn ShardWriter>> {
        self.check()?;
        self.drive.create_shard(data_id).await
    }
    async fn open_shard(&self, data_id: Uuid) -> Result<Arc<dyn ShardReader>> {
        self.check()?;
        self.drive.open_shard(data_id).await
    }
    async fn discard_shard(&self, data_id: Uuid) -> Result<()> {
        self.check()?;
        self.drive.discard_shard(data_id).await
    }
    async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<Option<UploadRecord>> {
        self.check()?;
        self.drive.upload(bucket, key, upload_id).await
    }
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Uuid)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>> {
        self.check()?;
        self.drive.list_uploads(bucket, prefix, after, limit).await
    }
    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.check()?;
        self.drive.list_parts(upload_id).await
    }
}

const KEYS: [&str; 3] = ["a", "b", "c"];
const DRIVES: usize = 4;

struct Harness {
    _dir: tempfile::TempDir,
    drives: Vec<Arc<Switched>>,
    set: Arc<ErasureSet>,
    clock: Clock,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut drives = Vec::new();
        for i in 0..DRIVES {
            let drive = LocalDrive::open(&dir.path().join(format!("d{i}")), false).unwrap();
            drive.put_bucket(BucketRecord { name: "b".into(), created_ns: 1 }).await.unwrap();
            drives.push(Arc::new(Switched { drive, down: AtomicBool::new(false) }));
        }
        let erasure = Erasure::new(2, 2, 1 << 20).unwrap();
        let set = Arc::new(ErasureSet {
            drives: drives.iter().map(|d| Arc::clone(d) as Arc<dyn Drive>).collect(),
            erasure,
            quorum: Quorum::new(2, 2),
            inline_threshold_bytes: 1 << 17,
            heal: HealQueue::new().0,
            clock: Arc::new(Clock::new(99)),
            cleanups: Default::default(),
        });
        Self { _dir: dir, drives, set, clock: Clock::new(7) }
    }

    fn up(&self) -> usize {
        self.drives.iter().filter(|d| !d.down.load(Ordering::SeqCst)).count()
    }

    /// One record per drive for `value` (inline shards), stamped now.
    fn records(&self, value: &Bytes, delete: bool) -> (Stamp, Vec<Option<VersionRecord>>) {
        let stamp = self.clock.next();
        let erasure = self.set.erasure;
        let shards = encode_all(&erasure, value).unwrap();
        let base = VersionRecord {
            version_id: Uuid::new_v4(),
            stamp,
            null_version: true,
            mod_time_ns: stamp.unix_ns(),
            delete_marker: delete,
            size: value.len() as u64,
            etag: hex_of(value),
            headers: Default::default(),
            user_metadata: Default::default(),
            tags: Vec::new(),
            checksum: None,
            erasure,
            shard_index: 0,
            parts: Vec::new(),
            inline: None,
            completed_upload: None,
            encryption: None,
            acl: None,
        };
        let records = (0..DRIVES)
            .map(|drive| {
                let mut copy = base.clone();
                copy.shard_index = drive;
                copy.inline = (!delete).then(|| shards[drive].clone());
                Some(copy)
            })
            .collect();
        (stamp, records)
    }

    async fn write(&self, key: &str, value: &Bytes, delete: bool, condition: Condition) -> (Stamp, Result<()>) {
        let (stamp, records) = self.records(value, delete);
        (stamp, commit::add_version(&self.set, "b", key, records, condition, "model").await)
    }

    async fn read(&self, key: &str) -> Result<Option<(Stamp, Bytes)>> {
        match self.set.latest("b", key, "model").await? {
            Some(agreed) if !agreed.record().delete_marker => {
                let stamp = agreed.record().stamp;
                Ok(Some((stamp, decode_inline(&agreed)?.0)))
            }
            _ => Ok(None),
        }
    }
}

fn hex_of(value: &Bytes) -> String {
    format!("{:x}", value.len()) + &value.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()
}

/// What the model knows of one key: every write with its stamp and value (`None` = delete),
/// and which were acknowledged.
#[derive(Default)]
struct KeyModel {
    writes: Vec<(Stamp, Option<Bytes>, bool)>,
    /// Stamp of the newest version read while every drive answered.
    read_floor: Option<Stamp>,
}

impl KeyModel {
    fn last_acked(&self) -> Option<Stamp> {
        self.writes.iter().filter(|(_, _, acked)| *acked).map(|(s, _, _)| *s).max()
    }

    /// Checks a read against the model.
    fn check(&mut self, seed: u64, step: usize, key: &str, read: Option<(Stamp, Bytes)>, all_up: bool) {
        let context = format!("seed {seed}, step {step}, key {key}");
        match &read {
            Some((stamp, bytes)) => {
                let write = self.writes.iter().find(|(s, _, _)| s == stamp);
                let Some((_, value, _)) = write else { panic!("{context}: read a version no writer wrote") };
                assert_eq!(value.as_ref(), Some(bytes), "{context}: bytes differ from what was written");
                if let Some(acked) = self.last_acked() {
                    assert!(*stamp >= acked, "{context}: the acknowledged write {acked:?} was lost (read {stamp:?})");
                }
            }
            None => {
                // Absent is allowed only when the newest acknowledged write is a delete (or there
                // is none), or when a later write (a delete whose outcome is unknown) may have
                // taken effect.
                if let Some(acked) = self.last_acked() {
                    let acked_is_delete = self.writes.iter().any(|(s, v, _)| *s == acked && v.is_none());
                    let later_delete = self.writes.iter().any(|(s, v, a)| *s > acked && v.is_none() && !a);
                    assert!(acked_is_delete || later_delete, "{context}: the acknowledged write {acked:?} vanished");
                }
            }
        }
        let stamp = read.as_ref().map(|(s, _)| *s);
        if all_up {
            if let (Some(floor), Some(now)) = (self.read_floor, stamp) {
                assert!(now >= floor, "{context}: a read went back from {floor:?} to {now:?}");
            }
            if let Some(now) = stamp {
                self.read_floor = Some(self.read_floor.map_or(now, |f| f.max(now)));
            }
        }
    }
}

async fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let h = Harness::new().await;
    let mut model: HashMap<&str, KeyModel> = KEYS.iter().map(|k| (*k, KeyModel::default())).collect();
    for step in 0..steps {
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        match rng.gen_range(0..100) {
            0..=39 => {
                let value = Bytes::from(vec![rng.gen::<u8>(); rng.gen_range(1..3000)]);
                let (stamp, result) = h.write(key, &value, false, Condition::None).await;
                model.get_mut(key).unwrap().writes.push((stamp, Some(value), result.is_ok()));
            }
            40..=49 => {
                let (stamp, result) = h.write(key, &Bytes::new(), true, Condition::None).await;
                model.get_mut(key).unwrap().writes.push((stamp, None, result.is_ok()));
            }
            50..=64 => {
                // Two writers race for the same key: both acknowledged means the newer stamp wins.
                let (a, b) = (Bytes::from(vec![1u8; 100]), Bytes::from(vec![2u8; 200]));
                let ((sa, ra), (sb, rb)) =
                    tokio::join!(h.write(key, &a, false, Condition::None), h.write(key, &b, false, Condition::None));
                let m = model.get_mut(key).unwrap();
                m.writes.push((sa, Some(a), ra.is_ok()));
                m.writes.push((sb, Some(b), rb.is_ok()));
            }
            65..=74 => {
                // Conditional writers race for the key while it is absent: at most one wins.
                if h.up() == DRIVES && h.read(key).await.ok().flatten().is_none() {
                    let (a, b) = (Bytes::from(vec![3u8; 50]), Bytes::from(vec![4u8; 60]));
                    let ((sa, ra), (sb, rb)) = tokio::join!(
                        h.write(key, &a, false, Condition::Absent),
                        h.write(key, &b, false, Condition::Absent)
                    );
                    assert!(!(ra.is_ok() && rb.is_ok()), "seed {seed}, step {step}: both conditional writers won");
                    let m = model.get_mut(key).unwrap();
                    m.writes.push((sa, Some(a), ra.is_ok()));
                    m.writes.push((sb, Some(b), rb.is_ok()));
                }
            }
            75..=87 => {
                let drive = rng.gen_range(0..DRIVES);
                // Never more than the parity down at once: beyond it every request fails anyway.
                if h.up() > 2 || h.drives[drive].down.load(Ordering::SeqCst) {
                    h.drives[drive].down.store(true, Ordering::SeqCst);
                }
            }
            _ => {
                let drive = rng.gen_range(0..DRIVES);
                h.drives[drive].down.store(false, Ordering::SeqCst);
            }
        }
        let all_up = h.up() == DRIVES;
        for key in KEYS {
            match h.read(key).await {
                Ok(read) => model.get_mut(key).unwrap().check(seed, step, key, read, all_up),
                // With drives down, a version written while others were down may lack enough
                // shards on the drives left (its write quorum tolerated fewer losses): 503 is
                // the honest answer. With every drive up, every read must succeed.
                Err(StorageError::QuorumLost { .. }) => assert!(!all_up, "seed {seed}, step {step}: read failed"),
                Err(e) => panic!("seed {seed}, step {step}, key {key}: {e}"),
            }
        }
    }
    // Everything settled: each drive's log is in order, and together they record every
    // acknowledged write (a drive that was down missed some).
    let mut logged = std::collections::HashSet::new();
    for drive in &h.drives {
        drive.down.store(false, Ordering::SeqCst);
        let log = drive.changes_since(0, usize::MAX).await.unwrap();
        assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "seed {seed}: change log out of order");
        assert!(log.iter().all(|c| c.bucket == "b" && KEYS.contains(&c.key.as_str())));
        logged.extend(
            log.iter()
                .filter(|c| matches!(c.kind, meta::ChangeKind::Put | meta::ChangeKind::DeleteMarker))
                .map(|c| c.stamp),
        );
    }
    for (key, m) in &model {
        for (stamp, _, acked) in &m.writes {
            assert!(!acked || logged.contains(stamp), "seed {seed}: acknowledged write to {key} not in any change log");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_and_drive_losses_keep_the_invariants() {
    let base: u64 = std::env::var("MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_201);
    for seed in base..base + 12 {
        run(seed, 150).await;
    }
}
