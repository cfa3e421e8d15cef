//! What a handler reads of a request: its JSON body, the `{id}` path segment and its headers.

use axum::body::Bytes;
use std::net::IpAddr;

use axum::http::HeaderMap;
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use lambda_http::request::RequestContext;

use crate::app::App;
use crate::domain::audit::{Actor, Attribution};
use crate::domain::rules::{self, excerpt};
use crate::domain::{ClientId, GrantId, TenantId, UserId};
use crate::error::{Error, Result};

/// The body of one of our own endpoints (not Frontegg's, whose clients send fields of their
/// own): derived with `#[serde(deny_unknown_fields)]`, read by [`Call::strict_json`]. A field
/// given twice or `null` would otherwise be read as a value the caller did not send (the last
/// of two, or the default).
pub trait StrictBody: DeserializeOwned {
    /// The fields where `null` means something (lifting a limit); elsewhere it is refused.
    const NULLABLE: &'static [&'static str] = &[];
}

/// A request, read whole (the body limit applies before), as a handler sees it.
pub struct Call {
    pub(super) headers: HeaderMap,
    /// The service's public base URL (see [`public_base`]).
    pub(super) base: String,
    /// The address the request came from, if known (see [`Origin::client`]).
    pub(super) client: Option<IpAddr>,
    pub(super) id: Option<String>,
    /// The path's `{key}` segment, percent-decoded (a tenant's metadata key).
    pub(super) key: Option<String>,
    /// The query string, if any.
    pub(super) query: Option<String>,
    pub(super) body: Bytes,
    /// Who acts, once the row's caller check has said (anonymous before).
    pub(super) actor: Actor,
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

    /// The body as `T`, strictly: a JSON object whose every field `T` knows, given once and
    /// not `null` (unless `T` says it may be); a 400 naming the field otherwise.
    pub fn strict_json<T: StrictBody>(&self) -> Result<T> {
        let entries = self.entries()?;
        let mut fields = Map::new();
        let mut nulls = Vec::new();
        for (name, value) in entries {
            // A name too long for an excerpt is unknown to `T` anyway, and refused as such.
            let name = excerpt(&name).into_owned();
            if value.is_null() && !T::NULLABLE.contains(&name.as_str()) {
                nulls.push(name.clone());
            }
            if fields.insert(name.clone(), value).is_some() {
                return Err(Error::bad_request(format!("{name} is given twice")));
            }
        }
        let body = from_json(Value::Object(fields))?;
        match nulls.first() {
            Some(name) => Err(Error::bad_request(format!("{name} must not be null"))),
            None => Ok(body),
        }
    }

