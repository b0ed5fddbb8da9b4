//! The operation table: for every operation s3s routes, the IAM action it needs and the
//! resource it needs it on, as AWS documents them ("Actions, resources, and condition keys
//! for Amazon S3"). docs/authorization.md shows the same table; a test keeps them equal.

use hyper::HeaderMap;
use s3s::dto::CopySource;
use s3s::path::S3Path;

use super::arn;

/// What an operation's action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No bucket: the action is asked on `arn:aws:s3:::` (which `arn:aws:s3:::*` and `*` match).
    Service,
    /// The bucket: `arn:aws:s3:::bucket`.
    Bucket,
    /// The object: `arn:aws:s3:::bucket/key`.
    Object,
    /// Each key the request body names, `arn:aws:s3:::bucket/key`, checked by the operation's
    /// handler (the access step runs before the body is read).
    EachKey,
}

/// The permission one operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The s3s operation name (`cx.s3_op().name()`).
    pub operation: &'static str,
    /// The IAM action.
    pub action: &'static str,
    /// The action instead when the request names a version (`versionId` in the query).
    pub version_action: Option<&'static str>,
    /// What the action applies to.
    pub scope: Scope,
    /// Whether s3:GetObject (s3:GetObjectVersion with a source version) is needed as well on
    /// the object `x-amz-copy-source` names.
    pub reads_copy_source: bool,
}

impl Rule {
    /// The action a request needs: the version action when it names a version.
    pub fn action_for(&self, version_id: Option<&str>) -> &'static str {
        match (version_id, self.version_action) {
            (Some(_), Some(version_action)) => version_action,
            _ => self.action,
        }
    }
}

const fn on(operation: &'static str, action: &'static str, scope: Scope) -> Rule {
    Rule { operation, action, version_action: None, scope, reads_copy_source: false }
}

const fn versioned(operation: &'static str, action: &'static str, version_action: &'static str) -> Rule {
    Rule { operation, action, version_action: Some(version_action), scope: Scope::Object, reads_copy_source: false }
}

const fn copying(operation: &'static str) -> Rule {
    Rule { operation, action: "s3:PutObject", version_action: None, scope: Scope::Object, reads_copy_source: true }
}

use Scope::{Bucket, EachKey, Object, Service};

