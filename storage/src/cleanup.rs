//! The cleanups that follow acknowledged writes: removing the versions (or part uploads) a
//! write superseded, [`CLEANUP_DELAY`] after its acknowledgement. Cleanups of the same target
//! are coalesced: a newer one removes everything an older one would, so while one waits, a
//! newer write only replaces what the next run will remove. A key overwritten thousands of
//! times a second thus costs one cleanup per delay, not one per write (each cleanup scans the
//! key's versions, so one per write made a hot key quadratic).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;
use uuid::Uuid;

use crate::commit;
use crate::drive::DriveOp;
use crate::set::ErasureSet;
use crate::stamp::Stamp;

/// How long a superseded version stays after the write that superseded it is acknowledged:
/// a reader's lookup reaches the drives at slightly different moments, and one that saw the
/// new version on too few drives must still find the old one on the others.
pub const CLEANUP_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a cleanup cleans: the versions of a key, the uploads of one part number, or a
/// bucket's configuration records (told apart by the kind of op).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    kind: std::mem::Discriminant<DriveOp>,
    bucket: String,
    key: String,
    part: Option<(Uuid, i32)>,
}

/// A cleanup op, the drives it goes to and when it may run.
#[derive(Debug, Clone)]
struct Due {
    at: Instant,
    drives: Vec<usize>,
    op: DriveOp,
}

/// The cleanup that runs next for a target, and the newest one waiting behind it.
#[derive(Debug)]
struct Pending {
    current: Due,
    next: Option<Due>,
}

/// Cleanups scheduled on one set, by target.
#[derive(Debug, Default)]
pub struct Cleanups(Mutex<HashMap<Target, Pending>>);

impl Cleanups {
    /// Queues `due` for `target`; true when no task runs for the target yet (start one).
    fn queue(&self, target: Target, due: Due) -> bool {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.entry(target) {
            Entry::Vacant(slot) => {
                slot.insert(Pending { current: due, next: None });
                true
            }
            Entry::Occupied(mut slot) => {
                let waiting = slot.get_mut();
                let newest = waiting.next.as_ref().unwrap_or(&waiting.current);
                if through(&due.op) > through(&newest.op) {
                    waiting.next = Some(due);
                }
                false
            }
        }
    }

    /// Takes the cleanup due now for `target`, leaving the one behind it (if any) in its place;
    /// returns it and when the next one is due.
    fn take(&self, target: &Target) -> Option<(Due, Option<Instant>)> {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = pending.get_mut(target)?;
        match waiting.next.take() {
            Some(next) => {
                let at = next.at;
                Some((std::mem::replace(&mut waiting.current, next), Some(at)))
            }
            None => pending.remove(target).map(|p| (p.current, None)),
        }
    }
}

/// The stamp a cleanup op removes up to; a greater one removes everything a lesser one does.
fn through(op: &DriveOp) -> Option<Stamp> {
    match op {
        DriveOp::Supersede { through, .. }
        | DriveOp::SupersedeParts { through, .. }
        | DriveOp::SupersedeBucketConfigs { through } => Some(*through),
        _ => None,
    }
}

/// Runs the cleanup `op` on `drives` [`CLEANUP_DELAY`] from now, coalesced with the other
/// cleanups of the same target. Cleanups are idempotent and only ever remove what an
/// acknowledged write superseded, so one that a crash skips loses nothing (the next write of
/// the key repeats it).
pub fn schedule(set: &Arc<ErasureSet>, bucket: &str, key: &str, drives: Vec<usize>, op: DriveOp) {
    let part = match &op {
        DriveOp::SupersedeParts { upload_id, number, .. } => Some((*upload_id, *number)),
        _ => None,
    };
    let target = Target { kind: std::mem::discriminant(&op), bucket: bucket.to_owned(), key: key.to_owned(), part };
    let due = Due { at: Instant::now() + CLEANUP_DELAY, drives, op };
    let first_at = due.at;
    if !set.cleanups.queue(target.clone(), due) {
        return;
    }
    // Held weakly through the delay: a store being closed is not kept open by its cleanups.
    let set = Arc::downgrade(set);
    tokio::spawn(async move {
        let mut at = first_at;
        loop {
            tokio::time::sleep_until(at).await;
            let Some(set) = set.upgrade() else { return };
            let Some((due, next)) = set.cleanups.take(&target) else { return };
            let ops = commit::only_on(&due.drives, set.drives.len(), &due.op);
            commit::apply(&set, &target.bucket, &target.key, ops, "cleanup").await;
            match next {
                Some(next) => at = next,
                None => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supersede(wall_ns: u64) -> Due {
        let through = Stamp { hlc: wall_ns, writer: 1 };
        Due {
            at: Instant::now(),
            drives: vec![0, 1],
            op: DriveOp::Supersede { version_id: Uuid::nil(), through, remove_marker: false },
        }
    }

    fn target() -> Target {
        Target { kind: std::mem::discriminant(&supersede(0).op), bucket: "b".into(), key: "k".into(), part: None }
    }

    #[tokio::test]
    async fn a_hot_key_keeps_one_cleanup_running_and_the_newest_waiting() {
        let cleanups = Cleanups::default();
        assert!(cleanups.queue(target(), supersede(1)));
        for wall in 2..100 {
            assert!(!cleanups.queue(target(), supersede(wall)), "a task already runs for the key");
        }
        assert!(!cleanups.queue(target(), supersede(50)), "an older cleanup adds nothing");
        let (first, next) = cleanups.take(&target()).unwrap();
        assert_eq!(through(&first.op).unwrap().hlc, 1);
        assert!(next.is_some());
        let (second, next) = cleanups.take(&target()).unwrap();
        assert_eq!(through(&second.op).unwrap().hlc, 99);
        assert!(next.is_none());
        assert!(cleanups.take(&target()).is_none());
        assert!(cleanups.queue(target(), supersede(100)), "the task ended: a new one starts");
    }
}
