//! Admission control at the front door: how many connections and requests are served at once,
//! how long a connection, a request body or a response may stall, and how the accept loop
//! backs off when the process runs out of file descriptors.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::config::ServerArgs;

/// File descriptors kept out of the connection budget whatever the drives: logs, the listener,
/// the audit log, the runtime's own descriptors.
const FD_RESERVE_BASE_COUNT: u64 = 64;
/// File descriptors kept out of the connection budget per drive: its RocksDB files (SST, WAL,
/// manifest, logs) and the shard files of requests in flight.
const FD_RESERVE_PER_DRIVE_COUNT: u64 = 32;
/// The default connection cap never exceeds this, however high the descriptor limit.
const DEFAULT_MAX_CONNECTIONS_CEILING: u64 = 4096;
/// The default connection cap never goes below this, however low the descriptor limit (a
/// warning then says to raise it).
const DEFAULT_MAX_CONNECTIONS_FLOOR: u64 = 16;

/// First pause after an accept failed for lack of resources.
const ACCEPT_BACKOFF_INITIAL: Duration = Duration::from_millis(10);
/// Longest pause between two accepts while they keep failing.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A repeated warning (accept failures, connection cap reached) is logged at most this often.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Words in the error of a request body that stalled; `error.rs` recognises the failure by
/// them once s3s and the object layer have turned it into text.
pub const BODY_IDLE_TIMEOUT_TEXT: &str = "request body idle timeout";

/// The admission limits, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; the accept loop waits for one to close past it.
    pub max_connections: usize,
    /// S3 requests served at once; past it, requests are answered `503 SlowDown`.
    pub max_requests_in_flight: usize,
    /// Time for the TLS handshake and the first request's headers, and for each later request
    /// head on an HTTP/1.1 connection (counted from the end of the previous response).
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in progress once it served one.
    pub idle_timeout: Duration,
    /// Time a request body may deliver no bytes while the server waits for them, and a client
    /// may take no bytes of a response while the server has some to send.
    pub body_idle_timeout: Duration,
}

impl Limits {
    /// The limits from the settings, the connection cap derived from the soft limit on open
    /// files when not given. Warns when the cap leaves too few descriptors for the drives.
    pub fn from_args(args: &ServerArgs, drives: usize) -> Self {
        let open_files = open_files_soft_limit();
        let budget = open_files.map(|limit| connection_budget(limit, drives));
        let max_connections = match args.max_connections {
            Some(cap) => {
                if let (Some(limit), Some(budget)) = (open_files, budget) {
                    if cap > budget {
                        tracing::warn!(
                            max_connections = cap,
                            open_files_limit = limit,
                            reserve = limit - budget,
                            "the connection cap leaves too few file descriptors for the drives; \
                             raise the open-file limit (ulimit -n) or lower --max-connections"
                        );
                    }
                }
                cap
            }
            None => default_max_connections(budget, open_files),
        };
        Self {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            max_requests_in_flight: usize::try_from(args.max_requests_in_flight).unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            body_idle_timeout: Duration::from_secs(args.body_timeout_secs),
        }
    }
}

/// The soft `RLIMIT_NOFILE`, or `None` when unlimited.
fn open_files_soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Descriptors left for connections under `open_files` once the reserve for `drives` is taken.
fn connection_budget(open_files: u64, drives: usize) -> u64 {
    let reserve = FD_RESERVE_BASE_COUNT + FD_RESERVE_PER_DRIVE_COUNT * drives as u64;
    open_files.saturating_sub(reserve)
}

/// The default connection cap: the budget, between the floor and the ceiling.
fn default_max_connections(budget: Option<u64>, open_files: Option<u64>) -> u64 {
    let Some(budget) = budget else { return DEFAULT_MAX_CONNECTIONS_CEILING };
    if budget < DEFAULT_MAX_CONNECTIONS_FLOOR {
        tracing::warn!(
            open_files_limit = open_files,
            max_connections = DEFAULT_MAX_CONNECTIONS_FLOOR,
            "the open-file limit is too low for the drives and a useful number of connections; raise it (ulimit -n)"
        );
    }
    budget.clamp(DEFAULT_MAX_CONNECTIONS_FLOOR, DEFAULT_MAX_CONNECTIONS_CEILING)
}

/// Lets a repeated warning through at most once per interval, counting the ones held back.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// A throttle letting one event through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: None, held_back: 0 }
    }

    /// `Some(events held back since the last one let through)` when this event may be logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.duration_since(last) < self.interval) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// The pause of the accept loop after failures: 10 ms, doubling to 1 s, reset by a success.
/// Failures are logged through a [`Throttle`], not one line each.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    warnings: Throttle,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self { delay: ACCEPT_BACKOFF_INITIAL, warnings: Throttle::new(WARNING_INTERVAL) }
    }
}

