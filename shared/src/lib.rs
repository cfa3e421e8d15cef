//! m2m-auth's shared crate: how a request flows.
//!
//! `http` (routes, parsing, responses) -> `operations` (use cases in groups that [`App`] builds
//! from only the ports each group uses) ->
//! `ports` (store, signer, clock) implemented by `adapters` (DynamoDB + KMS, or the embedded
//! store + a local key), over `domain` (ids, secrets, token records, claims). `config` reads
//! settings once; `runtime` starts a Lambda function or the local server.

pub mod adapters;
pub mod app;
pub mod audit_stream;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod machinery;
pub mod metrics;
pub mod operations;
pub mod ports;
pub mod provisioning;
pub mod runtime;

pub use app::App;
pub use error::{Error, Result};
