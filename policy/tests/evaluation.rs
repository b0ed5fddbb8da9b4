//! Policy evaluation: actions, resources, variables, principals, conditions and precedence.

use sovereign_policy::{builtin, decide, Caller, Context, Kind, Policy, Request};

fn identity(text: &str) -> Policy {
    Policy::parse(text, Kind::Identity).unwrap()
}

fn bucket(text: &str) -> Policy {
    Policy::parse(text, Kind::Bucket("b")).unwrap()
}

fn alice() -> Caller {
    Caller::Named(vec!["arn:aws:iam:::user/alice".to_owned()])
}

fn allowed(identity: &[&Policy], bucket: Option<&Policy>, caller: &Caller, action: &str, resource: &str) -> bool {
    allowed_in(identity, bucket, caller, action, resource, &Context::default())
}

fn allowed_in(
    identity: &[&Policy],
    bucket: Option<&Policy>,
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &Context,
) -> bool {
    decide(identity, bucket, &Request { action, resource, caller, context })
}

const PUBLIC_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"}]}"#;

#[test]
fn default_deny() {
    assert!(!allowed(&[], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[], None, &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/k"));
}

#[test]
fn actions_are_case_insensitive_with_wildcards() {
    let p = identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"S3:get*","Resource":"*"}}"#);
    assert!(allowed(&[&p], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(allowed(&[&p], None, &alice(), "s3:GetBucketPolicy", "arn:aws:s3:::b"));
    assert!(!allowed(&[&p], None, &alice(), "s3:PutObject", "arn:aws:s3:::b/k"));
    let q =
        identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:?etObject","Resource":"*"}}"#);
    assert!(allowed(&[&q], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[&q], None, &alice(), "s3:GetObjectTagging", "arn:aws:s3:::b/k"));
}

#[test]
fn not_action_and_not_resource() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"s3:DeleteObject","NotResource":"arn:aws:s3:::b/secret/*"}}"#,
    );
    assert!(allowed(&[&p], None, &alice(), "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[&p], None, &alice(), "s3:DeleteObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[&p], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/secret/k"));
}

#[test]
fn explicit_deny_wins_over_any_allow() {
    let allow_all = builtin("readwrite").unwrap();
    let deny = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert!(allowed(&[allow_all], Some(&deny), &alice(), "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[allow_all], Some(&deny), &alice(), "s3:DeleteObject", "arn:aws:s3:::b/k"));
    let both = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/ro/*"}]}"#,
    );
    assert!(!allowed(&[&both], None, &alice(), "s3:PutObject", "arn:aws:s3:::b/ro/k"));
    assert!(allowed(&[&both], None, &alice(), "s3:PutObject", "arn:aws:s3:::b/rw/k"));
}

#[test]
fn a_bucket_policy_allow_grants_on_its_own() {
    let grant = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert!(allowed(&[], Some(&grant), &alice(), "s3:PutObject", "arn:aws:s3:::b/k"));
    let bob = Caller::Named(vec!["arn:aws:iam:::user/bob".to_owned()]);
    assert!(!allowed(&[], Some(&grant), &bob, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&[], Some(&grant), &Caller::Anonymous, "s3:PutObject", "arn:aws:s3:::b/k"));
}

#[test]
fn anonymous_callers_match_only_everyone() {
    let public = bucket(PUBLIC_READ);
    assert!(allowed(&[], Some(&public), &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/public/x"));
    assert!(!allowed(&[], Some(&public), &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/private/x"));
    assert!(!allowed(&[], Some(&public), &Caller::Anonymous, "s3:PutObject", "arn:aws:s3:::b/public/x"));
    let aws_star = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert!(allowed(&[], Some(&aws_star), &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/x"));
}

#[test]
fn not_principal_covers_everyone_else() {
    let p = bucket(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/alice/*"}]}"#,
    );
    assert!(allowed(&[], Some(&p), &alice(), "s3:GetObject", "arn:aws:s3:::b/alice/x"));
    assert!(!allowed(&[], Some(&p), &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/alice/x"));
    assert!(allowed(&[], Some(&p), &Caller::Anonymous, "s3:GetObject", "arn:aws:s3:::b/other"));
}

#[test]
fn resource_variables_from_the_context() {
    let home = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::b/home/${aws:username}/*","arn:aws:s3:::b/jwt/${jwt:sub}/*"]}}"#,
    );
    let mut context = Context::default();
    context.insert("aws:username", "alice");
    context.insert("jwt:sub", "f00");
    let ask = |resource: &str| allowed_in(&[&home], None, &alice(), "s3:GetObject", resource, &context);
    assert!(ask("arn:aws:s3:::b/home/alice/x"));
    assert!(!ask("arn:aws:s3:::b/home/bob/x"));
    assert!(ask("arn:aws:s3:::b/jwt/f00/x"));
    assert!(!ask("arn:aws:s3:::b/home/${aws:username}/x"), "the variable is not literal text");
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}}"#,
    );
    assert!(allowed_in(&[&old], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/home/${aws:username}/x", &context));
    assert!(!allowed_in(&[&old], None, &alice(), "s3:GetObject", "arn:aws:s3:::b/home/alice/x", &context));
}

#[test]
fn conditions_gate_statements() {
    let p = bucket(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":"public/*"}}},
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"},"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    let mut context = Context::default();
    context.insert("s3:prefix", "public/a");
    context.insert("aws:SecureTransport", "true");
    let list =
        |context: &Context| allowed_in(&[], Some(&p), &Caller::Anonymous, "s3:ListBucket", "arn:aws:s3:::b", context);
    assert!(list(&context));
    let mut other_prefix = Context::default();
    other_prefix.insert("s3:prefix", "private/");
    other_prefix.insert("aws:SecureTransport", "true");
    assert!(!list(&other_prefix));
    let mut plain = Context::default();
    plain.insert("s3:prefix", "public/a");
    plain.insert("aws:SecureTransport", "false");
    plain.insert("aws:SourceIp", "192.0.2.1");
    assert!(!list(&plain), "both conditions of the Deny hold");
    plain = Context::default();
    plain.insert("s3:prefix", "public/a");
    plain.insert("aws:SecureTransport", "false");
    plain.insert("aws:SourceIp", "10.1.1.1");
    assert!(list(&plain), "from inside 10/8 the Deny does not apply");
}

#[test]
fn builtins_as_minio_defines_them() {
    let readonly = builtin("readonly").unwrap();
    let readwrite = builtin("readwrite").unwrap();
    let writeonly = builtin("writeonly").unwrap();
    let console = builtin("consoleAdmin").unwrap();
    let diagnostics = builtin("diagnostics").unwrap();
    let ask =
        |p: &sovereign_policy::Policy, action: &str, resource: &str| allowed(&[p], None, &alice(), action, resource);
    assert!(ask(readonly, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(ask(readonly, "s3:GetBucketLocation", "arn:aws:s3:::b"));
    assert!(!ask(readonly, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(!ask(readonly, "s3:ListBucket", "arn:aws:s3:::b"));
    assert!(ask(readwrite, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(ask(readwrite, "s3:PutBucketPolicy", "arn:aws:s3:::b"));
    assert!(ask(readwrite, "s3:ListAllMyBuckets", "arn:aws:s3:::"));
    assert!(!ask(readwrite, "admin:CreateUser", "arn:aws:s3:::"), "readwrite administers nothing");
    assert!(ask(writeonly, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(!ask(writeonly, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(ask(console, "admin:CreateUser", "arn:aws:s3:::"));
    assert!(ask(console, "s3:DeleteBucket", "arn:aws:s3:::b"));
    assert!(ask(diagnostics, "admin:ServerInfo", "arn:aws:s3:::x"));
    assert!(!ask(diagnostics, "s3:GetObject", "arn:aws:s3:::b/k"));
}

#[test]
fn public_status() {
    assert!(bucket(PUBLIC_READ).is_public());
    let narrowed = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
    );
    assert!(!narrowed.is_public());
    let tls_only = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#,
    );
    assert!(tls_only.is_public(), "TLS does not narrow who");
    let named = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert!(!named.is_public());
    let deny_all = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert!(!deny_all.is_public());
}

#[test]
fn condition_keys_are_listed() {
    let p = bucket(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/Team":"x"}}}}"#,
    );
    assert_eq!(p.condition_keys(), vec!["aws:username".to_owned(), "s3:existingobjecttag/Team".to_owned()]);
}

#[test]
fn administration_is_granted_only_by_name() {
    let admin = |text: &str| identity(text).restricted_to_service("admin:");
    let can = |policy: &Policy, action: &str| allowed(&[policy], None, &alice(), action, "arn:aws:s3:::*");
    let everything = admin(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
    assert!(!can(&everything, "admin:CreateUser"), "Action * grants no administration");
    let not_action = admin(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"s3:DeleteBucket","Resource":"arn:aws:s3:::*"}]}"#,
    );
    assert!(!can(&not_action, "admin:CreateUser"), "NotAction grants no administration");
    let mixed = admin(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","ADMIN:ListUsers"],"Resource":"*"}]}"#,
    );
    assert!(can(&mixed, "admin:ListUsers"));
    assert!(!can(&mixed, "admin:CreateUser"));
    let denied = admin(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"admin:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
    );
    assert!(!can(&denied, "admin:ListUsers"), "a Deny of everything still applies");
    let console_admin = builtin("consoleAdmin").unwrap().restricted_to_service("admin:");
    assert!(can(&console_admin, "admin:CreateUser"));
    let readwrite = builtin("readwrite").unwrap().restricted_to_service("admin:");
    assert!(!can(&readwrite, "admin:CreateUser"));
}

#[test]
fn trust_policies_decide_by_provider_and_claims() {
    let trust = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity",
             "Condition":{"StringEquals":{"jwt:aud":"app"},"ForAnyValue:StringEquals":{"jwt:groups":"/writers"}}},
            {"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"StringEquals":{"jwt:sub":"mallory"}}}]}"#,
        Kind::Trust,
    )
    .unwrap();
    let provider = Caller::Named(vec!["https://idp.example/realms/r".to_owned()]);
    let other = Caller::Named(vec!["https://other.example/realms/r".to_owned()]);
    let claims = |sub: &str, aud: &str, groups: &[&str]| {
        let mut context = Context::default();
        context.insert("jwt:sub", sub);
        context.insert("jwt:aud", aud);
        groups.iter().for_each(|g| context.insert("jwt:groups", *g));
        context
    };
    let role = "arn:aws:iam:::role/writer";
    let assume = "sts:AssumeRoleWithWebIdentity";
    let ok = claims("alice", "app", &["/readers", "/writers"]);
    assert!(allowed_in(&[], Some(&trust), &provider, assume, role, &ok));
    assert!(!allowed_in(&[], Some(&trust), &other, assume, role, &ok), "another provider");
    assert!(!allowed_in(&[], Some(&trust), &provider, assume, role, &claims("alice", "other", &["/writers"])));
    assert!(!allowed_in(&[], Some(&trust), &provider, assume, role, &claims("alice", "app", &["/readers"])));
    assert!(!allowed_in(&[], Some(&trust), &provider, assume, role, &claims("mallory", "app", &["/writers"])));
}
