//! `POST /oauth/token`: the client-credentials grant of OAuth 2.0 (RFC 6749 section 4.4), so
//! that any standard OAuth client can use an API token. The clientId and secret authenticate
//! the client, by HTTP Basic (`client_secret_basic`) or in the form (`client_secret_post`);
//! errors take the shape of section 5.2, not the contract's `{"errors": [...]}`. And
//! `POST /oauth/introspect` (RFC 7662) for the vendor's APIs.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;

use super::caller::Vendor;
use super::request::Call;
use crate::app::App;
use crate::domain::rules::excerpt;
use crate::error::{Error, Result};

const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    /// RFC 8693 section 2.2.1: in a token exchange's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// A section 5.2 error.
#[derive(Debug, Serialize)]
struct OAuthError {
    error: &'static str,
    error_description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    /// 401 with a Basic challenge for a refused client (sections 5.2 and RFC 7235), else 400.
    fn into_response(self) -> Response {
        let status = match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, Json(self)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static(r#"Basic realm="m2m-auth", charset="UTF-8""#);
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// What a form does with parameters it does not name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Others {
    /// As RFC 6749 section 3.2 requires of the token endpoint.
    Ignored,
    /// As our own endpoints' bodies are (RFC 7662 lets introspection choose).
    Refused,
}

/// The values of a form's parameters `names`, each given at most once (RFC 6749 section 3.2,
/// which RFC 7662 follows). Why the body is refused otherwise.
fn form<const N: usize>(
    call: &Call,
    names: [&str; N],
    others: Others,
) -> std::result::Result<[Option<String>; N], String> {
    let content_type = call
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_form = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(FORM));
    if !is_form {
        return Err(format!("The body must be {FORM}"));
    }
    let mut values = [const { None }; N];
    for (name, value) in form_urlencoded::parse(&call.body) {
        let Some(at) = names.iter().position(|known| *known == name) else {
            if others == Others::Refused {
                return Err(format!("Unknown parameter {}", excerpt(&name)));
            }
            continue;
        };
        if values[at].replace(value.into_owned()).is_some() {
            return Err(format!("{} is repeated", names[at]));
        }
    }
    Ok(values)
}

/// The grants `/oauth/token` takes.
const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 8693: a workload's token for an API token's JWT.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 section 2.1: the same, as a JWT bearer assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The kinds of subject token a token exchange takes (RFC 8693 section 3), and what it issues.
const SUBJECT_TOKEN_TYPES: [&str; 2] = [
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The request's parameters.
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    actor_token: Option<String>,
    assertion: Option<String>,
}

impl TokenRequest {
    fn parse(call: &Call) -> std::result::Result<Self, OAuthError> {
        let names = [
            "grant_type",
            "client_id",
            "client_secret",
            "scope",
            "subject_token",
            "subject_token_type",
            "requested_token_type",
            "actor_token",
            "assertion",
        ];
        let [
            grant_type,
            client_id,
            client_secret,
            scope,
            subject_token,
            subject_token_type,
            requested_token_type,
            actor_token,
            assertion,
        ] = form(call, names, Others::Ignored).map_err(OAuthError::invalid_request)?;
        Ok(Self {
            grant_type,
            client_id,
            client_secret,
            scope,
            subject_token,
            subject_token_type,
            requested_token_type,
            actor_token,
            assertion,
        })
    }

