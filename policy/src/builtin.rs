//! The built-in identity policies, named and written as MinIO ships them: `readonly`,
//! `readwrite`, `writeonly`, `diagnostics`, `consoleAdmin`.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::document::{Kind, Policy};

/// The names of the built-in policies.
pub const BUILTIN_NAMES: &[&str] = &["readonly", "readwrite", "writeonly", "diagnostics", "consoleAdmin"];

const READONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject"],"Resource":["arn:aws:s3:::*"]}]}"#;
const READWRITE: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#;
const WRITEONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#;
const DIAGNOSTICS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:ServerTrace","admin:Profiling","admin:ConsoleLog","admin:ServerInfo","admin:TopLocksInfo","admin:OBDInfo","admin:BandwidthMonitor","admin:Prometheus"],"Resource":["arn:aws:s3:::*"]}]}"#;
const CONSOLE_ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:*"]},{"Effect":"Allow","Action":["kms:*"]},{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#;

/// The built-in policies' names and documents.
const DOCUMENTS: [(&str, &str); 5] = [
    ("readonly", READONLY),
    ("readwrite", READWRITE),
    ("writeonly", WRITEONLY),
    ("diagnostics", DIAGNOSTICS),
    ("consoleAdmin", CONSOLE_ADMIN),
];

static BUILTIN: LazyLock<HashMap<&'static str, Policy>> = LazyLock::new(|| {
    // A built-in that does not parse is left out (and the unit test below fails).
    DOCUMENTS
        .into_iter()
        .filter_map(|(name, text)| Policy::parse(text, Kind::Identity).ok().map(|policy| (name, policy)))
        .collect()
});

/// The built-in policy called `name` (case-sensitive, as MinIO names them).
pub fn builtin(name: &str) -> Option<&'static Policy> {
    BUILTIN.get(name)
}

/// The JSON document of the built-in policy called `name`, as written above (for display).
pub fn builtin_document(name: &str) -> Option<&'static str> {
    DOCUMENTS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses() {
        for name in BUILTIN_NAMES {
            assert!(builtin(name).is_some(), "{name}");
            assert!(builtin_document(name).is_some(), "{name}");
        }
        assert!(builtin("ReadWrite").is_none());
        assert!(builtin("root").is_none());
    }
}
