//! Reed-Solomon erasure coding of stripes into sealed shard frames, and back.
//!
//! An object is cut into stripes of `block_size` bytes. Each stripe is split into `data` shards
//! of equal length (zero-padded), `parity` shards are computed from them, and every shard is
//! sealed with its bitrot hash. Shard `i` of every stripe is appended to the same shard file,
//! so a shard file is a sequence of fixed-size frames (the last stripe's may be shorter).

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::bitrot::{self, FramePlace, HASH_BYTES};
use crate::error::{Result, StorageError};

/// Shard lengths are rounded up to this many bytes (reed-solomon-simd works on 64-byte chunks).
const SHARD_ALIGN_BYTES: usize = 64;

thread_local! {
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

/// The erasure layout of one object: shard counts and stripe size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Erasure {
    /// Data shards per stripe (k).
    pub data: usize,
    /// Parity shards per stripe (m).
    pub parity: usize,
    /// Object bytes per stripe.
    pub block_size: usize,
}

/// A stripe decoded from its shards, and which shards were missing or corrupt.
#[derive(Debug)]
pub struct DecodedStripe {
    /// The stripe's object bytes, in order: slices of the data shards' frames when they were
    /// intact (no copy), one rebuilt buffer otherwise.
    pub chunks: Vec<Bytes>,
    /// Indices of shards that had to be reconstructed.
    pub damaged: Vec<usize>,
    /// Frames that were read but failed their bitrot check.
    pub corrupt: usize,
}

impl DecodedStripe {
    /// Object bytes in the stripe.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// True for an empty stripe.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stripe's bytes in one buffer (copies unless there is a single chunk).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [one] => one.clone(),
            chunks => chunks.concat().into(),
        }
    }

    /// The chunks covering `range` of the stripe's bytes, without copying.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut at = 0;
        for chunk in &self.chunks {
            let (start, end) = (at, at + chunk.len());
            at = end;
            let (lo, hi) = (range.start.max(start), range.end.min(end));
            if lo < hi {
                out.push(chunk.slice(lo - start..hi - start));
            }
        }
        out
    }
}

impl Erasure {
    /// Creates a layout, checking that Reed-Solomon supports the shard counts.
    pub fn new(data: usize, parity: usize, block_size: usize) -> Result<Self> {
        if data == 0 || block_size == 0 {
            return Err(StorageError::Config("erasure needs at least one data shard".into()));
        }
        if parity > 0 && !ReedSolomonEncoder::supports(data, parity) {
            return Err(StorageError::Config(format!("unsupported erasure layout {data}+{parity}")));
        }
        Ok(Self { data, parity, block_size })
    }

    /// Total shards per stripe (k + m).
    pub fn total(&self) -> usize {
        self.data + self.parity
    }

    /// Length of one shard of a stripe holding `stripe_len` object bytes.
    pub fn shard_len(&self, stripe_len: usize) -> usize {
        let raw = stripe_len.div_ceil(self.data);
        if self.parity == 0 {
            raw
        } else {
            raw.div_ceil(SHARD_ALIGN_BYTES) * SHARD_ALIGN_BYTES
        }
    }

    /// Length of one sealed frame of a stripe holding `stripe_len` object bytes.
    pub fn frame_len(&self, stripe_len: usize) -> usize {
        HASH_BYTES + self.shard_len(stripe_len)
    }

    /// Object bytes held by stripe `index` of an object of `size` bytes.
    pub fn stripe_len(&self, size: u64, index: u64) -> usize {
        let start = index * self.block_size as u64;
        (size.saturating_sub(start)).min(self.block_size as u64) as usize
    }

    /// Number of stripes of an object of `size` bytes.
    pub fn stripe_count(&self, size: u64) -> u64 {
        size.div_ceil(self.block_size as u64)
    }

    /// Byte offset of stripe `index`'s frame in a shard file.
    pub fn frame_offset(&self, index: u64) -> u64 {
        index * self.frame_len(self.block_size) as u64
    }

    /// Size of each shard file of an object of `size` bytes.
    pub fn shard_file_len(&self, size: u64) -> u64 {
        let full = size / self.block_size as u64;
        let rest = (size % self.block_size as u64) as usize;
        let tail = if rest == 0 { 0 } else { self.frame_len(rest) as u64 };
        full * self.frame_len(self.block_size) as u64 + tail
    }

    /// Encodes one stripe into `total()` frames, data shards first, each sealed for its place.
    pub fn encode_stripe(&self, stripe: &[u8], place: FramePlace) -> Result<Vec<Bytes>> {
        let shard_len = self.shard_len(stripe.len());
        let frame_len = HASH_BYTES + shard_len;
        // Frames are appended, not zeroed and then overwritten: only the hash slots and the
        // padding of the last data shard are written twice.
        let mut frames = BytesMut::with_capacity(frame_len * self.total());
        let mut chunks = stripe.chunks(shard_len.max(1));
        for _ in 0..self.data {
            let chunk = chunks.next().unwrap_or_default();
            frames.put_bytes(0, HASH_BYTES);
            frames.extend_from_slice(chunk);
            frames.put_bytes(0, shard_len - chunk.len());
        }
        if self.parity > 0 {
            self.append_parity(&mut frames, shard_len)?;
        }
        for (shard, frame) in frames.chunks_mut(frame_len).enumerate() {
            bitrot::seal_in_place(frame, place.seed(shard));
        }
        let mut frames = frames.freeze();
        Ok((0..self.total()).map(|_| frames.split_to(frame_len)).collect())
    }

