//! The POST policy of a form upload (AWS: "Creating a POST Policy", "Browser-Based Uploads
//! Using POST (AWS Signature Version 4)"): its SigV4 signature, its expiration, and its
//! conditions on the form's fields and on the file's size. Answers as AWS does.

use std::collections::BTreeMap;

use ring::hmac;
use s3s::post_policy::{PostPolicy, PostPolicyCondition, PostPolicyError};
use s3s::{s3_error, S3Error, S3Result};
use time::OffsetDateTime;

/// The only signing algorithm of SigV4 POST forms.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The only service of a form's credential scope.
const SERVICE: &str = "s3";

/// Fields a policy need not name (AWS): the signature, the file, the policy itself, and any
/// `x-ignore-` field.
fn exempt(name: &str) -> bool {
    matches!(name, "x-amz-signature" | "file" | "policy") || name.starts_with("x-ignore-")
}

/// The credential scope of `x-amz-credential`: `AKID/yyyymmdd/region/s3/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key id.
    pub access_key: String,
    /// The scope's date, `yyyymmdd`.
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service (`s3`).
    pub service: String,
}

impl Credential {
    /// Parses `x-amz-credential`; a malformed one, or one scoped to a service other than
    /// `s3`, is InvalidArgument (AWS's answer to a POST form's malformed credential).
    pub fn parse(text: &str) -> S3Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [access_key, date, region, service, "aws4_request"]
                if !access_key.is_empty()
                    && date.len() == 8
                    && date.bytes().all(|b| b.is_ascii_digit())
                    && *service == SERVICE =>
            {
                Ok(Self {
                    access_key: (*access_key).to_owned(),
                    date: (*date).to_owned(),
                    region: (*region).to_owned(),
                    service: (*service).to_owned(),
                })
            }
            _ => Err(s3_error!(InvalidArgument, "Invalid credential in POST form: {text}")),
        }
    }

    /// Checks the form's `x-amz-date` (`yyyymmddThhmmssZ`) against the scope: its date must be
    /// the scope's date. No clock skew is checked: a form is posted long after it is signed,
    /// and its policy's expiration bounds its life.
    pub fn check_date(&self, amz_date: &str) -> S3Result<()> {
        let well_formed = amz_date.len() == 16
            && amz_date.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        if !well_formed || amz_date[..8] != self.date {
            return Err(s3_error!(
                InvalidArgument,
                "The x-amz-date of a POST form must be yyyymmddThhmmssZ on the credential's date {}: {amz_date}",
                self.date
            ));
        }
        Ok(())
    }
}

/// Checks `signature` (hex) against the HMAC-SHA256 of the base64 `policy` under the SigV4
/// signing key of `secret` for `credential`'s scope, in constant time.
pub fn verify_signature(secret: &str, credential: &Credential, policy: &str, signature: &str) -> S3Result<()> {
    let key = signing_key(secret, credential);
    let sent = hex::decode(signature.trim()).map_err(|_| signature_mismatch())?;
    hmac::verify(&key, policy.as_bytes(), &sent).map_err(|_| signature_mismatch())
}

/// The SigV4 signing key: HMAC chain over the scope's date, region, service and terminator.
fn signing_key(secret: &str, credential: &Credential) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [credential.date.as_str(), &credential.region, &credential.service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes()).as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

fn signature_mismatch() -> S3Error {
    s3_error!(
        SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )
}

/// Decodes the base64 policy document; AWS answers a document it cannot read with 400
/// InvalidPolicyDocument.
pub fn parse(encoded: &str) -> S3Result<PostPolicy> {
    PostPolicy::from_base64(encoded.trim()).map_err(|e| match e {
        PostPolicyError::InvalidExpiration(value) => {
            s3_error!(InvalidPolicyDocument, "Invalid Policy: Invalid 'expiration' value: '{value}'")
        }
        PostPolicyError::Base64(_) | PostPolicyError::Utf8(_) => {
            s3_error!(InvalidPolicyDocument, "Invalid Policy: Invalid Base64 encoding.")
        }
        PostPolicyError::Json(_) | PostPolicyError::MissingField(_) => {
            s3_error!(InvalidPolicyDocument, "Invalid Policy: Invalid JSON.")
        }
        PostPolicyError::InvalidCondition => {
            s3_error!(InvalidPolicyDocument, "Invalid Policy: Invalid Simple-Condition: unsupported condition.")
        }
    })
}

