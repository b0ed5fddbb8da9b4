//! Quorum rules: how many drives must answer, and which version the answers agree on.
//!
//! Reads need `read = data` drives and writes `write = data` (`data + 1` when data == parity),
//! so every read quorum overlaps the last write quorum and a read never returns stale data.

use uuid::Uuid;

use crate::error::{Result, StorageError};
use crate::meta::VersionRecord;

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

/// One drive's answer to "what is the newest version of this key?".
#[derive(Debug, Clone)]
pub enum Answer<T> {
    /// The drive holds this.
    Found(T),
    /// The drive answered that it holds nothing.
    Missing,
    /// The drive did not answer, or its answer cannot be trusted (healing).
    Unknown,
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

/// Picks the newest version that may have been committed, or `None` when the key is absent.
///
/// Fails when fewer than a read quorum of drives answered.
pub fn resolve_latest(
    answers: Vec<Answer<VersionRecord>>,
    quorum: &Quorum,
    op: &'static str,
) -> Result<Option<Agreed>> {
    let answered = answers.iter().filter(|a| !matches!(a, Answer::Unknown)).count();
    let found = answers.iter().filter(|a| matches!(a, Answer::Found(_))).count();
    // A healing drive's "found" still counts as an answer even though its "missing" does not.
    quorum.check_read(op, answered.max(found))?;
    let unknown = answers.len() - answered;
    let mut candidates: Vec<(i64, Uuid)> = answers
        .iter()
        .filter_map(|a| match a {
            Answer::Found(r) => Some((r.mod_time_ns, r.version_id)),
            _ => None,
        })
        .collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    candidates.dedup();
    let mut holders_by_drive: Vec<Option<VersionRecord>> = answers
        .into_iter()
        .map(|a| match a {
            Answer::Found(r) => Some(r),
            _ => None,
        })
        .collect();
    for (_, version_id) in candidates {
        let holders =
            holders_by_drive.iter().filter(|r| r.as_ref().is_some_and(|r| r.version_id == version_id)).count();
        if quorum.may_be_committed(holders, unknown) {
            let holders = holders_by_drive
                .iter_mut()
                .enumerate()
                .filter_map(|(drive, r)| r.take_if(|r| r.version_id == version_id).map(|r| (drive, r)))
                .collect();
            return Ok(Some(Agreed { holders }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erasure::Erasure;

    fn version(mod_time_ns: i64) -> VersionRecord {
        VersionRecord {
            version_id: Uuid::new_v4(),
            null_version: true,
            mod_time_ns,
            delete_marker: false,
            size: 1,
            etag: String::new(),
            headers: Default::default(),
            user_metadata: Default::default(),
            tags: Vec::new(),
            checksum: None,
            erasure: Erasure::new(2, 2, 1024).unwrap(),
            shard_index: 0,
            parts: Vec::new(),
            inline: None,
        }
    }

    #[test]
    fn quorum_sizes_overlap() {
        for (k, m) in [(1, 0), (1, 1), (2, 1), (2, 2), (4, 2), (3, 3), (8, 4), (12, 4)] {
            let q = Quorum::new(k, m);
            assert!(q.read + q.write > q.total, "{k}+{m}: {q:?}");
            assert!(q.write <= q.total);
        }
        assert_eq!(Quorum::new(2, 2).write, 3);
        assert_eq!(Quorum::new(4, 2).write, 4);
    }

    #[test]
    fn newest_committed_version_wins() {
        let q = Quorum::new(2, 2);
        let (old, new) = (version(1), version(2));
        let answers = vec![
            Answer::Found(new.clone()),
            Answer::Found(new.clone()),
            Answer::Found(new.clone()),
            Answer::Found(old),
        ];
        let agreed = resolve_latest(answers, &q, "get").unwrap().unwrap();
        assert_eq!(agreed.record().version_id, new.version_id);
        assert_eq!(agreed.holders.iter().map(|(d, _)| *d).collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn debris_of_a_failed_write_is_ignored() {
        let q = Quorum::new(2, 2);
        let (old, debris) = (version(1), version(2));
        let answers = vec![
            Answer::Found(debris),
            Answer::Found(old.clone()),
            Answer::Found(old.clone()),
            Answer::Found(old.clone()),
        ];
        let agreed = resolve_latest(answers, &q, "get").unwrap().unwrap();
        assert_eq!(agreed.record().version_id, old.version_id);
    }

    #[test]
    fn a_drive_that_missed_a_delete_does_not_resurrect_the_object() {
        let q = Quorum::new(2, 2);
        let answers = vec![Answer::Missing, Answer::Missing, Answer::Missing, Answer::Found(version(1))];
        assert!(resolve_latest(answers, &q, "get").unwrap().is_none());
    }

    #[test]
    fn too_few_answers_is_quorum_lost() {
        let q = Quorum::new(2, 2);
        let answers = vec![Answer::Unknown, Answer::Unknown, Answer::Unknown, Answer::Found(version(1))];
        assert!(matches!(resolve_latest(answers, &q, "get"), Err(StorageError::QuorumLost { .. })));
    }

    #[test]
    fn with_drives_down_a_possibly_committed_version_is_kept() {
        let q = Quorum::new(2, 2);
        let v = version(1);
        let answers = vec![Answer::Unknown, Answer::Unknown, Answer::Found(v.clone()), Answer::Missing];
        let agreed = resolve_latest(answers, &q, "get").unwrap().unwrap();
        assert_eq!(agreed.holders.len(), 1);
    }
}
