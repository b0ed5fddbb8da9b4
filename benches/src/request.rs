//! SigV4-signed, path-style S3 requests over a keep-alive HTTP/1.1 connection pool.

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Idle keep-alive connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Bytes of an error reply kept to name the S3 error.
const ERROR_BODY_LIMIT_BYTES: usize = 4096;

/// One S3 operation, with what it needs to be sent.
#[derive(Debug, Clone)]
pub enum Operation {
    /// CreateBucket.
    CreateBucket,
    /// PutObject of `body` at `key`.
    Put { key: String, body: Bytes },
    /// GetObject of `key`; the body is read to its end.
    Get { key: String },
    /// HeadObject of `key`.
    Head { key: String },
    /// ListObjectsV2 of up to `max_keys` keys under `prefix`, rolled up at `delimiter`, from
    /// a continuation token.
    List { prefix: String, max_keys: u32, delimiter: Option<String>, token: Option<String> },
    /// DeleteObject of `key`.
    Delete { key: String },
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with a non-2xx status; `code` is the S3 error code when it sent one.
    Status { status: u16, code: String },
    /// No complete reply within the request timeout.
    Timeout,
    /// The connection failed or broke.
    Transport(String),
    /// Open loop only: scheduled, but the in-flight cap stayed full until the run ended.
    NotSent,
}

impl Failure {
    /// Short key under which errors are counted: the status code, `timeout` or `transport`.
    pub fn key(&self) -> String {
        match self {
            Failure::Status { status, .. } => status.to_string(),
            Failure::Timeout => "timeout".into(),
            Failure::Transport(_) => "transport".into(),
            Failure::NotSent => "unsent".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, code } if code.is_empty() => write!(f, "HTTP {status}"),
            Failure::Status { status, code } => write!(f, "HTTP {status} {code}"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Transport(cause) => write!(f, "transport error: {cause}"),
            Failure::NotSent => f.write_str("not sent: every in-flight slot was busy until the end of the run"),
        }
    }
}

/// Sends signed requests for one bucket of one endpoint.
pub struct S3Client {
    http: Client<HttpConnector, Full<Bytes>>,
    base_url: String,
    host: String,
    bucket: String,
    identity: Identity,
    region: String,
    timeout: Duration,
}

impl S3Client {
    /// A client for `bucket` at `endpoint` (`http://host:port`), pooling up to `connections`.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        credentials: (&str, &str),
        region: &str,
        timeout: Duration,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let uri: Uri = endpoint.parse().with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("endpoint {endpoint:?} must be plain http:// (this tool speaks no TLS)");
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            bail!("endpoint {endpoint:?} must have no path (requests are path-style)");
        }
        let host = uri.authority().with_context(|| format!("endpoint {endpoint:?} has no host"))?.to_string();
        if bucket.is_empty()
            || !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        {
            bail!("bucket name {bucket:?} is not a valid S3 bucket name");
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let (access_key, secret_key) = credentials;
        Ok(Self {
            http,
            base_url: format!("http://{host}"),
            host,
            bucket: bucket.to_owned(),
            identity: Credentials::new(access_key, secret_key, None, None, "s3-load").into(),
            region: region.to_owned(),
            timeout,
        })
    }

    /// Sends `operation` and reads the whole reply; returns the payload bytes moved (request
    /// body sent plus reply body received).
    pub async fn send(&self, operation: &Operation) -> Result<u64, Failure> {
        let request = self.signed_request(operation).map_err(|e| Failure::Transport(format!("{e:#}")))?;
        let sent = match operation {
            Operation::Put { body, .. } => body.len() as u64,
            _ => 0,
        };
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok(received)) => Ok(sent + received),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Sends a ListObjectsV2 `operation` and returns the page it answered.
    pub async fn list_page(&self, operation: &Operation) -> Result<ListedPage, Failure> {
        let request = self.signed_request(operation).map_err(|e| Failure::Transport(format!("{e:#}")))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| Failure::Transport(error_chain(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(Failure::Status { status: status.as_u16(), code: error_code(response).await });
            }
            let body = response.into_body().collect().await.map_err(|e| Failure::Transport(error_chain(&e)))?;
            Ok(ListedPage::parse(&String::from_utf8_lossy(&body.to_bytes())))
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Err(Failure::Timeout))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<u64, Failure> {
        let response = self.http.request(request).await.map_err(|e| Failure::Transport(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            drain(response).await
        } else {
            Err(Failure::Status { status: status.as_u16(), code: error_code(response).await })
        }
    }

    fn signed_request(&self, operation: &Operation) -> anyhow::Result<Request<Full<Bytes>>> {
        let bucket = &self.bucket;
        let (method, path, body) = match operation {
            Operation::CreateBucket => (Method::PUT, format!("/{bucket}"), Bytes::new()),
            Operation::Put { key, body } => (Method::PUT, format!("/{bucket}/{key}"), body.clone()),
            Operation::Get { key } => (Method::GET, format!("/{bucket}/{key}"), Bytes::new()),
            Operation::Head { key } => (Method::HEAD, format!("/{bucket}/{key}"), Bytes::new()),
            Operation::List { prefix, max_keys, delimiter, token } => {
                let mut query = String::new();
                if let Some(token) = token {
                    query.push_str(&format!("continuation-token={}&", query_value(token)));
                }
                if let Some(delimiter) = delimiter {
                    query.push_str(&format!("delimiter={}&", query_value(delimiter)));
                }
                query.push_str(&format!("list-type=2&max-keys={max_keys}&prefix={}", query_value(prefix)));
                (Method::GET, format!("/{bucket}?{query}"), Bytes::new())
            }
            Operation::Delete { key } => (Method::DELETE, format!("/{bucket}/{key}"), Bytes::new()),
        };
        let uri = format!("{}{path}", self.base_url);
        let signable_body = if body.is_empty() { SignableBody::Bytes(&[]) } else { SignableBody::UnsignedPayload };
        let signable = SignableRequest::new(
            method.as_str(),
            uri.as_str(),
            [("host", self.host.as_str())].into_iter(),
            signable_body,
        )
        .context("building the request to sign")?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(s3_signing_settings())
            .build()
            .context("building the SigV4 parameters")?
            .into();
        let (instructions, _signature) = sign(signable, &params).context("signing the request")?.into_parts();
        let mut builder = Request::builder().method(method).uri(uri.as_str()).header(HOST, self.host.as_str());
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/octet-stream");
        }
        let mut request = builder.body(Full::new(body)).with_context(|| format!("building request {uri}"))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// What one ListObjectsV2 page held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPage {
    /// Objects and common prefixes listed.
    pub entries: u64,
    /// Where the next page starts, when the listing is truncated.
    pub next_token: Option<String>,
}

impl ListedPage {
    fn parse(xml: &str) -> Self {
        let entries = (xml.matches("<Contents>").count() + xml.matches("<CommonPrefixes>").count()) as u64;
        let next_token = element(xml, "NextContinuationToken").map(unescape_xml);
        Self { entries, next_token }
    }
}

/// A query-string value percent-encoded as SigV4 canonicalizes it (unreserved characters kept).
fn query_value(value: &str) -> String {
    const QUERY: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, QUERY).to_string()
}

