//! Admission control, observed on the real binary with raw sockets: idle and slow connections
//! are closed, the connection cap holds without the accept loop spinning, running out of file
//! descriptors neither spins nor floods the log, and a request the client abandons (an HTTP/2
//! stream reset, a dropped HTTP/1.1 connection) is still counted and audited.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use bytes::Bytes;
use sovereign_e2e::*;

/// How long a test waits for the server to close a connection before calling it open.
const CLOSE_WAIT: Duration = Duration::from_secs(15);
/// The window over which the server's CPU time is measured while it is under pressure.
const CPU_WINDOW: Duration = Duration::from_secs(5);
/// CPU time the server may use in that window: a spinning accept loop uses all of it.
const CPU_BUDGET_SECS: f64 = 2.0;
/// The server's log lines about failed accepts that are tolerated (one per minute is logged).
const MAX_ACCEPT_LOG_LINES: usize = 5;
/// A declared body length larger than anything a test sends.
const DECLARED_BODY_BYTES: usize = 1 << 20;

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect to the server");
    stream.set_read_timeout(Some(CLOSE_WAIT)).expect("read timeout");
    stream
}

/// Reads until the server closes the connection; returns what it sent and how long that took,
/// or panics if it is still open after [`CLOSE_WAIT`].
fn read_until_closed(stream: &mut TcpStream, what: &str) -> (String, Duration) {
    let (received, took) = read_bytes_until_closed(stream, what);
    (String::from_utf8_lossy(&received).into_owned(), took)
}

fn read_bytes_until_closed(stream: &mut TcpStream, what: &str) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: still open after {:?}", started.elapsed())
            }
            Err(e) => panic!("{what}: read failed: {e}"),
        }
    }
    (received, started.elapsed())
}

/// Reads until the server closes the connection or has sent a whole S3 error body.
fn read_error_or_close(stream: &mut TcpStream, what: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("</Error>") {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: no answer and still open after {:?}", started.elapsed())
            }
            Err(e) => panic!("{what}: read failed: {e}"),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// CPU time (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at field 3, the state;
    // utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("command name in /proc/PID/stat") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().expect("run getconf CLK_TCK");
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("CLK_TCK is a number")
}

/// CPU time the server uses over [`CPU_WINDOW`].
fn cpu_used_over_window(server: &Server) -> f64 {
    let before = cpu_seconds(server.pid());
    thread::sleep(CPU_WINDOW);
    cpu_seconds(server.pid()) - before
}

/// Sockets the process holds open (the listener and its connections).
fn open_sockets(pid: u32) -> usize {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    entries
        .map_while(Result::ok)
        .filter(|entry| fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:")))
        .count()
}

/// Opens `count` TCP connections that send nothing. Connections beyond what the server
/// accepts wait in its listen backlog, which the kernel completes the handshake for.
fn open_idle_connections(server: &Server, count: usize) -> Vec<TcpStream> {
    (0..count).map(|_| connect(server)).collect()
}

async fn presigned_put(s3: &aws_sdk_s3::Client, key: &str) -> PresignedRequest {
    let valid = PresigningConfig::expires_in(Duration::from_secs(600)).expect("presigning config");
    s3.put_object().bucket(BUCKET).key(key).presigned(valid).await.expect("presign PUT")
}

/// The path and query of a presigned URL.
fn path_and_query(request: &PresignedRequest) -> &str {
    let uri = request.uri();
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    uri[after_scheme..].find('/').map_or("/", |i| &uri[after_scheme + i..])
}

/// Sends the head of an HTTP/1.1 presigned PUT declaring [`DECLARED_BODY_BYTES`], and `body`.
fn start_put(server: &Server, request: &PresignedRequest, body: &[u8]) -> TcpStream {
    let mut stream = connect(server);
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-length: {DECLARED_BODY_BYTES}\r\n",
        path_and_query(request),
        server.port()
    );
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send request head");
    stream.write_all(body).expect("send body");
    stream
}

#[test]
fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let server = Server::start_with_args(1, &["--header-timeout", "1"]);

    let mut silent = connect(&server);
    let (_, took) = read_until_closed(&mut silent, "a connection that never sent a byte");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    let mut partial = connect(&server);
    partial.write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n").expect("send part of a head");
    let (_, took) = read_until_closed(&mut partial, "a connection that sent half a request head");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    let mut kept_alive = connect(&server);
    kept_alive.write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n").expect("send a request");
    let (reply, took) = read_until_closed(&mut kept_alive, "a kept-alive connection after its request");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // A connection that sends one header byte per half second never completes its head.
    let mut trickle = connect(&server);
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n" {
        if trickle.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(closed, "a head sent a byte every 500 ms was still accepted after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(6), "closed only after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stalled_request_body_fails_with_request_timeout() {
    let server = Server::start_with_args(1, &["--body-timeout", "2"]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let put = presigned_put(&s3, "stalled").await;
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = start_put(&server, &put, b"x");
        let (reply, took) = read_error_or_close(&mut stream, "a PUT whose body stalled after one byte");
        (server, reply, took)
    });
    let (server, reply, took) = reply.await.expect("stalled PUT");
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 400"), "{reply}");
    if !reply.is_empty() {
        assert!(reply.contains("<Code>RequestTimeout</Code>"), "{reply}");
    }
    let missing = server.client().head_object().bucket(BUCKET).key("stalled").send().await;
    assert_s3_error(missing, 404, &[]);
}

