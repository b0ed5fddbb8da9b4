//! Key management for sovereign-s3's server-side encryption: the [`Kms`] interface that
//! generates and unwraps per-object data keys, with two providers: [`local::LocalKms`] (a master
//! key file, the embedded default) and [`openbao::OpenBao`] (OpenBao's transit engine), and a
//! bounded cache of unsealed data keys ([`cache::CachedKms`]).
#![forbid(unsafe_code)]

mod breaker;
pub mod cache;
mod error;
mod key;
pub mod local;
pub mod openbao;

use async_trait::async_trait;

pub use error::KmsError;
pub use key::{sealing_version, DataKey, PlainKey, DATA_KEY_BYTES};

/// Result of a KMS operation.
pub type Result<T, E = KmsError> = std::result::Result<T, E>;

/// A key management service that seals data keys under named master keys. A sealed key is an
/// opaque string that only the same service can unseal (OpenBao: `vault:vN:...`).
#[async_trait]
pub trait Kms: Send + Sync + std::fmt::Debug {
    /// A fresh random data key and the same key sealed under `key_id`.
    async fn generate_data_key(&self, key_id: &str) -> Result<DataKey>;

    /// Unseals a data key sealed under `key_id`.
    async fn decrypt(&self, key_id: &str, sealed: &str) -> Result<PlainKey>;

    /// Seals a sealed data key again under the latest version of `key_id` (after a rotation).
    async fn rewrap(&self, key_id: &str, sealed: &str) -> Result<String>;

    /// Whether the service can serve requests now (reachable, unsealed, authenticated).
    async fn health(&self) -> Result<()>;

    /// Which provider this is, for logs and metrics.
    fn provider(&self) -> &'static str;
}
