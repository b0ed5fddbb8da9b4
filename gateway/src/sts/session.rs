//! Stateless session credentials: minted by STS, verified by any gateway holding the same
//! cluster key, with nothing stored anywhere.
//!
//! - The access key id is `STS` + the expiry (40-bit Unix seconds) + 64 random bits, in
//!   upper-case hex: a gateway sees from the key id alone whether it is a session key and
//!   whether it has expired.
//! - The secret access key is HMAC-SHA256(cluster secret key, access key id): derived on
//!   demand, so no table of secrets exists. Changing one character of the key id (the embedded
//!   expiry, say) gives another secret that only the cluster key holder can compute.
//! - The session token is the session's identity sealed with AES-256-GCM under the cluster
//!   sealing key, with the access key id as associated data: it opens only with the cluster key
//!   and only together with the key id it was minted for.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{self, HKDF_SHA256};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Prefix of every session access key id.
pub const ACCESS_KEY_PREFIX: &str = "STS";
/// Bytes of the cluster key (256 bits), stored as 64 hex characters.
const CLUSTER_KEY_BYTES: usize = 32;
/// Bytes of the expiry embedded in an access key id (40 bits of Unix seconds: year 36812).
const EXPIRY_BYTES: usize = 5;
/// Random bytes of an access key id.
const KEY_ID_RANDOM_BYTES: usize = 8;
/// Bytes of the HMAC kept for the secret access key (base64: 40 characters, as AWS's).
const SECRET_BYTES: usize = 30;
/// First byte of a session token: the format version.
const TOKEN_VERSION: u8 = 1;
/// HKDF salt that separates these keys from any other use of the cluster key.
const KDF_SALT: &[u8] = b"sovereign-s3 sts session credentials";

/// The identity a session stands for, sealed into its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionIdentity {
    /// The web identity token's issuer.
    pub issuer: String,
    /// The web identity token's subject.
    pub subject: String,
    /// The policies the session has.
    pub policies: Vec<String>,
    /// The claims kept for policy variables and conditions.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What is sealed in a session token.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Expiry, Unix seconds (the same as in the access key id).
    exp: u64,
    #[serde(flatten)]
    identity: SessionIdentity,
}

/// Temporary credentials as STS hands them out.
#[derive(Clone)]
pub struct SessionCredentials {
    /// `STS...` access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: Zeroizing<String>,
    /// Sealed session token (`x-amz-security-token`).
    pub session_token: String,
    /// When they expire (whole seconds).
    pub expires: SystemTime,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

/// Why session credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a session key, a token that does not open with this cluster key, or a token minted
    /// for another access key id.
    #[error("invalid session credentials: {0}")]
    Invalid(&'static str),
    /// Valid credentials past their expiry.
    #[error("the session credentials have expired")]
    Expired,
}

/// The cluster key, split into the sealing key of session tokens and the HMAC key of secrets.
pub struct ClusterKey {
    seal: LessSafeKey,
    secret: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

/// An HKDF output length for ring.
struct KeyLen(usize);

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, label: &'static [u8]) -> Result<Zeroizing<[u8; CLUSTER_KEY_BYTES]>, String> {
    let mut out = Zeroizing::new([0u8; CLUSTER_KEY_BYTES]);
    let info = [label];
    prk.expand(&info, KeyLen(CLUSTER_KEY_BYTES))
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| "cluster key derivation failed".to_owned())?;
    Ok(out)
}

impl ClusterKey {
    /// The keys derived from a 256-bit cluster key.
    pub fn from_bytes(master: &[u8; CLUSTER_KEY_BYTES]) -> Result<Self, String> {
        let prk = hkdf::Salt::new(HKDF_SHA256, KDF_SALT).extract(master);
        let seal_bytes = derive(&prk, b"session token sealing")?;
        let secret_bytes = derive(&prk, b"secret access key")?;
        let unbound = UnboundKey::new(&AES_256_GCM, &seal_bytes[..]).map_err(|_| "invalid sealing key")?;
        Ok(Self {
            seal: LessSafeKey::new(unbound),
            secret: hmac::Key::new(hmac::HMAC_SHA256, &secret_bytes[..]),
            rng: SystemRandom::new(),
        })
    }

