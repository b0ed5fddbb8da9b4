//! Service accounts: long-lived access keys acting for a parent (an IAM user, or an OpenID
//! identity that created them from an STS session), with an optional policy of their own that
//! can only narrow what the parent may do, an optional expiry, and a status. The secret is
//! generated, sealed, and returned once.

use policy::{Kind, Policy};

use crate::iam::entities::{Parent, ServiceAccountRecord, Status, UserRecord};
use crate::iam::secrets::{self, ClearSecret};
use crate::iam::{names, now_secs, Iam, IamError};

/// Longest name of a service account.
const MAX_ACCOUNT_NAME_CHARS: usize = 64;
/// Longest description of a service account.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// What a new service account is made of.
#[derive(Debug, Clone)]
pub struct NewServiceAccount {
    /// Whose permissions it has.
    pub parent: Parent,
    /// Its own policy document, if any.
    pub policy: Option<String>,
    /// Expiry, Unix seconds.
    pub expires: Option<i64>,
    /// Optional name.
    pub name: Option<String>,
    /// Optional description.
    pub description: Option<String>,
}

/// A change of a service account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccountUpdate {
    /// New status.
    pub status: Option<Status>,
    /// New policy (`Some(None)` removes it).
    pub policy: Option<Option<String>>,
    /// New expiry (`Some(None)` removes it).
    pub expires: Option<Option<i64>>,
    /// Whether the change is made as an administrator (not merely as the account's owner): a
    /// status it sets to disabled only an administrator may set back.
    pub as_admin: bool,
}

/// A new service account and its secret, which is shown this once.
#[derive(Debug)]
pub struct CreatedServiceAccount {
    /// The account.
    pub account: ServiceAccountRecord,
    /// The secret in clear.
    pub secret_key: ClearSecret,
}

fn check_policy(text: &str) -> Result<(), IamError> {
    Policy::parse(text, Kind::Identity).map(drop).map_err(IamError::MalformedPolicy)
}

fn check_expiry(expires: Option<i64>) -> Result<(), IamError> {
    match expires {
        Some(at) if at <= now_secs() => Err(IamError::Invalid("the expiry must lie in the future".into())),
        _ => Ok(()),
    }
}

fn check_text(what: &str, text: Option<&str>, max: usize) -> Result<(), IamError> {
    match text {
        Some(text) if text.chars().count() > max || text.chars().any(char::is_control) => {
            Err(IamError::Invalid(format!("the {what} must be at most {max} characters without control characters")))
        }
        _ => Ok(()),
    }
}

impl Iam {
    /// Creates a service account.
    pub async fn create_service_account(&self, new: NewServiceAccount) -> Result<CreatedServiceAccount, IamError> {
        if let Some(text) = &new.policy {
            check_policy(text)?;
        }
        check_expiry(new.expires)?;
        check_text("name", new.name.as_deref(), MAX_ACCOUNT_NAME_CHARS)?;
        check_text("description", new.description.as_deref(), MAX_DESCRIPTION_CHARS)?;
        // A federated parent's policy names come from its session's token: as in the session,
        // a name of no policy grants nothing.
        if let Parent::User { name } = &new.parent {
            self.user(name).await?;
        }
        let access_key = names::new_access_key();
        if self.docs.get_fresh::<UserRecord>(&names::user_key(&access_key)).await?.is_some() {
            return Err(IamError::Busy("the generated access key is taken; try again".into()));
        }
        let secret_key = names::new_secret();
        let secret_id = names::service_account_secret_id(&access_key);
        let secret = secrets::seal(self.kms.as_ref(), &self.kms_key_id, &secret_id, secret_key.expose()).await?;
        let account = ServiceAccountRecord {
            access_key: access_key.clone(),
            secret,
            parent: new.parent,
            policy: new.policy,
            status: Status::Enabled,
            disabled_by_admin: false,
            expires: new.expires,
            name: new.name,
            description: new.description,
            created: now_secs(),
            revision: 0,
        };
        let what = format!("service account '{access_key}'");
        let key = names::service_account_key(&access_key);
        self.docs.create(&key, &account, &what).await?;
        self.changed();
        // The parent user deleted meanwhile: undo (see `references`).
        if let Parent::User { name } = &account.parent {
            if self.first_missing_user(std::slice::from_ref(name)).await?.is_some() {
                self.delete_if_present(&key, &what).await?;
                self.changed();
                return Err(IamError::NotFound(format!("user '{name}' does not exist")));
            }
        }
        Ok(CreatedServiceAccount { account, secret_key })
    }

