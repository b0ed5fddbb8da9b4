//! The HTTP front end: health and metrics endpoints, and the S3 service wrapped with request
//! ids, metrics and the audit log. Every S3 request goes through [`Frontend::call`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use s3s::service::S3Service;
use s3s::{s3_error, Body, HttpError};
use storage::ObjectStore;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::access::RequestContext;
use crate::admission::{ConnectionActivity, IdleTimeoutBody, InProgressBody, RequestLimit};
use crate::authz::conditions::ClientConnection;
use crate::cors::Cors;
use crate::error_body;
use crate::post_object::{self, PostObjects};
use crate::request_checks;
use crate::sse;
use crate::sts::auth::Authenticator;
use crate::sts::{endpoint as sts_endpoint, Sts};
use crate::telemetry::audit::{AuditEntry, AuditLog};
use crate::telemetry::logging;
use crate::telemetry::metrics::{self, METRICS};

/// Liveness: the process serves HTTP.
pub const LIVE_PATH: &str = "/health/live";
/// Readiness: every erasure set can reach its write quorum.
pub const READY_PATH: &str = "/health/ready";
/// Prometheus scrape endpoint.
pub const METRICS_PATH: &str = "/metrics";
/// The `Server` header of S3 responses.
const SERVER_NAME: &str = "sovereign-s3";
/// The status recorded (metrics, audit log) for a request whose client went away before the
/// response was ready; nginx's "client closed request". No client ever receives it.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Shared state of the front end.
#[derive(Debug)]
pub struct FrontendState {
    /// The S3 service.
    pub s3: S3Service,
    /// The store, for health and metrics.
    pub store: Arc<ObjectStore>,
    /// Audit log, when enabled.
    pub audit: Option<AuditLog>,
    /// Bearer token required on /metrics, when set.
    pub metrics_token: Option<String>,
    /// Names this server process in `x-amz-id-2` and error bodies.
    pub host_id: String,
    /// The cap on S3 requests in flight.
    pub requests: RequestLimit,
    /// How long a request body may deliver no bytes while the server waits for them.
    pub body_idle_timeout: Duration,
    /// Applies buckets' CORS rules.
    pub cors: Cors,
    /// AssumeRoleWithWebIdentity, when STS is on.
    pub sts: Option<Arc<Sts>>,
    /// Root and session credentials: checks the session token of session-signed requests.
    pub auth: Authenticator,
    /// POST Object form uploads, which bypass s3s (it would hold the file in memory).
    pub post: PostObjects,
}

/// The front end as seen by one connection.
#[derive(Debug, Clone)]
pub struct Frontend {
    state: Arc<FrontendState>,
    peer: SocketAddr,
    activity: ConnectionActivity,
    /// Whether the connection is TLS: SSE-C keys are refused on any other.
    secure: bool,
}

impl Frontend {
    /// The front end for a connection from `peer`, counting its requests in `activity`;
    /// `secure` when the connection is TLS.
    pub fn new(state: Arc<FrontendState>, peer: SocketAddr, activity: ConnectionActivity, secure: bool) -> Self {
        Self { state, peer, activity, secure }
    }

    /// The connection's requests in progress, which its idle watchdog reads.
    pub fn activity(&self) -> &ConnectionActivity {
        &self.activity
    }
}

impl hyper::service::Service<Request<Incoming>> for Frontend {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        // Until the response body has been sent, the connection is not idle.
        let in_progress = self.activity.begin();
        Box::pin(async move {
            // A signed request to these paths is S3 (a bucket named `health` or `metrics`).
            let readable = matches!(*req.method(), Method::GET | Method::HEAD) && !signed_for_s3(&req);
            // AssumeRoleWithWebIdentity is unsigned: a signed request is S3 whatever its shape (a
            // virtual-host `POST /?delete` sent with a form content type).
            let sts_request = !signed_for_s3(&req) && sts_endpoint::is_sts_request(&req);
            if let Some(sts) = this.state.sts.clone().filter(|_| sts_request) {
                let response = this.sts(&sts, req).await;
                return Ok(response.map(|body| Body::http_body(InProgressBody::new(body, in_progress))));
            }
            let response = match req.uri().path() {
                LIVE_PATH if readable => Ok(text(StatusCode::OK, "live")),
                READY_PATH if readable => Ok(this.ready().await),
                METRICS_PATH if readable && req.uri().query().is_none() => Ok(this.metrics(&req).await),
                _ => this.s3(req).await,
            };
            response.map(|r| r.map(|body| Body::http_body(InProgressBody::new(body, in_progress))))
        })
    }
}

