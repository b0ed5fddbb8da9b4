//! The admin API: HTTP/JSON under [`PREFIX`] on the S3 address, signed with SigV4 like any S3
//! request (service `s3`). It is an s3s custom route, so s3s parses the request and verifies
//! its signature (and the payload hash as the body is read) exactly as for S3 operations
//! before [`AdminRoute::call`] sees it; then the caller is resolved and each operation
//! requires its admin action ([`caller`]). The operations are in [`users`], [`groups`],
//! [`service_accounts`] and [`policies`]; the OpenAPI description is docs/admin-api.yaml.
//!
//! [`PREFIX`] starts with the bucket name [`RESERVED_BUCKET`], which CreateBucket refuses, so
//! no path-style S3 request for a real bucket is ever taken for an admin request; a
//! virtual-host style request (Host naming a bucket) never is one.

pub mod caller;
pub mod cli;
pub mod client;
pub mod error;
pub mod groups;
pub mod kms;
pub mod page;
pub mod policies;
pub mod service_accounts;
pub mod users;

use std::sync::Arc;

use bytes::Bytes;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::host::S3Host;
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};
use serde::de::DeserializeOwned;

use crate::admin::caller::Caller;
use crate::admin::error::AdminError;
use crate::admin::kms::KeyStore;
use crate::authz::conditions::{ClientConnection, RequestParts};
use crate::iam::Iam;
use crate::identity::DomainHost;
use crate::principal::Principals;
use crate::sts::auth::session_token;

/// The bucket name the admin API lives under; CreateBucket refuses it.
pub const RESERVED_BUCKET: &str = "sovereign-admin";
/// The path prefix of every admin operation.
pub const PREFIX: &str = "/sovereign-admin/v1";
/// The largest request body the admin API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The admin API as an s3s route.
pub struct AdminRoute {
    iam: Arc<Iam>,
    keys: KeyStore,
    principals: Arc<dyn Principals>,
    region: String,
    domains: Option<DomainHost>,
}

impl AdminRoute {
    /// The admin API over `iam`, resolving callers with `principals`, for requests signed for
    /// `region`; `domains` are the virtual-host base domains (requests whose Host names a
    /// bucket under them are S3).
    pub fn new(
        iam: Arc<Iam>,
        keys: KeyStore,
        principals: Arc<dyn Principals>,
        region: &str,
        domains: Option<DomainHost>,
    ) -> Self {
        Self { iam, keys, principals, region: region.to_owned(), domains }
    }

    /// Whether the Host header names a bucket (virtual-host style).
    fn names_a_bucket(&self, headers: &HeaderMap) -> bool {
        let (Some(domains), Some(host)) = (&self.domains, headers.get(hyper::header::HOST)) else {
            return false;
        };
        let Ok(host) = host.to_str() else {
            return false;
        };
        domains.parse_host_header(host).is_ok_and(|vh| vh.bucket().is_some())
    }
}

/// Whether `path` is under the admin prefix.
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// One admin request after authentication: who calls, the path below the prefix, the query and
/// the body.
pub struct Call<'a> {
    /// The IAM.
    pub iam: &'a Iam,
    /// The caller.
    pub caller: &'a Caller,
    /// The request method.
    pub method: &'a Method,
    /// Path segments below the prefix, percent-decoded.
    pub segments: Vec<String>,
    /// Query pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
}

impl Call<'_> {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AdminError::invalid(format!("the request body is not valid: {e}")))
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, AdminError> {
        std::str::from_utf8(&self.body).map_err(|_| AdminError::invalid("the request body is not UTF-8"))
    }

    /// The single value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The number in query parameter `limit`, from 1 to `max`; `default` when absent.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, AdminError> {
        match self.query_value("limit") {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| AdminError::invalid(format!("limit must be a number from 1 to {max}"))),
        }
    }

    /// The segments as string slices, for matching.
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The answer to a method and path no operation has.
    pub fn unknown(&self) -> AdminError {
        AdminError::no_such_operation(self.method.as_str(), &format!("{PREFIX}/{}", self.segments.join("/")))
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

async fn read_body(req: &mut S3Request<Body>) -> Result<Bytes, AdminError> {
    let declared = req.headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    req.input.store_all_limited(MAX_BODY_BYTES).await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large()
        } else {
            AdminError::invalid(
                "the request body could not be read (incomplete, timed out, or not matching its signed hash)",
            )
        }
    })
}

