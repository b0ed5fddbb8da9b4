//! Cross-origin resource sharing, as S3 applies a bucket's CORS rules: preflight (OPTIONS)
//! requests are answered from the rules (no signature needed, as browsers send none), and the
//! actual responses to cross-origin requests carry the headers of the first matching rule.

use hyper::header::{HeaderName, HeaderValue, ORIGIN};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use s3s::host::S3Host;
use s3s::path::{parse_path_style, parse_virtual_hosted_style, S3Path};
use s3s::{s3_error, Body, S3Error, S3ErrorCode};
use storage::bucket_config::CorsRule;
use storage::ObjectStore;

use crate::error::to_s3;
use crate::identity::DomainHost;

/// Methods a CORS rule may allow.
pub const CORS_METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

const REQUEST_METHOD: &str = "access-control-request-method";
const REQUEST_HEADERS: &str = "access-control-request-headers";
const VARY_VALUE: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// Finds the bucket a request is for, path-style or (with `--domain`) virtual-host style.
pub struct Cors {
    host: Option<DomainHost>,
}

impl std::fmt::Debug for Cors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cors").field("virtual_hosts", &self.host.is_some()).finish()
    }
}

/// Whether `text` matches `pattern`, which may hold one `*` standing for any run of characters.
fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pattern, text) = if ignore_case {
        (pattern.to_ascii_lowercase(), text.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), text.to_owned())
    };
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail),
    }
}

/// The first rule that lets `origin` use `method` with the request headers `headers`.
pub fn matching_rule<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|rule| {
        rule.allowed_origins.iter().any(|allowed| wildcard_match(allowed, origin, false))
            && rule.allowed_methods.iter().any(|allowed| allowed == method)
            && headers.iter().all(|h| rule.allowed_headers.iter().any(|allowed| wildcard_match(allowed, h, true)))
    })
}

/// The headers that grant `origin` what `rule` allows; `requested` are a preflight's request
/// headers, echoed back as allowed.
fn grant(rule: &CorsRule, origin: &str, requested: Option<&[String]>) -> Vec<(&'static str, String)> {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let mut headers = vec![
        ("access-control-allow-origin", if any_origin { "*".to_owned() } else { origin.to_owned() }),
        ("access-control-allow-methods", rule.allowed_methods.join(", ")),
        ("vary", VARY_VALUE.to_owned()),
    ];
    if !any_origin {
        headers.push(("access-control-allow-credentials", "true".to_owned()));
    }
    if let Some(requested) = requested.filter(|r| !r.is_empty()) {
        headers.push(("access-control-allow-headers", requested.join(", ")));
    }
    if !rule.expose_headers.is_empty() {
        headers.push(("access-control-expose-headers", rule.expose_headers.join(", ")));
    }
    if let Some(max_age) = rule.max_age_seconds {
        headers.push(("access-control-max-age", max_age.to_string()));
    }
    headers
}

fn insert_all(target: &mut HeaderMap, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            target.insert(HeaderName::from_static(name), value);
        }
    }
}

fn header_text<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// The error S3 answers a preflight that no rule allows.
fn forbidden(message: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom("AccessForbidden".into()), message.to_owned());
    e.set_status_code(StatusCode::FORBIDDEN);
    e
}

impl Cors {
    /// CORS for a server answering virtual-host style requests under `host`'s domains, if any.
    pub fn new(host: Option<DomainHost>) -> Self {
        Self { host }
    }

