//! What the service counts and times, each named once here with its labels and unit, and
//! recorded through the `metrics` facade. Nothing is kept until a process installs an exporter:
//! `m2m-local` serves Prometheus' text format at `/metrics` on `M2M_METRICS_LISTEN` (opt-in),
//! and each Lambda function writes CloudWatch Embedded Metric Format lines to stdout after each
//! invocation, under the namespace `M2M_METRICS_NAMESPACE` (see `crate::runtime`).
//!
//! Every label takes a bounded set of values (kinds, endpoints, reasons, dependencies): never
//! an id, so a metric's series stay few whatever the traffic.

use std::time::Instant;

use crate::domain::jwt::TokenType;
use crate::error::Dependency;

/// JWTs issued, by `kind` (`tenantApiToken`, `userApiToken`, `vendor`) and `endpoint`
/// (`exchange`, `oauthToken`, `refresh`, `vendorAuth`).
pub const JWTS_ISSUED: &str = "m2m_jwts_issued_total";
/// Uses of a credential refused, by `reason` (see [`Refused`]).
pub const REFUSALS: &str = "m2m_refusals_total";
/// 503 answers, by the `dependency` that failed (`dynamodb`, `kms`, or `budget`: the request
/// ran out of its time).
pub const UNAVAILABLE: &str = "m2m_unavailable_total";
/// Refresh tokens presented, by `outcome` (see [`Refresh`]).
pub const REFRESHES: &str = "m2m_refreshes_total";
/// Seconds from a request's arrival to its answer, by `endpoint` (its function's name).
pub const REQUEST_SECONDS: &str = "m2m_request_seconds";
/// Seconds one bcrypt check of a presented secret took.
pub const BCRYPT_SECONDS: &str = "m2m_bcrypt_seconds";
/// Seconds one signature (of a JWT, a list, a refresh key) took from the signer.
pub const SIGNING_SECONDS: &str = "m2m_signing_seconds";

/// Every metric, for exporters to describe: its name, whether it is a histogram (else a
/// counter), and what it says.
pub const ALL: [(&str, bool, &str); 7] = [
    (JWTS_ISSUED, false, "JWTs issued, by kind and endpoint"),
    (REFUSALS, false, "uses of a credential refused, by reason"),
    (
        UNAVAILABLE,
        false,
        "503 answers, by the dependency that failed",
    ),
    (REFRESHES, false, "refresh tokens presented, by outcome"),
    (
        REQUEST_SECONDS,
        true,
        "seconds to answer a request, by endpoint",
    ),
    (BCRYPT_SECONDS, true, "seconds of one bcrypt check"),
    (SIGNING_SECONDS, true, "seconds of one signature"),
];

/// Why the use of a credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// An unknown clientId, a wrong secret or one no longer live, an expired token.
    Credentials,
    /// From outside the token's allowed addresses.
    AllowList,
    /// Beyond the token's JWTs per minute.
    RateLimit,
    /// Its kind of token, or API tokens, switched off by the vendor.
    Disabled,
    /// More credential checks waiting than the process admits.
    Admission,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::AllowList => "allowList",
            Self::RateLimit => "rateLimit",
            Self::Disabled => "disabled",
            Self::Admission => "admission",
        }
    }
}

/// What became of a refresh token presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// A new pair was issued.
    Renewed,
    /// Forged, expired, of an ended token or secret, or beyond the newest hundred.
    Refused,
    /// Spent already: a replay, or two uses at once.
    Replayed,
    /// Spent, then given back: no pair could be made (a limit, a dependency down).
    Failed,
}

impl Refresh {
    fn label(self) -> &'static str {
        match self {
            Self::Renewed => "renewed",
            Self::Refused => "refused",
            Self::Replayed => "replayed",
            Self::Failed => "failed",
        }
    }
}

pub fn jwt_issued(kind: TokenType, endpoint: &'static str) {
    metrics::counter!(JWTS_ISSUED, "kind" => kind.name(), "endpoint" => endpoint).increment(1);
}

pub fn refused(why: Refused) {
    metrics::counter!(REFUSALS, "reason" => why.label()).increment(1);
}

pub fn unavailable(dependency: Dependency) {
    metrics::counter!(UNAVAILABLE, "dependency" => dependency.label()).increment(1);
}

pub fn refresh(outcome: Refresh) {
    metrics::counter!(REFRESHES, "outcome" => outcome.label()).increment(1);
}

pub fn request_answered(endpoint: &'static str, since: Instant) {
    metrics::histogram!(REQUEST_SECONDS, "endpoint" => endpoint).record(since.elapsed());
}

/// Runs `work`, recording its time in the histogram `name`.
pub async fn timed<T>(name: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let done = work.await;
    metrics::histogram!(name).record(started.elapsed());
    done
}

/// Describes every metric to the installed exporter (units, help texts).
pub fn describe() {
    for (name, histogram, help) in ALL {
        if histogram {
            metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
        } else {
            metrics::describe_counter!(name, metrics::Unit::Count, help);
        }
    }
}

/// The buckets of every histogram in Prometheus' format, in seconds: from a cached exchange
/// (under a millisecond) to a request's whole budget.
pub const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
