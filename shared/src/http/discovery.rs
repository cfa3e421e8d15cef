//! Publication: the signing key as a JWKS, OpenID discovery and the OpenAPI document.

use std::sync::Arc;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::request::Call;
use super::response::json;
use crate::app::App;
use crate::domain::revocation::LIST_REFRESH_SECONDS;
use crate::error::{Error, Result};

/// The API's OpenAPI 3.1 description; a test holds it to the endpoint table.
pub const OPENAPI: &str = include_str!("../../openapi.json");

#[derive(Serialize)]
struct Jwks {
    keys: Vec<Value>,
}

/// `GET /.well-known/jwks.json`: the signing key, then any whose JWTs still verify.
pub async fn jwks(app: Arc<App>, _: Call) -> Result<Response> {
    let keys = app.published_keys().iter().map(|key| key.jwk()).collect();
    json(StatusCode::OK, &Jwks { keys })
}

/// `GET /.well-known/revocations`: the JWTs revoked before they expire, as a signed JWT
/// (`application/jwt`) whose `revoked` lists each token (`sub`) with the second before which
/// its JWTs are void; verify it with the JWKS. Cacheable for [`LIST_REFRESH_SECONDS`] (the
/// process serves it from memory as long), with an `ETag`: `304 Not Modified` to a client that
/// holds it already.
pub async fn revocations(app: Arc<App>, call: Call) -> Result<Response> {
    let list = app
        .credentials(&call.issuer(&app))
        .revocation_list()
        .await?;
    let held = call.optional_header(IF_NONE_MATCH.as_str())?;
    let mut response = if held.is_some_and(|tags| names(tags, &list.etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut fresh = (StatusCode::OK, list.jwt.clone()).into_response();
        let jwt = HeaderValue::from_static("application/jwt");
        fresh.headers_mut().insert(CONTENT_TYPE, jwt);
        fresh
    };
    let headers = response.headers_mut();
    let max_age = format!("public, max-age={LIST_REFRESH_SECONDS}");
    headers.insert(CACHE_CONTROL, max_age.parse().map_err(Error::internal)?);
    headers.insert(ETAG, list.etag.parse().map_err(Error::internal)?);
    Ok(response)
}

/// Whether an `If-None-Match` value names `etag` (`*` names any; weak tags compare by value).
fn names(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// `GET /openapi.json`.
pub async fn openapi(_: Arc<App>, _: Call) -> Result<Response> {
    let document: Value = serde_json::from_str(OPENAPI).map_err(Error::internal)?;
    json(StatusCode::OK, &document)
}

#[derive(Serialize)]
struct OpenIdConfiguration {
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    /// RFC 7662, for vendor APIs that prefer an online check.
    introspection_endpoint: String,
    /// The signed list of revoked JWTs (see `GET /.well-known/revocations`).
    revocations_uri: String,
    grant_types_supported: [&'static str; 1],
    response_types_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 2],
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery).
pub async fn openid_configuration(app: Arc<App>, call: Call) -> Result<Response> {
    json(StatusCode::OK, &metadata(&app, &call))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): the same metadata.
pub async fn oauth_authorization_server(app: Arc<App>, call: Call) -> Result<Response> {
    json(StatusCode::OK, &metadata(&app, &call))
}

fn metadata(app: &App, call: &Call) -> OpenIdConfiguration {
    let base = call.base_url();
    OpenIdConfiguration {
        issuer: call.issuer(app),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/oauth/token"),
        introspection_endpoint: format!("{base}/oauth/introspect"),
        revocations_uri: format!("{base}/.well-known/revocations"),
        grant_types_supported: ["client_credentials"],
        response_types_supported: ["token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    }
}
