use super::*;
use crate::drive::{Condition, Drive, DriveOp, Outcome};
use crate::meta::{PartRecord, VersionRecord};
use crate::stamp::Stamp;

fn drive_with_bucket(dir: &Path) -> LocalDrive {
    let drive = LocalDrive::open(dir, false).unwrap();
    drive
        .inner
        .db
        .put(meta::bucket_key("bkt"), meta::encode(&BucketRecord { name: "bkt".into(), created_ns: 1 }).unwrap())
        .unwrap();
    drive
}

fn add(record: &VersionRecord) -> DriveOp {
    DriveOp::AddVersion { record: record.clone(), condition: Condition::None }
}

#[tokio::test]
async fn lookups_from_disk_and_from_cache_agree() {
    let dir = tempfile::tempdir().unwrap();
    let record = meta::test_record(7);
    {
        let drive = drive_with_bucket(dir.path());
        assert_eq!(drive.commit("bkt", "key", add(&record)).await.unwrap(), Outcome::Applied);
        let cached = drive.inner.versions_cached("bkt", "key", 1).unwrap().unwrap();
        assert_eq!(cached.versions, vec![record.clone()]);
        drive.inner.db.flush().unwrap();
    }
    // Reopened, the records are in table files and the block cache is cold: a lookup that
    // needs the disk is not answered from the cache, and the drive still answers it.
    let drive = LocalDrive::open(dir.path(), false).unwrap();
    assert_eq!(drive.versions("bkt", "key", 3).await.unwrap().versions, vec![record.clone()]);
    assert!(drive.versions("bkt", "other", 3).await.unwrap().versions.is_empty());
    assert!(drive.bucket("bkt").await.unwrap().is_some());
    assert!(drive.bucket("none").await.unwrap().is_none());
}

#[tokio::test]
async fn an_overwrite_keeps_the_previous_version_until_the_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let old = test_version_with_file(&drive, 1).await;
    let new = test_version_with_file(&drive, 2).await;
    drive.commit("bkt", "key", add(&old)).await.unwrap();
    drive.commit("bkt", "key", add(&new)).await.unwrap();
    let listed = drive.versions("bkt", "key", 10).await.unwrap();
    assert_eq!(listed.versions, vec![new.clone(), old.clone()], "newest first, nothing removed");
    // A restart's orphan reclaim keeps the old version's file: a record still names it.
    assert_eq!(drive.inner.reclaim_orphans(SystemTime::now() + Duration::from_secs(60)).unwrap(), 0);
    assert!(test_has_shard(&drive, old.parts[0].data_id));
    // Once the new version is acknowledged, the cleanup removes the old one and its file.
    let cleanup = DriveOp::Supersede { version_id: new.version_id, through: new.stamp, remove_marker: true };
    drive.commit("bkt", "key", cleanup.clone()).await.unwrap();
    assert_eq!(drive.versions("bkt", "key", 10).await.unwrap().versions, vec![new.clone()]);
    // Its file stays for a grace period (a GET may be opening it), then goes.
    assert!(test_has_shard(&drive, old.parts[0].data_id));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while test_has_shard(&drive, old.parts[0].data_id) {
        assert!(std::time::Instant::now() < deadline, "superseded file never reclaimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(test_has_shard(&drive, new.parts[0].data_id));
    // Idempotent: a crash may repeat it.
    drive.commit("bkt", "key", cleanup).await.unwrap();
    assert_eq!(drive.versions("bkt", "key", 10).await.unwrap().versions, vec![new]);
}

#[tokio::test]
async fn conditions_are_checked_in_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let first = meta::test_record(1);
    let absent = |r: &VersionRecord| DriveOp::AddVersion { record: r.clone(), condition: Condition::Absent };
    assert_eq!(drive.commit("bkt", "k", absent(&first)).await.unwrap(), Outcome::Applied);
    assert_eq!(drive.commit("bkt", "k", absent(&meta::test_record(2))).await.unwrap(), Outcome::Refused);
    let if_match = |r: &VersionRecord, etag: &str| DriveOp::AddVersion {
        record: r.clone(),
        condition: Condition::ETag(etag.into()),
    };
    let second = VersionRecord { etag: "e2".into(), ..meta::test_record(3) };
    assert_eq!(drive.commit("bkt", "k", if_match(&second, "other")).await.unwrap(), Outcome::Refused);
    assert_eq!(drive.commit("bkt", "k", if_match(&second, &first.etag)).await.unwrap(), Outcome::Applied);
    assert_eq!(drive.commit("nobucket", "k", add(&meta::test_record(4))).await.unwrap(), Outcome::Missing);
}

