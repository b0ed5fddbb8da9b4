//! The access step of the request pipeline: runs after SigV4 authentication, before the
//! operation. It records who called which operation on what (for metrics and the audit log),
//! requires signed requests to be signed for this server's region, resolves the caller to a
//! [`Principal`], and decides: root may do everything; anyone else needs the operation's
//! permissions (docs/authorization.md) from its identity policies or the bucket's policy, or,
//! where no policy denies them explicitly and the bucket has ACLs enabled, from an ACL grant
//! ([`crate::acl`]), and is otherwise refused with 403 AccessDenied.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use policy::Verdict;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};

use crate::acl::permissions::{self, Target};
use crate::authz::actions::{self, Check, Scope};
use crate::authz::bucket_policies::{BucketAcl, BucketPolicies};
use crate::authz::conditions::{self, ClientConnection, RequestParts};
use crate::authz::{access_denied, AclIdentity, Authorization, EXISTING_OBJECT_TAG};
use crate::parse;
use crate::principal::{Principal, Principals};
use crate::sts::auth::session_token;

/// What the pipeline learned about a request, shared between the access step and the front
/// end through the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct RequestContext(Arc<Mutex<RequestFacts>>);

/// Facts about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// S3 operation name, once routed (for example `GetObject`).
    pub api: Option<String>,
    /// Access key of the authenticated caller.
    pub principal: Option<String>,
    /// Bucket addressed.
    pub bucket: Option<String>,
    /// Object key addressed.
    pub key: Option<String>,
}

impl RequestContext {
    /// A copy of the facts gathered so far.
    pub fn facts(&self) -> RequestFacts {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Replaces the facts (the access step's, or the POST Object handler's).
    pub(crate) fn record(&self, facts: RequestFacts) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = facts;
        }
    }
}

/// The access step: region check, principal, policies.
#[derive(Clone)]
pub struct Authorize {
    region: String,
    principals: Arc<dyn Principals>,
    policies: Arc<dyn BucketPolicies>,
}

/// One request as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The s3s operation name.
    pub operation: &'a str,
    /// Bucket and key addressed.
    pub path: &'a S3Path,
    /// The verified signature's access key; `None` for an unsigned request.
    pub access_key: Option<&'a str>,
    /// URI, headers and connection.
    pub parts: RequestParts<'a>,
}

impl Authorize {
    /// Accepts requests signed for `region`, resolving their callers with `principals` and
    /// reading bucket policies from `policies`.
    pub fn new(region: &str, principals: Arc<dyn Principals>, policies: Arc<dyn BucketPolicies>) -> Self {
        Self { region: region.to_owned(), principals, policies }
    }

