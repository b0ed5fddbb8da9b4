//! Service accounts: long-lived access keys acting for a parent (an IAM user, or an OpenID
//! identity that created them from an STS session), with an optional policy of their own that
//! can only narrow what the parent may do, an optional expiry, and a status. The secret is
//! generated, sealed, and returned once.

use policy::{Kind, Policy};

use crate::iam::entities::{Parent, ServiceAccountRecord, Status, UserRecord};
use crate::iam::{names, now_secs, secrets, Iam, IamError};

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
}

/// A new service account and its secret, which is shown this once.
#[derive(Debug)]
pub struct CreatedServiceAccount {
    /// The account.
    pub account: ServiceAccountRecord,
    /// The secret in clear.
    pub secret_key: String,
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
        let secret = secrets::seal(self.kms.as_ref(), &self.kms_key_id, &secret_id, &secret_key).await?;
        let account = ServiceAccountRecord {
            access_key: access_key.clone(),
            secret,
            parent: new.parent,
            policy: new.policy,
            status: Status::Enabled,
            expires: new.expires,
            name: new.name,
            description: new.description,
            created: now_secs(),
            revision: 0,
        };
        let what = format!("service account '{access_key}'");
        self.docs.create(&names::service_account_key(&access_key), &account, &what).await?;
        self.changed();
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
