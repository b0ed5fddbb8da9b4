//! From a verified web identity token's claims to policy names: the policy claim (a string, a
//! comma-separated list or a JSON array), and Keycloak roles and groups mapped by configuration;
//! and from claims to the `jwt:<claim>` condition keys of policies.

use policy::Context;
use serde_json::{Map, Value};

/// Claims copied into a session, for policy variables (`${jwt:sub}`) and conditions.
const KEPT_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "azp",
    "client_id",
    "preferred_username",
    "email",
    "groups",
    "realm_access",
    "resource_access",
    "scope",
];

/// How claims become policy names.
#[derive(Debug, Clone, Default)]
pub struct ClaimMapping {
    /// The claim that names policies directly (`policy` by default).
    pub policy_claim: String,
    /// Keycloak realm roles, client roles (of the configured clients) and groups, each with
    /// the policy it grants.
    pub role_policies: Vec<(String, String)>,
    /// The configured client ids, whose `resource_access` roles count.
    pub client_ids: Vec<String>,
}

impl ClaimMapping {
    /// Parses `ROLE=POLICY` mappings (`--oidc-role-policy`).
    pub fn parse_role_policies(pairs: &[String]) -> Result<Vec<(String, String)>, String> {
        pairs
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((role, policy)) => Self::role_policy(role, policy),
                None => Err(format!("--oidc-role-policy {pair:?}: expected ROLE=POLICY")),
            })
            .collect()
    }

    /// One role (or group) and the policy it grants, trimmed; neither may be empty.
    pub fn role_policy(role: &str, policy: &str) -> Result<(String, String), String> {
        let (role, policy) = (role.trim(), policy.trim());
        if role.is_empty() || policy.is_empty() {
            return Err(format!("role policy {role:?} = {policy:?}: neither the role nor the policy may be empty"));
        }
        Ok((role.to_owned(), policy.to_owned()))
    }

    /// The policy names the claims grant, each once, in the order found.
    pub fn policies(&self, claims: &Map<String, Value>) -> Vec<String> {
        let mut policies = Vec::new();
        let mut add = |name: &str| {
            if !name.is_empty() && !policies.iter().any(|p| p == name) {
                policies.push(name.to_owned());
            }
        };
        for name in strings(claims.get(&self.policy_claim)) {
            name.split(',').map(str::trim).for_each(&mut add);
        }
        let granted = self.roles_and_groups(claims);
        for (role, policy) in &self.role_policies {
            if granted.iter().any(|g| g == role) {
                add(policy);
            }
        }
        policies
    }

    /// Realm roles, the configured clients' roles, and groups (with and without Keycloak's
    /// leading `/`).
    fn roles_and_groups<'a>(&self, claims: &'a Map<String, Value>) -> Vec<&'a str> {
        let mut names: Vec<&str> = strings(claims.get("realm_access").and_then(|r| r.get("roles")));
        let clients = claims.get("resource_access");
        for client in &self.client_ids {
            names.extend(strings(clients.and_then(|c| c.get(client)).and_then(|c| c.get("roles"))));
        }
        for group in strings(claims.get("groups")) {
            names.push(group);
            if let Some(bare) = group.strip_prefix('/') {
                names.push(bare);
            }
        }
        names
    }

    /// The claims a session keeps: [`KEPT_CLAIMS`] and the policy claim.
    pub fn kept_claims(&self, claims: &Map<String, Value>) -> Map<String, Value> {
        claims
            .iter()
            .filter(|(name, _)| KEPT_CLAIMS.contains(&name.as_str()) || **name == self.policy_claim)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// A token's claims as `jwt:<claim>` condition keys (strings, numbers and booleans; an array
/// as several values; an object's members as `jwt:<claim>.<member>`, so that Keycloak's
/// `realm_access.roles` and `resource_access.<client>.roles` can be tested): for trust
/// policies and for a session's requests.
pub(crate) fn claim_keys(context: &mut Context, claims: &Map<String, Value>) {
    for (claim, value) in claims {
        insert_claim(context, &format!("jwt:{claim}"), value, 0);
    }
}

/// How deep objects in claims are followed.
const MAX_CLAIM_DEPTH: usize = 3;

fn insert_claim(context: &mut Context, key: &str, value: &Value, depth: usize) {
    match value {
        Value::Object(members) if depth < MAX_CLAIM_DEPTH => {
            // A member name with a `.` could pose as a nested path (`a.b` in `x` as `x.a` > `b`).
            for (member, value) in members.iter().filter(|(member, _)| !member.contains('.')) {
                insert_claim(context, &format!("{key}.{member}"), value, depth + 1);
            }
        }
        other => {
            for scalar in scalars(other) {
                context.insert(key, scalar);
            }
        }
    }
}

/// A claim's values: itself if scalar, its scalar items if an array.
pub(crate) fn scalars(value: &Value) -> Vec<String> {
    let scalar = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// A claim that is a string or an array of strings, as strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            policy_claim: "policy".into(),
            role_policies: ClaimMapping::parse_role_policies(&[
                "s3-writers=readwrite".into(),
                "auditors=readonly".into(),
                "ops=diagnostics".into(),
            ])
            .unwrap(),
            client_ids: vec!["sovereign-s3".into()],
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_policy_claim_is_a_string_a_comma_list_or_an_array() {
        let m = mapping();
        assert_eq!(m.policies(&claims(json!({"policy": "readonly"}))), ["readonly"]);
        assert_eq!(m.policies(&claims(json!({"policy": "readonly, writeonly,"}))), ["readonly", "writeonly"]);
        assert_eq!(m.policies(&claims(json!({"policy": ["a", "b,c", "a"]}))), ["a", "b", "c"]);
        assert!(m.policies(&claims(json!({"policy": 3}))).is_empty());
    }

    #[test]
    fn keycloak_roles_and_groups_map_to_policies() {
        let m = mapping();
        let c = claims(json!({
            "realm_access": {"roles": ["offline_access", "s3-writers"]},
            "resource_access": {"sovereign-s3": {"roles": ["auditors"]}, "other": {"roles": ["ops"]}},
            "groups": ["/ops"],
        }));
        assert_eq!(m.policies(&c), ["readwrite", "readonly", "diagnostics"]);
        assert!(m.policies(&claims(json!({"resource_access": {"other": {"roles": ["s3-writers"]}}}))).is_empty());
    }

    #[test]
    fn bad_mappings_are_refused_and_kept_claims_are_selected() {
        assert!(ClaimMapping::parse_role_policies(&["noequals".into()]).is_err());
        assert!(ClaimMapping::parse_role_policies(&["=x".into()]).is_err());
        let kept = mapping().kept_claims(&claims(json!({"sub": "a", "policy": "p", "nonce": "n"})));
        assert_eq!(kept.len(), 2);
    }
}
