//! What a policy is evaluated against besides action and resource: the caller (for the
//! Principal of bucket policies) and the condition keys of the request.

use std::collections::HashMap;

/// Who makes the request, as a bucket policy's Principal element sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An unsigned request: matched only by `"*"` and `{"AWS": "*"}`.
    Anonymous,
    /// A signed request, known by these identifiers (ARNs), any of which a Principal may name.
    Named(Vec<String>),
}

/// The condition keys of one request (`aws:SourceIp`, `s3:prefix`, `jwt:sub`, ...), each with
/// one or more values. Key names are case-insensitive, except the claim names of `jwt:` keys
/// and what follows a `/` (tag keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    /// Adds `value` to the values of `key`.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values.entry(normalize_key(key)).or_default().push(value.into());
    }

    /// The values of `key`, if the request has it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        match self.values.get(key) {
            Some(values) => Some(values.as_slice()),
            None => self.values.get(&normalize_key(key)).map(Vec::as_slice),
        }
    }
}

/// The canonical spelling of a condition key: service prefix and name in lower case, except
/// a `jwt:` claim name and the part after the first `/`, which are kept as written.
pub fn normalize_key(key: &str) -> String {
    let (head, tail) = match key.find('/') {
        Some(at) => key.split_at(at),
        None => (key, ""),
    };
    let head = match head.split_once(':') {
        Some((service, claim)) if service.eq_ignore_ascii_case("jwt") => format!("jwt:{claim}"),
        _ => head.to_ascii_lowercase(),
    };
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_but_claims_and_tag_keys_are_not() {
        assert_eq!(normalize_key("aws:SourceIp"), "aws:sourceip");
        assert_eq!(normalize_key("S3:ExistingObjectTag/Project"), "s3:existingobjecttag/Project");
        assert_eq!(normalize_key("JWT:preferred_Username"), "jwt:preferred_Username");
        let mut context = Context::default();
        context.insert("AWS:SecureTransport", "true");
        assert_eq!(context.get("aws:securetransport"), Some(&["true".to_owned()][..]));
        assert_eq!(context.get("aws:SecureTransport"), Some(&["true".to_owned()][..]));
        assert_eq!(context.get("aws:SourceIp"), None);
    }
}
