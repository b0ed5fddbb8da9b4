//! Errors of the key management service, by what the caller should do about them.

use std::time::Duration;

/// A failed KMS operation. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The named master key does not exist (or was destroyed).
    #[error("KMS key {0:?} not found")]
    KeyNotFound(String),
    /// The KMS refused the gateway's credentials or policy.
    #[error("KMS access denied: {0}")]
    AccessDenied(String),
    /// The sealed data key is not a valid ciphertext of the named master key.
    #[error("sealed data key is not valid for KMS key {key:?}: {reason}")]
    InvalidCiphertext {
        /// The master key named.
        key: String,
        /// What the KMS said.
        reason: String,
    },
    /// The KMS cannot be reached, is sealed, or failed; retrying later may succeed.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// The KMS did not answer within the time allowed.
    #[error("KMS did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider is misconfigured (bad address, unreadable key file, bad credentials file).
    #[error("KMS configuration: {0}")]
    Config(String),
    /// The KMS answered something this client does not understand.
    #[error("unexpected KMS answer: {0}")]
    Protocol(String),
}

impl KmsError {
    /// Whether another attempt may succeed (the service is down or slow, not refusing).
    pub fn is_transient(&self) -> bool {
        matches!(self, KmsError::Unavailable(_) | KmsError::Timeout(_))
    }
}