    /// The bucket a request addresses, if any.
    pub fn bucket_of<B>(&self, req: &Request<B>) -> Option<String> {
        let path = req.uri().path();
        let parsed = match (&self.host, header_text(req, "host")) {
            (Some(domains), Some(host)) => {
                let virtual_host = domains.parse_host_header(host).ok()?;
                parse_virtual_hosted_style(virtual_host.bucket(), path)
            }
            _ => parse_path_style(path),
        };
        match parsed.ok()? {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.to_string()),
        }
    }

    /// Answers a preflight request from the bucket's rules: 200 with the grant, 403 when no
    /// rule allows it (or the bucket has none), 400 when it is not a preflight.
    pub async fn preflight<B>(&self, store: &ObjectStore, req: &Request<B>) -> Result<Response<Body>, S3Error> {
        let (Some(origin), Some(method)) = (header_text(req, ORIGIN.as_str()), header_text(req, REQUEST_METHOD)) else {
            return Err(s3_error!(InvalidRequest, "Insufficient information. Origin request header needed."));
        };
        let bucket = self.bucket_of(req).ok_or_else(|| forbidden("CORSResponse: Bucket not found"))?;
        let config = store.bucket_config(&bucket).await.map_err(to_s3)?;
        let rules = config.cors.ok_or_else(|| forbidden("CORSResponse: CORS is not enabled for this bucket."))?;
        let requested: Vec<String> = header_text(req, REQUEST_HEADERS)
            .map(|h| h.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
            .unwrap_or_default();
        let rule = matching_rule(&rules, origin, method, &requested).ok_or_else(|| {
            forbidden(
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            )
        })?;
        let mut response = Response::new(Body::empty());
        insert_all(response.headers_mut(), grant(rule, origin, Some(&requested)));
        Ok(response)
    }

    /// Adds the CORS headers to the response to a cross-origin request (one with `Origin`) for
    /// `bucket`, when a rule of the bucket allows it.
    pub async fn decorate(
        &self,
        store: &ObjectStore,
        bucket: &str,
        origin: &str,
        method: &Method,
        headers: &mut HeaderMap,
    ) {
        let Ok(config) = store.bucket_config(bucket).await else { return };
        let Some(rules) = config.cors else { return };
        if let Some(rule) = matching_rule(&rules, origin, method.as_str(), &[]) {
            insert_all(headers, grant(rule, origin, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        CorsRule {
            allowed_origins: owned(origins),
            allowed_methods: owned(methods),
            allowed_headers: owned(headers),
            ..CorsRule::default()
        }
    }

    #[test]
    fn origins_match_with_one_wildcard() {
        assert!(wildcard_match("http://*.example.com", "http://www.example.com", false));
        assert!(!wildcard_match("http://*.example.com", "https://www.example.com", false));
        assert!(wildcard_match("*", "http://anything", false));
        assert!(!wildcard_match("http://a.com", "http://a.com.evil", false));
        assert!(wildcard_match("X-Amz-*", "x-amz-date", true));
    }

    #[test]
    fn the_first_rule_allowing_origin_method_and_headers_wins() {
        let rules =
            vec![rule(&["http://a.test"], &["GET"], &[]), rule(&["http://*.test"], &["PUT", "GET"], &["content-*"])];
        let a = matching_rule(&rules, "http://a.test", "GET", &[]).unwrap();
        assert_eq!(a.allowed_methods, ["GET"]);
        let b = matching_rule(&rules, "http://a.test", "PUT", &["content-type".into()]).unwrap();
        assert_eq!(b.allowed_methods, ["PUT", "GET"]);
        assert!(matching_rule(&rules, "http://a.test", "DELETE", &[]).is_none());
        assert!(matching_rule(&rules, "http://b.test", "PUT", &["authorization".into()]).is_none());
        assert!(matching_rule(&rules, "http://other", "GET", &[]).is_none());
    }

    #[test]
    fn grants_echo_the_origin_unless_any_is_allowed() {
        let specific = grant(&rule(&["http://a.test"], &["GET"], &[]), "http://a.test", None);
        assert!(specific.contains(&("access-control-allow-origin", "http://a.test".into())));
        assert!(specific.contains(&("access-control-allow-credentials", "true".into())));
        let any = grant(&rule(&["*"], &["GET"], &[]), "http://a.test", None);
        assert!(any.contains(&("access-control-allow-origin", "*".into())));
    }
}
