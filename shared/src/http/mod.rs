//! HTTP: the endpoint table served through axum, the caller checks, request parsing and the
//! mapping of results to responses. The Lambda binaries and the local server run the same
//! [`service`]; a Lambda binary mounts only its own function's rows.
//!
//! A request flows: path normalised (trailing and leading doubled slashes) -> its id -> body
//! limit, trace -> the row's route -> the row's caller check -> its handler (one module per resource)
//! -> one operation -> a typed response, or an [`Error`](crate::Error) as `{"errors":[...]}`.

mod audits;
pub mod caller;
mod configuration;
mod credentials;
mod directory;
mod discovery;
pub mod endpoints;
mod health;
mod oauth;
mod portal;
mod request;
pub mod request_id;
mod response;
mod tokens;
mod vendors;
mod views;

use crate::domain::audit::Actor;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use axum::{Extension, Router};
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

pub use endpoints::{ENDPOINTS, Endpoint, Function};

use crate::app::App;
use crate::domain::portal::TokenAction;
use crate::error::{Error, Result};
use lambda_http::request::RequestContext;
use request::Call;

/// Largest request body accepted; every body of this API is far smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API, as [`service`] builds it.
pub type Service = NormalizePath<Router>;

/// The API as one service: every row of the table (`only` = `None`, the local server) or one
/// function's rows (a Lambda binary).
pub fn service(app: Arc<App>, only: Option<Function>) -> Service {
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let mut router = Router::new();
    for endpoint in ENDPOINTS
        .iter()
        .filter(|e| only.is_none_or(|f| f == e.function))
    {
        let Ok(filter) = MethodFilter::try_from(endpoint.method.clone()) else {
            continue; // every method of the table converts (tested below)
        };
        let app = Arc::clone(&app);
        let handler = move |uri: Uri,
                            headers: HeaderMap,
                            context: Option<Extension<RequestContext>>,
                            peer: Option<Extension<ConnectInfo<SocketAddr>>>,
                            body: Bytes| {
            let origin = request::Origin {
                headers,
                context: context.map(|Extension(context)| context),
                peer: peer.map(|Extension(ConnectInfo(peer))| peer.ip()),
            };
            serve(Arc::clone(&app), endpoint, uri, origin, body)
        };
        router = router.route(endpoint.path, on(filter, handler));
    }
    let router = router
        .fallback(|| async { StatusCode::NOT_FOUND })
        .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
        )
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        // So that every answer made below (router, body limit) gets the contract's shape.
        .layer(axum::middleware::map_response(response::contract_errors))
        // Outermost: every answer, whatever made it, names the request.
        .layer(axum::middleware::from_fn(request_id::stamp));
    // Outside the router, so that routing sees the normalised path.
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Runs the row's caller check, then its handler.
async fn serve(
    app: Arc<App>,
    endpoint: &'static Endpoint,
    uri: Uri,
    origin: request::Origin,
    body: Bytes,
) -> Response {
    let arrived = std::time::Instant::now();
    let answer = answer(app, endpoint, uri, origin, body).await;
    crate::metrics::request_answered(endpoint.function.binary(), arrived);
    answer
}

/// The row's answer to the request.
async fn answer(
    app: Arc<App>,
    endpoint: &'static Endpoint,
    uri: Uri,
    origin: request::Origin,
    body: Bytes,
) -> Response {
    // The request's segments where the row's path has `{id}` and `{key}` (routing matched
    // them already).
    let segment = |name: &str| {
        endpoint
            .path
            .split('/')
            .position(|segment| segment == name)
            .and_then(|at| uri.path().split('/').nth(at))
    };
    // As clients send them: percent-encoded (`:` and `@` may be in an id).
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let id = segment("{id}").map(decoded);
    let key = segment("{key}").map(decoded);
    let base = match request::public_base(&app, origin.context.as_ref()) {
        Ok(base) => base,
        Err(e) => return (endpoint.errors)(e),
    };
    let client = origin.client(app.trusts_forwarded_for());
    let call = Call {
        headers: origin.headers,
        base,
        client,
        id,
        key,
        query: uri.query().map(str::to_owned),
        body,
        actor: Actor::Anonymous,
    };
    // A request's deciding write is one atomic store call and what follows it (a cascade) only
    // deletes what no longer works, so a request cut short leaves nothing half-done.
    let budget = app.request_budget();
    match tokio::time::timeout(budget, dispatch(app, endpoint, call)).await {
        Ok(answered) => answered.unwrap_or_else(endpoint.errors),
        Err(_) => (endpoint.errors)(Error::unavailable(
            crate::error::Dependency::Budget,
            "the request ran out of its time budget",
        )),
    }
}

async fn dispatch(app: Arc<App>, endpoint: &'static Endpoint, call: Call) -> Result<Response> {
    // What a portal session does on a token-management row.
    let action = match endpoint.method {
        Method::GET => TokenAction::Read,
        Method::DELETE => TokenAction::Delete,
        _ => TokenAction::Write,
    };
    endpoint.handler.serve(app, call, action).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_table_is_routable() {
        for endpoint in ENDPOINTS {
            assert!(MethodFilter::try_from(endpoint.method.clone()).is_ok());
        }
    }
}
