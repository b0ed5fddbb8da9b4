//! S3 ACLs and object ownership through the real server, with aws-sdk-s3 and unsigned curl:
//! a bucket with the default ownership (BucketOwnerEnforced) refuses every ACL beyond the
//! owner's; with ObjectWriter, BucketOwnerPreferred or no ownership controls, canned ACLs,
//! grant headers and AccessControlPolicy bodies are stored, reported and obeyed by the access
//! step (AllUsers for unsigned requests, AuthenticatedUsers for signed ones, canonical ids for
//! IAM users), an explicit Deny in a bucket policy still wins, and switching a bucket with a
//! public ACL to BucketOwnerEnforced is refused.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Grant,
    Grantee, ObjectCannedAcl, ObjectOwnership, Owner, OwnershipControls, OwnershipControlsRule, Permission, Type,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};

#[path = "../admin.rs"]
mod admin;

use admin::*;
use sovereign_e2e::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// The canonical id the server gives the IAM user `name` (docs/authorization.md).
fn canonical_id(name: &str) -> String {
    hex::encode(Sha256::digest(format!("arn:aws:iam:::user/{name}").as_bytes()))
}

/// The status of an unsigned GET of `path` (below the server's URL).
fn unsigned_get(server: &Server, path: &str) -> u16 {
    curl(&[&format!("{}/{path}", server.url())]).status
}

/// Creates `bucket` with the object ownership `ownership`.
async fn bucket_with(client: &Client, bucket: &str, ownership: ObjectOwnership) {
    client.create_bucket().bucket(bucket).object_ownership(ownership).send().await.expect("create bucket");
}

async fn put_with_acl(client: &Client, bucket: &str, key: &str, acl: ObjectCannedAcl) {
    let body = ByteStream::from_static(b"data");
    client.put_object().bucket(bucket).key(key).acl(acl).body(body).send().await.expect("put with acl");
}

async fn set_ownership(client: &Client, bucket: &str, ownership: ObjectOwnership) -> Result<(), String> {
    let rule = OwnershipControlsRule::builder().object_ownership(ownership).build().unwrap();
    let controls = OwnershipControls::builder().rules(rule).build().unwrap();
    client
        .put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or("no code").to_owned())
}

#[tokio::test]
async fn the_default_ownership_refuses_acls_beyond_the_owners() {
    let (server, root) = server_with_bucket(1).await;
    let controls = root.get_bucket_ownership_controls().bucket(BUCKET).send().await.unwrap();
    let rules = controls.ownership_controls().unwrap().rules();
    assert_eq!(rules[0].object_ownership(), &ObjectOwnership::BucketOwnerEnforced);
    let public =
        root.put_object().bucket(BUCKET).key("k").acl(ObjectCannedAcl::PublicRead).body(ByteStream::from_static(b"x"));
    assert_s3_error(public.send().await, 400, &["AccessControlListNotSupported"]);
    let granted = root.put_object().bucket(BUCKET).key("k").grant_read(format!("uri=\"{ALL_USERS}\""));
    assert_s3_error(granted.send().await, 400, &["AccessControlListNotSupported"]);
    let bucket_acl = root.put_bucket_acl().bucket(BUCKET).acl(BucketCannedAcl::PublicRead).send().await;
    assert_s3_error(bucket_acl, 400, &["AccessControlListNotSupported"]);
    put_with_acl(&root, BUCKET, "k", ObjectCannedAcl::BucketOwnerFullControl).await;
    root.put_object_acl().bucket(BUCKET).key("k").acl(ObjectCannedAcl::Private).send().await.unwrap();
    let create = root.create_bucket().bucket("public-default").acl(BucketCannedAcl::PublicRead).send().await;
    assert_s3_error(create, 400, &["InvalidBucketAclWithObjectOwnership"]);
    assert_eq!(unsigned_get(&server, &format!("{BUCKET}/k")), 403);
    let acl = root.get_object_acl().bucket(BUCKET).key("k").send().await.unwrap();
    assert_eq!(acl.grants().len(), 1, "the owner's FULL_CONTROL alone: {acl:?}");
    assert_eq!(acl.grants()[0].permission(), Some(&Permission::FullControl));
}

