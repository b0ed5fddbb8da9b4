//! The local provider, the embedded default: a master key in a file (created 0600 on first
//! start) seals data keys with AES-256-GCM under a key derived per key id, so SSE-S3 and SSE-KMS
//! work without OpenBao. Only the configured key ids exist; there are no key versions, so a
//! rewrap seals again under the same master key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{DataKey, Kms, KmsError, PlainKey, Result, DATA_KEY_BYTES};

/// Prefix of data keys sealed by this provider (the version of the format).
const SEALED_PREFIX: &str = "local:v1:";
/// HKDF info of the key that seals data keys of one key id.
const KEK_INFO: &[u8] = b"sovereign-s3 local kms key-encryption key v1";
/// Hex digits of the master key in its file.
const MASTER_KEY_HEX_LEN: usize = 2 * DATA_KEY_BYTES;

/// Data keys sealed under a master key file.
pub struct LocalKms {
    master: Zeroizing<[u8; DATA_KEY_BYTES]>,
    keys: Vec<String>,
    path: PathBuf,
    random: SystemRandom,
}

impl std::fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKms").field("path", &self.path).field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl LocalKms {
    /// Opens the master key file at `path`, creating it (mode 0600) with a random key when it
    /// does not exist; `keys` are the key ids this provider serves. A file that group or others
    /// can read is refused.
    pub fn open(path: &Path, keys: Vec<String>) -> Result<Self> {
        let random = SystemRandom::new();
        let master = match fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(KmsError::Config(format!(
                        "master key file {} is readable by group or others (chmod 600 it)",
                        path.display()
                    )));
                }
                read_master(path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_master(path, &random)?,
            Err(e) => return Err(KmsError::Config(format!("master key file {}: {e}", path.display()))),
        };
        Ok(Self { master, keys, path: path.to_owned(), random })
    }

    /// The key that seals data keys of `key_id`, or `KeyNotFound`.
    fn kek(&self, key_id: &str) -> Result<LessSafeKey> {
        if !self.keys.iter().any(|k| k == key_id) {
            return Err(KmsError::KeyNotFound(key_id.to_owned()));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(self.master.as_ref());
        let info = [KEK_INFO, key_id.as_bytes()];
        let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| KmsError::Config("key derivation failed".into()))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }

    fn seal(&self, key_id: &str, key: &PlainKey) -> Result<String> {
        let kek = self.kek(key_id)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| KmsError::Unavailable("no system randomness".into()))?;
        let mut sealed = key.bytes().to_vec();
        kek.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(key_id.as_bytes()), &mut sealed)
            .map_err(|_| KmsError::Protocol("sealing a data key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", BASE64.encode(out)))
    }

    fn unseal(&self, key_id: &str, sealed: &str) -> Result<PlainKey> {
        let kek = self.kek(key_id)?;
        let invalid = |reason: &str| KmsError::InvalidCiphertext { key: key_id.to_owned(), reason: reason.to_owned() };
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(|| invalid("not sealed by the local provider"))?;
        let mut bytes = Zeroizing::new(BASE64.decode(encoded).map_err(|_| invalid("not base64"))?);
        if bytes.len() < NONCE_LEN {
            return Err(invalid("too short"));
        }
        let (nonce, rest) = bytes.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid("bad nonce"))?;
        let plain = kek
            .open_in_place(nonce, Aad::from(key_id.as_bytes()), rest)
            .map_err(|_| invalid("authentication failed"))?;
        PlainKey::from_slice(plain).ok_or_else(|| invalid("wrong key length"))
    }
}

fn read_master(path: &Path) -> Result<Zeroizing<[u8; DATA_KEY_BYTES]>> {
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|e| KmsError::Config(format!("master key file {}: {e}", path.display())))?,
    );
    let hex = text.trim();
    let mut master = Zeroizing::new([0u8; DATA_KEY_BYTES]);
    let valid = hex.len() == MASTER_KEY_HEX_LEN
        && hex.as_bytes().chunks(2).zip(master.iter_mut()).all(|(pair, byte)| {
            std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()).map(|b| *byte = b).is_some()
        });
    if !valid {
        return Err(KmsError::Config(format!("master key file {} does not hold 64 hex digits", path.display())));
    }
    Ok(master)
}

fn create_master(path: &Path, random: &SystemRandom) -> Result<Zeroizing<[u8; DATA_KEY_BYTES]>> {
    let mut master = Zeroizing::new([0u8; DATA_KEY_BYTES]);
    random.fill(master.as_mut()).map_err(|_| KmsError::Config("no system randomness".into()))?;
    let hex: Zeroizing<String> = Zeroizing::new(master.iter().map(|b| format!("{b:02x}")).collect());
    let config = |e: std::io::Error| KmsError::Config(format!("creating master key file {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(config)?;
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(config)?;
    file.write_all(format!("{}\n", hex.as_str()).as_bytes()).map_err(config)?;
    file.sync_all().map_err(config)?;
    tracing::info!(path = %path.display(), "created the local KMS master key file");
    Ok(master)
}

#[async_trait]
impl Kms for LocalKms {
    async fn generate_data_key(&self, key_id: &str) -> Result<DataKey> {
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        self.random.fill(bytes.as_mut()).map_err(|_| KmsError::Unavailable("no system randomness".into()))?;
        let plaintext = PlainKey::new(*bytes);
        let sealed = self.seal(key_id, &plaintext)?;
        Ok(DataKey { plaintext, sealed })
    }

    async fn decrypt(&self, key_id: &str, sealed: &str) -> Result<PlainKey> {
        self.unseal(key_id, sealed)
    }

    async fn rewrap(&self, key_id: &str, sealed: &str) -> Result<String> {
        let key = self.unseal(key_id, sealed)?;
        self.seal(key_id, &key)
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }

    fn provider(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_roundtrip_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let kms = LocalKms::open(&path, vec!["k".into()]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let key = kms.generate_data_key("k").await.unwrap();
        let again = LocalKms::open(&path, vec!["k".into()]).unwrap();
        assert_eq!(again.decrypt("k", &key.sealed).await.unwrap().bytes(), key.plaintext.bytes());
        let rewrapped = again.rewrap("k", &key.sealed).await.unwrap();
        assert_ne!(rewrapped, key.sealed);
        assert_eq!(again.decrypt("k", &rewrapped).await.unwrap().bytes(), key.plaintext.bytes());
    }

    #[tokio::test]
    async fn unknown_keys_and_tampering_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let kms = LocalKms::open(&path, vec!["k".into(), "other".into()]).unwrap();
        assert!(matches!(kms.generate_data_key("nope").await, Err(KmsError::KeyNotFound(_))));
        let key = kms.generate_data_key("k").await.unwrap();
        let err = kms.decrypt("other", &key.sealed).await.unwrap_err();
        assert!(matches!(err, KmsError::InvalidCiphertext { .. }), "{err}");
        let mut tampered = key.sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(kms.decrypt("k", &tampered).await.is_err());
    }

    #[test]
    fn a_readable_master_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalKms::open(&path, vec!["k".into()]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(LocalKms::open(&path, vec!["k".into()]), Err(KmsError::Config(_))));
    }
}
