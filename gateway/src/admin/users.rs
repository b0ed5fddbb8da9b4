//! `/users`: create (the secret is in the answer this once), list (paged), get,
//! enable/disable, delete, attach and detach policies.

use hyper::{Method, StatusCode};
use s3s::{Body, S3Response};
use serde::{Deserialize, Serialize};

use crate::admin::error::{json_response, no_content, AdminError};
use crate::admin::page::Page;
use crate::admin::Call;
use crate::iam::entities::{Status, UserRecord};
use crate::iam::secrets::ClearSecret;

/// Body of POST /users.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateUser {
    name: String,
    secret_key: Option<ClearSecret>,
    #[serde(default)]
    policies: Vec<String>,
}

/// Body of PUT .../status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetStatus {
    pub(crate) status: String,
}

impl SetStatus {
    pub(crate) fn parse(&self) -> Result<Status, AdminError> {
        Status::parse(&self.status).ok_or_else(|| AdminError::invalid("status must be 'enabled' or 'disabled'"))
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView {
    name: String,
    access_key: String,
    status: Status,
    policies: Vec<String>,
    groups: Vec<String>,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<ClearSecret>,
}

#[derive(Debug, Serialize)]
struct UserList {
    users: Vec<UserView>,
    /// The `after` of the next page; null on the last.
    next: Option<String>,
}

/// RFC 3339 of Unix seconds.
pub(crate) fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

async fn view(call: &Call<'_>, user: UserRecord, secret_key: Option<ClearSecret>) -> Result<UserView, AdminError> {
    let groups = call.iam.group_names_of(&user.name).await?;
    let last_used = call.iam.last_used(&user.name).await?.map(timestamp);
    Ok(UserView {
        access_key: user.name.clone(),
        name: user.name,
        status: user.status,
        policies: user.policies,
        groups,
        created: timestamp(user.created),
        last_used,
        secret_key,
    })
}

/// Handles `/users...`.
pub async fn handle(call: &Call<'_>) -> Result<S3Response<Body>, AdminError> {
    let iam = call.iam;
    match (call.method, call.path().as_slice()) {
        (&Method::POST, ["users"]) => {
            call.caller.require("admin:CreateUser")?;
            let body: CreateUser = call.json()?;
            if !body.policies.is_empty() {
                call.caller.require("admin:AttachUserOrGroupPolicy")?;
            }
            let created = iam.create_user(&body.name, body.secret_key, body.policies).await?;
            Ok(json_response(StatusCode::CREATED, &view(call, created.user, Some(created.secret_key)).await?))
        }
        (&Method::GET, ["users"]) => {
            call.caller.require("admin:ListUsers")?;
            let page = Page::of(call)?;
            let wanted = iam.list_users().await?.into_iter().filter(|u| page.starts_before(&u.name));
            let (listed, next) = page.cut(wanted.take(page.probe()).collect(), |u| &u.name);
            let mut users = Vec::new();
            for user in listed {
                users.push(view(call, user, None).await?);
            }
            Ok(json_response(StatusCode::OK, &UserList { users, next }))
        }
        (&Method::GET, ["users", name]) => {
            call.caller.require("admin:GetUser")?;
            Ok(json_response(StatusCode::OK, &view(call, iam.user(name).await?, None).await?))
        }
        (&Method::DELETE, ["users", name]) => {
            call.caller.require("admin:DeleteUser")?;
            iam.delete_user(name).await?;
            Ok(no_content())
        }
        (&Method::PUT, ["users", name, "status"]) => {
            let status = call.json::<SetStatus>()?.parse()?;
            call.caller.require(match status {
                Status::Enabled => "admin:EnableUser",
                Status::Disabled => "admin:DisableUser",
            })?;
            Ok(json_response(StatusCode::OK, &view(call, iam.set_user_status(name, status).await?, None).await?))
        }
        (method @ (&Method::PUT | &Method::DELETE), ["users", name, "policies", policy]) => {
            call.caller.require("admin:AttachUserOrGroupPolicy")?;
            let user = iam.set_user_policy(name, policy, method == Method::PUT).await?;
            Ok(json_response(StatusCode::OK, &view(call, user, None).await?))
        }
        _ => Err(call.unknown()),
    }
}