/// True when the request carries a SigV4 signature, in its header or as a presigned URL.
fn signed_for_s3<B>(req: &Request<B>) -> bool {
    let header = req.headers().get(AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"));
    header || req.uri().query().is_some_and(|q| q.contains("X-Amz-Signature="))
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response
}

fn declared_length(headers: &hyper::HeaderMap) -> u64 {
    let header = headers.get("x-amz-decoded-content-length").or_else(|| headers.get(CONTENT_LENGTH));
    header.and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The `<Code>` of an S3 error body.
fn error_code(body: &[u8]) -> Option<String> {
    error_body::element(std::str::from_utf8(body).ok()?, "Code").map(str::to_owned)
}

/// Sets a header whose value is known to be valid (ids and fixed strings).
fn set_header(headers: &mut hyper::HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

impl Frontend {
    async fn ready(&self) -> Response<Body> {
        let sets = self.state.store.health().await;
        if sets.iter().all(|s| s.online >= s.write_quorum) {
            text(StatusCode::OK, "ready")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "write quorum not reachable")
        }
    }

    async fn metrics(&self, req: &Request<Incoming>) -> Response<Body> {
        if let Some(token) = &self.state.metrics_token {
            let expected = format!("Bearer {token}");
            let sent = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|sent| same_secret(sent.as_bytes(), expected.as_bytes())) {
                return text(StatusCode::UNAUTHORIZED, "bearer token required");
            }
        }
        if let Some(metrics) = METRICS.as_ref() {
            metrics.refresh(&self.state.store).await;
        }
        let (content_type, body) = metrics::encode();
        let mut response = Response::new(Body::from(body));
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    }

    /// An STS request: under the cap on requests in flight, with a request id.
    async fn sts(&self, sts: &Sts, req: Request<Incoming>) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut response = match self.state.requests.try_admit() {
            Some(_permit) => {
                let body_idle_timeout = self.state.body_idle_timeout;
                let req = req.map(|body| IdleTimeoutBody::new(body, body_idle_timeout));
                sts_endpoint::handle(sts, req, &request_id).await
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "too many requests in flight"),
        };
        set_header(response.headers_mut(), "x-amzn-requestid", &request_id);
        response
    }

    async fn s3(&self, mut req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
        let context = RequestContext::default();
        req.extensions_mut().insert(context.clone());
        req.extensions_mut().insert(ClientConnection { peer: self.peer, secure: self.secure });
        let mut record = RequestRecord::begin(self, &req, context);
        let head = req.method() == Method::HEAD;
        let method = req.method().clone();
        let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body_idle_timeout = self.state.body_idle_timeout;
        let mut req = req.map(|body| Body::http_body(IdleTimeoutBody::new(body, body_idle_timeout)));
        request_checks::normalise(req.headers_mut());
        let result = match self.state.requests.try_admit() {
            Some(permit) => {
                record.permit = Some(permit);
                async {
                    let transport =
                        sse::headers::refuse_customer_key_in_clear(self.secure, req.headers(), req.uri().query());
                    let checked = match transport {
                        Ok(()) => request_checks::check(&mut req).await,
                        Err(e) => Err(e),
                    };
                    match checked.and_then(|()| self.state.auth.check_session_token(req.headers(), req.uri())) {
                        Ok(()) if method == Method::OPTIONS => {
                            match self.state.cors.preflight(&self.state.store, &req).await {
                                Ok(response) => Ok(response),
                                Err(e) => e.to_http_response().map_err(|e| HttpError::new(Box::new(e))),
                            }
                        }
                        Ok(()) if post_object::is_form_upload(&method, req.headers()) => {
                            match self.state.post.handle(req, &record.context).await {
                                Ok(response) => Ok(response),
                                Err(e) => e.to_http_response().map_err(|e| HttpError::new(Box::new(e))),
                            }
                        }
                        Ok(()) => self.state.s3.call(req).await,
                        Err(e) => e.to_http_response().map_err(|e| HttpError::new(Box::new(e))),
                    }
                }
                .instrument(record.span.clone())
                .await
            }
            None => too_many_requests(),
        };
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                record.finish(StatusCode::INTERNAL_SERVER_ERROR.as_u16(), Some("InternalError".to_owned()), 0);
                return Err(e);
            }
        };
        if let (Some(origin), Some(bucket)) = (&origin, record.context.facts().bucket) {
            let (cors, store) = (&self.state.cors, &self.state.store);
            cors.decorate(store, &bucket, origin, &method, response.headers_mut()).await;
        }
        let headers = response.headers_mut();
        set_header(headers, "x-amz-request-id", &record.request_id);
        set_header(headers, "x-amz-id-2", &self.state.host_id);
        set_header(headers, "server", SERVER_NAME);
        // s3s answers a ranged HEAD with 200; its Content-Range makes it a 206, as for GET.
        if response.status() == StatusCode::OK && response.headers().contains_key(CONTENT_RANGE) {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        let status = response.status().as_u16();
        let mut code = None;
        // Error bodies are completed, except where none goes out (a 304, or any reply to HEAD).
        let has_body = status != 304 && !head;
        if let Some(body) = response.body().bytes().filter(|_| status >= 300) {
            code = error_code(&body);
            if let Some(completed) =
                error_body::complete(&body, &record.request_id, &self.state.host_id).filter(|_| has_body)
            {
                set_header(response.headers_mut(), "content-length", &completed.len().to_string());
                *response.body_mut() = Body::from(completed);
            }
        }
        record.finish(status, code, declared_length(response.headers()));
        Ok(response)
    }
}

