//! Per-core throughput of erasure coding 1 MiB stripes (Reed-Solomon plus the xxh3-128 bitrot
//! hash of every frame) for 2+2, 4+2 and 8+4, next to memcpy, MD5 (the S3 ETag), and the
//! hash and Reed-Solomon stages measured alone.
//!
//! Run: `cargo bench -p sovereign-benches --bench erasure -- --warm-up-time 1 --measurement-time 3`
//! (add `--profile release` to reuse the artifacts of `cargo build --release`).

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use md5::{Digest, Md5};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use storage::bitrot::FramePlace;
use storage::erasure::Erasure;
use xxhash_rust::xxh3::xxh3_128;

/// Bytes per stripe, the store's default block size.
const STRIPE_BYTES: usize = 1 << 20;
/// Where the benchmark's frames belong (any place will do; the seed costs the same).
const PLACE: FramePlace = FramePlace::inline(0);

/// A copy this large runs at memory speed rather than cache speed.
const OUT_OF_CACHE_BYTES: usize = 64 << 20;

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

/// The yardsticks: memcpy of the stripe (into a ready buffer and into a new one) and of 64 MiB
/// (beyond the caches), MD5, and xxh3-128 alone.
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
    group.bench_function("memcpy-to-new-buffer", |b| b.iter(|| black_box(&stripe).to_vec()));
    group.bench_function("md5", |b| b.iter(|| Md5::digest(black_box(&stripe))));
    group.bench_function("xxh3-128", |b| b.iter(|| xxh3_128(black_box(&stripe))));
    let big: Vec<u8> = stripe.iter().copied().cycle().take(OUT_OF_CACHE_BYTES).collect();
    let mut big_copy = vec![0u8; OUT_OF_CACHE_BYTES];
    group.throughput(Throughput::Bytes(OUT_OF_CACHE_BYTES as u64));
    group.bench_function("memcpy-64MiB-out-of-cache", |b| {
        b.iter(|| {
            big_copy.copy_from_slice(black_box(&big));
            black_box(&big_copy);
        })
    });
    group.finish();
}

/// Reed-Solomon alone at 4+2 (encoder and decoder reused, as the store does): parity of a
/// stripe, and the restoring of 2 lost data shards.
fn reed_solomon(c: &mut Criterion) {
    let stripe = stripe();
    let (data, parity) = (4, 2);
    let shard_len = STRIPE_BYTES / data;
    let shards: Vec<&[u8]> = stripe.chunks(shard_len).collect();
    let mut encoder = ReedSolomonEncoder::new(data, parity, shard_len).expect("4+2 encoder");
    let parity_of = |encoder: &mut ReedSolomonEncoder| -> Vec<Vec<u8>> {
        encoder.reset(data, parity, shard_len).expect("reset encoder");
        for shard in &shards {
            encoder.add_original_shard(shard).expect("add shard");
        }
        encoder.encode().expect("encode").recovery_iter().map(<[u8]>::to_vec).collect()
    };
    let recovery = parity_of(&mut encoder);
    let mut decoder = ReedSolomonDecoder::new(data, parity, shard_len).expect("4+2 decoder");
    let mut group = c.benchmark_group("reed-solomon-only");
    group.throughput(Throughput::Bytes(STRIPE_BYTES as u64));
    group.bench_function(BenchmarkId::new("encode", layout_name(data, parity)), |b| b.iter(|| parity_of(&mut encoder)));
    group.bench_function(BenchmarkId::new("decode-lost-m", layout_name(data, parity)), |b| {
        b.iter(|| {
            decoder.reset(data, parity, shard_len).expect("reset decoder");
            for (index, shard) in shards.iter().enumerate().skip(parity) {
                decoder.add_original_shard(index, shard).expect("add original");
            }
            for (index, shard) in recovery.iter().enumerate() {
                decoder.add_recovery_shard(index, shard).expect("add recovery");
            }
            black_box(decoder.decode().expect("decode").restored_original_iter().count())
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
            b.iter(|| erasure.encode_stripe(black_box(&stripe), PLACE).expect("encode"))
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
        let intact: Vec<Option<Bytes>> =
            erasure.encode_stripe(&stripe, PLACE).expect("encode").into_iter().map(Some).collect();
        let mut degraded = intact.clone();
        for frame in degraded.iter_mut().take(parity) {
            *frame = None;
        }
        for (state, frames) in [("intact", &intact), ("lost-m", &degraded)] {
            let decoded = erasure.decode_stripe(frames, STRIPE_BYTES, PLACE).expect("decode");
            assert_eq!(decoded.to_bytes(), stripe, "{state} {data}+{parity} decodes to the stripe");
            group.bench_function(BenchmarkId::new(state, layout_name(data, parity)), |b| {
                b.iter(|| erasure.decode_stripe(black_box(frames), STRIPE_BYTES, PLACE).expect("decode"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, reference, reed_solomon, encode, decode);
criterion_main!(benches);