    /// What the request's principal may do, or the error to answer: AccessDenied when the
    /// operation's permissions are not all allowed, or the principal resolver's error.
    pub async fn decide(&self, request: &AccessRequest<'_>) -> S3Result<Authorization> {
        let principal = match request.access_key {
            None => Principal::Anonymous,
            Some(access_key) => {
                self.principals
                    .resolve(access_key, session_token(request.parts.headers, request.parts.uri).as_deref())
                    .await?
            }
        };
        if matches!(principal, Principal::Root { .. }) {
            return Ok(Authorization::everything());
        }
        let rule = actions::rule(request.operation).ok_or_else(access_denied)?;
        let version_id = request.parts.query_value("versionId").map_err(|_| access_denied())?;
        let copy_source = request.parts.headers.get("x-amz-copy-source").and_then(|v| v.to_str().ok());
        let mut checks =
            actions::checks(rule, request.path, version_id.as_deref(), copy_source).map_err(|_| access_denied())?;
        if let Some(first) = checks.first().cloned() {
            checks.extend(actions::tagging_check(request.operation, &first, request.parts.headers));
            checks.extend(actions::acl_checks(request.operation, &first, request.parts.headers));
        }
        let bucket = match request.path {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.as_ref()),
        };
        let bucket_policy = match bucket {
            Some(bucket) => self.policies.policy(bucket).await?,
            None => None,
        };
        let context =
            conditions::request_context(&request.parts, &principal, SystemTime::now()).map_err(|_| access_denied())?;
        let mut authorization = Authorization::of(&principal, context, bucket_policy);
        // The object's tags are read only for an action that supports them, and only when some
        // policy has a condition on them: the plain path pays nothing.
        if let (S3Path::Object { bucket, key }, Some(object)) = (request.path, checks.first()) {
            if actions::reads_existing_tags(object.action) && authorization.has_condition_on(EXISTING_OBJECT_TAG) {
                let tags = self.policies.object_tags(bucket, key, version_id.as_deref()).await?;
                authorization = authorization.with_existing_tags(&tags.unwrap_or_default());
            }
        }
        // Operations checked per key by their handler need nothing here, unless no policy
        // could allow any key.
        if rule.scope == Scope::EachKey && !authorization.has_policies() {
            return Err(access_denied());
        }
        for check in &checks {
            if !self.allowed(&authorization, check, bucket).await? {
                return Err(access_denied());
            }
        }
        Ok(authorization)
    }

    /// Whether `check` is allowed: by the policies (with the policy of the bucket its resource
    /// belongs to), or, when none denies it explicitly, by an ACL grant.
    async fn allowed(&self, authorization: &Authorization, check: &Check, bucket: Option<&str>) -> S3Result<bool> {
        let verdict = match check.bucket.as_deref() {
            Some(other) if Some(other) != bucket => {
                let policy = self.policies.policy(other).await?;
                authorization.verdict_in(check.action, &check.resource, policy.as_deref())
            }
            _ => authorization.verdict(check.action, &check.resource),
        };
        match verdict {
            Verdict::Allowed => Ok(true),
            Verdict::ExplicitDeny => Ok(false),
            Verdict::NotAllowed => self.acl_grants(authorization, check).await,
        }
    }

    /// Whether an ACL gives the caller the permission `check` stands for: the bucket's ACL
    /// for bucket permissions, the object version's for object ones; never in a bucket whose
    /// object ownership disables ACLs (the ACLs are then not even read).
    async fn acl_grants(&self, authorization: &Authorization, check: &Check) -> S3Result<bool> {
        let (Some((target, permission)), Some(bucket)) = (permissions::needed(check.action), check.bucket.as_deref())
        else {
            return Ok(false);
        };
        let BucketAcl::Enabled(bucket_acl) = self.policies.bucket_acl(bucket).await? else { return Ok(false) };
        let caller = match authorization.acl_identity() {
            AclIdentity::Owner => return Ok(true),
            AclIdentity::Anonymous => None,
            AclIdentity::User(id) => Some(id),
        };
        let acl = match (target, &check.object) {
            (Target::Bucket, _) => bucket_acl,
            (Target::Object, Some((key, version_id))) => {
                self.policies.object_acl(bucket, key, version_id.as_deref()).await?
            }
            (Target::Object, None) => None,
        };
        Ok(acl.is_some_and(|acl| permissions::grants(&acl, caller.as_deref(), permission)))
    }

    /// Refuses a request signed for another region.
    fn check_region(&self, cx: &S3AccessContext<'_>) -> S3Result<()> {
        match signed_region(cx) {
            Some((true, region)) if region != self.region => Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; the region '{region}' is wrong; expecting '{}'",
                self.region
            )),
            Some((false, region)) if region != self.region => Err(s3_error!(
                AuthorizationQueryParametersError,
                "Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{}'",
                self.region
            )),
            _ => Ok(()),
        }
    }
}

/// Where the request carries its signature, and the region it was signed for.
fn signed_region(cx: &S3AccessContext<'_>) -> Option<(bool, String)> {
    if let Some(auth) = cx.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let credential = auth.split("Credential=").nth(1)?.split(',').next()?;
        return parse::scope_region(credential).map(|r| (true, r.to_owned()));
    }
    let query = cx.uri().query()?;
    let credential = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    let credential = percent_encoding::percent_decode_str(credential).decode_utf8().ok()?;
    parse::scope_region(&credential).map(|r| (false, r.to_owned()))
}

