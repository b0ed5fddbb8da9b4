//! Bitrot protection: every shard block is stored behind a 128-bit xxh3 hash of its bytes and
//! verified on every read (ADR 0003 says why xxh3-128).

use xxhash_rust::xxh3::xxh3_128;

/// Bytes of the hash that precedes each shard block.
pub const HASH_BYTES: usize = 16;

/// Writes `hash(block) ++ block` into `frame`, which must be `HASH_BYTES + block.len()` long
/// and already hold the block at `frame[HASH_BYTES..]`.
pub fn seal_in_place(frame: &mut [u8]) {
    let hash = xxh3_128(&frame[HASH_BYTES..]);
    frame[..HASH_BYTES].copy_from_slice(&hash.to_le_bytes());
}

/// Returns the block of a sealed frame when its hash matches, `None` when it is corrupt.
pub fn open(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < HASH_BYTES {
        return None;
    }
    let (hash, block) = frame.split_at(HASH_BYTES);
    (xxh3_128(block).to_le_bytes() == hash).then_some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(block: &[u8]) -> Vec<u8> {
        let mut frame = vec![0; HASH_BYTES + block.len()];
        frame[HASH_BYTES..].copy_from_slice(block);
        seal_in_place(&mut frame);
        frame
    }

    #[test]
    fn sealed_frame_opens_to_its_block() {
        let frame = sealed(b"shard bytes");
        assert_eq!(open(&frame), Some(&b"shard bytes"[..]));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let frame = sealed(&[7u8; 256]);
        for byte in 0..frame.len() {
            let mut bad = frame.clone();
            bad[byte] ^= 0x10;
            assert_eq!(open(&bad), None, "flip in byte {byte} went unnoticed");
        }
    }

    #[test]
    fn truncated_frame_is_corrupt() {
        assert_eq!(open(&[1, 2, 3]), None);
        assert_eq!(open(&sealed(b"abc")[..HASH_BYTES + 2]), None);
    }
}
