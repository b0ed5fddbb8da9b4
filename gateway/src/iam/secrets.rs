//! Secrets at rest: a user's secret key or a service account's secret is sealed before it is
//! stored, with AES-256-GCM under a fresh data key from the KMS, in the SSE package format
//! ([`crate::sse::package`]) bound to the entity it belongs to. The drives hold only the
//! sealed data key and the ciphertext; opening needs the KMS. In memory a secret in clear is a
//! [`ClearSecret`], which Debug never prints and which is zeroed when dropped.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use sovereign_kms_client::Kms;
use zeroize::Zeroizing;

use crate::iam::IamError;
use crate::sse::package::{Identity, PieceOpener, PieceSealer, HEADER_BYTES, PACKAGE_PLAIN_BYTES};

/// The "bucket" of the associated data of IAM secrets: no object can carry the same identity.
const SECRET_DOMAIN: &str = ".sovereign-s3 iam secret";
/// Encryption context of IAM secrets, part of the associated data.
const SECRET_CONTEXT: &str = "iam-secret-v1";

/// A secret in clear: a secret key shown once to its creator, or opened for signature checks.
/// Debug prints `<redacted>`; serde reads and writes the text itself (the API answer that shows
/// a new secret, the request that chooses one).
#[derive(Clone)]
pub struct ClearSecret(Zeroizing<String>);

impl ClearSecret {
    /// The secret's text, for what must use it (signing, sealing, the one answer showing it).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for ClearSecret {
    fn from(text: String) -> Self {
        Self(Zeroizing::new(text))
    }
}

impl std::str::FromStr for ClearSecret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(text.to_owned()))
    }
}

impl std::fmt::Debug for ClearSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for ClearSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for ClearSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// A secret as stored: the KMS key that sealed its data key, the sealed data key, and the
/// sealed secret (piece header, ciphertext and tag), base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The KMS key id the data key is sealed under.
    pub kms_key_id: String,
    /// The data key, sealed by the KMS.
    pub sealed_key: String,
    /// The secret, sealed under the data key, base64.
    pub ciphertext: String,
}

fn identity(entity: &str) -> Identity {
    Identity::new(SECRET_DOMAIN, entity, 1, SECRET_CONTEXT, PACKAGE_PLAIN_BYTES)
}

/// Seals `secret` for `entity` (such as `user/alice`), under a new data key of `kms_key_id`.
pub async fn seal(kms: &dyn Kms, kms_key_id: &str, entity: &str, secret: &str) -> Result<SealedSecret, IamError> {
    let data_key = kms.generate_data_key(kms_key_id).await.map_err(|e| IamError::Kms(e.to_string()))?;
    let (mut sealer, header) = PieceSealer::new(data_key.plaintext.bytes(), identity(entity))
        .map_err(|e| IamError::Internal(format!("sealing a secret: {e}")))?;
    let body =
        sealer.seal(secret.as_bytes(), true).map_err(|e| IamError::Internal(format!("sealing a secret: {e}")))?;
    let mut sealed = header.to_vec();
    sealed.extend_from_slice(&body);
    Ok(SealedSecret {
        kms_key_id: kms_key_id.to_owned(),
        sealed_key: data_key.sealed,
        ciphertext: BASE64.encode(sealed),
    })
}

/// Opens what [`seal`] sealed for `entity`; fails when it was sealed for another entity or
/// altered.
pub async fn open(kms: &dyn Kms, entity: &str, sealed: &SealedSecret) -> Result<ClearSecret, IamError> {
    let corrupt = |what: &str| IamError::Internal(format!("the stored secret of {entity} {what}"));
    let bytes = BASE64.decode(&sealed.ciphertext).map_err(|_| corrupt("is not base64"))?;
    let header_bytes = usize::try_from(HEADER_BYTES).map_err(|_| corrupt("has no header"))?;
    if bytes.len() < header_bytes {
        return Err(corrupt("is too short"));
    }
    let key = kms.decrypt(&sealed.kms_key_id, &sealed.sealed_key).await.map_err(|e| IamError::Kms(e.to_string()))?;
    let (header, body) = bytes.split_at(header_bytes);
    let opener = PieceOpener::new(key.bytes(), identity(entity), header).map_err(|_| corrupt("has a bad header"))?;
    let plain = opener.open(0, true, BytesMut::from(body)).map_err(|_| corrupt("does not authenticate"))?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| corrupt("is not text"))?;
    Ok(ClearSecret::from(text))
}

#[cfg(test)]
mod tests {
    use sovereign_kms_client::local::LocalKms;

    use super::*;

    fn kms(dir: &tempfile::TempDir) -> LocalKms {
        LocalKms::open(&dir.path().join("master.key"), vec!["iam".to_owned()]).unwrap()
    }

    #[tokio::test]
    async fn secrets_open_only_for_their_entity_and_never_lie_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let kms = kms(&dir);
        let sealed = seal(&kms, "iam", "user/alice", "s3cr3t-VALUE-123").await.unwrap();
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("s3cr3t-VALUE-123"), "{stored}");
        let opened = open(&kms, "user/alice", &sealed).await.unwrap();
        assert_eq!(opened.expose(), "s3cr3t-VALUE-123");
        assert!(!format!("{opened:?}").contains("s3cr3t"), "Debug shows no secret");
        let shown = serde_json::to_string(&opened).unwrap();
        assert_eq!(shown, "\"s3cr3t-VALUE-123\"", "serde shows it, for the one answer that must");
        assert_eq!(serde_json::from_str::<ClearSecret>(&shown).unwrap().expose(), "s3cr3t-VALUE-123");
        assert!(open(&kms, "user/mallory", &sealed).await.is_err(), "moved to another entity");
        let mut tampered = sealed.clone();
        let mut bytes = BASE64.decode(&tampered.ciphertext).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        tampered.ciphertext = BASE64.encode(bytes);
        assert!(open(&kms, "user/alice", &tampered).await.is_err(), "altered");
    }
}
