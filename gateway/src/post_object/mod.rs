//! POST Object: the browser form upload (AWS: "Browser-Based Uploads Using POST"), handled in
//! the front end instead of by s3s, which would gather the whole file in memory. The form's
//! fields are read first ([`form`]), its policy and signature checked ([`policy`]), the
//! caller authorized by the access step as for s3:PutObject on the form's key, and the file
//! streamed into PutObject's staging and commit path, with its size bounds enforced on the way.

pub mod form;
pub mod policy;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, ETAG, HOST, LOCATION, REFERER, USER_AGENT};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use s3s::auth::S3Auth;
use s3s::dto::{ETag, ObjectCannedACL, PostResponse, PutObjectInput, StreamingBlob, Timestamp, TimestampFormat};
use s3s::host::S3Host;
use s3s::path::{parse_path_style, parse_virtual_hosted_style, S3Path};
use s3s::{s3_error, Body, S3Error, S3Request, S3Result, S3};
use time::OffsetDateTime;

use crate::access::{AccessRequest, Authorize, RequestContext, RequestFacts};
use crate::authz::conditions::{ClientConnection, RequestParts};
use crate::authz::Authorization;
use crate::identity::DomainHost;
use crate::s3::Gateway;
use crate::sts::auth::Authenticator;
use crate::{parse, sse, unsupported};
use policy::{Credential, SizeRange};

/// The operation name of form uploads, in the access step's table and the audit log.
const OPERATION: &str = "PostObject";

/// Characters of a key escaped in the `Location` URL (`/` stays a path separator).
const KEY_ESCAPES: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// True for a request s3s would take as a POST form upload: a POST whose body is
/// `multipart/form-data`.
pub fn is_form_upload(method: &Method, headers: &HeaderMap) -> bool {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    *method == Method::POST && essence.eq_ignore_ascii_case("multipart/form-data")
}

/// Handles POST form uploads with the gateway's own PutObject path and access step.
pub struct PostObjects {
    gateway: Gateway,
    auth: Authenticator,
    authorize: Authorize,
    host: Option<DomainHost>,
    region: String,
}

impl std::fmt::Debug for PostObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostObjects").field("region", &self.region).finish_non_exhaustive()
    }
}

/// Who signed a form, once its signature holds.
struct Signer {
    access_key: String,
    session_token: Option<String>,
}

impl PostObjects {
    /// Form uploads into `gateway`, signed with the keys `auth` knows for `region`, authorized
    /// by `authorize`; `host` names the virtual-host domains, if any.
    pub fn new(
        gateway: Gateway,
        auth: Authenticator,
        authorize: Authorize,
        host: Option<DomainHost>,
        region: &str,
    ) -> Self {
        Self { gateway, auth, authorize, host, region: region.to_owned() }
    }

