//! What a handler reads of a request: its JSON body, the `{id}` path segment and its headers.

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result};

/// A request, read whole (the body limit applies before), as a handler sees it.
pub struct Call {
    pub(super) headers: HeaderMap,
    pub(super) id: Option<String>,
    pub(super) body: Bytes,
}

impl Call {
    /// The body as `T`; it must be a JSON object.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let value = self.json_value()?;
        if !value.is_object() {
            return Err(Error::bad_request("Request body must be a JSON object"));
        }
        from_json(value)
    }

    /// The body as one `T` (a JSON object) or several (an array of them, at most `max`), as
    /// Frontegg's create endpoints take arrays; `true` when it was an array.
    pub fn json_one_or_many<T: DeserializeOwned>(&self, max: usize) -> Result<(Vec<T>, bool)> {
        match self.json_value()? {
            Value::Array(items) if items.len() <= max => Ok((
                items.into_iter().map(from_json).collect::<Result<_>>()?,
                true,
            )),
            Value::Array(_) => Err(Error::bad_request(format!(
                "Request body may hold at most {max} items"
            ))),
            object @ Value::Object(_) => Ok((vec![from_json(object)?], false)),
            _ => Err(Error::bad_request(
                "Request body must be a JSON object or an array of them",
            )),
        }
    }

    fn json_value(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("Request body is not valid JSON: {e}")))
    }

    /// The path's `{id}` segment (empty on a route without one).
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's text, if the request has it (400 when it is not text).
    pub fn optional_header(&self, name: &str) -> Result<Option<&str>> {
        header(&self.headers, name)
    }

    /// The service's public base URL: `M2M_PUBLIC_URL`, else the URL this request reached.
    pub fn base_url(&self, app: &App) -> String {
        app.public_url()
            .map_or_else(|| reached_url(&self.headers), str::to_owned)
    }

    /// The `iss` of the tokens this request issues or presents (see `issuer`).
    pub fn issuer(&self, app: &App) -> String {
        issuer(app, &self.headers)
    }
}

/// The `iss` of tokens: `M2M_ISSUER`, else the public base URL, so that OpenID discovery's
/// `issuer` is the URL its document is served under.
pub(super) fn issuer(app: &App, headers: &HeaderMap) -> String {
    app.issuer()
        .map_or_else(|| reached_url(headers), str::to_owned)
}

/// The URL a request reached the service at: the Host header (API Gateway's domain, or the
/// local listener) with the scheme API Gateway forwards.
fn reached_url(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
    };
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = header("host").unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// A header's text, trimmed, if present (400 when it is not text).
pub(super) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::trim)
                .map_err(|_| Error::bad_request(format!("Header {name} is not valid text")))
        })
        .transpose()
}

fn from_json<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))
}
