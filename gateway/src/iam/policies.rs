//! Named policies: identity policy documents stored under a name, attachable to users, groups
//! and federated service-account parents. The built-in policies (`readonly`, `readwrite`, ...)
//! are listed with them and cannot be replaced or deleted; a policy still attached to a user or
//! group cannot be deleted, even by a delete racing an attach ([`crate::iam::references`]).

use policy::{builtin, builtin_document, Kind, Policy, BUILTIN_NAMES};

use crate::iam::entities::{PolicyRecord, Revisioned};
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

    /// Deletes policy `name`: not a built-in, and attached to no user or group (409
    /// PolicyInUse, naming one of them). Attachments are looked for on the drives before the
    /// delete and again after it: one made meanwhile (whose own check may have seen the policy
    /// still there) puts the policy back and refuses the delete (see `references`).
    pub async fn delete_policy(&self, name: &str) -> Result<(), IamError> {
        if builtin(name).is_some() {
            return Err(read_only(name));
        }
        names::check_policy_name(name)?;
        let key = names::policy_key(name);
        let what = format!("policy '{name}'");
        let in_use = |holder: String| IamError::Conflict {
            code: "PolicyInUse",
            message: format!("policy '{name}' is attached to {holder}; detach it first"),
        };
        let Some(mut record) = self.docs.get_fresh::<PolicyRecord>(&key).await? else {
            return Err(IamError::NotFound(format!("{what} does not exist")));
        };
        if let Some(holder) = self.policy_holder_now(name).await? {
            return Err(in_use(holder));
        }
        self.docs.delete(&key, &what).await?;
        self.changed();
        if let Some(holder) = self.policy_holder_now(name).await? {
            record.value.bump();
            match self.docs.create(&key, &record.value, &what).await {
                Ok(()) | Err(IamError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
            self.changed();
            return Err(in_use(holder));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::iam::testing::gateways;

    const DOCUMENT: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

    #[tokio::test]
    async fn an_attached_policy_is_never_deleted_nor_a_deleted_one_attached() {
        let gateways = gateways().await;
        let (here, there) = (&gateways.here, &gateways.there);
        here.put_policy("p", DOCUMENT).await.unwrap();
        here.create_user("alice", None, Vec::new()).await.unwrap();
        here.create_group("team", Vec::new(), Vec::new()).await.unwrap();
        here.set_user_policy("alice", "p", true).await.unwrap();
        let refused = here.delete_policy("p").await;
        assert!(matches!(&refused, Err(IamError::Conflict { code: "PolicyInUse", .. })), "{refused:?}");
        here.set_user_policy("alice", "p", false).await.unwrap();
        here.set_group_policy("team", "p", true).await.unwrap();
        assert!(matches!(here.delete_policy("p").await, Err(IamError::Conflict { code: "PolicyInUse", .. })));
        here.set_group_policy("team", "p", false).await.unwrap();
        // The other gateway still has the policy cached when it is deleted here.
        assert!(there.policy("p").await.is_ok());
        here.delete_policy("p").await.unwrap();
        assert!(matches!(there.set_user_policy("alice", "p", true).await, Err(IamError::NotFound(_))));
        assert!(matches!(there.set_group_policy("team", "p", true).await, Err(IamError::NotFound(_))));
        assert!(matches!(there.create_user("bob", None, vec!["p".into()]).await, Err(IamError::NotFound(_))));
        assert!(matches!(there.create_group("crew", Vec::new(), vec!["p".into()]).await, Err(IamError::NotFound(_))));
        here.forget_cached();
        assert!(here.user("alice").await.unwrap().policies.is_empty(), "the attachment was undone");
        assert!(here.group("team").await.unwrap().policies.is_empty());
        assert!(matches!(here.user("bob").await, Err(IamError::NotFound(_))), "the creation was undone");
        assert!(matches!(here.group("crew").await, Err(IamError::NotFound(_))));
    }

    // Several worker threads, so that attaching and deleting do interleave.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_attach_and_delete_leave_no_dangling_attachment() {
        let gateways = gateways().await;
        let (here, there) = (Arc::clone(&gateways.here), Arc::clone(&gateways.there));
        here.create_user("alice", None, Vec::new()).await.unwrap();
        for round in 0..20 {
            let name = format!("p{round}");
            here.put_policy(&name, DOCUMENT).await.unwrap();
            assert!(there.policy(&name).await.is_ok(), "cached there");
            let attach = {
                let (there, name) = (Arc::clone(&there), name.clone());
                tokio::spawn(async move { there.set_user_policy("alice", &name, true).await.map(drop) })
            };
            let deleted = here.delete_policy(&name).await;
            let attached = attach.await.unwrap();
            here.forget_cached();
            let holds = here.user("alice").await.unwrap().policies.contains(&name);
            let exists = here.policy(&name).await.is_ok();
            assert!(exists || !holds, "round {round}: dangling ({attached:?}, {deleted:?})");
            assert_eq!(holds, attached.is_ok(), "round {round}: an attachment is reported as it is");
            if holds {
                here.set_user_policy("alice", &name, false).await.unwrap();
            }
        }
    }
}
