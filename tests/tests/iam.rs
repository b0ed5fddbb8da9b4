//! IAM identities through the real server: users, groups and service accounts created with the
//! `sovereign-s3 admin` command line, then used with aws-sdk-s3. Their policies allow and deny
//! as attached; disabled or deleted identities are unknown keys; a service account can only
//! narrow its parent; no identity can raise its own permissions through the admin API; an STS
//! session with readwrite cannot administer; secrets are not on the drives in clear; concurrent
//! membership changes lose none. (Two gateways cannot open the same drives in one test, so the
//! cross-gateway cache TTL and compare-and-set are tested at the store level, in
//! gateway/src/iam/store.rs.)

use std::collections::BTreeSet;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde_json::json;

#[path = "../admin.rs"]
mod admin;
// Only the provider and its tokens are used here, not the forging helpers.
#[allow(dead_code)]
#[path = "../oidc.rs"]
mod oidc;

use admin::*;
use sovereign_e2e::*;

async fn get(client: &Client, bucket: &str, key: &str) -> Result<(), String> {
    client.get_object().bucket(bucket).key(key).send().await.map(drop).map_err(|e| code_of(&e))
}

async fn put(client: &Client, bucket: &str, key: &str) -> Result<(), String> {
    let body = ByteStream::from_static(b"data");
    client.put_object().bucket(bucket).key(key).body(body).send().await.map(drop).map_err(|e| code_of(&e))
}

async fn list(client: &Client, bucket: &str) -> Result<(), String> {
    client.list_objects_v2().bucket(bucket).send().await.map(drop).map_err(|e| code_of(&e))
}

fn code_of<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("no code").to_owned()
}

const DENIED: Result<(), &str> = Err("AccessDenied");
const UNKNOWN_KEY: Result<(), &str> = Err("InvalidAccessKeyId");

fn expect(result: Result<(), String>, expected: Result<(), &str>, what: &str) {
    let got = match &result {
        Ok(()) => Ok(()),
        Err(code) => Err(code.as_str()),
    };
    assert_eq!(got, expected, "{what}");
}

/// A server with buckets `data` and `other`, each holding `k`.
async fn server() -> Server {
    let server = Server::start(1);
    let root = server.client();
    for bucket in ["data", "other"] {
        create_bucket(&root, bucket).await;
        put_bytes(&root, bucket, "k", b"object").await;
    }
    server
}

