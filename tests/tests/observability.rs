//! Health probes, metric values, the scrape token, the audit log and JSON logs, observed from
//! outside on the real binary.

use std::fs;
use std::time::Duration;

use sovereign_e2e::{curl, wait_until, Server, ROOT_PASSWORD, ROOT_USER};

/// The value of the sample `series` (name with its labels, exactly as exported), if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn readiness_follows_the_write_quorum_and_liveness_stays() {
    let server = Server::start(4);
    let probe = |path: &str| curl(&[&format!("{}{path}", server.url())]);
    assert_eq!(probe("/health/live").status, 200);
    assert_eq!(probe("/health/ready").status, 200);
    let head = curl(&["-I", &format!("{}/health/ready", server.url())]);
    assert_eq!(head.status, 200, "HEAD works for probes too");

    // 2+2: the write quorum is 3 drives. One lost drive leaves the set writable.
    fs::remove_dir_all(&server.dirs()[3]).expect("remove drive 4");
    assert_eq!(probe("/health/ready").status, 200, "3 of 4 drives still reach the write quorum");
    fs::remove_dir_all(&server.dirs()[2]).expect("remove drive 3");
    let ready = probe("/health/ready");
    assert_eq!(ready.status, 503, "2 of 4 drives cannot take writes: {}", ready.text());
    assert_eq!(probe("/health/live").status, 200, "a live process stays live");
}

