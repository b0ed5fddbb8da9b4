//! Per-core throughput of erasure coding 1 MiB stripes (Reed-Solomon plus the xxh3-128 bitrot
//! hash of every frame) for 2+2, 4+2 and 8+4, next to memcpy, MD5 (the S3 ETag) and the two
//! stages of encoding measured alone.
//!
//! Run: `cargo bench -p sovereign-benches --bench erasure -- --warm-up-time 1 --measurement-time 3`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use md5::{Digest, Md5};
use reed_solomon_simd::ReedSolomonEncoder;
use storage::erasure::Erasure;
use xxhash_rust::xxh3::xxh3_128;

/// Bytes per stripe, the store's default block size.
const STRIPE_BYTES: usize = 1 << 20;

/// Data + parity shard counts measured.
const LAYOUTS: [(usize, usize); 3] = [(2, 2), (4, 2), (8, 4)];

/// Incompressible-looking stripe content (a xorshift sequence).
fn stripe() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..STRIPE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn layout_name(data: usize, parity: usize) -> String {
    format!("{data}+{parity}")
}

/// The yardsticks: memcpy into a ready buffer, MD5, and the encoding stages on their own.
fn reference(c: &mut Criterion) {
    let stripe = stripe();
    let mut group = c.benchmark_group("reference");
    group.throughput(Throughput::Bytes(STRIPE_BYTES as u64));
    let mut copy = vec![0u8; STRIPE_BYTES];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&stripe));
            black_box(&copy);
        })
    });
    group.bench_function("md5", |b| b.iter(|| Md5::digest(black_box(&stripe))));
    group.bench_function("xxh3-128", |b| b.iter(|| xxh3_128(black_box(&stripe))));
    let (data, parity) = (4, 2);
    let shard_len = STRIPE_BYTES / data;
    let mut encoder = ReedSolomonEncoder::new(data, parity, shard_len).expect("4+2 encoder");
    group.bench_function(format!("rs-encode-only/{}", layout_name(data, parity)), |b| {
        b.iter(|| {
            encoder.reset(data, parity, shard_len).expect("reset encoder");
            for shard in stripe.chunks(shard_len) {
                encoder.add_original_shard(shard).expect("add shard");
            }
            let result = encoder.encode().expect("encode");
            black_box(result.recovery_iter().count());
        })
    });
    group.finish();
}

/// `Erasure::encode_stripe`: split, parity, and a bitrot hash per frame.
fn encode(c: &mut Criterion) {
    let stripe = stripe();
    let mut group = c.benchmark_group("encode+hash");
    group.throughput(Throughput::Bytes(STRIPE_BYTES as u64));
    for (data, parity) in LAYOUTS {
        let erasure = Erasure::new(data, parity, STRIPE_BYTES).expect("supported layout");
        group.bench_function(BenchmarkId::from_parameter(layout_name(data, parity)), |b| {
            b.iter(|| erasure.encode_stripe(black_box(&stripe)).expect("encode"))
        });
    }
    group.finish();
}

/// `Erasure::decode_stripe` with every frame intact (hash checks and a copy) and with `parity`
/// data frames lost (reconstruction).
fn decode(c: &mut Criterion) {
    let stripe = stripe();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(STRIPE_BYTES as u64));
    for (data, parity) in LAYOUTS {
        let erasure = Erasure::new(data, parity, STRIPE_BYTES).expect("supported layout");
        let intact: Vec<Option<Bytes>> = erasure.encode_stripe(&stripe).expect("encode").into_iter().map(Some).collect();
        let mut degraded = intact.clone();
        for frame in degraded.iter_mut().take(parity) {
            *frame = None;
        }
        for (state, frames) in [("intact", &intact), ("lost-m", &degraded)] {
            let decoded = erasure.decode_stripe(frames, STRIPE_BYTES).expect("decode");
            assert_eq!(decoded.data, stripe, "{state} {data}+{parity} decodes to the stripe");
            group.bench_function(BenchmarkId::new(state, layout_name(data, parity)), |b| {
                b.iter(|| erasure.decode_stripe(black_box(frames), STRIPE_BYTES).expect("decode"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, reference, encode, decode);
criterion_main!(benches);
