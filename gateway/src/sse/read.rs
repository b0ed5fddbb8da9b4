//! Reads of sealed objects: which stored bytes a plaintext range needs (each piece's header and
//! the packages the range touches, never more), and opening them. The first package is opened
//! before the response starts, so tampered data fails the request instead of a body midway.

use std::ops::Range;

use futures::{stream, StreamExt, TryStreamExt};
use s3s::S3Result;
use sovereign_kms_client::PlainKey;
use storage::meta::{ObjectEncryption, VersionRecord};
use storage::put::BodyStream;
use storage::store::ObjectHandle;

use super::package::{Layout, HEADER_BYTES};
use super::stream::{self as sse_stream, PiecePlan};
use crate::error::to_s3;

/// `(part number, stored size)` of each sealed piece, in object order.
pub fn pieces(record: &VersionRecord) -> Vec<(i32, u64)> {
    if record.parts.is_empty() {
        return vec![(1, record.size)];
    }
    record.parts.iter().map(|p| (p.number, p.size)).collect()
}

/// One piece's share of a read.
struct PieceRead {
    number: i32,
    sealed_start: u64,
    sealed_len: u64,
    plan: PiecePlan,
}

/// The pieces a plaintext `range` touches.
fn plan(record: &VersionRecord, layout: Layout, range: Range<u64>) -> Vec<PieceRead> {
    let mut out = Vec::new();
    let (mut plain_start, mut sealed_start) = (0u64, 0u64);
    for (number, sealed_len) in pieces(record) {
        let plain_len = layout.plain_size(sealed_len);
        let plain_end = plain_start + plain_len;
        let from = range.start.max(plain_start);
        let to = range.end.min(plain_end);
        if from < to {
            let (local_from, local_to) = (from - plain_start, to - plain_start);
            let first_package = local_from / layout.package_bytes;
            let plan = PiecePlan {
                first_package,
                packages: layout.packages(plain_len),
                piece_plain: plain_len,
                skip: local_from - first_package * layout.package_bytes,
                take: local_to - local_from,
            };
            out.push(PieceRead { number, sealed_start, sealed_len, plan });
        }
        plain_start = plain_end;
        sealed_start += sealed_len;
    }
    out
}

/// The plaintext of one piece's share: its header and the packages from the first one needed
/// to the last, read in one request when they are adjacent.
async fn open_piece(
    handle: ObjectHandle,
    encryption: &ObjectEncryption,
    key: PlainKey,
    layout: Layout,
    piece: PieceRead,
    bucket: &str,
    object: &str,
) -> storage::Result<BodyStream> {
    let identity = super::identity(encryption, bucket, object, piece.number, handle.record().completed_upload);
    let last_package = (piece.plan.skip + piece.plan.take).div_ceil(layout.package_bytes).max(1) - 1;
    let end = layout.package_offset(piece.plan.first_package + last_package + 1).min(piece.sealed_len);
    let start = piece.sealed_start;
    let input: BodyStream = if piece.plan.first_package == 0 {
        handle.read(Some(start..start + end)).await?
    } else {
        let header = handle.clone().read(Some(start..start + HEADER_BYTES)).await?;
        let from = start + layout.package_offset(piece.plan.first_package);
        let packages = handle.read(Some(from..start + end)).await?;
        Box::pin(header.chain(packages))
    };
    Ok(sse_stream::open(input, key, identity, layout, piece.plan))
}

/// Streams `range` (all when `None`) of a sealed object's plaintext.
pub async fn open(
    handle: ObjectHandle,
    encryption: &ObjectEncryption,
    key: PlainKey,
    range: Option<Range<u64>>,
    bucket: &str,
    object: &str,
) -> S3Result<BodyStream> {
    let layout = Layout::new(encryption.package_bytes);
    let range = range.unwrap_or(0..super::object_size(handle.record()));
    let mut reads = plan(handle.record(), layout, range).into_iter();
    let Some(first) = reads.next() else { return Ok(Box::pin(stream::empty())) };
    let mut body =
        open_piece(handle.clone(), encryption, key.clone(), layout, first, bucket, object).await.map_err(to_s3)?;
    let head = match body.next().await {
        Some(Ok(plain)) => plain,
        Some(Err(e)) => return Err(to_s3(e)),
        None => return Ok(Box::pin(stream::empty())),
    };
    let (encryption, bucket, object) = (encryption.clone(), bucket.to_owned(), object.to_owned());
    let rest = stream::iter(reads)
        .then(move |piece| {
            let (handle, encryption, key) = (handle.clone(), encryption.clone(), key.clone());
            let (bucket, object) = (bucket.clone(), object.clone());
            async move { open_piece(handle, &encryption, key, layout, piece, &bucket, &object).await }
        })
        .try_flatten();
    Ok(Box::pin(stream::once(async move { Ok(head) }).chain(body).chain(rest)))
}

