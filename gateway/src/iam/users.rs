//! Users: created with an access key (the user name) and a secret (chosen or generated,
//! returned once), enabled or disabled, with policies attached. Deleting a user deletes its
//! service accounts and its group memberships first ([`crate::iam::references`]).

use crate::iam::entities::{ServiceAccountRecord, Status, UserRecord};
use crate::iam::secrets::{self, ClearSecret};
use crate::iam::{names, now_secs, Iam, IamError};

/// A new user and its secret key, which is shown this once.
#[derive(Debug)]
pub struct CreatedUser {
    /// The user.
    pub user: UserRecord,
    /// The secret key in clear.
    pub secret_key: ClearSecret,
}

impl Iam {
    /// Creates user `name` (its access key id) with `secret_key` or a generated one, and
    /// `policies` attached.
    pub async fn create_user(
        &self,
        name: &str,
        secret_key: Option<ClearSecret>,
        policies: Vec<String>,
    ) -> Result<CreatedUser, IamError> {
        names::check_user_name(name)?;
        if name == self.root_access_key || crate::sts::session::is_session_key(name) {
            return Err(IamError::AlreadyExists(format!("the access key '{name}' is reserved")));
        }
        for policy in &policies {
            self.require_policy(policy).await?;
        }
        if self.docs.get_fresh::<ServiceAccountRecord>(&names::service_account_key(name)).await?.is_some() {
            return Err(IamError::AlreadyExists(format!("the access key '{name}' is taken by a service account")));
        }
        let secret_key = match secret_key {
            Some(secret) => {
                names::check_secret(secret.expose())?;
                secret
            }
            None => names::new_secret(),
        };
        let secret_id = names::user_secret_id(name);
        let secret = secrets::seal(self.kms.as_ref(), &self.kms_key_id, &secret_id, secret_key.expose()).await?;
        let user = UserRecord {
            name: name.to_owned(),
            secret,
            status: Status::Enabled,
            policies: dedup(policies),
            created: now_secs(),
            revision: 0,
        };
        let key = names::user_key(name);
        self.docs.create(&key, &user, &format!("user '{name}'")).await?;
        self.changed();
        // A policy deleted while this user was being created: undo (see `references`).
        if let Some(missing) = self.first_missing_policy(&user.policies).await? {
            self.delete_if_present(&key, &format!("user '{name}'")).await?;
            self.changed();
            return Err(IamError::NotFound(format!("policy '{missing}' does not exist")));
        }
        Ok(CreatedUser { user, secret_key })
    }

    /// Every user, in name order.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, IamError> {
        let mut users = Vec::new();
        for name in self.docs.names(names::USERS).await?.iter() {
            if let Some(user) = self.docs.get::<UserRecord>(&names::user_key(name)).await? {
                users.push(user.value);
            }
        }
        Ok(users)
    }

    /// User `name`.
    pub async fn user(&self, name: &str) -> Result<UserRecord, IamError> {
        names::check_user_name(name)?;
        self.docs
            .get::<UserRecord>(&names::user_key(name))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| IamError::NotFound(format!("user '{name}' does not exist")))
    }

    /// Names of the groups `name` belongs to.
    pub async fn group_names_of(&self, name: &str) -> Result<Vec<String>, IamError> {
        Ok(self.groups_of(name).await?.into_iter().map(|g| g.name).collect())
    }

    /// Enables or disables user `name`.
    pub async fn set_user_status(&self, name: &str, status: Status) -> Result<UserRecord, IamError> {
        names::check_user_name(name)?;
        let user = self
            .docs
            .update::<UserRecord, _>(&names::user_key(name), &format!("user '{name}'"), |user| {
                user.status = status;
                Ok(())
            })
            .await?;
        self.changed();
        Ok(user)
    }

    /// Attaches (`attach`) or detaches `policy` to or from user `name`.
    pub async fn set_user_policy(&self, name: &str, policy: &str, attach: bool) -> Result<UserRecord, IamError> {
        names::check_user_name(name)?;
        if attach {
            self.require_policy(policy).await?;
        }
        let user = self.change_user_policy(name, policy, attach).await?;
        // The policy deleted meanwhile: detach it again (see `references`).
        if attach && self.first_missing_policy(&[policy.to_owned()]).await?.is_some() {
            self.change_user_policy(name, policy, false).await?;
            return Err(IamError::NotFound(format!("policy '{policy}' does not exist")));
        }
        Ok(user)
    }

    async fn change_user_policy(&self, name: &str, policy: &str, attach: bool) -> Result<UserRecord, IamError> {
        let user = self
            .docs
            .update::<UserRecord, _>(&names::user_key(name), &format!("user '{name}'"), |user| {
                change_attachment(&mut user.policies, policy, attach);
                Ok(())
            })
            .await?;
        self.changed();
        Ok(user)
    }

    /// Deletes user `name` and what refers to it: its service accounts and group memberships
    /// go first, as the drives hold them now (not the cache), so that a failure halfway leaves
    /// the user in place for a retry rather than leftovers that a new user of the same name
    /// would inherit; after the user, they are looked for once more, for those added while it
    /// was being deleted (see `references`).
    pub async fn delete_user(&self, name: &str) -> Result<(), IamError> {
        names::check_user_name(name)?;
        let key = names::user_key(name);
        let what = format!("user '{name}'");
        if !self.exists_now(&key).await? {
            return Err(IamError::NotFound(format!("{what} does not exist")));
        }
        self.delete_dependents_of_user(name).await?;
        self.changed();
        self.docs.delete(&key, &what).await?;
        self.changed();
        self.delete_dependents_of_user(name).await?;
        self.changed();
        Ok(())
    }
}