#[tokio::test]
async fn a_user_gets_what_its_policies_allow_and_aws_username_names_it() {
    let server = server().await;
    create_policy(
        &server,
        "data-reader",
        &json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::data/*"]},
            {"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::data"]}]}),
    );
    create_policy(
        &server,
        "home",
        &json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::data/home/${aws:username}/*"}]}),
    );
    let alice = create_user(&server, "alice", &["data-reader", "home"]);
    let client = client_for(&server, &alice);
    expect(get(&client, "data", "k").await, Ok(()), "GetObject in data");
    expect(list(&client, "data").await, Ok(()), "ListBucket on data");
    expect(put(&client, "data", "k").await, DENIED, "PutObject in data");
    expect(get(&client, "other", "k").await, DENIED, "GetObject in other");
    expect(put(&client, "data", "home/alice/f").await, Ok(()), "PutObject in the user's home");
    expect(put(&client, "data", "home/bob/f").await, DENIED, "PutObject in another home");
    admin_ok(&server, &root(), &["user", "detach-policy", "alice", "home"]);
    expect(put(&client, "data", "home/alice/g").await, DENIED, "a detached policy grants nothing at once");
    let shown = admin_ok(&server, &root(), &["user", "get", "alice"]);
    assert_eq!(shown["policies"], json!(["data-reader"]));
    assert!(shown.get("secretKey").is_none(), "the secret is shown only at creation: {shown}");
}

#[tokio::test]
async fn group_policies_apply_to_members_and_a_disabled_group_refuses_them() {
    let server = server().await;
    let bob = create_user(&server, "bob", &[]);
    let client = client_for(&server, &bob);
    expect(get(&client, "data", "k").await, DENIED, "no policy");
    admin_ok(&server, &root(), &["group", "create", "readers", "--member", "bob", "--policy", "readonly"]);
    expect(get(&client, "data", "k").await, Ok(()), "the group's readonly");
    expect(put(&client, "data", "n").await, DENIED, "readonly does not write");
    admin_ok(&server, &root(), &["group", "attach-policy", "readers", "readwrite"]);
    expect(put(&client, "data", "n").await, Ok(()), "the group's readwrite");
    admin_ok(&server, &root(), &["group", "disable", "readers"]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "member of a disabled group");
    admin_ok(&server, &root(), &["group", "enable", "readers"]);
    expect(get(&client, "data", "k").await, Ok(()), "enabled again");
    let user = admin_ok(&server, &root(), &["user", "get", "bob"]);
    assert_eq!(user["groups"], json!(["readers"]));
    admin_ok(&server, &root(), &["group", "remove-member", "readers", "bob"]);
    expect(get(&client, "data", "k").await, DENIED, "no longer a member");
    admin_ok(&server, &root(), &["group", "delete", "readers"]);
}

#[tokio::test]
async fn disabled_and_deleted_users_are_unknown_keys() {
    let server = server().await;
    let carol = create_user(&server, "carol", &["readonly"]);
    let client = client_for(&server, &carol);
    expect(get(&client, "data", "k").await, Ok(()), "enabled");
    admin_ok(&server, &root(), &["user", "disable", "carol"]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "disabled");
    admin_ok(&server, &root(), &["user", "enable", "carol"]);
    expect(get(&client, "data", "k").await, Ok(()), "enabled again");
    let account = admin_ok(&server, &carol, &["service-account", "create"]);
    let account_keys = Keys::new(account["accessKey"].as_str().unwrap(), account["secretKey"].as_str().unwrap());
    expect(get(&client_for(&server, &account_keys), "data", "k").await, Ok(()), "the user's service account");
    admin_ok(&server, &root(), &["user", "delete", "carol"]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "deleted");
    expect(get(&client_for(&server, &account_keys), "data", "k").await, UNKNOWN_KEY, "deleted with its user");
    let wrong = Keys::new("carol", "not-the-secret");
    expect(get(&client_for(&server, &wrong), "data", "k").await, UNKNOWN_KEY, "unknown key");
}

#[tokio::test]
async fn a_service_account_can_only_narrow_its_parent() {
    let server = server().await;
    let dan = create_user(&server, "dan", &["readwrite"]);
    let read_data = policy_file(&json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}));
    let narrow = admin_ok(
        &server,
        &dan,
        &["service-account", "create", "--policy-file", &read_data.path().to_string_lossy(), "--name", "reader"],
    );
    assert_eq!(narrow["parent"], "arn:aws:iam:::user/dan");
    let narrow_keys = Keys::new(narrow["accessKey"].as_str().unwrap(), narrow["secretKey"].as_str().unwrap());
    let client = client_for(&server, &narrow_keys);
    expect(get(&client, "data", "k").await, Ok(()), "allowed by parent and own policy");
    expect(put(&client, "data", "x").await, DENIED, "the parent may, its own policy does not");
    expect(get(&client, "other", "k").await, DENIED, "outside its own policy");

    let erin = create_user(&server, "erin", &["readonly"]);
    let everything = policy_file(&json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:*","admin:*"],"Resource":"*"}]}));
    let wide = admin_ok(
        &server,
        &root(),
        &["service-account", "create", "--parent", "erin", "--policy-file", &everything.path().to_string_lossy()],
    );
    let wide_keys = Keys::new(wide["accessKey"].as_str().unwrap(), wide["secretKey"].as_str().unwrap());
    let client = client_for(&server, &wide_keys);
    expect(get(&client, "data", "k").await, Ok(()), "what the parent may");
    expect(put(&client, "data", "x").await, DENIED, "a wider own policy gains nothing");
    assert_refused(&server, &wide_keys, &["user", "list"], 403, "AccessDenied");
    drop(erin);

    let key = wide_keys.access_key.as_str();
    admin_ok(&server, &root(), &["service-account", "disable", key]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "disabled service account");
    admin_ok(&server, &root(), &["service-account", "enable", key]);
    expect(get(&client, "data", "k").await, Ok(()), "enabled again");
    admin_ok(&server, &root(), &["user", "disable", "erin"]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "its parent is disabled");
    admin_ok(&server, &root(), &["user", "enable", "erin"]);
    let listed = admin_ok(&server, &root(), &["service-account", "list", "--parent", "erin"]);
    let accounts = listed["serviceAccounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert!(accounts[0].get("secretKey").is_none(), "no secrets in listings");
    admin_ok(&server, &root(), &["service-account", "delete", key]);
    expect(get(&client, "data", "k").await, UNKNOWN_KEY, "deleted service account");
}

#[tokio::test]
async fn no_identity_raises_its_own_permissions_through_the_admin_api() {
    let server = server().await;
    create_user(&server, "victim", &["readonly"]);
    let eve = create_user(&server, "eve", &["readwrite"]);
    assert_refused(&server, &eve, &["user", "create", "mallory", "--policy", "consoleAdmin"], 403, "AccessDenied");
    assert_refused(&server, &eve, &["user", "attach-policy", "eve", "consoleAdmin"], 403, "AccessDenied");
    assert_refused(&server, &eve, &["group", "create", "admins", "--member", "eve"], 403, "AccessDenied");
    assert_refused(&server, &eve, &["service-account", "create", "--parent", "victim"], 403, "AccessDenied");
    assert_refused(&server, &eve, &["policy", "create", "x", "/dev/null"], 403, "AccessDenied");
    let own = admin_ok(&server, &eve, &["service-account", "create"]);
    let own_keys = Keys::new(own["accessKey"].as_str().unwrap(), own["secretKey"].as_str().unwrap());
    assert_refused(&server, &own_keys, &["service-account", "create"], 403, "AccessDenied");
    assert_refused(
        &server,
        &own_keys,
        &["service-account", "update", &own_keys.access_key, "--remove-policy"],
        403,
        "AccessDenied",
    );
    assert_refused(&server, &own_keys, &["service-account", "create", "--parent", "eve"], 403, "AccessDenied");
    let others = admin_ok(&server, &root(), &["service-account", "create", "--parent", "victim"]);
    let other_key = others["accessKey"].as_str().unwrap();
    assert_refused(&server, &eve, &["service-account", "delete", other_key], 403, "AccessDenied");
    assert_refused(&server, &eve, &["service-account", "get", other_key], 403, "AccessDenied");
    let mine = admin_ok(&server, &eve, &["service-account", "list"]);
    assert_eq!(mine["serviceAccounts"].as_array().unwrap().len(), 1, "only its own: {mine}");

    // A user whose policy allows admin:CreateServiceAccount: its service account may too.
    create_policy(
        &server,
        "account-maker",
        &json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:CreateServiceAccount"],"Resource":"*"}]}),
    );
    let maker = create_user(&server, "maker", &["account-maker", "readonly"]);
    let maker_account = admin_ok(&server, &maker, &["service-account", "create"]);
    let maker_keys =
        Keys::new(maker_account["accessKey"].as_str().unwrap(), maker_account["secretKey"].as_str().unwrap());
    let made = admin_ok(&server, &maker_keys, &["service-account", "create"]);
    assert_eq!(made["parent"], "arn:aws:iam:::user/maker", "made for its own parent");
    let consoleadmin = create_user(&server, "operator", &["consoleAdmin"]);
    admin_ok(&server, &consoleadmin, &["user", "list"]);

    // Creating a user or group is not attaching policies: a helpdesk that may only create
    // users cannot create an administrator.
    create_policy(
        &server,
        "helpdesk",
        &json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:CreateUser","admin:AddUserToGroup"],"Resource":"*"}]}),
    );
    let helpdesk = create_user(&server, "helpdesk", &["helpdesk"]);
    admin_ok(&server, &helpdesk, &["user", "create", "newcomer"]);
    assert_refused(&server, &helpdesk, &["user", "create", "mallory", "--policy", "consoleAdmin"], 403, "AccessDenied");
    let group_admins = ["group", "create", "admins", "--member", "helpdesk", "--policy", "consoleAdmin"];
    assert_refused(&server, &helpdesk, &group_admins, 403, "AccessDenied");
    // Administration is granted by naming admin actions: "Action": "*" or a NotAction grants none.
    for (name, statement) in [
        ("everything", json!({"Effect":"Allow","Action":"*","Resource":"*"})),
        ("all-but-delete", json!({"Effect":"Allow","NotAction":"s3:DeleteBucket","Resource":"arn:aws:s3:::*"})),
    ] {
        create_policy(&server, name, &json!({"Version":"2012-10-17","Statement":[statement]}));
        let user = create_user(&server, &format!("{name}-user"), &[name]);
        assert_refused(&server, &user, &["user", "list"], 403, "AccessDenied");
    }
}

#[tokio::test]
async fn an_sts_session_with_readwrite_cannot_administer_but_owns_its_service_accounts() {
    let provider = oidc::OidcProvider::start();
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("sts.key");
    let args = [
        "--oidc-issuer",
        &provider.issuer(),
        "--oidc-client-id",
        "sovereign-s3",
        "--sts-key-file",
        &key_file.to_string_lossy(),
    ]
    .map(str::to_owned);
    let server = Server::start_with_args(1, &args.iter().map(String::as_str).collect::<Vec<_>>());
    create_bucket(&server.client(), "data").await;
    let token = provider.token("sovereign-s3");
    let reply = curl(&[
        "--data-urlencode",
        "Action=AssumeRoleWithWebIdentity",
        "--data-urlencode",
        "Version=2011-06-15",
        "--data-urlencode",
        "RoleArn=arn:aws:iam::000000000000:role/s3-writer",
        "--data-urlencode",
        "RoleSessionName=e2e",
        "--data-urlencode",
        &format!("WebIdentityToken={token}"),
        &format!("{}/", server.url()),
    ]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let xml = reply.text();
    let field = |name: &str| {
        let start = xml.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        xml[start..start + xml[start..].find('<').unwrap()].to_owned()
    };
    let session = Keys {
        access_key: field("AccessKeyId"),
        secret_key: field("SecretAccessKey"),
        session_token: Some(field("SessionToken")),
    };
    expect(put(&client_for(&server, &session), "data", "k").await, Ok(()), "readwrite writes");
    assert_refused(&server, &session, &["user", "list"], 403, "AccessDenied");
    assert_refused(&server, &session, &["user", "create", "someone"], 403, "AccessDenied");
    assert_refused(&server, &session, &["policy", "list"], 403, "AccessDenied");
    let own = admin_ok(&server, &session, &["service-account", "create", "--description", "ci"]);
    assert_eq!(own["parentType"], "federated");
    let subject = field("SubjectFromWebIdentityToken");
    assert_eq!(own["parent"], format!("arn:aws:iam:::user/{subject}"));
    let keys = Keys::new(own["accessKey"].as_str().unwrap(), own["secretKey"].as_str().unwrap());
    expect(put(&client_for(&server, &keys), "data", "by-account").await, Ok(()), "the session's readwrite");
    assert_refused(&server, &keys, &["user", "list"], 403, "AccessDenied");
    create_user(&server, "someone", &["readonly"]);
    assert_refused(&server, &session, &["service-account", "create", "--parent", "someone"], 403, "AccessDenied");
    let listed = admin_ok(&server, &session, &["service-account", "list"]);
    assert_eq!(listed["serviceAccounts"].as_array().unwrap().len(), 1);
}

/// The files under `dir` that contain `needle`.
fn files_with(dir: &Path, needle: &[u8]) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|path| std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)))
        .map(|path| path.display().to_string())
        .collect()
}

#[tokio::test]
async fn secrets_are_never_on_the_drives_in_clear() {
    let server = Server::start(4);
    let secret = "Known-Secret-Marker-8d1f0c";
    admin_ok(&server, &root(), &["user", "create", "frank", "--secret-key", secret, "--policy", "readonly"]);
    let account = admin_ok(&server, &root(), &["service-account", "create", "--parent", "frank"]);
    let account_secret = account["secretKey"].as_str().unwrap().to_owned();
    let frank = Keys::new("frank", secret);
    expect(get(&client_for(&server, &frank), "no-such-bucket", "k").await, Err("NoSuchBucket"), "the user works");
    // Everything the IAM store wrote is flushed to files once the server stops.
    let mut server = server;
    server.kill();
    for drive in server.dirs() {
        assert!(!files_under(drive).is_empty(), "{} holds files", drive.display());
        for needle in [secret, account_secret.as_str()] {
            let found = files_with(drive, needle.as_bytes());
            assert!(found.is_empty(), "a secret in clear in {found:?}");
        }
    }
    assert!(!server.log().contains(secret), "the secret is in the server log");
}

#[tokio::test]
async fn concurrent_membership_changes_of_one_group_lose_none() {
    let server = Server::start(4);
    admin_ok(&server, &root(), &["group", "create", "crowd"]);
    let members: Vec<String> = (0..8).map(|i| format!("member{i}")).collect();
    for member in &members {
        create_user(&server, member, &[]);
    }
    std::thread::scope(|scope| {
        for member in &members {
            let server = &server;
            scope.spawn(move || admin_ok(server, &root(), &["group", "add-member", "crowd", member]));
        }
    });
    let group = admin_ok(&server, &root(), &["group", "get", "crowd"]);
    let got: BTreeSet<String> =
        group["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    assert_eq!(got, members.iter().cloned().collect::<BTreeSet<_>>(), "{group}");
}
