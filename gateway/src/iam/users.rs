//! Users: created with an access key (the user name) and a secret (chosen or generated,
//! returned once), enabled or disabled, with policies attached. Deleting a user deletes its
//! service accounts and its group memberships with it.

use crate::iam::entities::{GroupRecord, Parent, ServiceAccountRecord, Status, UserRecord};
use crate::iam::{names, now_secs, secrets, Iam, IamError};

/// A new user and its secret key, which is shown this once.
#[derive(Debug)]
pub struct CreatedUser {
    /// The user.
    pub user: UserRecord,
    /// The secret key in clear.
    pub secret_key: String,
}

impl Iam {
    /// Creates user `name` (its access key id) with `secret_key` or a generated one, and
    /// `policies` attached.
    pub async fn create_user(
        &self,
        name: &str,
        secret_key: Option<String>,
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
                names::check_secret(&secret)?;
                secret
            }
            None => names::new_secret(),
        };
        let secret =
            secrets::seal(self.kms.as_ref(), &self.kms_key_id, &names::user_secret_id(name), &secret_key).await?;
        let user = UserRecord {
            name: name.to_owned(),
            secret,
            status: Status::Enabled,
            policies: dedup(policies),
            created: now_secs(),
            revision: 0,
        };
        self.docs.create(&names::user_key(name), &user, &format!("user '{name}'")).await?;
        self.changed();
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

    /// Deletes user `name`, its service accounts and its group memberships.
    pub async fn delete_user(&self, name: &str) -> Result<(), IamError> {
        names::check_user_name(name)?;
        self.docs.delete(&names::user_key(name), &format!("user '{name}'")).await?;
        self.changed();
        for account in self.list_service_accounts().await? {
            if account.parent == (Parent::User { name: name.to_owned() }) {
                match self.delete_service_account(&account.access_key).await {
                    Ok(()) | Err(IamError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for group in self.groups_of(name).await? {
            let key = names::group_key(&group.name);
            let result = self
                .docs
                .update::<GroupRecord, _>(&key, &format!("group '{}'", group.name), |group| {
                    group.members.retain(|m| m != name);
                    Ok(())
                })
                .await;
            match result {
                Ok(_) | Err(IamError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
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
