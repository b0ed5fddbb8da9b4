//! Who may call, and which bucket a Host header names: the root key pair (sessions and IAM
//! identities are resolved by [`crate::sts::auth::Authenticator`]) and virtual-host style
//! addressing under configured base domains.

use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{MultiDomain, S3Host, VirtualHost};
use s3s::{s3_error, S3Result};

use crate::credentials::RootCredentials;
use crate::principal::{Principal, Principals};
use crate::{parse, sigv2};

/// Authentication against the root key pair.
#[derive(Clone)]
pub struct RootAuth {
    access_key: String,
    secret_key: SecretKey,
}

impl RootAuth {
    /// Accepts only `root`'s key pair, and makes the front door verify Signature Version 2
    /// against it too ([`sigv2::verify_with`]): the front end has no handle on the auth provider.
    pub fn new(root: &RootCredentials) -> Self {
        let auth = Self { access_key: root.access_key.clone(), secret_key: SecretKey::from(root.secret_key.clone()) };
        sigv2::verify_with(Arc::new(auth.clone()));
        auth
    }

    /// Whether `access_key` is the root access key.
    pub fn is_root(&self, access_key: &str) -> bool {
        access_key == self.access_key
    }
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            return Ok(self.secret_key.clone());
        }
        Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
    }
}

#[async_trait::async_trait]
impl Principals for RootAuth {
    async fn resolve(&self, access_key: &str, _session_token: Option<&str>) -> S3Result<Principal> {
        if access_key == self.access_key {
            return Ok(Principal::Root { access_key: access_key.to_owned() });
        }
        Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
    }
}

/// Virtual-host style under the base domains; any other host (an IP address, `localhost`, a
/// load balancer name) is path style. The port is ignored.
pub struct DomainHost {
    domains: MultiDomain,
    names: Vec<String>,
}

impl DomainHost {
    /// Serves virtual-host style under `names`, such as `s3.example.org`.
    pub fn new(names: &[String]) -> Result<Self, String> {
        let domains =
            MultiDomain::new(names.iter().map(String::as_str)).map_err(|e| format!("invalid --domain: {e}"))?;
        Ok(Self { domains, names: names.iter().map(|n| n.to_ascii_lowercase()).collect() })
    }

    fn is_ours(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.names.iter().any(|d| host == *d || host.strip_suffix(d.as_str()).is_some_and(|h| h.ends_with('.')))
    }
}

impl S3Host for DomainHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = parse::without_port(host);
        if self.is_ours(name) {
            return self.domains.parse_host_header(name);
        }
        Ok(VirtualHost::new(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_hosts_are_virtual_and_others_path_style() {
        let host = DomainHost::new(&["s3.local".to_owned()]).unwrap();
        assert_eq!(host.parse_host_header("b.s3.local:9000").unwrap().bucket(), Some("b"));
        assert_eq!(host.parse_host_header("s3.local:9000").unwrap().bucket(), None);
        assert_eq!(host.parse_host_header("127.0.0.1:9000").unwrap().bucket(), None);
    }
}
