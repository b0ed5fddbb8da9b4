//! What a run does: the operation mix, the keys it touches, the prepare phase, and the closed
//! and open request loops.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::RunConfig;
use crate::report::{Machine, Recorder, RunResult};
use crate::request::{Failure, Operation, S3Client};

/// Keys a LIST request asks for.
const LIST_MAX_KEYS: u32 = 100;

/// One kind of S3 request the load is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Put,
    Get,
    Head,
    List,
    Delete,
}

impl OpKind {
    const ALL: [OpKind; 5] = [OpKind::Put, OpKind::Get, OpKind::Head, OpKind::List, OpKind::Delete];

    /// The lowercase name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Head => "head",
            OpKind::List => "list",
            OpKind::Delete => "delete",
        }
    }

    /// Whether this operation needs objects uploaded before the run.
    fn reads_prepared_objects(self) -> bool {
        matches!(self, OpKind::Get | OpKind::Head | OpKind::List)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

/// The operations of a run with their relative weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(OpKind, u32)>,
}

impl Mix {
    /// Parses `get` (one operation) or `get=60,put=20,head=10,list=5,delete=5` (weights).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights: Vec<(OpKind, u32)> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let weight =
                        weight.trim().parse().map_err(|_| format!("weight in {part:?} is not a whole number"))?;
                    (name.trim(), weight)
                }
                None => (part, 1),
            };
            let kind = OpKind::ALL
                .into_iter()
                .find(|kind| kind.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("unknown operation {name:?} (use put, get, head, list, delete or mixed)"))?;
            if weight == 0 {
                return Err(format!("operation {name} has weight 0: leave it out instead"));
            }
            if weights.iter().any(|(seen, _)| *seen == kind) {
                return Err(format!("operation {name} is given twice"));
            }
            weights.push((kind, weight));
        }
        Ok(Self { weights })
    }

    /// `get` for a single operation, `mixed` otherwise: what run names are made of.
    pub fn label(&self) -> &'static str {
        match self.weights.as_slice() {
            [(kind, _)] => kind.name(),
            _ => "mixed",
        }
    }

    /// The mix as `parse` reads it.
    pub fn describe(&self) -> String {
        match self.weights.as_slice() {
            [(kind, _)] => kind.name().to_owned(),
            _ => self
                .weights
                .iter()
                .map(|(kind, weight)| format!("{}={weight}", kind.name()))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The operations of the mix, in the order given.
    pub fn kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.weights.iter().map(|(kind, _)| *kind)
    }

    fn total_weight(&self) -> u32 {
        self.weights.iter().map(|(_, weight)| weight).sum()
    }

    /// The operation that a roll in `0..total_weight()` falls on.
    fn pick(&self, mut roll: u32) -> OpKind {
        for (kind, weight) in &self.weights {
            if roll < *weight {
                return *kind;
            }
            roll -= weight;
        }
        // Only reached for a roll beyond the total; the last operation absorbs it.
        self.weights.last().map_or(OpKind::Get, |(kind, _)| *kind)
    }

    /// Draws an operation with the mix's probabilities.
    pub fn choose(&self, rng: &mut impl Rng) -> OpKind {
        self.pick(rng.gen_range(0..self.total_weight()))
    }
}

/// Key names: `read/N` objects are uploaded once and read; `write/N` are overwritten by PUT and
/// removed by DELETE, cycling over the same `objects` names so disk use stays bounded.
struct Keys {
    base: String,
    objects: u64,
    next_put: AtomicU64,
    next_delete: AtomicU64,
}

impl Keys {
    fn new(prefix: &str, size: u64, objects: u64) -> Self {
        let base = format!("{prefix}{}/", crate::units::format_size(size));
        Self { base, objects, next_put: AtomicU64::new(0), next_delete: AtomicU64::new(0) }
    }

    fn read_prefix(&self) -> String {
        format!("{}read/", self.base)
    }

    fn read(&self, index: u64) -> String {
        format!("{}read/{index:08}", self.base)
    }

    fn write(&self, index: u64) -> String {
        format!("{}write/{:08}", self.base, index % self.objects)
    }

    /// The next write key in the cycle that `counter` walks.
    fn next_write(&self, counter: &AtomicU64) -> String {
        self.write(counter.fetch_add(1, Ordering::Relaxed))
    }
}

/// Everything the request loops share.
struct Target {
    client: S3Client,
    keys: Keys,
    payload: Bytes,
    mix: Mix,
}

