//! Policy documents as AWS IAM writes them (identity policies and bucket policies): parsing
//! with positioned errors, condition operators, and the decision of whether a request is
//! allowed. Pure: the caller supplies the request's action, resource, caller and condition
//! keys.

#![forbid(unsafe_code)]

mod builtin;
mod cidr;
mod condition;
mod context;
mod document;
mod evaluate;
mod pattern;

pub use builtin::{builtin, builtin_document, BUILTIN_NAMES};
pub use context::{normalize_key, Caller, Context};
pub use document::{Effect, Kind, MalformedPolicy, Policy, Position, Statement};
pub use evaluate::{decide, evaluate, Request, Verdict};
