//! Authentication against the IAM store: an access key id to its secret and principal. What
//! is resolved is cached for the store's TTL (unsealed secrets live in memory no longer than
//! that), negative answers too, so that neither a signed request nor a flood of unknown keys
//! reads the drives per request. A disabled user, a member of a disabled group, a disabled or
//! expired service account, or one whose parent user is refused resolves to nothing: its
//! requests get InvalidAccessKeyId, as for a key that does not exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use policy::{builtin, Kind, Policy};
use zeroize::Zeroizing;

use crate::iam::entities::{GroupRecord, LastUsed, Parent, PolicyRecord, ServiceAccountRecord, Status, UserRecord};
use crate::iam::store::CACHE_TTL;
use crate::iam::{names, now_secs, secrets, Iam, IamError};
use crate::principal::{IdentityPolicy, Principal, ServiceAccount, User};

/// How often the last-used time of one key is written at most.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// An access key's secret and principal.
pub struct Credential {
    /// The secret key.
    pub secret: Zeroizing<String>,
    /// Who signs with it.
    pub principal: Principal,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("principal", &self.principal).finish_non_exhaustive()
    }
}

type Resolved = Option<Arc<Credential>>;

/// Credentials resolved recently, and when each key's use was last recorded.
#[derive(Debug, Default)]
pub struct Resolver {
    generation: AtomicU64,
    entries: RwLock<HashMap<String, (Resolved, Instant)>>,
    recorded: Mutex<HashMap<String, Instant>>,
}

impl Resolver {
    fn get(&self, access_key: &str) -> Option<Resolved> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(access_key).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(resolved, _)| resolved.clone())
    }

    fn keep(&self, access_key: &str, resolved: Resolved, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(access_key.to_owned(), (resolved, Instant::now()));
        }
    }

    /// Forgets every resolved credential and turns away resolutions in flight.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Whether the use of `access_key` should be recorded now (at most once per interval).
    fn due(&self, access_key: &str) -> bool {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        recorded.retain(|_, at| now.duration_since(*at) < LAST_USED_INTERVAL);
        if recorded.contains_key(access_key) {
            return false;
        }
        recorded.insert(access_key.to_owned(), now);
        true
    }
}

/// A user's standing: the record and the names of its effective policies.
pub(crate) struct Standing {
    pub(crate) user: UserRecord,
    pub(crate) policy_names: Vec<String>,
}

impl Iam {
    /// The secret and principal of `access_key` (a user or a service account), or `None` when
    /// it names nothing usable.
    pub async fn credential(&self, access_key: &str) -> Result<Option<Arc<Credential>>, IamError> {
        if let Some(resolved) = self.resolver.get(access_key) {
            return Ok(resolved);
        }
        let generation = self.resolver.generation.load(Ordering::SeqCst);
        let resolved = self.resolve_drives(access_key).await?.map(Arc::new);
        self.resolver.keep(access_key, resolved.clone(), generation);
        Ok(resolved)
    }

    async fn resolve_drives(&self, access_key: &str) -> Result<Option<Credential>, IamError> {
        if let Some(standing) = self.standing(access_key).await? {
            let policies = self.resolve_policies(&standing.policy_names).await?;
            let secret =
                secrets::open(self.kms.as_ref(), &names::user_secret_id(access_key), &standing.user.secret).await?;
            let user =
                User { name: standing.user.name, policy_names: standing.policy_names, policies: policies.into() };
            return Ok(Some(Credential { secret, principal: Principal::User(user) }));
        }
        let Some(account) = self.docs.get::<ServiceAccountRecord>(&names::service_account_key(access_key)).await?
        else {
            return Ok(None);
        };
        let account = account.value;
        if account.status == Status::Disabled || account.expires.is_some_and(|at| at <= now_secs()) {
            return Ok(None);
        }
        let parent_policy_names = match &account.parent {
            Parent::User { name } => match self.standing(name).await? {
                Some(standing) => standing.policy_names,
                None => return Ok(None),
            },
            // A session's policies are built-in ones only (a name that is not built in grants
            // a session nothing): its service accounts get no more.
            Parent::Federated { policies, .. } => {
                policies.iter().filter(|name| builtin(name).is_some()).cloned().collect()
            }
        };
        let parent_policies = self.resolve_policies(&parent_policy_names).await?;
        let own_policy = match &account.policy {
            Some(text) => Some(Arc::new(Policy::parse(text, Kind::Identity).map_err(|e| {
                IamError::Internal(format!("the stored policy of service account {access_key} does not parse: {e}"))
            })?)),
            None => None,
        };
        let secret =
            secrets::open(self.kms.as_ref(), &names::service_account_secret_id(access_key), &account.secret).await?;
        let principal = Principal::ServiceAccount(ServiceAccount {
            access_key: access_key.to_owned(),
            parent: account.parent,
            parent_policies: parent_policies.into(),
            own_policy,
        });
        Ok(Some(Credential { secret, principal }))
    }