impl Target {
    /// Draws the next operation of the mix and the request that carries it out.
    fn next(&self, rng: &mut impl Rng) -> (OpKind, Operation) {
        let kind = self.mix.choose(rng);
        let operation = match kind {
            OpKind::Put => {
                Operation::Put { key: self.keys.next_write(&self.keys.next_put), body: self.payload.clone() }
            }
            OpKind::Get => Operation::Get { key: self.keys.read(rng.gen_range(0..self.keys.objects)) },
            OpKind::Head => Operation::Head { key: self.keys.read(rng.gen_range(0..self.keys.objects)) },
            OpKind::List => Operation::List {
                prefix: self.keys.read_prefix(),
                max_keys: LIST_MAX_KEYS,
                delimiter: None,
                token: None,
            },
            OpKind::Delete => Operation::Delete { key: self.keys.next_write(&self.keys.next_delete) },
        };
        (kind, operation)
    }
}

/// When measuring starts (the warmup is over) and when sending stops.
#[derive(Debug, Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

/// Runs the whole benchmark: prepare, warmup, measured load; returns the result.
pub async fn run(config: &RunConfig) -> anyhow::Result<RunResult> {
    let client = S3Client::new(
        &config.endpoint,
        &config.bucket,
        (&config.access_key, &config.secret_key),
        &config.region,
        config.timeout,
        config.concurrency,
    )?;
    let target = Arc::new(Target {
        client,
        keys: Keys::new(&config.prefix, config.size, config.objects),
        payload: random_payload(config.size)?,
        mix: config.mix.clone(),
    });
    let prepare_started = Instant::now();
    let uploaded = prepare(&target, config.concurrency).await?;
    eprintln!("prepared bucket {} and {uploaded} objects in {:.1?}", config.bucket, prepare_started.elapsed());

    let recorder = Arc::new(Mutex::new(Recorder::new(config.mix.kinds())?));
    let started_at = crate::report::now_rfc3339();
    let start = Instant::now();
    let window = Window { measure_from: start + config.warmup, end: start + config.warmup + config.duration };
    match config.rate {
        Some(rate) => {
            eprintln!(
                "open loop at {rate} req/s (at most {} in flight): warmup {:?}, measuring {:?}",
                config.concurrency, config.warmup, config.duration
            );
            open_loop(&target, start, window, rate, config.concurrency, &recorder).await?;
        }
        None => {
            eprintln!(
                "closed loop, {} workers: warmup {:?}, measuring {:?}",
                config.concurrency, config.warmup, config.duration
            );
            closed_loop(&target, window, config.concurrency, &recorder).await?;
        }
    }
    let elapsed = window.measure_from.elapsed();
    let recorder = lock(&recorder);
    for (what, example) in recorder.first_failures() {
        eprintln!("first {what} error: {example}");
    }
    RunResult::new(config, started_at, Machine::detect(), elapsed, &recorder)
}

/// Incompressible object content, generated once and shared by every PUT.
fn random_payload(size: u64) -> anyhow::Result<Bytes> {
    let size = usize::try_from(size).context("object size does not fit in memory")?;
    let mut payload = vec![0u8; size];
    StdRng::from_entropy().fill_bytes(&mut payload);
    Ok(payload.into())
}

/// Creates the bucket (an existing one is fine) and uploads the objects the mix reads or
/// deletes; returns how many were uploaded.
async fn prepare(target: &Arc<Target>, concurrency: usize) -> anyhow::Result<usize> {
    match target.client.send(&Operation::CreateBucket).await {
        Ok(_) | Err(Failure::Status { status: 409, .. }) => {}
        Err(failure) => bail!("creating the bucket failed: {failure}"),
    }
    let mut keys = Vec::new();
    if target.mix.kinds().any(OpKind::reads_prepared_objects) {
        keys.extend((0..target.keys.objects).map(|index| target.keys.read(index)));
    }
    if target.mix.kinds().any(|kind| kind == OpKind::Delete) {
        keys.extend((0..target.keys.objects).map(|index| target.keys.write(index)));
    }
    let count = keys.len();
    let keys = Arc::new(Mutex::new(keys));
    let mut uploaders = JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let (target, keys) = (Arc::clone(target), Arc::clone(&keys));
        uploaders.spawn(async move {
            loop {
                let Some(key) = lock(&keys).pop() else {
                    return Ok(());
                };
                let put = Operation::Put { key: key.clone(), body: target.payload.clone() };
                if let Err(failure) = target.client.send(&put).await {
                    bail!("uploading {key} failed: {failure}");
                }
            }
        });
    }
    join_all(uploaders, "prepare").await?;
    Ok(count)
}

/// `concurrency` workers, each sending its next request as soon as the previous one is done.
async fn closed_loop(
    target: &Arc<Target>,
    window: Window,
    concurrency: usize,
    recorder: &Arc<Mutex<Recorder>>,
) -> anyhow::Result<()> {
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (target, recorder) = (Arc::clone(target), Arc::clone(recorder));
        workers.spawn(async move {
            let mut rng = StdRng::from_entropy();
            loop {
                let started = Instant::now();
                if started >= window.end {
                    return Ok(());
                }
                let (kind, operation) = target.next(&mut rng);
                let outcome = target.client.send(&operation).await;
                if started >= window.measure_from {
                    lock(&recorder).record(kind, started.elapsed(), &outcome);
                }
            }
        });
    }
    join_all(workers, "closed loop").await
}

