//! API Gateway HTTP API (payload v2) events, built from the endpoint table: what API Gateway
//! delivers to a function for a request, so a new route needs no event file of its own.
//! `tests/events/` keeps a few as examples for `sam local invoke`.

use m2m_shared::http::{ENDPOINTS, Endpoint, Function};
use serde_json::{Map, Value, json};

/// The API's id and default endpoint in every event, and the client's address.
pub const API_ID: &str = "k3x9q2ab1c";
pub const API_HOST: &str = "k3x9q2ab1c.execute-api.us-east-1.amazonaws.com";
pub const SOURCE_IP: &str = "203.0.113.10";

/// Whether `path` is one of `pattern`'s paths (`{id}` takes any one segment).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let (pattern, path): (Vec<_>, Vec<_>) =
        (pattern.split('/').collect(), path.split('/').collect());
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| p == s || (*p == "{id}" && !s.is_empty()))
}

/// The row that serves `method` `path`.
pub fn row(method: &str, path: &str) -> &'static Endpoint {
    ENDPOINTS
        .iter()
        .find(|e| e.method.as_str() == method && path_matches(e.path, path))
        .unwrap_or_else(|| panic!("no endpoint serves {method} {path}"))
}

/// The event API Gateway sends for `method` `path` (a query after `?`) with `headers` and
/// `body`, and the function its route belongs to.
pub fn event(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (Function, Value) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let endpoint = row(method, path);
    let route_key = format!("{method} {}", endpoint.path);
    let mut all = Map::new();
    for (name, value) in [
        ("accept", "application/json"),
        ("host", API_HOST),
        ("user-agent", "curl/8.5.0"),
        (
            "x-amzn-trace-id",
            "Root=1-6748a1c0-2b1f5c7e9d0a4b3c8e7f6a52",
        ),
        ("x-forwarded-for", SOURCE_IP),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ]
    .into_iter()
    .chain(headers.iter().copied())
    {
        all.insert(name.to_owned(), json!(value));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": all,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": API_HOST,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": "curl/8.5.0",
            },
            "requestId": "QxR804gHoAMEJ2w=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "28/Nov/2026:14:00:00 +0000",
            "timeEpoch": 1_795_874_400_104_u64,
        },
        "isBase64Encoded": false,
    });
    if !body.is_empty() {
        event["body"] = json!(body);
    }
    let id = endpoint
        .path
        .split('/')
        .position(|segment| segment == "{id}")
        .and_then(|at| path.split('/').nth(at));
    if let Some(id) = id {
        event["pathParameters"] = json!({ "id": id });
    }
    (endpoint.function, event)
}

/// One event per row of the table, its `{id}` filled and the headers every caller kind reads:
/// a corpus to mutate.
pub fn one_per_row() -> Vec<(String, Value)> {
    ENDPOINTS
        .iter()
        .map(|endpoint| {
            let method = endpoint.method.as_str();
            let path = endpoint
                .path
                .replace("{id}", "6f1c0b8e-3c1a-4d7e-9b8f-2a6d5e4c3b21");
            let headers = [
                ("content-type", "application/json"),
                ("x-access-token", "VENDOR_TOKEN"),
                ("frontegg-tenant-id", "acme"),
                ("frontegg-user-id", "alice"),
            ];
            let body = if method == "GET" { "" } else { "{}" };
            let (_, event) = event(method, &path, &headers, body);
            (format!("{method} {}", endpoint.path), event)
        })
        .collect()
}