#[tokio::test]
async fn at_the_connection_cap_the_server_waits_without_spinning() {
    let server = Server::start_with_args(1, &["--max-connections", "20", "--header-timeout", "2"]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let pid = server.pid();
    // The listener and the SDK's kept-alive connection (one of the 20).
    let baseline = open_sockets(pid);
    let held = open_idle_connections(&server, 100);
    let mut most_sockets = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        most_sockets = most_sockets.max(open_sockets(pid));
        thread::sleep(Duration::from_millis(100));
    }
    // At most 20 connections besides the listener, and the cap was reached.
    assert!(
        (15..=baseline + 20).contains(&most_sockets),
        "the server held {most_sockets} sockets (baseline {baseline})"
    );
    let cpu = cpu_used_over_window(&server);
    assert!(cpu < CPU_BUDGET_SECS, "{cpu:.2} s of CPU in {CPU_WINDOW:?} at the connection cap");
    assert!(open_sockets(pid) <= baseline + 20, "the cap held while the header timeout rotated connections");

    drop(held);
    // A new client: the old one's pooled connection was closed by the header timeout.
    let s3 = server.client();
    let started = Instant::now();
    put_bytes(&s3, BUCKET, "after-the-flood", b"served").await;
    assert_eq!(get_bytes(&s3, BUCKET, "after-the-flood").await, b"served");
    assert!(started.elapsed() < Duration::from_secs(10), "served after {:?}", started.elapsed());
}

#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_pauses_and_logs_little() {
    // 256 descriptors, and a connection cap the descriptors cannot honour: accepts fail with
    // EMFILE once the descriptors run out.
    let server = Server::start_under(
        &["prlimit", "--nofile=256:256", "--"],
        1,
        &["--max-connections", "1000", "--header-timeout", "5"],
        &[],
    );
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let held = open_idle_connections(&server, 400);
    thread::sleep(Duration::from_secs(1));
    let cpu = cpu_used_over_window(&server);
    let accept_lines = server.log().lines().filter(|line| line.contains("accept failed")).count();
    assert!(cpu < CPU_BUDGET_SECS, "{cpu:.2} s of CPU in {CPU_WINDOW:?} at the descriptor limit");
    assert!(accept_lines >= 1, "the failed accepts were not logged:\n{}", server.log());
    assert!(accept_lines <= MAX_ACCEPT_LOG_LINES, "{accept_lines} log lines about failed accepts");

    drop(held);
    let s3 = server.client();
    let started = Instant::now();
    put_bytes(&s3, BUCKET, "after-emfile", b"still serving").await;
    assert_eq!(get_bytes(&s3, BUCKET, "after-emfile").await, b"still serving");
    assert!(started.elapsed() < Duration::from_secs(15), "served after {:?}", started.elapsed());
    let accept_lines = server.log().lines().filter(|line| line.contains("accept failed")).count();
    assert!(accept_lines <= MAX_ACCEPT_LOG_LINES, "{accept_lines} log lines about failed accepts");
}

#[test]
fn the_default_connection_cap_stays_below_the_descriptor_limit() {
    let server = Server::start_under(&["prlimit", "--nofile=256:256", "--"], 1, &[], &[]);
    // 256 less the reserve: 64, and 32 for the one drive.
    let log = server.log();
    assert!(log.lines().any(|line| line.contains("admission limits") && line.contains("max_connections=160")), "{log}");
}

/// The value of an unlabelled sample in a Prometheus exposition.
fn gauge(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn requests_in_flight(server: &Server) -> f64 {
    let scrape = curl(&[&format!("{}/metrics", server.url())]);
    gauge(&scrape.text(), "sovereign_s3_requests_in_flight").expect("in-flight gauge exported")
}

/// Audit entries for `key`, once the audit writer has flushed them.
fn audit_entries(path: &Path, key: &str) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|line| line.contains(&format!("\"key\":\"{key}\""))).map(str::to_owned).collect()
}

