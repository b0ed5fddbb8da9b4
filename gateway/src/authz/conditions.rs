//! The condition keys of a request, for policy conditions and variables: who calls (aws:*,
//! jwt:*), from where (aws:SourceIp, aws:SecureTransport), when (aws:CurrentTime,
//! aws:EpochTime), and what the request says (s3:prefix, s3:delimiter, s3:max-keys,
//! s3:VersionId, SSE and ACL headers, request object tags, signature version).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{AUTHORIZATION, REFERER, USER_AGENT};
use hyper::{HeaderMap, Uri};
use policy::Context;
use time::OffsetDateTime;

use crate::principal::Principal;

/// The connection a request came on, which the front end puts in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConnection {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub secure: bool,
}

/// Query parameters that become condition keys.
const QUERY_KEYS: &[(&str, &str)] = &[
    ("prefix", "s3:prefix"),
    ("delimiter", "s3:delimiter"),
    ("max-keys", "s3:max-keys"),
    ("versionId", "s3:VersionId"),
];

/// Request headers that become `s3:<header>` condition keys.
const HEADER_KEYS: &[&str] = &[
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// The other condition keys [`request_context`] supplies, in lower case; an entry ending in `/`
/// or `:` names a family (`s3:RequestObjectTag/<key>`, `jwt:<claim>`).
const OTHER_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:securetransport",
    "aws:currenttime",
    "aws:epochtime",
    "aws:referer",
    "aws:useragent",
    "aws:principaltype",
    "aws:username",
    "aws:userid",
    "s3:signatureversion",
    "s3:authtype",
    "s3:requestobjecttagkeys",
    "s3:requestobjecttag/",
    // Supplied by the access step from the object itself (`Authorization::with_existing_tags`).
    "s3:existingobjecttag/",
    "jwt:",
];

/// Whether [`request_context`] supplies the condition key `key` (when the request has it). A
/// policy naming any other key is refused where it is stored: a condition on a key that is never
/// supplied would silently never match, and a Deny on it would never apply.
pub fn supplies(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    OTHER_KEYS.iter().any(|known| match known.ends_with(['/', ':']) {
        true => key.starts_with(known),
        false => key == *known,
    }) || QUERY_KEYS.iter().any(|(_, known)| key == known.to_ascii_lowercase())
        || HEADER_KEYS.iter().any(|header| key.strip_prefix("s3:") == Some(header))
}

/// A query parameter that names a condition key appears more than once: its value is
/// ambiguous, and the request is refused rather than judged on one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousQuery(pub &'static str);

/// The parts of a request its condition keys come from.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The request URI (its query).
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The connection, if the front end recorded it.
    pub connection: Option<ClientConnection>,
    /// A POST form upload signed with a policy: its signature is in the form, not in the
    /// request's `Authorization` header or query.
    pub signed_form: bool,
}

impl RequestParts<'_> {
    /// The single value of query parameter `name`, decoded as s3s decodes it.
    pub fn query_value(&self, name: &str) -> Result<Option<String>, AmbiguousQuery> {
        let mut values = query_pairs(self.uri).filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            let known = QUERY_KEYS.iter().find(|(q, _)| *q == name).map_or("query", |(q, _)| *q);
            return Err(AmbiguousQuery(known));
        }
        Ok(first)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Query pairs, `application/x-www-form-urlencoded` decoded (as s3s decodes the query).
fn query_pairs(uri: &Uri) -> impl Iterator<Item = (String, String)> + '_ {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    };
    uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).map(move |pair| match pair.split_once('=') {
        Some((k, v)) => (decode(k), decode(v)),
        None => (decode(pair), String::new()),
    })
}

