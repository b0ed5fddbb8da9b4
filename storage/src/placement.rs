//! Where objects go: how drives are grouped into erasure sets, how much parity a set gets, which
//! set holds a key, and which drive of the set holds which shard.

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Result, StorageError};

/// Largest erasure set: beyond this, drives are split into several sets.
pub const MAX_SET_DRIVES: usize = 16;
/// Smallest set size used when splitting many drives into sets.
const MIN_SPLIT_SET_DRIVES: usize = 4;

/// Parity shards for a set of `drives` drives when the operator does not choose (ADR 0002):
/// 1 drive: none; 2-3: 1; 4-7: 2 (4 = 2+2, 6 = 4+2); 8-16: 4.
pub fn default_parity(drives: usize) -> usize {
    match drives {
        0 | 1 => 0,
        2 | 3 => 1,
        4..=7 => 2,
        _ => 4,
    }
}

/// Splits `drives` drives into equal sets of at most [`MAX_SET_DRIVES`]; returns the set size.
pub fn set_size(drives: usize) -> Result<usize> {
    if drives == 0 {
        return Err(StorageError::Config("at least one drive is needed".into()));
    }
    if drives <= MAX_SET_DRIVES {
        return Ok(drives);
    }
    (MIN_SPLIT_SET_DRIVES..=MAX_SET_DRIVES).rev().find(|size| drives.is_multiple_of(*size)).ok_or_else(|| {
        StorageError::Config(format!(
            "{drives} drives cannot be split into equal sets of {MIN_SPLIT_SET_DRIVES} to {MAX_SET_DRIVES}"
        ))
    })
}

/// Checks a parity choice for a set of `drives` drives.
pub fn check_parity(drives: usize, parity: usize) -> Result<()> {
    if parity > drives / 2 || (drives > 1 && parity == 0) {
        return Err(StorageError::Config(format!(
            "parity {parity} is invalid for sets of {drives} drives (allowed: 1 to {})",
            drives / 2
        )));
    }
    Ok(())
}

/// Hash of an object's name that placement decisions derive from.
pub fn object_hash(bucket: &str, key: &str) -> u64 {
    let mut name = Vec::with_capacity(bucket.len() + key.len() + 1);
    name.extend_from_slice(bucket.as_bytes());
    name.push(b'/');
    name.extend_from_slice(key.as_bytes());
    xxh3_64(&name)
}

/// Index of the set that holds an object.
pub fn set_index(hash: u64, sets: usize) -> usize {
    (hash % sets as u64) as usize
}

/// Shard that drive `drive` of a `total`-drive set holds for an object with this hash.
///
/// The mapping is rotated per object so that data shards (read on every GET) are spread
/// over all drives instead of always landing on the first `data` drives.
pub fn shard_of_drive(hash: u64, drive: usize, total: usize) -> usize {
    let rotation = ((hash >> 32) % total as u64) as usize;
    (drive + total - rotation) % total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_layouts() {
        assert_eq!(default_parity(1), 0);
        assert_eq!(default_parity(4), 2);
        assert_eq!(default_parity(6), 2);
        assert_eq!(default_parity(8), 4);
        assert_eq!(default_parity(16), 4);
    }

    #[test]
    fn large_deployments_split_into_equal_sets() {
        assert_eq!(set_size(4).unwrap(), 4);
        assert_eq!(set_size(16).unwrap(), 16);
        assert_eq!(set_size(32).unwrap(), 16);
        assert_eq!(set_size(24).unwrap(), 12);
        assert_eq!(set_size(18).unwrap(), 9);
        assert!(set_size(17).is_err());
        assert!(set_size(0).is_err());
    }

    #[test]
    fn parity_is_bounded_by_half_the_set() {
        assert!(check_parity(4, 2).is_ok());
        assert!(check_parity(4, 3).is_err());
        assert!(check_parity(4, 0).is_err());
        assert!(check_parity(1, 0).is_ok());
        assert!(check_parity(16, 8).is_ok());
    }

    #[test]
    fn every_drive_gets_a_distinct_shard() {
        for key in ["a", "b", "photos/2024/x.jpg"] {
            let hash = object_hash("bucket", key);
            let mut shards: Vec<usize> = (0..6).map(|d| shard_of_drive(hash, d, 6)).collect();
            shards.sort_unstable();
            assert_eq!(shards, (0..6).collect::<Vec<_>>());
        }
    }

    #[test]
    fn objects_spread_over_sets_and_rotations() {
        let mut sets = [0usize; 4];
        let mut first_data_drive = [0usize; 4];
        for i in 0..4000 {
            let hash = object_hash("b", &format!("key-{i}"));
            sets[set_index(hash, 4)] += 1;
            let drive = (0..4).find(|d| shard_of_drive(hash, *d, 4) == 0).unwrap();
            first_data_drive[drive] += 1;
        }
        for count in sets.iter().chain(first_data_drive.iter()) {
            assert!((800..1200).contains(count), "uneven spread: {sets:?} {first_data_drive:?}");
        }
    }
}
