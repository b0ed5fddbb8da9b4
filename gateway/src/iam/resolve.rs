//! Authentication against the IAM store: an access key id to its secret and principal. What
//! is resolved is cached for the store's TTL (unsealed secrets live in memory no longer than
//! that), negative answers too, so that neither a signed request nor a flood of unknown keys
//! reads the drives per request. A disabled user, a member of a disabled group, a disabled or
//! expired service account, or one whose parent user is refused resolves to nothing: its
//! requests get InvalidAccessKeyId, as for a key that does not exist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use policy::{builtin, Kind, Policy};

use crate::iam::entities::{GroupRecord, LastUsed, Parent, PolicyRecord, ServiceAccountRecord, Status, UserRecord};
use crate::iam::expiring::{ExpiringMap, MAX_CACHE_ENTRIES};
use crate::iam::secrets::{self, ClearSecret};
use crate::iam::store::CACHE_TTL;
use crate::iam::{names, now_secs, Iam, IamError};
use crate::principal::{IdentityPolicy, Principal, ServiceAccount, User};

/// How often the last-used time of one key is written at most.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// An access key's secret and principal.
#[derive(Debug)]
pub struct Credential {
    /// The secret key.
    pub secret: ClearSecret,
    /// Who signs with it.
    pub principal: Principal,
}

type Resolved = Option<Arc<Credential>>;

/// Credentials resolved recently, and when each key's use was last recorded; both bounded and
/// swept, so that a resolved secret leaves memory at most half a TTL after it expired, even if
/// its key is never used again.
#[derive(Debug)]
pub struct Resolver {
    generation: AtomicU64,
    entries: Arc<ExpiringMap<String, Resolved>>,
    /// Keys found to name nothing usable, apart from `entries`: a flood of well-formed unknown
    /// keys fills this map only, and never evicts the credentials of real keys.
    unknown: Arc<ExpiringMap<String, Resolved>>,
    recorded: Arc<ExpiringMap<String, ()>>,
}

impl Resolver {
    /// An empty resolver whose expired entries background tasks sweep.
    pub(crate) fn new() -> Self {
        let entries = Arc::new(ExpiringMap::new(CACHE_TTL, MAX_CACHE_ENTRIES));
        let unknown = Arc::new(ExpiringMap::new(CACHE_TTL, MAX_CACHE_ENTRIES));
        let recorded = Arc::new(ExpiringMap::new(LAST_USED_INTERVAL, MAX_CACHE_ENTRIES));
        ExpiringMap::spawn_sweeper(&entries, CACHE_TTL / 2);
        ExpiringMap::spawn_sweeper(&unknown, CACHE_TTL / 2);
        ExpiringMap::spawn_sweeper(&recorded, LAST_USED_INTERVAL);
        Self { generation: AtomicU64::new(0), entries, unknown, recorded }
    }

    /// What resolving `access_key` found, or `None` if it is not cached.
    fn cached(&self, access_key: &str) -> Option<Resolved> {
        self.entries.get(access_key).or_else(|| self.unknown.get(access_key))
    }

    fn keep(&self, access_key: &str, resolved: Resolved, generation: u64) {
        let map = if resolved.is_some() { &self.entries } else { &self.unknown };
        map.insert_if(access_key.to_owned(), resolved, || self.generation.load(Ordering::SeqCst) == generation);
    }

    /// Forgets every resolved credential and turns away resolutions in flight.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
        self.unknown.clear();
    }

    /// Whether the use of `access_key` should be recorded now (at most once per interval).
    fn due(&self, access_key: &str) -> bool {
        self.recorded.insert_new(access_key.to_owned(), ())
    }
}

/// A user's standing: the record and the names of its effective policies.
pub(crate) struct Standing {
    pub(crate) user: UserRecord,
    pub(crate) policy_names: Vec<String>,
}

