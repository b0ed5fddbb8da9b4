//! Who calls the admin API and what they may do: root may do everything; anyone else needs
//! the admin action (`admin:CreateUser`, ...) allowed by its identity policies, evaluated as
//! every S3 request is ([`Authorization`]), so a service account is held to its own policy
//! too. Users and STS sessions may manage their own service accounts without an admin action.

use std::time::SystemTime;

use crate::admin::error::AdminError;
use crate::authz::conditions::{self, RequestParts};
use crate::authz::Authorization;
use crate::iam::entities::Parent;
use crate::principal::Principal;

/// The resource admin actions are checked on: a statement must cover every resource (`*` or
/// `arn:aws:s3:::*`, or no Resource, as MinIO's consoleAdmin has it) to grant one.
pub const ADMIN_RESOURCE: &str = "arn:aws:s3:::*";

/// The caller of one admin request.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
    authorization: Authorization,
}

impl Caller {
    /// The caller `principal`, with the condition keys of the request in `parts`.
    pub fn new(principal: Principal, parts: &RequestParts<'_>) -> Result<Self, AdminError> {
        let context = conditions::request_context(parts, &principal, SystemTime::now())
            .map_err(|_| AdminError::invalid("a query parameter appears more than once"))?;
        let authorization = Authorization::of(&principal, context, None);
        Ok(Self { principal, authorization })
    }

    /// Whether the caller's policies allow `action` by naming it (`admin:...`): an Allow of
    /// `*` or a NotAction grants no administration.
    pub fn may(&self, action: &str) -> bool {
        self.authorization.allows_admin(action, ADMIN_RESOURCE)
    }

    /// AccessDenied unless the caller's policies allow `action`.
    pub fn require(&self, action: &str) -> Result<(), AdminError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(AdminError::access_denied(action))
        }
    }

    /// The parent a service account created by this caller for itself has: a user itself, a
    /// session its OpenID identity with the session's policies. Root, service accounts and
    /// anonymous callers have none (a service account creates accounts only for others, as an
    /// administrator).
    pub fn own_parent(&self) -> Option<Parent> {
        match &self.principal {
            Principal::User(user) => Some(Parent::User { name: user.name.clone() }),
            Principal::Session(session) => {
                Some(Parent::Federated { subject: session.subject.clone(), policies: session.policies.clone() })
            }
            Principal::Anonymous | Principal::Root { .. } | Principal::ServiceAccount(_) => None,
        }
    }

    /// When a session caller's credentials expire (Unix seconds); `None` for other callers.
    pub fn session_expiry(&self) -> Option<i64> {
        match &self.principal {
            Principal::Session(session) => {
                Some(session.expires.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
            }
            _ => None,
        }
    }

    /// A service-account caller's parent.
    pub fn service_account_parent(&self) -> Option<Parent> {
        match &self.principal {
            Principal::ServiceAccount(account) => Some(account.parent.clone()),
            _ => None,
        }
    }

    /// Whether a service account of `parent` belongs to this caller (same user, or same
    /// OpenID subject).
    pub fn owns(&self, parent: &Parent) -> bool {
        match (self.own_parent(), parent) {
            (Some(Parent::User { name: mine }), Parent::User { name }) => mine == *name,
            (Some(Parent::Federated { subject: mine, .. }), Parent::Federated { subject, .. }) => mine == *subject,
            _ => false,
        }
    }

    /// AccessDenied unless the caller owns an account of `parent` or may `action` on any.
    pub fn require_owner_or(&self, parent: &Parent, action: &str) -> Result<(), AdminError> {
        if self.owns(parent) {
            return Ok(());
        }
        self.require(action)
    }
}
