//! End-to-end test harness: starts the real `sovereign-s3` binary on temporary drive directories
//! and points real S3 clients at it (aws-sdk-s3 at its default settings, curl, the aws cli).

use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};
use base64::Engine;
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::RngCore;
use tempfile::{NamedTempFile, TempDir};

/// Root access key the harness gives every server it starts.
pub const ROOT_USER: &str = "e2e-root";
/// Root secret key the harness gives every server it starts.
pub const ROOT_PASSWORD: &str = "e2e-root-secret-0123456789";
/// The region the server answers for.
pub const REGION: &str = "us-east-1";
/// The bucket most tests work in.
pub const BUCKET: &str = "e2e-bucket";
/// One mebibyte, the unit object sizes in the tests are written in.
pub const MIB: usize = 1024 * 1024;
/// Objects up to this size live inline in the metadata record and have no shard files.
pub const INLINE_THRESHOLD_BYTES: usize = 128 * 1024;
/// S3's minimum size of every multipart part but the last.
pub const MIN_PART_SIZE_BYTES: usize = 5 * MIB;

/// What the server prints on stdout once it accepts connections, followed by its URL.
const LISTENING_PREFIX: &str = "sovereign-s3 listening on ";
/// How long a server may take to print its listening line (RocksDB opens, drives heal formats).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two probes of a condition the tests wait for.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Lines of the server log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// The `sovereign-s3` binary under test: `$SOVEREIGN_S3_BIN`, else the one built next to the test
/// executables (`target/release/deps/<test>` -> `target/release/sovereign-s3`).
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SOVEREIGN_S3_BIN") {
        return PathBuf::from(path);
    }
    let test_exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir =
        test_exe.parent().and_then(Path::parent).expect("test executables live in <target>/<profile>/deps");
    let binary = profile_dir.join("sovereign-s3");
    assert!(
        binary.exists(),
        "{} does not exist: run `cargo build --release --workspace` first, or set SOVEREIGN_S3_BIN",
        binary.display()
    );
    binary
}

/// A running `sovereign-s3 server` over its own temporary drive directories, killed on drop.
pub struct Server {
    /// Holds the drive directories and the server log; removed on drop.
    root: TempDir,
    drives: Vec<PathBuf>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    /// A command the server is started through (such as `prlimit --nofile=256 --`), if any.
    launcher: Vec<String>,
    process: Option<Child>,
    url: String,
    /// The self-signed certificate (PEM) of a server started with TLS, which its clients trust.
    tls_cert: Option<Vec<u8>>,
}

impl Server {
    /// Starts a server over `drive_count` new drive directories (1: no erasure coding; 4: 2+2).
    pub fn start(drive_count: usize) -> Server {
        Server::start_with_args(drive_count, &[])
    }

    /// Starts a server over `drive_count` new drives, with extra command-line flags.
    pub fn start_with_args(drive_count: usize, extra_args: &[&str]) -> Server {
        Server::start_with_env(drive_count, extra_args, &[])
    }

    /// Starts a server over `drive_count` new drives, with extra command-line flags and
    /// environment variables.
    pub fn start_with_env(drive_count: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_under(&[], drive_count, extra_args, env)
    }

    /// Starts a server through `launcher`, a command that runs the command line it is given
    /// (for example `prlimit --nofile=256:256 --`, to start the server with fewer descriptors).
    pub fn start_under(launcher: &[&str], drive_count: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server::prepare(launcher, drive_count, extra_args, env);
        server.spawn();
        server
    }

    /// Starts a server over `drive_count` new drives that serves HTTPS with a self-signed
    /// certificate for 127.0.0.1 (made with the `openssl` CLI); [`Server::client`] trusts it.
    pub fn start_tls(drive_count: usize) -> Server {
        let mut server = Server::prepare(&[], drive_count, &[], &[]);
        let (cert, key) = self_signed_certificate(server.root.path());
        server.extra_args.extend(["--tls-cert".into(), cert.display().to_string()]);
        server.extra_args.extend(["--tls-key".into(), key.display().to_string()]);
        server.tls_cert = Some(fs::read(&cert).expect("read the certificate"));
        server.spawn();
        assert!(server.url.starts_with("https://"), "not serving HTTPS: {}", server.url);
        server
    }

