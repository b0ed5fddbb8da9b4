//! IAM identities of the cluster: users, groups, service accounts and named policies, kept in
//! the system bucket ([`store`]) so that every gateway over the same drives shares them, with
//! their secrets sealed by the KMS ([`secrets`]). [`Iam`] resolves an access key to its secret
//! and [`Principal`](crate::principal::Principal) for authentication ([`resolve`]), and offers
//! the operations the admin API calls ([`users`], [`groups`], [`service_accounts`],
//! [`policies`]), keeping references between entities from dangling ([`references`]). Every
//! cache it keeps is an [`expiring::ExpiringMap`]: bounded, and swept after its TTL.

pub mod entities;
pub mod expiring;
pub mod groups;
pub mod names;
pub mod policies;
pub mod references;
pub mod resolve;
pub mod secrets;
pub mod service_accounts;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod users;

use std::sync::Arc;

use sovereign_kms_client::Kms;
use storage::ObjectStore;

use crate::iam::resolve::Resolver;
use crate::iam::store::DocumentStore;

/// Why an IAM operation failed; the admin API maps each to its JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// The entity does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// An entity of that name exists already (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// The change contradicts the state of other entities (409): a policy still attached, a
    /// group with members, a built-in policy.
    #[error("{message}")]
    Conflict {
        /// The error code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The caller may not make this change (403): an owner re-enabling a service account that
    /// an administrator disabled.
    #[error("{0}")]
    Denied(String),
    /// The request is invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// A policy document does not parse (400), with where.
    #[error("{0}")]
    MalformedPolicy(policy::MalformedPolicy),
    /// Concurrent updates kept winning over this one (503).
    #[error("{0}")]
    Busy(String),
    /// The KMS could not seal or open a secret (503).
    #[error("key management: {0}")]
    Kms(String),
    /// The drives could not be read or written (503).
    #[error("storage: {0}")]
    Storage(String),
    /// Anything else on this side (500).
    #[error("{0}")]
    Internal(String),
}

/// The IAM of the cluster.
#[derive(Debug)]
pub struct Iam {
    docs: DocumentStore,
    kms: Arc<dyn Kms>,
    kms_key_id: String,
    root_access_key: String,
    resolver: Resolver,
}

impl Iam {
    /// The IAM kept in `store`, sealing secrets under `kms_key_id` of `kms`. `root_access_key`
    /// is reserved: no user or service account may take it.
    pub async fn open(
        store: Arc<ObjectStore>,
        kms: Arc<dyn Kms>,
        kms_key_id: &str,
        root_access_key: &str,
    ) -> Result<Self, IamError> {
        Ok(Self {
            docs: DocumentStore::open(store).await?,
            kms,
            kms_key_id: kms_key_id.to_owned(),
            root_access_key: root_access_key.to_owned(),
            resolver: Resolver::new(),
        })
    }

    /// The entity documents.
    pub fn documents(&self) -> &DocumentStore {
        &self.docs
    }

    /// Forgets every cached read and resolved credential: the next lookups read the drives
    /// (what a change made through another gateway looks like once the TTL has passed).
    pub fn forget_cached(&self) {
        self.docs.forget_cached();
        self.resolver.forget();
    }

    /// Forgets resolved credentials after a change through this process, so it applies to the
    /// very next request.
    fn changed(&self) {
        self.resolver.forget();
    }
}

/// The current time in Unix seconds.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
