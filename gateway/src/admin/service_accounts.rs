//! `/service-accounts`: create (for the caller itself, or for a user with
//! admin:CreateServiceAccount; the secret is in the answer this once), list (paged, no secrets),
//! get, update status, policy and expiry, delete. Users and STS sessions manage their own
//! accounts without an admin action; a service account needs the admin action for everything.

use hyper::{Method, StatusCode};
use s3s::{Body, S3Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::admin::error::{json_response, no_content, AdminError};
use crate::admin::page::Page;
use crate::admin::users::timestamp;
use crate::admin::Call;
use crate::iam::entities::{Parent, ServiceAccountRecord, Status};
use crate::iam::secrets::ClearSecret;
use crate::iam::service_accounts::{NewServiceAccount, ServiceAccountUpdate};

/// Body of POST /service-accounts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateServiceAccount {
    parent: Option<String>,
    policy: Option<Value>,
    expires_at: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

/// A service account as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountView {
    access_key: String,
    parent: String,
    parent_type: &'static str,
    parent_name: String,
    status: Status,
    policy: Option<Value>,
    expires_at: Option<String>,
    name: Option<String>,
    description: Option<String>,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<ClearSecret>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountList {
    service_accounts: Vec<ServiceAccountView>,
    /// The `after` of the next page; null on the last.
    next: Option<String>,
}

async fn view(
    call: &Call<'_>,
    account: ServiceAccountRecord,
    secret_key: Option<ClearSecret>,
) -> Result<ServiceAccountView, AdminError> {
    let last_used = call.iam.last_used(&account.access_key).await?.map(timestamp);
    let parent_type = match account.parent {
        Parent::User { .. } => "user",
        Parent::Federated { .. } => "federated",
    };
    Ok(ServiceAccountView {
        parent: account.parent.arn(),
        parent_name: account.parent.name().to_owned(),
        parent_type,
        access_key: account.access_key,
        status: account.status,
        policy: account.policy.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
        expires_at: account.expires.map(timestamp),
        name: account.name,
        description: account.description,
        created: timestamp(account.created),
        last_used,
        secret_key,
    })
}

/// A policy given as a JSON object or as its text.
fn policy_text(value: Value) -> Result<String, AdminError> {
    match value {
        Value::String(text) => Ok(text),
        object @ Value::Object(_) => Ok(object.to_string()),
        _ => Err(AdminError::invalid("policy must be a policy document (object) or its JSON text")),
    }
}

fn expiry(text: &str) -> Result<i64, AdminError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| AdminError::invalid(format!("expiresAt '{text}' is not an RFC 3339 time")))
}

/// The parent of an account the caller creates: itself, or the user it names (which needs
/// admin:CreateServiceAccount unless that is the caller); a service account creates accounts
/// for its own parent, and only with the admin action.
fn parent_for(call: &Call<'_>, named: Option<String>) -> Result<Parent, AdminError> {
    let caller = call.caller;
    match named {
        Some(name) => {
            let parent = Parent::User { name };
            caller.require_owner_or(&parent, "admin:CreateServiceAccount")?;
            Ok(parent)
        }
        None => match (caller.own_parent(), caller.service_account_parent()) {
            (Some(own), _) => Ok(own),
            (None, Some(parent)) => {
                caller.require("admin:CreateServiceAccount")?;
                Ok(parent)
            }
            (None, None) => Err(AdminError::invalid("parent is required: the user the service account acts for")),
        },
    }
}

fn update_of(body: Map<String, Value>) -> Result<ServiceAccountUpdate, AdminError> {
    let mut update = ServiceAccountUpdate::default();
    for (field, value) in body {
        match (field.as_str(), value) {
            ("status", Value::String(text)) => {
                let status = Status::parse(&text)
                    .ok_or_else(|| AdminError::invalid("status must be 'enabled' or 'disabled'"))?;
                update.status = Some(status);
            }
            ("policy", Value::Null) => update.policy = Some(None),
            ("policy", value) => update.policy = Some(Some(policy_text(value)?)),
            ("expiresAt", Value::Null) => update.expires = Some(None),
            ("expiresAt", Value::String(text)) => update.expires = Some(Some(expiry(&text)?)),
            (field, _) => return Err(AdminError::invalid(format!("unknown or malformed field '{field}'"))),
        }
    }
    Ok(update)
}