impl Iam {
    /// The secret and principal of `access_key` (a user or a service account), or `None` when
    /// it names nothing usable. A key the store cannot have issued is refused before any read
    /// or cache insertion, so a flood of made-up keys costs neither drive reads nor memory.
    pub async fn credential(&self, access_key: &str) -> Result<Option<Arc<Credential>>, IamError> {
        if !names::may_have_issued(access_key) {
            return Ok(None);
        }
        if let Some(resolved) = self.resolver.cached(access_key) {
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
        // An own policy that no longer parses narrows to nothing: the account is refused
        // everything (403) rather than answered with errors, and never gets its parent's all.
        let own_policy = account.policy.as_deref().map(|text| {
            Arc::new(Policy::parse(text, Kind::Identity).unwrap_or_else(|e| {
                tracing::warn!(%access_key, error = %e, "a service account's own policy does not parse; it allows nothing");
                Policy { version: "2012-10-17".into(), id: None, statements: Vec::new() }
            }))
        });
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
    /// grants nothing (as AWS treats a policy that was deleted), nor does a stored policy that
    /// no longer parses (with a warning).
    pub(crate) async fn resolve_policies(&self, policy_names: &[String]) -> Result<Vec<IdentityPolicy>, IamError> {
        let mut resolved = Vec::new();
        for name in policy_names {
            if let Some(policy) = builtin(name) {
                resolved.push(IdentityPolicy::Builtin(policy));
                continue;
            }
            let Some(record) = self.docs.get::<PolicyRecord>(&names::policy_key(name)).await? else {
                continue;
            };
            // Validated when it was stored, so a parser change or a damaged document: it
            // grants nothing rather than lock every holder out with errors.
            match Policy::parse(&record.value.document, Kind::Identity) {
                Ok(policy) => resolved.push(IdentityPolicy::Named(Arc::new(policy))),
                Err(e) => {
                    tracing::warn!(policy = %name, error = %e, "a stored policy does not parse; it grants nothing")
                }
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
            if let Err(e) = iam.docs.put_uncached(&key, &LastUsed { at: now_secs() }).await {
                tracing::debug!(error = %e, "last-used time not recorded");
            }
        });
    }

    /// When `access_key` last signed a request, if recorded.
    pub async fn last_used(&self, access_key: &str) -> Result<Option<i64>, IamError> {
        Ok(self.docs.get::<LastUsed>(&names::last_used_key(access_key)).await?.map(|v| v.value.at))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rand::distributions::{Alphanumeric, DistString};
    use rand::Rng;

    use super::*;
    use crate::iam::testing::gateways;

    /// A key no user or service account can have: too long, too short, or with a character
    /// outside the IAM alphabet.
    fn made_up_key(rng: &mut impl Rng) -> String {
        let len = rng.gen_range(1..=200);
        let mut key = Alphanumeric.sample_string(rng, len);
        match rng.gen_range(0..3) {
            0 if key.len() <= names::MAX_USER_NAME_CHARS => key.push_str(&"X".repeat(names::MAX_USER_NAME_CHARS)),
            1 => key.truncate(names::MIN_USER_NAME_CHARS - 1),
            _ => key.insert(rng.gen_range(0..=key.len()), *b"/ #%&*!?~:".get(rng.gen_range(0..10)).unwrap() as char),
        }
        key
    }

    #[tokio::test]
    async fn made_up_keys_cost_no_reads_and_no_cache_entries() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        iam.create_user("alice", None, vec!["readonly".into()]).await.unwrap();
        assert!(iam.credential("alice").await.unwrap().is_some());
        let (reads, cached, resolved) = (iam.docs.drive_reads(), iam.docs.cached_entries(), iam.resolver.entries.len());
        let mut rng = rand::thread_rng();
        for _ in 0..2000 {
            let key = made_up_key(&mut rng);
            assert!(!names::may_have_issued(&key), "{key}");
            assert!(iam.credential(&key).await.unwrap().is_none());
        }
        assert_eq!(iam.docs.drive_reads(), reads, "no store reads");
        assert_eq!((iam.docs.cached_entries(), iam.resolver.entries.len()), (cached, resolved), "no cache growth");
        assert!(iam.credential("NOSUCHKEY00000000000").await.unwrap().is_none());
        assert!(iam.docs.drive_reads() > reads, "a key of the right shape is looked up (the counter counts)");
    }

    #[tokio::test]
    async fn unknown_keys_never_evict_a_real_credential() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        iam.create_user("alice", None, vec!["readonly".into()]).await.unwrap();
        assert!(iam.credential("alice").await.unwrap().is_some());
        for i in 0..MAX_CACHE_ENTRIES + 10 {
            iam.resolver.keep(&format!("UNKNOWN{i:08}"), None, iam.resolver.generation.load(Ordering::SeqCst));
        }
        assert_eq!(iam.resolver.entries.len(), 1, "only alice among the credentials");
        let reads = iam.docs.drive_reads();
        assert!(iam.credential("alice").await.unwrap().is_some());
        assert_eq!(iam.docs.drive_reads(), reads, "alice is still resolved from memory");
    }

    #[tokio::test]
    async fn resolved_secrets_leave_memory_after_the_ttl_without_lookups() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        iam.create_user("alice", None, Vec::new()).await.unwrap();
        assert!(iam.credential("alice").await.unwrap().is_some());
        let resolved = Instant::now();
        assert_eq!(iam.resolver.entries.len(), 1);
        while !iam.resolver.entries.is_empty() {
            assert!(resolved.elapsed() < CACHE_TTL * 3 / 2 + Duration::from_millis(500), "still held");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(resolved.elapsed() >= CACHE_TTL, "held for the TTL");
    }

    #[tokio::test]
    async fn no_secret_shows_in_debug_output() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        let secret = "Chosen-Secret-0123";
        let created = iam.create_user("alice", Some(secret.to_owned().into()), Vec::new()).await.unwrap();
        let credential = iam.credential("alice").await.unwrap().unwrap();
        assert_eq!(credential.secret.expose(), secret);
        let account = iam
            .create_service_account(crate::iam::service_accounts::NewServiceAccount {
                parent: Parent::User { name: "alice".into() },
                policy: None,
                expires: None,
                name: None,
                description: None,
            })
            .await
            .unwrap();
        let account_secret = account.secret_key.expose().to_owned();
        let account_credential = iam.credential(&account.account.access_key).await.unwrap().unwrap();
        let printed = format!("{created:?} {credential:?} {account:?} {account_credential:?} {:?}", iam.resolver);
        assert!(!printed.contains(secret) && !printed.contains(&account_secret), "{printed}");
        assert!(printed.contains("alice"), "the rest is printed");
    }