    /// Reads the cluster key (64 hex characters) from `path`, creating the file (mode 0600)
    /// with a random key when it does not exist. Every gateway of a cluster must read the same
    /// file contents.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        let text = match fs::read_to_string(path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(path)?,
            Err(e) => return Err(format!("read the STS cluster key {}: {e}", path.display())),
        };
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| format!("{}: the STS cluster key must be 64 hex characters", path.display()))?,
        );
        let master: &[u8; CLUSTER_KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("{}: the STS cluster key must be 64 hex characters", path.display()))?;
        Self::from_bytes(master)
    }

    /// Mints credentials for `identity` that expire at `expires` (rounded down to the second).
    pub fn mint(&self, identity: SessionIdentity, expires: SystemTime) -> Result<SessionCredentials, String> {
        let exp = unix_seconds(expires);
        if exp >= 1 << (8 * EXPIRY_BYTES) {
            return Err("session expiry out of range".into());
        }
        let mut random = [0u8; KEY_ID_RANDOM_BYTES];
        self.rng.fill(&mut random).map_err(|_| "no randomness for the access key id")?;
        let access_key = format!(
            "{ACCESS_KEY_PREFIX}{}{}",
            hex::encode_upper(&exp.to_be_bytes()[8 - EXPIRY_BYTES..]),
            hex::encode_upper(random)
        );
        let plain = serde_json::to_vec(&Sealed { exp, identity }).map_err(|e| format!("encode the session: {e}"))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| "no randomness for the session token")?;
        let mut sealed = plain;
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing the session token failed")?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&sealed);
        Ok(SessionCredentials {
            secret_key: self.secret_for_key_id(&access_key),
            access_key,
            session_token: URL_SAFE_NO_PAD.encode(token),
            expires: UNIX_EPOCH + Duration::from_secs(exp),
        })
    }

    /// The secret access key of a session key id that has not expired at `now`. The caller
    /// must still check the session token ([`ClusterKey::open`]) before trusting the request.
    pub fn secret_key(&self, access_key: &str, now: SystemTime) -> Result<Zeroizing<String>, SessionError> {
        let expires = embedded_expiry(access_key).ok_or(SessionError::Invalid("not a session access key id"))?;
        if expires <= now {
            return Err(SessionError::Expired);
        }
        Ok(self.secret_for_key_id(access_key))
    }

    /// Opens the session token sent with `access_key`: it must have been sealed by this
    /// cluster key, for this access key id, and not have expired at `now`.
    pub fn open(
        &self,
        access_key: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<(SessionIdentity, SystemTime), SessionError> {
        let expires = embedded_expiry(access_key).ok_or(SessionError::Invalid("not a session access key id"))?;
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| SessionError::Invalid("malformed session token"))?;
        let (&version, rest) = raw.split_first().ok_or(SessionError::Invalid("empty session token"))?;
        if version != TOKEN_VERSION || rest.len() < NONCE_LEN {
            return Err(SessionError::Invalid("unknown session token format"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SessionError::Invalid("malformed session token"))?;
        let mut buffer = sealed.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(access_key.as_bytes()), &mut buffer)
            .map_err(|_| SessionError::Invalid("the session token does not belong to this access key or cluster"))?;
        let sealed: Sealed =
            serde_json::from_slice(plain).map_err(|_| SessionError::Invalid("malformed session token contents"))?;
        if sealed.exp != unix_seconds(expires) {
            return Err(SessionError::Invalid("session token and access key disagree on the expiry"));
        }
        if expires <= now {
            return Err(SessionError::Expired);
        }
        Ok((sealed.identity, expires))
    }

    fn secret_for_key_id(&self, access_key: &str) -> Zeroizing<String> {
        let tag = hmac::sign(&self.secret, access_key.as_bytes());
        Zeroizing::new(STANDARD.encode(&tag.as_ref()[..SECRET_BYTES]))
    }
}

/// True for access key ids shaped like session keys (whether or not they are valid).
pub fn is_session_key(access_key: &str) -> bool {
    embedded_expiry(access_key).is_some()
}

