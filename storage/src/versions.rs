//! Object versions by id: the version ids clients see, reading and deleting one version, and
//! ListObjectVersions. A version id carries the version's stamp, so each drive finds the
//! version with one seek, and a listing resumes after it with one seek however many versions
//! the key has.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::join_all;
use uuid::Uuid;

use crate::acl::Acl;
use crate::commit::{self, Acknowledge};
use crate::drive::{DriveOp, ListQuery, VersionEntry, VersionsQuery};
use crate::error::{Result, StorageError};
use crate::get;
use crate::meta::VersionRecord;
use crate::quorum::{Agreed, Answer};
use crate::set::ErasureSet;
use crate::stamp::Stamp;
use crate::store::{ObjectHandle, ObjectStore};

/// The text of the null version's id.
const NULL_TEXT: &str = "null";
/// Hex digits of a version id: the stamp (hlc, writer) and the version's uuid.
const ID_HEX_LEN: usize = 64;

/// A version as clients name it: `null`, or the id the store gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionId {
    /// The null version (written while versioning was never enabled or is suspended).
    Null,
    /// A version written while versioning was enabled.
    Id {
        /// Its stamp, which places it among the key's versions.
        stamp: Stamp,
        /// Its unique id.
        id: Uuid,
    },
}

impl VersionId {
    /// The id of `record`.
    pub fn of(record: &VersionRecord) -> Self {
        if record.null_version {
            Self::Null
        } else {
            Self::Id { stamp: record.stamp, id: record.version_id }
        }
    }

    /// Parses a client's version id; [`StorageError::InvalidVersionId`] when it cannot be one
    /// this store gave out.
    pub fn parse(text: &str) -> Result<Self> {
        if text == NULL_TEXT {
            return Ok(Self::Null);
        }
        let invalid = || StorageError::InvalidVersionId(text.to_owned());
        if text.len() != ID_HEX_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| u64::from_str_radix(&text[range], 16).map_err(|_| invalid());
        let stamp = Stamp { hlc: number(0..16)?, writer: number(16..32)? };
        let id = Uuid::try_parse(&text[32..]).map_err(|_| invalid())?;
        Ok(Self::Id { stamp, id })
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str(NULL_TEXT),
            Self::Id { stamp, id } => write!(f, "{:016x}{:016x}{}", stamp.hlc, stamp.writer, id.simple()),
        }
    }
}

/// What a DeleteObject did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed or the delete marker added (`None` in a bucket that never had
    /// versioning, where nothing is reported).
    pub version_id: Option<VersionId>,
    /// Whether that version is a delete marker.
    pub delete_marker: bool,
}

/// One entry of a ListObjectVersions page.
// Listings are mostly made of the large variant: boxing it would add an allocation per entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ListedVersion {
    /// A version or delete marker.
    Version {
        /// Object key.
        key: String,
        /// The version (without inline data).
        record: VersionRecord,
        /// Whether it is the key's current version.
        latest: bool,
    },
    /// A common prefix.
    Prefix(String),
}

impl ListedVersion {
    /// Where the entry sorts: by name, then newest version first.
    fn position(&self) -> Position {
        match self {
            Self::Version { key, record, .. } => (key.clone(), Some((Reverse(record.stamp), record.version_id))),
            Self::Prefix(prefix) => (prefix.clone(), None),
        }
    }
}

/// One page of ListObjectVersions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionsPage {
    /// Versions and common prefixes in key order, newest version first within a key.
    pub entries: Vec<ListedVersion>,
    /// True when more entries follow the last one.
    pub truncated: bool,
}

/// What [`ObjectStore::set_sealed_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUpdate {
    /// Drives that hold the new sealed key now.
    pub applied: usize,
    /// Drives that hold neither key: another rewrap of the version got there first.
    pub refused: usize,
    /// Drives of the version's set.
    pub drives: usize,
}

impl KeyUpdate {
    /// Whether every drive of the set holds the new key.
    pub fn everywhere(&self) -> bool {
        self.applied == self.drives
    }
}

/// Sort position of a listed entry.
type Position = (String, Option<(Reverse<Stamp>, Uuid)>);

