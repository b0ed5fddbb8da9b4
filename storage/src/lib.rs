//! The erasure-coded object layer of sovereign-s3.
//!
//! Objects are placed on one erasure set of drives by the hash of their name, cut into stripes,
//! Reed-Solomon coded into shards sealed with a bitrot hash, and committed by writing a version
//! record to a quorum of the set's drives. The gateway only talks to [`store::ObjectStore`];
//! drives are reached through the [`drive::Drive`] trait so that remote drives can join later.

pub mod acl;
pub mod bitrot;
pub mod bucket_config;
pub mod buckets;
pub mod cleanup;
pub mod commit;
pub mod drive;
pub mod erasure;
pub mod error;
pub mod format;
pub mod get;
pub mod heal;
pub mod list;
pub mod local;
pub mod meta;
pub mod metrics;
pub mod multipart;
pub mod offline;
pub mod placement;
pub mod put;
pub mod quorum;
pub mod set;
pub mod stamp;
mod startup;
pub mod store;
pub mod upload_list;
pub mod versions;

pub use error::{Result, StorageError};
pub use store::{ObjectMeta, ObjectStore, StoreConfig};