/// Adds or removes `policy` in `attached`; attaching twice or detaching what is not attached
/// is a no-op, as in MinIO.
pub(crate) fn change_attachment(attached: &mut Vec<String>, policy: &str, attach: bool) {
    if !attach {
        attached.retain(|p| p != policy);
    } else if !attached.iter().any(|p| p == policy) {
        attached.push(policy.to_owned());
    }
}

/// `items` without repetitions, in first-seen order.
pub(crate) fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::entities::Parent;
    use crate::iam::service_accounts::NewServiceAccount;
    use crate::iam::testing::gateways;

    fn account_of(user: &str) -> NewServiceAccount {
        NewServiceAccount {
            parent: Parent::User { name: user.into() },
            policy: None,
            expires: None,
            name: None,
            description: None,
        }
    }

    #[tokio::test]
    async fn a_user_of_a_deleted_users_name_inherits_nothing() {
        let gateways = gateways().await;
        let (here, there) = (&gateways.here, &gateways.there);
        here.create_user("bob", None, Vec::new()).await.unwrap();
        here.create_group("team", Vec::new(), vec!["readwrite".into()]).await.unwrap();
        // This gateway has read the (empty) dependents, and caches what it read.
        assert!(here.list_service_accounts().await.unwrap().is_empty());
        assert!(here.group_names_of("bob").await.unwrap().is_empty());
        // Another gateway adds some, just before the delete through this one.
        let account = there.create_service_account(account_of("bob")).await.unwrap().account.access_key;
        there.set_group_member("team", "bob", true).await.unwrap();
        here.delete_user("bob").await.unwrap();
        assert!(matches!(here.delete_user("bob").await, Err(IamError::NotFound(_))));
        here.create_user("bob", None, Vec::new()).await.unwrap();
        for iam in [here, there] {
            iam.forget_cached();
            assert!(iam.list_service_accounts().await.unwrap().is_empty(), "no service account is inherited");
            assert!(matches!(iam.service_account(&account).await, Err(IamError::NotFound(_))));
            assert!(iam.credential(&account).await.unwrap().is_none());
            assert!(iam.group_names_of("bob").await.unwrap().is_empty(), "no membership is inherited");
            assert!(iam.group("team").await.unwrap().members.is_empty());
        }
    }

    #[tokio::test]
    async fn a_service_account_or_membership_added_for_a_deleted_user_is_undone() {
        let gateways = gateways().await;
        let (here, there) = (&gateways.here, &gateways.there);
        here.create_user("bob", None, Vec::new()).await.unwrap();
        here.create_group("team", Vec::new(), Vec::new()).await.unwrap();
        assert!(there.user("bob").await.is_ok(), "the other gateway has bob cached");
        here.delete_user("bob").await.unwrap();
        assert!(matches!(there.create_service_account(account_of("bob")).await, Err(IamError::NotFound(_))));
        assert!(matches!(there.set_group_member("team", "bob", true).await, Err(IamError::NotFound(_))));
        here.forget_cached();
        assert!(here.list_service_accounts().await.unwrap().is_empty());
        assert!(here.group("team").await.unwrap().members.is_empty());
    }
}