    /// A server over new drive directories, not started yet.
    fn prepare(launcher: &[&str], drive_count: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let root =
            tempfile::Builder::new().prefix("sovereign-e2e-").tempdir().expect("temporary directory for the drives");
        let drives: Vec<PathBuf> =
            (1..=drive_count).map(|i| root.path().join("drives").join(format!("d{i}"))).collect();
        for drive in &drives {
            fs::create_dir_all(drive).expect("create drive directory");
        }
        Server {
            root,
            drives,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            extra_env: env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            launcher: launcher.iter().map(|arg| arg.to_string()).collect(),
            process: None,
            url: String::new(),
            tls_cert: None,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|port| port.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.url))
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map(Child::id).expect("the server is running")
    }

    /// The drive directories, in the order given on the command line.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.drives
    }

    /// The temporary directory that holds every drive directory and the server log.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// Everything the server has written to stderr (its log) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server with SIGKILL: no graceful shutdown, like a power cut of the process.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().expect("kill sovereign-s3");
            process.wait().expect("reap sovereign-s3");
        }
    }

    /// Kills the server if it runs and starts it again over the same drives (likely on a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SDK configuration for this server with the root credentials; tests may override parts.
    pub fn sdk_config(&self) -> aws_sdk_s3::config::Builder {
        let mut trust = tls::TrustStore::default();
        if let Some(cert) = &self.tls_cert {
            trust = tls::TrustStore::empty().with_pem_certificate(cert.clone());
        }
        let tls_context = tls::TlsContext::builder().with_trust_store(trust).build().expect("TLS context");
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .tls_context(tls_context)
            .build_with_resolver(LoopbackResolver);
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(ROOT_USER, ROOT_PASSWORD, None, None, "e2e"))
            .force_path_style(true)
            // A retried request could hide a failed first answer; the tests want that answer.
            .retry_config(RetryConfig::disabled())
            .http_client(http_client)
    }

    /// An aws-sdk-s3 client with the root credentials, path-style, at default checksum settings.
    pub fn client(&self) -> Client {
        Client::from_conf(self.sdk_config().build())
    }

    /// Runs curl with the arguments given, the request signed with SigV4 as root (unsigned
    /// payload, so a test can send any body).
    pub fn signed_curl(&self, args: &[&str]) -> HttpReply {
        let mut all_args = signed_curl_args();
        all_args.extend(args.iter().map(|arg| arg.to_string()));
        curl(&all_args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Starts the process and waits for its listening line.
    fn spawn(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open server log");
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(server_binary());
                command
            }
            None => Command::new(server_binary()),
        };
        // Settings of the developer's shell must not change the server under test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SOVEREIGN_S3_") {
                command.env_remove(name);
            }
        }
        let mut process = command
            .arg("server")
            .args(["--address", "127.0.0.1:0"])
            .args(&self.extra_args)
            .args(&self.drives)
            .envs(self.extra_env.iter().map(|(name, value)| (name, value)))
            .env("SOVEREIGN_S3_ROOT_USER", ROOT_USER)
            .env("SOVEREIGN_S3_ROOT_PASSWORD", ROOT_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sovereign-s3");
        let url = listening_url(process.stdout.take().expect("piped stdout"));
        self.process = Some(process);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match url.recv_timeout(POLL_INTERVAL) {
                Ok(url) => {
                    self.url = url;
                    return;
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "sovereign-s3 printed no listening line within {STARTUP_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.process.take().and_then(|mut p| p.wait().ok());
                    panic!("sovereign-s3 closed stdout before listening (exit: {status:?}); log:\n{}", self.log_tail())
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- sovereign-s3 log ({}) ---\n{}", self.log_path().display(), self.log_tail());
        }
        self.kill();
    }
}

