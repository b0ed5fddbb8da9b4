//! The XML request bodies the gateway accepts (CompleteMultipartUpload, DeleteObjects,
//! PutObjectTagging, CreateBucket), parsed the way s3s 0.14 parses them for us: no panic, and a
//! parsed body written back with s3s's serializer parses to the same value. The parsed values
//! then go through what the gateway does with them first.
//!
//! Known s3s 0.14.1 limitation, found by this target (docs/fuzzing.md): an `ETag` read from XML
//! is not always written back as itself. Unquoted values with any character are accepted
//! (`<ETag>\x11</ETag>`), but written quoted, where the same character is refused; values are
//! written without XML escaping (`<ETag>a&amp;b</ETag>` comes out as `"a&b"`, ill-formed); and a
//! weak ETag (`W/"x"`) is written as the strong `"x"`. Bodies holding such an ETag are still
//! parsed (no panic allowed) but skip the round trip, so that the run can look past them.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use s3s::dto::{CompletedMultipartUpload, CreateBucketConfiguration, Delete, ETag, Tagging};
use s3s::xml::{DeResult, Deserialize, Deserializer, Serialize, Serializer};

#[path = "../../gateway/src/parse.rs"]
#[allow(dead_code)]
mod parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(upload) = parse_body::<CompletedMultipartUpload>(data) {
        let parts = upload.parts.as_deref().unwrap_or_default();
        if parts.iter().filter_map(|p| p.e_tag.as_ref()).all(written_back_as_itself) {
            assert_round_trip(&upload);
        }
        for part in parts {
            let _ = part.e_tag.as_ref().map(|e| e.value().len());
        }
    }
    if let Ok(delete) = parse_body::<Delete>(data) {
        if delete.objects.iter().filter_map(|o| o.e_tag.as_ref()).all(written_back_as_itself) {
            assert_round_trip(&delete);
        }
        for object in &delete.objects {
            let _ = parse::check_key(&object.key);
        }
    }
    if let Ok(tagging) = parse_body::<Tagging>(data) {
        assert_round_trip(&tagging);
        let tags: Vec<(String, String)> =
            tagging.tag_set.into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect();
        let _ = parse::check_tags(&tags);
    }
    if let Ok(configuration) = parse_body::<CreateBucketConfiguration>(data) {
        assert_round_trip(&configuration);
    }
});

/// Whether s3s writes `etag` as text that reads back as the same `ETag` (see the module doc).
fn written_back_as_itself(etag: &ETag) -> bool {
    let ETag::Strong(value) = etag else { return false };
    !value.contains(['<', '&']) && ETag::parse_http_header(format!("\"{value}\"").as_bytes()).is_ok_and(|e| e == *etag)
}

/// What s3s does with a request body (`http::de::deserialize_xml`, not public): the root element,
/// then nothing but whitespace, comments and the like up to the end.
fn parse_body<T: for<'xml> Deserialize<'xml>>(xml: &[u8]) -> DeResult<T> {
    let mut d = Deserializer::new(xml);
    let value = T::deserialize(&mut d)?;
    d.expect_eof()?;
    Ok(value)
}

/// Serializes `value` with s3s and checks that parsing the result gives `value` again.
fn assert_round_trip<T>(value: &T)
where
    T: for<'xml> Deserialize<'xml> + Serialize + PartialEq + Debug,
{
    let mut written = Vec::new();
    value.serialize(&mut Serializer::new(&mut written)).expect("a parsed body serializes");
    match parse_body::<T>(&written) {
        Ok(again) => assert_eq!(&again, value, "lossy round trip through {:?}", String::from_utf8_lossy(&written)),
        Err(e) => panic!("s3s cannot parse its own output {:?}: {e:?}", String::from_utf8_lossy(&written)),
    }
}