#[async_trait::async_trait]
impl S3Access for Authorize {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let facts = RequestFacts {
            api: Some(cx.s3_op().name().to_owned()),
            principal: cx.credentials().map(|c| c.access_key.clone()),
            bucket,
            key,
        };
        if let Some(context) = cx.extensions_mut().get::<RequestContext>() {
            context.record(facts);
        }
        if cx.credentials().is_some() {
            self.check_region(cx)?;
        }
        let connection = cx.extensions_mut().get::<ClientConnection>().copied();
        let request = AccessRequest {
            operation: cx.s3_op().name(),
            path: cx.s3_path(),
            access_key: cx.credentials().map(|c| c.access_key.as_str()),
            parts: RequestParts { uri: cx.uri(), headers: cx.headers(), connection, signed_form: false },
        };
        let authorization = self.decide(&request).await?;
        cx.extensions_mut().insert(authorization);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The decision of the access step for each kind of principal. The principal resolver is
    //! a test double standing for the STS identity provider (not merged yet), and bucket
    //! policies come from a map instead of the store.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::{HeaderMap, Uri};
    use policy::{Kind, Policy};
    use s3s::S3ErrorCode;

    use storage::acl::{Acl, AclGrant, AclPermission, Grantee};

    use super::*;
    use crate::acl::{canonical_id, ALL_USERS};
    use crate::authz::session_arn;
    use crate::principal::Session;

    const ROOT_KEY: &str = "ROOTKEY";

    /// Resolves the root key and sessions by access key, like RootAuth and STS will.
    struct FakePrincipals(HashMap<String, Principal>);

    #[async_trait::async_trait]
    impl Principals for FakePrincipals {
        async fn resolve(&self, access_key: &str, _session_token: Option<&str>) -> S3Result<Principal> {
            self.0.get(access_key).cloned().ok_or_else(|| s3_error!(InvalidAccessKeyId))
        }
    }

    /// Bucket policies and ACLs by bucket name, counting lookups.
    struct MapPolicies {
        policies: HashMap<String, Arc<Policy>>,
        /// Buckets with ACLs enabled, and their ACL.
        acls: HashMap<String, Option<Acl>>,
        /// Object ACLs by `bucket/key`.
        object_acls: HashMap<String, Acl>,
        lookups: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl BucketPolicies for MapPolicies {
        async fn policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.policies.get(bucket).cloned())
        }