/// The size bounds of the file, from a `content-length-range` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    /// Fewest bytes allowed.
    pub min: u64,
    /// Most bytes allowed.
    pub max: u64,
}

/// Checks `policy` at `now` against the form's `fields` (lower-case names) sent to `bucket`:
/// not expired, every condition met, and every field named by some condition. Returns the
/// file's size bounds, enforced while it streams.
pub fn check(
    policy: &PostPolicy,
    fields: &BTreeMap<String, String>,
    bucket: &str,
    now: OffsetDateTime,
) -> S3Result<Option<SizeRange>> {
    if OffsetDateTime::from(policy.expiration.clone()) < now {
        return Err(refused("Policy expired."));
    }
    let mut range = None;
    for condition in &policy.conditions {
        let value = |field: &str| match field {
            // The bucket the form is posted to, whatever a `bucket` field says.
            "bucket" => bucket.to_owned(),
            _ => fields.get(field).cloned().unwrap_or_default(),
        };
        let met = match condition {
            PostPolicyCondition::Eq { field, value: expected } => value(field) == *expected,
            PostPolicyCondition::StartsWith { field, prefix } => value(field).starts_with(prefix.as_str()),
            PostPolicyCondition::ContentLengthRange { min, max } => {
                range = Some(SizeRange { min: *min, max: *max });
                true
            }
        };
        if !met {
            return Err(refused(&format!("Policy Condition failed: {}", describe(condition))));
        }
    }
    let named = |name: &str| {
        policy.conditions.iter().any(|c| match c {
            PostPolicyCondition::Eq { field, .. } | PostPolicyCondition::StartsWith { field, .. } => field == name,
            PostPolicyCondition::ContentLengthRange { .. } => false,
        })
    };
    let extra: Vec<&str> = fields.keys().map(String::as_str).filter(|name| !exempt(name) && !named(name)).collect();
    if !extra.is_empty() {
        return Err(refused(&format!("Extra input fields: {}", extra.join(", "))));
    }
    Ok(range)
}

/// A condition as AWS quotes it in a refusal: `["eq", "$key", "value"]`.
fn describe(condition: &PostPolicyCondition) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    match condition {
        PostPolicyCondition::Eq { field, value } => {
            format!("[\"eq\", {}, {}]", quoted(&format!("${field}")), quoted(value))
        }
        PostPolicyCondition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", {}, {}]", quoted(&format!("${field}")), quoted(prefix))
        }
        PostPolicyCondition::ContentLengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
    }
}