/// Tampering the bitrot hash cannot see: stored bytes replaced through the object layer (which
/// computes fresh, valid bitrot hashes) keep the object's encryption record, so only the package
/// authentication stands between them and the client.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::TryStreamExt;
    use s3s::dto::ServerSideEncryption;
    use sovereign_kms_client::local::LocalKms;
    use storage::store::{ObjectMeta, ObjectStore, StoreConfig};

    use crate::sse::headers::{CustomerHeaders, WriteHeaders};
    use crate::sse::package::{HEADER_BYTES, PACKAGE_PLAIN_BYTES, TAG_BYTES};
    use crate::sse::Sse;

    const BUCKET: &str = "b";
    /// Sealed bytes of one full package.
    const PACKAGE: usize = PACKAGE_PLAIN_BYTES as usize + TAG_BYTES as usize;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<ObjectStore>,
        sse: Sse,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { drives: vec![dir.path().join("d1")], durable: false, ..StoreConfig::default() };
        let store = ObjectStore::open(config).await.unwrap();
        store.create_bucket(BUCKET).await.unwrap();
        let kms = LocalKms::open(&dir.path().join("master.key"), vec!["k".into()]).unwrap();
        Fixture { _dir: dir, store, sse: Sse::new(Arc::new(kms), "k".into()) }
    }

    fn body(data: Vec<u8>) -> storage::put::BodyStream {
        Box::pin(futures::stream::iter([Ok(Bytes::from(data))]))
    }

    impl Fixture {
        async fn put_sealed(&self, key: &str, data: &[u8]) {
            let headers = WriteHeaders {
                server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
                ..WriteHeaders::default()
            };
            let sealing = self.sse.begin_write(BUCKET, key, &headers, None).await.unwrap().unwrap();
            let sealed = sealing.seal(body(data.to_vec()), 1).unwrap();
            let meta = ObjectMeta { encryption: Some(sealing.finish()), ..ObjectMeta::default() };
            self.store.put_object(BUCKET, key, sealed, None, meta).await.unwrap();
        }

        /// The stored (sealed) bytes and record of `key`.
        async fn raw(&self, key: &str) -> (Vec<u8>, storage::meta::VersionRecord) {
            let handle = self.store.get_object(BUCKET, key).await.unwrap();
            let record = handle.record().clone();
            let chunks: Vec<Bytes> = handle.read(None).await.unwrap().try_collect().await.unwrap();
            (chunks.concat(), record)
        }

        /// Stores `bytes` as `key` with `record`'s encryption, through the object layer.
        async fn replace(&self, key: &str, bytes: Vec<u8>, record: &storage::meta::VersionRecord) {
            let meta = ObjectMeta { encryption: record.encryption.clone(), ..ObjectMeta::default() };
            self.store.put_object(BUCKET, key, body(bytes), None, meta).await.unwrap();
        }

        /// The plaintext a GET of `key` returns, or the error it fails with.
        async fn read(&self, key: &str) -> Result<Vec<u8>, String> {
            let handle = self.store.get_object(BUCKET, key).await.map_err(|e| e.to_string())?;
            let data_key = self
                .sse
                .data_key(handle.record().encryption.as_ref(), &CustomerHeaders::default())
                .await
                .map_err(|e| format!("{e:?}"))?;
            let stream = self.sse.read(handle, None, data_key, BUCKET, key).await.map_err(|e| format!("{e:?}"))?;
            let chunks: Vec<Bytes> = stream.try_collect().await.map_err(|e| e.to_string())?;
            Ok(chunks.concat())
        }
    }

    #[tokio::test]
    async fn resealed_tampering_fails_authentication() {
        let f = fixture().await;
        let data: Vec<u8> = (0..3 * PACKAGE_PLAIN_BYTES as usize + 100).map(|i| (i % 251) as u8).collect();
        f.put_sealed("a", &data).await;
        f.put_sealed("other", &data).await;
        let (sealed, record) = f.raw("a").await;
        let header = HEADER_BYTES as usize;
        assert_eq!(f.read("a").await.unwrap(), data);

        // Control: the same bytes stored again read back.
        f.replace("a", sealed.clone(), &record).await;
        assert_eq!(f.read("a").await.unwrap(), data, "an untouched re-store reads back");

        let mut flipped = sealed.clone();
        flipped[header + 2 * PACKAGE + 7] ^= 1;
        let mut swapped = sealed.clone();
        swapped.copy_within(header..header + PACKAGE, header + PACKAGE);
        swapped[header..header + PACKAGE].copy_from_slice(&sealed[header + PACKAGE..header + 2 * PACKAGE]);
        let truncated = sealed[..header + 3 * PACKAGE].to_vec();
        let mut dropped = sealed[..header + PACKAGE].to_vec();
        dropped.extend_from_slice(&sealed[header + 2 * PACKAGE..]);
        let (foreign, _) = f.raw("other").await;
        let cases = [
            ("a flipped bit", flipped),
            ("two packages swapped", swapped),
            ("the last package cut off", truncated),
            ("a package dropped", dropped),
            ("another object's data", foreign),
        ];
        for (what, bytes) in cases {
            f.replace("a", bytes, &record).await;
            let got = f.read("a").await;
            let returned = got.as_ref().map(Vec::len);
            assert!(
                got.as_ref().is_err_and(|e| e.contains("failed authentication") || e.contains("ended after")),
                "{what}: {returned:?} bytes returned"
            );
        }
    }
}