fn entry_position(entry: &VersionEntry) -> Position {
    match entry {
        VersionEntry::Version { key, record } => (key.clone(), Some((Reverse(record.stamp), record.version_id))),
        VersionEntry::Prefix(prefix) => (prefix.clone(), None),
    }
}

/// The version `which` of a key as a set agrees on it: the newest such version held by enough
/// drives that it may have been committed. For the null version every drive reports all the
/// null versions it holds: one superseded by a write that a crash cut short is still the
/// committed one.
pub(crate) async fn find(set: &ErasureSet, bucket: &str, key: &str, which: VersionId) -> Result<Option<Agreed>> {
    let results: Vec<Result<Vec<VersionRecord>>> = match which {
        VersionId::Id { .. } => {
            let found = set.on_all(|drive| drive.version(bucket, key, which)).await;
            found.into_iter().map(|r| r.map(|v| v.into_iter().collect())).collect()
        }
        VersionId::Null => {
            let listed = set.on_all(|drive| drive.versions(bucket, key, usize::MAX)).await;
            listed.into_iter().map(|r| r.map(|v| v.versions.into_iter().filter(|v| v.null_version).collect())).collect()
        }
    };
    let answers = set.list_answers(results);
    let unknown = answers.iter().filter(|a| matches!(a, Answer::Unknown)).count();
    set.quorum.check_read("get object version", answers.len() - unknown)?;
    let mut held: Vec<Agreed> = Vec::new();
    for (drive, answer) in answers.into_iter().enumerate() {
        let Answer::Found(records) = answer else { continue };
        for record in records {
            match held.iter_mut().find(|a| a.record().version_id == record.version_id) {
                Some(agreed) => agreed.holders.push((drive, record)),
                None => held.push(Agreed { holders: vec![(drive, record)] }),
            }
        }
    }
    held.sort_by_key(|held| std::cmp::Reverse(held.record().stamp));
    Ok(held.into_iter().find(|a| set.quorum.may_be_committed(a.holders.len(), unknown)))
}

/// Lists up to `max` entries of one set, after the marker in `query`.
pub(crate) async fn list_set(
    set: &ErasureSet,
    bucket: &str,
    mut query: VersionsQuery,
    max: usize,
) -> Result<VersionsPage> {
    let mut out = Vec::new();
    // The key whose versions this page has reached, whether the next of them is the latest,
    // and whether its (newest) null version was listed: older null versions still present are
    // superseded ones awaiting their cleanup.
    let mut current: Option<String> = query.after_version.and(query.keys.start_after.clone());
    let mut null_listed = false;
    loop {
        let want = max - out.len() + 1;
        query.keys.limit = want;
        let results = set.on_all(|drive| drive.list_versions(bucket, &query)).await;
        let answered = results.iter().filter(|r| r.is_ok()).count();
        set.quorum.check_read("list object versions", answered)?;
        let unknown = results.len() - answered + set.drives.iter().filter(|d| d.is_healing()).count();
        let boundary = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|list| list.len() >= want)
            .filter_map(|list| list.last().map(entry_position))
            .min();
        let mut seen: BTreeMap<Position, (VersionEntry, usize)> = BTreeMap::new();
        for entry in results.into_iter().flatten().flatten() {
            let position = entry_position(&entry);
            if boundary.as_ref().is_some_and(|b| position > *b) {
                continue;
            }
            seen.entry(position).or_insert((entry, 0)).1 += 1;
        }
        for (entry, holders) in seen.into_values() {
            if !set.quorum.may_be_committed(holders, unknown) {
                continue;
            }
            match entry {
                VersionEntry::Prefix(prefix) => {
                    current = None;
                    out.push(ListedVersion::Prefix(prefix));
                }
                VersionEntry::Version { key, record } => {
                    let latest = current.as_deref() != Some(key.as_str());
                    if latest {
                        current = Some(key.clone());
                        null_listed = false;
                    }
                    if record.null_version && std::mem::replace(&mut null_listed, true) {
                        continue;
                    }
                    out.push(ListedVersion::Version { key, record, latest });
                }
            }
        }
        match boundary {
            Some((name, version)) if out.len() <= max => {
                query.keys.start_after = Some(name);
                query.after_version = version.map(|(Reverse(stamp), id)| (stamp, id));
            }
            Some(_) => break,
            None => {
                let truncated = out.len() > max;
                out.truncate(max);
                return Ok(VersionsPage { entries: out, truncated });
            }
        }
    }
    out.truncate(max);
    Ok(VersionsPage { entries: out, truncated: true })
}

