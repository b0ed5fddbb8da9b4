//! Names of IAM entities: what a valid user, group or policy name is, the object keys the
//! entities are stored under, and the generation of service-account keys and secrets.

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;

use crate::iam::secrets::ClearSecret;
use crate::iam::IamError;

/// Characters of user, group and policy names, as AWS IAM allows them (`[\w+=,.@-]`): names
/// enter ARNs and policy variables only as literals, where none of these has a meaning
/// (docs/adr/0011-iam-store.md).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Shortest user name (it is the access key id; MinIO's minimum).
pub const MIN_USER_NAME_CHARS: usize = 3;
/// Longest user name (AWS's longest access key id).
pub const MAX_USER_NAME_CHARS: usize = 128;
/// Longest group or policy name (AWS IAM's limit).
pub const MAX_NAME_CHARS: usize = 128;
/// Shortest secret key accepted (MinIO's minimum).
pub const MIN_SECRET_CHARS: usize = 8;
/// Longest secret key accepted (MinIO's maximum).
pub const MAX_SECRET_CHARS: usize = 40;
/// Characters of a generated service-account access key.
const SERVICE_KEY_CHARS: usize = 20;
/// Characters of a generated secret.
const GENERATED_SECRET_CHARS: usize = 40;

/// Checks a name of `what` against the IAM character set and `min..=max`.
pub fn check_name(what: &str, name: &str, min: usize, max: usize) -> Result<(), IamError> {
    if name.len() < min || name.len() > max || !name.chars().all(name_char) {
        return Err(IamError::Invalid(format!(
            "invalid {what} name '{name}': {min} to {max} characters of letters, digits and +=,.@_-"
        )));
    }
    Ok(())
}

/// Checks a user name (its access key id).
pub fn check_user_name(name: &str) -> Result<(), IamError> {
    check_name("user", name, MIN_USER_NAME_CHARS, MAX_USER_NAME_CHARS)
}

/// Whether `access_key` has the shape of a key the IAM store issues: a user name (which is
/// its access key id) or a generated service-account key, whose alphabet and length a user
/// name's rule covers. Anything else is refused without looking it up.
pub fn may_have_issued(access_key: &str) -> bool {
    check_user_name(access_key).is_ok()
}

/// Checks a group name.
pub fn check_group_name(name: &str) -> Result<(), IamError> {
    check_name("group", name, 1, MAX_NAME_CHARS)
}

/// Checks a policy name.
pub fn check_policy_name(name: &str) -> Result<(), IamError> {
    check_name("policy", name, 1, MAX_NAME_CHARS)
}

/// Checks a secret key chosen by an administrator: printable ASCII without spaces.
pub fn check_secret(secret: &str) -> Result<(), IamError> {
    let printable = secret.bytes().all(|b| b.is_ascii_graphic());
    if !printable || secret.len() < MIN_SECRET_CHARS || secret.len() > MAX_SECRET_CHARS {
        return Err(IamError::Invalid(format!(
            "invalid secret key: {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable characters without spaces"
        )));
    }
    Ok(())
}

/// A new service-account access key: upper-case letters and digits, as AWS keys look.
pub fn new_access_key() -> String {
    let mut rng = rand::thread_rng();
    (0..SERVICE_KEY_CHARS)
        .map(|_| {
            let i = rng.gen_range(0..36u8);
            char::from(if i < 10 { b'0' + i } else { b'A' + i - 10 })
        })
        .collect()
}

/// A new secret key.
pub fn new_secret() -> ClearSecret {
    ClearSecret::from(Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_SECRET_CHARS))
}

/// Object key of a user.
pub fn user_key(name: &str) -> String {
    format!("{USERS}{name}")
}

/// Object key of a group.
pub fn group_key(name: &str) -> String {
    format!("{GROUPS}{name}")
}

/// Object key of a service account.
pub fn service_account_key(access_key: &str) -> String {
    format!("{SERVICE_ACCOUNTS}{access_key}")
}

/// Object key of a named policy.
pub fn policy_key(name: &str) -> String {
    format!("{POLICIES}{name}")
}

/// Object key of the last-used time of an access key.
pub fn last_used_key(access_key: &str) -> String {
    format!("{LAST_USED}{access_key}")
}

/// Prefix of users.
pub const USERS: &str = "iam/users/";
/// Prefix of groups.
pub const GROUPS: &str = "iam/groups/";
/// Prefix of service accounts.
pub const SERVICE_ACCOUNTS: &str = "iam/service-accounts/";
/// Prefix of named policies.
pub const POLICIES: &str = "iam/policies/";
/// Prefix of last-used times.
pub const LAST_USED: &str = "iam/last-used/";

/// The entity id a secret is sealed for (its associated data).
pub fn user_secret_id(name: &str) -> String {
    format!("user/{name}")
}

/// The entity id a service account's secret is sealed for.
pub fn service_account_secret_id(access_key: &str) -> String {
    format!("service-account/{access_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_iam_character_set() {
        assert!(check_user_name("alice").is_ok());
        assert!(check_user_name("app.svc@example.org").is_ok());
        assert!(check_user_name("al").is_err());
        assert!(check_user_name("a/b").is_err(), "a slash would leave the entity's key");
        assert!(check_user_name("ümlaut").is_err());
        assert!(check_group_name("").is_err());
        assert!(check_secret("short").is_err());
        assert!(check_secret("with a space").is_err());
        assert!(check_secret("long-enough-secret").is_ok());
        let key = new_access_key();
        assert_eq!(key.len(), SERVICE_KEY_CHARS);
        assert!(key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert!(check_secret(new_secret().expose()).is_ok());
    }
}
