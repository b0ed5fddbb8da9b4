//! Root credentials: from the environment, or generated on first start and kept (mode 0600) on
//! every drive so that restarts keep them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// File on every drive that holds generated root credentials (read from the first drive that
/// has it).
pub const CREDENTIALS_FILE: &str = "root-credentials.json";

/// The root access key pair.
#[derive(Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

/// Where the credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `SOVEREIGN_S3_ROOT_USER` / `SOVEREIGN_S3_ROOT_PASSWORD`.
    Environment,
    /// Read from the credentials file of an earlier start.
    Stored,
    /// Generated now (print them once).
    Generated,
}

/// Resolves the root credentials. Generated credentials are kept on every drive, so losing
/// drives (up to the point the data is lost too) keeps them.
pub fn resolve(
    user: Option<String>,
    password: Option<String>,
    drives: &[PathBuf],
) -> Result<(RootCredentials, Origin), String> {
    match (user, password) {
        (Some(access_key), Some(secret_key)) => {
            if access_key.len() < 3 || secret_key.len() < 8 {
                return Err("root user needs at least 3 characters and root password at least 8".into());
            }
            Ok((RootCredentials { access_key, secret_key }, Origin::Environment))
        }
        (Some(_), None) | (None, Some(_)) => {
            Err("set both SOVEREIGN_S3_ROOT_USER and SOVEREIGN_S3_ROOT_PASSWORD, or neither".into())
        }
        (None, None) => load_or_generate(drives),
    }
}

fn load_or_generate(drives: &[PathBuf]) -> Result<(RootCredentials, Origin), String> {
    let mut stored = None;
    for dir in drives {
        let path = dir.join(CREDENTIALS_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                stored = Some(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        }
    }
    let (creds, origin) = match stored {
        Some(creds) => (creds, Origin::Stored),
        None => {
            let creds = RootCredentials { access_key: random_string(20).to_uppercase(), secret_key: random_string(40) };
            (creds, Origin::Generated)
        }
    };
    for dir in drives {
        if !dir.join(CREDENTIALS_FILE).exists() {
            store(dir, &creds)?;
        }
    }
    Ok((creds, origin))
}

fn store(dir: &Path, creds: &RootCredentials) -> Result<(), String> {
    let path = dir.join(CREDENTIALS_FILE);
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let body = serde_json::to_vec_pretty(creds).map_err(|e| format!("encode credentials: {e}"))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    file.write_all(&body).and_then(|()| file.sync_all()).map_err(|e| format!("write {}: {e}", path.display()))
}

fn random_string(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_once_then_reused_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let drives = vec![dir.path().join("d1"), dir.path().join("d2")];
        let (first, origin) = resolve(None, None, &drives).unwrap();
        assert_eq!(origin, Origin::Generated);
        let mode = fs::metadata(drives[1].join(CREDENTIALS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&drives[0]).unwrap();
        let (again, origin) = resolve(None, None, &drives).unwrap();
        assert_eq!(origin, Origin::Stored);
        assert_eq!(first.secret_key, again.secret_key);
        assert!(drives[0].join(CREDENTIALS_FILE).exists());
    }

    #[test]
    fn environment_wins_and_must_be_complete() {
        let dir = tempfile::tempdir().unwrap();
        let drives = vec![dir.path().to_owned()];
        let (creds, origin) = resolve(Some("admin".into()), Some("password1".into()), &drives).unwrap();
        assert_eq!((creds.access_key.as_str(), origin), ("admin", Origin::Environment));
        assert!(resolve(Some("admin".into()), None, &drives).is_err());
        assert!(!format!("{creds:?}").contains("password1"));
    }
}
