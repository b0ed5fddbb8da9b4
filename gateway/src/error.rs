//! The one place where object-layer errors become S3 errors.

use s3s::{s3_error, S3Error};
use storage::StorageError;

/// Maps an object-layer error to the S3 error AWS would send.
pub fn to_s3(e: StorageError) -> S3Error {
    match e {
        StorageError::NoSuchBucket(bucket) => s3_error!(NoSuchBucket, "The specified bucket does not exist: {bucket}"),
        StorageError::BucketExists(_) => {
            s3_error!(BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.")
        }
        StorageError::BucketNotEmpty(_) => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty."),
        StorageError::NoSuchKey { .. } => s3_error!(NoSuchKey, "The specified key does not exist."),
        StorageError::NoSuchUpload(_) => s3_error!(
            NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        StorageError::InvalidPart(number) => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found (part {number}). The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        ),
        StorageError::InvalidPartOrder => {
            s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number.")
        }
        StorageError::EntityTooSmall { .. } => {
            s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size.")
        }
        StorageError::IncompleteBody { .. } => {
            s3_error!(IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
        }
        StorageError::Body(message) => s3_error!(IncompleteBody, "The request body could not be read: {message}"),
        e @ StorageError::QuorumLost { .. } => {
            tracing::warn!(error = %e, "quorum lost");
            s3_error!(e, ServiceUnavailable, "Not enough drives are online to serve the request; reduce your request rate or retry.")
        }
        e => {
            tracing::error!(error = %e, "internal error");
            s3_error!(e, InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// `?`-friendly conversion for handlers.
pub trait OrS3<T> {
    /// Converts the error side with [`to_s3`].
    fn or_s3(self) -> Result<T, S3Error>;
}

impl<T> OrS3<T> for Result<T, StorageError> {
    fn or_s3(self) -> Result<T, S3Error> {
        self.map_err(to_s3)
    }
}