// Multi-threaded: the HTTP/2 connection task must run while the test thread waits on curl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_client_abandons_are_counted_and_audited() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let audit = dir.path().join("audit.log");
    let server = Server::start_with_args(1, &["--audit-log", audit.to_str().expect("utf-8 path")]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;

    // HTTP/2 (cleartext, prior knowledge): a PUT that sends one byte, then resets its stream.
    let put = presigned_put(&s3, "reset-h2").await;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method("PUT")
        .uri(put.uri())
        .header("host", format!("127.0.0.1:{}", server.port()))
        .header("content-length", DECLARED_BODY_BYTES.to_string());
    for (name, value) in put.headers() {
        request = request.header(name, value);
    }
    let mut client = client.ready().await.expect("HTTP/2 connection ready");
    let (_response, mut stream) = client.send_request(request.body(()).expect("request"), false).expect("send PUT");
    stream.send_data(Bytes::from_static(b"x"), false).expect("send one byte");
    wait_until("the PUT is in flight", Duration::from_secs(10), || requests_in_flight(&server) == 1.0);
    stream.send_reset(h2::Reason::CANCEL);
    wait_until("the reset PUT is no longer in flight", Duration::from_secs(10), || requests_in_flight(&server) == 0.0);
    wait_until("the reset PUT is audited", Duration::from_secs(10), || !audit_entries(&audit, "reset-h2").is_empty());
    // Dropped by hyper on the reset: 499; or, when the handler saw the reset body first, the
    // 400 IncompleteBody it answered.
    let entry = &audit_entries(&audit, "reset-h2")[0];
    let status_ok = entry.contains("\"status\":499") || entry.contains("\"status\":400");
    assert!(status_ok && entry.contains("\"api\":\"PutObject\""), "{entry}");
    drop(client);
    driver.abort();

    // HTTP/1.1: a PUT whose client closes the connection after one byte. The handler may see
    // the truncated body first (400 IncompleteBody) or be dropped with the connection (499).
    let put = presigned_put(&s3, "closed-h1").await;
    let stream = start_put(&server, &put, b"x");
    wait_until("the PUT is in flight", Duration::from_secs(10), || requests_in_flight(&server) == 1.0);
    drop(stream);
    wait_until("the closed PUT is no longer in flight", Duration::from_secs(10), || requests_in_flight(&server) == 0.0);
    wait_until("the closed PUT is audited", Duration::from_secs(10), || !audit_entries(&audit, "closed-h1").is_empty());
    let entry = &audit_entries(&audit, "closed-h1")[0];
    assert!(entry.contains("\"status\":499") || entry.contains("\"status\":400"), "{entry}");

    let scrape = curl(&[&format!("{}/metrics", server.url())]).text();
    let abandoned = gauge(&scrape, r#"sovereign_s3_requests_total{api="PutObject",status_class="4xx"}"#);
    assert_eq!(abandoned, Some(2.0), "{scrape}");
    put_bytes(&s3, BUCKET, "reset-h2", b"the server still serves").await;
}

#[tokio::test]
async fn past_the_cap_on_requests_in_flight_requests_get_slow_down() {
    let server = Server::start_with_args(1, &["--max-requests-in-flight", "1"]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let put = presigned_put(&s3, "holding-the-slot").await;
    let holder = start_put(&server, &put, b"x");
    wait_until("the PUT is in flight", Duration::from_secs(10), || requests_in_flight(&server) == 1.0);

    let refused = server.signed_curl(&[&format!("{}/{BUCKET}?list-type=2", server.url())]);
    refused.assert_error(503, "SlowDown");
    let request_id = refused.header("x-amz-request-id").expect("request id");
    assert!(refused.text().contains(&format!("<RequestId>{request_id}</RequestId>")), "{}", refused.text());
    // Probes are not S3 requests and are never refused.
    assert_eq!(curl(&[&format!("{}/health/ready", server.url())]).status, 200);

    drop(holder);
    wait_until("the slot is free", Duration::from_secs(10), || requests_in_flight(&server) == 0.0);
    assert_eq!(server.signed_curl(&[&format!("{}/{BUCKET}?list-type=2", server.url())]).status, 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_disconnected() {
    const OBJECT_BYTES: usize = 32 * MIB;
    let server = Server::start_with_args(1, &["--body-timeout", "2"]);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    put_bytes(&s3, BUCKET, "large", &random_bytes(OBJECT_BYTES)).await;
    let valid = PresigningConfig::expires_in(Duration::from_secs(600)).expect("presigning config");
    let get = s3.get_object().bucket(BUCKET).key("large").presigned(valid).await.expect("presign GET");
    let received = tokio::task::spawn_blocking(move || {
        let mut stream = connect(&server);
        let head = format!("GET {} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n\r\n", path_and_query(&get), server.port());
        stream.write_all(head.as_bytes()).expect("send GET");
        // Far more than the socket buffers hold is left unread for longer than the timeout.
        thread::sleep(Duration::from_secs(8));
        let (reply, _) = read_bytes_until_closed(&mut stream, "a GET whose client stopped reading");
        reply.len()
    });
    let received = received.await.expect("reader");
    assert!(received > 0 && received < OBJECT_BYTES, "received {received} of {OBJECT_BYTES} bytes");
}