/// Handles `/service-accounts...`.
pub async fn handle(call: &Call<'_>) -> Result<S3Response<Body>, AdminError> {
    let iam = call.iam;
    let caller = call.caller;
    match (call.method, call.path().as_slice()) {
        (&Method::POST, ["service-accounts"]) => {
            let body: CreateServiceAccount = call.json()?;
            let parent = parent_for(call, body.parent)?;
            let mut expires = body.expires_at.as_deref().map(expiry).transpose()?;
            // A session's own service account expires with the session, unless the caller may
            // create service accounts as an administrator: a stolen short-lived token must not
            // turn into a key that outlives it.
            if let Some(session_end) = caller.session_expiry().filter(|_| !caller.may("admin:CreateServiceAccount")) {
                expires = Some(expires.map_or(session_end, |at| at.min(session_end)));
            }
            let new = NewServiceAccount {
                parent,
                policy: body.policy.map(policy_text).transpose()?,
                expires,
                name: body.name,
                description: body.description,
            };
            let created = iam.create_service_account(new).await?;
            Ok(json_response(StatusCode::CREATED, &view(call, created.account, Some(created.secret_key)).await?))
        }
        (&Method::GET, ["service-accounts"]) => {
            let everyone = caller.may("admin:ListServiceAccounts");
            if !everyone && caller.own_parent().is_none() {
                return Err(AdminError::access_denied("admin:ListServiceAccounts"));
            }
            let parent = call.query_value("parent");
            let page = Page::of(call)?;
            let wanted = iam.list_service_accounts().await?.into_iter().filter(|account| {
                let visible = everyone || caller.owns(&account.parent);
                visible
                    && parent.is_none_or(|name| account.parent.name() == name)
                    && page.starts_before(&account.access_key)
            });
            let (listed, next) = page.cut(wanted.take(page.probe()).collect(), |a| &a.access_key);
            let mut service_accounts = Vec::new();
            for account in listed {
                service_accounts.push(view(call, account, None).await?);
            }
            Ok(json_response(StatusCode::OK, &ServiceAccountList { service_accounts, next }))
        }
        (&Method::GET, ["service-accounts", key]) => {
            let account = iam.service_account(key).await?;
            caller.require_owner_or(&account.parent, "admin:ListServiceAccounts")?;
            Ok(json_response(StatusCode::OK, &view(call, account, None).await?))
        }
        (&Method::PATCH, ["service-accounts", key]) => {
            let account = iam.service_account(key).await?;
            caller.require_owner_or(&account.parent, "admin:UpdateServiceAccount")?;
            let mut update = update_of(call.json()?)?;
            update.as_admin = caller.may("admin:UpdateServiceAccount");
            // A session owner may not lift the expiry its account was created with.
            if let Some(session_end) = caller.session_expiry().filter(|_| !caller.may("admin:UpdateServiceAccount")) {
                if let Some(expires) = update.expires {
                    if expires.is_none_or(|at| at > session_end) {
                        return Err(AdminError::access_denied("admin:UpdateServiceAccount"));
                    }
                }
            }
            let account = iam.update_service_account(key, update).await?;
            Ok(json_response(StatusCode::OK, &view(call, account, None).await?))
        }
        (&Method::DELETE, ["service-accounts", key]) => {
            let account = iam.service_account(key).await?;
            caller.require_owner_or(&account.parent, "admin:RemoveServiceAccount")?;
            iam.delete_service_account(key).await?;
            Ok(no_content())
        }
        _ => Err(call.unknown()),
    }
}
