//! ListObjects (v1), ListObjectsV2 and ListObjectVersions.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::drive::ListEntry;
use storage::list::ListPage;
use storage::versions::{ListedVersion, VersionId};

use super::convert;
use super::{versioning, Gateway};
use crate::error::OrS3;
use crate::parse;

/// Keys per page when the client does not say, and the most it may ask for.
const DEFAULT_MAX_KEYS: i32 = 1000;

/// Characters S3 leaves unescaped with `encoding-type=url`.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Applies `encoding-type=url` to a name when asked.
pub(super) struct Encoder(bool);

impl Encoder {
    pub(super) fn new(encoding: Option<&EncodingType>) -> S3Result<Self> {
        match encoding.map(EncodingType::as_str) {
            None => Ok(Self(false)),
            Some(e) if e.eq_ignore_ascii_case(EncodingType::URL) => Ok(Self(true)),
            Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
        }
    }

    pub(super) fn apply(&self, name: String) -> String {
        if self.0 {
            utf8_percent_encode(&name, KEY_ESCAPES).to_string()
        } else {
            name
        }
    }
}

fn max_keys(requested: Option<i32>) -> S3Result<i32> {
    match requested {
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys cannot be negative")),
        Some(n) => Ok(n.min(DEFAULT_MAX_KEYS)),
        None => Ok(DEFAULT_MAX_KEYS),
    }
}

/// Objects and common prefixes of a page, in the response's shapes; objects carry `owner` when
/// the listing reports owners.
fn split(page: &ListPage, encoder: &Encoder, owner: Option<&Owner>) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for entry in &page.entries {
        match entry {
            ListEntry::Object { key, versions } => {
                let Some(record) = versions.versions.first() else { continue };
                objects.push(Object {
                    key: Some(encoder.apply(key.clone())),
                    e_tag: Some(convert::etag(record)),
                    last_modified: Some(convert::last_modified(record)),
                    size: Some(crate::sse::object_size(record) as i64),
                    storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                    checksum_algorithm: record
                        .checksum
                        .as_ref()
                        .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.clone())]),
                    checksum_type: record.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
                    owner: owner.cloned(),
                    ..Default::default()
                });
            }
            ListEntry::Prefix(prefix) => prefixes.push(CommonPrefix { prefix: Some(encoder.apply(prefix.clone())) }),
        }
    }
    (objects, prefixes)
}

