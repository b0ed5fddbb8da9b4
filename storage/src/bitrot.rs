//! Bitrot protection: every shard block is stored behind a 128-bit xxh3 hash of its bytes,
//! seeded with the frame's place (data id, stripe, shard index), and verified on every read
//! (ADR 0003 says why xxh3-128). The seed makes a valid frame read from the wrong place (another
//! object's file, another stripe's offset, another shard's drive) fail its check instead of
//! decoding to wrong bytes.

use uuid::Uuid;
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64};

/// Bytes of the hash that precedes each shard block.
pub const HASH_BYTES: usize = 16;

/// Where a frame belongs: the data piece (shard files of one object or part; nil for frames
/// stored inline in a version record) and the stripe within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePlace {
    /// The data id naming the shard files.
    pub data_id: Uuid,
    /// Stripe number within the data piece.
    pub stripe: u64,
}

impl FramePlace {
    /// The place of stripe `stripe` of frames stored inline in a version record.
    pub const fn inline(stripe: u64) -> Self {
        Self { data_id: Uuid::nil(), stripe }
    }

    /// The hash seed of shard `shard` of this stripe.
    pub fn seed(&self, shard: usize) -> u64 {
        let mut place = [0u8; 32];
        place[..16].copy_from_slice(self.data_id.as_bytes());
        place[16..24].copy_from_slice(&self.stripe.to_le_bytes());
        place[24..].copy_from_slice(&(shard as u64).to_le_bytes());
        xxh3_64(&place)
    }
}

/// Writes `hash(seed, block) ++ block` into `frame`, which must be `HASH_BYTES + block.len()`
/// long and already hold the block at `frame[HASH_BYTES..]`.
pub fn seal_in_place(frame: &mut [u8], seed: u64) {
    let hash = xxh3_128_with_seed(&frame[HASH_BYTES..], seed);
    frame[..HASH_BYTES].copy_from_slice(&hash.to_le_bytes());
}

/// Returns the block of a sealed frame when its hash matches for `seed`, `None` when it is
/// corrupt or belongs elsewhere.
pub fn open(frame: &[u8], seed: u64) -> Option<&[u8]> {
    if frame.len() < HASH_BYTES {
        return None;
    }
    let (hash, block) = frame.split_at(HASH_BYTES);
    (xxh3_128_with_seed(block, seed).to_le_bytes() == hash).then_some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u64 = 42;

    fn sealed(block: &[u8]) -> Vec<u8> {
        let mut frame = vec![0; HASH_BYTES + block.len()];
        frame[HASH_BYTES..].copy_from_slice(block);
        seal_in_place(&mut frame, SEED);
        frame
    }

    #[test]
    fn sealed_frame_opens_to_its_block() {
        let frame = sealed(b"shard bytes");
        assert_eq!(open(&frame, SEED), Some(&b"shard bytes"[..]));
    }

    #[test]
    fn a_frame_read_from_another_place_is_refused() {
        let place = FramePlace { data_id: Uuid::new_v4(), stripe: 3 };
        let mut frame = vec![0; HASH_BYTES + 9];
        frame[HASH_BYTES..].copy_from_slice(b"identical");
        seal_in_place(&mut frame, place.seed(1));
        assert!(open(&frame, place.seed(1)).is_some());
        assert!(open(&frame, place.seed(2)).is_none(), "another shard");
        assert!(open(&frame, FramePlace { stripe: 4, ..place }.seed(1)).is_none(), "another stripe");
        assert!(open(&frame, FramePlace { data_id: Uuid::new_v4(), ..place }.seed(1)).is_none(), "another object");
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let frame = sealed(&[7u8; 256]);
        for byte in 0..frame.len() {
            let mut bad = frame.clone();
            bad[byte] ^= 0x10;
            assert_eq!(open(&bad, SEED), None, "flip in byte {byte} went unnoticed");
        }
    }

    #[test]
    fn truncated_frame_is_corrupt() {
        assert_eq!(open(&[1, 2, 3], SEED), None);
        assert_eq!(open(&sealed(b"abc")[..HASH_BYTES + 2], SEED), None);
    }
}
