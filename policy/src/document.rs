//! Policy documents: the AWS IAM JSON grammar (Version, Id, Statement as object or array,
//! Sid, Effect, Principal/NotPrincipal, Action/NotAction, Resource/NotResource, Condition),
//! parsed into statements ready to evaluate, or refused with a positioned MalformedPolicy.

use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::pattern::{Pattern, Syntax};

/// The policy language versions AWS defines; variables exist only in the newer one.
const VERSION_CURRENT: &str = "2012-10-17";
const VERSION_OLD: &str = "2008-10-17";

/// The ARN prefix of S3 buckets and objects.
pub(crate) const S3_ARN_PREFIX: &str = "arn:aws:s3:::";

/// Why a policy document was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({position})")]
pub struct MalformedPolicy {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub position: Position,
}

/// Where in a document an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// In the text, for documents that are not JSON (1-based, as serde_json counts).
    Text {
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// At an element, as a JSON path such as `Statement[1].Condition.StringEquals`.
    Path(String),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Text { line, column } => write!(f, "at line {line}, column {column}"),
            Position::Path(path) if path.is_empty() => write!(f, "at the document"),
            Position::Path(path) => write!(f, "at {path}"),
        }
    }
}

/// Which kind of policy a document is, which decides what it must and must not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// Attached to an identity: no Principal; a statement without Resource applies to every
    /// resource (as MinIO's built-in `consoleAdmin` has it).
    Identity,
    /// The policy of the named bucket: every statement has a Principal and a Resource, and
    /// every resource is that bucket or its objects.
    Bucket(&'a str),
    /// A role's trust policy: who may assume the role. Every statement has a Principal, which
    /// names identity providers as `{"Federated": ...}` (or is `"*"`), and no Resource (the
    /// role is the resource).
    Trust,
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants what the statement matches, unless a Deny also matches.
    Allow,
    /// Refuses what the statement matches, whatever else allows it.
    Deny,
}

/// Principal or NotPrincipal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Principals {
    /// NotPrincipal: everyone except those named.
    pub negated: bool,
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    pub everyone: bool,
    /// The principal ARNs named.
    pub named: Vec<String>,
}

/// A list of patterns, or everything except them (NotAction, NotResource).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Patterns {
    pub negated: bool,
    pub patterns: Vec<Pattern>,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Sid, if any.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    pub(crate) principals: Option<Principals>,
    pub(crate) actions: Patterns,
    /// None: every resource (identity policies only).
    pub(crate) resources: Option<Patterns>,
    pub(crate) conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The Version element (`2008-10-17` when absent, as AWS reads it).
    pub version: String,
    /// The Id element, if any.
    pub id: Option<String>,
    /// The statements.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses `text` as a policy of `kind`.
    pub fn parse(text: &str, kind: Kind<'_>) -> Result<Self, MalformedPolicy> {
        let value: Value = serde_json::from_str(text).map_err(|e| MalformedPolicy {
            message: format!("Policies must be valid JSON: {e}"),
            position: Position::Text { line: e.line(), column: e.column() },
        })?;
        Parser { kind, variables: true }.policy(&value)
    }

    /// Whether the policy allows some action to everyone without a condition that narrows
    /// who (as GetBucketPolicyStatus's IsPublic reports).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principals.as_ref().is_some_and(|p| p.everyone != p.negated)
                && !s.conditions.iter().any(Condition::limits_principals)
        })
    }

    /// The policy as it applies to the actions of one service (`prefix`, such as `admin:`): its
    /// Deny statements whole, and its Allow statements with only the Action patterns that name
    /// that service by their literal prefix. An Allow by `*`, by `s3:*` or by NotAction then
    /// grants nothing of that service: administration is granted only by name.
    pub fn restricted_to_service(&self, prefix: &str) -> Policy {
        let restrict = |s: &Statement| -> Option<Statement> {
            if s.effect == Effect::Deny {
                return Some(s.clone());
            }
            if s.actions.negated {
                return None;
            }
            let patterns: Vec<Pattern> =
                s.actions.patterns.iter().filter(|p| p.has_literal_prefix(prefix)).cloned().collect();
            (!patterns.is_empty()).then(|| Statement { actions: Patterns { negated: false, patterns }, ..s.clone() })
        };
        Policy {
            version: self.version.clone(),
            id: self.id.clone(),
            statements: self.statements.iter().filter_map(restrict).collect(),
        }
    }

    /// Whether some condition names a key that starts with `prefix` (normalized, for example
    /// `s3:existingobjecttag/`), so that callers fetch what such keys need only when asked.
    pub fn has_condition_on(&self, prefix: &str) -> bool {
        self.statements.iter().flat_map(|s| s.conditions.iter()).any(|c| c.key().starts_with(prefix))
    }

    /// The principals the policy's Principal and NotPrincipal elements name (ARNs, or identity
    /// providers in a trust policy), each once, without `"*"`.
    pub fn principal_names(&self) -> Vec<&str> {
        let principals = self.statements.iter().filter_map(|s| s.principals.as_ref());
        let mut names: Vec<&str> =
            principals.flat_map(|p| p.named.iter().map(String::as_str)).filter(|n| *n != "*").collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every condition key the policy's conditions and variables name (normalized).
    pub fn condition_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for statement in &self.statements {
            keys.extend(statement.conditions.iter().map(|c| c.key().to_owned()));
            let resources = statement.resources.iter().flat_map(|r| r.patterns.iter());
            keys.extend(resources.flat_map(|p| p.variables().map(str::to_owned)));
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Walks a JSON document, keeping the path for error positions.
struct Parser<'a> {
    kind: Kind<'a>,
    variables: bool,
}

fn malformed(message: impl Into<String>, path: &str) -> MalformedPolicy {
    MalformedPolicy { message: message.into(), position: Position::Path(path.to_owned()) }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn object<'v>(value: &'v Value, path: &str, what: &str) -> Result<&'v Map<String, Value>, MalformedPolicy> {
    value.as_object().ok_or_else(|| malformed(format!("{what} must be a JSON object"), path))
}

