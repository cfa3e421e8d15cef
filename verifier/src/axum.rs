//! An axum layer: `route_layer(middleware::from_fn_with_state(verifier, authenticate))` puts
//! verified [`Claims`] into each request, and the [`Claims`] extractor hands them to handlers.
//! Requests without a valid `Authorization: Bearer` token get 401 `{"errors":[...]}`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier};

/// A refusal in the m2m-auth error shape.
pub struct Rejection(StatusCode, &'static str);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": [self.1] }).to_string();
        (self.0, [("content-type", "application/json")], body).into_response()
    }
}

/// Middleware: verifies the bearer token and stores its [`Claims`] in the request.
pub async fn authenticate(
    State(verifier): State<Arc<Verifier>>,
    mut request: Request,
    next: Next,
) -> Result<Response, Rejection> {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .ok_or(Rejection(StatusCode::UNAUTHORIZED, "Unauthorized"))?;
    let claims = verifier
        .verify(&token)
        .await
        .map_err(|_| Rejection(StatusCode::UNAUTHORIZED, "Unauthorized"))?;
    request.extensions_mut().insert(claims);
    Ok(next.run(request).await)
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims>()
            .cloned()
            .ok_or(Rejection(StatusCode::UNAUTHORIZED, "Unauthorized"))
    }
}

impl Claims {
    /// `Ok` when the token holds `key`, else a 403 to return from the handler.
    pub fn require_permission(&self, key: &str) -> Result<(), Rejection> {
        if self.has_permission(key) {
            Ok(())
        } else {
            Err(Rejection(StatusCode::FORBIDDEN, "Forbidden"))
        }
    }
}