fn too_large() -> AdminError {
    AdminError::new(
        hyper::StatusCode::PAYLOAD_TOO_LARGE,
        "EntityTooLarge",
        format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

impl AdminRoute {
    async fn handle(&self, mut req: S3Request<Body>) -> Result<S3Response<Body>, AdminError> {
        let Some(credentials) = &req.credentials else {
            return Err(AdminError::new(
                hyper::StatusCode::FORBIDDEN,
                "AccessDenied",
                "the admin API needs a signed request",
            ));
        };
        if !signed_with_body(&req.headers) || req.region.is_none() {
            return Err(AdminError::new(
                hyper::StatusCode::FORBIDDEN,
                "AccessDenied",
                "the admin API needs a SigV4 Authorization header whose signature covers the body \
                 (x-amz-content-sha256: its SHA-256 in hex); presigned URLs, forms, SigV2 and \
                 UNSIGNED-PAYLOAD are refused",
            ));
        }
        if let Some(region) = req.region.as_ref().filter(|r| r.as_str() != self.region) {
            return Err(AdminError::invalid(format!(
                "the request is signed for region '{}', expecting '{}'",
                region.as_str(),
                self.region
            )));
        }
        let token = session_token(&req.headers, &req.uri);
        let principal = self.principals.resolve(&credentials.access_key, token.as_deref()).await.map_err(|e| {
            AdminError::new(hyper::StatusCode::FORBIDDEN, auth_code(e.code()), e.message().unwrap_or("Access Denied"))
        })?;
        let connection = req.extensions.get::<ClientConnection>().copied();
        let caller = Caller::new(
            principal,
            &RequestParts { uri: &req.uri, headers: &req.headers, connection, signed_form: false },
        )?;
        let body = read_body(&mut req).await?;
        let path = req.uri.path().strip_prefix(PREFIX).unwrap_or_default();
        let segments = path.split('/').filter(|s| !s.is_empty()).map(decode).collect::<Vec<_>>();
        let query =
            req.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let call = Call { iam: &self.iam, caller: &caller, method: &req.method, segments, query, body };
        match call.segments.first().map(String::as_str) {
            Some("users") => users::handle(&call).await,
            Some("groups") => groups::handle(&call).await,
            Some("service-accounts") => service_accounts::handle(&call).await,
            Some("policies") => policies::handle(&call).await,
            Some("kms") => kms::handle(&call, &self.keys).await,
            _ => Err(call.unknown()),
        }
    }
}

/// Whether the request is signed with a SigV4 Authorization header and a hex payload hash, so
/// that its signature (which s3s verified, the hash as the body is read) covers the body: a
/// presigned URL, a POST form, SigV2 or UNSIGNED-PAYLOAD would leave an admin request's body
/// open to anyone on the path.
fn signed_with_body(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
    let sigv4 = header(hyper::header::AUTHORIZATION.as_str()).is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "));
    let hashed =
        header("x-amz-content-sha256").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    sigv4 && hashed
}

/// The admin error code for an authentication failure of the principal resolver.
fn auth_code(code: &s3s::S3ErrorCode) -> &'static str {
    match code {
        s3s::S3ErrorCode::InvalidAccessKeyId => "InvalidAccessKeyId",
        s3s::S3ErrorCode::ExpiredToken => "ExpiredToken",
        s3s::S3ErrorCode::InvalidToken => "InvalidToken",
        _ => "AccessDenied",
    }
}

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(&self, _method: &Method, uri: &Uri, headers: &HeaderMap, _extensions: &mut Extensions) -> bool {
        is_admin_path(uri.path()) && !self.names_a_bucket(headers)
    }

    /// Every refusal is answered by [`AdminRoute::call`] in the admin API's JSON form.
    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        Ok(self.handle(req).await.unwrap_or_else(|e| e.response()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sigv4_headers_with_a_payload_hash_sign_admin_requests() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let auth = (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
        );
        let hash = ("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(signed_with_body(&headers(&[auth, hash])));
        assert!(!signed_with_body(&headers(&[auth, ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")])));
        assert!(!signed_with_body(&headers(&[auth])));
        assert!(!signed_with_body(&headers(&[("authorization", "AWS k:sig"), hash])), "SigV2");
        assert!(!signed_with_body(&headers(&[hash])), "presigned or form");
    }

    #[test]
    fn only_paths_under_the_prefix_are_admin_requests() {
        assert!(is_admin_path("/sovereign-admin/v1"));
        assert!(is_admin_path("/sovereign-admin/v1/users"));
        assert!(!is_admin_path("/sovereign-admin/v10/users"));
        assert!(!is_admin_path("/sovereign-admin"));
        assert!(!is_admin_path("/admin/v1/users"), "a bucket named admin stays S3");
        assert!(crate::parse::check_bucket_name(RESERVED_BUCKET).is_err(), "CreateBucket refuses the name");
    }
}
