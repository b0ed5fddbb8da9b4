//! `sovereign-s3 admin <resource> <verb> ...`: the operator's command line for the admin API.
//! Each command becomes one admin request ([`AdminRequest`]); [`crate::admin::client`] signs
//! and sends it with the aws cli's credentials and prints the JSON answer.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use crate::iam::secrets::ClearSecret;

/// Settings of `sovereign-s3 admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's URL.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9000")]
    pub endpoint_url: String,
    /// The region requests are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The profile of ~/.aws/credentials to use when AWS_ACCESS_KEY_ID is not set.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// The resource and what to do with it.
    #[command(subcommand)]
    pub resource: Resource,
}

/// The resources of the admin API.
#[derive(Debug, Subcommand)]
pub enum Resource {
    /// Users: access keys with policies.
    #[command(subcommand)]
    User(UserCommand),
    /// Groups of users sharing policies.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Service accounts: long-lived keys acting for a user or an OpenID identity.
    #[command(subcommand)]
    ServiceAccount(ServiceAccountCommand),
    /// Named policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The keys that seal stored data.
    #[command(subcommand)]
    Kms(KmsCommand),
}

/// `admin kms ...`.
#[derive(Debug, Subcommand)]
pub enum KmsCommand {
    /// Reseals every stored data key under its KMS key's latest version (after a rotation),
    /// batch by batch, printing a JSON line per batch; resumable with `--after`.
    Rewrap {
        /// Go on after this cursor (the `next` of an earlier batch).
        #[arg(long)]
        after: Option<String>,
        /// Versions per batch (1 to 10000).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// `admin user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a user; the answer shows its secret key this once.
    Create {
        /// The user name, which is its access key id.
        name: String,
        /// The secret key (generated when absent).
        #[arg(long)]
        secret_key: Option<ClearSecret>,
        /// A policy to attach (repeatable).
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Lists users, a page at a time.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Shows a user.
    Get {
        /// The user name.
        name: String,
    },
    /// Enables a user.
    Enable {
        /// The user name.
        name: String,
    },
    /// Disables a user: its keys and service accounts are refused.
    Disable {
        /// The user name.
        name: String,
    },
    /// Deletes a user with its service accounts.
    Delete {
        /// The user name.
        name: String,
    },
    /// Attaches a policy.
    AttachPolicy {
        /// The user name.
        name: String,
        /// The policy.
        policy: String,
    },
    /// Detaches a policy.
    DetachPolicy {
        /// The user name.
        name: String,
        /// The policy.
        policy: String,
    },
}

/// `admin group ...`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Creates a group.
    Create {
        /// The group name.
        name: String,
        /// A member (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
        /// A policy to attach (repeatable).
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Lists groups.
    List,
    /// Shows a group.
    Get {
        /// The group name.
        name: String,
    },
    /// Enables a group.
    Enable {
        /// The group name.
        name: String,
    },
    /// Disables a group: its members' keys are refused.
    Disable {
        /// The group name.
        name: String,
    },
    /// Deletes an empty group.
    Delete {
        /// The group name.
        name: String,
    },
    /// Adds a member.
    AddMember {
        /// The group name.
        name: String,
        /// The user.
        user: String,
    },
    /// Removes a member.
    RemoveMember {
        /// The group name.
        name: String,
        /// The user.
        user: String,
    },
    /// Attaches a policy.
    AttachPolicy {
        /// The group name.
        name: String,
        /// The policy.
        policy: String,
    },
    /// Detaches a policy.
    DetachPolicy {
        /// The group name.
        name: String,
        /// The policy.
        policy: String,
    },
}

/// `admin service-account ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Creates a service account; the answer shows its secret this once.
    Create {
        /// The user it acts for (default: the caller).
        #[arg(long)]
        parent: Option<String>,
        /// A policy document (JSON file) that narrows the parent's permissions.
        #[arg(long)]
        policy_file: Option<PathBuf>,
        /// Expiry (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        /// A name.
        #[arg(long)]
        name: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Lists service accounts (without secrets), a page at a time.
    List {
        /// Only those of this parent.
        #[arg(long)]
        parent: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Shows a service account.
    Get {
        /// The access key.
        access_key: String,
    },
    /// Enables a service account.
    Enable {
        /// The access key.
        access_key: String,
    },
    /// Disables a service account.
    Disable {
        /// The access key.
        access_key: String,
    },
    /// Changes the policy or the expiry.
    Update {
        /// The access key.
        access_key: String,
        /// A new policy document (JSON file).
        #[arg(long, conflicts_with = "remove_policy")]
        policy_file: Option<PathBuf>,
        /// Removes the account's own policy.
        #[arg(long)]
        remove_policy: bool,
        /// A new expiry (RFC 3339).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_at: Option<String>,
        /// Removes the expiry.
        #[arg(long)]
        no_expiry: bool,
    },
    /// Deletes a service account.
    Delete {
        /// The access key.
        access_key: String,
    },
}

/// `admin policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Creates or replaces a named policy from a JSON file.
    Create {
        /// The policy name.
        name: String,
        /// The policy document (JSON file).
        file: PathBuf,
    },
    /// Lists policies, built-ins included.
    List,
    /// Shows a policy.
    Get {
        /// The policy name.
        name: String,
    },
    /// Deletes a named policy that is attached nowhere.
    Delete {
        /// The policy name.
        name: String,
    },
}

/// Which page of a listing to show.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The most items to show (1 to 1000).
    #[arg(long)]
    limit: Option<usize>,
    /// Show those after this name (the `next` of the previous page).
    #[arg(long)]
    after: Option<String>,
}

/// One admin request: method, path below the prefix (segments percent-encoded), query, body.
/// Debug leaves the body out: it may choose a user's secret key.
#[derive(Clone, PartialEq)]
pub struct AdminRequest {
    /// The method.
    pub method: Method,
    /// The path below [`crate::admin::PREFIX`].
    pub path: String,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// What a path segment keeps unencoded: RFC 3986's unreserved characters, as SigV4's canonical
/// URI has them (encoding more would make the signed path differ from the server's).
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

fn request(method: Method, parts: &[&str], body: Option<Value>) -> AdminRequest {
    let path = parts.iter().map(|p| format!("/{}", segment(p))).collect::<String>();
    AdminRequest { method, path, body: body.map(|b| b.to_string().into_bytes()) }
}

fn status(enabled: bool) -> Value {
    json!({ "status": if enabled { "enabled" } else { "disabled" } })
}

fn read_policy(path: &PathBuf) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(Value::String(text))
}

/// One batch of a rewrap: `POST /kms/rewrap?limit=N[&after=CURSOR]`.
pub fn rewrap_request(after: Option<&str>, limit: usize) -> AdminRequest {
    let query = [("limit", Some(limit.to_string())), ("after", after.map(str::to_owned))];
    with_query(request(Method::POST, &["kms", "rewrap"], None), &query)
}

impl PageArgs {
    /// The query of a listing of this page, of `parent`'s items only when given.
    fn query(&self, parent: Option<&str>) -> [(&'static str, Option<String>); 3] {
        [
            ("parent", parent.map(str::to_owned)),
            ("limit", self.limit.map(|n| n.to_string())),
            ("after", self.after.clone()),
        ]
    }
}

/// `request` with the query parameters of `pairs` that have a value.
fn with_query(mut request: AdminRequest, pairs: &[(&str, Option<String>)]) -> AdminRequest {
    let mut separator = '?';
    for (name, value) in pairs {
        if let Some(value) = value {
            request.path.push_str(&format!("{separator}{name}={}", segment(value)));
            separator = '&';
        }
    }
    request
}

impl Resource {
    /// The admin request this command makes.
    pub fn request(&self) -> Result<AdminRequest, String> {
        use {GroupCommand as G, PolicyCommand as P, ServiceAccountCommand as S, UserCommand as U};
        Ok(match self {
            Self::User(command) => match command {
                U::Create { name, secret_key, policies } => request(
                    Method::POST,
                    &["users"],
                    Some(json!({ "name": name, "secretKey": secret_key, "policies": policies })),
                ),
                U::List { page } => with_query(request(Method::GET, &["users"], None), &page.query(None)),
                U::Get { name } => request(Method::GET, &["users", name], None),
                U::Enable { name } => request(Method::PUT, &["users", name, "status"], Some(status(true))),
                U::Disable { name } => request(Method::PUT, &["users", name, "status"], Some(status(false))),
                U::Delete { name } => request(Method::DELETE, &["users", name], None),
                U::AttachPolicy { name, policy } => request(Method::PUT, &["users", name, "policies", policy], None),
                U::DetachPolicy { name, policy } => request(Method::DELETE, &["users", name, "policies", policy], None),
            },
            Self::Group(command) => match command {
                G::Create { name, members, policies } => request(
                    Method::POST,
                    &["groups"],
                    Some(json!({ "name": name, "members": members, "policies": policies })),
                ),
                G::List => request(Method::GET, &["groups"], None),
                G::Get { name } => request(Method::GET, &["groups", name], None),
                G::Enable { name } => request(Method::PUT, &["groups", name, "status"], Some(status(true))),
                G::Disable { name } => request(Method::PUT, &["groups", name, "status"], Some(status(false))),
                G::Delete { name } => request(Method::DELETE, &["groups", name], None),
                G::AddMember { name, user } => request(Method::PUT, &["groups", name, "members", user], None),
                G::RemoveMember { name, user } => request(Method::DELETE, &["groups", name, "members", user], None),
                G::AttachPolicy { name, policy } => request(Method::PUT, &["groups", name, "policies", policy], None),
                G::DetachPolicy { name, policy } => {
                    request(Method::DELETE, &["groups", name, "policies", policy], None)
                }
            },
            Self::ServiceAccount(command) => match command {
                S::Create { parent, policy_file, expires_at, name, description } => {
                    let mut body = json!({});
                    let fields = [
                        ("parent", parent.clone().map(Value::String)),
                        ("policy", policy_file.as_ref().map(read_policy).transpose()?),
                        ("expiresAt", expires_at.clone().map(Value::String)),
                        ("name", name.clone().map(Value::String)),
                        ("description", description.clone().map(Value::String)),
                    ];
                    for (field, value) in fields {
                        if let Some(value) = value {
                            body[field] = value;
                        }
                    }
                    request(Method::POST, &["service-accounts"], Some(body))
                }
                S::List { parent, page } => {
                    with_query(request(Method::GET, &["service-accounts"], None), &page.query(parent.as_deref()))
                }
                S::Get { access_key } => request(Method::GET, &["service-accounts", access_key], None),
                S::Enable { access_key } => {
                    request(Method::PATCH, &["service-accounts", access_key], Some(status(true)))
                }
                S::Disable { access_key } => {
                    request(Method::PATCH, &["service-accounts", access_key], Some(status(false)))
                }
                S::Update { access_key, policy_file, remove_policy, expires_at, no_expiry } => {
                    let mut body = json!({});
                    if let Some(file) = policy_file {
                        body["policy"] = read_policy(file)?;
                    } else if *remove_policy {
                        body["policy"] = Value::Null;
                    }
                    if let Some(at) = expires_at {
                        body["expiresAt"] = Value::String(at.clone());
                    } else if *no_expiry {
                        body["expiresAt"] = Value::Null;
                    }
                    request(Method::PATCH, &["service-accounts", access_key], Some(body))
                }
                S::Delete { access_key } => request(Method::DELETE, &["service-accounts", access_key], None),
            },
            Self::Kms(KmsCommand::Rewrap { after, limit }) => rewrap_request(after.as_deref(), *limit),
            Self::Policy(command) => match command {
                P::Create { name, file } => {
                    let text = std::fs::read(file).map_err(|e| format!("read {}: {e}", file.display()))?;
                    let mut created = request(Method::PUT, &["policies", name], None);
                    created.body = Some(text);
                    created
                }
                P::List => request(Method::GET, &["policies"], None),
                P::Get { name } => request(Method::GET, &["policies", name], None),
                P::Delete { name } => request(Method::DELETE, &["policies", name], None),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_requests_with_encoded_segments() {
        let attach = Resource::User(UserCommand::AttachPolicy { name: "a@b".into(), policy: "p-1/x".into() });
        let request = attach.request().unwrap();
        assert_eq!(request.method, Method::PUT);
        assert_eq!(request.path, "/users/a%40b/policies/p-1%2Fx", "unreserved characters stay as they are");
        let update = Resource::ServiceAccount(ServiceAccountCommand::Update {
            access_key: "K".into(),
            policy_file: None,
            remove_policy: true,
            expires_at: None,
            no_expiry: true,
        });
        let body: Value = serde_json::from_slice(&update.request().unwrap().body.unwrap()).unwrap();
        assert_eq!(body, json!({ "policy": null, "expiresAt": null }));
        let page = PageArgs { limit: Some(2), after: Some("a@b".into()) };
        let list = Resource::ServiceAccount(ServiceAccountCommand::List { parent: Some("u".into()), page });
        assert_eq!(list.request().unwrap().path, "/service-accounts?parent=u&limit=2&after=a%40b");
        let list = Resource::User(UserCommand::List { page: PageArgs { limit: None, after: None } });
        assert_eq!(list.request().unwrap().path, "/users");
        let secret = Resource::User(UserCommand::Create {
            name: "u".into(),
            secret_key: Some("Chosen-Secret-0123".parse().unwrap()),
            policies: Vec::new(),
        });
        let printed = format!("{secret:?} {:?}", secret.request().unwrap());
        assert!(!printed.contains("Chosen-Secret"), "{printed}");
    }
}
