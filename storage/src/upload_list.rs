//! ListMultipartUploads one page at a time: every drive of a set pages through its upload
//! records from the marker, an upload is listed when enough drives hold it, and a round never
//! decides past the point that every drive which filled its page has covered. Memory per page
//! is bounded by the page size, whatever the number of uploads in the bucket.

use futures::future::join_all;
use uuid::Uuid;

use crate::error::Result;
use crate::meta::UploadRecord;
use crate::set::ErasureSet;

/// Where a listing of uploads resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadMarker {
    /// From the first upload.
    Start,
    /// After every upload of this key (a key marker alone, or a common prefix).
    AfterKey(String),
    /// After this upload of this key; uploads of later keys follow. An id that is not an
    /// upload id is compared as a string, as S3 compares upload ids.
    AfterUpload(String, String),
}

/// One listed entry, in key then upload-id order.
// Listings are mostly made of the large variant: boxing it would add an allocation per entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum UploadEntry {
    Upload(UploadRecord),
    /// Every upload whose key starts with this common prefix.
    Prefix(String),
}

impl UploadEntry {
    fn position(&self) -> (&str, Uuid) {
        match self {
            Self::Upload(upload) => (&upload.key, upload.upload_id),
            Self::Prefix(prefix) => (prefix, Uuid::nil()),
        }
    }
}

/// A page of uploads and common prefixes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    /// True when more entries follow the last one.
    pub truncated: bool,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct UploadQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub marker: UploadMarker,
    pub max: usize,
}

impl UploadQuery {
    /// The first `max` uploads of a bucket.
    pub fn first(max: usize) -> Self {
        Self { prefix: String::new(), delimiter: None, marker: UploadMarker::Start, max }
    }

    /// The common prefix `key` rolls up into, if the query has a delimiter.
    fn common_prefix<'a>(&self, key: &'a str) -> Option<&'a str> {
        let delimiter = self.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = key.strip_prefix(self.prefix.as_str())?;
        rest.find(delimiter).map(|at| &key[..self.prefix.len() + at + delimiter.len()])
    }
}

/// Records each drive returns per round.
const UPLOADS_PER_ROUND: usize = 1000;

/// Lists one page of uploads across all sets.
pub async fn list_uploads(
    sets: &[std::sync::Arc<ErasureSet>],
    bucket: &str,
    query: &UploadQuery,
) -> Result<UploadPage> {
    let pages = join_all(sets.iter().map(|set| list_set(set, bucket, query))).await;
    let mut truncated = false;
    let mut entries = Vec::new();
    for page in pages {
        let page = page?;
        truncated |= page.truncated;
        entries.extend(page.entries);
    }
    entries.sort_by(|a, b| a.position().cmp(&b.position()));
    entries.dedup_by(|a, b| matches!((a, b), (UploadEntry::Prefix(x), UploadEntry::Prefix(y)) if x == y));
    if entries.len() > query.max {
        entries.truncate(query.max);
        truncated = true;
    }
    Ok(UploadPage { entries, truncated })
}

/// Lists up to `query.max` entries of one set.
async fn list_set(set: &ErasureSet, bucket: &str, query: &UploadQuery) -> Result<UploadPage> {
    // A key marker that is itself a common prefix stands for every key under it.
    let mut last_prefix = match &query.marker {
        UploadMarker::AfterKey(key) => query.common_prefix(key).filter(|p| p == key).map(str::to_owned),
        _ => None,
    };
    let (mut cursor, skip_id) = match &query.marker {
        UploadMarker::Start => (None, None),
        UploadMarker::AfterKey(key) => (Some(last_prefix.as_deref().map_or_else(|| past(key), past_prefix)), None),
        UploadMarker::AfterUpload(key, id) => match Uuid::try_parse(id) {
            Ok(uuid) => (Some((key.clone(), uuid)), None),
            // The nil id is never an upload's, so this starts at the key's first upload.
            Err(_) => (Some((key.clone(), Uuid::nil())), Some((key.clone(), id.clone()))),
        },
    };
    let mut entries = Vec::new();
    loop {
        let round = UPLOADS_PER_ROUND.min(query.max + 1);
        let results = set.on_all(|drive| drive.list_uploads(bucket, &query.prefix, cursor.clone(), round)).await;
        let boundary = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|list| list.len() >= round)
            .filter_map(|list| list.last().map(|u| (u.key.clone(), u.upload_id)))
            .min();
        let within = |u: &UploadRecord| boundary.as_ref().is_none_or(|(k, id)| (&u.key, u.upload_id) <= (k, *id));
        let results =
            results.into_iter().map(|r| r.map(|list| list.into_iter().filter(|u| within(u)).collect())).collect();
        let mut agreed: Vec<UploadRecord> = set
            .quorum
            .agreed_items(set.list_answers(results), |u: &UploadRecord| (u.key.clone(), u.upload_id), "list uploads")?
            .into_iter()
            .map(|(upload, _)| upload)
            .collect();
        agreed.sort_by(|a, b| (&a.key, a.upload_id).cmp(&(&b.key, b.upload_id)));
        for upload in agreed {
            if skip_id.as_ref().is_some_and(|(key, id)| upload.key == *key && upload.upload_id.to_string() <= *id) {
                continue;
            }
            match query.common_prefix(&upload.key) {
                Some(prefix) if last_prefix.as_deref() == Some(prefix) => {}
                Some(prefix) => {
                    last_prefix = Some(prefix.to_owned());
                    entries.push(UploadEntry::Prefix(prefix.to_owned()));
                }
                None => entries.push(UploadEntry::Upload(upload)),
            }
            if entries.len() > query.max {
                entries.truncate(query.max);
                return Ok(UploadPage { entries, truncated: true });
            }
        }
        cursor = match (boundary, &last_prefix) {
            (None, _) => return Ok(UploadPage { entries, truncated: false }),
            // Seek past a rolled-up prefix rather than page through every upload under it.
            (Some((key, id)), Some(prefix)) if key.starts_with(prefix.as_str()) => {
                Some(past_prefix(prefix).max((key, id)))
            }
            (Some(position), _) => Some(position),
        };
    }
}

/// The position after every upload of `key`.
fn past(key: &str) -> (String, Uuid) {
    (key.to_owned(), Uuid::max())
}

/// A position after the uploads of (nearly) every key under `prefix`: keys that continue past
/// the greatest character are met again and skipped as part of the prefix.
fn past_prefix(prefix: &str) -> (String, Uuid) {
    (format!("{prefix}{}", char::MAX), Uuid::max())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(prefix: &str, delimiter: Option<&str>) -> UploadQuery {
        UploadQuery {
            prefix: prefix.into(),
            delimiter: delimiter.map(str::to_owned),
            marker: UploadMarker::Start,
            max: 10,
        }
    }

    #[test]
    fn common_prefixes_follow_the_query_prefix() {
        assert_eq!(query("a/", Some("/")).common_prefix("a/b/c"), Some("a/b/"));
        assert_eq!(query("a/", Some("/")).common_prefix("a/b"), None);
        assert_eq!(query("", Some("")).common_prefix("a/b"), None);
        assert_eq!(query("", None).common_prefix("a/b"), None);
    }
}
