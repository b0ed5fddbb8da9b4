//! `/policies`: create or replace (the body is the policy document; a malformed one is refused
//! with MalformedPolicy and its position), list (built-ins too), get, delete (not a built-in,
//! not while attached).

use hyper::{Method, StatusCode};
use s3s::{Body, S3Response};
use serde::Serialize;

use crate::admin::error::{json_response, no_content, AdminError};
use crate::admin::Call;
use crate::iam::policies::PolicyInfo;

/// A policy as the API shows it.
#[derive(Debug, Serialize)]
struct PolicyView {
    name: String,
    builtin: bool,
    document: serde_json::Value,
}

impl From<PolicyInfo> for PolicyView {
    fn from(p: PolicyInfo) -> Self {
        let document = serde_json::from_str(&p.document).unwrap_or(serde_json::Value::String(p.document));
        Self { name: p.name, builtin: p.builtin, document }
    }
}

#[derive(Debug, Serialize)]
struct PolicySummary {
    name: String,
    builtin: bool,
}

#[derive(Debug, Serialize)]
struct PolicyList {
    policies: Vec<PolicySummary>,
}

/// Handles `/policies...`.
pub async fn handle(call: &Call<'_>) -> Result<S3Response<Body>, AdminError> {
    let iam = call.iam;
    match (call.method, call.path().as_slice()) {
        (&Method::GET, ["policies"]) => {
            call.caller.require("admin:ListUserPolicies")?;
            let policies = iam
                .list_policies()
                .await?
                .into_iter()
                .map(|p| PolicySummary { name: p.name, builtin: p.builtin })
                .collect();
            Ok(json_response(StatusCode::OK, &PolicyList { policies }))
        }
        (&Method::GET, ["policies", name]) => {
            call.caller.require("admin:GetPolicy")?;
            Ok(json_response(StatusCode::OK, &PolicyView::from(iam.policy(name).await?)))
        }
        (&Method::PUT, ["policies", name]) => {
            call.caller.require("admin:CreatePolicy")?;
            let created = iam.put_policy(name, call.text()?).await?;
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(status, &PolicyView::from(iam.policy(name).await?)))
        }
        (&Method::DELETE, ["policies", name]) => {
            call.caller.require("admin:DeletePolicy")?;
            iam.delete_policy(name).await?;
            Ok(no_content())
        }
        _ => Err(call.unknown()),
    }
}