/// The condition keys of a request from `principal`, at `now`.
pub fn request_context(
    parts: &RequestParts<'_>,
    principal: &Principal,
    now: SystemTime,
) -> Result<Context, AmbiguousQuery> {
    let mut context = Context::default();
    caller_keys(&mut context, principal);
    if let Some(connection) = parts.connection {
        context.insert("aws:SourceIp", connection.peer.ip().to_canonical().to_string());
        context.insert("aws:SecureTransport", connection.secure.to_string());
    }
    let at = OffsetDateTime::from(now);
    context.insert("aws:CurrentTime", rfc3339(at));
    context.insert("aws:EpochTime", now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string());
    for (query, key) in QUERY_KEYS {
        if let Some(value) = parts.query_value(query)? {
            context.insert(key, value);
        }
    }
    for header in HEADER_KEYS {
        if let Some(value) = parts.header(header) {
            context.insert(&format!("s3:{header}"), value);
        }
    }
    if let Some(tagging) = parts.header("x-amz-tagging") {
        for (key, value) in form_pairs(tagging) {
            context.insert("s3:RequestObjectTagKeys", key.clone());
            context.insert(&format!("s3:RequestObjectTag/{key}"), value);
        }
    }
    for (key, header) in [("aws:Referer", REFERER.as_str()), ("aws:UserAgent", USER_AGENT.as_str())] {
        if let Some(value) = parts.header(header) {
            context.insert(key, value);
        }
    }
    signature_keys(&mut context, parts);
    Ok(context)
}

/// aws:PrincipalType, aws:username, aws:userid, and a session's token claims as jwt:<claim>.
fn caller_keys(context: &mut Context, principal: &Principal) {
    match principal {
        Principal::Anonymous => context.insert("aws:PrincipalType", "Anonymous"),
        Principal::Root { access_key } => {
            context.insert("aws:PrincipalType", "Account");
            context.insert("aws:userid", access_key.clone());
        }
        Principal::User(user) => {
            context.insert("aws:PrincipalType", "User");
            context.insert("aws:username", user.name.clone());
            context.insert("aws:userid", user.name.clone());
        }
        Principal::ServiceAccount(account) => {
            context.insert("aws:PrincipalType", "User");
            context.insert("aws:username", account.parent.name().to_owned());
            context.insert("aws:userid", account.access_key.clone());
        }
        Principal::Session(session) => {
            context.insert("aws:PrincipalType", "AssumedRole");
            context.insert("aws:username", session.subject.clone());
            context.insert("aws:userid", session.subject.clone());
            crate::sts::claims::claim_keys(context, &session.claims);
        }
    }
}

/// s3:signatureversion (`AWS4-HMAC-SHA256` or `AWS`) and s3:authType (`REST-HEADER`,
/// `REST-QUERY-STRING`, `POST`), for signed requests.
fn signature_keys(context: &mut Context, parts: &RequestParts<'_>) {
    let query_has = |name: &str| query_pairs(parts.uri).any(|(k, _)| k == name);
    if parts.signed_form {
        // POST forms are signed with SigV4 only (the policy's x-amz-algorithm).
        context.insert("s3:signatureversion", "AWS4-HMAC-SHA256");
        context.insert("s3:authType", "POST");
    } else if let Some(auth) = parts.header(AUTHORIZATION.as_str()) {
        let version = if auth.starts_with("AWS4-HMAC-SHA256") { "AWS4-HMAC-SHA256" } else { "AWS" };
        context.insert("s3:signatureversion", version);
        context.insert("s3:authType", "REST-HEADER");
    } else if query_has("X-Amz-Signature") {
        context.insert("s3:signatureversion", "AWS4-HMAC-SHA256");
        context.insert("s3:authType", "REST-QUERY-STRING");
    } else if query_has("Signature") {
        context.insert("s3:signatureversion", "AWS");
        context.insert("s3:authType", "REST-QUERY-STRING");
    }
}

