//! The admin API against its OpenAPI description (docs/admin-api.json): every operation the
//! document lists is called on the real server, and every answer's status must be one the
//! document gives for that operation and its JSON body must match the documented schema
//! (checked by walking the schema: $ref, allOf, type, required, properties, items, enum,
//! nullable). Also: refusals (non-admin callers, unsigned requests, oversized bodies, unknown
//! paths) answer JSON errors, the command line finds credentials in an aws profile, and the
//! system bucket and the admin prefix stay out of S3's way.

use std::collections::BTreeSet;

use serde_json::{json, Value};

#[path = "../admin.rs"]
mod admin;

use admin::*;
use sovereign_e2e::*;

fn document() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/admin-api.json");
    serde_json::from_slice(&std::fs::read(&path).expect("read docs/admin-api.json"))
        .expect("the OpenAPI document is JSON")
}

/// Checks `value` against `schema` (resolving `$ref` in `doc`).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/").ok_or(format!("unsupported $ref {reference}"))?;
        return validate(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().try_for_each(|s| validate(doc, s, value, at));
    }
    if value.is_null() && schema["nullable"] == json!(true) {
        return Ok(());
    }
    let fail = |what: &str| Err(format!("{at}: expected {what}, got {value}"));
    match schema["type"].as_str() {
        Some("object") => {
            let Some(object) = value.as_object() else { return fail("an object") };
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    return Err(format!("{at}: required property {name} missing in {value}"));
                }
            }
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    if let Some(v) = object.get(name) {
                        validate(doc, property, v, &format!("{at}.{name}"))?;
                    }
                }
            }
            Ok(())
        }
        Some("array") => {
            let Some(items) = value.as_array() else { return fail("an array") };
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| validate(doc, &schema["items"], item, &format!("{at}[{i}]")))
        }
        Some("string") => {
            let Some(text) = value.as_str() else { return fail("a string") };
            if let Some(allowed) = schema["enum"].as_array() {
                if !allowed.iter().any(|a| a == value) {
                    return fail(&format!("one of {allowed:?}"));
                }
            }
            if schema["format"] == "date-time" && !(text.len() >= 20 && text.as_bytes()[10] == b'T') {
                return fail("an RFC 3339 date-time");
            }
            Ok(())
        }
        Some("boolean") if !value.is_boolean() => fail("a boolean"),
        _ => Ok(()),
    }
}

/// The document's operations: (method, path template) -> operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if method != "parameters" {
                all.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

fn template_matches(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

/// Calls the admin API and checks the answer against the document.
struct Checker<'a> {
    server: &'a Server,
    doc: Value,
    seen: BTreeSet<String>,
}

impl Checker<'_> {
    fn call(&mut self, keys: &Keys, method: &str, path: &str, body: Option<&str>, expected: u16) -> Value {
        let reply = admin_http(self.server, keys, method, path, body);
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text());
        let (_, template, operation) = operations(&self.doc)
            .into_iter()
            .find(|(m, t, _)| m == method && template_matches(t, path))
            .unwrap_or_else(|| panic!("{method} {path} is not in the document"));
        let id = operation["operationId"].as_str().expect("operationId").to_owned();
        let documented = &operation["responses"][expected.to_string()];
        assert!(documented.is_object(), "{id} ({method} {template}) does not document status {expected}");
        let body =
            if reply.body.is_empty() { Value::Null } else { serde_json::from_slice(&reply.body).expect("JSON body") };
        let schema = &documented["content"]["application/json"]["schema"];
        if schema.is_object() {
            assert_eq!(reply.header("content-type"), Some("application/json"), "{id}");
            if let Err(e) = validate(&self.doc, schema, &body, &id) {
                panic!("{id} {expected}: {e}");
            }
        } else {
            assert!(reply.body.is_empty(), "{id} {expected} documents no body: {}", reply.text());
        }
        self.seen.insert(id);
        body
    }
}