/// Merges the pages of several sets into one page of at most `max` entries.
fn merge_sets(pages: Vec<VersionsPage>, max: usize) -> VersionsPage {
    let mut truncated = pages.iter().any(|p| p.truncated);
    let mut entries: Vec<ListedVersion> = pages.into_iter().flat_map(|p| p.entries).collect();
    entries.sort_by_key(ListedVersion::position);
    entries.dedup_by(|a, b| a.position() == b.position());
    if entries.len() > max {
        entries.truncate(max);
        truncated = true;
    }
    VersionsPage { entries, truncated }
}

impl ObjectStore {
    /// Locates one version of an object: the current one (`None`), or the one named. A
    /// delete marker is [`StorageError::DeleteMarker`], current or named.
    pub async fn get_version(&self, bucket: &str, key: &str, which: Option<VersionId>) -> Result<ObjectHandle> {
        let Some(which) = which else { return self.get_object(bucket, key).await };
        let (set, _) = self.set_for(bucket, key)?;
        let Some(agreed) = find(set, bucket, key, which).await? else {
            self.bucket(bucket).await?;
            return Err(StorageError::NoSuchVersion { key: key.to_owned(), version_id: which.to_string() });
        };
        if agreed.record().delete_marker {
            return Err(StorageError::DeleteMarker { version_id: which.to_string(), requested: true });
        }
        let map = get::ShardMap::of(&agreed);
        map.open_first_part(set, agreed.record()).await;
        Ok(ObjectHandle::new(Arc::clone(set), bucket, key, agreed, map))
    }

    /// Removes one version or delete marker for good; the version before it becomes current.
    /// A version that does not exist is not an error (as in S3).
    pub async fn delete_version(&self, bucket: &str, key: &str, which: VersionId) -> Result<Deleted> {
        let (set, _) = self.set_for(bucket, key)?;
        self.bucket(bucket).await?;
        let Some(agreed) = find(set, bucket, key, which).await? else {
            return Ok(Deleted { version_id: Some(which), delete_marker: false });
        };
        let record = agreed.record();
        let op = DriveOp::DeleteVersion { version_id: record.version_id, stamp: record.stamp };
        commit::everywhere(set, bucket, key, op, "delete object version").await?;
        Ok(Deleted { version_id: Some(which), delete_marker: record.delete_marker })
    }

    /// Replaces the tags of one version (the current one when `which` is `None`).
    pub async fn set_version_tags(
        &self,
        bucket: &str,
        key: &str,
        which: Option<VersionId>,
        tags: Vec<(String, String)>,
    ) -> Result<VersionRecord> {
        self.update_version(bucket, key, which, ("put object tagging", Acknowledge::Quorum), |record| {
            record.tags = tags.clone();
            DriveOp::SetTags { version_id: record.version_id, tags }
        })
        .await
    }

    /// Replaces the owner and ACL of one version (the current one when `which` is `None`), on
    /// every drive of its set or not at all acknowledged ([`Acknowledge::Everywhere`]).
    pub async fn set_version_acl(
        &self,
        bucket: &str,
        key: &str,
        which: Option<VersionId>,
        acl: Acl,
    ) -> Result<VersionRecord> {
        self.update_version(bucket, key, which, ("put object acl", Acknowledge::Everywhere), |record| {
            record.acl = Some(acl.clone());
            DriveOp::SetAcl { version_id: record.version_id, acl }
        })
        .await
    }

    /// Changes one version's metadata on the drives that hold it: `change` updates the record
    /// as it will read and returns the drive operation doing the same.
    async fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: Option<VersionId>,
        what: (&'static str, Acknowledge),
        change: impl FnOnce(&mut VersionRecord) -> DriveOp,
    ) -> Result<VersionRecord> {
        let (set, _) = self.set_for(bucket, key)?;
        let handle = self.get_version(bucket, key, which).await?;
        let holders: Vec<usize> = handle.holders().collect();
        let mut updated = handle.record().clone();
        let op = change(&mut updated);
        commit::update_version(set, bucket, key, &holders, op, what).await?;
        Ok(updated)
    }