    /// Answers one form upload; `context` receives the request's facts for the audit log.
    pub async fn handle(&self, req: Request<Body>, context: &RequestContext) -> S3Result<Response<Body>> {
        let (parts, body) = req.into_parts();
        let (bucket, virtual_host) = self.bucket_of(&parts.uri, &parts.headers)?;
        let mut facts =
            RequestFacts { api: Some(OPERATION.to_owned()), bucket: Some(bucket.clone()), ..Default::default() };
        context.record(facts.clone());
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let form = form::read(body, &form::boundary(content_type)?).await?;
        let fields = &form.fields;
        let connection = parts.extensions.get::<ClientConnection>().copied();
        let secure = connection.is_some_and(|c| c.secure);
        sse::headers::refuse_customer_key_names_in_clear(secure, fields.keys().map(String::as_str))?;
        let key = fields.get("key").ok_or_else(|| missing_field("key"))?;
        let key = key.replace("${filename}", form.filename.as_deref().unwrap_or_default());
        parse::check_key(&key)?;
        facts.key = Some(key.clone());
        let (signer, range) = match fields.get("policy") {
            Some(policy) => {
                let signer = self.verify(fields, policy).await?;
                facts.principal = Some(signer.access_key.clone());
                context.record(facts.clone());
                let policy = policy::parse(policy)?;
                (Some(signer), policy::check(&policy, fields, &bucket, OffsetDateTime::now_utc())?)
            }
            None => (None, None),
        };
        context.record(facts);
        let authorization = self
            .authorize_upload(&parts.uri, &parts.headers, fields, &bucket, &key, signer.as_ref(), connection)
            .await?;
        for (name, value) in fields {
            unsupported::refuse_setting(name, value)?;
        }
        let violation = Arc::new(AtomicU8::new(WITHIN_RANGE));
        let file = SizedFile { field: form.file, seen: 0, range, violation: Arc::clone(&violation), ended: false };
        let put = self.put_request(fields, &bucket, &key, StreamingBlob::wrap(file), authorization)?;
        let output = match self.gateway.put_object(put).await {
            Ok(response) => response.output,
            Err(e) => return Err(range_violation(&violation).unwrap_or(e)),
        };
        let etag = output.e_tag.as_ref().map(quoted).unwrap_or_default();
        let location = object_url(secure, &parts.headers, &bucket, &key, virtual_host);
        let mut response = success(fields, &bucket, &key, &etag, &location)?;
        let headers = response.headers_mut();
        insert(headers, ETAG, &etag);
        if !headers.contains_key(LOCATION) {
            insert(headers, LOCATION, &location);
        }
        if let Some(version) = &output.version_id {
            insert(headers, HeaderName::from_static("x-amz-version-id"), version);
        }
        if let Some(sse) = &output.server_side_encryption {
            insert(headers, HeaderName::from_static("x-amz-server-side-encryption"), sse.as_str());
        }
        Ok(response)
    }

