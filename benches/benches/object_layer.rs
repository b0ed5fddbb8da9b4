//! In-process PUT and GET of 4 KiB, 1 MiB and 64 MiB objects through `ObjectStore` on four
//! temporary drives (2+2), with fsync (the default) and without, no network involved.
//!
//! Run: `cargo bench -p sovereign-benches --bench object_layer -- --warm-up-time 1 --measurement-time 5`
//! (add `--profile release` to reuse the artifacts of `cargo build --release`).

use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use storage::put::BodyStream;
use storage::store::{ObjectMeta, ObjectStore, StoreConfig};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Drives of the store: one set at the default 2+2.
const DRIVES: usize = 4;

/// Object sizes measured.
const SIZES: [(&str, usize); 3] = [("4KiB", 4 << 10), ("1MiB", 1 << 20), ("64MiB", 64 << 20)];

/// Bytes per body chunk, about what an HTTP server hands over at a time.
const CHUNK_BYTES: usize = 64 << 10;

const BUCKET: &str = "bench";

/// A store on fresh temporary drives; the drives live as long as the returned `TempDir`.
fn open_store(runtime: &Runtime, durable: bool) -> (TempDir, std::sync::Arc<ObjectStore>) {
    let root = tempfile::tempdir().expect("temporary directory");
    let drives: Vec<PathBuf> = (1..=DRIVES).map(|n| root.path().join(format!("d{n}"))).collect();
    for drive in &drives {
        std::fs::create_dir(drive).expect("drive directory");
    }
    let store = runtime.block_on(async {
        let store =
            ObjectStore::open(StoreConfig { drives, durable, ..StoreConfig::default() }).await.expect("open store");
        store.create_bucket(BUCKET).await.expect("create bucket");
        store
    });
    (root, store)
}

/// The object as a stream of `CHUNK_BYTES` slices (no copies).
fn body(object: &Bytes) -> BodyStream {
    let chunks: Vec<storage::Result<Bytes>> = (0..object.len())
        .step_by(CHUNK_BYTES)
        .map(|at| Ok(object.slice(at..object.len().min(at + CHUNK_BYTES))))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn put(store: &ObjectStore, key: &str, object: &Bytes) {
    store
        .put_object(BUCKET, key, body(object), Some(object.len() as u64), ObjectMeta::default())
        .await
        .expect("put object");
}

/// Reads a whole object; returns its length.
async fn get(store: &ObjectStore, key: &str) -> usize {
    let handle = store.get_object(BUCKET, key).await.expect("get object");
    let mut stream = handle.read(None).await.expect("read object");
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        received += chunk.expect("object chunk").len();
    }
    received
}

fn object_layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    for (variant, durable) in [("fsync", true), ("no-fsync", false)] {
        let (_drives, store) = open_store(&runtime, durable);
        for (size_name, size) in SIZES {
            let object = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
            let key = format!("object-{size_name}");
            let mut group = c.benchmark_group(format!("object_layer/{size_name}"));
            group.throughput(Throughput::Bytes(size as u64));
            group.sample_size(10);
            group.bench_function(BenchmarkId::new("put", variant), |b| {
                b.iter(|| runtime.block_on(put(&store, &key, &object)))
            });
            runtime.block_on(put(&store, &key, &object));
            group.bench_function(BenchmarkId::new("get", variant), |b| {
                b.iter(|| assert_eq!(runtime.block_on(get(&store, &key)), size))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, object_layer);
criterion_main!(benches);
