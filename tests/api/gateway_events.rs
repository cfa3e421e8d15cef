//! API Gateway HTTP API (payload v2) events, as API Gateway and `sam local invoke` deliver them,
//! reach the same handlers through each function's Lambda entry point.

use std::sync::Arc;

use crate::support::{Backing, TestClock, build_app};
use m2m_shared::App;
use m2m_shared::http::{ENDPOINTS, Function, service};
use serde_json::Value;
use tower::ServiceExt;

/// Reads `tests/events/<name>.json`, fills its `{{PLACEHOLDERS}}` and sends it to `function`.
async fn invoke(
    app: &Arc<App>,
    function: Function,
    name: &str,
    fill: &[(&str, &str)],
) -> (u16, Value) {
    let path = format!("{}/../tests/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event = std::fs::read_to_string(&path).unwrap();
    for (placeholder, value) in fill {
        event = event.replace(&format!("{{{{{placeholder}}}}}"), value);
    }
    let request = lambda_http::request::from_str(&event).expect("a valid API Gateway v2 event");
    let response = service(Arc::clone(app), Some(function))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

/// Whether `path` is one of `pattern`'s paths (`{id}` takes any one segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let (pattern, path): (Vec<_>, Vec<_>) =
        (pattern.split('/').collect(), path.split('/').collect());
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| p == s || (*p == "{id}" && !s.is_empty()))
}

#[tokio::test]
async fn every_route_has_an_event_file_that_matches_it() {
    let dir = format!("{}/../tests/events", env!("CARGO_MANIFEST_DIR"));
    let mut covered = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // tests/events/sqs holds SQS events for the provisioning function
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(event["version"], "2.0");
        let method = text(&event["requestContext"]["http"], "method");
        let path = text(&event["requestContext"]["http"], "path");
        let endpoint = ENDPOINTS
            .iter()
            .find(|e| e.method.as_str() == method && path_matches(e.path, &path))
            .unwrap_or_else(|| panic!("no endpoint serves {method} {path}"));
        covered.push((method, endpoint.path.to_owned()));
    }
    for endpoint in ENDPOINTS {
        assert!(
            covered.contains(&(endpoint.method.to_string(), endpoint.path.to_owned())),
            "no event file for {} {}",
            endpoint.method,
            endpoint.path
        );
    }
}