    /// Appends the parity frames (hash slot empty) computed from the data frames in `frames`.
    fn append_parity(&self, frames: &mut BytesMut, shard_len: usize) -> Result<()> {
        let frame_len = HASH_BYTES + shard_len;
        ENCODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let encoder = match slot.as_mut() {
                Some(encoder) => {
                    encoder.reset(self.data, self.parity, shard_len).map_err(rs_error)?;
                    encoder
                }
                None => slot.insert(ReedSolomonEncoder::new(self.data, self.parity, shard_len).map_err(rs_error)?),
            };
            for index in 0..self.data {
                let at = index * frame_len + HASH_BYTES;
                encoder.add_original_shard(&frames[at..at + shard_len]).map_err(rs_error)?;
            }
            let result = encoder.encode().map_err(rs_error)?;
            for recovery in result.recovery_iter() {
                frames.put_bytes(0, HASH_BYTES);
                frames.extend_from_slice(recovery);
            }
            Ok(())
        })
    }

    /// Decodes a stripe of `stripe_len` object bytes from its frames (`None` = not read).
    ///
    /// Frames that fail their bitrot check count as missing. Needs `data` intact frames.
    pub fn decode_stripe(
        &self,
        frames: &[Option<Bytes>],
        stripe_len: usize,
        place: FramePlace,
    ) -> Result<DecodedStripe> {
        let shard_len = self.shard_len(stripe_len);
        let mut intact: Vec<Option<&[u8]>> = vec![None; self.total()];
        let mut damaged = Vec::new();
        let mut corrupt = 0;
        for (index, frame) in frames.iter().enumerate().take(self.total()) {
            match frame.as_deref().map(|f| bitrot::open(f, place.seed(index))) {
                Some(Some(block)) if block.len() == shard_len => intact[index] = Some(block),
                Some(_) => {
                    corrupt += 1;
                    damaged.push(index);
                }
                None => damaged.push(index),
            }
        }
        if intact[..self.data].iter().all(Option::is_some) {
            let mut chunks = Vec::with_capacity(self.data);
            let mut remaining = stripe_len;
            for frame in frames[..self.data].iter().flatten() {
                let take = remaining.min(shard_len);
                if take > 0 {
                    chunks.push(frame.slice(HASH_BYTES..HASH_BYTES + take));
                }
                remaining -= take;
            }
            return Ok(DecodedStripe { chunks, damaged, corrupt });
        }
        let mut data = BytesMut::with_capacity(shard_len * self.data);
        self.reconstruct(&intact, shard_len, &mut data)?;
        data.truncate(stripe_len);
        Ok(DecodedStripe { chunks: vec![data.freeze()], damaged, corrupt })
    }

    /// Whether decoding these frames needs Reed-Solomon reconstruction (some data shard is
    /// absent); such stripes are decoded off the async runtime.
    pub fn needs_reconstruction(&self, frames: &[Option<Bytes>]) -> bool {
        frames.iter().take(self.data).any(Option::is_none)
    }

    fn reconstruct(&self, intact: &[Option<&[u8]>], shard_len: usize, out: &mut BytesMut) -> Result<()> {
        let available = intact.iter().filter(|f| f.is_some()).count();
        if self.parity == 0 || available < self.data {
            return Err(StorageError::QuorumLost { op: "read", needed: self.data, online: available });
        }
        DECODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decoder = match slot.as_mut() {
                Some(decoder) => {
                    decoder.reset(self.data, self.parity, shard_len).map_err(rs_error)?;
                    decoder
                }
                None => slot.insert(ReedSolomonDecoder::new(self.data, self.parity, shard_len).map_err(rs_error)?),
            };
            for (index, block) in intact.iter().enumerate() {
                let Some(block) = block else { continue };
                if index < self.data {
                    decoder.add_original_shard(index, block).map_err(rs_error)?;
                } else {
                    decoder.add_recovery_shard(index - self.data, block).map_err(rs_error)?;
                }
            }
            let result = decoder.decode().map_err(rs_error)?;
            for (index, block) in intact[..self.data].iter().enumerate() {
                match block {
                    Some(block) => out.extend_from_slice(block),
                    None => {
                        let restored = result
                            .restored_original(index)
                            .ok_or_else(|| StorageError::Corrupt(format!("shard {index} not restored")))?;
                        out.extend_from_slice(restored);
                    }
                }
            }
            Ok(())
        })
    }
}