    /// Replaces the sealed data key of one encrypted version, `from` -> `to`, on every drive
    /// of its set that holds it (a rewrap after the KMS key was rotated). The update counts
    /// only when every drive of the set holds the new key: a drive left with the old one could
    /// serve a read that fails once the old KMS key version is retired.
    pub async fn set_sealed_key(
        &self,
        bucket: &str,
        key: &str,
        which: VersionId,
        from: &str,
        to: &str,
    ) -> Result<KeyUpdate> {
        let (set, _) = self.set_for(bucket, key)?;
        let handle = self.get_version(bucket, key, Some(which)).await?;
        let holders: Vec<usize> = handle.holders().collect();
        let op =
            DriveOp::SetSealedKey { version_id: handle.record().version_id, from: from.to_owned(), to: to.to_owned() };
        let tally =
            commit::apply(set, bucket, key, commit::only_on(&holders, set.drives.len(), &op), "set_sealed_key").await;
        Ok(KeyUpdate { applied: tally.applied.len(), refused: tally.refused, drives: set.drives.len() })
    }

    /// Lists one page of a bucket's versions and delete markers, after `key_marker` (and,
    /// within it, after `version_marker`).
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_marker: Option<VersionId>,
        max: usize,
    ) -> Result<VersionsPage> {
        self.bucket(bucket).await?;
        if max == 0 {
            return Ok(VersionsPage::default());
        }
        let after_version = match (key_marker, version_marker) {
            (Some(key), Some(VersionId::Null)) => {
                let (set, _) = self.set_for(bucket, key)?;
                find(set, bucket, key, VersionId::Null).await?.map(|a| (a.record().stamp, a.record().version_id))
            }
            (Some(_), Some(VersionId::Id { stamp, id })) => Some((stamp, id)),
            _ => None,
        };
        let keys = ListQuery {
            prefix: prefix.to_owned(),
            delimiter: delimiter.map(str::to_owned),
            start_after: key_marker.map(str::to_owned),
            limit: 0,
        };
        let query = VersionsQuery { keys, after_version };
        let pages = join_all(self.sets().iter().map(|set| list_set(set, bucket, query.clone(), max))).await;
        Ok(merge_sets(pages.into_iter().collect::<Result<_>>()?, max))
    }

    /// Whether a read quorum of some set holds a version or delete marker of the bucket. Asks
    /// the drives without looking for the bucket's record, which DeleteBucket has removed when
    /// it asks.
    pub(crate) async fn holds_versions(&self, bucket: &str) -> Result<bool> {
        let keys = ListQuery { prefix: String::new(), delimiter: None, start_after: None, limit: 0 };
        let query = VersionsQuery { keys, after_version: None };
        for set in self.sets() {
            if !list_set(set, bucket, query.clone(), 1).await?.entries.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_roundtrip_and_order_nothing_else() {
        let id = VersionId::Id { stamp: Stamp { hlc: 1_700_000_000_000_000_000, writer: 42 }, id: Uuid::new_v4() };
        assert_eq!(VersionId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(VersionId::parse("null").unwrap(), VersionId::Null);
        for bad in ["", "NULL", "abc", &id.to_string().to_uppercase(), &format!("{id}0")] {
            assert!(VersionId::parse(bad).is_err(), "{bad}");
        }
    }

    fn version(key: &str, hlc: u64) -> ListedVersion {
        let record = VersionRecord { stamp: Stamp { hlc, writer: 1 }, ..crate::meta::test_record(1) };
        ListedVersion::Version { key: key.into(), record, latest: false }
    }

    #[test]
    fn pages_of_sets_merge_by_key_then_newest_first() {
        let a = VersionsPage { entries: vec![version("a", 2), version("a", 1), version("c", 1)], truncated: false };
        let b = VersionsPage { entries: vec![version("b", 5), ListedVersion::Prefix("d/".into())], truncated: false };
        let merged = merge_sets(vec![a, b], 4);
        let order: Vec<Position> = merged.entries.iter().map(ListedVersion::position).collect();
        let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "a", "b", "c"]);
        assert!(order[0] < order[1], "newest first within a key");
        assert!(merged.truncated);
    }
}
