//! Errors of the object layer. The gateway maps each variant to one S3 error in one place.

use std::io;

/// Result alias for the object layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong in the object layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The bucket does not exist.
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    /// A bucket with this name already exists.
    #[error("bucket {0:?} already exists")]
    BucketExists(String),
    /// The bucket still holds objects or uploads.
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// No current version of the object exists.
    #[error("object {bucket}/{key} does not exist")]
    NoSuchKey {
        /// Bucket of the object.
        bucket: String,
        /// Key of the object.
        key: String,
    },
    /// The version named does not exist.
    #[error("version {version_id} of {key} does not exist")]
    NoSuchVersion {
        /// Key of the object.
        key: String,
        /// The version id asked for.
        version_id: String,
    },
    /// The version read is a delete marker: the current one (the object reads as deleted) or
    /// the one named by its id (which has no data to return).
    #[error("version {version_id} is a delete marker")]
    DeleteMarker {
        /// The marker's version id.
        version_id: String,
        /// Whether the request named the marker by its id.
        requested: bool,
    },
    /// A version id this store cannot have given out.
    #[error("invalid version id {0:?}")]
    InvalidVersionId(String),
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("upload {0} does not exist")]
    NoSuchUpload(String),
    /// A part named in CompleteMultipartUpload is missing or its ETag differs.
    #[error("part {0} is missing or its ETag does not match")]
    InvalidPart(i32),
    /// Parts in CompleteMultipartUpload are not in ascending order.
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error("part {part} is {size} bytes, below the minimum part size")]
    EntityTooSmall {
        /// Part number.
        part: i32,
        /// Size of that part in bytes.
        size: u64,
    },
    /// The request body ended before the declared length, or carried more.
    #[error("body length {got} does not match the declared {expected}")]
    IncompleteBody {
        /// Declared length.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// A body of undeclared length (chunked) went past the largest size allowed.
    #[error("the body is larger than the {max} bytes allowed")]
    EntityTooLarge {
        /// The largest size allowed, in bytes.
        max: u64,
    },
    /// The request body stream failed (client went away, bad chunk signature, bad checksum).
    #[error("request body: {0}")]
    Body(String),
    /// Too few drives answered to meet the read or write quorum.
    #[error("{op}: {online} drives answered, quorum needs {needed}")]
    QuorumLost {
        /// The operation that failed.
        op: &'static str,
        /// Drives that are needed.
        needed: usize,
        /// Drives that answered.
        online: usize,
    },
    /// Stored data failed its integrity check.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A drive operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A drive could not be opened at start-up.
    #[error("drive {drive} is offline: {reason}")]
    DriveOffline {
        /// The drive's label.
        drive: String,
        /// Why it could not be opened.
        reason: String,
    },
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(String),
    /// The configuration given at start-up is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An object key the store cannot hold (it contains NUL).
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// A conditional write's condition did not hold (If-Match, If-None-Match).
    #[error("precondition failed")]
    PreconditionFailed,
    /// A conditional write raced another write of the key and neither could be ordered first.
    #[error("conditional write conflicts with a concurrent write")]
    ConditionalConflict,
}

impl StorageError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }

    /// True when the error reports the absence of a record rather than a drive fault.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::NoSuchKey { .. }
                | Self::NoSuchVersion { .. }
                | Self::DeleteMarker { .. }
                | Self::NoSuchBucket(_)
                | Self::NoSuchUpload(_)
        )
    }
}

impl From<rocksdb::Error> for StorageError {
    fn from(e: rocksdb::Error) -> Self {
        Self::Meta(e.into_string())
    }
}

impl From<rmp_serde::encode::Error> for StorageError {
    fn from(e: rmp_serde::encode::Error) -> Self {
        Self::Meta(format!("encode record: {e}"))
    }
}

impl From<rmp_serde::decode::Error> for StorageError {
    fn from(e: rmp_serde::decode::Error) -> Self {
        Self::Corrupt(format!("decode record: {e}"))
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::io("blocking task", io::Error::other(e))
    }
}