    /// Every service account.
    pub async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, IamError> {
        let mut accounts = Vec::new();
        for key in self.docs.names(names::SERVICE_ACCOUNTS).await?.iter() {
            if let Some(account) = self.docs.get::<ServiceAccountRecord>(&names::service_account_key(key)).await? {
                accounts.push(account.value);
            }
        }
        Ok(accounts)
    }

    /// Service account `access_key`.
    pub async fn service_account(&self, access_key: &str) -> Result<ServiceAccountRecord, IamError> {
        names::check_user_name(access_key)
            .map_err(|_| IamError::NotFound(format!("service account '{access_key}' does not exist")))?;
        self.docs
            .get::<ServiceAccountRecord>(&names::service_account_key(access_key))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| IamError::NotFound(format!("service account '{access_key}' does not exist")))
    }

    /// Changes status, policy or expiry of service account `access_key`.
    pub async fn update_service_account(
        &self,
        access_key: &str,
        update: ServiceAccountUpdate,
    ) -> Result<ServiceAccountRecord, IamError> {
        if let Some(Some(text)) = &update.policy {
            check_policy(text)?;
        }
        if let Some(expires) = update.expires {
            check_expiry(expires)?;
        }
        self.service_account(access_key).await?;
        let what = format!("service account '{access_key}'");
        let account = self
            .docs
            .update::<ServiceAccountRecord, _>(&names::service_account_key(access_key), &what, |account| {
                if let Some(status) = update.status {
                    if status == Status::Enabled && account.disabled_by_admin && !update.as_admin {
                        return Err(IamError::Denied(format!(
                            "{what} was disabled by an administrator; only an administrator may enable it"
                        )));
                    }
                    account.disabled_by_admin =
                        status == Status::Disabled && (update.as_admin || account.disabled_by_admin);
                    account.status = status;
                }
                if let Some(policy) = &update.policy {
                    account.policy.clone_from(policy);
                }
                if let Some(expires) = update.expires {
                    account.expires = expires;
                }
                Ok(())
            })
            .await?;
        self.changed();
        Ok(account)
    }

    /// Deletes service account `access_key`.
    pub async fn delete_service_account(&self, access_key: &str) -> Result<(), IamError> {
        self.service_account(access_key).await?;
        let what = format!("service account '{access_key}'");
        self.docs.delete(&names::service_account_key(access_key), &what).await?;
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::testing::gateways;

    fn status(status: Status, as_admin: bool) -> ServiceAccountUpdate {
        ServiceAccountUpdate { status: Some(status), as_admin, ..Default::default() }
    }

    #[tokio::test]
    async fn an_owner_may_not_enable_what_an_administrator_disabled() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        iam.create_user("alice", None, Vec::new()).await.unwrap();
        let new = NewServiceAccount {
            parent: Parent::User { name: "alice".into() },
            policy: None,
            expires: None,
            name: None,
            description: None,
        };
        let key = iam.create_service_account(new).await.unwrap().account.access_key;
        iam.update_service_account(&key, status(Status::Disabled, false)).await.unwrap();
        iam.update_service_account(&key, status(Status::Enabled, false)).await.expect("the owner's own disable");
        iam.update_service_account(&key, status(Status::Disabled, true)).await.unwrap();
        let refused = iam.update_service_account(&key, status(Status::Enabled, false)).await;
        assert!(matches!(refused, Err(IamError::Denied(_))), "{refused:?}");
        iam.update_service_account(&key, status(Status::Disabled, false)).await.unwrap();
        let refused = iam.update_service_account(&key, status(Status::Enabled, false)).await;
        assert!(matches!(refused, Err(IamError::Denied(_))), "disabling again as owner keeps the mark");
        assert!(iam.credential(&key).await.unwrap().is_none());
        let account = iam.update_service_account(&key, status(Status::Enabled, true)).await.unwrap();
        assert_eq!((account.status, account.disabled_by_admin), (Status::Enabled, false));
        assert!(iam.credential(&key).await.unwrap().is_some());
    }
}