/// OpenSSL configuration of a self-signed end-entity certificate for 127.0.0.1 (rustls refuses
/// a CA certificate as a server's certificate, which `openssl req -x509` makes by default).
const CERTIFICATE_CONFIG: &str = "\
[req]
distinguished_name = dn
x509_extensions = leaf
prompt = no
[dn]
CN = 127.0.0.1
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
";

/// Makes a self-signed certificate and its P-256 key in `dir`; returns their paths.
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (config, cert, key) = (dir.join("tls.cnf"), dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    fs::write(&config, CERTIFICATE_CONFIG).expect("write the OpenSSL configuration");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .arg("-config")
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate: {status}");
    (cert, key)
}

/// Reads the server's stdout on a thread, sends the URL of its listening line, then keeps
/// draining stdout so that the server never blocks on a full pipe.
fn listening_url(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                // The receiver is gone once the test stopped waiting: nothing to tell then.
                let _ = sender.send(url.trim().trim_end_matches('/').to_owned());
            }
        }
    });
    receiver
}

/// Resolves every host name to 127.0.0.1: servers under test listen only there, and
/// virtual-host names such as `bucket.example.localhost` then need no DNS.
#[derive(Debug, Clone)]
struct LoopbackResolver;

impl ResolveDns for LoopbackResolver {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

/// The HTTP status and S3 error code of a request that failed.
#[derive(Debug)]
pub struct S3Error {
    pub status: u16,
    /// The `<Code>` of the error body; absent for HEAD and 304 replies, which have no body.
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Asserts that an SDK call got an S3 error reply with this status and one of `codes` (any code
/// when `codes` is empty), and returns it.
pub fn assert_s3_error<T: Debug, E: ProvideErrorMetadata + Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
    codes: &[&str],
) -> S3Error {
    let error = match result {
        Ok(output) => panic!("expected HTTP {status} {codes:?}, got success: {output:?}"),
        Err(error) => error,
    };
    let Some(reply) = error.raw_response() else {
        panic!("expected HTTP {status} {codes:?}, got no HTTP reply: {error:?}");
    };
    let got = S3Error {
        status: reply.status().as_u16(),
        code: error.code().map(str::to_owned),
        message: error.message().map(str::to_owned),
    };
    let code_matches = codes.is_empty() || got.code.as_deref().is_some_and(|c| codes.contains(&c));
    assert!(got.status == status && code_matches, "expected HTTP {status} {codes:?}, got {got:?}");
    got
}

/// A reply received by curl.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header lines as received, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text, for error bodies.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error body.
    pub fn error_code(&self) -> Option<String> {
        let text = self.text();
        let start = text.find("<Code>")? + "<Code>".len();
        let end = text[start..].find("</Code>")? + start;
        Some(text[start..end].to_owned())
    }

    /// Asserts that this is an S3 error with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert!(
            self.status == status && self.error_code().as_deref() == Some(code),
            "expected HTTP {status} {code}, got HTTP {}: {}",
            self.status,
            self.text()
        );
    }
}

/// The curl arguments that sign a request with SigV4 as root (unsigned payload), for tests that
/// run curl on a thread of their own.
pub fn signed_curl_args() -> Vec<String> {
    let user = format!("{ROOT_USER}:{ROOT_PASSWORD}");
    let sigv4 = format!("aws:amz:{REGION}:s3");
    ["--aws-sigv4", &sigv4, "--user", &user, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"].map(str::to_owned).to_vec()
}

/// Runs `curl` with the arguments given (plus options to get the status, headers and body) and
/// parses its reply.
pub fn curl(args: &[&str]) -> HttpReply {
    let output =
        Command::new("curl").args(["--silent", "--show-error", "--include"]).args(args).output().expect("run curl");
    assert!(output.status.success(), "curl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    parse_http_reply(&output.stdout)
}

/// Parses `curl --include` output, skipping interim `100 Continue` replies.
fn parse_http_reply(mut raw: &[u8]) -> HttpReply {
    loop {
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..head_end]);
        let body = &raw[head_end + 4..];
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        if status == 100 {
            raw = body;
            continue;
        }
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        return HttpReply { status, headers, body: body.to_vec() };
    }
}

