//! HTTP: the route table, request parsing, and the mapping of results to responses. Used by
//! the Lambda binaries and by the local server alike.

mod handlers;
mod request;
mod response;
pub mod routes;

use std::time::Instant;

use lambda_http::{Body, Request, Response};

pub use response::error_response;
pub use routes::{Endpoint, Function, ROUTES};

use crate::app::App;
use crate::error::Error;

/// Largest request body accepted; every body of this API is far smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Serves one request. `only` restricts it to one function's routes (a Lambda binary);
/// the local server passes `None`. Logs method, path, status and time, never bodies or headers.
pub async fn handle(app: &App, request: Request, only: Option<Function>) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let result = match routes::resolve(&method, &path) {
        Ok(route) if only.is_none_or(|f| f == route.endpoint.function()) => {
            handlers::call(app, route, &request).await
        }
        Ok(_) => Err(Error::NotFound(format!("No route for {path}"))),
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| error_response(&e));
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
