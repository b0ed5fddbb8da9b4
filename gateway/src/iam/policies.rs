//! Named policies: identity policy documents stored under a name, attachable to users, groups
//! and federated service-account parents. The built-in policies (`readonly`, `readwrite`, ...)
//! are listed with them and cannot be replaced or deleted; a policy still attached to a user or
//! group cannot be deleted.

use policy::{builtin, builtin_document, Kind, Policy, BUILTIN_NAMES};

use crate::iam::entities::PolicyRecord;
use crate::iam::{names, now_secs, Iam, IamError};

/// A policy as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The name.
    pub name: String,
    /// Whether it is built in.
    pub builtin: bool,
    /// The document (for built-ins, as they are defined).
    pub document: String,
}

fn read_only(name: &str) -> IamError {
    IamError::Conflict {
        code: "PolicyIsBuiltin",
        message: format!("'{name}' is a built-in policy and cannot be changed"),
    }
}

impl Iam {
    /// Fails with NotFound unless `name` is a built-in or a stored policy.
    pub(crate) async fn require_policy(&self, name: &str) -> Result<(), IamError> {
        if builtin(name).is_some() {
            return Ok(());
        }
        names::check_policy_name(name)?;
        match self.docs.get::<PolicyRecord>(&names::policy_key(name)).await? {
            Some(_) => Ok(()),
            None => Err(IamError::NotFound(format!("policy '{name}' does not exist"))),
        }
    }

    /// Creates or replaces policy `name` with `document`; true when it was created.
    pub async fn put_policy(&self, name: &str, document: &str) -> Result<bool, IamError> {
        names::check_policy_name(name)?;
        if builtin(name).is_some() {
            return Err(read_only(name));
        }
        Policy::parse(document, Kind::Identity).map_err(IamError::MalformedPolicy)?;
        let key = names::policy_key(name);
        let what = format!("policy '{name}'");
        let now = now_secs();
        let record = PolicyRecord {
            name: name.to_owned(),
            document: document.to_owned(),
            created: now,
            updated: now,
            revision: 0,
        };
        let created = match self.docs.create(&key, &record, &what).await {
            Ok(()) => true,
            Err(IamError::AlreadyExists(_)) => {
                self.docs
                    .update::<PolicyRecord, _>(&key, &what, |stored| {
                        stored.document = document.to_owned();
                        stored.updated = now;
                        Ok(())
                    })
                    .await?;
                false
            }
            Err(e) => return Err(e),
        };
        self.changed();
        Ok(created)
    }

    /// Every policy: the built-ins, then the stored ones in name order.
    pub async fn list_policies(&self) -> Result<Vec<PolicyInfo>, IamError> {
        let mut all: Vec<PolicyInfo> = BUILTIN_NAMES
            .iter()
            .filter_map(|name| {
                builtin_document(name).map(|document| PolicyInfo {
                    name: (*name).to_owned(),
                    builtin: true,
                    document: document.to_owned(),
                })
            })
            .collect();
        for name in self.docs.names(names::POLICIES).await?.iter() {
            if let Some(record) = self.docs.get::<PolicyRecord>(&names::policy_key(name)).await? {
                all.push(PolicyInfo { name: record.value.name, builtin: false, document: record.value.document });
            }
        }
        Ok(all)
    }

    /// Policy `name`.
    pub async fn policy(&self, name: &str) -> Result<PolicyInfo, IamError> {
        if let Some(document) = builtin_document(name) {
            return Ok(PolicyInfo { name: name.to_owned(), builtin: true, document: document.to_owned() });
        }
        names::check_policy_name(name)?;
        match self.docs.get::<PolicyRecord>(&names::policy_key(name)).await? {
            Some(record) => Ok(PolicyInfo { name: record.value.name, builtin: false, document: record.value.document }),
            None => Err(IamError::NotFound(format!("policy '{name}' does not exist"))),
        }
    }

    /// Deletes policy `name`: not a built-in, and attached to no user, group or federated
    /// service-account parent (409 PolicyInUse, naming one of them).
    pub async fn delete_policy(&self, name: &str) -> Result<(), IamError> {
        if builtin(name).is_some() {
            return Err(read_only(name));
        }
        names::check_policy_name(name)?;
        self.docs.forget_cached();
        let in_use = |holder: String| IamError::Conflict {
            code: "PolicyInUse",
            message: format!("policy '{name}' is attached to {holder}; detach it first"),
        };
        if let Some(user) = self.list_users().await?.into_iter().find(|u| u.policies.iter().any(|p| p == name)) {
            return Err(in_use(format!("user '{}'", user.name)));
        }
        if let Some(group) = self.list_groups().await?.into_iter().find(|g| g.policies.iter().any(|p| p == name)) {
            return Err(in_use(format!("group '{}'", group.name)));
        }
        self.docs.delete(&names::policy_key(name), &format!("policy '{name}'")).await?;
        self.changed();
        Ok(())
    }
}
