//! The policy grammar: what parses, and where a malformed document is refused.

use sovereign_policy::{Effect, Kind, MalformedPolicy, Policy, Position};

fn bucket(text: &str) -> Result<Policy, MalformedPolicy> {
    Policy::parse(text, Kind::Bucket("photos"))
}

fn identity(text: &str) -> Result<Policy, MalformedPolicy> {
    Policy::parse(text, Kind::Identity)
}

fn path_of(result: Result<Policy, MalformedPolicy>) -> (String, String) {
    match result {
        Ok(policy) => panic!("accepted: {policy:?}"),
        Err(MalformedPolicy { message, position: Position::Path(path) }) => (message, path),
        Err(other) => panic!("not a path error: {other}"),
    }
}

#[test]
fn statement_as_object_or_array_and_both_versions() {
    let one =
        identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#)
            .unwrap();
    assert_eq!(one.statements.len(), 1);
    assert_eq!(one.statements[0].effect, Effect::Allow);
    let many = identity(
        r#"{"Version":"2008-10-17","Id":"x","Statement":[
            {"Sid":"A1","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},
            {"Effect":"Deny","NotAction":"s3:GetObject","NotResource":"arn:aws:s3:::b/public/*"}]}"#,
    )
    .unwrap();
    assert_eq!(many.version, "2008-10-17");
    assert_eq!(many.id.as_deref(), Some("x"));
    assert_eq!(many.statements[0].sid.as_deref(), Some("A1"));
    assert_eq!(many.statements[1].effect, Effect::Deny);
    let unversioned = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
    assert_eq!(unversioned.version, "2008-10-17");
}

#[test]
fn bucket_policy_principals() {
    for principal in [r#""*""#, r#"{"AWS":"*"}"#, r#"{"AWS":["arn:aws:iam::123456789012:root","*"]}"#] {
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}]}}"#
        );
        bucket(&text).unwrap_or_else(|e| panic!("{principal}: {e}"));
    }
    let not_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}]}"#;
    bucket(not_principal).unwrap();
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = bucket("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\",}\n  ]\n}")
        .unwrap_err();
    assert_eq!(err.position, Position::Text { line: 4, column: 24 }, "{err}");
    assert!(err.to_string().contains("line 4, column 24"), "{err}");
    let err = bucket("").unwrap_err();
    assert!(matches!(err.position, Position::Text { .. }));
}

#[test]
fn malformed_elements_report_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"[]"#, "", "must be a JSON object"),
        (r#"{"Version":"2012-10-17"}"#, "", "Missing required field Statement"),
        (r#"{"Version":"2020-01-01","Statement":[]}"#, "Version", "version"),
        (r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#, "Extra", "Unknown field"),
        (r#"{"Version":"2012-10-17","Statement":[]}"#, "Statement", "must not be empty"),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[1].Effect",
            "Allow or Deny",
        ),
        (
            r#"{"Statement":[{"Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0]",
            "Missing required field Effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0]",
            "Missing required field Principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0]",
            "Missing required field Action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            "Statement[0]",
            "Missing required field Resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0]",
            "both Action and NotAction",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","GetObject"],"Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0].Action",
            "invalid action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject",7],"Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0].Action[1]",
            "Expected a string",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0].Action",
            "non-empty",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            "Statement[0].Resource",
            "Policy has invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#,
            "Statement[0].Resource",
            "Policy has invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0].Principal.Service",
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Statement[0].Principal",
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"s3:prefix":{"nested":1}}}}]}"#,
            "Statement[0].Condition.StringEquals.s3:prefix",
            "must be strings, numbers or booleans",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualz":{"s3:prefix":"a"}}}]}"#,
            "Statement[0].Condition.StringEqualz.s3:prefix",
            "Unknown condition operator",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}]}"#,
            "Statement[0].Condition.IpAddress.aws:SourceIp",
            "Invalid value",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":"x"}]}"#,
            "Statement[0].Condition",
            "must be a JSON object",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Sneaky":1}]}"#,
            "Statement[0].Sneaky",
            "Unknown field",
        ),
    ];
    for (text, path, message) in cases {
        let (got_message, got_path) = path_of(bucket(text));
        assert_eq!(&got_path, path, "{text}: {got_message}");
        assert!(got_message.contains(message), "{text}: {got_message}");
    }
}