    /// The body's fields, in order, as sent: it must be a JSON object.
    fn entries(&self) -> Result<Vec<(String, Value)>> {
        let mut json = serde_json::Deserializer::from_slice(&self.body);
        let Entries(entries) = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let e = e.into_inner();
            match (e.is_data(), path.as_str()) {
                (false, _) => not_json(&e),
                (true, ".") => Error::bad_request("Request body must be a JSON object"),
                // Within a field: an object in it names a field twice.
                (true, _) => Error::bad_request(format!(
                    "Invalid request body: {path}: {}",
                    quoted_excerpts(&e.to_string())
                )),
            }
        })?;
        json.end().map_err(|e| not_json(&e))?;
        Ok(entries)
    }

    /// The body as a JSON object whose fields are each given once (400 naming one given twice,
    /// which would otherwise be read as the last of the two).
    pub fn json_object(&self) -> Result<Map<String, Value>> {
        let mut fields = Map::new();
        for (name, value) in self.entries()? {
            if fields.contains_key(&name) {
                let name = excerpt(&name).into_owned();
                return Err(Error::bad_request(format!("{name} is given twice")));
            }
            fields.insert(name, value);
        }
        Ok(fields)
    }

    /// As [`Call::strict_json`], but an empty body is `T::default()`.
    pub fn strict_json_or_default<T: StrictBody + Default>(&self) -> Result<T> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.strict_json()
    }

    /// The body as `T`, reading only its `fields`: the others are Frontegg's settings that do
    /// not apply here, which its clients send along. It must be a JSON object.
    pub fn json_fields<T: DeserializeOwned>(&self, fields: &[&str]) -> Result<T> {
        let Value::Object(mut body) = self.json_value()? else {
            return Err(Error::bad_request("Request body must be a JSON object"));
        };
        body.retain(|name, _| fields.contains(&name.as_str()));
        from_json(Value::Object(body))
    }

    fn json_value(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| not_json(&e))
    }

    /// The path's `{id}` segment (empty on a route without one); handlers take it typed.
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The path's `{id}` as a role or permission id; a malformed one is answered as a missing
    /// `what` (404), as no such role or permission exists.
    pub fn grant_id(&self, what: &str) -> Result<GrantId> {
        GrantId::parse(self.id()).map_err(|_| Error::not_found(what, self.id()))
    }

    /// The path's `{id}` as a tenant id; 400 naming `tenantId` when it is not one.
    pub fn tenant_id(&self) -> Result<TenantId> {
        Ok(rules::field("tenantId", TenantId::parse(self.id()))?)
    }

    /// The path's `{id}` as a user id; 400 naming `userId` when it is not one.
    pub fn user_id(&self) -> Result<UserId> {
        Ok(rules::field("userId", UserId::parse(self.id()))?)
    }

    /// The path's `{id}` as a clientId; a malformed one is answered as a missing `what` (404),
    /// as no such credential exists.
    pub fn client_id(&self, what: &str) -> Result<ClientId> {
        ClientId::parse(self.id()).map_err(|_| Error::not_found(what, self.id()))
    }

    /// The path's `{key}` segment (empty on a route without one).
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    /// A query parameter's value, if given; 400 when it is given twice (which one was meant is
    /// not for the service to guess).
    pub fn query_value(&self, name: &str) -> Result<Option<String>> {
        let query = self.query.as_deref().unwrap_or_default();
        let mut given = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == name);
        let first = given.next().map(|(_, value)| value.into_owned());
        if given.next().is_some() {
            return Err(Error::bad_request(format!("{name} is given twice")));
        }
        Ok(first)
    }

    /// A query parameter as a number; `default` when absent, 400 naming it when it is not a
    /// whole number in `range`.
    pub fn query_number(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64> {
        let Some(text) = self.query_value(name)? else {
            return Ok(default);
        };
        text.parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "{name} must be a whole number from {} to {}, not {:?}",
                    range.start(),
                    range.end(),
                    excerpt(&text)
                ))
            })
    }

    /// Every query parameter, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let query = self.query.as_deref().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's text, if the request has it (400 when it is not text).
    pub fn optional_header(&self, name: &str) -> Result<Option<&str>> {
        header(&self.headers, name)
    }

    /// `frontegg-tenant-id`, where it is optional; 400 naming it when it is not a tenant id.
    pub fn tenant_header(&self) -> Result<Option<TenantId>> {
        let tenant = self.optional_header("frontegg-tenant-id")?;
        let parsed = tenant.map(|t| rules::field("frontegg-tenant-id", TenantId::parse(t)));
        Ok(parsed.transpose()?)
    }

    /// The address the request came from, if known.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// Who acts and from where, as the audit trail records it.
    pub fn attribution(&self) -> Attribution {
        self.attribution_of(self.actor.clone())
    }

    /// As [`Call::attribution`], for `actor`.
    pub fn attribution_of(&self, actor: Actor) -> Attribution {
        let agent = self.headers.get("user-agent").and_then(|v| v.to_str().ok());
        Attribution::new(actor, self.client, agent)
    }

    /// The path's `{id}` segment, if the route has one.
    pub fn path_id(&self) -> Option<&str> {
        self.id.as_deref()
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
    /// The client's address: on Lambda, API Gateway's (or the function URL's) `sourceIp`, and
    /// behind an Application Load Balancer the last `X-Forwarded-For` entry, the one it added;
    /// locally the peer's, or with `trust_forwarded_for` (`M2M_TRUST_X_FORWARDED_FOR`, for a
    /// server reachable only through one proxy) the last `X-Forwarded-For` entry, the one that
    /// proxy added. Nothing a client sets is believed otherwise.
    pub fn client(&self, trust_forwarded_for: bool) -> Option<IpAddr> {
        if let Some(RequestContext::ApiGatewayV2(context)) = &self.context {
            return context.http.source_ip.as_deref()?.parse().ok();
        }
        // An Application Load Balancer appends the address it was reached from.
        let behind_alb = matches!(self.context, Some(RequestContext::Alb(_)));
        if trust_forwarded_for || behind_alb {
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
/// its listen address), else, on Lambda, the default endpoint of the API Gateway API or the
/// Lambda function URL the request came through, as the request context AWS wrote names it.
/// Never a header such as `Host`, which any client sets as it likes.
pub(super) fn public_base(app: &App, context: Option<&RequestContext>) -> Result<String> {
    if let Some(url) = app.public_url() {
        return Ok(url.to_owned());
    }
    let Some(RequestContext::ApiGatewayV2(context)) = context else {
        return Err(Error::internal("no public URL: set M2M_PUBLIC_URL"));
    };
    let api = context.apiid.as_deref().unwrap_or_default();
    if api.is_empty() || !api.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::internal(
            "the request context names no API id: set M2M_PUBLIC_URL",
        ));
    }
    if let Some(url) = function_url(api, context.domain_name.as_deref()) {
        return Ok(url);
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

/// A Lambda function URL's base, when the request came through one: its context names the URL's
/// id (as `apiId`) and its domain, `<id>.lambda-url.<region>.on.aws`, which AWS routes by.
fn function_url(id: &str, domain: Option<&str>) -> Option<String> {
    let domain = domain?;
    let region = domain.strip_prefix(&format!("{id}.lambda-url."))?;
    let region = region.strip_suffix(".on.aws")?;
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    (!region.is_empty() && region.bytes().all(plain)).then(|| format!("https://{domain}"))
}

/// A header's text, trimmed, if present (400 when it is not text, or is given twice: which
/// of two tenants, users or tokens was meant is not for the service to guess).
pub(super) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::bad_request(format!("Header {name} is given twice")));
    }
    first
        .map(|v| {
            v.to_str()
                .map(str::trim)
                .map_err(|_| Error::bad_request(format!("Header {name} is not valid text")))
        })
        .transpose()
}

