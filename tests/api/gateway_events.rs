//! API Gateway HTTP API (payload v2) events, as API Gateway and `sam local invoke` deliver them,
//! reach the same handlers through each function's Lambda entry point.

use std::sync::Arc;

use crate::support::{Backing, ISSUER, TestClock, build_app};
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

/// An app behind API Gateway events, with a vendor token from the vendor-auth function.
struct Gateway {
    app: Arc<App>,
    vendor_token: String,
    _dir: Option<tempfile::TempDir>,
}

impl Gateway {
    async fn start() -> Self {
        let (app, dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
        let vendor = app.vendors().create("tests".into()).await.unwrap();
        let vendor_id = vendor.record.client_id.to_string();
        let fill = [
            ("VENDOR_CLIENT_ID", vendor_id.as_str()),
            ("VENDOR_SECRET", vendor.secret.expose()),
        ];
        let (status, body) = invoke(&app, Function::VendorAuth, "vendor-auth", &fill).await;
        assert_eq!(status, 200, "{body}");
        Self {
            vendor_token: text(&body, "token"),
            app,
            _dir: dir,
        }
    }

    /// Sends the event file `name`, filled with the vendor token and `fill`, to `function`.
    async fn send(&self, function: Function, name: &str, fill: &[(&str, &str)]) -> (u16, Value) {
        let mut all = vec![("VENDOR_TOKEN", self.vendor_token.as_str())];
        all.extend_from_slice(fill);
        invoke(&self.app, function, name, &all).await
    }

    /// The permission, the role `reader` holding it, the tenant and alice, from the event files.
    async fn with_directory(self) -> Self {
        for (function, event) in [
            (Function::Permissions, "create-permission"),
            (Function::Roles, "create-role"),
            (Function::Tenants, "put-tenant"),
            (Function::Users, "put-user"),
            (Function::Roles, "patch-role"),
        ] {
            let (status, body) = self.send(function, event, &[]).await;
            assert!(status == 200 || status == 201, "{event}: {status} {body}");
        }
        self
    }

    /// alice's personal token and a tenant token, as their event files create them.
    async fn tokens(&self) -> (Value, Value) {
        let (status, user) = self
            .send(Function::CreateUserToken, "create-user-token", &[])
            .await;
        assert_eq!(status, 201, "{user}");
        let (status, tenant) = self
            .send(Function::CreateTenantToken, "create-tenant-token-v2", &[])
            .await;
        assert_eq!(status, 201, "{tenant}");
        (user, tenant)
    }

    async fn exchange(&self, event: &str, token: &Value) -> (u16, Value) {
        let (id, secret) = (text(token, "clientId"), text(token, "secret"));
        let fill = [("CLIENT_ID", id.as_str()), ("SECRET", secret.as_str())];
        self.send(Function::Exchange, event, &fill).await
    }
}

#[tokio::test]
async fn vendor_auth_configurations_and_the_jwks_answer_through_their_functions() {
    let g = Gateway::start().await;
    let (status, body) = g
        .send(Function::Configurations, "configurations", &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(text(&body, "publicKey").starts_with("-----BEGIN PUBLIC KEY-----"));
    let (status, body) = g.send(Function::Discovery, "jwks", &[]).await;
    assert_eq!(
        (status, body["keys"][0]["alg"].as_str()),
        (200, Some("RS256"))
    );
}

#[tokio::test]
async fn the_directorys_events_write_list_and_delete_through_their_functions() {
    let g = Gateway::start().await.with_directory().await;
    for (function, event) in [
        (Function::Permissions, "list-permissions"),
        (Function::Roles, "list-roles"),
    ] {
        let (status, body) = g.send(function, event, &[]).await;
        let listed = (status, body.as_array().map(Vec::len));
        assert_eq!(listed, (200, Some(1)), "{event}: {body}");
    }
    for (function, event) in [
        (Function::Users, "delete-user"),
        (Function::Tenants, "delete-tenant"),
        (Function::Roles, "delete-role"),
        (Function::Permissions, "delete-permission"),
    ] {
        let (status, body) = g.send(function, event, &[]).await;
        assert_eq!(status, 200, "{event}: {body}");
    }
}

#[tokio::test]
async fn tokens_created_by_events_exchange_and_refresh_on_v1_and_v2() {
    let g = Gateway::start().await.with_directory().await;
    let (user, tenant) = g.tokens().await;
    assert_eq!(tenant["roleIds"][0], "reader");
    let (status, v1) = g.exchange("exchange-v1", &tenant).await;
    assert_eq!(status, 200, "{v1}");
    let credentials = g.app.credentials(ISSUER);
    let claims = credentials.verify_access_token(&text(&v1, "accessToken"));
    assert_eq!(claims.unwrap().roles, ["reader"]);
    let (status, v2) = g.exchange("exchange-v2", &user).await;
    assert_eq!(status, 200, "{v2}");
    let claims = credentials.verify_access_token(&text(&v2, "access_token"));
    assert_eq!(claims.unwrap().user_id.as_deref(), Some("alice"));

    for (event, issued, field) in [
        ("refresh-v1", &v1, "refreshToken"),
        ("refresh-v2", &v2, "refresh_token"),
    ] {
        let refresh = text(issued, field);
        let (status, renewed) = g
            .send(Function::Refresh, event, &[("REFRESH_TOKEN", &refresh)])
            .await;
        assert_eq!(status, 200, "{event}: {renewed}");
    }
}

#[tokio::test]
async fn tokens_are_listed_patched_rotated_and_deleted_through_their_functions() {
    let g = Gateway::start().await.with_directory().await;
    let (user, tenant) = g.tokens().await;
    let (status, _) = g
        .send(Function::CreateTenantToken, "create-tenant-token-v1", &[])
        .await;
    assert_eq!(status, 201);
    let (status, listed) = g
        .send(Function::TenantTokens, "list-tenant-tokens", &[])
        .await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(2)));
    let (status, listed) = g.send(Function::UserTokens, "list-user-tokens", &[]).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));

    let tenant_id = text(&tenant, "clientId");
    let fill = [("CLIENT_ID", tenant_id.as_str())];
    let (status, patched) = g
        .send(Function::TenantTokens, "patch-tenant-token", &fill)
        .await;
    assert_eq!(
        (status, patched["description"].as_str()),
        (200, Some("renamed bot"))
    );
    let (status, rotated) = g
        .send(Function::TenantTokens, "rotate-tenant-token", &fill)
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = g.exchange("exchange-v1", &rotated).await;
    assert_eq!(status, 200, "the new secret");
    let (status, _) = g.exchange("exchange-v1", &tenant).await;
    assert_eq!(status, 200, "the old secret, during its 30 minutes");
    let (status, _) = g
        .send(Function::TenantTokens, "delete-tenant-token", &fill)
        .await;
    assert_eq!(status, 200);
    let user_id = text(&user, "clientId");
    let fill = [("CLIENT_ID", user_id.as_str())];
    let (status, rotated) = g
        .send(Function::UserTokens, "rotate-user-token", &fill)
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    let (status, _) = g
        .send(Function::UserTokens, "delete-user-token", &fill)
        .await;
    assert_eq!(status, 200);
    let (status, gone) = g.exchange("exchange-v1", &tenant).await;
    assert_eq!(status, 401, "{gone}");
}

