//! The end-to-end suite, one binary: the API over HTTP on the embedded store and on DynamoDB +
//! KMS (moto), the Lambda entry points with API Gateway and SQS events, the local server's
//! binaries, the template, and real clients (Frontegg's SDKs, PyJWT, m2m-verify).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use m2m_tests as support;

mod admission;
mod allowed_ips;
mod audit_stream;
mod audits;
mod aws_calls;
mod backup;
mod branding;
mod cascades;
mod directory;
mod faults;
mod federation;
mod flow;
mod frontegg_paths;
mod frontegg_sdks;
mod fuzz;
mod gateway_events;
mod integrity;
mod key_rotation;
mod local_server;
mod logs;
mod metrics;
mod oauth;
mod ownership;
mod portal;
mod portal_browser;
mod provisioning;
mod rate_limits;
mod revocations;
mod seams;
mod secret_rotation;
mod signing_modes;
mod standard_clients;
mod store_contract;
mod strict_bodies;
mod template;
mod typed_clients;
mod upgrades;
mod usage;
mod vendor_credentials;
mod verifier;