#[tokio::test]
async fn canned_acls_decide_who_reads_an_object() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "writer", ObjectOwnership::ObjectWriter).await;
    put_with_acl(&root, "writer", "public", ObjectCannedAcl::PublicRead).await;
    put_with_acl(&root, "writer", "private", ObjectCannedAcl::Private).await;
    put_with_acl(&root, "writer", "signed", ObjectCannedAcl::AuthenticatedRead).await;
    let reply = curl(&[&format!("{}/writer/public", server.url())]);
    assert_eq!((reply.status, reply.text()), (200, "data".to_owned()), "an unsigned curl reads a public-read object");
    assert_eq!(unsigned_get(&server, "writer/private"), 403);
    assert_eq!(unsigned_get(&server, "writer/signed"), 403, "authenticated-read is not for unsigned requests");
    assert_eq!(unsigned_get(&server, "writer"), 403, "the bucket's own ACL is private");
    let stranger = client_for(&server, &create_user(&server, "stranger", &[]));
    stranger.get_object().bucket("writer").key("signed").send().await.expect("authenticated-read for any signer");
    assert_s3_error(stranger.get_object().bucket("writer").key("private").send().await, 403, &["AccessDenied"]);
    assert_s3_error(stranger.get_object_acl().bucket("writer").key("public").send().await, 403, &["AccessDenied"]);
}

