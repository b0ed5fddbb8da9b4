//! SSE-KMS and SSE-S3 with keys in a real OpenBao (transit engine): the gateway logs in with
//! AppRole under the least-privilege policy of deploy/openbao/ or with a token; unknown and
//! forbidden keys get AWS's KMS errors; rotation keeps objects readable; OpenBao killed, then
//! back sealed, then unsealed: requests fail fast with a KMS 5xx and recover by themselves;
//! destroying a bucket's key makes its objects unreadable (crypto-shredding).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
#[path = "../openbao.rs"]
mod openbao;

use openbao::OpenBao;
use sovereign_e2e::*;

/// The transit key the server uses for SSE-S3 and for SSE-KMS without a key id.
const DEFAULT_KEY: &str = "sovereign-s3";
/// An encrypted request while OpenBao is down must fail within this time.
const FAIL_FAST: Duration = Duration::from_secs(3);
/// Data-key cache lifetime in the crypto-shredding test.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Slack on top of the cache TTL for the sweep and the request.
const SWEEP_MARGIN: Duration = Duration::from_secs(2);
/// Time allowed for the service to recover once OpenBao is back.
const RECOVERY: Duration = Duration::from_secs(20);

fn gateway_policy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/openbao/sovereign-s3-gateway.hcl")
}

/// A server using `bao` with a 500 ms KMS timeout and the data-key cache off, or on with a
/// TTL of `cache_ttl_secs`.
fn start_server(bao: &OpenBao, auth: &[(&str, &str)], cache_ttl_secs: Option<&str>) -> Server {
    let addr = bao.addr();
    let mut env = vec![("SOVEREIGN_S3_KMS", "openbao"), ("SOVEREIGN_S3_OPENBAO_ADDR", addr.as_str())];
    env.extend_from_slice(auth);
    let cache = match cache_ttl_secs {
        Some(ttl) => ["--kms-cache-ttl-secs", ttl],
        None => ["--kms-cache-entries", "0"],
    };
    Server::start_with_env(4, &["--kms-timeout-ms", "500", cache[0], cache[1]], &env)
}

