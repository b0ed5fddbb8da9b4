//! The decision: explicit Deny wins, then Allow, and a request nothing allows is denied. A
//! request is judged against the caller's identity policies and the bucket's policy together,
//! so an Allow in either grants (as AWS decides within one account).

use crate::context::{Caller, Context};
use crate::document::{Effect, Patterns, Policy, Principals, Statement};

/// One action on one resource, asked by a caller, with the request's condition keys.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The IAM action, such as `s3:GetObject`.
    pub action: &'a str,
    /// The resource ARN, such as `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// Who asks (matched by bucket policies' Principal).
    pub caller: &'a Caller,
    /// Condition keys and policy variables.
    pub context: &'a Context,
}

/// The outcome of judging a request against policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Some statement allows it and none denies it.
    Allowed,
    /// A statement denies it: nothing else (an ACL grant included) may allow it.
    ExplicitDeny,
    /// No statement speaks about it: denied unless something else (an ACL grant) allows it.
    NotAllowed,
}

/// Whether `request` is allowed by `identity` policies and the `bucket` policy: no statement
/// that applies denies it, and at least one allows it.
pub fn decide(identity: &[&Policy], bucket: Option<&Policy>, request: &Request<'_>) -> bool {
    evaluate(identity, bucket, request) == Verdict::Allowed
}

/// The verdict of `identity` policies and the `bucket` policy on `request`: explicit Deny
/// wins, then Allow.
pub fn evaluate(identity: &[&Policy], bucket: Option<&Policy>, request: &Request<'_>) -> Verdict {
    let identity_effects = identity.iter().flat_map(|p| p.statements.iter()).filter(|s| s.applies(request, false));
    let bucket_effects = bucket.into_iter().flat_map(|p| p.statements.iter()).filter(|s| s.applies(request, true));
    let mut verdict = Verdict::NotAllowed;
    for statement in identity_effects.chain(bucket_effects) {
        match statement.effect {
            Effect::Deny => return Verdict::ExplicitDeny,
            Effect::Allow => verdict = Verdict::Allowed,
        }
    }
    verdict
}

impl Statement {
    /// Whether the statement speaks about this request; `by_principal` for bucket policies,
    /// whose statements apply only to the callers their Principal names.
    fn applies(&self, request: &Request<'_>, by_principal: bool) -> bool {
        let principal_ok = !by_principal || self.principals.as_ref().is_some_and(|p| p.names(request.caller));
        principal_ok
            && self.actions.matches(request.action, request.context, true)
            && self.resources.as_ref().is_none_or(|r| r.matches(request.resource, request.context, false))
            && self.conditions.iter().all(|c| c.holds(request.context))
    }
}

impl Patterns {
    fn matches(&self, text: &str, context: &Context, fold_case: bool) -> bool {
        self.patterns.iter().any(|p| p.matches(text, context, fold_case)) != self.negated
    }
}

impl Principals {
    /// Whether the Principal (or NotPrincipal) element covers `caller`.
    fn names(&self, caller: &Caller) -> bool {
        let listed = self.everyone
            || match caller {
                Caller::Anonymous => false,
                Caller::Named(ids) => ids.iter().any(|id| self.named.iter().any(|n| n == id)),
            };
        listed != self.negated
    }
}
