//! Signed-request parsing: s3s 0.14's SigV4 (and V2) parsers of the Authorization header,
//! X-Amz-Date, x-amz-content-sha256, presigned query strings and POST forms, plus the gateway's
//! own reading of the credential scope. s3s keeps its `sig_v4` module private, so the requests
//! go through its public entry, `S3Service::call`, the one the gateway serves.
//!
//! Input: one byte choosing the method, then `\n`-separated fields: path, query, Authorization,
//! X-Amz-Date, x-amz-content-sha256, Content-Type, one extra `name:value` header, and the rest
//! is the body. `{date}` and `{now}` in any field become today's scope date and the current
//! X-Amz-Date, so inputs can get past the clock-skew checks.
//!
//! Properties: no panic; every request gets an S3 error response (4xx, or 501 for what s3s does
//! not implement), never a transport error; no request is ever authenticated, since the fuzzer
//! cannot compute an HMAC with the secret key; the credential scope region the gateway extracts
//! is a single scope field.
//!
//! Known s3s 0.14.1 bug, found by this target (docs/fuzzing.md): its date digit parser computes
//! `c - b'0'` before checking that `c` is a digit (`utils/parser.rs:5`), so an X-Amz-Date, a
//! presigned X-Amz-Date or a credential scope date holding a byte below `'0'` where a digit
//! belongs (`2026-11-23T0000Z`) panics when overflow checks are on, as in this harness. Release
//! builds wrap and then discard the value, and answer 400. That one panic is tolerated (see
//! `tolerate_known_s3s_panic`) so that the run can look past it; every other panic still fails.

#![no_main]

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, Body, S3Result, S3};

#[path = "../../gateway/src/parse.rs"]
#[allow(dead_code)]
mod parse;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const METHODS: [Method; 5] = [Method::GET, Method::PUT, Method::POST, Method::HEAD, Method::DELETE];

/// No operations: every request that got past authentication would reach `NeverAuthenticated`.
struct NoBackend;

impl S3 for NoBackend {}

/// Fails the run if a request arrives authenticated; denies anonymous ones, as the gateway does.
struct NeverAuthenticated;

#[async_trait::async_trait]
impl S3Access for NeverAuthenticated {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if let Some(credentials) = cx.credentials() {
            panic!(
                "a request the fuzzer signed was authenticated as {:?}: {} {}",
                credentials.access_key,
                cx.method(),
                cx.uri()
            );
        }
        Err(s3_error!(AccessDenied, "Signed requests only."))
    }
}

fn service() -> &'static S3Service {
    static SERVICE: OnceLock<S3Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let mut builder = S3ServiceBuilder::new(NoBackend);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.set_access(NeverAuthenticated);
        builder.build()
    })
}

/// Where s3s 0.14.1's digit parser overflows (see the module doc).
const KNOWN_S3S_PANIC_FILE: &str = "s3s-0.14.1/src/utils/parser.rs";
const KNOWN_S3S_PANIC_LINE: u32 = 5;

thread_local! {
    /// Set by the panic hook when the panic in flight is the known s3s one.
    static KNOWN_PANIC: Cell<bool> = const { Cell::new(false) };
}

fn is_known_s3s_panic(info: &PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|l| l.file().ends_with(KNOWN_S3S_PANIC_FILE) && l.line() == KNOWN_S3S_PANIC_LINE)
}

/// Lets the known s3s panic unwind (to `call`'s `catch_unwind`) instead of aborting, and leaves
/// every other panic to libFuzzer's hook, which aborts and saves the input.
fn tolerate_known_s3s_panic() {
    let libfuzzer_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if is_known_s3s_panic(info) {
            KNOWN_PANIC.with(|known| known.set(true));
        } else {
            libfuzzer_hook(info);
        }
    }));
}

fuzz_target!(init: tolerate_known_s3s_panic(), |data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else { return };
    let method = METHODS[usize::from(method) % METHODS.len()].clone();
    let (date, now) = current_dates();
    let text = String::from_utf8_lossy(rest).replace("{date}", &date).replace("{now}", &now);
    let mut fields = text.splitn(8, '\n');
    let mut field = || fields.next().unwrap_or("");
    let (path, query, authorization, amz_date) = (field(), field(), field(), field());
    let (content_sha256, content_type, extra, body) = (field(), field(), field(), field());

    gateway_scope_region(authorization, query);

    let uri = if query.is_empty() { format!("/{path}") } else { format!("/{path}?{query}") };
    let mut request = Request::builder().method(method).uri(uri);
    let mut headers = vec![("host", "localhost:9000"), ("authorization", authorization), ("x-amz-date", amz_date)];
    headers.extend([("x-amz-content-sha256", content_sha256), ("content-type", content_type)]);
    headers.extend(extra.split_once(':'));
    for (name, value) in headers.into_iter().filter(|(_, v)| !v.is_empty()) {
        // What hyper would refuse never reaches s3s.
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name.trim()), HeaderValue::try_from(value)) else { continue };
        request = request.header(name, value);
    }
    if !body.is_empty() {
        request = request.header("content-length", body.len());
    }
    let Ok(request) = request.body(Body::from(Bytes::copy_from_slice(body.as_bytes()))) else { return };

    KNOWN_PANIC.with(|known| known.set(false));
    let Ok(result) = panic::catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(service().call(request)))) else {
        assert!(KNOWN_PANIC.with(Cell::get), "only the known s3s panic unwinds");
        return;
    };
    match result {
        Ok(response) => {
            let status = response.status();
            assert!(
                status.is_client_error() || status == StatusCode::NOT_IMPLEMENTED,
                "unexpected status {status} for a request no one signed"
            );
        }
        Err(e) => panic!("transport error instead of an S3 error: {e:?}"),
    }
});

/// Today's credential-scope date (`yyyymmdd`) and the current X-Amz-Date (`yyyymmddThhmmssZ`).
fn current_dates() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let date = format!("{:04}{:02}{:02}", now.year(), u8::from(now.month()), now.day());
    let time = format!("T{:02}{:02}{:02}Z", now.hour(), now.minute(), now.second());
    (date.clone(), date + &time)
}

/// The gateway's `access::signed_region`: the region of the Credential in the Authorization
/// header, or of X-Amz-Credential in the query.
fn gateway_scope_region(authorization: &str, query: &str) {
    if let Some(credential) = authorization.split("Credential=").nth(1).and_then(|c| c.split(',').next()) {
        check_region(credential, parse::scope_region(credential));
    }
    if let Some(credential) = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential=")) {
        if let Ok(credential) = percent_encoding::percent_decode_str(credential).decode_utf8() {
            check_region(&credential, parse::scope_region(&credential));
        }
    }
}

fn check_region(credential: &str, region: Option<&str>) {
    if let Some(region) = region {
        assert!(!region.contains('/'), "region {region:?} of {credential:?} spans fields");
    }
}
