//! `s3-load scan`: listing a large bucket. Uploads `--keys` tiny objects once (spread over
//! `--dirs` directories; a marker object records that the layout is complete, so later runs
//! reuse it), then measures ListObjectsV2: the latency of the first page, and a full scan
//! page by page (keys per second), each without and with the `/` delimiter. Every scan checks
//! that it saw exactly the keys (or directories) uploaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::request::{Failure, Operation, S3Client};

/// Keys per ListObjectsV2 page (the S3 maximum).
const PAGE_KEYS: u32 = 1000;
/// Tries of one upload of the layout.
const UPLOAD_ATTEMPTS: u32 = 5;
/// Where the layout lives in the bucket.
const SCAN_PREFIX: &str = "scan/";

/// Flags of `s3-load scan`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// S3 endpoint (plain HTTP, path-style requests).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key: String,
    /// Secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to fill (created if absent) and list.
    #[arg(long, default_value = "s3-load-scan")]
    pub bucket: String,
    /// Objects in the bucket.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Directories the keys are spread over (`scan/DIR/KEY`).
    #[arg(long, default_value_t = 1000)]
    pub dirs: u64,
    /// Uploads in flight while filling the bucket.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// First pages requested to measure their latency.
    #[arg(long, default_value_t = 200)]
    pub first_pages: u32,
    /// Time limit of one request.
    #[arg(long, default_value = "120s", value_parser = crate::units::parse_duration)]
    pub timeout: Duration,
    /// What was measured, e.g. `sovereign-s3`.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// What a scan measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScanResult {
    pub label: String,
    pub keys: u64,
    pub dirs: u64,
    /// Seconds the upload of the layout took, when this run made it.
    pub prepare_s: Option<f64>,
    /// Latency of the first page of 1,000 keys (µs).
    pub first_page_us: Percentiles,
    /// A full listing, page by page.
    pub full_scan: Scan,
    /// Latency of the first page with the `/` delimiter (1,000 common prefixes, each one a
    /// directory of keys to skip) (µs).
    pub first_page_delimited_us: Percentiles,
    /// A full listing with the `/` delimiter.
    pub delimited_scan: Scan,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub entries: u64,
    pub pages: u64,
    pub seconds: f64,
    pub entries_per_s: f64,
}

/// Runs `s3-load scan`.
pub async fn run(args: &ScanArgs) -> anyhow::Result<ScanResult> {
    ensure!(args.keys > 0 && args.dirs > 0 && args.dirs <= args.keys, "--dirs must be between 1 and --keys");
    let client = Arc::new(S3Client::new(
        &args.endpoint,
        &args.bucket,
        (&args.access_key, &args.secret_key),
        &args.region,
        args.timeout,
        args.concurrency,
    )?);
    let prepare_s = prepare(&client, args).await?;
    let list = |delimiter: Option<&str>| Operation::List {
        prefix: SCAN_PREFIX.into(),
        max_keys: PAGE_KEYS,
        delimiter: delimiter.map(str::to_owned),
        token: None,
    };
    let first_page_us = first_pages(&client, &list(None), args.first_pages).await?;
    let full_scan = scan(&client, list(None), args.keys).await?;
    let first_page_delimited_us = first_pages(&client, &list(Some("/")), args.first_pages).await?;
    let delimited_scan = scan(&client, list(Some("/")), args.dirs).await?;
    Ok(ScanResult {
        label: args.label.clone(),
        keys: args.keys,
        dirs: args.dirs,
        prepare_s,
        first_page_us,
        full_scan,
        first_page_delimited_us,
        delimited_scan,
    })
}

/// The text report of a scan.
pub fn table(result: &ScanResult) -> String {
    let scan = |s: &Scan| {
        format!("{} entries in {} pages, {:.2} s, {:.0} entries/s", s.entries, s.pages, s.seconds, s.entries_per_s)
    };
    let pages = |p: &Percentiles| format!("P50 {:.2} ms, P99 {:.2} ms", p.p50 as f64 / 1e3, p.p99 as f64 / 1e3);
    format!(
        "{}: {} keys in {} directories\n  first page:             {}\n  full scan:              {}\n  first page, delimited:  {}\n  full scan, delimited:   {}\n",
        result.label,
        result.keys,
        result.dirs,
        pages(&result.first_page_us),
        scan(&result.full_scan),
        pages(&result.first_page_delimited_us),
        scan(&result.delimited_scan),
    )
}

