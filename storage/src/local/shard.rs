//! Shard files of a local drive: staged as `.partial`, synced and renamed into place; read
//! through handles that outlive a reclaim of the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use crate::drive::{ShardReader, ShardWriter};
use crate::error::{Result, StorageError};
use crate::metrics;

/// Writes one shard file as `<id>.partial`, then syncs it and renames it into place, so a
/// reader (or a heal rewriting a damaged shard) never sees a half-written file. Until a record
/// references it the file is invisible, and the drive's orphan reclaim removes it after a
/// crash.
pub(super) struct LocalShardWriter {
    pub(super) file: Option<File>,
    pub(super) partial: PathBuf,
    pub(super) path: PathBuf,
    pub(super) durable: bool,
    pub(super) label: String,
    pub(super) renamed: bool,
}

impl Drop for LocalShardWriter {
    /// A writer dropped before `finish` (a failed, abandoned or cancelled write) removes its
    /// staged file.
    fn drop(&mut self) {
        if !self.renamed {
            if let Err(e) = fs::remove_file(&self.partial) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(path = %self.partial.display(), error = %e, "could not remove staged file");
                }
            }
        }
    }
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write(&mut self, frames: Bytes) -> Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StorageError::io("write after failure", io::ErrorKind::BrokenPipe.into()))?;
        let started = Instant::now();
        let (file, written) = tokio::task::spawn_blocking(move || {
            let written = file.write_all(&frames);
            (file, written)
        })
        .await?;
        metrics::observe(|m| &m.shard_write, &self.label, started.elapsed().as_secs_f64());
        written.map_err(|e| StorageError::io(format!("write {}", self.partial.display()), e))?;
        self.file = Some(file);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StorageError::io("finish after failure", io::ErrorKind::BrokenPipe.into()))?;
        let (partial, path, durable) = (self.partial.clone(), self.path.clone(), self.durable);
        let started = Instant::now();
        let finished = tokio::task::spawn_blocking(move || {
            if durable {
                file.sync_data()?;
            }
            fs::rename(&partial, &path)?;
            if durable {
                sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            }
            Ok(())
        })
        .await?
        .map_err(|e: io::Error| StorageError::io(format!("complete {}", self.path.display()), e));
        metrics::observe(|m| &m.shard_write, &self.label, started.elapsed().as_secs_f64());
        self.renamed = finished.is_ok();
        finished
    }
}

/// An open shard file. Reads use `pread` on the descriptor opened once, so a GET that started
/// on a version keeps its bytes even when a newer version's cleanup unlinks the file.
#[derive(Debug)]
pub(super) struct LocalShardReader {
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    pub(super) label: String,
}

#[async_trait]
impl ShardReader for LocalShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let (file, path) = (Arc::clone(&self.file), self.path.clone());
        let started = Instant::now();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            while filled < len {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(StorageError::io(format!("read {}", path.display()), e)),
                }
            }
            buf.truncate(filled);
            Ok(Bytes::from(buf))
        })
        .await?;
        metrics::observe(|m| &m.shard_read, &self.label, started.elapsed().as_secs_f64());
        read
    }
}

/// Syncs a directory, so the entries created or renamed in it survive a power cut.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
