//! `/kms/rewrap`: the bulk rewrap of stored data keys after a KMS key rotation
//! ([`crate::sse::rewrap`], ADR 0009, docs/runbook/encryption-keys.md). Each call rewraps at
//! most `limit` versions after the cursor `after` and answers the page; the caller (the
//! `sovereign-s3 admin kms rewrap` command) calls again with `next` until it is null, so a
//! rewrap of any size is a series of bounded requests that can stop and resume anywhere.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use s3s::{Body, S3Response};
use sovereign_kms_client::Kms;
use storage::ObjectStore;

use crate::admin::error::{json_response, AdminError};
use crate::admin::Call;
use crate::sse::rewrap::{rewrap_page, RewrapError};

/// Versions a call covers when the caller names no limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most versions one call covers.
pub const MAX_LIMIT: usize = 10_000;

/// What the rewrap works on: the object store and the KMS that seals its data keys.
pub struct KeyStore {
    /// The object store.
    pub store: Arc<ObjectStore>,
    /// The KMS (with its data-key cache).
    pub kms: Arc<dyn Kms>,
}

/// Handles `/kms...`.
pub async fn handle(call: &Call<'_>, keys: &KeyStore) -> Result<S3Response<Body>, AdminError> {
    match (call.method, call.path().as_slice()) {
        (&Method::POST, ["kms", "rewrap"]) => {
            call.caller.require("admin:KMSRewrap")?;
            let limit = call.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
            let page = rewrap_page(&keys.store, keys.kms.as_ref(), call.query_value("after"), limit).await;
            match page {
                Ok(page) => Ok(json_response(StatusCode::OK, &page)),
                Err(RewrapError::InvalidCursor) => {
                    Err(AdminError::invalid("after is not a cursor a rewrap handed out"))
                }
                Err(e @ (RewrapError::Storage(_) | RewrapError::Kms(_))) => Err(AdminError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!("the rewrap stopped: {e}; call again with the same cursor"),
                )),
            }
        }
        _ => Err(call.unknown()),
    }
}
