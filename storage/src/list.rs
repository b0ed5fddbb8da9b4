//! Listing: every drive of a set lists its newest records in key order; the lists are merged
//! and each key is resolved under quorum, so debris of failed writes and objects a drive missed
//! neither appear nor disappear. Sets are then merged into one ordered page.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::drive::{DriveVersions, ListEntry, ListQuery};
use crate::error::Result;
use crate::meta::VersionRecord;
use crate::quorum::{self, Answer, Quorum};
use crate::set::ErasureSet;

/// One page of a listing, in name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// Objects (newest versions that are not delete markers) and common prefixes.
    pub entries: Vec<ListEntry>,
    /// True when more entries follow the last one.
    pub truncated: bool,
}

/// What the drives said about one name.
enum Seen {
    Prefix(usize),
    Object(Vec<Option<DriveVersions>>),
}

/// Lists up to `max` entries of `bucket` in one set, strictly after `start_after`.
pub async fn list_set(
    set: &ErasureSet,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max: usize,
) -> Result<ListPage> {
    let mut entries = Vec::new();
    let mut cursor = start_after.map(str::to_owned);
    loop {
        let want = max - entries.len() + 1;
        let query = ListQuery {
            prefix: prefix.to_owned(),
            delimiter: delimiter.map(str::to_owned),
            start_after: cursor.clone(),
            limit: want,
        };
        let results = set.on_all(|drive| drive.list_latest(bucket, &query)).await;
        let healing: Vec<bool> = set.drives.iter().map(|d| d.is_healing()).collect();
        let step = merge_drives(results, &healing, &set.quorum, want)?;
        for entry in step.entries {
            match entry {
                Merged::Entry(entry) => entries.push(entry),
                // Rare: the drives' newest versions did not settle the key (debris of several
                // interrupted writes); ask for every version of it.
                Merged::Undecided(key) => {
                    if let Some(agreed) = set.latest(bucket, &key, "list").await? {
                        let mut record = agreed.record().clone();
                        if !record.delete_marker {
                            record.inline = None;
                            entries.push(current(key, record));
                        }
                    }
                }
            }
        }
        match step.boundary {
            Some(boundary) if entries.len() <= max => cursor = Some(boundary),
            Some(_) => break,
            None => {
                let truncated = entries.len() > max;
                entries.truncate(max);
                return Ok(ListPage { entries, truncated });
            }
        }
    }
    entries.truncate(max);
    Ok(ListPage { entries, truncated: true })
}

/// The entries resolved from one round of drive listings, and where the next round starts
/// (`None` when every drive listed to the end).
struct Step {
    entries: Vec<Merged>,
    boundary: Option<String>,
}

/// One name of a round.
enum Merged {
    /// Resolved.
    Entry(ListEntry),
    /// A key whose current version needs a lookup of all its versions.
    Undecided(String),
}

/// The listing entry of a key's current version.
fn current(key: String, record: VersionRecord) -> ListEntry {
    ListEntry::Object { key, versions: DriveVersions { versions: vec![record], complete: true } }
}

fn merge_drives(results: Vec<Result<Vec<ListEntry>>>, healing: &[bool], quorum: &Quorum, want: usize) -> Result<Step> {
    let answered = results.iter().filter(|r| r.is_ok()).count();
    quorum.check_read("list", answered)?;
    let drives = results.len();
    let boundary = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|list| list.len() >= want)
        .filter_map(|list| list.last().map(|e| e.name().to_owned()))
        .min();
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut failed = vec![false; drives];
    for (drive, result) in results.into_iter().enumerate() {
        let Ok(list) = result else {
            failed[drive] = true;
            continue;
        };
        for entry in list {
            if boundary.as_deref().is_some_and(|b| entry.name() > b) {
                break;
            }
            match entry {
                ListEntry::Prefix(name) => {
                    if let Seen::Prefix(count) = seen.entry(name).or_insert(Seen::Prefix(0)) {
                        *count += 1;
                    }
                }
                ListEntry::Object { key, versions } => {
                    if let Seen::Object(lists) = seen.entry(key).or_insert_with(|| Seen::Object(vec![None; drives])) {
                        lists[drive] = Some(versions);
                    }
                }
            }
        }
    }
    let unknown_base = failed.iter().filter(|f| **f).count();
    let mut entries = Vec::with_capacity(seen.len());
    for (name, seen) in seen {
        match seen {
            Seen::Prefix(count) => {
                let unknown = unknown_base + healing.iter().filter(|h| **h).count();
                if quorum.may_be_committed(count, unknown) {
                    entries.push(Merged::Entry(ListEntry::Prefix(name)));
                }
            }
            Seen::Object(lists) => {
                let answers = lists
                    .into_iter()
                    .enumerate()
                    .map(|(drive, list)| match list {
                        Some(list) => Answer::Found(list),
                        None if failed[drive] || healing[drive] => Answer::Unknown,
                        None => Answer::Missing,
                    })
                    .collect();
                let resolved = quorum::resolve_versions(answers, quorum, "list")?;
                if resolved.incomplete {
                    entries.push(Merged::Undecided(name));
                } else if let Some(agreed) = resolved.agreed {
                    let record = agreed.holders.into_iter().next().map(|(_, r)| r);
                    if let Some(record) = record.filter(|r| !r.delete_marker) {
                        entries.push(Merged::Entry(current(name, record)));
                    }
                }
            }
        }
    }
    Ok(Step { entries, boundary })
}