#[tokio::test]
async fn a_sealed_key_is_replaced_only_from_the_key_the_rewrap_read() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let encryption = meta::ObjectEncryption {
        mode: "aws:kms".into(),
        key_id: "k".into(),
        sealed_key: "vault:v1:old".into(),
        customer_key_mac: None,
        context: None,
        bucket_key_enabled: false,
        etag: None,
        package_bytes: 65536,
    };
    let record = VersionRecord { encryption: Some(encryption), ..meta::test_record(1) };
    drive.commit("bkt", "k", add(&record)).await.unwrap();
    let rewrap = |from: &str, to: &str| DriveOp::SetSealedKey {
        version_id: record.version_id,
        from: from.into(),
        to: to.into(),
    };
    let sealed_key = || async {
        let versions = drive.versions("bkt", "k", 1).await.unwrap().versions;
        versions[0].encryption.as_ref().unwrap().sealed_key.clone()
    };
    assert_eq!(drive.commit("bkt", "k", rewrap("vault:v1:other", "vault:v2:x")).await.unwrap(), Outcome::Refused);
    assert_eq!(sealed_key().await, "vault:v1:old");
    assert_eq!(drive.commit("bkt", "k", rewrap("vault:v1:old", "vault:v2:new")).await.unwrap(), Outcome::Applied);
    assert_eq!(sealed_key().await, "vault:v2:new");
    // Repeating it (a rewrap run again after a crash) is success; a racing rewrap is refused.
    assert_eq!(drive.commit("bkt", "k", rewrap("vault:v1:old", "vault:v2:new")).await.unwrap(), Outcome::Applied);
    assert_eq!(drive.commit("bkt", "k", rewrap("vault:v1:old", "vault:v2:race")).await.unwrap(), Outcome::Refused);
    assert_eq!(sealed_key().await, "vault:v2:new");
    let plain = meta::test_record(2);
    drive.commit("bkt", "p", add(&plain)).await.unwrap();
    let on_plain = DriveOp::SetSealedKey { version_id: plain.version_id, from: String::new(), to: "x".into() };
    assert_eq!(drive.commit("bkt", "p", on_plain).await.unwrap(), Outcome::Refused);
}

#[tokio::test]
async fn set_acl_replaces_one_versions_acl() {
    use crate::acl::{Acl, AclGrant, AclPermission, Grantee};
    use crate::versions::VersionId;
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let a = meta::test_record(1);
    drive.commit("bkt", "a", add(&a)).await.unwrap();
    let grant = AclGrant { grantee: Grantee::Group("g".into()), permission: AclPermission::Read };
    let acl = Acl { owner: "o".into(), grants: vec![grant] };
    let op = DriveOp::SetAcl { version_id: a.version_id, acl: acl.clone() };
    assert_eq!(drive.commit("bkt", "a", op).await.unwrap(), Outcome::Applied);
    let stored = drive.version("bkt", "a", VersionId::of(&a)).await.unwrap().unwrap();
    assert_eq!(stored.acl, Some(acl.clone()));
    assert_eq!(stored.tags, a.tags, "nothing else changes");
    let missing = DriveOp::SetAcl { version_id: uuid::Uuid::new_v4(), acl };
    assert_eq!(drive.commit("bkt", "a", missing).await.unwrap(), Outcome::Missing);
}

#[tokio::test]
async fn every_commit_is_in_the_change_log() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let a = meta::test_record(1);
    let b = meta::test_record(2);
    drive.commit("bkt", "a", add(&a)).await.unwrap();
    drive.commit("bkt", "b", add(&b)).await.unwrap();
    drive
        .commit("bkt", "a", DriveOp::SetTags { version_id: a.version_id, tags: vec![("t".into(), "v".into())] })
        .await
        .unwrap();
    let log = drive.changes_since(0, 100).await.unwrap();
    let summary: Vec<(u64, &str, meta::ChangeKind)> = log.iter().map(|c| (c.seq, c.key.as_str(), c.kind)).collect();
    assert_eq!(
        summary,
        vec![(1, "a", meta::ChangeKind::Put), (2, "b", meta::ChangeKind::Put), (3, "a", meta::ChangeKind::Metadata)]
    );
    assert_eq!(drive.changes_since(2, 100).await.unwrap().len(), 1);
    drive.trim_changes(2).await.unwrap();
    assert_eq!(drive.changes_since(0, 100).await.unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(), vec![3]);
    // The log continues after a restart.
    drop(drive);
    let drive = LocalDrive::open(dir.path(), false).unwrap();
    drive.commit("bkt", "c", add(&meta::test_record(5))).await.unwrap();
    assert_eq!(drive.changes_since(3, 100).await.unwrap()[0].seq, 4);
}