/// Every operation, sorted by name.
pub const RULES: &[Rule] = &[
    on("AbortMultipartUpload", "s3:AbortMultipartUpload", Object),
    on("CompleteMultipartUpload", "s3:PutObject", Object),
    copying("CopyObject"),
    on("CreateBucket", "s3:CreateBucket", Bucket),
    on("CreateBucketMetadataTableConfiguration", "s3:CreateBucketMetadataTableConfiguration", Bucket),
    on("CreateMultipartUpload", "s3:PutObject", Object),
    on("CreateSession", "s3express:CreateSession", Bucket),
    on("DeleteBucket", "s3:DeleteBucket", Bucket),
    on("DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", Bucket),
    on("DeleteBucketCors", "s3:PutBucketCORS", Bucket),
    on("DeleteBucketEncryption", "s3:PutEncryptionConfiguration", Bucket),
    on("DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", Bucket),
    on("DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration", Bucket),
    on("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", Bucket),
    on("DeleteBucketMetadataTableConfiguration", "s3:DeleteBucketMetadataTableConfiguration", Bucket),
    on("DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration", Bucket),
    on("DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", Bucket),
    on("DeleteBucketPolicy", "s3:DeleteBucketPolicy", Bucket),
    on("DeleteBucketReplication", "s3:PutReplicationConfiguration", Bucket),
    on("DeleteBucketTagging", "s3:PutBucketTagging", Bucket),
    on("DeleteBucketWebsite", "s3:DeleteBucketWebsite", Bucket),
    versioned("DeleteObject", "s3:DeleteObject", "s3:DeleteObjectVersion"),
    versioned("DeleteObjectTagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    Rule {
        operation: "DeleteObjects",
        action: "s3:DeleteObject",
        version_action: Some("s3:DeleteObjectVersion"),
        scope: EachKey,
        reads_copy_source: false,
    },
    on("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock", Bucket),
    on("GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration", Bucket),
    on("GetBucketAcl", "s3:GetBucketAcl", Bucket),
    on("GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration", Bucket),
    on("GetBucketCors", "s3:GetBucketCORS", Bucket),
    on("GetBucketEncryption", "s3:GetEncryptionConfiguration", Bucket),
    on("GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration", Bucket),
    on("GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration", Bucket),
    on("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", Bucket),
    on("GetBucketLocation", "s3:GetBucketLocation", Bucket),
    on("GetBucketLogging", "s3:GetBucketLogging", Bucket),
    on("GetBucketMetadataTableConfiguration", "s3:GetBucketMetadataTableConfiguration", Bucket),
    on("GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration", Bucket),
    on("GetBucketNotificationConfiguration", "s3:GetBucketNotification", Bucket),
    on("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", Bucket),
    on("GetBucketPolicy", "s3:GetBucketPolicy", Bucket),
    on("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", Bucket),
    on("GetBucketReplication", "s3:GetReplicationConfiguration", Bucket),
    on("GetBucketRequestPayment", "s3:GetBucketRequestPayment", Bucket),
    on("GetBucketTagging", "s3:GetBucketTagging", Bucket),
    on("GetBucketVersioning", "s3:GetBucketVersioning", Bucket),
    on("GetBucketWebsite", "s3:GetBucketWebsite", Bucket),
    versioned("GetObject", "s3:GetObject", "s3:GetObjectVersion"),
    versioned("GetObjectAcl", "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    versioned("GetObjectAttributes", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    on("GetObjectLegalHold", "s3:GetObjectLegalHold", Object),
    on("GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", Bucket),
    on("GetObjectRetention", "s3:GetObjectRetention", Object),
    versioned("GetObjectTagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    versioned("GetObjectTorrent", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
    on("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", Bucket),
    on("HeadBucket", "s3:ListBucket", Bucket),
    versioned("HeadObject", "s3:GetObject", "s3:GetObjectVersion"),
    on("ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration", Bucket),
    on("ListBucketIntelligentTieringConfigurations", "s3:GetIntelligentTieringConfiguration", Bucket),
    on("ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration", Bucket),
    on("ListBucketMetricsConfigurations", "s3:GetMetricsConfiguration", Bucket),
    on("ListBuckets", "s3:ListAllMyBuckets", Service),
    on("ListDirectoryBuckets", "s3express:ListAllMyDirectoryBuckets", Service),
    on("ListMultipartUploads", "s3:ListBucketMultipartUploads", Bucket),
    on("ListObjectVersions", "s3:ListBucketVersions", Bucket),
    on("ListObjects", "s3:ListBucket", Bucket),
    on("ListObjectsV2", "s3:ListBucket", Bucket),
    on("ListParts", "s3:ListMultipartUploadParts", Object),
    on("PostObject", "s3:PutObject", Object),
    on("PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration", Bucket),
    on("PutBucketAcl", "s3:PutBucketAcl", Bucket),
    on("PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", Bucket),
    on("PutBucketCors", "s3:PutBucketCORS", Bucket),
    on("PutBucketEncryption", "s3:PutEncryptionConfiguration", Bucket),
    on("PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", Bucket),
    on("PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration", Bucket),
    on("PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", Bucket),
    on("PutBucketLogging", "s3:PutBucketLogging", Bucket),
    on("PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration", Bucket),
    on("PutBucketNotificationConfiguration", "s3:PutBucketNotification", Bucket),
    on("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", Bucket),
    on("PutBucketPolicy", "s3:PutBucketPolicy", Bucket),
    on("PutBucketReplication", "s3:PutReplicationConfiguration", Bucket),
    on("PutBucketRequestPayment", "s3:PutBucketRequestPayment", Bucket),
    on("PutBucketTagging", "s3:PutBucketTagging", Bucket),
    on("PutBucketVersioning", "s3:PutBucketVersioning", Bucket),
    on("PutBucketWebsite", "s3:PutBucketWebsite", Bucket),
    on("PutObject", "s3:PutObject", Object),
    versioned("PutObjectAcl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    on("PutObjectLegalHold", "s3:PutObjectLegalHold", Object),
    on("PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", Bucket),
    on("PutObjectRetention", "s3:PutObjectRetention", Object),
    versioned("PutObjectTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    on("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", Bucket),
    on("RestoreObject", "s3:RestoreObject", Object),
    on("SelectObjectContent", "s3:GetObject", Object),
    on("UploadPart", "s3:PutObject", Object),
    copying("UploadPartCopy"),
    on("WriteGetObjectResponse", "s3-object-lambda:WriteGetObjectResponse", Service),
];

/// The rule of `operation`, if the table has it.
pub fn rule(operation: &str) -> Option<&'static Rule> {
    RULES.binary_search_by(|r| r.operation.cmp(operation)).ok().map(|i| &RULES[i])
}

/// One permission a request needs: an action on a resource (of a bucket, whose policy counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The IAM action.
    pub action: &'static str,
    /// The bucket the resource belongs to, if any.
    pub bucket: Option<String>,
    /// The resource ARN.
    pub resource: String,
    /// The object key and version the resource names, for an object (ACL grants are read
    /// from that version).
    pub object: Option<(String, Option<String>)>,
}

/// Why a request's permissions cannot be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unnamed {
    /// An object operation without an object in the path.
    NoObject,
    /// An `x-amz-copy-source` that is missing, malformed, or an access point.
    CopySource,
}

/// The permissions a request for `rule` needs, given its path, its `versionId` (if any) and
/// its `x-amz-copy-source` (if any). `EachKey` operations need none here: their handler
/// checks every key.
pub fn checks(
    rule: &Rule,
    path: &S3Path,
    version_id: Option<&str>,
    copy_source: Option<&str>,
) -> Result<Vec<Check>, Unnamed> {
    let action = rule.action_for(version_id);
    let (bucket, key) = match path {
        S3Path::Root => (None, None),
        S3Path::Bucket { bucket } => (Some(bucket.as_ref()), None),
        S3Path::Object { bucket, key } => (Some(bucket.as_ref()), Some(key.as_ref())),
    };
    let mut checks = Vec::with_capacity(2);
    match (rule.scope, bucket, key) {
        (Scope::EachKey, _, _) => {}
        (Scope::Service, _, _) | (Scope::Bucket, None, _) => {
            checks.push(Check { action, bucket: None, resource: arn::SERVICE.to_owned(), object: None });
        }
        (Scope::Bucket, Some(bucket), _) => {
            checks.push(Check { action, bucket: Some(bucket.to_owned()), resource: arn::bucket(bucket), object: None });
        }
        // PostObject names its key in the form, which the access step does not see: it needs
        // the action on every key of the bucket.
        (Scope::Object, Some(bucket), None) => {
            checks.push(Check {
                action,
                bucket: Some(bucket.to_owned()),
                resource: arn::object(bucket, "*"),
                object: None,
            });
        }
        (Scope::Object, Some(bucket), Some(key)) => {
            checks.push(Check {
                action,
                bucket: Some(bucket.to_owned()),
                resource: arn::object(bucket, key),
                object: Some((key.to_owned(), version_id.map(str::to_owned))),
            });
        }
        (Scope::Object, None, _) => return Err(Unnamed::NoObject),
    }
    if rule.reads_copy_source {
        checks.push(copy_source_check(copy_source)?);
    }
    Ok(checks)
}

/// Whether `action`, asked on an existing object, is judged with that object's tags as the
/// `s3:ExistingObjectTag/<key>` condition keys (AWS's list of actions that support them).
pub fn reads_existing_tags(action: &str) -> bool {
    matches!(
        action,
        "s3:GetObject"
            | "s3:GetObjectVersion"
            | "s3:GetObjectAcl"
            | "s3:GetObjectVersionAcl"
            | "s3:GetObjectTagging"
            | "s3:GetObjectVersionTagging"
            | "s3:PutObjectAcl"
            | "s3:PutObjectVersionAcl"
            | "s3:PutObjectTagging"
            | "s3:PutObjectVersionTagging"
            | "s3:DeleteObjectTagging"
            | "s3:DeleteObjectVersionTagging"
    )
}

/// The extra permission of a write that sets the new object's tags from its `x-amz-tagging`
/// header: s3:PutObjectTagging on the object, as on AWS, for PutObject, CreateMultipartUpload
/// and a CopyObject that replaces the source's tags. `object` is the operation's own check.
pub fn tagging_check(operation: &str, object: &Check, headers: &HeaderMap) -> Option<Check> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sets_tags = header("x-amz-tagging").is_some_and(|tags| !tags.is_empty());
    let applies = match operation {
        "PutObject" | "CreateMultipartUpload" => true,
        "CopyObject" => header("x-amz-tagging-directive").is_some_and(|d| d.eq_ignore_ascii_case("REPLACE")),
        _ => false,
    };
    (sets_tags && applies).then(|| Check { action: "s3:PutObjectTagging", ..object.clone() })
}

