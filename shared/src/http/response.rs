//! Responses: JSON bodies, and every error as `{"errors":[...]}` from this one place.

use axum::Json;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, Result};

/// A JSON answer with `status`.
pub fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    Ok((status, Json(body)).into_response())
}

/// `{}`: what deletions answer.
#[derive(Serialize)]
pub struct Done {}

pub fn done() -> Result<Response> {
    json(StatusCode::OK, &Done {})
}

/// `204 No Content`: what Frontegg's directory deletions answer.
pub fn no_content() -> Result<Response> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn status(error: &Error) -> StatusCode {
    match error {
        Error::BadRequest(_) | Error::InvalidScope(_) | Error::InvalidGrant(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Busy | Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Serialize)]
struct Errors {
    errors: [String; 1],
}

fn errors(status: StatusCode, message: String) -> Response {
    (status, Json(Errors { errors: [message] })).into_response()
}

/// The contract's error body. A 5xx is logged with its cause; the client gets a generic text.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // Seconds a client waits before trying again, where there is a time to name.
        let retry_after: Option<u64> = match &self {
            Error::Internal(cause) => {
                tracing::error!(cause = ?cause, "request failed");
                None
            }
            Error::Unavailable(dependency, cause) => {
                tracing::warn!(cause = ?cause, "a dependency failed");
                crate::metrics::unavailable(*dependency);
                Some(UNAVAILABLE_RETRY_AFTER)
            }
            Error::Busy => {
                crate::metrics::refused(crate::metrics::Refused::Admission);
                Some(BUSY_RETRY_AFTER)
            }
            Error::RateLimited(seconds) => Some(*seconds),
            _ => None,
        };
        let mut response = errors(status(&self), self.to_string());
        if let Some(seconds) = retry_after {
            let seconds = HeaderValue::from(seconds);
            response.headers_mut().insert(RETRY_AFTER, seconds);
        }
        response
    }
}

/// Seconds a client told "busy" waits before trying again.
const BUSY_RETRY_AFTER: u64 = 1;

/// Seconds a client told "unavailable" waits: long enough for a throttled or restarting
/// dependency, short enough for a CLI user.
const UNAVAILABLE_RETRY_AFTER: u64 = 2;

/// Gives the answers that the router and the tower-http layers make themselves (no route,
/// wrong method, body too large) the contract's error body.
pub async fn contract_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.is_success() || status == StatusCode::NOT_MODIFIED || is_json {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "No such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed.to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge.to_string(),
        other => other.canonical_reason().unwrap_or("Error").to_owned(),
    };
    // The new body's, and every other header of the answer it replaces (`Allow`, `nosniff`,
    // `no-store`, ...).
    let mut answer = errors(status, message);
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}