/// `len` random bytes: incompressible, and different in every run.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

/// Hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// The `Content-MD5` header value of `data`: its binary MD5 in base64.
pub fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// The quoted S3 ETag of an object uploaded in one PUT: its MD5.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// The quoted S3 ETag of a multipart object: MD5 of the parts' binary MD5s, `-` part count.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5_of_md5s = Md5::new();
    for part in parts {
        md5_of_md5s.update(Md5::digest(part));
    }
    format!("\"{}-{}\"", hex::encode(md5_of_md5s.finalize()), parts.len())
}

/// Percent-encodes all but RFC 3986 unreserved characters, as S3 expects in query values and in
/// `x-amz-copy-source`.
pub fn url_encode(text: &str) -> String {
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Asserts two byte strings are equal without printing megabytes when they are not.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let first_difference = actual.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, expected {}; first difference at {first_difference:?}",
            actual.len(),
            expected.len()
        );
    }
}

/// Starts a server on `drive_count` drives with [`BUCKET`] created, and returns a root client.
pub async fn server_with_bucket(drive_count: usize) -> (Server, Client) {
    let server = Server::start(drive_count);
    let client = server.client();
    create_bucket(&client, BUCKET).await;
    (server, client)
}

/// Starts a server serving HTTPS ([`Server::start_tls`]) on `drive_count` drives with [`BUCKET`]
/// created, and returns a root client that trusts its certificate.
pub async fn tls_server_with_bucket(drive_count: usize) -> (Server, Client) {
    let server = Server::start_tls(drive_count);
    let client = server.client();
    create_bucket(&client, BUCKET).await;
    (server, client)
}

/// Creates a bucket, panicking on failure.
pub async fn create_bucket(client: &Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
}

/// PUTs `data` from memory: the SDK sends its CRC32 as a header.
pub async fn put_bytes(client: &Client, bucket: &str, key: &str, data: &[u8]) -> PutObjectOutput {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"))
}

/// A streaming request body read from a temporary file that holds `data`. The SDK sends such a
/// body aws-chunked, each chunk signed, with its checksum (CRC32 by default) in a trailer. The
/// file must outlive the request.
pub async fn file_body(data: &[u8]) -> (NamedTempFile, ByteStream) {
    let file = NamedTempFile::new().expect("temporary body file");
    fs::write(file.path(), data).expect("write body file");
    let body = ByteStream::from_path(file.path()).await.expect("streaming body from file");
    (file, body)
}

/// PUTs `data` as a streaming body (see [`file_body`]).
pub async fn put_streaming(client: &Client, bucket: &str, key: &str, data: &[u8]) -> PutObjectOutput {
    let (_file, body) = file_body(data).await;
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("streaming put {bucket}/{key}: {e:?}"))
}

/// Starts a multipart upload and returns its upload id.
pub async fn create_multipart_upload(client: &Client, bucket: &str, key: &str) -> String {
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create multipart upload {bucket}/{key}: {e:?}"));
    upload.upload_id().expect("upload id").to_owned()
}

/// Uploads one part from memory and returns its ETag.
pub async fn upload_part(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: i32,
    data: &[u8],
) -> String {
    let part = client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(part_number)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {part_number} of {bucket}/{key}: {e:?}"));
    part.e_tag().expect("part ETag").to_owned()
}

/// GETs a whole object, panicking on failure.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    collect_body(output.body).await
}

/// Reads a response body to the end.
pub async fn collect_body(body: ByteStream) -> Vec<u8> {
    body.collect().await.expect("read response body").into_bytes().to_vec()
}