    /// A federated grant's workload token, and whether the answer names its type (a token
    /// exchange's does). Why the request is refused otherwise.
    fn workload_token(&self, grant_type: &str) -> std::result::Result<(&str, bool), OAuthError> {
        let missing = |name: &str| OAuthError::invalid_request(format!("{name} is missing"));
        if grant_type == JWT_BEARER {
            return Ok((
                self.assertion
                    .as_deref()
                    .ok_or_else(|| missing("assertion"))?,
                false,
            ));
        }
        if self.actor_token.is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token: delegation is not supported; send the workload's token alone",
            ));
        }
        let kind = self.subject_token_type.as_deref();
        if !kind.is_some_and(|k| SUBJECT_TOKEN_TYPES.contains(&k)) {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {} or {}",
                SUBJECT_TOKEN_TYPES[0], SUBJECT_TOKEN_TYPES[1]
            )));
        }
        let requested = self.requested_token_type.as_deref();
        if requested.is_some_and(|r| r != ACCESS_TOKEN_TYPE && r != SUBJECT_TOKEN_TYPES[0]) {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type: only {ACCESS_TOKEN_TYPE} is issued"
            )));
        }
        let token = self
            .subject_token
            .as_deref()
            .ok_or_else(|| missing("subject_token"))?;
        Ok((token, true))
    }
}

/// The clientId and secret the client authenticated with.
struct Client {
    id: String,
    secret: String,
}

/// The client's credentials: from `Authorization: Basic` (each half form-urlencoded, section
/// 2.3.1) or from the form, never both.
fn client(headers: &HeaderMap, form: &TokenRequest) -> std::result::Result<Client, OAuthError> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    match (basic, &form.client_id, &form.client_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "Use one way to authenticate the client: HTTP Basic or client_secret, not both",
        )),
        (Some((_, encoded)), named, None) => {
            let refused = || OAuthError::new("invalid_client", "Malformed Basic credentials");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(refused)?;
            let (id, secret) = decoded.split_once(':').ok_or_else(refused)?;
            let id = form_decode(id);
            // A form's client_id beside Basic credentials must name the same client.
            if named.as_ref().is_some_and(|named| *named != id) {
                return Err(OAuthError::invalid_request(
                    "client_id names another client than the Basic credentials",
                ));
            }
            Ok(Client {
                id,
                secret: form_decode(secret),
            })
        }
        (None, Some(id), Some(secret)) => Ok(Client {
            id: id.clone(),
            secret: secret.clone(),
        }),
        (None, _, _) => Err(OAuthError::new(
            "invalid_client",
            "Client authentication is missing",
        )),
    }
}

/// Refuses a grant other than the client-credentials one, or none.
fn client_credentials(grant: Option<&str>) -> std::result::Result<(), OAuthError> {
    match grant {
        Some(CLIENT_CREDENTIALS) => Ok(()),
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!(
                "{} is not supported; use {CLIENT_CREDENTIALS}, {TOKEN_EXCHANGE} or {JWT_BEARER}",
                excerpt(other)
            ),
        )),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
    }
}

/// A federated grant names its API token by `client_id` in the form, and nothing else
/// authenticates it: a secret beside the workload's token is refused, not ignored.
fn federated_client(
    headers: &HeaderMap,
    form: &TokenRequest,
) -> std::result::Result<(), OAuthError> {
    if headers.contains_key(AUTHORIZATION) || form.client_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "A workload's token stands in for the secret: send client_id alone",
        ));
    }
    match form.client_id {
        Some(_) => Ok(()),
        None => Err(OAuthError::new(
            "invalid_client",
            "client_id, the API token's, is missing",
        )),
    }
}

fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_or_else(|_| text.to_owned(), Cow::into_owned)
}