/// A string or a non-empty array of strings.
fn strings(value: &Value, path: &str) -> Result<Vec<String>, MalformedPolicy> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| malformed("Expected a string", &format!("{path}[{i}]")))
            })
            .collect(),
        Value::Array(_) => Err(malformed("Expected a non-empty list", path)),
        _ => Err(malformed("Expected a string or a list of strings", path)),
    }
}

/// A condition value: strings, numbers and booleans, alone or in a non-empty array.
fn scalars(value: &Value, path: &str) -> Result<Vec<String>, MalformedPolicy> {
    let scalar = |v: &Value, path: &str| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(malformed("Condition values must be strings, numbers or booleans", path)),
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(malformed("Expected a non-empty list", path)),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| scalar(v, &format!("{path}[{i}]"))).collect(),
        v => Ok(vec![scalar(v, path)?]),
    }
}

/// `s3:GetObject`, `s3:Get*`, `admin:*` or `*`.
fn valid_action(action: &str) -> bool {
    if action == "*" {
        return true;
    }
    let Some((service, name)) = action.split_once(':') else { return false };
    let service_ok = !service.is_empty() && service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?');
    service_ok && name_ok
}

impl Parser<'_> {
    fn policy(&mut self, value: &Value) -> Result<Policy, MalformedPolicy> {
        let fields = object(value, "", "The policy")?;
        for key in fields.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("Unknown field '{key}'"), key));
            }
        }
        let version = match fields.get("Version") {
            None => VERSION_OLD.to_owned(),
            Some(Value::String(v)) if v == VERSION_CURRENT || v == VERSION_OLD => v.clone(),
            Some(_) => return Err(malformed("The policy version must be 2012-10-17 or 2008-10-17", "Version")),
        };
        self.variables = version == VERSION_CURRENT;
        let id = match fields.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(malformed("Id must be a string", "Id")),
        };
        let statements = match fields.get("Statement") {
            None => return Err(malformed("Missing required field Statement", "")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(malformed("Statement must not be empty", "Statement"))
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.statement(item, &format!("Statement[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(item) => vec![self.statement(item, "Statement")?],
        };
        Ok(Policy { version, id, statements })
    }

    fn statement(&self, value: &Value, path: &str) -> Result<Statement, MalformedPolicy> {
        let fields = object(value, path, "A statement")?;
        for key in fields.keys() {
            let known = matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Principal"
                    | "NotPrincipal"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            );
            if !known {
                return Err(malformed(format!("Unknown field '{key}'"), &join(path, key)));
            }
        }
        let sid = match fields.get("Sid") {
            None => None,
            Some(Value::String(sid)) => Some(sid.clone()),
            Some(_) => return Err(malformed("Sid must be a string", &join(path, "Sid"))),
        };
        let effect = match fields.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(_) => return Err(malformed("Effect must be Allow or Deny", &join(path, "Effect"))),
            None => return Err(malformed("Missing required field Effect", path)),
        };
        let principals = self.principals(fields, path)?;
        if self.kind == Kind::Trust && effect == Effect::Allow && principals.as_ref().is_some_and(|p| p.everyone) {
            return Err(malformed(
                "An Allow of a trust policy must name the identity providers it trusts, not \"*\"",
                &join(path, "Principal"),
            ));
        }
        let actions = self.actions(fields, path)?;
        let resources = self.resources(fields, path)?;
        let conditions = match fields.get("Condition") {
            None => Vec::new(),
            Some(value) => self.conditions(value, &join(path, "Condition"))?,
        };
        Ok(Statement { sid, effect, principals, actions, resources, conditions })
    }

    /// One of two mutually exclusive fields (`Action`/`NotAction`...): which, and its value.
    fn either<'v>(
        fields: &'v Map<String, Value>,
        path: &str,
        field: &str,
        negated: &str,
    ) -> Result<Option<(bool, &'v Value, String)>, MalformedPolicy> {
        match (fields.get(field), fields.get(negated)) {
            (Some(_), Some(_)) => Err(malformed(format!("A statement cannot have both {field} and {negated}"), path)),
            (Some(v), None) => Ok(Some((false, v, join(path, field)))),
            (None, Some(v)) => Ok(Some((true, v, join(path, negated)))),
            (None, None) => Ok(None),
        }
    }

    fn principals(&self, fields: &Map<String, Value>, path: &str) -> Result<Option<Principals>, MalformedPolicy> {
        let found = Self::either(fields, path, "Principal", "NotPrincipal")?;
        let Some((negated, value, path)) = found else {
            return match self.kind {
                Kind::Bucket(_) | Kind::Trust => Err(malformed("Missing required field Principal", path)),
                Kind::Identity => Ok(None),
            };
        };
        if self.kind == Kind::Identity {
            return Err(malformed("Policy document should not specify a principal", &path));
        }
        if self.kind == Kind::Trust && negated {
            return Err(malformed("NotPrincipal is not allowed in a trust policy", &path));
        }
        // Bucket policies name AWS principals (ARNs); trust policies name identity providers
        // (their issuer URL or an `oidc-provider` ARN).
        let (field, valid): (&str, fn(&str) -> bool) = match self.kind {
            Kind::Trust => {
                ("Federated", |n| n.starts_with("arn:") || n.starts_with("https://") || n.starts_with("http://"))
            }
            _ => ("AWS", |n| n.starts_with("arn:")),
        };
        let named = match value {
            Value::String(s) if s == "*" => vec!["*".to_owned()],
            Value::Object(map) => {
                if let Some(other) = map.keys().find(|k| k.as_str() != field) {
                    return Err(malformed("Invalid principal in policy", &join(&path, other)));
                }
                let listed = map.get(field).ok_or_else(|| malformed("Invalid principal in policy", &path))?;
                strings(listed, &join(&path, field))?
            }
            _ => return Err(malformed("Invalid principal in policy", &path)),
        };
        if let Some(bad) = named.iter().find(|n| n.as_str() != "*" && !valid(n)) {
            return Err(malformed(format!("Invalid principal in policy: '{bad}'"), &path));
        }
        let everyone = named.iter().any(|n| n == "*");
        Ok(Some(Principals { negated, everyone, named }))
    }

    fn actions(&self, fields: &Map<String, Value>, path: &str) -> Result<Patterns, MalformedPolicy> {
        let found = Self::either(fields, path, "Action", "NotAction")?;
        let (negated, value, path) = found.ok_or_else(|| malformed("Missing required field Action", path))?;
        let actions = strings(value, &path)?;
        if let Some(bad) = actions.iter().find(|a| !valid_action(a)) {
            return Err(malformed(format!("Policy has invalid action: '{bad}'"), &path));
        }
        let syntax = Syntax { wildcards: true, variables: false };
        Ok(Patterns { negated, patterns: actions.iter().map(|a| Pattern::parse(a, syntax)).collect() })
    }

    fn resources(&self, fields: &Map<String, Value>, path: &str) -> Result<Option<Patterns>, MalformedPolicy> {
        let found = Self::either(fields, path, "Resource", "NotResource")?;
        let Some((negated, value, path)) = found else {
            return match self.kind {
                Kind::Bucket(_) => Err(malformed("Missing required field Resource", path)),
                Kind::Identity | Kind::Trust => Ok(None),
            };
        };
        if self.kind == Kind::Trust {
            return Err(malformed("Has prohibited field Resource", &path));
        }
        let resources = strings(value, &path)?;
        for resource in &resources {
            let valid = match self.kind {
                Kind::Bucket(bucket) => in_bucket(resource, bucket),
                Kind::Identity | Kind::Trust => resource == "*" || resource.starts_with("arn:"),
            };
            if !valid {
                return Err(malformed(format!("Policy has invalid resource: '{resource}'"), &path));
            }
        }
        let syntax = Syntax { wildcards: true, variables: self.variables };
        Ok(Some(Patterns { negated, patterns: resources.iter().map(|r| Pattern::parse(r, syntax)).collect() }))
    }

    fn conditions(&self, value: &Value, path: &str) -> Result<Vec<Condition>, MalformedPolicy> {
        let operators = object(value, path, "Condition")?;
        let mut conditions = Vec::new();
        for (operator, keys) in operators {
            let operator_path = join(path, operator);
            for (key, values) in object(keys, &operator_path, "A condition operator's value")? {
                let key_path = join(&operator_path, key);
                let values = scalars(values, &key_path)?;
                let condition = Condition::new(operator, key, &values, self.variables)
                    .map_err(|message| malformed(message, &key_path))?;
                conditions.push(condition);
            }
        }
        Ok(conditions)
    }
}

/// Whether `resource` is an ARN of `bucket` or of objects in it (the bucket part, before the
/// first `/`, may hold wildcards if they match the bucket's name).
fn in_bucket(resource: &str, bucket: &str) -> bool {
    let Some(rest) = resource.strip_prefix(S3_ARN_PREFIX) else { return false };
    let bucket_part = rest.split('/').next().unwrap_or(rest);
    let syntax = Syntax { wildcards: true, variables: false };
    !bucket_part.is_empty() && Pattern::parse(bucket_part, syntax).matches(bucket, &crate::Context::default(), false)
}