#[tokio::test]
async fn a_grant_by_canonical_id_allows_until_revoked_and_round_trips() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "shared", ObjectOwnership::ObjectWriter).await;
    let friend = client_for(&server, &create_user(&server, "friend", &[]));
    let id = canonical_id("friend");
    let body = ByteStream::from_static(b"data");
    let put = root.put_object().bucket("shared").key("k").grant_read(format!("id=\"{id}\"")).body(body);
    put.send().await.expect("put with a grant");
    friend.get_object().bucket("shared").key("k").send().await.expect("the grantee reads");
    assert_s3_error(friend.get_object_acl().bucket("shared").key("k").send().await, 403, &["AccessDenied"]);
    let acl = root.get_object_acl().bucket("shared").key("k").send().await.unwrap();
    assert_eq!(acl.owner().and_then(Owner::id), Some(ROOT_USER));
    let grant = &acl.grants()[0];
    assert_eq!(grant.grantee().map(Grantee::r#type), Some(&Type::CanonicalUser));
    assert_eq!(grant.grantee().and_then(Grantee::id), Some(id.as_str()));
    assert_eq!(grant.permission(), Some(&Permission::Read));
    root.put_object_acl().bucket("shared").key("k").acl(ObjectCannedAcl::Private).send().await.unwrap();
    assert_s3_error(friend.get_object().bucket("shared").key("k").send().await, 403, &["AccessDenied"]);
    // An AccessControlPolicy body: READ_ACP to the friend, READ to everyone.
    let policy = AccessControlPolicy::builder()
        .owner(Owner::builder().id(ROOT_USER).build())
        .grants(
            Grant::builder()
                .grantee(Grantee::builder().r#type(Type::CanonicalUser).id(&id).build().unwrap())
                .permission(Permission::ReadAcp)
                .build(),
        )
        .grants(
            Grant::builder()
                .grantee(Grantee::builder().r#type(Type::Group).uri(ALL_USERS).build().unwrap())
                .permission(Permission::Read)
                .build(),
        )
        .build();
    root.put_object_acl().bucket("shared").key("k").access_control_policy(policy).send().await.unwrap();
    let acl = friend.get_object_acl().bucket("shared").key("k").send().await.expect("READ_ACP lets the friend read it");
    assert_eq!(acl.grants().len(), 2);
    assert_eq!(acl.grants()[1].grantee().and_then(Grantee::uri), Some(ALL_USERS));
    assert_eq!(unsigned_get(&server, "shared/k"), 200);
    let both = root.put_object_acl().bucket("shared").key("k").acl(ObjectCannedAcl::Private).grant_read("id=\"x\"");
    assert_s3_error(both.send().await, 400, &["InvalidRequest"]);
    let email = root.put_object_acl().bucket("shared").key("k").grant_read("emailAddress=\"a@example.com\"");
    assert_s3_error(email.send().await, 400, &["UnresolvableGrantByEmailAddress"]);
}

#[tokio::test]
async fn a_bucket_read_grant_lets_everyone_list_until_ownership_is_enforced() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "listed", ObjectOwnership::BucketOwnerPreferred).await;
    put_with_acl(&root, "listed", "public", ObjectCannedAcl::PublicRead).await;
    root.put_bucket_acl().bucket("listed").acl(BucketCannedAcl::PublicRead).send().await.unwrap();
    let listing = curl(&[&format!("{}/listed?list-type=2", server.url())]);
    assert_eq!(listing.status, 200);
    assert!(listing.text().contains("<Key>public</Key>"), "{}", listing.text());
    let acl = root.get_bucket_acl().bucket("listed").send().await.unwrap();
    let everyone = acl.grants().iter().find(|g| g.grantee().and_then(Grantee::uri) == Some(ALL_USERS));
    assert_eq!(everyone.and_then(Grant::permission), Some(&Permission::Read), "{acl:?}");
    assert_eq!(
        set_ownership(&root, "listed", ObjectOwnership::BucketOwnerEnforced).await,
        Err("InvalidBucketAclWithObjectOwnership".to_owned())
    );
    root.put_bucket_acl().bucket("listed").acl(BucketCannedAcl::Private).send().await.unwrap();
    set_ownership(&root, "listed", ObjectOwnership::BucketOwnerEnforced).await.unwrap();
    assert_eq!(unsigned_get(&server, "listed?list-type=2"), 403);
    assert_eq!(unsigned_get(&server, "listed/public"), 403, "with ACLs disabled, a stored public-read grants nothing");
    root.delete_bucket_ownership_controls().bucket("listed").send().await.unwrap();
    assert_eq!(unsigned_get(&server, "listed/public"), 200, "no ownership controls: ACLs apply again");
}

#[tokio::test]
async fn an_explicit_deny_in_the_bucket_policy_beats_a_public_read_acl() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "guarded", ObjectOwnership::ObjectWriter).await;
    put_with_acl(&root, "guarded", "secret", ObjectCannedAcl::PublicRead).await;
    put_with_acl(&root, "guarded", "open", ObjectCannedAcl::PublicRead).await;
    let deny = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::guarded/secret"}}"#;
    root.put_bucket_policy().bucket("guarded").policy(deny).send().await.unwrap();
    assert_eq!(unsigned_get(&server, "guarded/secret"), 403);
    assert_eq!(unsigned_get(&server, "guarded/open"), 200);
}

#[tokio::test]
async fn each_version_has_its_own_acl() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "versions", ObjectOwnership::ObjectWriter).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    root.put_bucket_versioning().bucket("versions").versioning_configuration(enabled).send().await.unwrap();
    let body = ByteStream::from_static(b"v1");
    let first = root.put_object().bucket("versions").key("k").acl(ObjectCannedAcl::PublicRead).body(body);
    let v1 = first.send().await.unwrap().version_id().unwrap().to_owned();
    put_bytes(&root, "versions", "k", b"v2").await;
    assert_eq!(unsigned_get(&server, &format!("versions/k?versionId={v1}")), 200);
    assert_eq!(unsigned_get(&server, "versions/k"), 403, "the current version is private");
    let acl = root.get_object_acl().bucket("versions").key("k").version_id(&v1).send().await.unwrap();
    assert_eq!(acl.grants().len(), 2);
    let revoke = root.put_object_acl().bucket("versions").key("k").version_id(&v1).acl(ObjectCannedAcl::Private);
    revoke.send().await.unwrap();
    assert_eq!(unsigned_get(&server, &format!("versions/k?versionId={v1}")), 403);
}

