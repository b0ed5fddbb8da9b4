//! The S3 gateway of sovereign-s3 and the wiring of the `sovereign-s3` binary.

pub mod access;
pub mod acl;
pub mod admin;
pub mod admission;
pub mod authz;
pub mod checksum;
pub mod config;
pub mod config_file;
pub mod cors;
pub mod credentials;
pub mod error;
pub mod error_body;
pub mod frontend;
pub mod iam;
pub mod identity;
pub mod parse;
pub mod post_object;
pub mod principal;
pub mod request_checks;
pub mod s3;
pub mod server;
pub mod sigv2;
pub mod sse;
pub mod sts;
pub mod telemetry;
pub mod unsupported;
