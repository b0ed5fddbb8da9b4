//! The Condition element: operators (String*, Numeric*, Date*, Bool, IpAddress, Null, Arn*),
//! their `IfExists` suffix and `ForAnyValue:`/`ForAllValues:` qualifiers, checked against the
//! request's condition keys.

use std::net::IpAddr;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::cidr::Cidr;
use crate::context::{normalize_key, Context};
use crate::pattern::{Pattern, Syntax};

/// How an operator compares a request value with the condition's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Order),
    Date(Order),
    Bool,
    IpAddress,
    Null,
    ArnLike,
}

/// The comparison of the Numeric and Date operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Order {
    fn holds(self, request: f64, condition: f64) -> bool {
        match self {
            Order::Equals => request == condition,
            Order::LessThan => request < condition,
            Order::LessThanEquals => request <= condition,
            Order::GreaterThan => request > condition,
            Order::GreaterThanEquals => request >= condition,
        }
    }
}

/// The operators, by name: what they test and whether the result is negated.
const OPERATORS: &[(&str, Test, bool)] = &[
    ("StringEquals", Test::StringEquals, false),
    ("StringNotEquals", Test::StringEquals, true),
    ("StringEqualsIgnoreCase", Test::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Test::StringEqualsIgnoreCase, true),
    ("StringLike", Test::StringLike, false),
    ("StringNotLike", Test::StringLike, true),
    ("NumericEquals", Test::Numeric(Order::Equals), false),
    ("NumericNotEquals", Test::Numeric(Order::Equals), true),
    ("NumericLessThan", Test::Numeric(Order::LessThan), false),
    ("NumericLessThanEquals", Test::Numeric(Order::LessThanEquals), false),
    ("NumericGreaterThan", Test::Numeric(Order::GreaterThan), false),
    ("NumericGreaterThanEquals", Test::Numeric(Order::GreaterThanEquals), false),
    ("DateEquals", Test::Date(Order::Equals), false),
    ("DateNotEquals", Test::Date(Order::Equals), true),
    ("DateLessThan", Test::Date(Order::LessThan), false),
    ("DateLessThanEquals", Test::Date(Order::LessThanEquals), false),
    ("DateGreaterThan", Test::Date(Order::GreaterThan), false),
    ("DateGreaterThanEquals", Test::Date(Order::GreaterThanEquals), false),
    ("Bool", Test::Bool, false),
    ("IpAddress", Test::IpAddress, false),
    ("NotIpAddress", Test::IpAddress, true),
    ("Null", Test::Null, false),
    ("ArnEquals", Test::ArnLike, false),
    ("ArnNotEquals", Test::ArnLike, true),
    ("ArnLike", Test::ArnLike, false),
    ("ArnNotLike", Test::ArnLike, true),
];

/// How several values of one key are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    /// A key with one value (or any of several).
    Single,
    /// `ForAnyValue:`: at least one of the request's values passes.
    ForAnyValue,
    /// `ForAllValues:`: every value of the request passes (true when the key is absent).
    ForAllValues,
}

/// The condition's values, parsed for its operator when the policy is parsed.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Patterns(Vec<Pattern>),
    Numbers(Vec<f64>),
    /// Seconds since the Unix epoch.
    Dates(Vec<f64>),
    Bools(Vec<bool>),
    Ranges(Vec<Cidr>),
    /// Null: whether the key must be absent.
    Absent(bool),
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    test: Test,
    negated: bool,
    qualifier: Qualifier,
    if_exists: bool,
    key: String,
    values: Values,
}

