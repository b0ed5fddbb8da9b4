//! The one place where object-layer errors become S3 errors.

use s3s::{s3_error, S3Error, S3ErrorCode};
use sovereign_kms_client::KmsError;
use storage::StorageError;

use crate::admission::BODY_IDLE_TIMEOUT_TEXT;

/// How s3s names a body whose SHA-256 differs from the signed `x-amz-content-sha256`.
const PAYLOAD_HASH_MISMATCH: &str = "UploadStreamError: Sha256Mismatch";
/// How s3s names an `aws-chunked` chunk whose signature is wrong.
const CHUNK_SIGNATURE_MISMATCH: &str = "AwsChunkedStreamError: SignatureMismatch";

/// The S3 error for a request body that failed while streaming. s3s verifies signed payloads
/// as they stream and fails the body with errors whose types are private to it; their text is
/// what tells them apart.
fn body_error(message: &str) -> S3Error {
    if message.contains(PAYLOAD_HASH_MISMATCH) {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(hyper::StatusCode::BAD_REQUEST);
        return e;
    }
    if message.contains(BODY_IDLE_TIMEOUT_TEXT) {
        return s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."
        );
    }
    if message.contains(CHUNK_SIGNATURE_MISMATCH) {
        return s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        );
    }
    s3_error!(IncompleteBody, "The request body could not be read: {message}")
}

/// Maps an object-layer error to the S3 error AWS would send.
pub fn to_s3(e: StorageError) -> S3Error {
    match e {
        StorageError::NoSuchBucket(bucket) => s3_error!(NoSuchBucket, "The specified bucket does not exist: {bucket}"),
        StorageError::BucketExists(_) => {
            s3_error!(BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.")
        }
        StorageError::BucketNotEmpty(_) => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty."),
        StorageError::NoSuchKey { .. } => s3_error!(NoSuchKey, "The specified key does not exist."),
        StorageError::NoSuchVersion { .. } => s3_error!(NoSuchVersion, "The specified version does not exist."),
        StorageError::DeleteMarker { version_id, requested: false } => with_marker_headers(
            s3_error!(NoSuchKey, "The specified key does not exist."),
            &version_id,
        ),
        StorageError::DeleteMarker { version_id, requested: true } => with_marker_headers(
            s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."),
            &version_id,
        ),
        StorageError::InvalidVersionId(_) => s3_error!(InvalidArgument, "Invalid version id specified"),
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
        StorageError::Body(message) => body_error(&message),
        StorageError::EntityTooLarge { .. } => {
            s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
        }
        StorageError::InvalidKey(_) => s3_error!(InvalidArgument, "Object key contains a character that is not allowed (NUL)."),
        StorageError::PreconditionFailed => {
            s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
        }
        StorageError::ConditionalConflict => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("ConditionalRequestConflict".into()),
                "A conflicting conditional operation is currently in progress against this resource. Please try again.",
            );
            e.set_status_code(hyper::StatusCode::CONFLICT);
            e
        }
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

/// Marks an answer about a delete marker as AWS does: `x-amz-delete-marker: true` and the
/// marker's `x-amz-version-id`.
fn with_marker_headers(mut e: S3Error, version_id: &str) -> S3Error {
    let mut headers = hyper::HeaderMap::new();
    headers.insert("x-amz-delete-marker", hyper::header::HeaderValue::from_static("true"));
    if let Ok(value) = hyper::header::HeaderValue::from_str(version_id) {
        headers.insert("x-amz-version-id", value);
    }
    e.set_headers(headers);
    e
}

/// An S3 error with a code s3s does not name, such as AWS's `KMS.*` codes.
fn custom(code: &str, status: hyper::StatusCode, message: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.to_owned().into()), message.to_owned());
    e.set_status_code(status);
    e
}

/// Maps a key management failure to the `KMS.*` error S3 sends when KMS fails it: a missing key
/// or a bad sealed key is the client's 400, an unreachable, sealed or slow KMS a retryable 5xx.
pub fn kms_to_s3(e: KmsError) -> S3Error {
    use hyper::StatusCode;
    match e {
        KmsError::KeyNotFound(key) => {
            custom("KMS.NotFoundException", StatusCode::BAD_REQUEST, &format!("Invalid keyId '{key}'"))
        }
        KmsError::InvalidCiphertext { .. } => {
            tracing::warn!(error = %e, "sealed data key rejected by the KMS");
            custom(
                "KMS.InvalidCiphertextException",
                StatusCode::BAD_REQUEST,
                "The object's data key cannot be decrypted with its KMS key.",
            )
        }
        KmsError::AccessDenied(_) => {
            tracing::error!(error = %e, "KMS refused the gateway");
            custom(
                "KMS.AccessDeniedException",
                StatusCode::FORBIDDEN,
                "The gateway is not allowed to use this KMS key.",
            )
        }
        KmsError::Timeout(_) => {
            tracing::error!(error = %e, "KMS request failed");
            custom(
                "KMS.DependencyTimeoutException",
                StatusCode::SERVICE_UNAVAILABLE,
                "The key management service did not answer in time. Please try again.",
            )
        }
        KmsError::Unavailable(_) | KmsError::Config(_) | KmsError::Protocol(_) => {
            tracing::error!(error = %e, "KMS request failed");
            custom(
                "KMS.KMSInternalException",
                StatusCode::SERVICE_UNAVAILABLE,
                "The key management service is unavailable. Please try again.",
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_failures_map_to_the_errors_aws_sends() {
        let code = |message: &str| body_error(message).code().as_str().to_owned();
        assert_eq!(code("UploadStreamError: Sha256Mismatch"), "XAmzContentSHA256Mismatch");
        assert_eq!(code("AwsChunkedStreamError: SignatureMismatch"), "SignatureDoesNotMatch");
        assert_eq!(code("connection reset"), "IncompleteBody");
        assert_eq!(code("AwsChunkedStreamError: Underlying: request body idle timeout: no bytes"), "RequestTimeout");
    }
}
