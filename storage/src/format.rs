//! Drive formats: each drive records which deployment, set and position it belongs to, so a
//! reordered or foreign drive is refused and a wiped drive is recognised as needing healing.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StorageError};

/// Name of the format file in a drive's root.
pub const FORMAT_FILE: &str = "format.json";
/// Format of drives this release writes and reads: 2 keeps every version under its own key,
/// ordered by stamp (1, release 0.1, kept the null version under one key).
pub const FORMAT_VERSION: u32 = 2;

/// The identity written to the root of every drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveFormat {
    /// Format version of this record.
    pub version: u32,
    /// Shared by all drives of one deployment.
    pub deployment_id: Uuid,
    /// Erasure set this drive belongs to.
    pub set: usize,
    /// Position of the drive in its set.
    pub drive: usize,
    /// Parity shards of the set's layout; a restart with another parity is refused.
    pub parity: usize,
}

/// Reads a drive's format; `None` when the drive is blank.
pub fn read(root: &Path) -> Result<Option<DriveFormat>> {
    let path = root.join(FORMAT_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(format!("read {}", path.display()), e)),
    }
}

/// Writes a drive's format atomically and durably.
pub fn write(root: &Path, format: &DriveFormat) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| StorageError::io(format!("create {}", root.display()), e))?;
    let path = root.join(FORMAT_FILE);
    let staged = root.join(format!("{FORMAT_FILE}.new"));
    let body = serde_json::to_vec_pretty(format).map_err(|e| StorageError::Meta(format!("encode format: {e}")))?;
    let io = |e| StorageError::io(format!("write {}", path.display()), e);
    fs::write(&staged, body).map_err(io)?;
    fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(io)?;
    fs::rename(&staged, &path).map_err(io)?;
    fs::File::open(root).and_then(|d| d.sync_all()).map_err(io)
}

/// Decides the deployment id and checks each present format against its position.
///
/// `found[i]` is the format read from drive `i` (set = i / set_size, drive = i % set_size).
pub fn reconcile(found: &[Option<DriveFormat>], set_size: usize, parity: usize) -> Result<Uuid> {
    let mut deployment = None;
    for (index, format) in found.iter().enumerate() {
        let Some(format) = format else { continue };
        if format.version != FORMAT_VERSION {
            return Err(StorageError::Config(format!(
                "drive {index} has format {}, this release reads format {FORMAT_VERSION}: copy the objects \
                 into a deployment formatted by this release (docs/adr/0007-commit-protocol.md)",
                format.version
            )));
        }
        if format.parity != parity {
            return Err(StorageError::Config(format!(
                "drive {index} was formatted with parity {}; start with --parity {}",
                format.parity, format.parity
            )));
        }
        let expected = (index / set_size, index % set_size);
        if (format.set, format.drive) != expected {
            return Err(StorageError::Config(format!(
                "drive {index} is formatted as set {} drive {}, expected set {} drive {}: drives were reordered",
                format.set, format.drive, expected.0, expected.1
            )));
        }
        match deployment {
            None => deployment = Some(format.deployment_id),
            Some(id) if id != format.deployment_id => {
                return Err(StorageError::Config(format!(
                    "drive {index} belongs to deployment {}, not {id}",
                    format.deployment_id
                )));
            }
            Some(_) => {}
        }
    }
    Ok(deployment.unwrap_or_else(Uuid::new_v4))
}