#[tokio::test]
async fn the_whole_flow_through_api_gateway_events() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let vendor = app.create_vendor().await.unwrap();
    let vendor_id = vendor.record.client_id.to_string();

    let fill = [
        ("VENDOR_CLIENT_ID", vendor_id.as_str()),
        ("VENDOR_SECRET", vendor.secret.expose()),
    ];
    let (status, body) = invoke(&app, Function::VendorAuth, "vendor-auth", &fill).await;
    assert_eq!(status, 200, "{body}");
    let vendor_token = text(&body, "token");
    let with_vendor = [("VENDOR_TOKEN", vendor_token.as_str())];

    let (status, body) = invoke(
        &app,
        Function::Configurations,
        "configurations",
        &with_vendor,
    )
    .await;
    assert_eq!(status, 200);
    assert!(text(&body, "publicKey").starts_with("-----BEGIN PUBLIC KEY-----"));
    let (status, body) = invoke(&app, Function::Discovery, "jwks", &[]).await;
    assert_eq!(
        (status, body["keys"][0]["alg"].as_str()),
        (200, Some("RS256"))
    );

    for (function, event) in [
        (Function::Permissions, "create-permission"),
        (Function::Roles, "create-role"),
        (Function::Tenants, "put-tenant"),
        (Function::Users, "put-user"),
        (Function::Roles, "patch-role"),
    ] {
        let (status, body) = invoke(&app, function, event, &with_vendor).await;
        assert!(status == 200 || status == 201, "{event}: {status} {body}");
    }
    for (function, event) in [
        (Function::Permissions, "list-permissions"),
        (Function::Roles, "list-roles"),
    ] {
        let (status, body) = invoke(&app, function, event, &with_vendor).await;
        assert_eq!(
            (status, body.as_array().map(Vec::len)),
            (200, Some(1)),
            "{event}"
        );
    }

    let (status, user) = invoke(
        &app,
        Function::CreateUserToken,
        "create-user-token",
        &with_vendor,
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, _) = invoke(
        &app,
        Function::CreateTenantToken,
        "create-tenant-token-v1",
        &with_vendor,
    )
    .await;
    assert_eq!(status, 201);
    let (status, tenant) = invoke(
        &app,
        Function::CreateTenantToken,
        "create-tenant-token-v2",
        &with_vendor,
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    assert_eq!(tenant["roleIds"][0], "reader");

    let creds = |token: &Value| (text(token, "clientId"), text(token, "secret"));
    let (id, secret) = creds(&tenant);
    let fill = [("CLIENT_ID", id.as_str()), ("SECRET", secret.as_str())];
    let (status, v1) = invoke(&app, Function::Exchange, "exchange-v1", &fill).await;
    assert_eq!(status, 200, "{v1}");
    let claims = app.verify_access_token(&text(&v1, "accessToken")).unwrap();
    assert_eq!(claims.roles, ["reader"]);

    let (id, secret) = creds(&user);
    let fill = [("CLIENT_ID", id.as_str()), ("SECRET", secret.as_str())];
    let (status, v2) = invoke(&app, Function::Exchange, "exchange-v2", &fill).await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        app.verify_access_token(&text(&v2, "access_token"))
            .unwrap()
            .user_id
            .as_deref(),
        Some("alice")
    );

    let refresh = text(&v1, "refreshToken");
    let (status, renewed) = invoke(
        &app,
        Function::Refresh,
        "refresh-v1",
        &[("REFRESH_TOKEN", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let refresh = text(&v2, "refresh_token");
    let (status, renewed) = invoke(
        &app,
        Function::Refresh,
        "refresh-v2",
        &[("REFRESH_TOKEN", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert!(renewed["access_token"].is_string());

    // Management, then the directory's deletes.
    let (status, listed) = invoke(
        &app,
        Function::TenantTokens,
        "list-tenant-tokens",
        &with_vendor,
    )
    .await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(2)));
    let (status, listed) =
        invoke(&app, Function::UserTokens, "list-user-tokens", &with_vendor).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));
    let tenant_id = text(&tenant, "clientId");
    let fill = [
        ("VENDOR_TOKEN", vendor_token.as_str()),
        ("CLIENT_ID", tenant_id.as_str()),
    ];
    let (status, patched) = invoke(&app, Function::TenantTokens, "patch-tenant-token", &fill).await;
    assert_eq!(
        (status, patched["description"].as_str()),
        (200, Some("renamed bot"))
    );
    let (status, _) = invoke(&app, Function::TenantTokens, "delete-tenant-token", &fill).await;
    assert_eq!(status, 200);
    let user_id = text(&user, "clientId");
    let fill = [
        ("VENDOR_TOKEN", vendor_token.as_str()),
        ("CLIENT_ID", user_id.as_str()),
    ];
    let (status, _) = invoke(&app, Function::UserTokens, "delete-user-token", &fill).await;
    assert_eq!(status, 200);
    for (function, event) in [
        (Function::Users, "delete-user"),
        (Function::Tenants, "delete-tenant"),
        (Function::Roles, "delete-role"),
        (Function::Permissions, "delete-permission"),
    ] {
        let (status, body) = invoke(&app, function, event, &with_vendor).await;
        assert_eq!(status, 200, "{event}: {body}");
    }
}

#[tokio::test]
async fn a_function_serves_only_its_own_routes() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let (status, body) = invoke(&app, Function::Discovery, "exchange-v1", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["errors"][0].is_string());
}