#[tokio::test]
async fn a_function_serves_only_its_own_routes() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let (status, body) = invoke(&app, Function::Discovery, "exchange-v1", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["errors"][0].is_string());
}

#[tokio::test]
async fn the_oauth_token_endpoint_answers_through_the_exchange_function() {
    use base64::Engine;
    let g = Gateway::start().await.with_directory().await;
    let (_, tenant) = g.tokens().await;
    let pair = format!("{}:{}", text(&tenant, "clientId"), text(&tenant, "secret"));
    let basic = base64::engine::general_purpose::STANDARD.encode(pair);
    let (status, body) = g
        .send(Function::Exchange, "oauth-token", &[("BASIC", &basic)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let claims = g
        .app
        .credentials(ISSUER)
        .verify_access_token(&text(&body, "access_token"));
    assert_eq!(claims.unwrap().roles, ["reader"]);
}

/// On Lambda without `PublicUrl`, discovery's links name the API's default endpoint as API
/// Gateway's request context gives it, whatever `Host` and `X-Forwarded-Proto` say (a client
/// sets those as it likes; a cache in front would keep what they made the document say).
#[tokio::test]
async fn discovery_on_lambda_names_the_api_not_the_host_header() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let path = format!(
        "{}/../tests/events/openid-configuration.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let honest = std::fs::read_to_string(path).unwrap();
    let forged = honest
        .replace(
            r#""host": "k3x9q2ab1c.execute-api.us-east-1.amazonaws.com""#,
            r#""host": "evil.example""#,
        )
        .replace(
            r#""x-forwarded-proto": "https""#,
            r#""x-forwarded-proto": "http""#,
        );
    assert_ne!(forged, honest);
    for event in [honest, forged] {
        let request = lambda_http::request::from_str(&event).unwrap();
        let response = service(Arc::clone(&app), Some(Function::Discovery))
            .oneshot(request)
            .await
            .unwrap();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX);
        let discovery: Value = serde_json::from_slice(&body.await.unwrap()).unwrap();
        let api = "https://k3x9q2ab1c.execute-api.us-east-1.amazonaws.com";
        assert_eq!(
            discovery["jwks_uri"],
            format!("{api}/.well-known/jwks.json")
        );
        assert_eq!(discovery["token_endpoint"], format!("{api}/oauth/token"));
    }
}

/// On Lambda, a token's allowed addresses are checked against API Gateway's `sourceIp`
/// (203.0.113.10 in the event files), never against a header the client sets.
#[tokio::test]
async fn an_allow_list_is_checked_against_api_gateways_source_ip() {
    use m2m_shared::domain::TenantId;
    use m2m_shared::domain::rules::allowed_ips;
    use m2m_shared::operations::{Manager, Owner, TokenPatch};
    let g = Gateway::start().await.with_directory().await;
    let (_, tenant) = g.tokens().await;
    let vendor = Manager::vendor(Owner::Tenant(TenantId::parse("acme").unwrap()));
    let client_id = text(&tenant, "clientId");
    for (list, expected) in [
        (serde_json::json!(["198.51.100.0/24"]), 401),
        (serde_json::json!(["203.0.113.0/24", "2001:db8::/32"]), 200),
        (serde_json::json!(["203.0.113.10"]), 200),
        (serde_json::json!([]), 200),
    ] {
        let patch = TokenPatch {
            allowed_ips: Some(allowed_ips(&list).unwrap()),
            ..TokenPatch::default()
        };
        let tokens = g.app.api_tokens();
        let id = m2m_shared::domain::ClientId::parse(&client_id).unwrap();
        tokens.patch(&vendor, &id, patch).await.unwrap();
        let (status, body) = g.exchange("exchange-v1", &tenant).await;
        assert_eq!(status, expected, "{list}: {body}");
        if status == 401 {
            assert_eq!(body, serde_json::json!({"errors": ["Unauthorized"]}));
        }
    }
}

/// The vendor's credentials through their own function: a second one created, listed, rotated
/// and revoked; the revoked one's secret no longer logs in.
#[tokio::test]
async fn vendor_credentials_are_managed_through_their_function() {
    let g = Gateway::start().await;
    let function = Function::VendorCredentials;
    let (status, created) = g.send(function, "create-vendor-credential", &[]).await;
    assert_eq!(
        (status, created["name"].as_str()),
        (201, Some("ci deploys")),
        "{created}"
    );
    let (status, listed) = g.send(function, "list-vendor-credentials", &[]).await;
    assert_eq!(
        (status, listed.as_array().map(Vec::len)),
        (200, Some(2)),
        "{listed}"
    );
    let id = text(&created, "clientId");
    let fill = [("CLIENT_ID", id.as_str())];
    let (status, rotated) = g.send(function, "rotate-vendor-credential", &fill).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    let (status, body) = g.send(function, "revoke-vendor-credential", &fill).await;
    assert_eq!(status, 200, "{body}");
    let login = [
        ("VENDOR_CLIENT_ID", id.as_str()),
        ("VENDOR_SECRET", &text(&rotated, "secret")),
    ];
    let (status, _) = g.send(Function::VendorAuth, "vendor-auth", &login).await;
    assert_eq!(status, 401, "revoked");
}
