//! `/groups`: create, list, get, enable/disable, add and remove members, attach and detach
//! policies, delete (only when empty).

use hyper::{Method, StatusCode};
use s3s::{Body, S3Response};
use serde::{Deserialize, Serialize};

use crate::admin::error::{json_response, no_content, AdminError};
use crate::admin::users::{timestamp, SetStatus};
use crate::admin::Call;
use crate::iam::entities::{GroupRecord, Status};

/// Body of POST /groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
}

/// A group as the API shows it.
#[derive(Debug, Serialize)]
struct GroupView {
    name: String,
    status: Status,
    members: Vec<String>,
    policies: Vec<String>,
    created: String,
}

impl From<GroupRecord> for GroupView {
    fn from(g: GroupRecord) -> Self {
        Self { name: g.name, status: g.status, members: g.members, policies: g.policies, created: timestamp(g.created) }
    }
}

#[derive(Debug, Serialize)]
struct GroupList {
    groups: Vec<GroupView>,
}

/// Handles `/groups...`.
pub async fn handle(call: &Call<'_>) -> Result<S3Response<Body>, AdminError> {
    let iam = call.iam;
    let ok = |group: GroupRecord| Ok(json_response(StatusCode::OK, &GroupView::from(group)));
    match (call.method, call.path().as_slice()) {
        (&Method::POST, ["groups"]) => {
            call.caller.require("admin:AddUserToGroup")?;
            let body: CreateGroup = call.json()?;
            if !body.policies.is_empty() {
                call.caller.require("admin:AttachUserOrGroupPolicy")?;
            }
            let group = iam.create_group(&body.name, body.members, body.policies).await?;
            Ok(json_response(StatusCode::CREATED, &GroupView::from(group)))
        }
        (&Method::GET, ["groups"]) => {
            call.caller.require("admin:ListGroups")?;
            let groups = iam.list_groups().await?.into_iter().map(GroupView::from).collect();
            Ok(json_response(StatusCode::OK, &GroupList { groups }))
        }
        (&Method::GET, ["groups", name]) => {
            call.caller.require("admin:GetGroup")?;
            ok(iam.group(name).await?)
        }
        (&Method::DELETE, ["groups", name]) => {
            call.caller.require("admin:RemoveUserFromGroup")?;
            iam.delete_group(name).await?;
            Ok(no_content())
        }
        (&Method::PUT, ["groups", name, "status"]) => {
            let status = call.json::<SetStatus>()?.parse()?;
            call.caller.require(match status {
                Status::Enabled => "admin:EnableGroup",
                Status::Disabled => "admin:DisableGroup",
            })?;
            ok(iam.set_group_status(name, status).await?)
        }
        (&Method::PUT, ["groups", name, "members", member]) => {
            call.caller.require("admin:AddUserToGroup")?;
            ok(iam.set_group_member(name, member, true).await?)
        }
        (&Method::DELETE, ["groups", name, "members", member]) => {
            call.caller.require("admin:RemoveUserFromGroup")?;
            ok(iam.set_group_member(name, member, false).await?)
        }
        (method @ (&Method::PUT | &Method::DELETE), ["groups", name, "policies", policy]) => {
            call.caller.require("admin:AttachUserOrGroupPolicy")?;
            ok(iam.set_group_policy(name, policy, method == Method::PUT).await?)
        }
        _ => Err(call.unknown()),
    }
}