/// The text of the first `<name>` element of an XML document.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + len])
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// SigV4 as S3 wants it: paths encoded once and not normalized, `x-amz-content-sha256` sent.
fn s3_signing_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings
}

/// Reads a reply body to its end, returning its length.
async fn drain(response: Response<Incoming>) -> Result<u64, Failure> {
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Transport(error_chain(&e)))?;
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
        }
    }
    Ok(received)
}

/// The `<Code>` of an S3 error reply, or empty when there is none (HEAD replies have no body).
async fn error_code(response: Response<Incoming>) -> String {
    let mut body = response.into_body();
    let mut head = Vec::new();
    while head.len() < ERROR_BODY_LIMIT_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => head.extend_from_slice(frame.data_ref().map(|d| d.as_ref()).unwrap_or_default()),
            _ => break,
        }
    }
    s3_error_code(&String::from_utf8_lossy(&head)).unwrap_or_default().to_owned()
}

/// Extracts the text of the `<Code>` element of an S3 error document.
fn s3_error_code(xml: &str) -> Option<&str> {
    element(xml, "Code")
}

/// An error and its causes on one line; hyper's own message alone often says only "client error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> S3Client {
        S3Client::new("http://127.0.0.1:9000", "bench", ("AKID", "SECRET"), "us-east-1", Duration::from_secs(1), 4)
            .unwrap()
    }

    #[test]
    fn requests_are_path_style_and_signed_for_s3() {
        let client = client();
        let request = client
            .signed_request(&Operation::Put { key: "p/4KiB/read/00000001".into(), body: Bytes::from_static(b"abc") })
            .unwrap();
        assert_eq!(request.uri(), "http://127.0.0.1:9000/bench/p/4KiB/read/00000001");
        let headers = request.headers();
        assert_eq!(headers["host"], "127.0.0.1:9000");
        assert_eq!(headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{authorization}");
        assert!(authorization.contains("/us-east-1/s3/aws4_request"), "{authorization}");
    }

    #[test]
    fn list_encodes_the_prefix_in_the_query() {
        let request = client()
            .signed_request(&Operation::List {
                prefix: "p/4KiB/read/".into(),
                max_keys: 100,
                delimiter: None,
                token: None,
            })
            .unwrap();
        assert_eq!(request.uri().query(), Some("list-type=2&max-keys=100&prefix=p%2F4KiB%2Fread%2F"));
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn list_pages_carry_their_token_encoded() {
        let list = Operation::List {
            prefix: "scan/".into(),
            max_keys: 1000,
            delimiter: Some("/".into()),
            token: Some("a+b/c=".into()),
        };
        let request = client().signed_request(&list).unwrap();
        assert_eq!(
            request.uri().query(),
            Some("continuation-token=a%2Bb%2Fc%3D&delimiter=%2F&list-type=2&max-keys=1000&prefix=scan%2F")
        );
        let xml = "<ListBucketResult><Prefix>scan/</Prefix><Contents><Key>a</Key></Contents>\
                   <CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>\
                   <NextContinuationToken>x&amp;y</NextContinuationToken></ListBucketResult>";
        assert_eq!(ListedPage::parse(xml), ListedPage { entries: 2, next_token: Some("x&y".into()) });
    }

    #[test]
    fn endpoints_and_buckets_are_checked() {
        let new = |endpoint: &str, bucket: &str| {
            S3Client::new(endpoint, bucket, ("K", "S"), "us-east-1", Duration::from_secs(1), 1).map(|_| ())
        };
        assert!(new("https://127.0.0.1:9000", "b").is_err());
        assert!(new("http://127.0.0.1:9000/base", "b").is_err());
        assert!(new("http://127.0.0.1:9000", "Bad_Bucket").is_err());
        assert!(new("http://127.0.0.1:9000/", "good-bucket").is_ok());
    }

    #[test]
    fn failures_are_counted_by_status_and_show_the_s3_code() {
        let failure = Failure::Status { status: 503, code: "SlowDown".into() };
        assert_eq!(failure.key(), "503");
        assert_eq!(failure.to_string(), "HTTP 503 SlowDown");
        assert_eq!(Failure::Timeout.key(), "timeout");
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
        assert_eq!(s3_error_code(xml), Some("NoSuchKey"));
        assert_eq!(s3_error_code(""), None);
    }
}
