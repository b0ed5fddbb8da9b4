//! The IAM entities as they are stored, one JSON document each: users, groups, service
//! accounts and named policies. Every document carries a revision that each update increments,
//! so that a compare-and-set on its ETag never mistakes a changed document for the one read.

use serde::{Deserialize, Serialize};

use crate::iam::secrets::SealedSecret;

/// Whether an identity or group may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In use.
    Enabled,
    /// Refused as if it did not exist.
    Disabled,
}

impl Status {
    /// Parses `enabled` / `disabled`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A user: its name is its access key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// The user name and access key id.
    pub name: String,
    /// The secret key, sealed.
    pub secret: SealedSecret,
    /// Enabled or disabled.
    pub status: Status,
    /// Attached policies (built-in or named).
    pub policies: Vec<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Incremented by every update.
    pub revision: u64,
}

/// A group: its members and attached policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    /// The group name.
    pub name: String,
    /// Enabled or disabled: a disabled group grants nothing and refuses its members.
    pub status: Status,
    /// Member user names.
    pub members: Vec<String>,
    /// Attached policies.
    pub policies: Vec<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Incremented by every update.
    pub revision: u64,
}

/// Whose permissions a service account acts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Parent {
    /// A user of the IAM store: the account has that user's current effective policies.
    User {
        /// The user name.
        name: String,
    },
    /// An identity of the OpenID provider (an STS session's `sub`), with the policies its
    /// session had when it created the account.
    Federated {
        /// The token's subject.
        subject: String,
        /// The policies of the creating session.
        policies: Vec<String>,
    },
}

impl Parent {
    /// The parent's principal ARN, `arn:aws:iam:::user/<name or sub>`.
    pub fn arn(&self) -> String {
        crate::authz::session_arn(self.name())
    }

    /// The user name or subject.
    pub fn name(&self) -> &str {
        match self {
            Self::User { name } => name,
            Self::Federated { subject, .. } => subject,
        }
    }
}

/// A service account: long-lived access keys acting for a parent, narrowed by an optional
/// policy of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRecord {
    /// The access key id.
    pub access_key: String,
    /// The secret, sealed.
    pub secret: SealedSecret,
    /// Whose permissions it has.
    pub parent: Parent,
    /// Its own policy document: what it may do is what the parent may do and this allows.
    pub policy: Option<String>,
    /// Enabled or disabled.
    pub status: Status,
    /// Disabled by an administrator, which only an administrator may undo (absent in
    /// documents written before it existed: false).
    #[serde(default)]
    pub disabled_by_admin: bool,
    /// Expiry, Unix seconds, if any.
    pub expires: Option<i64>,
    /// Optional name.
    pub name: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Incremented by every update.
    pub revision: u64,
}

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// The policy name.
    pub name: String,
    /// The document, as the administrator sent it (validated before it was stored).
    pub document: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub updated: i64,
    /// Incremented by every update.
    pub revision: u64,
}

/// When a key was last used to sign a request (kept apart from the account so that recording
/// it never contends with an administrator's update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastUsed {
    /// Unix seconds.
    pub at: i64,
}

/// Every stored entity knows its revision.
pub trait Revisioned {
    /// Incremented before every write.
    fn bump(&mut self);
}

macro_rules! revisioned {
    ($($t:ty),*) => {$(
        impl Revisioned for $t {
            fn bump(&mut self) {
                self.revision += 1;
            }
        }
    )*};
}
revisioned!(UserRecord, GroupRecord, ServiceAccountRecord, PolicyRecord);

impl Revisioned for LastUsed {
    fn bump(&mut self) {}
}