/// Canned ACLs that give nobody but the owner anything: setting them widens nothing.
const OWNER_ONLY_ACLS: &[&str] = &["private", "bucket-owner-full-control"];

/// The extra permissions of a write that sets an ACL or the object ownership of what it
/// creates, as on AWS: s3:PutObjectAcl on the object for PutObject, CopyObject,
/// CreateMultipartUpload and PostObject with grant headers or a canned ACL other than
/// `private`/`bucket-owner-full-control`; s3:PutBucketAcl and s3:PutBucketOwnershipControls on
/// the bucket for CreateBucket with such an ACL or with `x-amz-object-ownership`. `first` is
/// the operation's own check. The extra object check names no object version: an ACL grant on
/// an existing version does not let a writer set the ACL of the new one.
pub fn acl_checks(operation: &str, first: &Check, headers: &HeaderMap) -> Vec<Check> {
    let sets_acl = headers.keys().any(|name| name.as_str().starts_with("x-amz-grant-"))
        || headers
            .get("x-amz-acl")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|acl| !OWNER_ONLY_ACLS.iter().any(|owner_only| acl.trim().eq_ignore_ascii_case(owner_only)));
    let extra = |action| Check { action, object: None, ..first.clone() };
    match operation {
        "PutObject" | "CopyObject" | "CreateMultipartUpload" | "PostObject" if sets_acl => {
            vec![extra("s3:PutObjectAcl")]
        }
        "CreateBucket" => {
            let mut checks = Vec::new();
            if sets_acl {
                checks.push(extra("s3:PutBucketAcl"));
            }
            if headers.contains_key("x-amz-object-ownership") {
                checks.push(extra("s3:PutBucketOwnershipControls"));
            }
            checks
        }
        _ => Vec::new(),
    }
}

