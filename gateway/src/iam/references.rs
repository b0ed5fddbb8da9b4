//! References between IAM entities (a policy attached to a user or group, a user in a group,
//! a user as a service account's parent) and the protocol that keeps them from dangling
//! without transactions (docs/adr/0011-iam-store.md, "Deleting what others refer to"):
//! whoever adds a reference writes it, then confirms from the drives that the entity it
//! refers to still exists and undoes its write if not; whoever deletes an entity deletes it,
//! then looks for references from the drives again (and undoes the delete, or removes them).
//! Of a racing pair one always sees the other's write.

use crate::iam::entities::{GroupRecord, Parent, ServiceAccountRecord, UserRecord};
use crate::iam::{names, Iam, IamError};

impl Iam {
    /// Whether the document at `key` exists on the drives now.
    pub(crate) async fn exists_now(&self, key: &str) -> Result<bool, IamError> {
        Ok(self.docs.get_fresh::<serde_json::Value>(key).await?.is_some())
    }

    /// The first of `policies` that does not exist on the drives now (built-ins always do).
    pub(crate) async fn first_missing_policy(&self, policies: &[String]) -> Result<Option<String>, IamError> {
        for name in policies {
            if policy::builtin(name).is_none() && !self.exists_now(&names::policy_key(name)).await? {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// The first of `users` that does not exist on the drives now.
    pub(crate) async fn first_missing_user(&self, users: &[String]) -> Result<Option<String>, IamError> {
        for name in users {
            if !self.exists_now(&names::user_key(name)).await? {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// A user or group that policy `name` is attached to on the drives now, as "user 'x'" or
    /// "group 'g'".
    pub(crate) async fn policy_holder_now(&self, name: &str) -> Result<Option<String>, IamError> {
        for user in self.docs.names_fresh(names::USERS).await? {
            let Some(record) = self.docs.get_fresh::<UserRecord>(&names::user_key(&user)).await? else {
                continue;
            };
            if record.value.policies.iter().any(|p| p == name) {
                return Ok(Some(format!("user '{user}'")));
            }
        }
        for group in self.docs.names_fresh(names::GROUPS).await? {
            let Some(record) = self.docs.get_fresh::<GroupRecord>(&names::group_key(&group)).await? else {
                continue;
            };
            if record.value.policies.iter().any(|p| p == name) {
                return Ok(Some(format!("group '{group}'")));
            }
        }
        Ok(None)
    }

    /// Deletes, from what the drives hold now, everything that refers to user `name`: its
    /// service accounts (and their last-used times), its group memberships and its own
    /// last-used time.
    pub(crate) async fn delete_dependents_of_user(&self, name: &str) -> Result<(), IamError> {
        let parent = Parent::User { name: name.to_owned() };
        for access_key in self.docs.names_fresh(names::SERVICE_ACCOUNTS).await? {
            let key = names::service_account_key(&access_key);
            let Some(account) = self.docs.get_fresh::<ServiceAccountRecord>(&key).await? else {
                continue;
            };
            if account.value.parent == parent {
                self.delete_if_present(&key, &format!("service account '{access_key}'")).await?;
                self.delete_if_present(&names::last_used_key(&access_key), "a last-used time").await?;
            }
        }
        for group in self.docs.names_fresh(names::GROUPS).await? {
            let key = names::group_key(&group);
            let Some(record) = self.docs.get_fresh::<GroupRecord>(&key).await? else {
                continue;
            };
            if record.value.members.iter().any(|m| m == name) {
                let removed = self
                    .docs
                    .update::<GroupRecord, _>(&key, &format!("group '{group}'"), |g| {
                        g.members.retain(|m| m != name);
                        Ok(())
                    })
                    .await;
                match removed {
                    Ok(_) | Err(IamError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.delete_if_present(&names::last_used_key(name), "a last-used time").await
    }

    /// Deletes the document at `key` if there is one.
    pub(crate) async fn delete_if_present(&self, key: &str, what: &str) -> Result<(), IamError> {
        match self.docs.delete(key, what).await {
            Ok(()) | Err(IamError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
