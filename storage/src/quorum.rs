//! Quorum rules: how many drives must answer, and which version the answers agree on.
//!
//! Reads need `read = data` drives and writes `write = data` (`data + 1` when data == parity),
//! so every read quorum overlaps the last write quorum and a read never returns stale data.

use uuid::Uuid;

use crate::drive::DriveVersions;
use crate::error::{Result, StorageError};
use crate::meta::VersionRecord;
use crate::stamp::Stamp;

/// Quorum sizes of one erasure set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Drives in the set.
    pub total: usize,
    /// Drives that must answer a read.
    pub read: usize,
    /// Drives that must acknowledge a write.
    pub write: usize,
}

impl Quorum {
    /// Quorum for a set with `data` data and `parity` parity shards.
    pub fn new(data: usize, parity: usize) -> Self {
        let write = if data == parity { data + 1 } else { data };
        Self { total: data + parity, read: data, write }
    }

    /// Fails with [`StorageError::QuorumLost`] unless `acknowledged` meets the write quorum.
    pub fn check_write(&self, op: &'static str, acknowledged: usize) -> Result<()> {
        if acknowledged < self.write {
            return Err(StorageError::QuorumLost { op, needed: self.write, online: acknowledged });
        }
        Ok(())
    }

    /// Fails with [`StorageError::QuorumLost`] unless `answered` meets the read quorum.
    pub fn check_read(&self, op: &'static str, answered: usize) -> Result<()> {
        if answered < self.read {
            return Err(StorageError::QuorumLost { op, needed: self.read, online: answered });
        }
        Ok(())
    }

    /// Whether something seen on `holders` drives, with `unknown` drives not answering, may
    /// have been acknowledged by a write quorum. If not, it is debris of a failed write.
    pub fn may_be_committed(&self, holders: usize, unknown: usize) -> bool {
        holders + unknown >= self.write
    }
}

/// One drive's answer to a read.
#[derive(Debug, Clone)]
pub enum Answer<T> {
    /// The drive holds this.
    Found(T),
    /// The drive answered that it holds nothing.
    Missing,
    /// The drive did not answer, or its answer cannot be trusted (healing).
    Unknown,
}

impl<T> Answer<T> {
    fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
}

impl Quorum {
    /// The items that may have been committed, from every drive's list of items: an item
    /// counts when held by enough drives (`id` tells items apart), together with its holder
    /// count. Fails below the read quorum. Buckets, uploads and parts are resolved this way.
    pub fn agreed_items<T, K: Ord>(
        &self,
        answers: Vec<Answer<Vec<T>>>,
        id: impl Fn(&T) -> K,
        op: &'static str,
    ) -> Result<Vec<(T, usize)>> {
        let unknown = answers.iter().filter(|a| a.is_unknown()).count();
        self.check_read(op, answers.len() - unknown)?;
        let mut seen: std::collections::BTreeMap<K, (T, usize)> = std::collections::BTreeMap::new();
        for answer in answers {
            if let Answer::Found(items) = answer {
                for item in items {
                    seen.entry(id(&item)).or_insert_with(|| (item, 0)).1 += 1;
                }
            }
        }
        Ok(seen.into_values().filter(|(_, holders)| self.may_be_committed(*holders, unknown)).collect())
    }
}

/// The version a set agrees on, with each holder's copy of the record.
#[derive(Debug, Clone)]
pub struct Agreed {
    /// `(drive index, that drive's record)` for every drive holding the version.
    pub holders: Vec<(usize, VersionRecord)>,
}

impl Agreed {
    /// Any holder's record (they differ only in shard index and inline frames).
    pub fn record(&self) -> &VersionRecord {
        &self.holders[0].1
    }
}

/// What a set's answers say about a key.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The newest version that may have been committed, if any.
    pub agreed: Option<Agreed>,
    /// True when a drive listed only its newest versions and the decision needed the rest:
    /// ask again with no limit.
    pub incomplete: bool,
    /// True when the chosen version is held by fewer drives than a write quorum (a drive is
    /// down, or it is debris of a write whose outcome is unknown): it should be repaired.
    pub short: bool,
}