/// s3:GetObject, or s3:GetObjectVersion for a source version, on the copy source, parsed as
/// s3s parses it for the operation.
fn copy_source_check(header: Option<&str>) -> Result<Check, Unnamed> {
    let header = header.ok_or(Unnamed::CopySource)?;
    match CopySource::parse(header) {
        Ok(CopySource::Bucket { bucket, key, version_id }) => Ok(Check {
            action: if version_id.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" },
            resource: arn::object(&bucket, &key),
            bucket: Some(bucket.into()),
            object: Some((key.into(), version_id.map(Into::into))),
        }),
        _ => Err(Unnamed::CopySource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operation names s3s routes, read from its generated operation list.
    fn routed_operations() -> Vec<String> {
        let generated = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/s3s/src/ops/generated.rs"));
        let mut names = Vec::new();
        let mut lines = generated.lines();
        while let Some(line) = lines.next() {
            if line.trim_start().starts_with("fn name(&self) -> &'static str") {
                if let Some(name) = lines.next().map(|l| l.trim().trim_matches('"')) {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn every_routed_operation_has_a_rule_and_every_rule_an_operation() {
        let routed = routed_operations();
        assert!(routed.len() > 90, "parsed {} operation names from s3s", routed.len());
        for name in &routed {
            assert!(rule(name).is_some(), "no rule for {name}");
        }
        for r in RULES {
            assert!(routed.iter().any(|name| name == r.operation), "{} is not an s3s operation", r.operation);
        }
        assert!(RULES.windows(2).all(|w| w[0].operation < w[1].operation), "RULES must be sorted and unique");
    }

    fn object(bucket: &str, key: &str) -> S3Path {
        S3Path::object(bucket, key)
    }

    fn one(operation: &str, path: &S3Path, version: Option<&str>) -> (String, String) {
        let checks = checks(rule(operation).unwrap(), path, version, None).unwrap();
        assert_eq!(checks.len(), 1);
        (checks[0].action.to_owned(), checks[0].resource.clone())
    }

    #[test]
    fn actions_and_resources_as_aws_documents_them() {
        let b = S3Path::bucket("b");
        let k = object("b", "dir/k");
        let pair = |a: &str, r: &str| (a.to_owned(), r.to_owned());
        assert_eq!(one("ListObjects", &b, None), pair("s3:ListBucket", "arn:aws:s3:::b"));
        assert_eq!(one("ListObjectsV2", &b, None), pair("s3:ListBucket", "arn:aws:s3:::b"));
        assert_eq!(one("ListObjectVersions", &b, None), pair("s3:ListBucketVersions", "arn:aws:s3:::b"));
        assert_eq!(one("ListMultipartUploads", &b, None), pair("s3:ListBucketMultipartUploads", "arn:aws:s3:::b"));
        assert_eq!(one("ListParts", &k, None), pair("s3:ListMultipartUploadParts", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("GetObject", &k, None), pair("s3:GetObject", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("GetObject", &k, Some("v1")), pair("s3:GetObjectVersion", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("HeadObject", &k, None), pair("s3:GetObject", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("DeleteObject", &k, Some("null")), pair("s3:DeleteObjectVersion", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("PutBucketPolicy", &b, None), pair("s3:PutBucketPolicy", "arn:aws:s3:::b"));
        assert_eq!(one("GetBucketPolicy", &b, None), pair("s3:GetBucketPolicy", "arn:aws:s3:::b"));
        assert_eq!(one("CreateBucket", &b, None), pair("s3:CreateBucket", "arn:aws:s3:::b"));
        assert_eq!(one("ListBuckets", &S3Path::Root, None), pair("s3:ListAllMyBuckets", "arn:aws:s3:::"));
        assert_eq!(one("PutObject", &k, Some("ignored")), pair("s3:PutObject", "arn:aws:s3:::b/dir/k"));
        assert_eq!(one("PostObject", &b, None), pair("s3:PutObject", "arn:aws:s3:::b/*"));
        let each = checks(rule("DeleteObjects").unwrap(), &b, None, None).unwrap();
        assert!(each.is_empty(), "DeleteObjects is checked per key by its handler");
        assert_eq!(checks(rule("GetObject").unwrap(), &S3Path::Root, None, None), Err(Unnamed::NoObject));
    }

    #[test]
    fn writes_that_widen_an_acl_need_the_acl_permission() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, hyper::header::HeaderValue::from_static(value));
            }
            map
        };
        let k = object("b", "k");
        let put = &checks(rule("PutObject").unwrap(), &k, None, None).unwrap()[0];
        let actions = |operation: &str, first: &Check, pairs: &[(&'static str, &'static str)]| {
            acl_checks(operation, first, &headers(pairs)).iter().map(|c| c.action).collect::<Vec<_>>()
        };
        assert_eq!(actions("PutObject", put, &[("x-amz-acl", "public-read")]), ["s3:PutObjectAcl"]);
        assert_eq!(actions("PutObject", put, &[("x-amz-grant-read", "id=a")]), ["s3:PutObjectAcl"]);
        assert!(actions("PutObject", put, &[("x-amz-acl", "bucket-owner-full-control")]).is_empty());
        assert!(actions("PutObject", put, &[]).is_empty());
        assert!(actions("GetObject", put, &[("x-amz-acl", "public-read")]).is_empty());
        let b = S3Path::bucket("b");
        let create = &checks(rule("CreateBucket").unwrap(), &b, None, None).unwrap()[0];
        assert_eq!(
            actions(
                "CreateBucket",
                create,
                &[("x-amz-acl", "public-read"), ("x-amz-object-ownership", "ObjectWriter")]
            ),
            ["s3:PutBucketAcl", "s3:PutBucketOwnershipControls"]
        );
    }

    #[test]
    fn copies_need_read_on_the_source_with_its_version() {
        let rule = rule("CopyObject").unwrap();
        let dest = object("dst", "k");
        let plain = checks(rule, &dest, None, Some("/src/a%20b")).unwrap();
        assert_eq!(plain[0].action, "s3:PutObject");
        assert_eq!(plain[0].resource, "arn:aws:s3:::dst/k");
        assert_eq!(plain[1].action, "s3:GetObject");
        assert_eq!(plain[1].resource, "arn:aws:s3:::src/a b");
        assert_eq!(plain[1].bucket.as_deref(), Some("src"));
        let versioned = checks(rule, &dest, None, Some("src/a?versionId=v9")).unwrap();
        assert_eq!(versioned[1].action, "s3:GetObjectVersion");
        assert_eq!(versioned[1].resource, "arn:aws:s3:::src/a");
        assert_eq!(checks(rule, &dest, None, None), Err(Unnamed::CopySource));
        assert_eq!(checks(rule, &dest, None, Some("nokey")), Err(Unnamed::CopySource));
        let part = checks(super::rule("UploadPartCopy").unwrap(), &dest, None, Some("src/x")).unwrap();
        assert_eq!(part.len(), 2);
    }

    /// The operation table of docs/authorization.md, as the code has it.
    fn markdown_table() -> String {
        let mut table =
            String::from("| Operation | Action | With `versionId` | Resource | Also |\n|---|---|---|---|---|\n");
        for r in RULES {
            let resource = match r.scope {
                Scope::Service => "`arn:aws:s3:::`",
                Scope::Bucket => "`arn:aws:s3:::bucket`",
                Scope::Object => "`arn:aws:s3:::bucket/key`",
                Scope::EachKey => "`arn:aws:s3:::bucket/key` for each key of the body (checked by the handler)",
            };
            let version = r.version_action.map(|a| format!("`{a}`")).unwrap_or_default();
            let also = if r.reads_copy_source {
                "`s3:GetObject` (`s3:GetObjectVersion` with a source version) on the `x-amz-copy-source` object"
            } else {
                ""
            };
            table.push_str(&format!("| {} | `{}` | {version} | {resource} | {also} |\n", r.operation, r.action));
        }
        table
    }

    const BEGIN: &str = "<!-- operation-table:begin -->\n";
    const END: &str = "<!-- operation-table:end -->";

    /// docs/authorization.md shows the table of the code. `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_documented_table_is_the_code_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/authorization.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
        let end = doc.find(END).expect("end marker");
        let expected = markdown_table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{}{expected}{}", &doc[..start], &doc[end..])).unwrap();
            return;
        }
        assert_eq!(&doc[start..end], expected, "docs/authorization.md is out of date: run with UPDATE_DOCS=1");
    }
}
