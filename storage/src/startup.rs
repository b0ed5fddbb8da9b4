//! Opening the store: reading and writing drive formats, opening each drive (or standing in an
//! offline drive for one that does not open), and the background work after start-up:
//! reclaiming shard files a crash left, and healing drives that joined blank.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::drive::{Drive, DriveOp};
use crate::error::{Result, StorageError};
use crate::format::{self, DriveFormat};
use crate::heal;
use crate::local::LocalDrive;
use crate::offline::OfflineDrive;
use crate::stamp::Stamp;
use crate::store::ObjectStore;

/// Present in a drive's root while it is being healed into its set; survives restarts.
const HEALING_MARKER: &str = "healing";

/// The drives in set order, and those of them that opened.
pub(crate) type OpenedDrives = (Vec<Arc<dyn Drive>>, Vec<Arc<LocalDrive>>);

impl ObjectStore {
    /// Reclaims orphaned shard files on every drive, then heals drives that joined blank.
    pub(crate) async fn background_startup(self: Arc<Self>, started: SystemTime) {
        for drive in self.local_drives() {
            match drive.reclaim_orphans(started).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(drive = drive.label(), removed, "reclaimed orphaned shard files"),
                Err(e) => {
                    tracing::warn!(drive = drive.label(), error = %e, "orphan reclaim failed")
                }
            }
        }
        if self.local_drives().iter().any(|d| d.is_healing()) {
            if let Err(e) = self.heal_blank_drives().await {
                tracing::warn!(error = %e, "healing blank drives failed; will retry at next start");
            }
        }
        self.mark_started();
    }

    /// Copies bucket records, their configuration and every version to drives that joined blank, then marks them
    /// healed.
    async fn heal_blank_drives(&self) -> Result<()> {
        let buckets = self.list_buckets().await?;
        for bucket in &buckets {
            let config = self.bucket_config(&bucket.name).await?;
            for drive in self.local_drives().iter().filter(|d| d.is_healing()) {
                drive.put_bucket(bucket.clone()).await?;
                if config.stamp != Stamp::default() {
                    drive.commit(&bucket.name, "", DriveOp::AddBucketConfig { config: config.clone() }).await?;
                }
            }
        }
        let mut healed = 0;
        for set in self.sets() {
            for bucket in &buckets {
                healed += heal::heal_bucket(set, &bucket.name).await?;
            }
        }
        for drive in self.local_drives().iter().filter(|d| d.is_healing()) {
            drive.set_healing(false);
            let marker = drive.root().join(HEALING_MARKER);
            std::fs::remove_file(&marker).map_err(|e| StorageError::io(format!("remove {}", marker.display()), e))?;
        }
        tracing::info!(healed, "blank drives healed");
        Ok(())
    }
}

/// Reads or writes each drive's format and opens it. Blank drives joining an existing
/// deployment are marked for healing; a drive whose format file or metadata store does not open
/// (corrupt, unreadable, locked) stays offline until the next start, its
/// set serving from the others.
pub(crate) fn open_drives(roots: &[PathBuf], set_drives: usize, parity: usize, durable: bool) -> Result<OpenedDrives> {
    let found: Vec<Result<Option<DriveFormat>>> = roots.iter().map(|root| format::read(root)).collect();
    let readable: Vec<Option<DriveFormat>> = found.iter().map(|f| f.as_ref().ok().cloned().flatten()).collect();
    let deployment_id = format::reconcile(&readable, set_drives, parity)?;
    let existing = readable.iter().any(Option::is_some);
    let mut drives: Vec<Arc<dyn Drive>> = Vec::with_capacity(roots.len());
    let mut local = Vec::with_capacity(roots.len());
    for (index, (root, format)) in roots.iter().zip(found).enumerate() {
        let blank = || DriveFormat {
            version: format::FORMAT_VERSION,
            deployment_id,
            set: index / set_drives,
            drive: index % set_drives,
            parity,
        };
        let opened = format.and_then(|format| match format {
            Some(_) => Ok(()),
            None => format_blank(root, &blank(), existing),
        });
        match opened.and_then(|()| LocalDrive::open(root, durable)) {
            Ok(drive) => {
                drive.set_healing(root.join(HEALING_MARKER).exists());
                let drive = Arc::new(drive);
                drives.push(Arc::clone(&drive) as Arc<dyn Drive>);
                local.push(drive);
            }
            Err(e) if roots.len() > 1 => {
                tracing::error!(drive = %root.display(), error = %e, "drive cannot be opened; it stays offline until the next start");
                drives.push(Arc::new(OfflineDrive::new(root.display().to_string(), e.to_string())));
            }
            // A single drive that does not open leaves nothing to serve from.
            Err(e) => return Err(e),
        }
    }
    Ok((drives, local))
}

/// Formats a blank drive; one joining an existing deployment is marked for healing.
fn format_blank(root: &Path, format: &DriveFormat, existing: bool) -> Result<()> {
    if existing {
        std::fs::create_dir_all(root).map_err(|e| StorageError::io(format!("create {}", root.display()), e))?;
        let marker = root.join(HEALING_MARKER);
        std::fs::write(&marker, b"").map_err(|e| StorageError::io(format!("write {}", marker.display()), e))?;
        tracing::warn!(drive = %root.display(), "blank drive joins the set; it will be healed");
    }
    format::write(root, format)
}
