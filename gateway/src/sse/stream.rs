//! Sealing and opening as streams: plaintext request bodies become sealed pieces on their way
//! to the object layer, and sealed bytes read back become plaintext, one package at a time, so
//! memory per request stays a few packages whatever the object's size.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{stream, StreamExt};
use md5::{Digest, Md5};
use sovereign_kms_client::PlainKey;
use storage::put::BodyStream;
use storage::StorageError;

use super::package::{Identity, Layout, PackageError, PieceOpener, PieceSealer, HEADER_BYTES, TAG_BYTES};

/// What sealing saw of the plaintext: its MD5 (the SSE-S3 ETag, checked against Content-MD5).
#[derive(Debug, Clone, Default)]
pub struct PlainDigest(Arc<Mutex<Md5>>);

impl PlainDigest {
    fn update(&self, data: &[u8]) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).update(data);
    }

    /// The MD5 of everything sealed so far.
    pub fn md5(&self) -> [u8; 16] {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone().finalize().into()
    }
}

fn integrity(e: PackageError) -> StorageError {
    StorageError::Corrupt(format!("server-side encryption: {e}"))
}

struct Sealing {
    input: BodyStream,
    sealer: PieceSealer,
    header: Option<Bytes>,
    buffer: BytesMut,
    package_bytes: usize,
    digest: PlainDigest,
    ended: bool,
    done: bool,
}