/// Every key of a bucket, in listing order, following ListObjectsV2 continuation tokens.
pub async fn list_keys(client: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list {bucket}: {e:?}"));
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

/// Every file under `dir`, recursively, sorted; empty if `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The shard files of a drive: everything under its `data/` directory.
pub fn shard_files(drive: &Path) -> Vec<PathBuf> {
    files_under(&drive.join("data"))
}

/// Polls `condition` until it holds, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?}: {what}");
        thread::sleep(POLL_INTERVAL);
    }
}

// -------------------------------------------------------------------------------------------------
// Power-loss drives: lazyfs mounts (the `lazyfs` binary of tests/lazyfs) that keep unsynced writes
// in memory only and lose them when told to cut power.
// -------------------------------------------------------------------------------------------------

/// How long lazyfs may take to mount, or to store its durable state and exit once unmounted.
const LAZYFS_TIMEOUT: Duration = Duration::from_secs(60);
/// What lazyfs prints on stdout once its mount is ready.
const LAZYFS_MOUNTED_LINE: &str = "lazyfs mounted";
/// What lazyfs prints on stdout after storing its durable state, followed by its report.
const LAZYFS_UNMOUNTED_PREFIX: &str = "lazyfs unmounted: ";

/// The `lazyfs` binary: `$SOVEREIGN_LAZYFS_BIN`, else the one built next to `sovereign-s3`.
pub fn lazyfs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SOVEREIGN_LAZYFS_BIN") {
        return PathBuf::from(path);
    }
    let binary = server_binary().with_file_name("lazyfs");
    assert!(
        binary.exists(),
        "{} does not exist: run `cargo build --release --workspace` first, or set SOVEREIGN_LAZYFS_BIN",
        binary.display()
    );
    binary
}

/// Panics with what is missing unless FUSE mounts can be made: power-loss tests must fail, not
/// pass silently, on a machine that cannot run them.
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse does not exist: the power-loss tests need FUSE (a kernel with the fuse module; in a \
         container, the device passed through)"
    );
    let fusermount = Command::new("fusermount3").arg("-V").output();
    assert!(
        fusermount.is_ok_and(|output| output.status.success()),
        "fusermount3 is not installed: the power-loss tests need it (`apt-get install fuse3`; scripts/test.sh does)"
    );
}

/// When lazyfs makes creates, renames and deletes durable (its `--sync-model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncModel {
    /// Only a directory's own fsync makes its entries durable: POSIX's promise.
    Strict,
    /// Any fsync commits every earlier create, rename and delete: ext4 and XFS.
    Journal,
}

impl SyncModel {
    fn arg(self) -> &'static str {
        match self {
            SyncModel::Strict => "strict",
            SyncModel::Journal => "journal",
        }
    }
}

/// What a lazyfs instance reported when it exited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LazyfsReport {
    /// Whether the power was cut before the unmount.
    pub power_cut: bool,
    /// Files whose unsynced bytes the cut threw away.
    pub files_with_unsynced_data: usize,
    /// Directories whose unsynced entries the cut threw away.
    pub dirs_with_unsynced_entries: usize,
}

impl LazyfsReport {
    /// Parses the `key=value` words after [`LAZYFS_UNMOUNTED_PREFIX`].
    fn parse(words: &str) -> LazyfsReport {
        let mut report = LazyfsReport::default();
        for (key, value) in words.split_whitespace().filter_map(|word| word.split_once('=')) {
            let count = || value.parse().unwrap_or_else(|_| panic!("bad lazyfs report {words:?}"));
            match key {
                "power_cut" => report.power_cut = value == "yes",
                "files_with_unsynced_data" => report.files_with_unsynced_data = count(),
                "dirs_with_unsynced_entries" => report.dirs_with_unsynced_entries = count(),
                _ => {}
            }
        }
        report
    }
}