impl Condition {
    /// Builds the condition `operator: { key: values }`; `values` are the JSON scalars as
    /// strings. Errors say what is wrong, for a MalformedPolicy.
    pub(crate) fn new(operator: &str, key: &str, values: &[String], variables: bool) -> Result<Self, String> {
        let (qualifier, name) = if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, rest)
        } else if let Some(rest) = operator.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, rest)
        } else {
            (Qualifier::Single, operator)
        };
        let (name, if_exists) = match name.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (name, false),
        };
        let &(_, test, negated) = OPERATORS
            .iter()
            .find(|(known, _, _)| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("Unknown condition operator '{operator}'"))?;
        if test == Test::Null && if_exists {
            return Err(format!("Condition operator '{operator}' cannot have IfExists"));
        }
        if key.is_empty() {
            return Err("Condition key must not be empty".to_owned());
        }
        if values.is_empty() {
            return Err(format!("Condition '{operator}' on '{key}' has no value"));
        }
        let values = parse_values(test, values, variables)
            .map_err(|value| format!("Invalid value '{value}' for condition operator '{operator}'"))?;
        Ok(Self { test, negated, qualifier, if_exists, key: normalize_key(key), values })
    }

    /// The condition key, normalized.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Whether the condition holds for the request with these condition keys.
    pub(crate) fn holds(&self, context: &Context) -> bool {
        let present = context.get(&self.key).filter(|values| !values.is_empty());
        if let Values::Absent(must_be_absent) = self.values {
            return present.is_none() == must_be_absent;
        }
        let Some(request_values) = present else {
            if self.if_exists {
                return true;
            }
            return match self.qualifier {
                Qualifier::ForAllValues => true,
                Qualifier::ForAnyValue => false,
                // AWS: a negated operator on a missing key holds.
                Qualifier::Single => self.negated,
            };
        };
        let passes = |value: &String| self.matches(value, context) != self.negated;
        match self.qualifier {
            Qualifier::ForAllValues => request_values.iter().all(passes),
            Qualifier::Single | Qualifier::ForAnyValue => request_values.iter().any(passes),
        }
    }

    /// Whether the condition limits who the statement applies to, for GetBucketPolicyStatus:
    /// a positive test on a key that names the caller or the network it calls from.
    pub(crate) fn limits_principals(&self) -> bool {
        const NARROWING_KEYS: &[&str] = &[
            "aws:sourceip",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourcearn",
            "aws:sourceaccount",
            "aws:principalarn",
            "aws:principalaccount",
            "aws:principalorgid",
            "aws:userid",
            "aws:username",
        ];
        if self.negated || !NARROWING_KEYS.contains(&self.key.as_str()) {
            return false;
        }
        match &self.values {
            Values::Ranges(ranges) => !ranges.iter().any(Cidr::is_everything),
            Values::Patterns(patterns) => !patterns.iter().any(Pattern::is_any),
            _ => true,
        }
    }

    /// The positive test of one request value against the condition's values (any of them).
    fn matches(&self, value: &str, context: &Context) -> bool {
        match &self.values {
            Values::Patterns(patterns) => {
                let fold_case = self.test == Test::StringEqualsIgnoreCase;
                patterns.iter().any(|p| p.matches(value, context, fold_case))
            }
            Values::Numbers(numbers) => {
                let Test::Numeric(order) = self.test else { return false };
                value.trim().parse::<f64>().is_ok_and(|v| numbers.iter().any(|n| order.holds(v, *n)))
            }
            Values::Dates(dates) => {
                let Test::Date(order) = self.test else { return false };
                parse_date(value).is_some_and(|v| dates.iter().any(|d| order.holds(v, *d)))
            }
            Values::Bools(bools) => parse_bool(value).is_some_and(|v| bools.contains(&v)),
            Values::Ranges(ranges) => {
                value.trim().parse::<IpAddr>().is_ok_and(|address| ranges.iter().any(|r| r.contains(address)))
            }
            Values::Absent(_) => false,
        }
    }
}

