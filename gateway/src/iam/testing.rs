//! Fixtures of the IAM's unit tests: drives in a temporary directory, a local KMS, and IAMs
//! over them. Two gateways cannot open the same drives in one test (RocksDB locks them), so
//! two [`Iam`]s over one [`ObjectStore`] stand for two gateways: each has its own caches, and
//! they share only what the drives hold.

use std::sync::Arc;

use sovereign_kms_client::local::LocalKms;
use storage::ObjectStore;

use crate::iam::Iam;

/// The KMS key the fixtures seal secrets under.
const KMS_KEY: &str = "iam";

/// An object store over four drives in `dir`.
pub(crate) async fn object_store(dir: &tempfile::TempDir) -> Arc<ObjectStore> {
    let drives = (0..4).map(|i| dir.path().join(format!("d{i}"))).collect::<Vec<_>>();
    for drive in &drives {
        std::fs::create_dir_all(drive).unwrap();
    }
    ObjectStore::open(storage::StoreConfig { drives, durable: false, ..Default::default() }).await.unwrap()
}

/// Two gateways' IAMs over the same drives and KMS.
pub(crate) struct Gateways {
    /// The gateway most tests use.
    pub(crate) here: Arc<Iam>,
    /// Another gateway, with caches of its own.
    pub(crate) there: Arc<Iam>,
    _dir: tempfile::TempDir,
}

/// Two gateways over fresh drives.
pub(crate) async fn gateways() -> Gateways {
    let dir = tempfile::tempdir().unwrap();
    let store = object_store(&dir).await;
    let kms = Arc::new(LocalKms::open(&dir.path().join("master.key"), vec![KMS_KEY.to_owned()]).unwrap());
    let here = Iam::open(Arc::clone(&store), Arc::clone(&kms) as _, KMS_KEY, "ROOTKEY").await.unwrap();
    let there = Iam::open(store, kms, KMS_KEY, "ROOTKEY").await.unwrap();
    Gateways { here: Arc::new(here), there: Arc::new(there), _dir: dir }
}