fn rs_error(e: reed_solomon_simd::Error) -> StorageError {
    StorageError::Corrupt(format!("reed-solomon: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: FramePlace = FramePlace { data_id: uuid::Uuid::nil(), stripe: 0 };

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn roundtrip(erasure: Erasure, len: usize, lose: &[usize]) -> DecodedStripe {
        let stripe = sample(len);
        let frames = erasure.encode_stripe(&stripe, PLACE).unwrap();
        let frames: Vec<Option<Bytes>> =
            frames.into_iter().enumerate().map(|(i, f)| (!lose.contains(&i)).then_some(f)).collect();
        let decoded = erasure.decode_stripe(&frames, len, PLACE).unwrap();
        assert_eq!(decoded.to_bytes(), stripe);
        decoded
    }

    #[test]
    fn every_loss_within_parity_is_recovered() {
        let erasure = Erasure::new(2, 2, 1 << 20).unwrap();
        for lose in [vec![], vec![0], vec![1], vec![0, 1], vec![0, 3], vec![2, 3], vec![1, 2]] {
            let decoded = roundtrip(erasure, 1000, &lose);
            assert_eq!(decoded.damaged, lose);
        }
    }

    #[test]
    fn layouts_and_odd_lengths_roundtrip() {
        for (k, m) in [(1, 0), (2, 1), (4, 2), (8, 4), (12, 4)] {
            let erasure = Erasure::new(k, m, 1 << 20).unwrap();
            for len in [1, 63, 64, 4096, 100_003] {
                let lose: Vec<usize> = (0..m).collect();
                roundtrip(erasure, len, &lose);
            }
        }
    }

    #[test]
    fn beyond_parity_is_an_error_not_garbage() {
        let erasure = Erasure::new(2, 2, 1 << 20).unwrap();
        let frames = erasure.encode_stripe(&sample(5000), PLACE).unwrap();
        let frames = vec![Some(frames[0].clone()), None, None, None];
        assert!(erasure.decode_stripe(&frames, 5000, PLACE).is_err());
    }

    #[test]
    fn corrupt_frame_counts_as_missing() {
        let erasure = Erasure::new(4, 2, 1 << 20).unwrap();
        let stripe = sample(70_000);
        let mut frames: Vec<Option<Bytes>> =
            erasure.encode_stripe(&stripe, PLACE).unwrap().into_iter().map(Some).collect();
        let mut bad = frames[2].as_ref().unwrap().to_vec();
        bad[100] ^= 1;
        frames[2] = Some(Bytes::from(bad));
        let decoded = erasure.decode_stripe(&frames, stripe.len(), PLACE).unwrap();
        assert_eq!(decoded.to_bytes(), stripe);
        assert_eq!(decoded.damaged, vec![2]);
        assert_eq!(decoded.corrupt, 1);
    }

    #[test]
    fn swapped_or_misplaced_frames_are_detected_not_decoded() {
        let erasure = Erasure::new(2, 2, 1 << 20).unwrap();
        let (a, b) = (sample(4000), sample(4000).into_iter().rev().collect::<Vec<_>>());
        let frames_a: Vec<Option<Bytes>> = erasure.encode_stripe(&a, PLACE).unwrap().into_iter().map(Some).collect();
        let other = FramePlace { data_id: uuid::Uuid::new_v4(), stripe: 0 };
        let frames_b: Vec<Option<Bytes>> = erasure.encode_stripe(&b, other).unwrap().into_iter().map(Some).collect();
        // Shards 0 and 1 swapped between drives: both fail, parity rebuilds the right bytes.
        let swapped = vec![frames_a[1].clone(), frames_a[0].clone(), frames_a[2].clone(), frames_a[3].clone()];
        let decoded = erasure.decode_stripe(&swapped, a.len(), PLACE).unwrap();
        assert_eq!(decoded.to_bytes(), a);
        assert_eq!(decoded.corrupt, 2);
        // Another object's valid frame in place of shard 0: refused, not decoded into the reply.
        let mixed = vec![frames_b[0].clone(), frames_a[1].clone(), frames_a[2].clone(), frames_a[3].clone()];
        assert_eq!(erasure.decode_stripe(&mixed, a.len(), PLACE).unwrap().to_bytes(), a);
        // The same frames read as another stripe fail every check.
        let elsewhere = FramePlace { stripe: 1, ..PLACE };
        assert!(erasure.decode_stripe(&frames_a, a.len(), elsewhere).is_err());
    }

    #[test]
    fn shard_file_length_matches_frames() {
        let erasure = Erasure::new(4, 2, 1 << 20).unwrap();
        let size = (3 << 20) + 12345;
        let frames: u64 =
            (0..erasure.stripe_count(size)).map(|i| erasure.frame_len(erasure.stripe_len(size, i)) as u64).sum();
        assert_eq!(erasure.shard_file_len(size), frames);
        assert_eq!(erasure.frame_offset(3), 3 * erasure.frame_len(1 << 20) as u64);
    }
}