#[test]
fn identity_policies_name_no_principal() {
    let (message, path) =
        path_of(identity(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}"#));
    assert_eq!(path, "Statement.Principal");
    assert!(message.contains("should not specify a principal"));
}

/// Arbitrary and truncated documents are refused or accepted, never a panic.
#[test]
fn never_panics_on_arbitrary_documents() {
    let seeds = [
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:Get*"],"Resource":["arn:aws:s3:::photos/${aws:username}/*"],"Condition":{"ForAnyValue:StringLikeIfExists":{"s3:prefix":["a*",1,true]},"IpAddress":{"aws:SourceIp":"::/0"},"Null":{"x":"true"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#,
        r#"{"Statement":{"Effect":"Deny","NotPrincipal":"*","NotAction":"*","NotResource":"arn:aws:s3:::photos"}}"#,
    ];
    let fragments = ["{", "}", "[", "]", ",", ":", "\"", "null", "1e999", "-0", "\"${", "\"*\"", "\"\\u0000\"", "true"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut documents = 0;
    for seed in seeds {
        let bytes = seed.as_bytes();
        for cut in 0..bytes.len() {
            let truncated = String::from_utf8_lossy(&bytes[..cut]);
            let _ = bucket(&truncated);
            let _ = identity(&truncated);
            documents += 1;
        }
        for _ in 0..3000 {
            let mut text = seed.to_owned();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (text.len() + 1);
                let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                let fragment = fragments[(next() as usize) % fragments.len()];
                if next() % 2 == 0 {
                    let end = (at + fragment.len()).min(text.len());
                    let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
                    text.replace_range(at..end, fragment);
                } else {
                    text.insert_str(at, fragment);
                }
            }
            let _ = bucket(&text);
            let _ = identity(&text);
            documents += 1;
        }
    }
    // Well-formed JSON of the wrong shapes.
    for text in ["null", "1", "\"s\"", "[[[]]]", r#"{"Statement":null}"#, r#"{"Statement":[null,1,"x",[]]}"#] {
        assert!(bucket(text).is_err(), "{text}");
        documents += 1;
    }
    assert!(documents > 6000);
}

#[test]
fn trust_policies_name_identity_providers_and_no_resource() {
    let trust = |text: &str| Policy::parse(text, Kind::Trust);
    let federated = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://idp.example/realms/r"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"jwt:aud":"app"}}}}"#;
    assert!(trust(federated).is_ok());
    let arn = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":["arn:aws:iam:::oidc-provider/idp.example/realms/r"]},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert!(trust(arn).is_ok());
    let no_principal =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert_eq!(path_of(trust(no_principal)), ("Missing required field Principal".into(), "Statement".into()));
    let aws = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/a"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert_eq!(path_of(trust(aws)).0, "Invalid principal in policy");
    let resource = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*"}}"#;
    assert_eq!(path_of(trust(resource)).0, "Has prohibited field Resource");
    let bad = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"idp.example"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert_eq!(path_of(trust(bad)).0, "Invalid principal in policy: 'idp.example'");
    // Everyone may be denied, not allowed: an Allow names the providers it trusts.
    let everyone = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert!(path_of(trust(everyone)).0.starts_with("An Allow of a trust policy must name"));
    let deny_all = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert!(trust(deny_all).is_ok());
    let not_principal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"Federated":"https://idp.example"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert_eq!(path_of(trust(not_principal)).0, "NotPrincipal is not allowed in a trust policy");
    // A bucket policy still refuses a Federated principal.
    let in_bucket = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"https://idp.example"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
    assert_eq!(path_of(bucket(in_bucket)).0, "Invalid principal in policy");
}