/// `POST /oauth/token`: the client-credentials grant, or a workload's token under a trust
/// policy (a token exchange or a JWT bearer assertion, naming the API token by `client_id`
/// alone: the workload's token stands in for the secret).
pub async fn token(app: Arc<App>, call: Call) -> Result<Response> {
    let form = match TokenRequest::parse(&call) {
        Ok(form) => form,
        Err(error) => return Ok(error.into_response()),
    };
    let issuer = call.issuer(&app);
    let credentials = app.credentials(&issuer).from_address(call.client());
    let scope = form.scope.as_deref();
    let (granted, issued_token_type) = match form.grant_type.as_deref() {
        Some(grant @ (TOKEN_EXCHANGE | JWT_BEARER)) => {
            let (workload, typed) = match federated_client(call.headers(), &form)
                .and_then(|()| form.workload_token(grant))
            {
                Ok(found) => found,
                Err(error) => return Ok(error.into_response()),
            };
            let client_id = form.client_id.as_deref().unwrap_or_default();
            let granted = credentials.federate(client_id, workload, scope).await?;
            (granted, typed.then_some(ACCESS_TOKEN_TYPE))
        }
        // The client is authenticated first, as before this grant was asked for.
        grant => {
            let client = match client(call.headers(), &form) {
                Ok(client) => client,
                Err(error) => return Ok(error.into_response()),
            };
            if let Err(refused) = client_credentials(grant) {
                return Ok(refused.into_response());
            }
            let granted = credentials.grant(&client.id, &client.secret, scope);
            (granted.await?, None)
        }
    };
    let body = TokenResponse {
        access_token: granted.access_token,
        issued_token_type,
        token_type: "Bearer",
        expires_in: granted.expires_in,
        scope: granted.scope,
    };
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// How `/oauth/token` answers an [`Error`] (its row's errors): in section 5.2's shape, as
/// OAuth clients parse it. A refused client is `invalid_client`; being busy, over the token's
/// rate limit or short of a dependency keeps the contract's status (429, 503) and
/// `Retry-After`, as `temporarily_unavailable`.
pub fn token_error(error: Error) -> Response {
    let (code, description) = match &error {
        Error::Unauthorized => ("invalid_client", "Client authentication failed".to_owned()),
        Error::InvalidScope(why) => ("invalid_scope", why.clone()),
        Error::InvalidGrant(why) => ("invalid_grant", why.clone()),
        Error::Unavailable(crate::error::Dependency::Issuer, _) => (
            "temporarily_unavailable",
            "The workload token's issuer could not be reached, or its keys not read; try again \
             shortly"
                .to_owned(),
        ),
        // The vendor has switched these tokens off.
        Error::Forbidden(why) => ("unauthorized_client", why.clone()),
        Error::Busy | Error::RateLimited(_) | Error::Unavailable(..) => {
            ("temporarily_unavailable", error.to_string())
        }
        Error::Internal(_) => ("server_error", error.to_string()),
        _ => ("invalid_request", error.to_string()),
    };
    let oauth = OAuthError::new(code, description);
    if !matches!(code, "temporarily_unavailable" | "server_error") {
        return oauth.into_response();
    }
    // The contract's answer logs the cause and names the status and the wait.
    let contract = error.into_response();
    let mut response = (contract.status(), Json(oauth)).into_response();
    if let Some(wait) = contract.headers().get(RETRY_AFTER) {
        response.headers_mut().insert(RETRY_AFTER, wait.clone());
    }
    response
}

/// What introspection answers (RFC 7662 section 2.2): `{"active": false}` for anything but an
/// active token, else its claims.
#[derive(Serialize)]
struct Introspection {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    claims: Option<ActiveToken>,
}

#[derive(Serialize)]
struct ActiveToken {
    client_id: String,
    token_type: &'static str,
    /// The token's permissions, space-separated (RFC 7662's `scope`).
    scope: String,
    #[serde(flatten)]
    claims: crate::domain::AccessClaims,
}

/// `POST /oauth/introspect` (RFC 7662), for the vendor's APIs: `token` in the form, once, and
/// no other parameter but `token_type_hint` (which changes nothing: only JWTs are introspected);
/// active only while the JWT is valid, unrevoked and its API token still usable. Errors take
/// the contract's shape, as the vendor check before the handler answers them.
pub async fn introspect(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let names = ["token", "token_type_hint"];
    let [token, _hint] = form(&call, names, Others::Refused).map_err(Error::bad_request)?;
    let token = token.ok_or_else(|| Error::bad_request("The form must carry token"))?;
    let active = app
        .credentials(&call.issuer(&app))
        .introspect(&token)
        .await?;
    let claims = active.map(|claims| ActiveToken {
        client_id: claims.sub.clone(),
        token_type: "Bearer",
        scope: claims.permissions.join(" "),
        claims,
    });
    let body = Introspection {
        active: claims.is_some(),
        claims,
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}