/// Seals `body` as one piece: the header, then a package each time more than a package of
/// plaintext is buffered (so the final package is known when the body ends).
pub fn seal(body: BodyStream, sealer: PieceSealer, header: Bytes, layout: Layout, digest: PlainDigest) -> BodyStream {
    let state = Sealing {
        input: body,
        sealer,
        header: Some(header),
        buffer: BytesMut::new(),
        package_bytes: layout.package_bytes as usize,
        digest,
        ended: false,
        done: false,
    };
    Box::pin(stream::unfold(state, |mut s| async move {
        if let Some(header) = s.header.take() {
            return Some((Ok(header), s));
        }
        loop {
            if s.done {
                return None;
            }
            if s.buffer.len() > s.package_bytes {
                let plain = s.buffer.split_to(s.package_bytes);
                let sealed = s.sealer.seal(&plain, false).map_err(integrity);
                s.done = sealed.is_err();
                return Some((sealed, s));
            }
            if s.ended {
                let plain = s.buffer.split();
                s.done = true;
                return Some((s.sealer.seal(&plain, true).map_err(integrity), s));
            }
            match s.input.next().await {
                Some(Ok(chunk)) => {
                    s.digest.update(&chunk);
                    s.buffer.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => s.ended = true,
            }
        }
    }))
}

/// Which packages of one piece a read opens, and which of their plaintext it returns.
#[derive(Debug, Clone, Copy)]
pub struct PiecePlan {
    /// The first package read.
    pub first_package: u64,
    /// Packages in the whole piece (the last one is sealed as final).
    pub packages: u64,
    /// Plaintext bytes of the whole piece.
    pub piece_plain: u64,
    /// Plaintext bytes of the first package read that precede the range.
    pub skip: u64,
    /// Plaintext bytes to return.
    pub take: u64,
}

impl PiecePlan {
    fn sealed_len(&self, layout: Layout, index: u64) -> usize {
        let plain = if index + 1 == self.packages {
            self.piece_plain - index * layout.package_bytes
        } else {
            layout.package_bytes
        };
        (plain + TAG_BYTES) as usize
    }
}

struct Opening {
    input: BodyStream,
    key: PlainKey,
    identity: Identity,
    opener: Option<PieceOpener>,
    buffer: BytesMut,
    layout: Layout,
    plan: PiecePlan,
    next: u64,
    skip: u64,
    left: u64,
}

impl Opening {
    /// Buffers at least `len` bytes; false when the input ended first.
    async fn fill(&mut self, len: usize) -> Result<bool, StorageError> {
        while self.buffer.len() < len {
            match self.input.next().await {
                Some(chunk) => self.buffer.extend_from_slice(&chunk?),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn next_plain(&mut self) -> Result<Option<Bytes>, StorageError> {
        if self.left == 0 {
            return Ok(None);
        }
        if self.opener.is_none() {
            if !self.fill(HEADER_BYTES as usize).await? {
                return Err(integrity(PackageError::Header));
            }
            let header = self.buffer.split_to(HEADER_BYTES as usize);
            let opener = PieceOpener::new(self.key.bytes(), self.identity.clone(), &header).map_err(integrity)?;
            self.opener = Some(opener);
        }
        let index = self.next;
        let len = self.plan.sealed_len(self.layout, index);
        if !self.fill(len).await? {
            return Err(integrity(PackageError::Truncated(index)));
        }
        let sealed = self.buffer.split_to(len);
        let last = index + 1 == self.plan.packages;
        let opener = self.opener.as_ref().ok_or_else(|| integrity(PackageError::Header))?;
        let mut plain = opener.open(index, last, sealed).map_err(integrity)?;
        self.next += 1;
        let skip = std::mem::take(&mut self.skip).min(plain.len() as u64) as usize;
        plain = plain.slice(skip..);
        plain.truncate(self.left.min(plain.len() as u64) as usize);
        self.left -= plain.len() as u64;
        Ok(Some(plain))
    }
}

/// Opens a piece's sealed bytes: `input` is the header followed by the packages from
/// `plan.first_package` on. Yields only plaintext that authenticated.
pub fn open(input: BodyStream, key: PlainKey, identity: Identity, layout: Layout, plan: PiecePlan) -> BodyStream {
    let state = Opening {
        input,
        key,
        identity,
        opener: None,
        buffer: BytesMut::new(),
        layout,
        plan,
        next: plan.first_package,
        skip: plan.skip,
        left: plan.take,
    };
    Box::pin(stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        match s.next_plain().await {
            Ok(Some(plain)) => Some((Ok(plain), Some(s))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    const KEY: [u8; 32] = [3; 32];

    fn body(data: Vec<u8>, chunk: usize) -> BodyStream {
        let chunks: Vec<storage::Result<Bytes>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(stream::iter(chunks))
    }

    async fn collect(s: BodyStream) -> storage::Result<Vec<u8>> {
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok(parts.concat())
    }

    fn identity() -> Identity {
        Identity::new("b", "k", 1, "", 10)
    }

    async fn sealed(plain: &[u8], layout: Layout) -> Vec<u8> {
        let (sealer, header) = PieceSealer::new(&KEY, identity()).unwrap();
        let digest = PlainDigest::default();
        let out = collect(seal(body(plain.to_vec(), 7), sealer, header, layout, digest.clone())).await.unwrap();
        assert_eq!(digest.md5(), <[u8; 16]>::from(Md5::digest(plain)));
        out
    }

    fn plan(layout: Layout, plain: u64, range: std::ops::Range<u64>) -> PiecePlan {
        let first = range.start / layout.package_bytes;
        PiecePlan {
            first_package: first,
            packages: layout.packages(plain),
            piece_plain: plain,
            skip: range.start - first * layout.package_bytes,
            take: range.end - range.start,
        }
    }

    #[tokio::test]
    async fn every_range_reads_back() {
        let layout = Layout::new(10);
        for size in [0usize, 1, 10, 11, 35] {
            let plain: Vec<u8> = (0..size as u8).collect();
            let stored = sealed(&plain, layout).await;
            assert_eq!(stored.len() as u64, layout.sealed_size(size as u64));
            for start in 0..size as u64 {
                for end in start + 1..=size as u64 {
                    let p = plan(layout, size as u64, start..end);
                    let from = layout.package_offset(p.first_package) as usize;
                    let mut input = stored[..HEADER_BYTES as usize].to_vec();
                    input.extend_from_slice(&stored[from..]);
                    let key = PlainKey::new(KEY);
                    let out = collect(open(body(input, 5), key, identity(), layout, p)).await.unwrap();
                    assert_eq!(out, &plain[start as usize..end as usize], "{size} {start}..{end}");
                }
            }
        }
    }

    #[tokio::test]
    async fn truncation_and_tampering_fail() {
        let layout = Layout::new(10);
        let plain = vec![9u8; 30];
        let stored = sealed(&plain, layout).await;
        let whole = plan(layout, 30, 0..30);
        // Drop the last package: the stream ends early and says so.
        let cut = stored[..layout.package_offset(2) as usize].to_vec();
        assert!(collect(open(body(cut, 64), PlainKey::new(KEY), identity(), layout, whole)).await.is_err());
        let mut flipped = stored.clone();
        flipped[HEADER_BYTES as usize + 12] ^= 0x40;
        assert!(collect(open(body(flipped, 64), PlainKey::new(KEY), identity(), layout, whole)).await.is_err());
        let wrong = PlainKey::new([4; 32]);
        assert!(collect(open(body(stored, 64), wrong, identity(), layout, whole)).await.is_err());
    }
}