#[test]
fn every_documented_operation_answers_as_the_openapi_document_says() {
    let server = Server::start(1);
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.0")), Some(true));
    let mut api = Checker { server: &server, doc, seen: BTreeSet::new() };
    let root = root();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    api.call(&root, "PUT", "/policies/p1", Some(policy), 201);
    api.call(&root, "PUT", "/policies/p1", Some(policy), 200);
    let malformed = api.call(
        &root,
        "PUT",
        "/policies/bad",
        Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":7}]}"#),
        400,
    );
    assert_eq!(malformed["code"], "MalformedPolicy");
    assert!(malformed["position"].as_str().is_some_and(|p| p.contains("Statement[0]")), "{malformed}");
    let not_json = api.call(&root, "PUT", "/policies/bad", Some("{\"Version\": "), 400);
    assert!(not_json["position"].as_str().is_some_and(|p| p.contains("line 1")), "{not_json}");
    api.call(&root, "PUT", "/policies/readonly", Some(policy), 409);
    api.call(&root, "GET", "/policies", None, 200);
    api.call(&root, "GET", "/policies/p1", None, 200);
    let builtin = api.call(&root, "GET", "/policies/readwrite", None, 200);
    assert_eq!(builtin["builtin"], true);
    api.call(&root, "GET", "/policies/nope", None, 404);

    let created = api.call(&root, "POST", "/users", Some(r#"{"name":"usr1","policies":["p1"]}"#), 201);
    assert!(created["secretKey"].as_str().is_some_and(|s| s.len() >= 8));
    api.call(&root, "POST", "/users", Some(r#"{"name":"usr1"}"#), 409);
    api.call(&root, "POST", "/users", Some(r#"{"name":"ab"}"#), 400);
    api.call(&root, "POST", "/users", Some(r#"{"name":"usr2","policies":["nope"]}"#), 404);
    api.call(&root, "POST", "/users", Some(r#"{"name":"usr2","unknown":1}"#), 400);
    api.call(&root, "GET", "/users", None, 200);
    api.call(&root, "GET", "/users/usr1", None, 200);
    api.call(&root, "GET", "/users/nope", None, 404);
    api.call(&root, "PUT", "/users/usr1/status", Some(r#"{"status":"disabled"}"#), 200);
    api.call(&root, "PUT", "/users/usr1/status", Some(r#"{"status":"bogus"}"#), 400);
    api.call(&root, "PUT", "/users/usr1/status", Some(r#"{"status":"enabled"}"#), 200);
    api.call(&root, "PUT", "/users/usr1/policies/readonly", None, 200);
    api.call(&root, "PUT", "/users/usr1/policies/nope", None, 404);
    api.call(&root, "DELETE", "/users/usr1/policies/readonly", None, 200);

    api.call(&root, "POST", "/groups", Some(r#"{"name":"g1","members":["usr1"],"policies":["p1"]}"#), 201);
    api.call(&root, "POST", "/groups", Some(r#"{"name":"g1"}"#), 409);
    api.call(&root, "GET", "/groups", None, 200);
    api.call(&root, "GET", "/groups/g1", None, 200);
    api.call(&root, "GET", "/groups/nope", None, 404);
    api.call(&root, "PUT", "/groups/g1/status", Some(r#"{"status":"disabled"}"#), 200);
    api.call(&root, "PUT", "/groups/g1/status", Some(r#"{"status":"enabled"}"#), 200);
    api.call(&root, "DELETE", "/groups/g1", None, 409);
    api.call(&root, "DELETE", "/groups/g1/members/usr1", None, 200);
    api.call(&root, "PUT", "/groups/g1/members/usr1", None, 200);
    api.call(&root, "PUT", "/groups/g1/members/nope", None, 404);
    api.call(&root, "PUT", "/groups/g1/policies/readonly", None, 200);
    api.call(&root, "DELETE", "/groups/g1/policies/readonly", None, 200);
    let in_use = api.call(&root, "DELETE", "/policies/p1", None, 409);
    assert_eq!(in_use["code"], "PolicyInUse");
    api.call(&root, "DELETE", "/policies/readonly", None, 409);

    let account = api.call(
        &root,
        "POST",
        "/service-accounts",
        Some(&format!(r#"{{"parent":"usr1","policy":{policy},"name":"ci","description":"deploys"}}"#)),
        201,
    );
    let key = account["accessKey"].as_str().expect("accessKey").to_owned();
    let bad =
        api.call(&root, "POST", "/service-accounts", Some(r#"{"parent":"usr1","policy":{"Statement":"x"}}"#), 400);
    assert_eq!(bad["code"], "MalformedPolicy");
    api.call(&root, "POST", "/service-accounts", Some(r#"{}"#), 400);
    api.call(&root, "POST", "/service-accounts", Some(r#"{"parent":"nope"}"#), 404);
    api.call(&root, "POST", "/service-accounts", Some(r#"{"parent":"usr1","expiresAt":"2001-01-01T00:00:00Z"}"#), 400);
    let listed = api.call(&root, "GET", "/service-accounts?parent=usr1", None, 200);
    assert_eq!(listed["serviceAccounts"].as_array().map(Vec::len), Some(1));
    api.call(&root, "GET", "/service-accounts", None, 200);
    api.call(&root, "GET", &format!("/service-accounts/{key}"), None, 200);
    api.call(&root, "GET", "/service-accounts/NOPE0000000000000000", None, 404);
    let updated = api.call(
        &root,
        "PATCH",
        &format!("/service-accounts/{key}"),
        Some(r#"{"status":"disabled","expiresAt":"2099-01-01T00:00:00Z"}"#),
        200,
    );
    assert_eq!(
        (updated["status"].as_str(), updated["expiresAt"].as_str()),
        (Some("disabled"), Some("2099-01-01T00:00:00Z"))
    );
    let cleared =
        api.call(&root, "PATCH", &format!("/service-accounts/{key}"), Some(r#"{"policy":null,"expiresAt":null}"#), 200);
    assert_eq!((&cleared["policy"], &cleared["expiresAt"]), (&Value::Null, &Value::Null));
    api.call(&root, "PATCH", &format!("/service-accounts/{key}"), Some(r#"{"colour":"red"}"#), 400);
    api.call(&root, "DELETE", &format!("/service-accounts/{key}"), None, 204);
    api.call(&root, "DELETE", &format!("/service-accounts/{key}"), None, 404);

    let reader = Keys::new("usr2", "reader-secret-123");
    api.call(
        &root,
        "POST",
        "/users",
        Some(r#"{"name":"usr2","secretKey":"reader-secret-123","policies":["readwrite"]}"#),
        201,
    );
    let denied = api.call(&reader, "GET", "/users", None, 403);
    assert_eq!(denied["code"], "AccessDenied");
    api.call(&reader, "PUT", "/users/usr2/policies/consoleAdmin", None, 403);
    api.call(&reader, "POST", "/kms/rewrap", None, 403);
    let first = api.call(&root, "GET", "/users?limit=1", None, 200);
    assert_eq!((first["users"].as_array().map(Vec::len), first["next"].as_str()), (Some(1), Some("usr1")));
    // In sorted order: Debian 12's curl signs the query as written; SigV4 canonicalizes it sorted.
    let second = api.call(&root, "GET", "/users?after=usr1&limit=1", None, 200);
    assert_eq!((second["users"][0]["name"].as_str(), &second["next"]), (Some("usr2"), &Value::Null), "{second}");
    api.call(&root, "GET", "/users?limit=0", None, 400);
    let own = api.call(&reader, "POST", "/service-accounts", Some("{}"), 201);
    let own = format!("/service-accounts/{}", own["accessKey"].as_str().expect("accessKey"));
    let paged = api.call(&reader, "GET", "/service-accounts?limit=1", None, 200);
    assert_eq!((paged["serviceAccounts"].as_array().map(Vec::len), &paged["next"]), (Some(1), &Value::Null));
    let enabled = r#"{"status":"enabled"}"#;
    let disabled = r#"{"status":"disabled"}"#;
    api.call(&root, "PATCH", &own, Some(disabled), 200);
    let refused = api.call(&reader, "PATCH", &own, Some(enabled), 403);
    assert_eq!(refused["code"], "AccessDenied", "an owner may not enable what an administrator disabled");
    api.call(&root, "PATCH", &own, Some(enabled), 200);
    api.call(&reader, "PATCH", &own, Some(disabled), 200);
    api.call(&reader, "PATCH", &own, Some(enabled), 200);
    api.call(&reader, "DELETE", &own, None, 204);
    let batch = api.call(&root, "POST", "/kms/rewrap?limit=5", None, 200);
    assert!(batch["scanned"].as_u64().is_some(), "{batch}");
    api.call(&root, "POST", "/kms/rewrap?after=bm90LWEtY3Vyc29y", None, 400);
    api.call(&root, "POST", "/kms/rewrap?limit=0", None, 400);
    let large = format!(r#"{{"name":"usr3","policies":["{}"]}}"#, "x".repeat(70 * 1024));
    let too_large = api.call(&root, "POST", "/users", Some(&large), 413);
    assert_eq!(too_large["code"], "EntityTooLarge");

    api.call(&root, "DELETE", "/groups/g1/members/usr1", None, 200);
    api.call(&root, "DELETE", "/groups/g1", None, 204);
    api.call(&root, "DELETE", "/users/usr1", None, 204);
    api.call(&root, "DELETE", "/users/usr1", None, 404);
    api.call(&root, "DELETE", "/policies/p1", None, 204);
    api.call(&root, "DELETE", "/policies/p1", None, 404);

    let all: BTreeSet<String> =
        operations(&api.doc).iter().map(|(_, _, o)| o["operationId"].as_str().unwrap_or_default().to_owned()).collect();
    let missed: Vec<_> = all.difference(&api.seen).collect();
    assert!(missed.is_empty(), "operations never exercised: {missed:?}");
}

#[test]
fn refusals_outside_the_operations_are_json_errors_too() {
    let server = Server::start(1);
    let unknown = admin_http(&server, &root(), "GET", "/volumes", None);
    assert_eq!(unknown.status, 404);
    let body: Value = serde_json::from_slice(&unknown.body).expect("JSON");
    assert_eq!(body["code"], "NoSuchOperation");
    let unsigned = curl(&[&format!("{}{PREFIX}/users", server.url())]);
    assert_eq!(unsigned.status, 403);
    let body: Value = serde_json::from_slice(&unsigned.body).expect("JSON");
    assert_eq!(body["code"], "AccessDenied");
    let wrong_secret = admin_http(&server, &Keys::new(ROOT_USER, "wrong-secret"), "GET", "/users", None);
    wrong_secret.assert_error(403, "SignatureDoesNotMatch");
    // A signature that does not cover the body (UNSIGNED-PAYLOAD) is refused, even root's.
    let unsigned_body =
        admin_http_with_hash(&server, &root(), "POST", "/users", Some(r#"{"name":"mallory"}"#), "UNSIGNED-PAYLOAD");
    assert_eq!(unsigned_body.status, 403, "{}", unsigned_body.text());
    assert_eq!(admin_http(&server, &root(), "GET", "/users/mallory", None).status, 404, "nothing was created");
    let not_json = admin_http(&server, &root(), "POST", "/users", Some("name=x"));
    assert_eq!(not_json.status, 400, "{}", not_json.text());
}

#[test]
fn the_command_line_signs_with_an_aws_profile_and_prints_json() {
    let server = Server::start(1);
    let home = tempfile::tempdir().expect("temporary directory");
    let credentials = home.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing-here\n\n[ops]\naws_access_key_id = {ROOT_USER}\naws_secret_access_key = {ROOT_PASSWORD}\n"),
    )
    .expect("write credentials");
    let run = |profile: &str, args: &[&str]| {
        std::process::Command::new(server_binary())
            .arg("admin")
            .args(["--endpoint-url", server.url()])
            .args(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_PROFILE", profile)
            .output()
            .expect("run sovereign-s3 admin")
    };
    let output = run("ops", &["user", "create", "viaprofile", "--policy", "readonly"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(created["name"], "viaprofile");
    let output = run("ops", &["policy", "list"]);
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(listed["policies"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "consoleAdmin")));
    let refused = run("default", &["user", "list"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[tokio::test]
async fn the_system_bucket_and_the_admin_prefix_stay_out_of_s3s_way() {
    let server = Server::start(1);
    let client = server.client();
    create_user(&server, "someone", &["readonly"]);
    create_bucket(&client, "admin").await;
    put_bytes(&client, "admin", "v1/users", b"an object, not the admin API").await;
    assert_eq!(get_bytes(&client, "admin", "v1/users").await, b"an object, not the admin API");
    let listed = client.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["admin"], "the system bucket is not listed");
    server
        .signed_curl(&[&format!("{}/.sovereign-s3/iam/users/someone", server.url())])
        .assert_error(400, "InvalidBucketName");
    server
        .signed_curl(&[&format!("{}/.sovereign-s3?list-type=2", server.url())])
        .assert_error(400, "InvalidBucketName");
    server
        .signed_curl(&["-X", "DELETE", &format!("{}/.sovereign-s3", server.url())])
        .assert_error(400, "InvalidBucketName");
    let copy = server.signed_curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: /.sovereign-s3/iam/users/someone",
        &format!("{}/admin/stolen", server.url()),
    ]);
    assert!(copy.status == 400, "a copy from the system bucket: {}", copy.text());
    server
        .signed_curl(&["-X", "PUT", &format!("{}/sovereign-admin", server.url())])
        .assert_error(400, "InvalidBucketName");
}