#[tokio::test]
async fn a_part_uploaded_again_replaces_the_first_only_after_its_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    let upload_id = Uuid::new_v4();
    let upload = meta::UploadRecord { upload_id, key: "k".into(), initiated_ns: 1, template: Default::default() };
    drive.commit("bkt", "k", DriveOp::CreateUpload { record: upload }).await.unwrap();
    let part = |data: meta::DataPart, hlc: u64| PartRecord {
        part: data,
        stamp: Stamp { hlc, writer: 1 },
        mod_time_ns: 1,
        erasure: meta::test_record(1).erasure,
        shard_index: 0,
    };
    let first = part(test_data_part(&drive, 1).await, 1);
    let second = part(test_data_part(&drive, 1).await, 2);
    drive.commit("bkt", "k", DriveOp::AddPart { upload_id, record: first.clone() }).await.unwrap();
    drive.commit("bkt", "k", DriveOp::AddPart { upload_id, record: second.clone() }).await.unwrap();
    // The second upload failed its quorum: removing it leaves the first intact.
    drive.commit("bkt", "k", DriveOp::RemovePart { upload_id, number: 1, stamp: second.stamp }).await.unwrap();
    assert_eq!(drive.list_parts(upload_id).await.unwrap(), vec![first.clone()]);
    assert!(test_has_shard(&drive, first.part.data_id));
    // A part for an upload that is gone is refused.
    let other = Uuid::new_v4();
    assert_eq!(
        drive.commit("bkt", "k", DriveOp::AddPart { upload_id: other, record: second }).await.unwrap(),
        Outcome::Missing
    );
    // An upload removed after its completion keeps the files a version names.
    let completed = VersionRecord { parts: vec![first.part.clone()], ..meta::test_record(3) };
    drive.commit("bkt", "k", add(&completed)).await.unwrap();
    drive.commit("bkt", "k", DriveOp::RemoveUpload { upload_id }).await.unwrap();
    assert!(test_has_shard(&drive, first.part.data_id), "the object's part is kept");
    assert!(drive.list_parts(upload_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn fencing_and_restoring_never_touch_another_incarnation_of_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    // A deletion of an older incarnation (created at 0) leaves the bucket created at 1 alone.
    drive.fence_bucket("bkt", 0).await.unwrap();
    assert_eq!(drive.bucket("bkt").await.unwrap().map(|b| b.created_ns), Some(1));
    // A deletion that fenced the bucket created at 1 and then found it not empty puts its record
    // back, but not over a bucket of the name created meanwhile (at 2, by another gateway).
    drive.fence_bucket("bkt", 1).await.unwrap();
    assert!(drive.bucket("bkt").await.unwrap().is_none());
    drive.put_bucket(BucketRecord { name: "bkt".into(), created_ns: 2 }).await.unwrap();
    drive.restore_bucket(BucketRecord { name: "bkt".into(), created_ns: 1 }).await.unwrap();
    assert_eq!(drive.bucket("bkt").await.unwrap().map(|b| b.created_ns), Some(2));
    drive.fence_bucket("bkt", 2).await.unwrap();
    drive.restore_bucket(BucketRecord { name: "bkt".into(), created_ns: 2 }).await.unwrap();
    assert_eq!(drive.bucket("bkt").await.unwrap().map(|b| b.created_ns), Some(2));
}

#[tokio::test]
async fn a_fenced_bucket_takes_no_commit_and_only_a_fenced_bucket_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let drive = drive_with_bucket(dir.path());
    drive.commit("bkt", "k", add(&meta::test_record(1))).await.unwrap();
    let upload_id = Uuid::new_v4();
    let upload = meta::UploadRecord { upload_id, key: "k".into(), initiated_ns: 1, template: Default::default() };
    drive.commit("bkt", "k", DriveOp::CreateUpload { record: upload }).await.unwrap();
    // Purging a bucket that has its record does nothing.
    drive.purge_bucket("bkt").await.unwrap();
    assert_eq!(drive.versions("bkt", "k", 10).await.unwrap().versions.len(), 1);
    drive.fence_bucket("bkt", 1).await.unwrap();
    assert_eq!(drive.commit("bkt", "k", add(&meta::test_record(3))).await.unwrap(), Outcome::Missing);
    // Fencing alone keeps the records: the bucket comes back whole with its record.
    assert_eq!(drive.versions("bkt", "k", 10).await.unwrap().versions.len(), 1);
    drive.purge_bucket("bkt").await.unwrap();
    assert!(drive.versions("bkt", "k", 10).await.unwrap().versions.is_empty());
    assert!(drive.upload("bkt", "k", upload_id).await.unwrap().is_none());
}