impl Gateway {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: i32,
    ) -> S3Result<ListPage> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        self.store
            .list_objects(bucket, prefix.unwrap_or_default(), delimiter, after.filter(|a| !a.is_empty()), max as usize)
            .await
            .or_s3()
    }

    pub(super) async fn list_objects_v2_impl(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        let token_key = match &input.continuation_token {
            Some(token) => Some(parse::decode_token(token)?),
            None => None,
        };
        let after = token_key.as_deref().or(input.start_after.as_deref());
        let page =
            self.list_page(&input.bucket, input.prefix.as_deref(), input.delimiter.as_deref(), after, max).await?;
        let next = page.truncated.then(|| page.entries.last().map(|e| parse::encode_token(e.name()))).flatten();
        let owner = input.fetch_owner.unwrap_or(false).then(|| self.owner());
        let (contents, prefixes) = split(&page, &encoder, owner.as_ref());
        let output = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encoder.apply(input.prefix.unwrap_or_default())),
            delimiter: input.delimiter.filter(|d| !d.is_empty()).map(|d| encoder.apply(d)),
            start_after: input.start_after.map(|s| encoder.apply(s)),
            continuation_token: input.continuation_token,
            max_keys: Some(max),
            key_count: Some(page.entries.len() as i32),
            is_truncated: Some(page.truncated),
            next_continuation_token: next,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn list_objects_impl(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        let page = self
            .list_page(&input.bucket, input.prefix.as_deref(), input.delimiter.as_deref(), input.marker.as_deref(), max)
            .await?;
        // S3 sends NextMarker only with a delimiter; without one, the last key is the marker.
        let delimited = input.delimiter.as_deref().is_some_and(|d| !d.is_empty());
        let next_marker = (page.truncated && delimited)
            .then(|| page.entries.last().map(|e| encoder.apply(e.name().to_owned())))
            .flatten();
        let (contents, prefixes) = split(&page, &encoder, Some(&self.owner()));
        let output = ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encoder.apply(input.prefix.unwrap_or_default())),
            delimiter: input.delimiter.filter(|d| !d.is_empty()).map(|d| encoder.apply(d)),
            marker: Some(encoder.apply(input.marker.unwrap_or_default())),
            max_keys: Some(max),
            is_truncated: Some(page.truncated),
            next_marker,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    pub(super) async fn list_object_versions_impl(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        let key_marker = input.key_marker.as_deref().filter(|m| !m.is_empty());
        let version_marker = input.version_id_marker.as_deref().filter(|m| !m.is_empty());
        if version_marker.is_some() && key_marker.is_none() {
            return Err(s3_error!(InvalidArgument, "A version-id marker cannot be specified without a key marker."));
        }
        let version_marker = versioning::requested(version_marker)?;
        let page = self
            .store
            .list_object_versions(
                &input.bucket,
                input.prefix.as_deref().unwrap_or_default(),
                input.delimiter.as_deref().filter(|d| !d.is_empty()),
                key_marker,
                version_marker,
                max as usize,
            )
            .await
            .or_s3()?;
        let owner = self.owner();
        let (mut versions, mut markers, mut prefixes) = (Vec::new(), Vec::new(), Vec::new());
        for entry in &page.entries {
            match entry {
                ListedVersion::Version { key, record, latest } if record.delete_marker => {
                    markers.push(DeleteMarkerEntry {
                        key: Some(encoder.apply(key.clone())),
                        version_id: Some(VersionId::of(record).to_string()),
                        is_latest: Some(*latest),
                        last_modified: Some(convert::last_modified(record)),
                        owner: Some(owner.clone()),
                    });
                }
                ListedVersion::Version { key, record, latest } => versions.push(ObjectVersion {
                    key: Some(encoder.apply(key.clone())),
                    version_id: Some(VersionId::of(record).to_string()),
                    is_latest: Some(*latest),
                    e_tag: Some(convert::etag(record)),
                    last_modified: Some(convert::last_modified(record)),
                    size: Some(crate::sse::object_size(record) as i64),
                    storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                    checksum_algorithm: record
                        .checksum
                        .as_ref()
                        .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.clone())]),
                    checksum_type: record.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
                    owner: Some(owner.clone()),
                    restore_status: None,
                }),
                ListedVersion::Prefix(prefix) => {
                    prefixes.push(CommonPrefix { prefix: Some(encoder.apply(prefix.clone())) });
                }
            }
        }
        let (next_key_marker, next_version_id_marker) = match page.entries.last().filter(|_| page.truncated) {
            Some(ListedVersion::Version { key, record, .. }) => {
                (Some(encoder.apply(key.clone())), Some(VersionId::of(record).to_string()))
            }
            Some(ListedVersion::Prefix(prefix)) => (Some(encoder.apply(prefix.clone())), None),
            None => (None, None),
        };
        let output = ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encoder.apply(input.prefix.unwrap_or_default())),
            delimiter: input.delimiter.filter(|d| !d.is_empty()).map(|d| encoder.apply(d)),
            key_marker: Some(encoder.apply(input.key_marker.unwrap_or_default())),
            version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
            max_keys: Some(max),
            is_truncated: Some(page.truncated),
            next_key_marker,
            next_version_id_marker,
            versions: (!versions.is_empty()).then_some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes() {
        let encoder = Encoder(true);
        assert_eq!(encoder.apply("a b/c+d&é".into()), "a%20b/c%2Bd%26%C3%A9");
        assert_eq!(Encoder(false).apply("a b".into()), "a b");
        assert_eq!(max_keys(Some(5000)).unwrap(), 1000);
        assert!(max_keys(Some(-1)).is_err());
    }
}
