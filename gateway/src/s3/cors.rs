//! Bucket CORS configuration: PutBucketCors, GetBucketCors, DeleteBucketCors. The rules are
//! applied to requests by [`crate::cors`].

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::bucket_config::CorsRule;

use super::Gateway;
use crate::cors::CORS_METHODS;
use crate::error::OrS3;

/// Most rules a CORS configuration may hold.
const MAX_CORS_RULES: usize = 100;

/// A rule as stored, after S3's checks on it.
fn stored_rule(rule: CORSRule) -> S3Result<CorsRule> {
    for method in &rule.allowed_methods {
        if !CORS_METHODS.contains(&method.as_str()) {
            return Err(s3_error!(
                InvalidRequest,
                "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            ));
        }
    }
    if rule.allowed_origins.iter().any(|o| o.matches('*').count() > 1) {
        return Err(s3_error!(
            InvalidRequest,
            "AllowedOrigin can not have more than one wildcard: {}",
            rule.allowed_origins.join(", ")
        ));
    }
    let allowed_headers = rule.allowed_headers.unwrap_or_default();
    if let Some(header) = allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
        return Err(s3_error!(InvalidRequest, "AllowedHeader {header} can have at most one * wildcard character"));
    }
    if rule.allowed_methods.is_empty() || rule.allowed_origins.is_empty() {
        return Err(s3_error!(MalformedXML, "A CORS rule needs an AllowedMethod and an AllowedOrigin."));
    }
    Ok(CorsRule {
        id: rule.id,
        allowed_origins: rule.allowed_origins,
        allowed_methods: rule.allowed_methods,
        allowed_headers,
        expose_headers: rule.expose_headers.unwrap_or_default(),
        max_age_seconds: rule.max_age_seconds,
    })
}

/// A stored rule in the response's shape.
fn answered_rule(rule: CorsRule) -> CORSRule {
    CORSRule {
        id: rule.id,
        allowed_origins: rule.allowed_origins,
        allowed_methods: rule.allowed_methods,
        allowed_headers: (!rule.allowed_headers.is_empty()).then_some(rule.allowed_headers),
        expose_headers: (!rule.expose_headers.is_empty()).then_some(rule.expose_headers),
        max_age_seconds: rule.max_age_seconds,
    }
}

impl Gateway {
    pub(super) async fn put_bucket_cors_impl(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let input = req.input;
        let rules = input.cors_configuration.cors_rules;
        if rules.is_empty() || rules.len() > MAX_CORS_RULES {
            return Err(s3_error!(MalformedXML, "A CORS configuration holds 1 to {MAX_CORS_RULES} rules."));
        }
        let rules = rules.into_iter().map(stored_rule).collect::<S3Result<Vec<_>>>()?;
        self.store
            .update_bucket_config(&input.bucket, |config| {
                config.cors = Some(rules);
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    pub(super) async fn get_bucket_cors_impl(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).await.or_s3()?;
        let rules =
            config.cors.ok_or_else(|| s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist"))?;
        Ok(S3Response::new(GetBucketCorsOutput { cors_rules: Some(rules.into_iter().map(answered_rule).collect()) }))
    }

    pub(super) async fn delete_bucket_cors_impl(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        self.store
            .update_bucket_config(&req.input.bucket, |config| {
                config.cors = None;
                Ok(())
            })
            .await
            .or_s3()?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }
}