/// The expiry written in a session access key id.
fn embedded_expiry(access_key: &str) -> Option<SystemTime> {
    let hex_part = access_key.strip_prefix(ACCESS_KEY_PREFIX)?;
    if hex_part.len() != 2 * (EXPIRY_BYTES + KEY_ID_RANDOM_BYTES)
        || !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    {
        return None;
    }
    let secs = u64::from_str_radix(&hex_part[..2 * EXPIRY_BYTES], 16).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn create_key_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let mut key = Zeroizing::new([0u8; CLUSTER_KEY_BYTES]);
    SystemRandom::new().fill(&mut key[..]).map_err(|_| "no randomness for the STS cluster key")?;
    let text = Zeroizing::new(hex::encode(&key[..]));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("create the STS cluster key {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("write the STS cluster key {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "created the STS cluster key");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ClusterKey {
        ClusterKey::from_bytes(&[byte; CLUSTER_KEY_BYTES]).unwrap()
    }

    fn identity() -> SessionIdentity {
        let mut claims = serde_json::Map::new();
        claims.insert("azp".into(), "app".into());
        SessionIdentity {
            issuer: "https://idp/realms/sovereign".into(),
            subject: "alice".into(),
            policies: vec!["readwrite".into()],
            claims,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn minted_credentials_open_with_the_same_key_until_expiry() {
        let (minter, verifier) = (key(7), key(7));
        let creds = minter.mint(identity(), at(2_000_000_000)).unwrap();
        assert!(creds.access_key.starts_with(ACCESS_KEY_PREFIX) && is_session_key(&creds.access_key));
        let (opened, expires) = verifier.open(&creds.access_key, &creds.session_token, at(1_999_999_999)).unwrap();
        assert_eq!((opened, expires), (identity(), at(2_000_000_000)));
        let secret = verifier.secret_key(&creds.access_key, at(1_999_999_999)).unwrap();
        assert_eq!(*secret, *creds.secret_key);
        assert_eq!(secret.len(), 40);
    }

    #[test]
    fn expired_credentials_are_refused_by_key_id_and_by_token() {
        let k = key(7);
        let creds = k.mint(identity(), at(2_000_000_000)).unwrap();
        assert_eq!(k.secret_key(&creds.access_key, at(2_000_000_000)).unwrap_err(), SessionError::Expired);
        assert_eq!(
            k.open(&creds.access_key, &creds.session_token, at(2_000_000_001)).unwrap_err(),
            SessionError::Expired
        );
    }

    #[test]
    fn another_cluster_key_opens_nothing_and_derives_another_secret() {
        let creds = key(7).mint(identity(), at(2_000_000_000)).unwrap();
        let other = key(8);
        assert!(matches!(other.open(&creds.access_key, &creds.session_token, at(1)), Err(SessionError::Invalid(_))));
        assert_ne!(*other.secret_key(&creds.access_key, at(1)).unwrap(), *creds.secret_key);
    }

    #[test]
    fn a_token_is_bound_to_its_access_key_id() {
        let k = key(7);
        let first = k.mint(identity(), at(2_000_000_000)).unwrap();
        let second = k.mint(identity(), at(2_000_000_000)).unwrap();
        assert!(matches!(k.open(&second.access_key, &first.session_token, at(1)), Err(SessionError::Invalid(_))));
        // Moving the embedded expiry forward changes the key id: the token no longer opens.
        let mut extended = first.access_key.clone();
        extended.replace_range(3..5, "FF");
        assert!(matches!(k.open(&extended, &first.session_token, at(1)), Err(SessionError::Invalid(_))));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let k = key(7);
        let creds = k.mint(identity(), at(2_000_000_000)).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&creds.session_token).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        for token in [tampered.as_str(), "", "not base64!", "AQ"] {
            assert!(matches!(k.open(&creds.access_key, token, at(1)), Err(SessionError::Invalid(_))), "{token}");
        }
        assert!(k.secret_key("AKIAROOT", at(1)).is_err());
        assert!(!is_session_key("STSroot"));
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sts.key");
        let creds = ClusterKey::load_or_create(&path).unwrap().mint(identity(), at(2_000_000_000)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = ClusterKey::load_or_create(&path).unwrap();
        assert!(again.open(&creds.access_key, &creds.session_token, at(1)).is_ok());
        fs::write(&path, "short").unwrap();
        assert!(ClusterKey::load_or_create(&path).is_err());
    }
}
