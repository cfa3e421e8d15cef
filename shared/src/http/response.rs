//! Responses: JSON bodies, and every error as `{"errors":[...]}` from this one place.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::error::{Error, Result};

pub fn json(status: u16, body: &impl Serialize) -> Result<Response<Body>> {
    let bytes = serde_json::to_vec(body).map_err(Error::internal)?;
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header("cache-control", "no-store")
        .body(Body::from(bytes))
        .map_err(Error::internal)
}

/// The contract's error body. A 5xx is logged with its cause; the client gets a generic text.
pub fn error_response(error: &Error) -> Response<Body> {
    if let Error::Internal(cause) = error {
        tracing::error!(cause = ?cause, "request failed");
    }
    let body = serde_json::json!({ "errors": [error.to_string()] });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(error.status())
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}