/// `k1=v1&k2=v2`, form-decoded (the `x-amz-tagging` header).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// `2024-06-01T12:00:00Z`: the form of aws:CurrentTime.
fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parts<'a>(uri: &'a Uri, headers: &'a HeaderMap, connection: Option<ClientConnection>) -> RequestParts<'a> {
        RequestParts { uri, headers, connection, signed_form: false }
    }

    #[test]
    fn keys_from_the_connection_query_headers_and_clock() {
        let uri: Uri = "/b?list-type=2&prefix=public%2Fa+b&delimiter=%2F&max-keys=10".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-server-side-encryption", "aws:kms".parse().unwrap());
        headers.insert("x-amz-acl", "public-read".parse().unwrap());
        headers.insert("x-amz-tagging", "team=blue&cost%20centre=42".parse().unwrap());
        headers.insert(AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=x".parse().unwrap());
        let connection = ClientConnection { peer: "[::ffff:10.1.2.3]:5000".parse().unwrap(), secure: true };
        let now = UNIX_EPOCH + Duration::from_secs(1_717_243_200);
        let context = request_context(&parts(&uri, &headers, Some(connection)), &Principal::Anonymous, now).unwrap();
        let one = |key: &str| context.get(key).map(|v| v.join(","));
        assert_eq!(one("aws:SourceIp").as_deref(), Some("10.1.2.3"));
        assert_eq!(one("aws:SecureTransport").as_deref(), Some("true"));
        assert_eq!(one("aws:CurrentTime").as_deref(), Some("2024-06-01T12:00:00Z"));
        assert_eq!(one("aws:EpochTime").as_deref(), Some("1717243200"));
        assert_eq!(one("aws:PrincipalType").as_deref(), Some("Anonymous"));
        assert_eq!(one("s3:prefix").as_deref(), Some("public/a b"));
        assert_eq!(one("s3:delimiter").as_deref(), Some("/"));
        assert_eq!(one("s3:max-keys").as_deref(), Some("10"));
        assert_eq!(one("s3:x-amz-server-side-encryption").as_deref(), Some("aws:kms"));
        assert_eq!(one("s3:x-amz-acl").as_deref(), Some("public-read"));
        assert_eq!(one("s3:RequestObjectTag/team").as_deref(), Some("blue"));
        assert_eq!(one("s3:RequestObjectTag/cost centre").as_deref(), Some("42"));
        assert_eq!(one("s3:signatureversion").as_deref(), Some("AWS4-HMAC-SHA256"));
        assert_eq!(one("s3:authType").as_deref(), Some("REST-HEADER"));
        assert_eq!(one("s3:VersionId"), None);
    }

    #[test]
    fn a_signed_form_is_a_post_signature_whatever_its_headers_say() {
        let uri: Uri = "/b".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "AWS Credential=x".parse().unwrap());
        let form = RequestParts { uri: &uri, headers: &headers, connection: None, signed_form: true };
        let context = request_context(&form, &Principal::Anonymous, SystemTime::now()).unwrap();
        assert_eq!(context.get("s3:authType"), Some(&["POST".to_owned()][..]));
        assert_eq!(context.get("s3:signatureversion"), Some(&["AWS4-HMAC-SHA256".to_owned()][..]));
    }

    #[test]
    fn a_repeated_condition_parameter_is_ambiguous() {
        let uri: Uri = "/b?prefix=public/&prefix=private/".parse().unwrap();
        let headers = HeaderMap::new();
        let result = request_context(&parts(&uri, &headers, None), &Principal::Anonymous, SystemTime::now());
        assert_eq!(result, Err(AmbiguousQuery("prefix")));
    }

    #[test]
    fn session_claims_become_jwt_keys() {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "u-1".into());
        claims.insert("groups".into(), serde_json::json!(["a", "b"]));
        claims.insert("level".into(), serde_json::json!(3));
        let session = crate::principal::Session {
            access_key: "AK".into(),
            issuer: "https://idp".into(),
            subject: "u-1".into(),
            policies: vec![],
            claims,
            expires: SystemTime::now(),
        };
        let uri: Uri = "/".parse().unwrap();
        let headers = HeaderMap::new();
        let context =
            request_context(&parts(&uri, &headers, None), &Principal::Session(session), SystemTime::now()).unwrap();
        assert_eq!(context.get("jwt:sub"), Some(&["u-1".to_owned()][..]));
        assert_eq!(context.get("jwt:groups").map(<[String]>::len), Some(2));
        assert_eq!(context.get("jwt:level"), Some(&["3".to_owned()][..]));
        assert_eq!(context.get("aws:username"), Some(&["u-1".to_owned()][..]));
        assert_eq!(context.get("aws:PrincipalType"), Some(&["AssumedRole".to_owned()][..]));
    }
}