impl AcceptBackoff {
    /// After a failed accept: logs it unless throttled, and returns how long to pause (zero for
    /// a failure that concerned only the connection being accepted).
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        if concerns_one_connection(error) {
            tracing::debug!(%error, "accept failed for one connection");
            return Duration::ZERO;
        }
        let delay = self.next_delay();
        if let Some(held_back) = self.warnings.allow(Instant::now()) {
            tracing::warn!(
                %error,
                pause_ms = delay.as_millis() as u64,
                failures_not_logged = held_back,
                "accept failed; pausing the accept loop (out of file descriptors or memory?)"
            );
        }
        delay
    }

    /// After a successful accept: the next failure pauses briefly again.
    pub fn succeeded(&mut self) {
        self.delay = ACCEPT_BACKOFF_INITIAL;
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
        delay
    }
}

/// True for accept errors about the one connection being accepted (it was reset or aborted
/// while queued): the next accept may succeed at once. Anything else (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM, ...) will fail again until resources are freed, so the loop pauses.
fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// The cap on S3 requests served at once.
#[derive(Debug, Clone)]
pub struct RequestLimit {
    permits: Arc<Semaphore>,
}

impl RequestLimit {
    /// A cap of `max` requests.
    pub fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max)) }
    }

    /// A permit for one more request, or `None` when `max` are being served.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }
}

/// What one connection is doing: how many requests are in progress and whether it has started
/// any yet. The connection's watchdog ([`ConnectionActivity::idle`]) reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Activity {
    in_progress: usize,
    started: u64,
}

/// The activity of one connection, shared by its service (which counts requests) and its
/// watchdog.
#[derive(Debug, Clone)]
pub struct ConnectionActivity {
    state: Arc<watch::Sender<Activity>>,
}

impl Default for ConnectionActivity {
    fn default() -> Self {
        Self { state: Arc::new(watch::Sender::new(Activity::default())) }
    }
}

/// A request in progress on a connection; dropping it ends the request (also when the client
/// cancelled it and the request's future was dropped).
#[derive(Debug)]
pub struct InProgress {
    state: Arc<watch::Sender<Activity>>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.state.send_modify(|a| a.in_progress = a.in_progress.saturating_sub(1));
    }
}

impl ConnectionActivity {
    /// Counts a request as in progress until the returned guard is dropped.
    pub fn begin(&self) -> InProgress {
        self.state.send_modify(|a| {
            a.in_progress += 1;
            a.started += 1;
        });
        InProgress { state: Arc::clone(&self.state) }
    }

