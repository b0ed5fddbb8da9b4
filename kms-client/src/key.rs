//! Plaintext data keys: zeroed when dropped and never printed.

use zeroize::Zeroizing;

/// Bytes of a data key (AES-256).
pub const DATA_KEY_BYTES: usize = 32;

/// The version of the master key that sealed `sealed`: N of OpenBao's `vault:vN:...` and of
/// the local provider's `local:vN:...`; `None` for a string of another shape.
pub fn sealing_version(sealed: &str) -> Option<u32> {
    let (_, rest) = sealed.split_once(":v")?;
    let (version, _) = rest.split_once(':')?;
    version.parse().ok()
}

/// A plaintext data key. Its memory is zeroed on drop and `Debug` does not show it.
#[derive(Clone)]
pub struct PlainKey(Zeroizing<[u8; DATA_KEY_BYTES]>);

impl PlainKey {
    /// Wraps key bytes.
    pub fn new(bytes: [u8; DATA_KEY_BYTES]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from a slice, which must be exactly [`DATA_KEY_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        if bytes.len() != DATA_KEY_BYTES {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; DATA_KEY_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainKey(<redacted>)")
    }
}

/// A new data key: the plaintext to seal data with, and the same key sealed by the KMS to store.
#[derive(Debug, Clone)]
pub struct DataKey {
    /// The key to seal with; never stored.
    pub plaintext: PlainKey,
    /// The key sealed under the master key; stored with the object.
    pub sealed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_versions_are_read_from_sealed_keys() {
        assert_eq!(sealing_version("vault:v12:AbC="), Some(12));
        assert_eq!(sealing_version("local:v1:AbC="), Some(1));
        assert_eq!(sealing_version("vault:vx:AbC="), None);
        assert_eq!(sealing_version("opaque"), None);
    }
}