    /// The user `name` if it may sign requests (enabled, and in no disabled group), with its
    /// policies and those of its groups.
    pub(crate) async fn standing(&self, name: &str) -> Result<Option<Standing>, IamError> {
        let Some(user) = self.docs.get::<UserRecord>(&names::user_key(name)).await? else {
            return Ok(None);
        };
        let user = user.value;
        if user.status == Status::Disabled {
            return Ok(None);
        }
        let mut policy_names = user.policies.clone();
        for group in self.groups_of(name).await? {
            if group.status == Status::Disabled {
                return Ok(None);
            }
            policy_names.extend(group.policies);
        }
        policy_names.sort_unstable();
        policy_names.dedup();
        Ok(Some(Standing { user, policy_names }))
    }

    /// The groups `user` is a member of.
    pub(crate) async fn groups_of(&self, user: &str) -> Result<Vec<GroupRecord>, IamError> {
        let mut groups = Vec::new();
        for name in self.docs.names(names::GROUPS).await?.iter() {
            if let Some(group) = self.docs.get::<GroupRecord>(&names::group_key(name)).await? {
                if group.value.members.iter().any(|m| m == user) {
                    groups.push(group.value);
                }
            }
        }
        Ok(groups)
    }

    /// The policies `names` stand for: built-in, or named in the store. A name of no policy
    /// grants nothing (as AWS treats a policy that was deleted).
    pub(crate) async fn resolve_policies(&self, policy_names: &[String]) -> Result<Vec<IdentityPolicy>, IamError> {
        let mut resolved = Vec::new();
        for name in policy_names {
            if let Some(policy) = builtin(name) {
                resolved.push(IdentityPolicy::Builtin(policy));
                continue;
            }
            if let Some(record) = self.docs.get::<PolicyRecord>(&names::policy_key(name)).await? {
                let policy = Policy::parse(&record.value.document, Kind::Identity)
                    .map_err(|e| IamError::Internal(format!("the stored policy {name} does not parse: {e}")))?;
                resolved.push(IdentityPolicy::Named(Arc::new(policy)));
            }
        }
        Ok(resolved)
    }

    /// Records, in the background and at most once a minute per key, that `access_key` signed
    /// a request.
    pub fn record_use(self: &Arc<Self>, access_key: &str) {
        if !self.resolver.due(access_key) {
            return;
        }
        let iam = Arc::clone(self);
        let access_key = access_key.to_owned();
        tokio::spawn(async move {
            let key = names::last_used_key(&access_key);
            if let Err(e) = iam.docs.put(&key, &LastUsed { at: now_secs() }).await {
                tracing::debug!(error = %e, "last-used time not recorded");
            }
        });
    }

    /// When `access_key` last signed a request, if recorded.
    pub async fn last_used(&self, access_key: &str) -> Result<Option<i64>, IamError> {
        Ok(self.docs.get::<LastUsed>(&names::last_used_key(access_key)).await?.map(|v| v.value.at))
    }
}
