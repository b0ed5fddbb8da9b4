//! Errors of the admin API: a JSON body `{"code": ..., "message": ...}` (and `position` for a
//! malformed policy) with the status that goes with the code (docs/admin-api.md).

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use s3s::{Body, S3Response};
use serde::Serialize;

use crate::iam::IamError;

/// One refusal of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Where a policy document is malformed.
    pub position: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<&'a str>,
}

impl AdminError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), position: None }
    }

    /// 400 InvalidRequest: the request is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 403 AccessDenied: the caller may not do this.
    pub fn access_denied(action: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", format!("Access Denied: {action} is not allowed"))
    }

    /// 404 NoSuchOperation: no operation at this method and path.
    pub fn no_such_operation(method: &str, path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchOperation", format!("no admin operation {method} {path}"))
    }

    /// The JSON response.
    pub fn response(&self) -> S3Response<Body> {
        let body = ErrorBody { code: self.code, message: &self.message, position: self.position.as_deref() };
        json_response(self.status, &body)
    }
}

impl From<IamError> for AdminError {
    fn from(e: IamError) -> Self {
        match e {
            IamError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "NoSuchEntity", m),
            IamError::AlreadyExists(m) => Self::new(StatusCode::CONFLICT, "EntityAlreadyExists", m),
            IamError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            IamError::Invalid(m) => Self::invalid(m),
            IamError::Denied(m) => Self::new(StatusCode::FORBIDDEN, "AccessDenied", m),
            IamError::MalformedPolicy(malformed) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "MalformedPolicy",
                message: malformed.message.clone(),
                position: Some(malformed.position.to_string()),
            },
            IamError::Busy(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", m),
            e @ (IamError::Kms(_) | IamError::Storage(_)) => {
                tracing::warn!(error = %e, "admin operation failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the IAM store is not available; try again",
                )
            }
            IamError::Internal(m) => {
                tracing::error!(error = %m, "admin operation failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal error")
            }
        }
    }
}

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> S3Response<Body> {
    let (status, bytes) = match serde_json::to_vec(value) {
        Ok(bytes) => (status, bytes),
        Err(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, br#"{"code":"InternalError","message":"internal error"}"#.to_vec())
        }
    };
    let mut response = S3Response::new(Body::from(bytes));
    response.status = Some(status);
    response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty 204 response.
pub fn no_content() -> S3Response<Body> {
    let mut response = S3Response::new(Body::empty());
    response.status = Some(StatusCode::NO_CONTENT);
    response
}
