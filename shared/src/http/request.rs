//! Reading what a request carries: JSON bodies, the headers the contract names, the caller.

use lambda_http::Request;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MAX_BODY_BYTES;
use crate::app::App;
use crate::domain::{TenantId, UserId, VendorClaims};
use crate::error::{Error, Result};

pub const TENANT_HEADER: &str = "frontegg-tenant-id";
pub const USER_HEADER: &str = "frontegg-user-id";

/// The body as `T`; it must be a JSON object.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T> {
    let bytes = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request(format!("Request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::bad_request("Request body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))
}

fn header<'r>(request: &'r Request, name: &str) -> Result<Option<&'r str>> {
    request
        .headers()
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::trim)
                .map_err(|_| Error::bad_request(format!("Header {name} is not valid text")))
        })
        .transpose()
}

fn parsed_header<T>(
    request: &Request,
    name: &str,
    parse: impl Fn(&str) -> Result<T, crate::domain::ids::InvalidId>,
) -> Result<Option<T>> {
    header(request, name)?
        .map(|text| parse(text).map_err(|e| Error::bad_request(format!("Header {name} {e}"))))
        .transpose()
}

pub fn tenant_id(request: &Request) -> Result<TenantId> {
    parsed_header(request, TENANT_HEADER, TenantId::parse)?
        .ok_or_else(|| Error::bad_request(format!("Missing header {TENANT_HEADER}")))
}

pub fn user_id(request: &Request) -> Result<Option<UserId>> {
    parsed_header(request, USER_HEADER, UserId::parse)
}

pub fn required_user_id(request: &Request) -> Result<UserId> {
    user_id(request)?.ok_or_else(|| Error::bad_request(format!("Missing header {USER_HEADER}")))
}

/// The vendor token from `x-access-token` (what the SDKs send) or `Authorization: Bearer`.
pub fn vendor(app: &App, request: &Request) -> Result<VendorClaims> {
    let token = match header(request, "x-access-token")? {
        Some(token) => token,
        None => header(request, "authorization")?
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(Error::Unauthorized)?,
    };
    app.verify_vendor_token(token)
}

/// The URL this request reached the service at: the Host header (API Gateway's domain, or the
/// local listener) with the scheme API Gateway forwards, so published URLs work from outside.
pub fn public_base_url(request: &Request) -> String {
    let header = |name: &str| {
        request
            .headers()
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