/// Picks the newest version that may have been committed: the newest stamp held by enough
/// drives that it could have met the write quorum. Versions held by fewer are debris of a
/// failed or interrupted write and are passed over, so the version before them stays current.
///
/// Fails when fewer than a read quorum of drives answered.
pub fn resolve_versions(answers: Vec<Answer<DriveVersions>>, quorum: &Quorum, op: &'static str) -> Result<Resolved> {
    let unknown = answers.iter().filter(|a| a.is_unknown()).count();
    let found = answers.iter().filter(|a| matches!(a, Answer::Found(v) if !v.versions.is_empty())).count();
    // A healing drive's "found" still counts as an answer even though its "missing" does not.
    quorum.check_read(op, (answers.len() - unknown).max(found))?;
    let lists: Vec<Option<DriveVersions>> = answers
        .into_iter()
        .map(|a| match a {
            Answer::Found(v) => Some(v),
            Answer::Missing => Some(DriveVersions { versions: Vec::new(), complete: true }),
            Answer::Unknown => None,
        })
        .collect();
    let mut candidates: Vec<(Stamp, Uuid)> =
        lists.iter().flatten().flat_map(|l| l.versions.iter().map(|v| (v.stamp, v.version_id))).collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    candidates.dedup();
    for (stamp, version_id) in candidates {
        let mut holders = Vec::new();
        let mut truncated = 0;
        for (drive, list) in lists.iter().enumerate() {
            let Some(list) = list else { continue };
            if let Some(record) = list.versions.iter().find(|v| v.version_id == version_id) {
                holders.push((drive, record.clone()));
            } else if !list.complete && list.versions.last().is_some_and(|last| last.stamp > stamp) {
                truncated += 1;
            }
        }
        if quorum.may_be_committed(holders.len(), unknown + truncated) {
            let incomplete = !quorum.may_be_committed(holders.len(), unknown);
            let short = holders.len() < quorum.write;
            return Ok(Resolved { agreed: Some(Agreed { holders }), incomplete, short });
        }
    }
    let incomplete = lists.iter().flatten().any(|l| !l.complete);
    Ok(Resolved { agreed: None, incomplete, short: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::test_record;

    fn version(mod_time_ns: i64) -> VersionRecord {
        test_record(mod_time_ns)
    }

    fn has(versions: &[&VersionRecord]) -> Answer<DriveVersions> {
        Answer::Found(DriveVersions { versions: versions.iter().map(|v| (*v).clone()).collect(), complete: true })
    }

    fn resolve(answers: Vec<Answer<DriveVersions>>, q: &Quorum) -> Option<Uuid> {
        resolve_versions(answers, q, "get").unwrap().agreed.map(|a| a.record().version_id)
    }

    #[test]
    fn quorum_sizes_overlap() {
        for (k, m) in [(1, 0), (1, 1), (2, 1), (2, 2), (4, 2), (3, 3), (8, 4), (12, 4)] {
            let q = Quorum::new(k, m);
            assert!(q.read + q.write > q.total, "{k}+{m}: {q:?}");
            assert!(2 * q.write > q.total, "{k}+{m}: two write quorums always meet");
            assert!(q.write <= q.total);
        }
        assert_eq!(Quorum::new(2, 2).write, 3);
        assert_eq!(Quorum::new(4, 2).write, 4);
    }

    #[test]
    fn newest_committed_version_wins() {
        let q = Quorum::new(2, 2);
        let (old, new) = (version(1), version(2));
        let answers = vec![has(&[&new, &old]), has(&[&new, &old]), has(&[&new]), has(&[&old])];
        let resolved = resolve_versions(answers, &q, "get").unwrap();
        let agreed = resolved.agreed.unwrap();
        assert_eq!(agreed.record().version_id, new.version_id);
        assert_eq!(agreed.holders.iter().map(|(d, _)| *d).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(!resolved.short);
    }

    #[test]
    fn debris_of_an_interrupted_overwrite_leaves_the_previous_version() {
        // 2+2, a crash after two drives took the new version: the old one is still on all four.
        let q = Quorum::new(2, 2);
        let (old, debris) = (version(1), version(2));
        let answers = vec![has(&[&debris, &old]), has(&[&debris, &old]), has(&[&old]), has(&[&old])];
        assert_eq!(resolve(answers, &q), Some(old.version_id));
    }

    #[test]
    fn a_drive_that_missed_a_delete_does_not_resurrect_the_object() {
        let q = Quorum::new(2, 2);
        let answers = vec![Answer::Missing, Answer::Missing, Answer::Missing, has(&[&version(1)])];
        assert_eq!(resolve(answers, &q), None);
    }

    #[test]
    fn too_few_answers_is_quorum_lost() {
        let q = Quorum::new(2, 2);
        let answers = vec![Answer::Unknown, Answer::Unknown, Answer::Unknown, has(&[&version(1)])];
        assert!(matches!(resolve_versions(answers, &q, "get"), Err(StorageError::QuorumLost { .. })));
    }

    #[test]
    fn with_drives_down_a_possibly_committed_version_is_kept_and_marked_short() {
        let q = Quorum::new(2, 2);
        let v = version(1);
        let answers = vec![Answer::Unknown, Answer::Unknown, has(&[&v]), Answer::Missing];
        let resolved = resolve_versions(answers, &q, "get").unwrap();
        assert_eq!(resolved.agreed.unwrap().holders.len(), 1);
        assert!(resolved.short);
    }

    #[test]
    fn a_truncated_list_asks_for_more() {
        let q = Quorum::new(2, 2);
        let (old, d1, d2) = (version(1), version(2), version(3));
        let cut = |v: &[&VersionRecord]| {
            Answer::Found(DriveVersions { versions: v.iter().map(|v| (*v).clone()).collect(), complete: false })
        };
        // Two drives list only two debris versions each; the old version lies beyond them.
        let answers = vec![cut(&[&d2, &d1]), cut(&[&d2, &d1]), has(&[&old]), has(&[&old])];
        let resolved = resolve_versions(answers, &q, "get").unwrap();
        assert!(resolved.incomplete, "the decision needs the rest of the lists");
    }

    #[test]
    fn agreed_items_count_holders() {
        let q = Quorum::new(2, 2);
        let answers = vec![
            Answer::Found(vec![1, 2]),
            Answer::Found(vec![1, 2]),
            Answer::Found(vec![1]),
            Answer::Found(vec![1, 3]),
        ];
        let items: Vec<i32> = q.agreed_items(answers, |i| *i, "list").unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(items, vec![1]);
    }
}
