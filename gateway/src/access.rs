//! The access step of the request pipeline: runs after SigV4 authentication, before the
//! operation. Today it requires a signature for this server's region and records who called which operation on what,
//! for metrics and the audit log; bucket and IAM policies will plug in here.

use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};

use crate::parse;

/// What the pipeline learned about a request, shared between the access step and the front
/// end through the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct RequestContext(Arc<Mutex<RequestFacts>>);

/// Facts about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// S3 operation name, once routed (for example `GetObject`).
    pub api: Option<String>,
    /// Access key of the authenticated caller.
    pub principal: Option<String>,
    /// Bucket addressed.
    pub bucket: Option<String>,
    /// Object key addressed.
    pub key: Option<String>,
}

impl RequestContext {
    /// A copy of the facts gathered so far.
    pub fn facts(&self) -> RequestFacts {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn record(&self, facts: RequestFacts) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = facts;
        }
    }
}

/// The access policy: signed requests only, signed for this server's region.
#[derive(Debug, Clone)]
pub struct SignedOnly {
    region: String,
}

impl SignedOnly {
    /// Accepts requests signed for `region`.
    pub fn new(region: &str) -> Self {
        Self { region: region.to_owned() }
    }
}

/// Where the request carries its signature, and the region it was signed for.
fn signed_region(cx: &S3AccessContext<'_>) -> Option<(bool, String)> {
    if let Some(auth) = cx.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let credential = auth.split("Credential=").nth(1)?.split(',').next()?;
        return parse::scope_region(credential).map(|r| (true, r.to_owned()));
    }
    let query = cx.uri().query()?;
    let credential = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    let credential = percent_encoding::percent_decode_str(credential).decode_utf8().ok()?;
    parse::scope_region(&credential).map(|r| (false, r.to_owned()))
}

#[async_trait::async_trait]
impl S3Access for SignedOnly {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let facts = RequestFacts {
            api: Some(cx.s3_op().name().to_owned()),
            principal: cx.credentials().map(|c| c.access_key.clone()),
            bucket,
            key,
        };
        let signed = facts.principal.is_some();
        if let Some(context) = cx.extensions_mut().get::<RequestContext>() {
            context.record(facts);
        }
        if !signed {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        match signed_region(cx) {
            Some((true, region)) if region != self.region => Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; the region '{region}' is wrong; expecting '{}'",
                self.region
            )),
            Some((false, region)) if region != self.region => Err(s3_error!(
                AuthorizationQueryParametersError,
                "Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{}'",
                self.region
            )),
            _ => Ok(()),
        }
    }
}
