//! Traces: the server exports one span per S3 request, with storage child spans, over
//! OTLP/HTTP to a collector, continuing the client's W3C trace context. The collector here is
//! an in-process HTTP endpoint that decodes the protobuf export requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use sovereign_e2e::Server;

/// Accepts OTLP/HTTP export requests on 127.0.0.1 and forwards their spans.
fn start_collector() -> (String, mpsc::Receiver<Vec<Span>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
    let url = format!("http://{}", listener.local_addr().expect("collector address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
            let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("decode OTLP export request");
            let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect();
            if tx.send(spans).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()?;
    match value {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[test]
fn requests_are_traced_with_the_clients_trace_context() {
    let (collector, spans) = start_collector();
    let server = Server::start_with_args(4, &["--otlp-endpoint", &collector]);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01");
    let bucket = format!("{}/traced", server.url());
    assert_eq!(server.signed_curl(&["-X", "PUT", &bucket]).status, 200);
    let object = format!("{bucket}/key");
    let put = server.signed_curl(&["-X", "PUT", "-H", &traceparent, "--data-binary", "hello", &object]);
    assert_eq!(put.status, 200, "{}", put.text());

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<Span> = Vec::new();
    let request = loop {
        let found = seen.iter().find(|s| hex::encode(&s.trace_id) == trace_id && s.name == "S3 PutObject").cloned();
        if let Some(span) = found {
            if seen.iter().any(|s| s.parent_span_id == span.span_id && s.name.starts_with("storage.")) {
                break span;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no PutObject span with storage children; got {:?}",
            seen.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        if let Ok(batch) = spans.recv_timeout(Duration::from_millis(500)) {
            seen.extend(batch);
        }
    };
    assert_eq!(hex::encode(&request.parent_span_id), "00f067aa0ba902b7", "the client's span is the parent");
    assert_eq!(attribute(&request, "s3.api").as_deref(), Some("PutObject"));
    assert_eq!(attribute(&request, "s3.bucket").as_deref(), Some("traced"));
    assert_eq!(attribute(&request, "s3.key").as_deref(), Some("key"));
    assert_eq!(attribute(&request, "http.request.method").as_deref(), Some("PUT"));
    assert_eq!(attribute(&request, "http.response.status_code").as_deref(), Some("200"));
    let exported = format!("{:?}", seen.iter().map(|s| &s.attributes).collect::<Vec<_>>());
    assert!(!exported.contains("Signature=") && !exported.contains("Credential="), "spans must not carry credentials");
}
