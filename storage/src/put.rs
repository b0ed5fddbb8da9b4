//! The write path: a body streams in, is cut into stripes, erasure coded and written to every
//! drive of the set in parallel while MD5 (the ETag) is computed on another thread. Nothing is
//! visible until the version record is committed on a write quorum.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::drive::ShardWriter;
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::placement::shard_of_drive;
use crate::set::ErasureSet;

/// A request body as the object layer consumes it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + Sync>>;

/// Frames queued per drive writer: bounds memory to a few stripes per request.
const FRAMES_IN_FLIGHT: usize = 2;
/// Stripes queued for the MD5 thread.
const MD5_STRIPES_IN_FLIGHT: usize = 4;

/// Object data that is written but not yet committed.
#[derive(Debug)]
pub struct Staged {
    /// Names the shard files (unused for inline data).
    pub data_id: Uuid,
    /// Bytes received.
    pub size: u64,
    /// MD5 of the bytes received.
    pub md5: [u8; 16],
    /// Layout used.
    pub erasure: Erasure,
    /// Placement hash of the object.
    pub hash: u64,
    /// Where the shards are.
    pub content: StagedContent,
}

/// Where staged shards live.
#[derive(Debug)]
pub enum StagedContent {
    /// Small object: each shard's frames, by shard index, to be stored in the records.
    Inline(Vec<Bytes>),
    /// Shard files written on the drives marked `true` (by drive index).
    Files(Vec<bool>),
}

impl Staged {
    /// Hex MD5 of the data.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// Streams `body` into the set. With `allow_inline`, a body no larger than the set's inline
/// threshold is kept in memory for the records instead of being written to shard files.
pub async fn stage(
    set: &ErasureSet,
    hash: u64,
    mut body: BodyStream,
    expected_size: Option<u64>,
    allow_inline: bool,
) -> Result<Staged> {
    let erasure = set.erasure;
    let inline_limit = if allow_inline { set.inline_threshold_bytes } else { 0 };
    let mut buf = BytesMut::new();
    let mut ended = false;
    while buf.len() <= inline_limit {
        match body.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => {
                ended = true;
                break;
            }
        }
    }
    if ended && buf.len() <= inline_limit {
        let size = buf.len() as u64;
        check_size(expected_size, size)?;
        let data = buf.freeze();
        let (md5, frames) = tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((Md5::digest(&data).into(), encode_all(&erasure, &data)?))
        })
        .await??;
        let content = StagedContent::Inline(frames);
        return Ok(Staged { data_id: Uuid::new_v4(), size, md5, erasure, hash, content });
    }
    let data_id = Uuid::new_v4();
    let mut pipeline = FilePipeline::start(set, data_id, hash).await?;
    let result = pipeline.run(buf, if ended { None } else { Some(&mut body) }).await;
    match result {
        Ok(size) => match pipeline.finish(set).await {
            Ok((md5, written)) => match check_size(expected_size, size) {
                Ok(()) => Ok(Staged { data_id, size, md5, erasure, hash, content: StagedContent::Files(written) }),
                Err(e) => {
                    discard_files(set, data_id).await;
                    Err(e)
                }
            },
            Err(e) => {
                discard_files(set, data_id).await;
                Err(e)
            }
        },
        Err(e) => {
            pipeline.abandon().await;
            discard_files(set, data_id).await;
            Err(e)
        }
    }
}

/// Removes the shard files of an uncommitted write from every drive.
pub async fn discard_files(set: &ErasureSet, data_id: Uuid) {
    set.on_all(|drive| drive.discard_shard(data_id)).await;
}

fn check_size(expected: Option<u64>, got: u64) -> Result<()> {
    match expected {
        Some(expected) if expected != got => Err(StorageError::IncompleteBody { expected, got }),
        _ => Ok(()),
    }
}

/// Encodes all of `data` into per-shard frame sequences (shard index order).
pub fn encode_all(erasure: &Erasure, data: &[u8]) -> Result<Vec<Bytes>> {
    let mut shards: Vec<BytesMut> = vec![BytesMut::new(); erasure.total()];
    for stripe in data.chunks(erasure.block_size) {
        for (shard, frame) in shards.iter_mut().zip(erasure.encode_stripe(stripe)?) {
            shard.extend_from_slice(&frame);
        }
    }
    Ok(shards.into_iter().map(BytesMut::freeze).collect())
}

