//! What a handler reads of a request: its JSON body, the `{id}` path segment and its headers.

use axum::body::Bytes;
use std::net::IpAddr;

use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use lambda_http::request::RequestContext;

use crate::app::App;
use crate::error::{Error, Result};

/// A request, read whole (the body limit applies before), as a handler sees it.
pub struct Call {
    pub(super) headers: HeaderMap,
    /// The service's public base URL (see [`public_base`]).
    pub(super) base: String,
    /// The address the request came from, if known (see [`Origin::client`]).
    pub(super) client: Option<IpAddr>,
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

    /// As [`Call::json`], but an empty body is `T::default()`.
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.json()
    }

    /// The body as `T`, strictly: a JSON object (an empty body is `T::default()`) none of whose
    /// members is `null`, read straight into `T`, so that with `#[serde(deny_unknown_fields)]`
    /// an unknown or repeated member is refused too. Each refusal names the field.
    pub fn strict_json<T: DeserializeOwned + Default>(&self) -> Result<T> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        let value = self.json_value()?;
        let Some(members) = value.as_object() else {
            return Err(Error::bad_request("Request body must be a JSON object"));
        };
        if let Some((name, _)) = members.iter().find(|(_, v)| v.is_null()) {
            return Err(Error::bad_request(format!("{name} must not be null")));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))
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

    /// The address the request came from, if known.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// The service's public base URL (see [`public_base`]).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The `iss` of the tokens this request issues or presents: `M2M_ISSUER`, else the public
    /// base URL, so that OpenID discovery's `issuer` is the URL its document is served under.
    pub fn issuer(&self, app: &App) -> String {
        app.issuer().unwrap_or(&self.base).to_owned()
    }
}

/// Where a request came from: its headers, API Gateway's request context on Lambda, and the
/// peer's address on the local server.
pub(super) struct Origin {
    pub headers: HeaderMap,
    pub context: Option<RequestContext>,
    pub peer: Option<IpAddr>,
}

impl Origin {
    /// The client's address: on Lambda, API Gateway's `sourceIp`; locally the peer's, or with
    /// `trust_forwarded_for` (`M2M_TRUST_X_FORWARDED_FOR`, for a server reachable only through
    /// one proxy) the last `X-Forwarded-For` entry, the one that proxy added. Nothing a client
    /// sets is believed otherwise.
    pub fn client(&self, trust_forwarded_for: bool) -> Option<IpAddr> {
        if let Some(RequestContext::ApiGatewayV2(context)) = &self.context {
            return context.http.source_ip.as_deref()?.parse().ok();
        }
        if trust_forwarded_for {
            let forwarded = self.headers.get_all("x-forwarded-for").iter().next_back();
            let last = forwarded
                .and_then(|v| v.to_str().ok())?
                .rsplit(',')
                .next()?;
            return last.trim().parse().ok();
        }
        self.peer
    }
}

/// The service's public base URL for a request: `M2M_PUBLIC_URL` (the local server sets it to
/// its listen address), else, on Lambda, the default endpoint of the API Gateway API the
/// request came through, as API Gateway's request context names it. Never a header such as
/// `Host`, which any client sets as it likes.
pub(super) fn public_base(app: &App, context: Option<&RequestContext>) -> Result<String> {
    if let Some(url) = app.public_url() {
        return Ok(url.to_owned());
    }
    let Some(RequestContext::ApiGatewayV2(context)) = context else {
        return Err(Error::internal("no public URL: set M2M_PUBLIC_URL"));
    };
    let api = context.apiid.as_deref().unwrap_or_default();
    if api.is_empty() || !api.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::internal("API Gateway named no API id"));
    }
    // The default endpoint's domain, as API Gateway names it (it routes by domain, so no other
    // domain of this form reaches this API); through a custom domain, built from the region.
    let default_domain = context.domain_name.as_deref().filter(|domain| {
        domain
            .strip_prefix(&format!("{api}.execute-api."))
            .is_some_and(|rest| {
                rest.ends_with(".amazonaws.com") || rest.ends_with(".amazonaws.com.cn")
            })
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    let domain = match default_domain {
        Some(domain) => domain.to_owned(),
        None => {
            let region = std::env::var("AWS_REGION")
                .map_err(|_| Error::internal("no public URL: set M2M_PUBLIC_URL"))?;
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("{api}.execute-api.{region}.{suffix}")
        }
    };
    let stage = match context.stage.as_deref() {
        None | Some("$default") => String::new(),
        Some(stage) => format!("/{stage}"),
    };
    Ok(format!("https://{domain}{stage}"))
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
