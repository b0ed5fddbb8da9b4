//! The STS endpoint on the gateway's address: `POST /` with a form body (or `GET /?Action=...`)
//! carrying `Action=AssumeRoleWithWebIdentity`, answered with AWS STS's XML. Like AWS STS, the
//! request is not signed: the web identity token is the proof.

use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use s3s::Body;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::admission::IdleTimeoutBody;
use crate::sts::{Minted, Sts, StsError};

/// The one action offered.
const ACTION: &str = "AssumeRoleWithWebIdentity";
/// The STS API version clients send.
const VERSION: &str = "2011-06-15";
/// The XML namespace of STS responses.
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Largest form body read (a Keycloak token is a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;
/// RoleSessionName length bounds (AWS).
const SESSION_NAME_LEN: std::ops::RangeInclusive<usize> = 2..=64;

/// True for a request addressed to STS rather than S3: a form POST to `/`, or a GET of `/`
/// with an `Action` parameter. S3 has no operation of either shape.
pub fn is_sts_request<B>(req: &Request<B>) -> bool {
    if req.uri().path() != "/" {
        return false;
    }
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let action_in_query = req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    (req.method() == Method::POST && form) || (req.method() == Method::GET && action_in_query)
}

/// The request's parameters.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, StsError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StsError::MissingParameter(format!("The request must contain the parameter {name}")))
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|(n, _)| n.starts_with(prefix))
    }
}

/// The longest an STS request may take to send its form: with the body-idle timeout of every
/// read, a client trickling bytes cannot hold a request slot (which S3 requests share).
const READ_DEADLINE: Duration = Duration::from_secs(30);

async fn read_params(req: Request<IdleTimeoutBody<Incoming>>) -> Result<Params, StsError> {
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    if req.method() == Method::POST {
        let unread = || {
            StsError::Validation(format!(
                "The request body must be a form of at most {MAX_FORM_BYTES} bytes, sent within {} s",
                READ_DEADLINE.as_secs()
            ))
        };
        let read = tokio::time::timeout(READ_DEADLINE, Limited::new(req.into_body(), MAX_FORM_BYTES).collect());
        let body = read.await.map_err(|_| unread())?.map_err(|_| unread())?.to_bytes();
        pairs.extend(form_urlencoded::parse(&body).into_owned());
    }
    Ok(Params(pairs))
}

/// Answers one STS request; `request_id` goes into the response.
pub async fn handle(sts: &Sts, req: Request<IdleTimeoutBody<Incoming>>, request_id: &str) -> Response<Body> {
    let result = match read_params(req).await {
        Ok(params) => assume_role(sts, &params).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((minted, params)) => xml(StatusCode::OK, success_xml(&minted, &params, request_id)),
        Err(e) => {
            tracing::debug!(code = e.code(), error = %e, "STS request refused");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            xml(status, error_xml(&e, request_id))
        }
    }
}

/// What the response repeats from the request.
struct Echo {
    role_arn: String,
    session_name: String,
}

async fn assume_role(sts: &Sts, params: &Params) -> Result<(Minted, Echo), StsError> {
    match params.get("Action") {
        Some(ACTION) => {}
        Some(other) => {
            return Err(StsError::InvalidAction(format!("Could not find operation {other} for version {VERSION}")))
        }
        None => return Err(StsError::MissingParameter("The request must contain the parameter Action".into())),
    }
    let version = params.required("Version")?;
    if version != VERSION {
        return Err(StsError::InvalidAction(format!("Could not find operation {ACTION} for version {version}")));
    }
    let token = params.required("WebIdentityToken")?;
    let role_arn = params.required("RoleArn")?.to_owned();
    let session_name = params.required("RoleSessionName")?.to_owned();
    if !SESSION_NAME_LEN.contains(&session_name.len())
        || !session_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(StsError::Validation(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and match [\\w+=,.@-]*".into(),
        ));
    }
    if params.get("Policy").is_some() || params.has_prefix("PolicyArns.") {
        return Err(StsError::Validation("Session policies (Policy, PolicyArns) are not supported".into()));
    }
    let duration = match params.get("DurationSeconds") {
        None => None,
        Some(text) => Some(Duration::from_secs(text.parse::<u64>().map_err(|_| {
            StsError::Validation("1 validation error detected: Value at 'durationSeconds' must be an integer".into())
        })?)),
    };
    let minted = sts.assume_role_with_web_identity(token, &role_arn, duration, SystemTime::now()).await?;
    Ok((minted, Echo { role_arn, session_name }))
}

/// The assumed-role ARN for a role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`).
fn assumed_role_arn(role_arn: &str, session_name: &str) -> String {
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", _, account, resource] if resource.starts_with("role/") => {
            let name = resource.rsplit('/').next().unwrap_or_default();
            format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}")
        }
        _ => format!("arn:aws:sts:::assumed-role/web-identity/{session_name}"),
    }
}

fn success_xml(minted: &Minted, echo: &Echo, request_id: &str) -> String {
    let creds = &minted.credentials;
    let expiration =
        OffsetDateTime::from(creds.expires).format(&Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{XMLNS}\"><AssumeRoleWithWebIdentityResult>\
         <SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>\
         <Audience>{audience}</Audience>\
         <AssumedRoleUser><Arn>{arn}</Arn><AssumedRoleId>{key}:{session}</AssumedRoleId></AssumedRoleUser>\
         <Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
         <SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
         <Provider>{provider}</Provider>\
         </AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
         </AssumeRoleWithWebIdentityResponse>",
        subject = escape(&minted.token.subject),
        audience = escape(&minted.token.audience),
        arn = escape(&assumed_role_arn(&echo.role_arn, &echo.session_name)),
        key = escape(&creds.access_key),
        session = escape(&echo.session_name),
        secret = escape(&creds.secret_key),
        token = escape(&creds.session_token),
        provider = escape(&minted.token.issuer),
    )
}

fn error_xml(e: &StsError, request_id: &str) -> String {
    let kind = if e.status() >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>{request_id}</RequestId></ErrorResponse>",
        code = e.code(),
        message = escape(&e.to_string()),
    )
}

fn xml(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// Escapes text for an XML element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, content_type: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_form_posts_and_action_gets_of_the_root_are_sts() {
        let form = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert!(is_sts_request(&request(Method::POST, "/", form)));
        assert!(is_sts_request(&request(Method::GET, "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15", None)));
        assert!(!is_sts_request(&request(Method::GET, "/", None)));
        assert!(!is_sts_request(&request(Method::POST, "/bucket", form)));
        assert!(!is_sts_request(&request(Method::POST, "/", Some("multipart/form-data"))));
        assert!(!is_sts_request(&request(Method::PUT, "/", form)));
    }

    #[test]
    fn assumed_role_arns_follow_aws() {
        assert_eq!(
            assumed_role_arn("arn:aws:iam::123456789012:role/app/s3-writer", "s1"),
            "arn:aws:sts::123456789012:assumed-role/s3-writer/s1"
        );
        assert_eq!(assumed_role_arn("anything", "s1"), "arn:aws:sts:::assumed-role/web-identity/s1");
    }

    #[test]
    fn errors_have_the_sts_shape_and_escaped_text() {
        let body = error_xml(&StsError::InvalidIdentityToken("bad <token>".into()), "R1");
        assert!(
            body.contains("<Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>bad &lt;token&gt;</Message>")
        );
        assert!(body.contains("<RequestId>R1</RequestId>"));
        assert_eq!(StsError::AccessDenied(String::new()).status(), 403);
        assert_eq!(StsError::ExpiredToken.code(), "ExpiredTokenException");
    }
}