/// Requests sent on a fixed schedule of `rate` per second from `start`, whatever the replies do.
///
/// Latency is measured from the scheduled send time, so time spent waiting for a free in-flight
/// slot counts. Scheduled requests still unsent when the window closes count as `unsent` errors.
async fn open_loop(
    target: &Arc<Target>,
    start: Instant,
    window: Window,
    rate: f64,
    max_in_flight: usize,
    recorder: &Arc<Mutex<Recorder>>,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut requests = JoinSet::new();
    let mut rng = StdRng::from_entropy();
    let mut scheduled = 0u64;
    loop {
        let intended = start + Duration::from_secs_f64(scheduled as f64 / rate);
        if intended >= window.end {
            break;
        }
        tokio::time::sleep_until(intended.into()).await;
        let Ok(slot) = tokio::time::timeout_at(window.end.into(), Arc::clone(&slots).acquire_owned()).await else {
            record_unsent(target, start, window, rate, scheduled, &mut rng, recorder);
            break;
        };
        let slot = slot.context("the in-flight limiter was closed")?;
        let (kind, operation) = target.next(&mut rng);
        let (target, recorder) = (Arc::clone(target), Arc::clone(recorder));
        requests.spawn(async move {
            let outcome = target.client.send(&operation).await;
            drop(slot);
            if intended >= window.measure_from {
                lock(&recorder).record(kind, intended.elapsed(), &outcome);
            }
            Ok(())
        });
        while let Some(done) = requests.try_join_next() {
            done.context("an open-loop request task failed")??;
        }
        scheduled += 1;
    }
    join_all(requests, "open loop").await
}

/// Counts the requests from `first` on that the schedule held inside the measured window.
fn record_unsent(
    target: &Target,
    start: Instant,
    window: Window,
    rate: f64,
    first: u64,
    rng: &mut impl Rng,
    recorder: &Mutex<Recorder>,
) {
    let mut recorder = lock(recorder);
    for index in first.. {
        let intended = start + Duration::from_secs_f64(index as f64 / rate);
        if intended >= window.end {
            break;
        }
        if intended >= window.measure_from {
            recorder.record(target.mix.choose(rng), window.end - intended, &Err(Failure::NotSent));
        }
    }
}

async fn join_all(mut tasks: JoinSet<anyhow::Result<()>>, what: &str) -> anyhow::Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.with_context(|| format!("a {what} task failed"))??;
    }
    Ok(())
}

/// Locks a mutex that only ever guards plain counters, so a panicked holder left nothing half
/// done that matters.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_operations_and_weighted_mixes_parse() {
        let get = Mix::parse("get").unwrap();
        assert_eq!(get.label(), "get");
        assert_eq!(get.describe(), "get");
        let mix = Mix::parse("GET=3, put=1").unwrap();
        assert_eq!(mix.label(), "mixed");
        assert_eq!(mix.describe(), "get=3,put=1");
        assert_eq!(mix.kinds().collect::<Vec<_>>(), vec![OpKind::Get, OpKind::Put]);
    }

    #[test]
    fn bad_mixes_are_refused() {
        assert!(Mix::parse("copy").is_err());
        assert!(Mix::parse("get=0").is_err());
        assert!(Mix::parse("get=1,get=2").is_err());
        assert!(Mix::parse("get=x").is_err());
        assert!(Mix::parse("").is_err());
    }

    #[test]
    fn rolls_fall_on_operations_by_weight() {
        let mix = Mix::parse("get=3,put=1").unwrap();
        assert_eq!(mix.total_weight(), 4);
        let picks: Vec<OpKind> = (0..4).map(|roll| mix.pick(roll)).collect();
        assert_eq!(picks, vec![OpKind::Get, OpKind::Get, OpKind::Get, OpKind::Put]);
        let mut rng = StdRng::seed_from_u64(7);
        let puts = (0..4000).filter(|_| mix.choose(&mut rng) == OpKind::Put).count();
        assert!((800..1200).contains(&puts), "{puts} puts of 4000");
    }

    #[test]
    fn writes_cycle_over_a_bounded_set_of_keys() {
        let keys = Keys::new("s3-load/", 4096, 3);
        assert_eq!(keys.read(2), "s3-load/4KiB/read/00000002");
        assert_eq!(keys.read_prefix(), "s3-load/4KiB/read/");
        let written: Vec<String> = (0..4).map(|_| keys.next_write(&keys.next_put)).collect();
        assert_eq!(written[0], "s3-load/4KiB/write/00000000");
        assert_eq!(written[3], written[0]);
        assert_eq!(keys.next_write(&keys.next_delete), keys.write(0));
    }
}
