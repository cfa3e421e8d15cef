//! The one error type of the API. Every failure becomes `{"errors":[...]}` in `http::response`.

use std::fmt;

/// What went wrong, in the words a client may see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: bad JSON, wrong types, a missing header.
    #[error("{0}")]
    BadRequest(String),
    /// Credentials or a token were refused. One message for every cause, so nothing leaks.
    #[error("Unauthorized")]
    Unauthorized,
    /// The caller is known but may not do this (a portal session without the permission).
    #[error("{0}")]
    Forbidden(String),
    /// No such route, or no such resource visible to the caller.
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Request body too large")]
    PayloadTooLarge,
    /// A scope asks for a permission the token does not hold, or is malformed (OAuth's
    /// `invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// A workload's token was refused by an exchange (OAuth's `invalid_grant`): what did not
    /// hold, never the token.
    #[error("{0}")]
    InvalidGrant(String),
    /// Too much work is waiting (credential checks beyond their queue); retry after a moment.
    #[error("Too many requests; try again shortly")]
    Busy,
    /// This API token was issued as many JWTs this minute as the rate limit allows; retry
    /// after the seconds given.
    #[error("Too many requests for this token; try again in {0} s")]
    RateLimited(u64),
    /// A conflicting write (for example a duplicate id); the request may be retried.
    #[error("{0}")]
    Conflict(String),
    /// A dependency (DynamoDB, KMS) is unreachable, too slow or throttling, or the request ran
    /// out of time; nothing was half-done and the request may be retried. Logged with its cause.
    #[error("Service temporarily unavailable; try again shortly")]
    Unavailable(Dependency, Internal),
    /// A fault of ours or a misconfiguration. Logged with its cause; the client sees a generic text.
    #[error("Internal server error")]
    Internal(Internal),
}

/// What an [`Error::Unavailable`] waited on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    DynamoDb,
    Kms,
    /// Nothing answered wrong, but the request ran out of its time budget.
    Budget,
    /// The OpenID issuer a trust policy names (its discovery document or JWKS).
    Issuer,
}

impl Dependency {
    pub const ALL: [Self; 4] = [Self::DynamoDb, Self::Kms, Self::Budget, Self::Issuer];

    /// Its name in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::Kms => "kms",
            Self::Budget => "budget",
            Self::Issuer => "issuer",
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DynamoDb => "DynamoDB",
            Self::Kms => "KMS",
            Self::Budget => "the request's time budget",
            Self::Issuer => "the token's issuer",
        })
    }
}

/// The hidden cause of an [`Error::Internal`].
pub struct Internal(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error {
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Internal(cause.into()))
    }

    pub fn unavailable(
        dependency: Dependency,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable(dependency, Internal(cause.into()))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// 404 for the `what` named `id` (an excerpt of it: a path may be long).
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::NotFound(format!(
            "{what} {} not found",
            crate::domain::rules::excerpt(id)
        ))
    }
}

impl From<crate::domain::rules::Invalid> for Error {
    fn from(invalid: crate::domain::rules::Invalid) -> Self {
        Self::BadRequest(invalid.0)
    }
}

impl From<crate::domain::jwt::Refused> for Error {
    fn from(_: crate::domain::jwt::Refused) -> Self {
        Self::Unauthorized
    }
}

impl From<crate::domain::secret::HashFailed> for Error {
    fn from(failed: crate::domain::secret::HashFailed) -> Self {
        Self::internal(failed)
    }
}

/// A stored document of another kind than its record's: the store is not as written.
impl From<crate::domain::document::WrongKind> for Error {
    fn from(wrong: crate::domain::document::WrongKind) -> Self {
        Self::internal(wrong)
    }
}

impl From<crate::domain::jwt::NotRsa> for Error {
    fn from(not_rsa: crate::domain::jwt::NotRsa) -> Self {
        Self::internal(not_rsa)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