/// The answer to a request past the cap on requests in flight.
fn too_many_requests() -> Result<Response<Body>, HttpError> {
    let e = s3_error!(SlowDown, "Please reduce your request rate.");
    e.to_http_response().map_err(|e| HttpError::new(Box::new(e)))
}

/// One S3 request as the metrics, the trace and the audit log see it. It is counted in flight
/// from [`RequestRecord::begin`] and recorded exactly once: by [`RequestRecord::finish`] when
/// the response is ready or, when the client went away first and the request's future was
/// dropped (a reset HTTP/2 stream, a closed HTTP/1.1 connection), on drop with status 499.
struct RequestRecord {
    state: Arc<FrontendState>,
    peer: SocketAddr,
    started: Instant,
    arrived: OffsetDateTime,
    request_id: String,
    context: RequestContext,
    bytes_in: u64,
    span: tracing::Span,
    /// The request's place under the cap on requests in flight, once admitted.
    permit: Option<OwnedSemaphorePermit>,
    recorded: bool,
}

impl RequestRecord {
    /// Starts the record of `req`: its id, its span (continuing the client's trace), and the
    /// in-flight gauge.
    fn begin(frontend: &Frontend, req: &Request<Incoming>, context: RequestContext) -> Self {
        let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let span = tracing::info_span!(
            logging::REQUEST_SPAN,
            otel.name = "S3 request",
            otel.kind = "server",
            http.request.method = %req.method(),
            url.path = %req.uri().path(),
            client.address = %frontend.peer.ip(),
            aws.request_id = %request_id,
            s3.api = tracing::field::Empty,
            s3.bucket = tracing::field::Empty,
            s3.key = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(req.headers())));
        if let Err(e) = span.set_parent(parent) {
            tracing::trace!(error = %e, "trace context not applied");
        }
        if let Some(m) = METRICS.as_ref() {
            m.in_flight.inc();
        }
        Self {
            state: Arc::clone(&frontend.state),
            peer: frontend.peer,
            started: Instant::now(),
            arrived: OffsetDateTime::now_utc(),
            request_id,
            context,
            bytes_in: declared_length(req.headers()),
            span,
            permit: None,
            recorded: false,
        }
    }

    /// Records the request's outcome: `status`, the S3 error `code` of a failure, and the
    /// declared length of the response body.
    fn finish(&mut self, status: u16, code: Option<String>, bytes_out: u64) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        self.permit = None;
        let metrics = METRICS.as_ref();
        if let Some(m) = metrics {
            m.in_flight.dec();
        }
        let facts = self.context.facts();
        let api = facts.api.clone().unwrap_or_else(|| "Unknown".to_owned());
        let seconds = self.started.elapsed().as_secs_f64();
        let span = &self.span;
        // The span has started (its parent is set), so it is renamed through its context.
        span.context().span().update_name(format!("S3 {api}"));
        span.record("s3.api", api.as_str());
        span.record("http.response.status_code", status);
        if let Some(bucket) = &facts.bucket {
            span.record("s3.bucket", bucket.as_str());
        }
        if let Some(key) = &facts.key {
            span.record("s3.key", key.as_str());
        }
        let failure = code.as_deref().unwrap_or_default();
        // 501 answers an operation this release does not offer: the client's concern, not a fault.
        if status >= 500 && status != 501 {
            tracing::error!(parent: span, status, code = failure, "request failed");
        } else if status == CLIENT_CLOSED_REQUEST {
            tracing::debug!(parent: span, status, "client went away before the response");
        } else if status >= 400 {
            tracing::debug!(parent: span, status, code = failure, "request refused");
        }
        if let Some(m) = metrics {
            m.observe_request(&api, status, seconds, code.as_deref());
            m.received_bytes.inc_by(self.bytes_in);
            m.sent_bytes.inc_by(bytes_out);
        }
        if let Some(audit) = &self.state.audit {
            audit.record(AuditEntry {
                time: self.arrived.format(&Rfc3339).unwrap_or_default(),
                request_id: self.request_id.clone(),
                principal: facts.principal,
                source_ip: self.peer.ip().to_string(),
                api: facts.api,
                bucket: facts.bucket,
                key: facts.key,
                version_id: None,
                status,
                error_code: code,
                bytes_in: self.bytes_in,
                bytes_out,
                duration_ms: seconds * 1000.0,
            });
        }
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        // Dropped unrecorded: the request's future was dropped before its response was ready.
        self.finish(CLIENT_CLOSED_REQUEST, None, 0);
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_s3_error_bodies() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("NoSuchKey"));
        assert_eq!(error_code(b"<Error></Error>"), None);
    }
}