    /// The bucket a form is posted to, and whether the Host header named it. A form posted to
    /// an object's path is not a form upload S3 knows.
    fn bucket_of(&self, uri: &hyper::Uri, headers: &HeaderMap) -> S3Result<(String, bool)> {
        let host = headers.get(HOST).and_then(|v| v.to_str().ok());
        let (parsed, virtual_host) = match (&self.host, host) {
            (Some(domains), Some(host)) => {
                let vh = domains.parse_host_header(host)?;
                let named = vh.bucket().is_some();
                (parse_virtual_hosted_style(vh.bucket(), uri.path()), named)
            }
            _ => (parse_path_style(uri.path()), false),
        };
        match parsed.map_err(|_| s3_error!(InvalidURI, "Couldn't parse the specified URI."))? {
            S3Path::Bucket { bucket } => Ok((bucket.to_string(), virtual_host)),
            _ => Err(s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource.")),
        }
    }

    /// Checks the form's SigV4 signature of its policy, as AWS does for a form with a policy.
    async fn verify(&self, fields: &BTreeMap<String, String>, policy: &str) -> S3Result<Signer> {
        let field = |name: &'static str| fields.get(name).map(String::as_str).ok_or_else(|| missing_field(name));
        let algorithm = field("x-amz-algorithm")?;
        if algorithm != policy::ALGORITHM {
            return Err(s3_error!(InvalidArgument, "The x-amz-algorithm of a POST form must be AWS4-HMAC-SHA256."));
        }
        let credential = Credential::parse(field("x-amz-credential")?)?;
        credential.check_date(field("x-amz-date")?)?;
        let signature = field("x-amz-signature")?;
        if credential.region != self.region {
            return Err(s3_error!(
                AuthorizationQueryParametersError,
                "Error parsing the X-Amz-Credential parameter; the region '{}' is wrong; expecting '{}'",
                credential.region,
                self.region
            ));
        }
        let secret = self.auth.get_secret_key(&credential.access_key).await?;
        policy::verify_signature(secret.expose(), &credential, policy, signature)?;
        let session_token = fields.get("x-amz-security-token").cloned();
        Ok(Signer { access_key: credential.access_key, session_token })
    }

    /// The access step's decision on s3:PutObject for `key`, judged on what the upload applies:
    /// the headers of [`decision_headers`], and for a signed form the signer's key with
    /// s3:authType `POST`.
    #[allow(clippy::too_many_arguments)]
    async fn authorize_upload(
        &self,
        uri: &hyper::Uri,
        request_headers: &HeaderMap,
        fields: &BTreeMap<String, String>,
        bucket: &str,
        key: &str,
        signer: Option<&Signer>,
        connection: Option<ClientConnection>,
    ) -> S3Result<Authorization> {
        let headers = decision_headers(request_headers, fields, signer)?;
        let path = S3Path::object(bucket, key);
        let request = AccessRequest {
            operation: OPERATION,
            path: &path,
            access_key: signer.map(|s| s.access_key.as_str()),
            parts: RequestParts { uri, headers: &headers, connection, signed_form: signer.is_some() },
        };
        self.authorize.decide(&request).await
    }

    /// The PutObject request the form stands for: its key, standard headers, user metadata,
    /// encryption and checksum fields, and the file as the body.
    fn put_request(
        &self,
        fields: &BTreeMap<String, String>,
        bucket: &str,
        key: &str,
        body: StreamingBlob,
        authorization: Authorization,
    ) -> S3Result<S3Request<PutObjectInput>> {
        let field = |name: &str| fields.get(name).cloned();
        let expires = match fields.get("expires") {
            Some(text) => Some(
                Timestamp::parse(TimestampFormat::HttpDate, text)
                    .map_err(|_| s3_error!(InvalidArgument, "The Expires field of the form is not an HTTP date."))?,
            ),
            None => None,
        };
        let metadata: s3s::dto::Metadata = fields
            .iter()
            .filter_map(|(name, value)| name.strip_prefix("x-amz-meta-").map(|n| (n.to_owned(), value.clone())))
            .collect();
        let tagging = fields.get("tagging").map(|xml| tagging_query(xml)).transpose()?;
        let input = PutObjectInput {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            body: Some(body),
            cache_control: field("cache-control"),
            content_type: field("content-type"),
            content_disposition: field("content-disposition"),
            content_encoding: field("content-encoding"),
            content_language: field("content-language"),
            content_md5: field("content-md5"),
            expires,
            metadata: (!metadata.is_empty()).then_some(metadata),
            tagging,
            server_side_encryption: field("x-amz-server-side-encryption").map(Into::into),
            ssekms_key_id: field("x-amz-server-side-encryption-aws-kms-key-id"),
            sse_customer_algorithm: field("x-amz-server-side-encryption-customer-algorithm"),
            sse_customer_key: field("x-amz-server-side-encryption-customer-key"),
            sse_customer_key_md5: field("x-amz-server-side-encryption-customer-key-md5"),
            bucket_key_enabled: field("x-amz-server-side-encryption-bucket-key-enabled")
                .map(|v| v.eq_ignore_ascii_case("true")),
            acl: field("acl").map(ObjectCannedACL::from),
            grant_read: field("x-amz-grant-read"),
            grant_read_acp: field("x-amz-grant-read-acp"),
            grant_write_acp: field("x-amz-grant-write-acp"),
            grant_full_control: field("x-amz-grant-full-control"),
            ..Default::default()
        };
        // The checksum fields reach PutObject's body check the way its headers would.
        let mut headers = HeaderMap::new();
        for (name, value) in fields.iter().filter(|(name, _)| name.starts_with("x-amz-checksum-")) {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        }
        let mut extensions = hyper::http::Extensions::new();
        extensions.insert(authorization);
        Ok(S3Request {
            input,
            method: Method::PUT,
            uri: hyper::Uri::default(),
            headers,
            extensions,
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        })
    }
}

/// The headers the access step judges a form upload on, built from nothing: `Host`, `Referer`
/// and `User-Agent` from the request, everything else from the form's fields as the upload
/// applies them (the ACL, encryption, content type, user metadata, tags as `x-amz-tagging`,
/// the signer's session token). A request header the upload ignores, `Authorization`
/// included, must not satisfy a policy condition.
fn decision_headers(
    request_headers: &HeaderMap,
    fields: &BTreeMap<String, String>,
    signer: Option<&Signer>,
) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for name in [HOST, REFERER, USER_AGENT] {
        if let Some(value) = request_headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    for (name, value) in fields {
        let name = if name == "acl" { "x-amz-acl" } else { name.as_str() };
        let applied = name == "x-amz-acl"
            || name.starts_with("x-amz-grant-")
            || name == "content-type"
            || name.starts_with("x-amz-server-side-encryption")
            || name.starts_with("x-amz-meta-");
        if !applied {
            continue;
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            return Err(s3_error!(InvalidArgument, "The form field {name} is not a valid header value."));
        };
        headers.insert(name, value);
    }
    if let Some(xml) = fields.get("tagging") {
        let query = tagging_query(xml)?;
        let value = HeaderValue::from_str(&query)
            .map_err(|_| s3_error!(InvalidArgument, "The form's tagging is not a valid header value."))?;
        headers.insert("x-amz-tagging", value);
    }
    if let Some(token) = signer.and_then(|s| s.session_token.as_deref()) {
        let value = HeaderValue::from_str(token)
            .map_err(|_| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
        headers.insert("x-amz-security-token", value);
    }
    Ok(headers)
}

fn missing_field(name: &str) -> S3Error {
    s3_error!(
        InvalidArgument,
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    )
}

/// The form's `tagging` field, a `<Tagging>` document, as the query string of the
/// `x-amz-tagging` header PutObject reads.
fn tagging_query(xml: &str) -> S3Result<String> {
    let malformed = || {
        s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema."
        )
    };
    let tagging: s3s::dto::Tagging = s3s::xml::Deserializer::new(xml.as_bytes())
        .named_element("Tagging", |d| d.content())
        .map_err(|_| malformed())?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for tag in &tagging.tag_set {
        query.append_pair(&tag.key.clone().unwrap_or_default(), &tag.value.clone().unwrap_or_default());
    }
    Ok(query.finish())
}

/// The answer to a stored form upload: a redirect to `success_action_redirect` (or the older
/// `redirect`) with the object named in its query, else the status `success_action_status`
/// asks for: 200 or 204 empty, 201 with a PostResponse document; 204 by default.
fn success(
    fields: &BTreeMap<String, String>,
    bucket: &str,
    key: &str,
    etag: &str,
    location: &str,
) -> S3Result<Response<Body>> {
    let redirect = fields.get("success_action_redirect").or_else(|| fields.get("redirect"));
    if let Some(target) = redirect.filter(|t| t.starts_with("http://") || t.starts_with("https://")) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("bucket", bucket)
            .append_pair("key", key)
            .append_pair("etag", etag)
            .finish();
        let separator = if target.contains('?') { '&' } else { '?' };
        let mut response = empty(StatusCode::SEE_OTHER);
        insert(response.headers_mut(), LOCATION, &format!("{target}{separator}{query}"));
        return Ok(response);
    }
    match fields.get("success_action_status").map(String::as_str) {
        Some("200") => Ok(empty(StatusCode::OK)),
        Some("201") => {
            let document = PostResponse { location, bucket, key, etag };
            let mut body = Vec::new();
            let mut serializer = s3s::xml::Serializer::new(&mut body);
            serializer
                .decl()
                .and_then(|()| s3s::xml::Serialize::serialize(&document, &mut serializer))
                .map_err(|e| s3_error!(InternalError, "PostResponse not serialised: {e}"))?;
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::CREATED;
            insert(response.headers_mut(), CONTENT_TYPE, "application/xml");
            Ok(response)
        }
        _ => Ok(empty(StatusCode::NO_CONTENT)),
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn quoted(etag: &ETag) -> String {
    match etag {
        ETag::Strong(value) => format!("\"{value}\""),
        ETag::Weak(value) => format!("W/\"{value}\""),
    }
}

/// The object's URL as the client addressed the bucket, for `Location`.
fn object_url(secure: bool, headers: &HeaderMap, bucket: &str, key: &str, virtual_host: bool) -> String {
    let scheme = if secure { "https" } else { "http" };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = percent_encoding::utf8_percent_encode(key, KEY_ESCAPES);
    if virtual_host {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{bucket}/{key}")
    }
}

/// The file's size was within its policy's `content-length-range` (or it had none).
const WITHIN_RANGE: u8 = 0;
/// The file had more bytes than the range allows.
const ABOVE_RANGE: u8 = 1;
/// The file ended with fewer bytes than the range requires.
const BELOW_RANGE: u8 = 2;

/// The error to answer when the file broke its size bounds, which made its stream fail.
fn range_violation(violation: &AtomicU8) -> Option<S3Error> {
    match violation.load(Ordering::SeqCst) {
        ABOVE_RANGE => Some(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size")),
        BELOW_RANGE => Some(s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed size")),
        _ => None,
    }
}

/// The file part, failing as soon as it passes its maximum size, or at its end when it is
/// shorter than its minimum: the failure makes the write fail before anything is committed.
struct SizedFile {
    field: multer::Field<'static>,
    seen: u64,
    range: Option<SizeRange>,
    violation: Arc<AtomicU8>,
    ended: bool,
}

impl SizedFile {
    fn fail(&mut self, violation: u8) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.violation.store(violation, Ordering::SeqCst);
        self.ended = true;
        Poll::Ready(Some(Err(std::io::Error::other("the file breaks the policy's content-length-range"))))
    }
}

impl Stream for SizedFile {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.field).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.range.is_some_and(|r| self.seen > r.max) {
                    return self.fail(ABOVE_RANGE);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                if self.range.is_some_and(|r| self.seen < r.min) {
                    return self.fail(BELOW_RANGE);
                }
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_see_only_what_the_upload_applies() {
        let mut request = HeaderMap::new();
        for (name, value) in [
            ("host", "s3.example"),
            ("user-agent", "browser"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=fake"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-tagging", "team=red"),
            ("x-amz-acl", "public-read"),
            ("x-amz-security-token", "stolen"),
        ] {
            request.insert(name, HeaderValue::from_static(value));
        }
        let fields: BTreeMap<String, String> = [
            ("key", "k"),
            ("acl", "private"),
            ("content-type", "text/plain"),
            ("x-amz-meta-color", "blue"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("tagging", "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag></TagSet></Tagging>"),
            ("success_action_status", "201"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        let headers = decision_headers(&request, &fields, None).unwrap();
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(get("host"), Some("s3.example"));
        assert_eq!(get("user-agent"), Some("browser"));
        assert_eq!(get("authorization"), None, "never the request's Authorization");
        assert_eq!(get("x-amz-security-token"), None, "an unsigned form has no token");
        assert_eq!(get("x-amz-server-side-encryption"), Some("aws:kms"));
        assert_eq!(get("x-amz-tagging"), Some("team=blue"));
        assert_eq!(get("x-amz-acl"), Some("private"));
        assert_eq!(get("content-type"), Some("text/plain"));
        assert_eq!(get("x-amz-meta-color"), Some("blue"));
        assert_eq!(headers.len(), 7, "{headers:?}");
        // Without the fields, none of the request's own headers stand in for them.
        let bare = decision_headers(&request, &BTreeMap::new(), None).unwrap();
        assert_eq!(bare.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["host", "user-agent"]);
    }
}