/// For a field of a [`StrictBody`] where `null` means something: left out it is `None`,
/// `null` is `Some(None)` (serde reads both as `None` otherwise).
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::deserialize(deserializer).map(Some)
}

fn not_json(error: &serde_json::Error) -> Error {
    Error::bad_request(format!("Request body is not valid JSON: {error}"))
}

/// `T` from a body's JSON; a refusal names the field (`roleIds[2]: ...`) and quotes at most
/// an excerpt of what was sent.
fn from_json<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = match e.path().to_string() {
            root if root == "." => String::new(),
            path => format!("{path}: "),
        };
        let why = quoted_excerpts(&e.into_inner().to_string());
        Error::bad_request(format!("Invalid request body: {at}{why}"))
    })
}

/// A serde message with each quoted part (`` `field` ``, `"string"`) cut to an excerpt: serde
/// quotes the input it refuses, which may be as long as the body.
fn quoted_excerpts(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = if rest[open..].starts_with('"') {
            '"'
        } else {
            '`'
        };
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        let close = closing(inner, quote);
        out.push_str(&excerpt(&inner[..close]));
        out.push_str(inner.get(close..=close).unwrap_or_default());
        rest = inner.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Where `quote` closes in `inner`: serde quotes strings as Rust's `{:?}` does, escaping the
/// quotes inside, and field names between backticks as they are.
fn closing(inner: &str, quote: char) -> usize {
    let mut escaped = false;
    for (at, c) in inner.char_indices() {
        if c == quote && !escaped {
            return at;
        }
        escaped = quote == '"' && c == '\\' && !escaped;
    }
    inner.len()
}

/// A body's top-level fields in the order sent, each as often as sent (a map keeps the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some((name, Unrepeated(value))) = map.next_entry()? {
            entries.push((name, value));
        }
        Ok(Entries(entries))
    }
}

/// A JSON value none of whose objects, at any depth, names a field twice (which `Value` would
/// read as the last of the two): a body's field holding an object (`branding`) is as strict as
/// the body.
struct Unrepeated(Value);

impl<'de> Deserialize<'de> for Unrepeated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UnrepeatedVisitor)
            .map(Unrepeated)
    }
}

struct UnrepeatedVisitor;

impl<'de> Visitor<'de> for UnrepeatedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unrepeated(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some((name, Unrepeated(value))) = map.next_entry::<String, _>()? {
            if fields.contains_key(&name) {
                let name = excerpt(&name);
                return Err(serde::de::Error::custom(format!("{name} is given twice")));
            }
            fields.insert(name, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_quotes_only_an_excerpt_of_the_input() {
        let long = "x".repeat(1000);
        let message = format!(r#"invalid type: string "{long}\" `{long}`", expected u32"#);
        let shortened = quoted_excerpts(&message);
        assert!(shortened.len() < 200, "{shortened}");
        assert!(
            shortened.starts_with(r#"invalid type: string "xxx"#),
            "{shortened}"
        );
        assert!(shortened.ends_with(r#"…", expected u32"#), "{shortened}");
        let short = "unknown field `grace_minutes`, expected `graceMinutes`";
        assert_eq!(quoted_excerpts(short), short);
    }
}