/// AWS's refusal of a form its policy does not allow.
fn refused(reason: &str) -> S3Error {
    s3_error!(AccessDenied, "Invalid according to Policy: {reason}")
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    fn code(result: S3Result<Option<SizeRange>>) -> (String, String) {
        let e = result.unwrap_err();
        (e.code().as_str().to_owned(), e.message().unwrap_or_default().to_owned())
    }

    const POLICY: &str = r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","up/"],["content-length-range",1,10],{"x-amz-credential":"c"}]}"#;

    #[test]
    fn the_signature_is_the_hmac_of_the_policy_under_the_signing_key() {
        // The expected signature was computed independently (Python's hmac and hashlib) over
        // this policy with AWS's example key and scope.
        let credential = Credential::parse("AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request").unwrap();
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWdudjRleGFtcGxlYnVja2V0In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIka2V5IiwgInVzZXIvdXNlcjEvIl0sDQogICAgeyJhY2wiOiAicHVibGljLXJlYWQifSwNCiAgICB7InN1Y2Nlc3NfYWN0aW9uX3JlZGlyZWN0IjogImh0dHA6Ly9zaWdudjRleGFtcGxlYnVja2V0LnMzLmFtYXpvbmF3cy5jb20vc3VjY2Vzc2Z1bF91cGxvYWQuaHRtbCJ9LA0KICAgIFsic3RhcnRzLXdpdGgiLCAiJENvbnRlbnQtVHlwZSIsICJpbWFnZS8iXSwNCiAgICB7IngtYW16LW1ldGEtdXVpZCI6ICIxNDM2NTEyMzY1MTI3NCJ9LA0KICAgIHsieC1hbXotc2VydmVyLXNpZGUtZW5jcnlwdGlvbiI6ICJBRVMyNTYifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiR4LWFtei1tZXRhLXRhZyIsICIiXSwNCg0KICAgIHsieC1hbXotY3JlZGVudGlhbCI6ICJBS0lBSU9TRk9ETk43RVhBTVBMRS8yMDE1MTIyOS91cy1lYXN0LTEvczMvYXdzNF9yZXF1ZXN0In0sDQogICAgeyJ4LWFtei1hbGdvcml0aG0iOiAiQVdTNC1ITUFDLVNIQTI1NiJ9LA0KICAgIHsieC1hbXotZGF0ZSI6ICIyMDE1MTIyOVQwMDAwMDBaIiB9DQogIF0NCn0=";
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let signature = "e89a9156ffcb9845e5ee5c6ff8f658b45e2bbd3bd4902e3da505e1276f1d4c64";
        verify_signature(secret, &credential, policy, signature).unwrap();
        let wrong = verify_signature("other", &credential, policy, signature).unwrap_err();
        assert_eq!(wrong.code().as_str(), "SignatureDoesNotMatch");
        assert!(verify_signature(secret, &credential, policy, "not hex").is_err());
        assert!(Credential::parse("AKID/2015/us-east-1/s3/aws4_request").is_err());
    }

    #[test]
    fn the_scope_must_be_s3_and_dated_as_the_form() {
        let code = |r: S3Result<Credential>| r.err().map(|e| e.code().as_str().to_owned());
        assert_eq!(
            code(Credential::parse("AKID/20151229/us-east-1/sts/aws4_request")).as_deref(),
            Some("InvalidArgument")
        );
        let credential = Credential::parse("AKID/20151229/us-east-1/s3/aws4_request").unwrap();
        assert!(credential.check_date("20151229T235959Z").is_ok());
        for wrong in ["20151230T000000Z", "20151229", "20151229T0000000", "2015122xT000000Z", ""] {
            let e = credential.check_date(wrong).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidArgument", "{wrong}");
        }
    }

    #[test]
    fn conditions_expiry_and_extra_fields_are_judged_as_aws_does() {
        let policy = parse(&encode(POLICY)).unwrap();
        let now = OffsetDateTime::now_utc();
        let ok = fields(&[("key", "up/a"), ("x-amz-credential", "c"), ("x-amz-signature", "s"), ("x-ignore-me", "1")]);
        assert_eq!(check(&policy, &ok, "b", now).unwrap(), Some(SizeRange { min: 1, max: 10 }));
        let (code_, message) = code(check(&policy, &ok, "other", now));
        assert_eq!(
            (code_.as_str(), message.as_str()),
            ("AccessDenied", "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$bucket\", \"b\"]")
        );
        let bad_key = fields(&[("key", "down/a"), ("x-amz-credential", "c")]);
        assert!(code(check(&policy, &bad_key, "b", now)).1.contains("[\"starts-with\", \"$key\", \"up/\"]"));
        let extra = fields(&[("key", "up/a"), ("x-amz-credential", "c"), ("acl", "private")]);
        assert_eq!(code(check(&policy, &extra, "b", now)).1, "Invalid according to Policy: Extra input fields: acl");
        let later = OffsetDateTime::new_utc(time::macros::date!(2100 - 01 - 01), time::macros::time!(0:00));
        assert_eq!(code(check(&policy, &ok, "b", later)).1, "Invalid according to Policy: Policy expired.");
    }

    #[test]
    fn unreadable_policies_are_invalid_policy_documents() {
        let bad_date = parse(&encode(r#"{"expiration":"tomorrow","conditions":[]}"#)).unwrap_err();
        assert_eq!(bad_date.code().as_str(), "InvalidPolicyDocument");
        assert_eq!(bad_date.message(), Some("Invalid Policy: Invalid 'expiration' value: 'tomorrow'"));
        assert_eq!(parse("!!!").unwrap_err().code().as_str(), "InvalidPolicyDocument");
        assert_eq!(parse(&encode("{}")).unwrap_err().code().as_str(), "InvalidPolicyDocument");
    }
}
