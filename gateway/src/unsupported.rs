//! Requests that ask for something this release does not do and that bear on security, refused
//! at the front door instead of accepted and ignored: object lock, and ACLs carried in a
//! presigned URL's query string (s3s reads ACLs from headers only). ACL headers themselves are
//! judged by the operations, with the bucket's object ownership ([`crate::s3`]'s `acl.rs`).
//! Nothing here reads the request body (POST Object form fields are checked by
//! [`crate::post_object`] with [`refuse_setting`]).

use hyper::Request;
use s3s::{s3_error, Body, S3Error, S3Result};

/// Header prefix of object lock settings on a write (`-mode`, `-retain-until-date`,
/// `-legal-hold`).
const OBJECT_LOCK_PREFIX: &str = "x-amz-object-lock-";

/// CreateBucket's request for object lock, refused when `true`.
const BUCKET_OBJECT_LOCK: &str = "x-amz-bucket-object-lock-enabled";

/// Header prefix of explicit ACL grants (`-read`, `-write`, `-read-acp`, `-write-acp`,
/// `-full-control`).
const GRANT_PREFIX: &str = "x-amz-grant-";

/// The canned ACL header.
const CANNED_ACL: &str = "x-amz-acl";

/// Canned ACLs that grant nobody but the owner anything: what a query parameter may carry
/// (it changes nothing, so ignoring it is honest).
const OWNER_ONLY_ACLS: &[&str] = &["private", "bucket-owner-full-control"];

/// Refuses any header asking for object lock, and any presigned-URL query parameter (where
/// presigners put `x-amz-*` headers) asking for object lock or an ACL this server would not
/// apply.
pub fn check(req: &Request<Body>) -> S3Result<()> {
    let query = req.uri().query().unwrap_or_default();
    for (name, value) in req.headers() {
        refuse_setting(name.as_str(), value.to_str().unwrap_or_default())?;
    }
    for pair in query.split('&').filter(|pair| pair.starts_with("x-amz-") || pair.starts_with("X-Amz-")) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        let name = name.to_ascii_lowercase();
        refuse_setting(&name, &value)?;
        let shared = name.starts_with(GRANT_PREFIX)
            || (name == CANNED_ACL && !OWNER_ONLY_ACLS.iter().any(|acl| value.trim().eq_ignore_ascii_case(acl)));
        if shared {
            return Err(not_implemented(&name));
        }
    }
    Ok(())
}

/// Refuses one header (lower-case `name`) that asks for an unsupported security setting (a
/// POST form's fields are checked as the headers they stand for).
pub(crate) fn refuse_setting(name: &str, value: &str) -> S3Result<()> {
    let unimplemented = name.starts_with(OBJECT_LOCK_PREFIX)
        || (name == BUCKET_OBJECT_LOCK && value.trim().eq_ignore_ascii_case("true"));
    if unimplemented {
        return Err(not_implemented(name));
    }
    Ok(())
}

/// AWS's answer to a header naming functionality it does not implement.
fn not_implemented(header: &str) -> S3Error {
    s3_error!(NotImplemented, "A header you provided implies functionality that is not implemented: {header}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn refusal(method: &str, uri: &str, headers: &[(&str, &str)]) -> Option<S3ErrorCode> {
        check(&request(method, uri, headers)).err().map(|e| e.code().clone())
    }

    #[test]
    fn encryption_headers_pass_on_every_request() {
        for name in [
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-server-side-encryption-customer-algorithm",
            "x-amz-copy-source-server-side-encryption-customer-key",
        ] {
            assert_eq!(refusal("POST", "/b/k?uploads", &[(name, "AES256")]), None, "{name}");
            assert_eq!(refusal("PUT", "/b/k?partNumber=1&uploadId=u", &[(name, "AES256")]), None, "{name}");
            assert_eq!(refusal("PUT", "/b/k", &[(name, "AES256")]), None, "{name}");
        }
    }

    #[test]
    fn object_lock_is_refused_unless_turned_off() {
        let mode = [("x-amz-object-lock-mode", "COMPLIANCE")];
        assert_eq!(refusal("PUT", "/b/k", &mode), Some(S3ErrorCode::NotImplemented));
        assert_eq!(
            refusal("PUT", "/b", &[("x-amz-bucket-object-lock-enabled", "True")]),
            Some(S3ErrorCode::NotImplemented)
        );
        assert_eq!(refusal("PUT", "/b", &[("x-amz-bucket-object-lock-enabled", "false")]), None);
    }

    #[test]
    fn acl_headers_pass_to_the_operations_and_acl_query_parameters_are_refused() {
        assert_eq!(refusal("PUT", "/b/k", &[("x-amz-acl", "public-read")]), None);
        assert_eq!(
            refusal("PUT", "/b/k", &[("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")]),
            None
        );
        assert_eq!(refusal("PUT", "/b/k?x-amz-acl=private", &[]), None);
        assert_eq!(refusal("PUT", "/b/k?x-amz-acl=public-read", &[]), Some(S3ErrorCode::NotImplemented));
        assert_eq!(refusal("PUT", "/b/k?X-Amz-Grant-Read=id%3Dabc", &[]), Some(S3ErrorCode::NotImplemented));
    }
}