#[test]
fn metrics_count_requests_errors_and_bytes_behind_the_token() {
    let token = "scrape-token-0123";
    let server = Server::start_with_args(4, &["--metrics-token", token]);
    let metrics_url = format!("{}/metrics", server.url());
    assert_eq!(curl(&[&metrics_url]).status, 401, "no token");
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong", &metrics_url]).status, 401, "wrong token");

    let bucket = format!("{}/counted", server.url());
    assert_eq!(server.signed_curl(&["-X", "PUT", &bucket]).status, 200);
    let body = "x".repeat(5000);
    assert_eq!(server.signed_curl(&["-X", "PUT", "--data-binary", &body, &format!("{bucket}/object")]).status, 200);
    assert_eq!(server.signed_curl(&[&format!("{bucket}/object")]).status, 200);
    server.signed_curl(&[&format!("{bucket}/missing")]).assert_error(404, "NoSuchKey");

    let scrape = curl(&["-H", &format!("Authorization: Bearer {token}"), &metrics_url]);
    assert_eq!(scrape.status, 200);
    let text = scrape.text();
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} not exported:\n{text}"));
    assert_eq!(value(r#"sovereign_s3_requests_total{api="PutObject",status_class="2xx"}"#), 1.0);
    assert_eq!(value(r#"sovereign_s3_requests_total{api="GetObject",status_class="2xx"}"#), 1.0);
    assert_eq!(value(r#"sovereign_s3_requests_total{api="GetObject",status_class="4xx"}"#), 1.0);
    assert_eq!(value(r#"sovereign_s3_errors_total{code="NoSuchKey"}"#), 1.0);
    assert_eq!(value(r#"sovereign_s3_request_duration_seconds_count{api="GetObject"}"#), 2.0);
    assert!(value("sovereign_s3_received_bytes_total") >= 5000.0);
    assert!(value("sovereign_s3_sent_bytes_total") >= 5000.0);
    assert_eq!(value("sovereign_s3_requests_in_flight"), 0.0);
    let drive = server.dirs()[0].display().to_string();
    assert_eq!(value(&format!(r#"sovereign_s3_drive_online{{drive="{drive}"}}"#)), 1.0);
    assert_eq!(value(r#"sovereign_s3_set_drives_online{set="0"}"#), 4.0);
}

#[test]
fn the_audit_log_has_one_entry_per_request_and_no_secrets() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("audit.log");
    let server = Server::start_with_args(4, &["--audit-log", path.to_str().expect("utf-8 path")]);
    let bucket = format!("{}/audited", server.url());
    assert_eq!(server.signed_curl(&["-X", "PUT", &bucket]).status, 200);
    let put = server.signed_curl(&["-X", "PUT", "--data-binary", "0123456789", &format!("{bucket}/dir/key")]);
    assert_eq!(put.status, 200);
    let missing = server.signed_curl(&[&format!("{bucket}/nothing")]);
    missing.assert_error(404, "NoSuchKey");
    let unsigned = curl(&[&format!("{bucket}/dir/key")]);
    unsigned.assert_error(403, "AccessDenied");

    let entries = || -> Vec<serde_json::Value> {
        fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each audit line is one JSON object"))
            .collect()
    };
    wait_until("4 audit entries", Duration::from_secs(10), || entries().len() >= 4);
    let entries = entries();
    assert_eq!(entries.len(), 4, "{entries:#?}");
    let by_id = |reply: &sovereign_e2e::HttpReply| {
        let id = reply.header("x-amz-request-id").expect("request id header");
        entries.iter().find(|e| e["request_id"] == id).unwrap_or_else(|| panic!("no entry for {id}: {entries:#?}"))
    };

    let entry = by_id(&put);
    assert_eq!(entry["principal"], ROOT_USER);
    assert_eq!(entry["api"], "PutObject");
    assert_eq!(entry["bucket"], "audited");
    assert_eq!(entry["key"], "dir/key");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["bytes_in"], 10);
    assert_eq!(entry["source_ip"], "127.0.0.1");
    assert!(entry["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 UTC time: {entry}");

    let entry = by_id(&missing);
    assert_eq!((entry["status"].as_u64(), entry["error_code"].as_str()), (Some(404), Some("NoSuchKey")));
    let entry = by_id(&unsigned);
    assert_eq!((entry["status"].as_u64(), entry["error_code"].as_str()), (Some(403), Some("AccessDenied")));
    assert!(entry["principal"].is_null(), "an unsigned request has no principal: {entry}");

    let text = fs::read_to_string(&path).expect("audit log");
    assert!(!text.contains(ROOT_PASSWORD) && !text.contains("Signature="), "no secrets in the audit log");
}

#[test]
fn json_logs_are_json_and_carry_no_secrets() {
    // At debug level, where every refused request is logged.
    let mut server = Server::start_with_env(4, &["--log-format", "json"], &[("SOVEREIGN_S3_LOG", "debug")]);
    let bucket = format!("{}/logged", server.url());
    assert_eq!(server.signed_curl(&["-X", "PUT", &bucket]).status, 200);
    // A bad signature and a lost drive make the server log warnings about requests.
    let forged = curl(&[
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{ROOT_USER}:not-the-secret-key"),
        "-H",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        &format!("{bucket}/key"),
    ]);
    forged.assert_error(403, "SignatureDoesNotMatch");
    fs::remove_dir_all(&server.dirs()[0]).expect("remove a drive");
    assert_eq!(server.signed_curl(&["-X", "PUT", "--data-binary", "data", &format!("{bucket}/key")]).status, 200);
    server.kill();

    let log = server.log();
    assert!(log.contains("request refused"), "expected the refused request in the log:\n{log}");
    for line in log.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
    }
    for secret in [ROOT_PASSWORD, "not-the-secret-key", "Signature=", "Credential="] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn buckets_named_health_and_metrics_are_s3_when_signed() {
    let server = Server::start(4);
    let s3 = server.client();
    for bucket in ["health", "metrics"] {
        s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
    }
    for (bucket, key) in [("health", "live"), ("health", "ready"), ("metrics", "m")] {
        s3.put_object().bucket(bucket).key(key).body(key.as_bytes().to_vec().into()).send().await.expect("put");
        let body = s3.get_object().bucket(bucket).key(key).send().await.expect("get").body.collect().await;
        assert_eq!(body.expect("body").into_bytes().as_ref(), key.as_bytes());
    }
    let listed = s3.list_objects_v2().bucket("metrics").send().await.expect("list the metrics bucket");
    assert_eq!(listed.contents().len(), 1);
    s3.head_bucket().bucket("metrics").send().await.expect("head the metrics bucket");
    // Unsigned, the same paths are still the probes and the scrape endpoint.
    assert_eq!(curl(&[&format!("{}/health/live", server.url())]).text(), "live");
    assert!(curl(&[&format!("{}/metrics", server.url())]).text().contains("sovereign_s3_requests_total"));
}
