//! Groups: members (users) and attached policies that every member gets; a disabled group
//! refuses its members' keys. Membership lives in the group's document only, so adding and
//! removing members are compare-and-set updates of one object.

use crate::iam::entities::{GroupRecord, Status};
use crate::iam::users::{change_attachment, dedup};
use crate::iam::{names, now_secs, Iam, IamError};

impl Iam {
    /// Creates group `name` with `members` (existing users) and `policies`.
    pub async fn create_group(
        &self,
        name: &str,
        members: Vec<String>,
        policies: Vec<String>,
    ) -> Result<GroupRecord, IamError> {
        names::check_group_name(name)?;
        for member in &members {
            self.user(member).await?;
        }
        for policy in &policies {
            self.require_policy(policy).await?;
        }
        let group = GroupRecord {
            name: name.to_owned(),
            status: Status::Enabled,
            members: dedup(members),
            policies: dedup(policies),
            created: now_secs(),
            revision: 0,
        };
        let key = names::group_key(name);
        self.docs.create(&key, &group, &format!("group '{name}'")).await?;
        self.changed();
        // A member or policy deleted while the group was being created: undo (see
        // `references`).
        let missing = match self.first_missing_user(&group.members).await? {
            Some(member) => Some(format!("user '{member}'")),
            None => self.first_missing_policy(&group.policies).await?.map(|p| format!("policy '{p}'")),
        };
        if let Some(missing) = missing {
            self.delete_if_present(&key, &format!("group '{name}'")).await?;
            self.changed();
            return Err(IamError::NotFound(format!("{missing} does not exist")));
        }
        Ok(group)
    }

    /// Every group, in name order.
    pub async fn list_groups(&self) -> Result<Vec<GroupRecord>, IamError> {
        let mut groups = Vec::new();
        for name in self.docs.names(names::GROUPS).await?.iter() {
            if let Some(group) = self.docs.get::<GroupRecord>(&names::group_key(name)).await? {
                groups.push(group.value);
            }
        }
        Ok(groups)
    }

    /// Group `name`.
    pub async fn group(&self, name: &str) -> Result<GroupRecord, IamError> {
        names::check_group_name(name)?;
        self.docs
            .get::<GroupRecord>(&names::group_key(name))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| IamError::NotFound(format!("group '{name}' does not exist")))
    }

    async fn update_group(
        &self,
        name: &str,
        change: impl FnMut(&mut GroupRecord) -> Result<(), IamError>,
    ) -> Result<GroupRecord, IamError> {
        names::check_group_name(name)?;
        let group = self.docs.update(&names::group_key(name), &format!("group '{name}'"), change).await?;
        self.changed();
        Ok(group)
    }

    /// Adds (`add`) or removes user `member` to or from group `name`.
    pub async fn set_group_member(&self, name: &str, member: &str, add: bool) -> Result<GroupRecord, IamError> {
        if add {
            self.user(member).await?;
        }
        let group = self
            .update_group(name, |group| {
                change_attachment(&mut group.members, member, add);
                Ok(())
            })
            .await?;
        // The user deleted meanwhile: remove it again (see `references`).
        if add && self.first_missing_user(&[member.to_owned()]).await?.is_some() {
            self.update_group(name, |group| {
                change_attachment(&mut group.members, member, false);
                Ok(())
            })
            .await?;
            return Err(IamError::NotFound(format!("user '{member}' does not exist")));
        }
        Ok(group)
    }

    /// Attaches (`attach`) or detaches `policy` to or from group `name`.
    pub async fn set_group_policy(&self, name: &str, policy: &str, attach: bool) -> Result<GroupRecord, IamError> {
        if attach {
            self.require_policy(policy).await?;
        }
        let group = self
            .update_group(name, |group| {
                change_attachment(&mut group.policies, policy, attach);
                Ok(())
            })
            .await?;
        // The policy deleted meanwhile: detach it again (see `references`).
        if attach && self.first_missing_policy(&[policy.to_owned()]).await?.is_some() {
            self.update_group(name, |group| {
                change_attachment(&mut group.policies, policy, false);
                Ok(())
            })
            .await?;
            return Err(IamError::NotFound(format!("policy '{policy}' does not exist")));
        }
        Ok(group)
    }

    /// Enables or disables group `name`.
    pub async fn set_group_status(&self, name: &str, status: Status) -> Result<GroupRecord, IamError> {
        self.update_group(name, |group| {
            group.status = status;
            Ok(())
        })
        .await
    }

    /// Deletes group `name`, which must have no members (409 GroupNotEmpty otherwise).
    pub async fn delete_group(&self, name: &str) -> Result<(), IamError> {
        let group = self.docs.get_fresh::<GroupRecord>(&names::group_key(name)).await?;
        if group.is_some_and(|g| !g.value.members.is_empty()) {
            return Err(IamError::Conflict {
                code: "GroupNotEmpty",
                message: format!("group '{name}' still has members; remove them first"),
            });
        }
        self.docs.delete(&names::group_key(name), &format!("group '{name}'")).await?;
        self.changed();
        Ok(())
    }
}