/// The streaming state of a file-backed write: one writer task per drive, one MD5 thread.
struct FilePipeline {
    erasure: Erasure,
    hash: u64,
    senders: Vec<Option<mpsc::Sender<Bytes>>>,
    writers: Vec<Option<JoinHandle<Result<()>>>>,
    md5_tx: Option<mpsc::Sender<Bytes>>,
    md5_task: JoinHandle<[u8; 16]>,
}

impl FilePipeline {
    async fn start(set: &ErasureSet, data_id: Uuid, hash: u64) -> Result<Self> {
        let created = set.on_all(|drive| drive.create_shard(data_id)).await;
        let mut senders = Vec::with_capacity(created.len());
        let mut writers = Vec::with_capacity(created.len());
        for (writer, drive) in created.into_iter().zip(&set.drives) {
            match writer {
                Ok(writer) => {
                    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
                    senders.push(Some(tx));
                    writers.push(Some(tokio::spawn(write_frames(writer, rx))));
                }
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "cannot create shard file");
                    senders.push(None);
                    writers.push(None);
                }
            }
        }
        let (md5_tx, mut md5_rx) = mpsc::channel::<Bytes>(MD5_STRIPES_IN_FLIGHT);
        let md5_task = tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(stripe) = md5_rx.blocking_recv() {
                md5.update(&stripe);
            }
            md5.finalize().into()
        });
        let pipeline = Self { erasure: set.erasure, hash, senders, writers, md5_tx: Some(md5_tx), md5_task };
        set.quorum.check_write("put", pipeline.alive())?;
        Ok(pipeline)
    }

    fn alive(&self) -> usize {
        self.senders.iter().filter(|s| s.is_some()).count()
    }

    /// Feeds `buf` and then the rest of `body` through the pipeline; returns the size.
    async fn run(&mut self, mut buf: BytesMut, mut body: Option<&mut BodyStream>) -> Result<u64> {
        let block = self.erasure.block_size;
        let mut size = buf.len() as u64;
        loop {
            while buf.len() >= block {
                let stripe = buf.split_to(block).freeze();
                self.emit(stripe).await?;
            }
            let Some(stream) = body.as_mut() else { break };
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    size += chunk.len() as u64;
                    buf.extend_from_slice(&chunk);
                }
                None => body = None,
            }
        }
        if !buf.is_empty() {
            self.emit(buf.freeze()).await?;
        }
        Ok(size)
    }

    async fn emit(&mut self, stripe: Bytes) -> Result<()> {
        if let Some(md5) = &self.md5_tx {
            md5.send(stripe.clone()).await.map_err(|_| StorageError::Body("md5 worker stopped".into()))?;
        }
        let erasure = self.erasure;
        let frames = tokio::task::spawn_blocking(move || erasure.encode_stripe(&stripe)).await??;
        let total = self.senders.len();
        for (drive, slot) in self.senders.iter_mut().enumerate() {
            let Some(sender) = slot else { continue };
            let frame = frames[shard_of_drive(self.hash, drive, total)].clone();
            if sender.send(frame).await.is_err() {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Waits for every writer to make its file durable; returns the MD5 and which drives hold
    /// a complete shard file, failing below the write quorum.
    async fn finish(&mut self, set: &ErasureSet) -> Result<([u8; 16], Vec<bool>)> {
        self.senders.clear();
        self.md5_tx = None;
        let mut written = Vec::with_capacity(self.writers.len());
        for (writer, drive) in self.writers.iter_mut().zip(&set.drives) {
            let ok = match writer.take() {
                Some(task) => match task.await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(drive = drive.label(), error = %e, "shard write failed");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(drive = drive.label(), error = %e, "shard writer panicked");
                        false
                    }
                },
                None => false,
            };
            written.push(ok);
        }
        set.quorum.check_write("put", written.iter().filter(|w| **w).count())?;
        let md5 = (&mut self.md5_task).await?;
        Ok((md5, written))
    }

    /// Stops every task after a failure, leaving partial files for [`discard_files`].
    async fn abandon(&mut self) {
        self.senders.clear();
        self.md5_tx = None;
        for task in self.writers.iter_mut().filter_map(Option::take) {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn write_frames(mut writer: Box<dyn ShardWriter>, mut frames: mpsc::Receiver<Bytes>) -> Result<()> {
    while let Some(frame) = frames.recv().await {
        writer.write(frame).await?;
    }
    writer.finish().await
}