/// Merges the pages of several sets into one page of at most `max` entries.
pub fn merge_sets(pages: Vec<ListPage>, max: usize) -> ListPage {
    let mut truncated = pages.iter().any(|p| p.truncated);
    let mut entries: Vec<ListEntry> = pages.into_iter().flat_map(|p| p.entries).collect();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    entries.dedup_by(|a, b| a.name() == b.name());
    if entries.len() > max {
        entries.truncate(max);
        truncated = true;
    }
    ListPage { entries, truncated }
}

/// Lists one page across all sets.
pub async fn list_sets(
    sets: &[std::sync::Arc<ErasureSet>],
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max: usize,
) -> Result<ListPage> {
    let pages = join_all(sets.iter().map(|set| list_set(set, bucket, prefix, delimiter, start_after, max))).await;
    Ok(merge_sets(pages.into_iter().collect::<Result<_>>()?, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn object(key: &str, version: Uuid) -> ListEntry {
        let record = VersionRecord { version_id: version, ..crate::meta::test_record(1) };
        current(key.into(), record)
    }

    fn names(entries: &[Merged]) -> Vec<&str> {
        entries
            .iter()
            .map(|e| match e {
                Merged::Entry(entry) => entry.name(),
                Merged::Undecided(key) => key,
            })
            .collect()
    }

    #[test]
    fn keys_on_a_write_quorum_are_listed_and_debris_is_not() {
        let (a, b, debris) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let full = vec![object("a", a), object("b", b)];
        let results = vec![Ok(full.clone()), Ok(full.clone()), Ok(full), Ok(vec![object("a", a), object("c", debris)])];
        let step = merge_drives(results, &[false; 4], &Quorum::new(2, 2), 10).unwrap();
        assert_eq!(names(&step.entries), ["a", "b"]);
        assert_eq!(step.boundary, None);
    }

    #[test]
    fn a_truncated_drive_bounds_the_step() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let long = vec![object("a", a), object("b", b), object("c", c)];
        let short = vec![object("a", a), object("b", b)];
        let results = vec![Ok(long.clone()), Ok(long), Ok(short.clone()), Ok(short)];
        let step = merge_drives(results, &[false; 4], &Quorum::new(2, 2), 2).unwrap();
        assert_eq!(step.boundary.as_deref(), Some("b"));
        assert_eq!(names(&step.entries), ["a", "b"]);
    }

    #[test]
    fn drives_down_keep_objects_listed_until_quorum_is_lost() {
        let a = Uuid::new_v4();
        let down = || Err(crate::error::StorageError::Config("down".into()));
        let results = vec![down(), down(), Ok(vec![object("a", a)]), Ok(vec![object("a", a)])];
        let step = merge_drives(results, &[false; 4], &Quorum::new(2, 2), 10).unwrap();
        assert_eq!(names(&step.entries), ["a"]);
        let results = vec![down(), down(), down(), Ok(vec![object("a", a)])];
        assert!(merge_drives(results, &[false; 4], &Quorum::new(2, 2), 10).is_err());
    }

    #[test]
    fn prefixes_merge_and_sets_interleave() {
        let pages = vec![
            ListPage { entries: vec![ListEntry::Prefix("d/".into()), object("x", Uuid::new_v4())], truncated: false },
            ListPage { entries: vec![object("a", Uuid::new_v4()), ListEntry::Prefix("d/".into())], truncated: false },
        ];
        let merged = merge_sets(pages.clone(), 10);
        assert_eq!(merged.entries.iter().map(ListEntry::name).collect::<Vec<_>>(), ["a", "d/", "x"]);
        assert!(!merged.truncated);
        let merged = merge_sets(pages, 2);
        assert_eq!(merged.entries.iter().map(ListEntry::name).collect::<Vec<_>>(), ["a", "d/"]);
        assert!(merged.truncated);
    }
}