/// A running lazyfs mount of `backing` at `mountpoint`; unmounted (lazily if need be) on drop.
pub struct LazyMount {
    mountpoint: PathBuf,
    process: Option<Child>,
    lines: mpsc::Receiver<String>,
}

impl LazyMount {
    /// Mounts `backing` at `mountpoint` (both existing directories) and waits until it serves.
    pub fn mount(backing: &Path, mountpoint: &Path, sync_model: SyncModel) -> LazyMount {
        let mut process = Command::new(lazyfs_binary())
            .arg(backing)
            .arg(mountpoint)
            .args(["--sync-model", sync_model.arg()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn lazyfs");
        let stdout = process.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The receiver is gone once the test stopped listening: nothing to tell then.
                let _ = sender.send(line);
            }
        });
        let mut mount = LazyMount { mountpoint: mountpoint.to_owned(), process: Some(process), lines };
        let line = mount.next_line(LAZYFS_MOUNTED_LINE);
        assert_eq!(line, LAZYFS_MOUNTED_LINE, "unexpected lazyfs output at {}", mountpoint.display());
        mount
    }

    /// Where the filesystem is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power (SIGUSR1): every unsynced write is lost, every later request fails.
    pub fn cut_power(&self) {
        let process = self.process.as_ref().expect("lazyfs runs");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(process.id()).expect("pid fits in pid_t"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).expect("send SIGUSR1 to lazyfs");
    }

    /// Unmounts, waits until lazyfs has stored the durable state in the backing directory and
    /// exited, and returns its report.
    pub fn unmount(mut self) -> LazyfsReport {
        let status = Command::new("fusermount3").arg("-u").arg(&self.mountpoint).status().expect("run fusermount3");
        assert!(status.success(), "fusermount3 -u {} failed: {status}", self.mountpoint.display());
        let line = self.next_line(LAZYFS_UNMOUNTED_PREFIX);
        let report = LazyfsReport::parse(line.strip_prefix(LAZYFS_UNMOUNTED_PREFIX).unwrap_or_default());
        let mut process = self.process.take().expect("lazyfs runs");
        let exit = process.wait().expect("reap lazyfs");
        assert!(exit.success(), "lazyfs at {} exited with {exit}", self.mountpoint.display());
        report
    }

    /// The next stdout line that starts with `prefix`, skipping others; panics after
    /// [`LAZYFS_TIMEOUT`] or if lazyfs exits first.
    fn next_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + LAZYFS_TIMEOUT;
        loop {
            match self.lines.recv_timeout(POLL_INTERVAL) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) | Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Ok(_) | Err(RecvTimeoutError::Timeout) => {
                    panic!("lazyfs at {} printed no {prefix:?} within {LAZYFS_TIMEOUT:?}", self.mountpoint.display())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.process.take().and_then(|mut p| p.wait().ok());
                    panic!(
                        "lazyfs at {} exited before printing {prefix:?} (exit: {status:?}; its stderr is the test's)",
                        self.mountpoint.display()
                    )
                }
            }
        }
    }
}

impl Drop for LazyMount {
    fn drop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        // A test that failed midway: detach the mount even if something still uses it.
        let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mountpoint).status();
        let deadline = Instant::now() + LAZYFS_TIMEOUT;
        while matches!(process.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
        }
        let _ = process.kill();
        let _ = process.wait();
    }
}

impl Server {
    /// Starts a server over existing drive directories (lazyfs mount points, or the backing
    /// directories after a power cut), with extra command-line flags. The log goes to a new
    /// temporary directory; the drives are left in place on drop.
    pub fn start_on(drives: &[PathBuf], extra_args: &[&str]) -> Server {
        let root = tempfile::Builder::new().prefix("sovereign-e2e-log-").tempdir().expect("temporary log directory");
        let mut server = Server {
            root,
            drives: drives.to_vec(),
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            extra_env: Vec::new(),
            launcher: Vec::new(),
            process: None,
            url: String::new(),
            tls_cert: None,
        };
        server.spawn();
        server
    }
}
