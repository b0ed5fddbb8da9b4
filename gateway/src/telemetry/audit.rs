//! The audit log: one JSON line per request, written by a background thread to a file that is
//! rotated by size. Requests never wait on it; when it falls behind, entries are dropped and
//! counted.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Serialize;

/// Entries queued for the writer before new ones are dropped.
const QUEUE_CAPACITY: usize = 8192;
/// Rotated files kept besides the current one (`audit.log.1` ... `.N`).
const KEEP_ROTATED: usize = 5;

/// One audited request.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// RFC 3339 time the request arrived.
    pub time: String,
    /// The `x-amz-request-id` returned to the client.
    pub request_id: String,
    /// Access key of the caller, when authenticated.
    pub principal: Option<String>,
    /// Client address.
    pub source_ip: String,
    /// S3 operation, when routed.
    pub api: Option<String>,
    /// Bucket addressed.
    pub bucket: Option<String>,
    /// Key addressed.
    pub key: Option<String>,
    /// Version addressed (versioning arrives later; always absent today).
    pub version_id: Option<String>,
    /// HTTP status.
    pub status: u16,
    /// S3 error code of a failed request.
    pub error_code: Option<String>,
    /// Request body bytes (as declared).
    pub bytes_in: u64,
    /// Response body bytes (as declared).
    pub bytes_out: u64,
    /// Time to response headers, milliseconds.
    pub duration_ms: f64,
}

/// Handle to the audit writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: SyncSender<AuditEntry>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (appending) `path` and starts the writer thread; rotates past `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let file = open_append(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let writer = Writer { path: path.to_owned(), out: BufWriter::new(file), written, max_bytes };
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| format!("start audit writer: {e}"))?;
        Ok(Self { tx, dropped: Arc::default() })
    }

    /// Queues an entry; never blocks.
    pub fn record(&self, entry: AuditEntry) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(entry) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "audit log is behind; entries dropped");
            }
        }
    }
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("open {}: {e}", path.display()))
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    max_bytes: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<AuditEntry>) {
        while let Ok(entry) = rx.recv() {
            self.write(&entry);
            while let Ok(entry) = rx.try_recv() {
                self.write(&entry);
            }
            if let Err(e) = self.out.flush() {
                tracing::warn!(error = %e, "audit log flush failed");
            }
        }
    }

    fn write(&mut self, entry: &AuditEntry) {
        let Ok(mut line) = serde_json::to_vec(entry) else { return };
        line.push(b'\n');
        if self.written + line.len() as u64 > self.max_bytes && self.written > 0 {
            if let Err(e) = self.rotate() {
                tracing::warn!(error = %e, "audit log rotation failed");
            }
        }
        match self.out.write_all(&line) {
            Ok(()) => self.written += line.len() as u64,
            Err(e) => tracing::warn!(error = %e, "audit log write failed"),
        }
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| e.to_string())?;
        let name = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = fs::remove_file(name(KEEP_ROTATED));
        for n in (1..KEEP_ROTATED).rev() {
            let _ = fs::rename(name(n), name(n + 1));
        }
        fs::rename(&self.path, name(1)).map_err(|e| e.to_string())?;
        self.out = BufWriter::new(open_append(&self.path)?);
        self.written = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> AuditEntry {
        AuditEntry {
            time: "2026-11-23T00:00:00Z".into(),
            request_id: format!("req-{n}"),
            principal: Some("admin".into()),
            source_ip: "127.0.0.1".into(),
            api: Some("GetObject".into()),
            bucket: Some("b".into()),
            key: Some("k".into()),
            version_id: None,
            status: 200,
            error_code: None,
            bytes_in: 0,
            bytes_out: 5,
            duration_ms: 0.5,
        }
    }

    fn wait_for(path: &Path, lines: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn entries_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        log.record(entry(1));
        log.record(entry(2));
        let text = wait_for(&path, 2);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["request_id"], "req-1");
        assert_eq!(first["api"], "GetObject");
        assert_eq!(first["status"], 200);
    }

    #[test]
    fn files_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 600).unwrap();
        for n in 0..20 {
            log.record(entry(n));
        }
        let rotated = PathBuf::from(format!("{}.1", path.display()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(rotated.exists() && wait_for(&path, 1).contains("req-19")) {
            assert!(std::time::Instant::now() < deadline, "no rotation");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(fs::metadata(&path).unwrap().len() <= 600);
    }
}
