//! The write path: a body streams in, is cut into stripes, and each stripe is hashed (MD5, the
//! ETag) and erasure coded in one short blocking task while the drive writers store the frames
//! of the stripe before it. Nothing is visible until the version record is committed on a
//! write quorum. A write abandoned part-way (an error, or the client going away and the request
//! being dropped) removes its staged files: writers complete a file only when told the body
//! ended, and staged data not committed is discarded when dropped.

use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::bitrot::FramePlace;
use crate::drive::ShardWriter;
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::placement::shard_of_drive;
use crate::set::ErasureSet;

/// A request body as the object layer consumes it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + Sync>>;

/// Frames queued per drive writer: bounds memory to a few stripes per request.
const FRAMES_IN_FLIGHT: usize = 2;

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
    /// Removes the staged shard files if this is dropped uncommitted.
    pub guard: DiscardOnDrop,
}

/// Removes staged shard files when dropped, unless disarmed by a commit: a request dropped
/// between staging and commit (the client went away) leaves nothing behind.
#[derive(Debug)]
pub struct DiscardOnDrop {
    target: Option<(Arc<ErasureSet>, Uuid)>,
}

impl DiscardOnDrop {
    fn files(set: &Arc<ErasureSet>, data_id: Uuid) -> Self {
        Self { target: Some((Arc::clone(set), data_id)) }
    }

    fn none() -> Self {
        Self { target: None }
    }

    /// The data is now referenced by a committed record (or discarded explicitly).
    pub fn disarm(&mut self) {
        self.target = None;
    }
}

impl Drop for DiscardOnDrop {
    fn drop(&mut self) {
        let Some((set, data_id)) = self.target.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { discard_files(&set, data_id).await });
        }
    }
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
    set: &Arc<ErasureSet>,
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
    if allow_inline && ended && buf.len() <= inline_limit {
        let size = buf.len() as u64;
        check_size(expected_size, size)?;
        let data = buf.freeze();
        let (md5, frames) = tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((Md5::digest(&data).into(), encode_all(&erasure, &data)?))
        })
        .await??;
        let content = StagedContent::Inline(frames);
        return Ok(Staged { data_id: Uuid::new_v4(), size, md5, erasure, hash, content, guard: DiscardOnDrop::none() });
    }
    let data_id = Uuid::new_v4();
    // From here on, every way out (an error, or this future being dropped) removes the files.
    let guard = DiscardOnDrop::files(set, data_id);
    let mut pipeline = FilePipeline::start(set, data_id, hash).await?;
    let size = pipeline.run(buf, if ended { None } else { Some(&mut body) }).await?;
    let (md5, written) = pipeline.finish(set).await?;
    check_size(expected_size, size)?;
    Ok(Staged { data_id, size, md5, erasure, hash, content: StagedContent::Files(written), guard })
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

/// Encodes all of `data` into per-shard frame sequences (shard index order), for storing
/// inline in version records (frames sealed with the nil data id: they live in their record).
pub fn encode_all(erasure: &Erasure, data: &[u8]) -> Result<Vec<Bytes>> {
    let mut shards: Vec<BytesMut> = vec![BytesMut::new(); erasure.total()];
    for (index, stripe) in data.chunks(erasure.block_size).enumerate() {
        let place = FramePlace::inline(index as u64);
        for (shard, frame) in shards.iter_mut().zip(erasure.encode_stripe(stripe, place)?) {
            shard.extend_from_slice(&frame);
        }
    }
    Ok(shards.into_iter().map(BytesMut::freeze).collect())
}

/// The streaming state of a file-backed write: one writer task per drive, and the MD5 state
/// carried from stripe to stripe. Dropping it (an error, or the request being dropped) closes
/// the writers' channels without the end mark, so they remove their staged files instead of
/// completing them.
struct FilePipeline {
    erasure: Erasure,
    hash: u64,
    data_id: Uuid,
    /// Number of the next stripe.
    stripe: u64,
    senders: Vec<Option<mpsc::Sender<Frame>>>,
    writers: Vec<Option<JoinHandle<Result<()>>>>,
    md5: Option<Md5>,
}

/// What a drive writer receives.
enum Frame {
    /// The next frame of the shard file.
    Data(Bytes),
    /// The body ended: sync and complete the file.
    End,
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
        let pipeline = Self { erasure: set.erasure, hash, data_id, stripe: 0, senders, writers, md5: Some(Md5::new()) };
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

    /// Hashes and encodes one stripe in a short blocking task (the writers meanwhile store the
    /// frames of the stripe before), then hands each drive its frame.
    async fn emit(&mut self, stripe: Bytes) -> Result<()> {
        let erasure = self.erasure;
        let place = FramePlace { data_id: self.data_id, stripe: self.stripe };
        self.stripe += 1;
        let mut md5 = self.md5.take().ok_or_else(|| StorageError::Body("write already failed".into()))?;
        let (md5, frames) = tokio::task::spawn_blocking(move || {
            md5.update(&stripe);
            let frames = erasure.encode_stripe(&stripe, place);
            (md5, frames)
        })
        .await?;
        self.md5 = Some(md5);
        let frames = frames?;
        let total = self.senders.len();
        for (drive, slot) in self.senders.iter_mut().enumerate() {
            let Some(sender) = slot else { continue };
            let frame = frames[shard_of_drive(self.hash, drive, total)].clone();
            if sender.send(Frame::Data(frame)).await.is_err() {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Tells every writer the body ended and waits for it to make its file durable; returns
    /// the MD5 and which drives hold a complete shard file, failing below the write quorum.
    async fn finish(&mut self, set: &ErasureSet) -> Result<([u8; 16], Vec<bool>)> {
        for sender in self.senders.drain(..).flatten() {
            // A writer that already failed has dropped its end; its join result says so.
            let _ = sender.send(Frame::End).await;
        }
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
        let md5 = self.md5.take().ok_or_else(|| StorageError::Body("write already failed".into()))?;
        Ok((md5.finalize().into(), written))
    }
}

impl Drop for FilePipeline {
    /// Stops writers still running (an abandoned write): their staged files are removed.
    fn drop(&mut self) {
        self.senders.clear();
        for task in self.writers.iter().flatten() {
            task.abort();
        }
    }
}

/// Writes the frames it receives, and completes the file only on [`Frame::End`]; a channel
/// closed without it drops the writer, which removes the staged file.
async fn write_frames(mut writer: Box<dyn ShardWriter>, mut frames: mpsc::Receiver<Frame>) -> Result<()> {
    while let Some(frame) = frames.recv().await {
        match frame {
            Frame::Data(bytes) => writer.write(bytes).await?,
            Frame::End => return writer.finish().await,
        }
    }
    Err(StorageError::Body("write abandoned".into()))
}
