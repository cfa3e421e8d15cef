//! Every request's id: API Gateway's (`requestContext.requestId`) on Lambda, else the Lambda
//! invocation's, else one made here (the local server). It is a field of the request's trace
//! span, so every log line of the request carries it, and every answer, errors included,
//! returns it in `x-request-id`: a user's report names the log lines to read.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;

/// The answer's header that carries the id.
pub const HEADER: &str = "x-request-id";

/// A request's id, as its span and its answer carry it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The id AWS gave the request, if it came through AWS.
fn from_aws(request: &Request) -> Option<String> {
    let gateway = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    let invocation = || {
        (request.extensions())
            .get::<lambda_http::Context>()
            .map(|context| context.request_id.clone())
    };
    gateway.or_else(invocation).filter(|id| !id.is_empty())
}

/// Names the request (before its span is made), and its answer.
pub async fn stamp(mut request: Request, next: Next) -> Response {
    let id = from_aws(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let value = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The request's trace span: its method, path (never its query, which may name what a caller
/// searched for, and a segment holding a credential redacted) and id.
pub fn span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %crate::domain::secret::redacted_path(request.uri().path()),
        request_id = %id,
    )
}
