//! Access control lists as stored: a bucket's in its configuration record, an object's in its
//! version record. The object layer keeps them and never interprets them; the gateway parses
//! what clients send into them and decides with them.

use serde::{Deserialize, Serialize};

/// An owner and the permissions granted on a bucket or an object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// Canonical id of the owner.
    pub owner: String,
    /// The grants, in the order they were given.
    pub grants: Vec<AclGrant>,
}

/// One permission given to one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrant {
    /// Who is given it.
    pub grantee: Grantee,
    /// What is given.
    pub permission: AclPermission,
}

/// Who an ACL grant names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// A principal by canonical id.
    CanonicalUser(String),
    /// A predefined group by URI (`http://acs.amazonaws.com/groups/global/AllUsers`, ...).
    Group(String),
}

/// The permissions of S3 ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclPermission {
    /// List a bucket; read an object.
    Read,
    /// Write objects in a bucket.
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Write the ACL.
    WriteAcp,
    /// All of the above.
    FullControl,
}