#[tokio::test]
async fn copies_and_multipart_uploads_get_the_acl_they_ask_for() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "written", ObjectOwnership::ObjectWriter).await;
    put_bytes(&root, "written", "source", b"data").await;
    let copy = root.copy_object().bucket("written").key("copy").copy_source("written/source");
    copy.acl(ObjectCannedAcl::PublicRead).send().await.unwrap();
    assert_eq!(unsigned_get(&server, "written/copy"), 200);
    assert_eq!(unsigned_get(&server, "written/source"), 403);
    let create = root.create_multipart_upload().bucket("written").key("big").acl(ObjectCannedAcl::PublicRead);
    let upload_id = create.send().await.unwrap().upload_id().unwrap().to_owned();
    let part = root.upload_part().bucket("written").key("big").upload_id(&upload_id).part_number(1);
    let etag = part.body(ByteStream::from_static(b"part")).send().await.unwrap().e_tag().unwrap().to_owned();
    assert_eq!(unsigned_get(&server, "written/big"), 403, "not before completion");
    let parts =
        CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(etag).build()).build();
    let complete = root.complete_multipart_upload().bucket("written").key("big").upload_id(&upload_id);
    complete.multipart_upload(parts).send().await.unwrap();
    assert_eq!(unsigned_get(&server, "written/big"), 200);
}

#[tokio::test]
async fn the_object_owner_follows_the_bucket_ownership() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "preferred", ObjectOwnership::BucketOwnerPreferred).await;
    bucket_with(&root, "writers", ObjectOwnership::ObjectWriter).await;
    let writer = client_for(&server, &create_user(&server, "writer", &["readwrite"]));
    let owner_of = |bucket: &'static str, key: &'static str| {
        let root = root.clone();
        async move {
            let acl = root.get_object_acl().bucket(bucket).key(key).send().await.unwrap();
            acl.owner().and_then(Owner::id).map(str::to_owned)
        }
    };
    put_with_acl(&writer, "preferred", "given", ObjectCannedAcl::BucketOwnerFullControl).await;
    put_bytes(&writer, "preferred", "kept", b"data").await;
    put_with_acl(&writer, "writers", "given", ObjectCannedAcl::BucketOwnerFullControl).await;
    assert_eq!(owner_of("preferred", "given").await.as_deref(), Some(ROOT_USER));
    assert_eq!(owner_of("preferred", "kept").await, Some(canonical_id("writer")));
    assert_eq!(owner_of("writers", "given").await, Some(canonical_id("writer")));
    let acl = root.get_object_acl().bucket("writers").key("given").send().await.unwrap();
    assert_eq!(acl.grants().len(), 2, "the writer's and the bucket owner's FULL_CONTROL: {acl:?}");
}

/// A writer owns what it writes in an ObjectWriter bucket, with FULL_CONTROL in the object's
/// ACL; that grant gives it nothing its policies do not: a `writeonly` user can neither publish
/// its object (PutObjectAcl) nor read it back.
#[tokio::test]
async fn a_writers_own_grant_does_not_widen_its_policies() {
    let server = Server::start(1);
    let root = server.client();
    bucket_with(&root, "drop", ObjectOwnership::ObjectWriter).await;
    let writer = client_for(&server, &create_user(&server, "dropper", &["writeonly"]));
    put_bytes(&writer, "drop", "k", b"secret").await;
    let publish = writer.put_object_acl().bucket("drop").key("k").acl(ObjectCannedAcl::PublicRead).send().await;
    assert_s3_error(publish, 403, &["AccessDenied"]);
    assert_eq!(unsigned_get(&server, "drop/k"), 403);
    assert_s3_error(writer.get_object().bucket("drop").key("k").send().await, 403, &["AccessDenied"]);
    // A grant from the owner's side to another user still counts.
    let reader = create_user(&server, "reader", &[]);
    let reader_client = client_for(&server, &reader);
    let grant = format!("id=\"{}\"", canonical_id("reader"));
    root.put_object_acl().bucket("drop").key("k").grant_read(grant).send().await.expect("grant read");
    assert_eq!(get_bytes(&reader_client, "drop", "k").await, b"secret");
}