        async fn object_tags(&self, _: &str, _: &str, _: Option<&str>) -> S3Result<Option<Vec<(String, String)>>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }

        async fn bucket_acl(&self, bucket: &str) -> S3Result<BucketAcl> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(match self.acls.get(bucket) {
                Some(acl) => BucketAcl::Enabled(acl.clone()),
                None => BucketAcl::Disabled,
            })
        }

        async fn object_acl(&self, bucket: &str, key: &str, _: Option<&str>) -> S3Result<Option<Acl>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.object_acls.get(&format!("{bucket}/{key}")).cloned())
        }
    }

    fn session(key: &str, subject: &str, policies: &[&str]) -> (String, Principal) {
        let session = Session {
            access_key: key.to_owned(),
            issuer: "https://keycloak.example/realms/sovereign".to_owned(),
            subject: subject.to_owned(),
            policies: policies.iter().map(|p| (*p).to_owned()).collect(),
            claims: serde_json::Map::new(),
            expires: SystemTime::now(),
        };
        (key.to_owned(), Principal::Session(session))
    }

    struct Setup {
        authorize: Authorize,
        policies: Arc<MapPolicies>,
    }

    fn setup(bucket_policies: &[(&str, &str)]) -> Setup {
        setup_with_acls(bucket_policies, HashMap::new(), HashMap::new())
    }

    fn setup_with_acls(
        bucket_policies: &[(&str, &str)],
        acls: HashMap<String, Option<Acl>>,
        object_acls: HashMap<String, Acl>,
    ) -> Setup {
        let principals = FakePrincipals(HashMap::from([
            (ROOT_KEY.to_owned(), Principal::Root { access_key: ROOT_KEY.to_owned() }),
            session("READER", "reader", &["readonly"]),
            session("WRITER", "writer", &["readwrite"]),
            session("DROPBOX", "dropbox", &["writeonly"]),
            session("NOBODY", "nobody", &["no-such-policy"]),
        ]));
        let parsed = bucket_policies
            .iter()
            .map(|(bucket, text)| ((*bucket).to_owned(), Arc::new(Policy::parse(text, Kind::Bucket(bucket)).unwrap())))
            .collect();
        let policies = Arc::new(MapPolicies { policies: parsed, acls, object_acls, lookups: AtomicUsize::new(0) });
        let authorize =
            Authorize::new("us-east-1", Arc::new(principals), Arc::clone(&policies) as Arc<dyn BucketPolicies>);
        Setup { authorize, policies }
    }

    /// The decision on `operation` at `uri` (path style) by `access_key` (None: unsigned).
    async fn decide(
        setup: &Setup,
        access_key: Option<&str>,
        operation: &str,
        uri: &str,
        headers: &[(&'static str, &str)],
    ) -> S3Result<Authorization> {
        let uri: Uri = uri.parse().unwrap();
        let mut segments = uri.path().trim_start_matches('/').splitn(2, '/');
        let path = match (segments.next().filter(|b| !b.is_empty()), segments.next()) {
            (None, _) => S3Path::Root,
            (Some(bucket), None) => S3Path::bucket(bucket),
            (Some(bucket), Some(key)) => S3Path::object(bucket, key),
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(hyper::header::HeaderName::from_static(name), value.parse().unwrap());
        }
        let connection = ClientConnection { peer: "192.0.2.7:40000".parse().unwrap(), secure: false };
        let request = AccessRequest {
            operation,
            path: &path,
            access_key,
            parts: RequestParts { uri: &uri, headers: &map, connection: Some(connection), signed_form: false },
        };
        setup.authorize.decide(&request).await
    }

    async fn allowed(setup: &Setup, access_key: Option<&str>, operation: &str, uri: &str) -> bool {
        match decide(setup, access_key, operation, uri, &[]).await {
            Ok(_) => true,
            Err(e) => {
                assert_eq!(e.code(), &S3ErrorCode::AccessDenied, "{e:?}");
                assert_eq!(e.message(), Some("Access Denied"), "the refusal says nothing more");
                false
            }
        }
    }

    const PUBLIC_PREFIX: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"},
        {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":"public/*"}}}]}"#;

    #[tokio::test]
    async fn root_may_do_everything_without_reading_any_policy() {
        let setup = setup(&[(
            "b",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}"#,
        )]);
        for (operation, uri) in [
            ("GetObject", "/b/k"),
            ("PutBucketPolicy", "/b"),
            ("DeleteBucket", "/b"),
            ("ListBuckets", "/"),
            ("NoSuchOperation", "/b"),
        ] {
            let authorization = decide(&setup, Some(ROOT_KEY), operation, uri, &[]).await.unwrap();
            assert!(authorization.allows("s3:DeleteObject", "arn:aws:s3:::b/k"));
        }
        assert_eq!(setup.policies.lookups.load(Ordering::SeqCst), 0, "the root path reads no bucket policy");
    }

    #[tokio::test]
    async fn unsigned_requests_get_only_what_the_bucket_policy_gives_everyone() {
        let setup = setup(&[("b", PUBLIC_PREFIX)]);
        assert!(allowed(&setup, None, "GetObject", "/b/public/photo.jpg").await);
        assert!(allowed(&setup, None, "HeadObject", "/b/public/photo.jpg").await);
        assert!(allowed(&setup, None, "ListObjectsV2", "/b?list-type=2&prefix=public/").await);
        assert!(!allowed(&setup, None, "ListObjectsV2", "/b?list-type=2&prefix=private/").await);
        assert!(!allowed(&setup, None, "ListObjectsV2", "/b?list-type=2").await, "no prefix, no listing");
        assert!(!allowed(&setup, None, "ListObjectsV2", "/b?prefix=public/&prefix=private/").await);
        assert!(!allowed(&setup, None, "GetObject", "/b/private/photo.jpg").await);
        assert!(!allowed(&setup, None, "GetObject", "/b/public/photo.jpg?versionId=v1").await, "GetObjectVersion");
        assert!(!allowed(&setup, None, "PutObject", "/b/public/photo.jpg").await);
        assert!(!allowed(&setup, None, "DeleteObject", "/b/public/photo.jpg").await);
        assert!(!allowed(&setup, None, "GetBucketPolicy", "/b").await);
        assert!(!allowed(&setup, None, "ListBuckets", "/").await);
        assert!(!allowed(&setup, None, "GetObject", "/other/public/photo.jpg").await, "another bucket's policy");
        assert!(!allowed(&setup, None, "DeleteObjects", "/other?delete").await, "no policy could allow a key");
    }

    #[tokio::test]
    async fn anonymous_callers_are_not_named_principals() {
        let setup = setup(&[(
            "b",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/reader"},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}"#,
        )]);
        assert!(!allowed(&setup, None, "GetObject", "/b/k").await);
        assert!(allowed(&setup, Some("READER"), "PutObject", "/b/k").await, "the bucket policy grants on its own");
        assert!(!allowed(&setup, Some("DROPBOX"), "GetObject", "/b/k").await);
    }

    #[tokio::test]
    async fn sessions_get_their_builtin_policies() {
        let setup = setup(&[]);
        assert!(allowed(&setup, Some("READER"), "GetObject", "/b/k").await);
        assert!(allowed(&setup, Some("READER"), "GetBucketLocation", "/b?location").await);
        assert!(!allowed(&setup, Some("READER"), "PutObject", "/b/k").await);
        assert!(!allowed(&setup, Some("READER"), "DeleteObject", "/b/k").await);
        assert!(allowed(&setup, Some("WRITER"), "PutObject", "/b/k").await);
        assert!(allowed(&setup, Some("WRITER"), "GetObject", "/b/k?versionId=v1").await);
        assert!(allowed(&setup, Some("WRITER"), "PutBucketPolicy", "/b?policy").await, "readwrite is s3:*");
        assert!(allowed(&setup, Some("WRITER"), "ListBuckets", "/").await);
        assert!(allowed(&setup, Some("DROPBOX"), "PutObject", "/b/k").await);
        assert!(!allowed(&setup, Some("DROPBOX"), "GetObject", "/b/k").await);
        assert!(!allowed(&setup, Some("DROPBOX"), "ListObjects", "/b").await);
        assert!(!allowed(&setup, Some("NOBODY"), "GetObject", "/b/k").await, "unknown policy names grant nothing");
        assert!(!allowed(&setup, Some("WRITER"), "NoSuchOperation", "/b").await, "unknown operations are denied");
        let unknown = decide(&setup, Some("STRANGER"), "GetObject", "/b/k", &[]).await.unwrap_err();
        assert_eq!(unknown.code(), &S3ErrorCode::InvalidAccessKeyId);
    }

    #[tokio::test]
    async fn a_bucket_policy_deny_wins_over_readwrite() {
        let setup = setup(&[(
            "b",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":["s3:DeleteObject","s3:PutObject"],"Resource":"arn:aws:s3:::b/locked/*"}}"#,
        )]);
        assert!(!allowed(&setup, Some("WRITER"), "PutObject", "/b/locked/k").await);
        assert!(!allowed(&setup, Some("WRITER"), "DeleteObject", "/b/locked/k").await);
        assert!(allowed(&setup, Some("WRITER"), "PutObject", "/b/open/k").await);
        let authorization = decide(&setup, Some("WRITER"), "DeleteObjects", "/b?delete", &[]).await.unwrap();
        assert!(authorization.allows_key("DeleteObjects", "b", "open/k", None));
        assert!(!authorization.allows_key("DeleteObjects", "b", "locked/k", None), "each key of a batch");
        assert!(authorization.allows_key("DeleteObjects", "b", "open/k", Some("v1")));
    }

    #[tokio::test]
    async fn copies_need_read_on_the_source_under_its_bucket_policy() {
        let setup = setup(&[(
            "src",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject*","Resource":"arn:aws:s3:::src/secret/*"}}"#,
        )]);
        let ok = decide(&setup, Some("WRITER"), "CopyObject", "/dst/k", &[("x-amz-copy-source", "/src/open/a")]).await;
        assert!(ok.is_ok());
        let denied =
            decide(&setup, Some("WRITER"), "CopyObject", "/dst/k", &[("x-amz-copy-source", "/src/secret/a")]).await;
        assert_eq!(denied.unwrap_err().code(), &S3ErrorCode::AccessDenied);
        let versioned = decide(
            &setup,
            Some("WRITER"),
            "UploadPartCopy",
            "/dst/k?partNumber=1&uploadId=u",
            &[("x-amz-copy-source", "/src/secret/a?versionId=v")],
        )
        .await;
        assert_eq!(versioned.unwrap_err().code(), &S3ErrorCode::AccessDenied);
        let dropbox =
            decide(&setup, Some("DROPBOX"), "CopyObject", "/dst/k", &[("x-amz-copy-source", "/src/open/a")]).await;
        assert_eq!(dropbox.unwrap_err().code(), &S3ErrorCode::AccessDenied, "writeonly cannot read the source");
        let malformed = decide(&setup, Some("WRITER"), "CopyObject", "/dst/k", &[("x-amz-copy-source", "nokey")]).await;
        assert_eq!(malformed.unwrap_err().code(), &S3ErrorCode::AccessDenied);
    }

    #[tokio::test]
    async fn a_write_that_widens_an_acl_needs_the_acl_permission() {
        let setup = setup(&[]);
        let put = |headers: &'static [(&'static str, &'static str)]| {
            decide(&setup, Some("DROPBOX"), "PutObject", "/b/k", headers)
        };
        assert!(put(&[]).await.is_ok(), "writeonly may put");
        assert!(put(&[("x-amz-acl", "bucket-owner-full-control")]).await.is_ok(), "an owner-only ACL widens nothing");
        let public = put(&[("x-amz-acl", "public-read")]).await;
        assert_eq!(public.unwrap_err().code(), &S3ErrorCode::AccessDenied, "s3:PutObjectAcl is needed too");
        let granted = put(&[("x-amz-grant-read", "id=someone")]).await;
        assert_eq!(granted.unwrap_err().code(), &S3ErrorCode::AccessDenied);
    }

    fn acl(grants: &[(Grantee, AclPermission)]) -> Acl {
        let grants =
            grants.iter().map(|(grantee, permission)| AclGrant { grantee: grantee.clone(), permission: *permission });
        Acl { owner: ROOT_KEY.into(), grants: grants.collect() }
    }

    #[tokio::test]
    async fn acl_grants_allow_unless_a_policy_denies_and_only_where_acls_are_enabled() {
        let everyone_reads = acl(&[(Grantee::Group(ALL_USERS.into()), AclPermission::Read)]);
        let reader_id = canonical_id(&session_arn("dropbox"));
        let named = acl(&[(Grantee::CanonicalUser(reader_id), AclPermission::Read)]);
        let setup = setup_with_acls(
            &[(
                "acl",
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::acl/denied"}}"#,
            )],
            HashMap::from([("acl".to_owned(), Some(everyone_reads.clone())), ("acls-on".to_owned(), None)]),
            HashMap::from([
                ("acl/public".to_owned(), everyone_reads.clone()),
                ("acl/denied".to_owned(), everyone_reads.clone()),
                ("acl/named".to_owned(), named),
                ("disabled/public".to_owned(), everyone_reads),
            ]),
        );
        assert!(allowed(&setup, None, "GetObject", "/acl/public").await, "AllUsers READ on the object");
        assert!(allowed(&setup, None, "ListObjectsV2", "/acl?list-type=2").await, "AllUsers READ on the bucket");
        assert!(!allowed(&setup, None, "PutObject", "/acl/new").await, "READ is not WRITE");
        assert!(!allowed(&setup, None, "GetObjectAcl", "/acl/public?acl").await, "READ is not READ_ACP");
        assert!(!allowed(&setup, None, "GetObject", "/acl/denied").await, "an explicit Deny wins over a grant");
        assert!(allowed(&setup, Some("DROPBOX"), "GetObject", "/acl/named").await, "a grant to the canonical id");
        assert!(!allowed(&setup, Some("NOBODY"), "GetObject", "/acl/named").await, "not to another");
        assert!(!allowed(&setup, None, "GetObject", "/acl/named").await);
        assert!(!allowed(&setup, None, "GetObject", "/acls-on/k").await, "no object ACL: the owner's alone");
        let before = setup.policies.lookups.load(Ordering::SeqCst);
        assert!(
            !allowed(&setup, None, "GetObject", "/disabled/public").await,
            "ACLs disabled: a stored grant counts for nothing"
        );
        let lookups = setup.policies.lookups.load(Ordering::SeqCst) - before;
        assert_eq!(lookups, 2, "the policy and the bucket's ownership; no object read");
    }
}