/// The values parsed for `test`; the offending value on error.
fn parse_values(test: Test, values: &[String], variables: bool) -> Result<Values, String> {
    fn each<T>(values: &[String], parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
        values.iter().map(|v| parse(v).ok_or_else(|| v.clone())).collect()
    }
    Ok(match test {
        Test::StringEquals | Test::StringEqualsIgnoreCase => {
            let syntax = Syntax { wildcards: false, variables };
            Values::Patterns(values.iter().map(|v| Pattern::parse(v, syntax)).collect())
        }
        Test::StringLike | Test::ArnLike => {
            let syntax = Syntax { wildcards: true, variables };
            Values::Patterns(values.iter().map(|v| Pattern::parse(v, syntax)).collect())
        }
        Test::Numeric(_) => Values::Numbers(each(values, |v| v.trim().parse::<f64>().ok().filter(|n| n.is_finite()))?),
        Test::Date(_) => Values::Dates(each(values, parse_date)?),
        Test::Bool => Values::Bools(each(values, parse_bool)?),
        Test::IpAddress => Values::Ranges(each(values, Cidr::parse)?),
        Test::Null => {
            let absent = each(values, parse_bool)?;
            match absent.as_slice() {
                [one] => Values::Absent(*one),
                _ => return Err(values.join(",")),
            }
        }
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Some(true),
        v if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time, a `YYYY-MM-DD` date (midnight UTC), or
/// an epoch number.
fn parse_date(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(at.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(day) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Some(day.midnight().assume_utc().unix_timestamp() as f64);
    }
    value.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(operator: &str, key: &str, values: &[&str]) -> Condition {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        Condition::new(operator, key, &values, true).unwrap()
    }

    fn context(pairs: &[(&str, &str)]) -> Context {
        let mut context = Context::default();
        for (k, v) in pairs {
            context.insert(k, *v);
        }
        context
    }

    fn holds(operator: &str, key: &str, values: &[&str], pairs: &[(&str, &str)]) -> bool {
        condition(operator, key, values).holds(&context(pairs))
    }

    #[test]
    fn string_operators() {
        let k = "s3:prefix";
        assert!(holds("StringEquals", k, &["a", "b"], &[(k, "b")]));
        assert!(!holds("StringEquals", k, &["a"], &[(k, "A")]));
        assert!(!holds("StringEquals", k, &["a*"], &[(k, "ab")]), "no wildcards in StringEquals");
        assert!(holds("StringNotEquals", k, &["a"], &[(k, "b")]));
        assert!(!holds("StringNotEquals", k, &["a", "b"], &[(k, "b")]));
        assert!(holds("StringEqualsIgnoreCase", k, &["abc"], &[(k, "ABC")]));
        assert!(!holds("StringNotEqualsIgnoreCase", k, &["abc"], &[(k, "ABC")]));
        assert!(holds("StringLike", k, &["home/*"], &[(k, "home/x")]));
        assert!(!holds("StringLike", k, &["home/?"], &[(k, "home/xy")]));
        assert!(holds("StringNotLike", k, &["home/*"], &[(k, "other")]));
        assert!(holds("StringLike", k, &["home/${aws:username}/*"], &[(k, "home/al/x"), ("aws:username", "al")]));
    }

    #[test]
    fn numeric_operators() {
        let k = "s3:max-keys";
        assert!(holds("NumericEquals", k, &["10"], &[(k, "10")]));
        assert!(holds("NumericNotEquals", k, &["10"], &[(k, "11")]));
        assert!(holds("NumericLessThan", k, &["10"], &[(k, "9")]));
        assert!(!holds("NumericLessThan", k, &["10"], &[(k, "10")]));
        assert!(holds("NumericLessThanEquals", k, &["10"], &[(k, "10")]));
        assert!(holds("NumericGreaterThan", k, &["10"], &[(k, "10.5")]));
        assert!(holds("NumericGreaterThanEquals", k, &["10"], &[(k, "10")]));
        assert!(!holds("NumericGreaterThan", k, &["10"], &[(k, "lots")]), "unparsable request value");
        assert!(Condition::new("NumericEquals", k, &["ten".into()], true).is_err());
    }

    #[test]
    fn date_operators() {
        let k = "aws:CurrentTime";
        let now = [(k, "2024-06-01T12:00:00Z")];
        assert!(holds("DateLessThan", k, &["2025-01-01T00:00:00Z"], &now));
        assert!(!holds("DateGreaterThan", k, &["2025-01-01"], &now));
        assert!(holds("DateGreaterThanEquals", k, &["2024-06-01T12:00:00+00:00"], &now));
        assert!(holds("DateLessThanEquals", k, &["2024-06-01T12:00:00Z"], &now));
        assert!(holds("DateEquals", k, &["1717243200"], &now), "epoch seconds");
        assert!(holds("DateNotEquals", k, &["2024-06-01"], &now));
        assert!(Condition::new("DateLessThan", k, &["yesterday".into()], true).is_err());
    }

    #[test]
    fn bool_ip_null_and_arn_operators() {
        assert!(holds("Bool", "aws:SecureTransport", &["true"], &[("aws:SecureTransport", "true")]));
        assert!(!holds("Bool", "aws:SecureTransport", &["true"], &[("aws:SecureTransport", "false")]));
        assert!(Condition::new("Bool", "aws:SecureTransport", &["yes".into()], true).is_err());
        let ip = "aws:SourceIp";
        assert!(holds("IpAddress", ip, &["10.0.0.0/8", "2001:db8::/32"], &[(ip, "2001:db8::5")]));
        assert!(!holds("IpAddress", ip, &["10.0.0.0/8"], &[(ip, "11.0.0.1")]));
        assert!(holds("NotIpAddress", ip, &["10.0.0.0/8"], &[(ip, "11.0.0.1")]));
        assert!(Condition::new("IpAddress", ip, &["10.0.0.0/40".into()], true).is_err());
        assert!(holds("Null", "s3:x-amz-acl", &["true"], &[]));
        assert!(!holds("Null", "s3:x-amz-acl", &["true"], &[("s3:x-amz-acl", "private")]));
        assert!(holds("Null", "s3:x-amz-acl", &["false"], &[("s3:x-amz-acl", "private")]));
        let arn = "aws:SourceArn";
        assert!(holds("ArnLike", arn, &["arn:aws:s3:::b*"], &[(arn, "arn:aws:s3:::bucket")]));
        assert!(holds("ArnEquals", arn, &["arn:aws:s3:::bucket"], &[(arn, "arn:aws:s3:::bucket")]));
        assert!(holds("ArnNotEquals", arn, &["arn:aws:s3:::other"], &[(arn, "arn:aws:s3:::bucket")]));
        assert!(!holds("ArnNotLike", arn, &["arn:aws:s3:::*"], &[(arn, "arn:aws:s3:::bucket")]));
    }

    #[test]
    fn missing_keys_if_exists_and_qualifiers() {
        let k = "s3:x-amz-server-side-encryption";
        assert!(!holds("StringEquals", k, &["AES256"], &[]), "a positive test on a missing key fails");
        assert!(holds("StringNotEquals", k, &["AES256"], &[]), "a negated test on a missing key holds");
        assert!(holds("StringEqualsIfExists", k, &["AES256"], &[]));
        assert!(!holds("StringEqualsIfExists", k, &["AES256"], &[(k, "aws:kms")]));
        let tags = "aws:TagKeys";
        let both = [(tags, "a"), (tags, "b")];
        assert!(holds("ForAllValues:StringEquals", tags, &["a", "b", "c"], &both));
        assert!(!holds("ForAllValues:StringEquals", tags, &["a"], &both));
        assert!(holds("ForAllValues:StringEquals", tags, &["a"], &[]), "vacuously true");
        assert!(holds("ForAnyValue:StringEquals", tags, &["b"], &both));
        assert!(!holds("ForAnyValue:StringEquals", tags, &["z"], &both));
        assert!(!holds("ForAnyValue:StringEquals", tags, &["z"], &[]));
        assert!(Condition::new("NullIfExists", k, &["true".into()], true).is_err());
        assert!(Condition::new("StringSortOf", k, &["x".into()], true).is_err());
        assert!(Condition::new("StringEquals", k, &[], true).is_err());
    }

    #[test]
    fn what_limits_principals() {
        assert!(condition("IpAddress", "aws:SourceIp", &["10.0.0.0/8"]).limits_principals());
        assert!(!condition("IpAddress", "aws:SourceIp", &["0.0.0.0/0"]).limits_principals());
        assert!(!condition("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"]).limits_principals());
        assert!(!condition("Bool", "aws:SecureTransport", &["true"]).limits_principals());
        assert!(condition("StringEquals", "aws:username", &["alice"]).limits_principals());
    }
}