    /// Completes once the connection has had no request in progress for `first` (before its
    /// first request) or `later` (after it).
    pub async fn idle(&self, first: Duration, later: Duration) {
        let mut watcher = self.state.subscribe();
        loop {
            let quiet = match watcher.wait_for(|a| a.in_progress == 0).await {
                Ok(activity) => activity.started,
                Err(_) => return,
            };
            let limit = if quiet == 0 { first } else { later };
            tokio::select! {
                () = tokio::time::sleep(limit) => return,
                changed = watcher.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A response body that keeps its request counted as in progress on the connection until it
/// has been sent (or dropped), so that a long download is not taken for an idle connection.
pub struct InProgressBody<B> {
    inner: B,
    _request: InProgress,
}

impl<B> InProgressBody<B> {
    /// Ties `request` to the lifetime of `inner`.
    pub fn new(inner: B, request: InProgress) -> Self {
        Self { inner, _request: request }
    }
}

impl<B: HttpBody + Unpin> HttpBody for InProgressBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error of a request body wrapped by [`IdleTimeoutBody`].
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client sent no body bytes for the whole timeout while the server waited for them.
    #[error("{BODY_IDLE_TIMEOUT_TEXT}: no bytes received for {} s", .0.as_secs())]
    Idle(Duration),
    /// The connection failed (reset, malformed chunked encoding, ...).
    #[error(transparent)]
    Connection(#[from] hyper::Error),
}

/// A request body that fails with [`BodyError::Idle`] once its reader has waited `timeout` for
/// the next bytes. The clock runs only while the reader waits: it starts when a read finds no
/// bytes and stops when bytes arrive, so a handler busy between two reads (its writes to the
/// drives slowed, so the client is held back by flow control) does not use up the client's
/// time. Readers read the body in a loop (`.next().await`), never giving up on a read and
/// coming back later, which this relies on.
pub struct IdleTimeoutBody<B> {
    inner: B,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    /// Wraps `inner` with a body-idle `timeout`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self { inner, timeout, waiting: None }
    }
}

impl<B> HttpBody for IdleTimeoutBody<B>
where
    B: HttpBody + Unpin,
    BodyError: From<B::Error>,
{
    type Data = B::Data;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        let timeout = this.timeout;
        let waiting = this.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.waiting = None;
                Poll::Ready(Some(Err(BodyError::Idle(timeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket whose writes fail with `TimedOut` once the client has taken no bytes
/// for `timeout` while the server had bytes to send: a client that stopped reading its
/// response. The clock starts when a write finds the socket's buffer full and stops when a
/// write makes progress, so a response the server is slow to produce is not affected.
pub struct SendStallTimeout<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> SendStallTimeout<T> {
    /// Wraps `inner` with a send-stall `timeout`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        Self { inner, timeout, stalled: None }
    }

    /// Passes on a write's result, arming the stall clock when the write could not proceed and
    /// failing it once the clock has run out.
    fn watch<R>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if let Poll::Ready(result) = result {
            self.stalled = None;
            return Poll::Ready(result);
        }
        let timeout = self.timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                let message = format!("the client read nothing for {} s", timeout.as_secs());
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendStallTimeout<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendStallTimeout<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn the_default_cap_leaves_a_reserve_and_stays_within_bounds() {
        assert_eq!(connection_budget(1024, 4), 1024 - 64 - 4 * 32);
        assert_eq!(default_max_connections(Some(connection_budget(1024, 4)), Some(1024)), 832);
        assert_eq!(default_max_connections(Some(connection_budget(1 << 20, 16)), Some(1 << 20)), 4096);
        assert_eq!(default_max_connections(Some(connection_budget(100, 4)), Some(100)), 16);
        assert_eq!(default_max_connections(None, None), 4096);
    }

    #[test]
    fn the_accept_pause_doubles_to_a_second_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<u128> = (0..9).map(|_| backoff.failed(&emfile).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile), ACCEPT_BACKOFF_INITIAL);
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&reset), Duration::ZERO);
    }

    #[test]
    fn the_throttle_lets_one_warning_through_per_interval() {
        let mut throttle = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        for second in 1..=59 {
            assert_eq!(throttle.allow(start + Duration::from_secs(second)), None);
        }
        assert_eq!(throttle.allow(start + Duration::from_secs(60)), Some(59));
    }

    /// A body that delivers one chunk, then nothing, ever.
    fn stalled_after_one_chunk() -> impl HttpBody<Data = Bytes, Error = hyper::Error> + Unpin {
        let chunk = futures::stream::iter([Ok::<_, hyper::Error>(Frame::data(Bytes::from_static(b"x")))]);
        http_body_util::StreamBody::new(futures::StreamExt::chain(chunk, futures::stream::pending()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        let timeout = Duration::from_secs(30);
        let mut body = IdleTimeoutBody::new(stalled_after_one_chunk(), timeout);
        let first = body.frame().await.and_then(|f| f.ok()).and_then(|f| f.into_data().ok());
        assert_eq!(first.as_deref(), Some(&b"x"[..]));
        let started = tokio::time::Instant::now();
        let error = body.frame().await.and_then(|f| f.err()).map(|e| e.to_string());
        assert_eq!(started.elapsed(), timeout);
        assert!(error.is_some_and(|e| e.contains(BODY_IDLE_TIMEOUT_TEXT)));
    }

    #[tokio::test(start_paused = true)]
    async fn only_time_spent_waiting_counts() {
        let timeout = Duration::from_secs(30);
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, hyper::Error>>();
        let mut body = IdleTimeoutBody::new(http_body_util::StreamBody::new(rx), timeout);
        let send = |delay_secs: u64, chunk: &'static [u8]| {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(delay_secs)).await;
                tx.unbounded_send(Ok(Frame::data(Bytes::from_static(chunk)))).is_ok()
            })
        };
        let data = |frame: Option<Result<Frame<Bytes>, BodyError>>| frame.and_then(|f| f.ok()?.into_data().ok());
        let first = send(20, b"1");
        assert_eq!(data(body.frame().await).as_deref(), Some(&b"1"[..]), "20 s of waiting is within the limit");
        assert!(first.await.unwrap_or(false));
        // The handler is busy for a minute without reading; then the client needs 20 s more.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let second = send(20, b"2");
        assert_eq!(data(body.frame().await).as_deref(), Some(&b"2"[..]), "the busy minute is not counted");
        assert!(second.await.unwrap_or(false));
        let started = tokio::time::Instant::now();
        assert!(body.frame().await.is_some_and(|f| matches!(f, Err(BodyError::Idle(_)))));
        assert_eq!(started.elapsed(), timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_fails_once_the_client_has_read_nothing_for_the_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let timeout = Duration::from_secs(30);
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = SendStallTimeout::new(server, timeout);
        server.write_all(&[0; 1024]).await.expect("fits the buffer");
        // The client reads a little after 20 s: the stall clock starts again.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let mut taken = [0; 512];
            client.read_exact(&mut taken).await.map(|_| client)
        });
        server.write_all(&[0; 512]).await.expect("the client made room within the timeout");
        let _client = reader.await.expect("reader task").expect("read");
        let started = tokio::time::Instant::now();
        let error = server.write_all(&[0; 1]).await.expect_err("the client reads nothing more");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_in_progress() {
        let activity = ConnectionActivity::default();
        let (first, later) = (Duration::from_secs(1), Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        activity.idle(first, later).await;
        assert_eq!(started.elapsed(), first, "before any request, the first limit applies");

        let request = activity.begin();
        let idle = activity.idle(first, later);
        tokio::pin!(idle);
        assert!(tokio::time::timeout(Duration::from_secs(30), idle.as_mut()).await.is_err());
        drop(request);
        let ended = tokio::time::Instant::now();
        idle.await;
        assert_eq!(ended.elapsed(), later, "after a request, the later limit applies");
    }
}
