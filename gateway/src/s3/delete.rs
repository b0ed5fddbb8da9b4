//! DeleteObject and DeleteObjects.

use futures::{stream, StreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{versioning, Gateway};
use crate::authz::{access_denied, Authorization};
use crate::error::OrS3;

/// Most keys a DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

impl Gateway {
    pub(super) async fn delete_object_impl(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let which = versioning::requested(input.version_id.as_deref())?;
        let deleted = self.store.delete_object(&input.bucket, &input.key, which).await.or_s3()?;
        let output = DeleteObjectOutput {
            delete_marker: deleted.delete_marker.then_some(true),
            version_id: deleted.version_id.map(|v| v.to_string()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn delete_objects_impl(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let authorization = req.extensions.get::<Authorization>().cloned();
        let input = req.input;
        let objects = input.delete.objects;
        if objects.len() > MAX_DELETE_KEYS {
            return Err(s3_error!(MalformedXML, "The request may not name more than {MAX_DELETE_KEYS} keys."));
        }
        self.store.bucket(&input.bucket).await.or_s3()?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = &input.bucket;
        let authorization = authorization.as_ref();
        let results = stream::iter(objects)
            .map(|object| async move {
                let version_id = object.version_id.as_deref();
                // Every key is authorized on its own; without the access step's
                // authorization, none is.
                let allowed =
                    authorization.is_some_and(|a| a.allows_key("DeleteObjects", bucket, &object.key, version_id));
                let result = match versioning::requested(version_id) {
                    _ if !allowed => Err(access_denied()),
                    Ok(which) => self.store.delete_object(bucket, &object.key, which).await.or_s3(),
                    Err(e) => Err(e),
                };
                (object, result)
            })
            .buffered(16)
            .collect::<Vec<_>>()
            .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (object, result) in results {
            match result {
                Ok(_) if quiet => {}
                Ok(outcome) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    delete_marker: outcome.delete_marker.then_some(true),
                    delete_marker_version_id: outcome
                        .version_id
                        .filter(|_| outcome.delete_marker)
                        .map(|v| v.to_string()),
                }),
                Err(e) => errors.push(s3s::dto::Error {
                    key: Some(object.key),
                    version_id: object.version_id,
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                }),
            }
        }
        let output = DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