fn key(index: u64, dirs: u64) -> String {
    format!("{SCAN_PREFIX}{:06}/{index:010}", index % dirs)
}

/// The object whose presence says the layout of `args` is complete.
fn ready_marker(args: &ScanArgs) -> String {
    format!("scan-ready/{}-{}", args.keys, args.dirs)
}

/// Uploads the layout unless its marker says it is there; returns the seconds it took.
async fn prepare(client: &Arc<S3Client>, args: &ScanArgs) -> anyhow::Result<Option<f64>> {
    match client.send(&Operation::CreateBucket).await {
        Ok(_) | Err(Failure::Status { status: 409, .. }) => {}
        Err(failure) => bail!("creating the bucket failed: {failure}"),
    }
    if client.send(&Operation::Head { key: ready_marker(args) }).await.is_ok() {
        eprintln!("{} keys already in bucket {}", args.keys, args.bucket);
        return Ok(None);
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let mut uploaders = JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, next, retried) = (Arc::clone(client), Arc::clone(&next), Arc::clone(&retried));
        let (keys, dirs) = (args.keys, args.dirs);
        uploaders.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= keys {
                    return anyhow::Ok(());
                }
                let put = Operation::Put { key: key(index, dirs), body: Bytes::from_static(b"x") };
                upload(&client, &put, &retried).await?;
                if index % 100_000 == 99_999 {
                    eprintln!("uploaded {} keys", index + 1);
                }
            }
        });
    }
    while let Some(done) = uploaders.join_next().await {
        done.context("an upload task failed")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    client
        .send(&Operation::Put { key: ready_marker(args), body: Bytes::from_static(b"ready") })
        .await
        .map_err(|failure| anyhow::anyhow!("writing the layout marker failed: {failure}"))?;
    eprintln!(
        "uploaded {} keys in {seconds:.1} s ({:.0} PUT/s, {} retried after a 5xx or a broken connection)",
        args.keys,
        args.keys as f64 / seconds,
        retried.load(Ordering::Relaxed)
    );
    Ok(Some(seconds))
}

/// Uploads one object of the layout, retrying server errors and broken connections a few
/// times (SeaweedFS's filer answers 500 now and then while directories are created
/// concurrently); counts the retries in `retried`.
async fn upload(client: &S3Client, put: &Operation, retried: &AtomicU64) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(10);
    for _ in 1..UPLOAD_ATTEMPTS {
        match client.send(put).await {
            Ok(_) => return Ok(()),
            Err(Failure::Status { status, .. }) if status < 500 => break,
            Err(_) => {
                retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    match client.send(put).await {
        Ok(_) => Ok(()),
        Err(failure) => bail!("uploading {put:?} failed: {failure}"),
    }
}

/// Latency of `count` requests of the first page, one at a time.
async fn first_pages(client: &S3Client, list: &Operation, count: u32) -> anyhow::Result<Percentiles> {
    let mut latency = Histogram::<u64>::new(3).context("creating a histogram")?;
    for _ in 0..count.max(1) {
        let started = Instant::now();
        let page = client.list_page(list).await.map_err(|failure| anyhow::anyhow!("listing failed: {failure}"))?;
        ensure!(page.entries > 0, "the first page listed nothing");
        latency.record(started.elapsed().as_micros() as u64).context("recording a latency")?;
    }
    Ok(Percentiles { p50: latency.value_at_quantile(0.5), p99: latency.value_at_quantile(0.99) })
}

/// Lists everything page by page and checks the count.
async fn scan(client: &S3Client, mut list: Operation, expected: u64) -> anyhow::Result<Scan> {
    let started = Instant::now();
    let (mut entries, mut pages) = (0, 0);
    loop {
        let page = client.list_page(&list).await.map_err(|failure| anyhow::anyhow!("listing failed: {failure}"))?;
        entries += page.entries;
        pages += 1;
        let Some(next) = page.next_token else { break };
        if let Operation::List { token, .. } = &mut list {
            *token = Some(next);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(entries == expected, "the scan listed {entries} entries where {expected} were uploaded");
    Ok(Scan { entries, pages, seconds, entries_per_s: entries as f64 / seconds.max(f64::MIN_POSITIVE) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_directories_in_listing_order() {
        assert_eq!(key(1001, 1000), "scan/000001/0000001001");
        assert!(key(9, 1000) < key(10, 1000));
    }
}