    #[tokio::test]
    async fn a_stored_policy_that_no_longer_parses_grants_nothing_and_locks_no_one_out() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        let document =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        iam.put_policy("reader", document).await.unwrap();
        iam.create_user("alice", None, vec!["reader".into(), "readonly".into()]).await.unwrap();
        let key = names::policy_key("reader");
        let mut record = iam.docs.get_fresh::<PolicyRecord>(&key).await.unwrap().unwrap().value;
        record.document = r#"{"Statement":"damaged"}"#.into();
        iam.docs.put_uncached(&key, &record).await.unwrap();
        iam.forget_cached();
        let credential = iam.credential("alice").await.unwrap().expect("alice still signs requests");
        let Principal::User(user) = &credential.principal else { panic!("{credential:?}") };
        assert_eq!(user.policy_names, ["reader", "readonly"]);
        assert_eq!(user.policies.len(), 1, "only the built-in one grants anything");
    }

    #[tokio::test]
    async fn a_service_account_whose_own_policy_no_longer_parses_is_allowed_nothing() {
        let gateways = gateways().await;
        let iam = &gateways.here;
        iam.create_user("alice", None, vec!["readwrite".into()]).await.unwrap();
        let own = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let created = iam
            .create_service_account(crate::iam::service_accounts::NewServiceAccount {
                parent: Parent::User { name: "alice".into() },
                policy: Some(own.into()),
                expires: None,
                name: None,
                description: None,
            })
            .await
            .unwrap();
        let access_key = created.account.access_key.clone();
        let key = names::service_account_key(&access_key);
        let mut record = iam.docs.get_fresh::<ServiceAccountRecord>(&key).await.unwrap().unwrap().value;
        record.policy = Some(r#"{"Statement":"damaged"}"#.into());
        iam.docs.put_uncached(&key, &record).await.unwrap();
        iam.forget_cached();
        let credential = iam.credential(&access_key).await.unwrap().expect("the account still authenticates");
        let Principal::ServiceAccount(account) = &credential.principal else { panic!("{credential:?}") };
        let own = account.own_policy.as_ref().expect("a narrowing policy");
        assert!(own.statements.is_empty(), "narrowed to nothing, not widened to the parent's readwrite");
    }

    #[tokio::test]
    async fn the_use_of_a_key_is_recorded_once_per_interval() {
        let gateways = gateways().await;
        let resolver = &gateways.here.resolver;
        assert!(resolver.due("alice"));
        assert!(!resolver.due("alice"));
        assert!(resolver.due("bob"));
    }
}
