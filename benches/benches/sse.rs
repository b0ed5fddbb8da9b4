//! Per-core throughput of sealing and opening 64 KiB SSE packages (AES-256-GCM with the
//! package's nonce and associated data, ADR 0009) next to memcpy of the same bytes. The goal
//! in issue 17 is within 2x of memcpy with AES-NI.
//!
//! Run: `cargo bench --profile release --workspace --bench sse -- --warm-up-time 1 --measurement-time 3`

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gateway::sse::package::{Identity, PieceOpener, PieceSealer, PACKAGE_PLAIN_BYTES};

/// Packages per iteration: 1 MiB of plaintext.
const PACKAGES: usize = 16;
const DATA_KEY: [u8; 32] = [0x5a; 32];

fn identity() -> Identity {
    Identity::new("bench-bucket", "bench/key", 1, "", PACKAGE_PLAIN_BYTES)
}

fn bench(c: &mut Criterion) {
    let plain = vec![0xa5u8; PACKAGE_PLAIN_BYTES as usize];
    let mut group = c.benchmark_group("sse-1MiB");
    group.throughput(Throughput::Bytes((PACKAGES * plain.len()) as u64));
    group.bench_function("memcpy", |b| {
        let mut out = vec![0u8; plain.len()];
        b.iter(|| {
            for _ in 0..PACKAGES {
                out.copy_from_slice(black_box(&plain));
            }
            black_box(&out);
        })
    });
    group.bench_function("seal", |b| {
        b.iter(|| {
            let (mut sealer, _header) = PieceSealer::new(&DATA_KEY, identity()).expect("sealer");
            for i in 0..PACKAGES {
                black_box(sealer.seal(black_box(&plain), i + 1 == PACKAGES).expect("seal"));
            }
        })
    });
    let (mut sealer, header) = PieceSealer::new(&DATA_KEY, identity()).expect("sealer");
    let sealed: Vec<_> = (0..PACKAGES).map(|i| sealer.seal(&plain, i + 1 == PACKAGES).expect("seal")).collect();
    group.bench_function("open", |b| {
        b.iter(|| {
            let opener = PieceOpener::new(&DATA_KEY, identity(), &header).expect("opener");
            for (i, package) in sealed.iter().enumerate() {
                let buffer = BytesMut::from(&package[..]);
                black_box(opener.open(i as u64, i + 1 == PACKAGES, buffer).expect("open"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