async fn put_kms(s3: &Client, key: &str, kms_key: Option<&str>, data: &[u8]) -> Result<(), String> {
    let mut put = s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .server_side_encryption(ServerSideEncryption::AwsKms);
    if let Some(kms_key) = kms_key {
        put = put.ssekms_key_id(kms_key);
    }
    put.send().await.map(|_| ()).map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn sse_kms_under_the_gateway_policy_with_approle() {
    let bao = OpenBao::start();
    for key in [DEFAULT_KEY, "sovereign-s3-finance", "not-for-the-gateway"] {
        bao.create_key(key);
    }
    let (role_id, secret_id) = bao.approle(&gateway_policy(), "10m");
    let server = start_server(
        &bao,
        &[("SOVEREIGN_S3_OPENBAO_ROLE_ID", &role_id), ("SOVEREIGN_S3_OPENBAO_SECRET_ID", &secret_id)],
        None,
    );
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;

    let data = random_bytes(300 * 1024);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("finance")
        .body(ByteStream::from(data.clone()))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("sovereign-s3-finance")
        .send()
        .await
        .expect("SSE-KMS put");
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(put.ssekms_key_id(), Some("sovereign-s3-finance"));
    assert_ne!(put.e_tag(), Some(etag_of(&data).as_str()), "SSE-KMS ETags are not the plaintext MD5");
    let get = s3.get_object().bucket(BUCKET).key("finance").range("bytes=65530-200000").send().await.expect("get");
    assert_eq!(get.ssekms_key_id(), Some("sovereign-s3-finance"));
    assert_same_bytes(&collect_body(get.body).await, &data[65530..=200000], "SSE-KMS range");

    let s3_data = random_bytes(1000);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("sse-s3")
        .body(ByteStream::from(s3_data.clone()))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .expect("SSE-S3 put");
    assert_eq!(put.e_tag(), Some(etag_of(&s3_data).as_str()));
    assert_same_bytes(&get_bytes(&s3, BUCKET, "sse-s3").await, &s3_data, "SSE-S3 under the default transit key");

    let unknown = put_kms(&s3, "unknown", Some("sovereign-s3-missing"), b"x").await;
    assert!(unknown.as_ref().is_err_and(|e| e.contains("KMS.NotFoundException")), "{unknown:?}");
    let forbidden = put_kms(&s3, "forbidden", Some("not-for-the-gateway"), b"x").await;
    assert!(forbidden.as_ref().is_err_and(|e| e.contains("KMS.AccessDeniedException")), "{forbidden:?}");
    for key in ["unknown", "forbidden"] {
        assert_s3_error(s3.head_object().bucket(BUCKET).key(key).send().await, 404, &[]);
    }

    // Rotation: old objects stay readable, new ones use the new version.
    bao.run(&["write", "-f", "transit/keys/sovereign-s3-finance/rotate"]);
    assert_same_bytes(&get_bytes(&s3, BUCKET, "finance").await, &data, "readable after rotation");
    put_kms(&s3, "after-rotation", Some("sovereign-s3-finance"), &data).await.expect("put after rotation");
    assert_same_bytes(&get_bytes(&s3, BUCKET, "after-rotation").await, &data, "new version");
}

#[tokio::test]
async fn openbao_down_fails_fast_and_the_service_recovers() {
    let mut bao = OpenBao::start();
    bao.create_key(DEFAULT_KEY);
    let token = bao.root_token().to_owned();
    let server = start_server(&bao, &[("SOVEREIGN_S3_OPENBAO_TOKEN", &token)], None);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let data = random_bytes(200 * 1024);
    put_kms(&s3, "before", None, &data).await.expect("put while OpenBao is up");

    bao.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let get = s3.get_object().bucket(BUCKET).key("before").send().await;
        let error = assert_s3_error(get, 503, &["KMS.KMSInternalException", "KMS.DependencyTimeoutException"]);
        assert!(started.elapsed() < FAIL_FAST, "took {:?}: {error:?}", started.elapsed());
        let started = Instant::now();
        let put = put_kms(&s3, "during", None, &data).await;
        assert!(put.as_ref().is_err_and(|e| e.contains("KMS.")), "{put:?}");
        assert!(started.elapsed() < FAIL_FAST, "put took {:?}", started.elapsed());
    }
    assert_s3_error(s3.head_object().bucket(BUCKET).key("during").send().await, 404, &[]);
    put_bytes(&s3, BUCKET, "plain", b"unencrypted requests are served").await;

    bao.restart_sealed();
    let get = s3.get_object().bucket(BUCKET).key("before").send().await;
    assert_s3_error(get, 503, &["KMS.KMSInternalException"]);
    bao.unseal();
    let deadline = Instant::now() + RECOVERY;
    loop {
        match s3.get_object().bucket(BUCKET).key("before").send().await {
            Ok(out) => {
                assert_same_bytes(&collect_body(out.body).await, &data, "after recovery");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                assert_eq!(status, Some(503), "only KMS errors while recovering: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within {RECOVERY:?}: {e:?}"),
        }
    }
    put_kms(&s3, "after", None, &data).await.expect("put after recovery");
}

#[tokio::test]
async fn destroying_a_bucket_key_shreds_its_objects() {
    let bao = OpenBao::start();
    bao.create_key(DEFAULT_KEY);
    bao.create_key("sovereign-s3-shredded");
    let token = bao.root_token().to_owned();
    let server = start_server(&bao, &[("SOVEREIGN_S3_OPENBAO_TOKEN", &token)], Some(&CACHE_TTL.as_secs().to_string()));
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let keys = ["a", "b", "c"];
    for key in keys {
        put_kms(&s3, key, Some("sovereign-s3-shredded"), &random_bytes(150 * 1024)).await.expect("put");
        assert!(s3.get_object().bucket(BUCKET).key(key).send().await.is_ok());
    }
    put_kms(&s3, "other", None, b"kept").await.expect("put under the default key");
    bao.run(&["delete", "transit/keys/sovereign-s3-shredded"]);
    // Cached data keys may serve reads until their TTL ends, and not after.
    let deleted = Instant::now();
    let deadline = deleted + CACHE_TTL + SWEEP_MARGIN;
    // Each object's data key was cached by its own request, so each expires on its own.
    for key in keys {
        while s3.get_object().bucket(BUCKET).key(key).send().await.is_ok() {
            assert!(Instant::now() < deadline, "a cached key outlived its TTL");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for key in keys {
        let get = s3.get_object().bucket(BUCKET).key(key).send().await;
        assert_s3_error(get, 400, &["KMS.NotFoundException"]);
    }
    assert_eq!(get_bytes(&s3, BUCKET, "other").await, b"kept");
}

/// Runs `sovereign-s3 admin kms rewrap` as root with `extra` arguments: its JSON lines, or
/// its failure.
fn rewrap(server: &Server, extra: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let out = std::process::Command::new(server_binary())
        .args(["admin", "--endpoint-url", server.url(), "kms", "rewrap"])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", ROOT_USER)
        .env("AWS_SECRET_ACCESS_KEY", ROOT_PASSWORD)
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .map_err(|e| format!("run the admin command: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().map(|line| serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))).collect()
}

/// After a rotation, the bulk rewrap reseals every stored data key under the key's latest
/// version, in batches, so that old versions can be retired (`min_decryption_version`) with
/// every object still readable; before the rewrap, retiring them makes the objects unreadable.
/// Running it again changes nothing.
#[tokio::test]
async fn rewrapped_objects_survive_retiring_old_key_versions() {
    const KEY: &str = "sovereign-s3-rotating";
    let bao = OpenBao::start();
    bao.create_key(DEFAULT_KEY);
    bao.create_key(KEY);
    let token = bao.root_token().to_owned();
    let server = start_server(&bao, &[("SOVEREIGN_S3_OPENBAO_TOKEN", &token)], None);
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let objects: Vec<(String, Vec<u8>)> =
        (0..5).map(|i| (format!("doc-{i}"), random_bytes(1000 + i * 70_000))).collect();
    for (key, data) in &objects {
        put_kms(&s3, key, Some(KEY), data).await.expect("put");
    }
    put_bytes(&s3, BUCKET, "plain", b"not encrypted").await;
    bao.run(&["write", "-f", &format!("transit/keys/{KEY}/rotate")]);
    let retire = |version: &str| {
        bao.run(&["write", &format!("transit/keys/{KEY}/config"), &format!("min_decryption_version={version}")])
    };

    // Retiring version 1 before the rewrap: the objects cannot be read (the check is real).
    retire("2");
    let before = s3.get_object().bucket(BUCKET).key("doc-0").send().await;
    assert_s3_error(before, 400, &["KMS.InvalidCiphertextException"]);
    retire("1");

    // Batches of 2 versions: the walk goes on from each batch's cursor.
    let pages = rewrap(&server, &["--limit", "2"]).expect("rewrap");
    assert!(pages.len() >= 3, "batches of 2 over 6 versions: {pages:?}");
    let total = |field: &str| pages.iter().map(|p| p[field].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(total("rewrapped"), objects.len() as u64, "{pages:?}");
    assert!(pages.iter().all(|p| p["failures"].as_array().is_some_and(Vec::is_empty)), "{pages:?}");
    assert!(pages.last().is_some_and(|p| p["next"].is_null()));

    retire("2");
    for (key, data) in &objects {
        assert_same_bytes(&get_bytes(&s3, BUCKET, key).await, data, "readable under the latest key version only");
    }
    assert_eq!(get_bytes(&s3, BUCKET, "plain").await, b"not encrypted");
    let again = rewrap(&server, &[]).expect("rewrap again");
    let rewrapped: u64 = again.iter().map(|p| p["rewrapped"].as_u64().unwrap_or(0)).sum();
    let current: u64 = again.iter().map(|p| p["current"].as_u64().unwrap_or(0)).sum();
    assert_eq!((rewrapped, current), (0, objects.len() as u64), "{again:?}");
    // A cursor that no rewrap handed out is refused.
    assert!(rewrap(&server, &["--after", "bm90LWEtY3Vyc29y"]).is_err_and(|e| e.contains("400")));
}
