//! API Gateway HTTP API (payload v2) events, as API Gateway and `sam local invoke` deliver them,
//! reach the same handlers through each function's Lambda entry point. The events are built
//! from the endpoint table (`m2m_tests::gateway`); `tests/events/` keeps a few as examples.

use std::sync::Arc;

use crate::support::gateway::{self, row};
use crate::support::runtime_api;
use crate::support::{
    Backing, CONFIGURATIONS, EXCHANGE_V1, EXCHANGE_V2, ISSUER, PERMISSIONS, REFRESH_V1, REFRESH_V2,
    ROLES, TENANT_TOKENS, TENANT_TOKENS_V2, TestClock, USER_TOKENS, VENDOR_CREDENTIALS, build_app,
};
use m2m_shared::App;
use m2m_shared::http::{ENDPOINTS, Function, service};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Sends `event` to `function`'s own service, as its Lambda binary serves it.
async fn deliver(app: &Arc<App>, function: Function, event: &Value) -> (u16, Value) {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
    let response = service(Arc::clone(app), Some(function))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `method` `path` with `headers` and `body`, through the function whose route it is.
async fn invoke(
    app: &Arc<App>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let (function, event) = gateway::event(method, path, headers, body);
    deliver(app, function, &event).await
}

/// A kept example file, its `{{PLACEHOLDERS}}` filled.
fn example(name: &str, fill: &[(&str, &str)]) -> Value {
    let path = format!("{}/../tests/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event = std::fs::read_to_string(&path).unwrap();
    for (placeholder, value) in fill {
        event = event.replace(&format!("{{{{{placeholder}}}}}"), value);
    }
    serde_json::from_str(&event).unwrap()
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

/// Every row, as an anonymous event built from the table, reaches its function's handler (a
/// guarded row refuses it 401; no function answers 404 for its own route), and every kept
/// example names a route of the table.
#[tokio::test]
async fn every_route_answers_its_event_through_its_function() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    for (name, event) in gateway::one_per_row() {
        let mut event = event;
        event["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-access-token");
        let method = text(&event["requestContext"]["http"], "method");
        let path = text(&event["requestContext"]["http"], "path");
        let endpoint = row(&method, &path);
        let (status, body) = deliver(&app, endpoint.function, &event).await;
        assert!(status != 404 && status != 405, "{name}: {status} {body}");
        if endpoint.access() != m2m_shared::http::caller::Access::Anyone {
            assert_eq!(status, 401, "{name}: {body}");
        }
    }
    let dir = format!("{}/../tests/events", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // tests/events/sqs holds SQS events for the provisioning function
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(event["version"], "2.0");
        let method = text(&event["requestContext"]["http"], "method");
        let path = text(&event["requestContext"]["http"], "path");
        row(&method, &path);
    }
    assert!(ENDPOINTS.len() > 40);
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
        let login = example("vendor-auth", &fill);
        let (status, body) = deliver(&app, Function::VendorAuth, &login).await;
        assert_eq!(status, 200, "{body}");
        Self {
            vendor_token: text(&body, "token"),
            app,
            _dir: dir,
        }
    }

    /// `method` `path` as the vendor, with `headers` besides its token, and `body`.
    async fn vendor(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (u16, Value) {
        let mut all = vec![
            ("x-access-token", self.vendor_token.as_str()),
            ("content-type", "application/json"),
        ];
        all.extend_from_slice(headers);
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        invoke(&self.app, method, path, &all, &body).await
    }

    /// As the vendor for the tenant acme.
    async fn acme(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.vendor(method, path, &[ACME], body).await
    }

    /// As the vendor for alice in acme (her personal tokens).
    async fn alice(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.vendor(method, path, &[ACME, ALICE], body).await
    }

    /// The permission, the role `reader` holding it, the tenant and alice.
    async fn with_directory(self) -> Self {
        for (method, path, body) in [
            (
                "POST",
                PERMISSIONS,
                json!({"id": "deploy-write", "key": "deploy.write", "name": "Deploy"}),
            ),
            (
                "POST",
                ROLES,
                json!({"id": "reader", "key": "reader", "name": "Reader", "permissionIds": ["deploy-write"]}),
            ),
            (
                "PUT",
                "/identity/resources/tenants/v1/acme",
                json!({"name": "Acme Inc.", "metadata": {"plan": "pro"}}),
            ),
            (
                "PUT",
                "/identity/resources/users/v1/alice",
                json!({"email": "alice@acme.test", "tenants": [{"tenantId": "acme", "roleIds": ["reader"]}]}),
            ),
            (
                "PATCH",
                "/identity/resources/roles/v1/reader",
                json!({"name": "Read only"}),
            ),
        ] {
            let (status, answer) = self.vendor(method, path, &[], body).await;
            assert!(
                status == 200 || status == 201,
                "{method} {path}: {status} {answer}"
            );
        }
        self
    }

    /// alice's personal token and a tenant token.
    async fn tokens(&self) -> (Value, Value) {
        let personal = json!({"description": "laptop CLI", "metadata": {"host": "alice-mbp"}, "expiresInMinutes": 1440});
        let (status, user) = self.alice("POST", USER_TOKENS, personal).await;
        assert_eq!(status, 201, "{user}");
        let bot = json!({"description": "reporting", "roleIds": ["reader"]});
        let (status, tenant) = self
            .acme("POST", &format!("{TENANT_TOKENS_V2}/"), bot)
            .await;
        assert_eq!(status, 201, "{tenant}");
        (user, tenant)
    }

    /// The exchange at `path` (v1 or v2) of `token`'s clientId and secret.
    async fn exchange(&self, path: &str, token: &Value) -> (u16, Value) {
        let body = json!({"clientId": text(token, "clientId"), "secret": text(token, "secret")});
        let headers = [("content-type", "application/json")];
        invoke(&self.app, "POST", path, &headers, &body.to_string()).await
    }
}

const ACME: (&str, &str) = ("frontegg-tenant-id", "acme");
const ALICE: (&str, &str) = ("frontegg-user-id", "alice");

#[tokio::test]
async fn vendor_auth_configurations_and_the_jwks_answer_through_their_functions() {
    let g = Gateway::start().await;
    let (status, body) = g.vendor("GET", CONFIGURATIONS, &[], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert!(text(&body, "publicKey").starts_with("-----BEGIN PUBLIC KEY-----"));
    let (status, body) = deliver(&g.app, Function::Discovery, &example("jwks", &[])).await;
    assert_eq!(
        (status, body["keys"][0]["alg"].as_str()),
        (200, Some("RS256"))
    );
}

#[tokio::test]
async fn the_directorys_events_write_list_and_delete_through_their_functions() {
    let g = Gateway::start().await.with_directory().await;
    for path in [PERMISSIONS, ROLES] {
        let (status, body) = g.vendor("GET", path, &[], Value::Null).await;
        let listed = (status, body.as_array().map(Vec::len));
        assert_eq!(listed, (200, Some(1)), "{path}: {body}");
    }
    for (path, answer) in [
        ("/identity/resources/users/v1/alice", 204),
        ("/identity/resources/tenants/v1/acme", 200),
        ("/identity/resources/roles/v1/reader", 204),
        ("/identity/resources/permissions/v1/deploy-write", 204),
    ] {
        let (status, body) = g.vendor("DELETE", path, &[], Value::Null).await;
        assert_eq!(status, answer, "{path}: {body}");
    }
}

#[tokio::test]
async fn tokens_created_by_events_exchange_and_refresh_on_v1_and_v2() {
    let g = Gateway::start().await.with_directory().await;
    let (user, tenant) = g.tokens().await;
    assert_eq!(tenant["roleIds"][0], "reader");
    let (status, v1) = g.exchange(EXCHANGE_V1, &tenant).await;
    assert_eq!(status, 200, "{v1}");
    let credentials = g.app.credentials(ISSUER);
    let claims = credentials.verify_access_token(&text(&v1, "accessToken"));
    assert_eq!(claims.unwrap().roles, ["reader"]);
    let (status, v2) = g.exchange(EXCHANGE_V2, &user).await;
    assert_eq!(status, 200, "{v2}");
    let claims = credentials.verify_access_token(&text(&v2, "access_token"));
    assert_eq!(claims.unwrap().user_id.as_deref(), Some("alice"));

    for (path, issued, field) in [
        (REFRESH_V1, &v1, "refreshToken"),
        (REFRESH_V2, &v2, "refresh_token"),
    ] {
        let body = json!({"refreshToken": text(issued, field)}).to_string();
        let headers = [("content-type", "application/json")];
        let (status, renewed) = invoke(&g.app, "POST", path, &headers, &body).await;
        assert_eq!(status, 200, "{path}: {renewed}");
    }
}

#[tokio::test]
async fn tokens_are_listed_patched_rotated_and_deleted_through_their_functions() {
    let g = Gateway::start().await.with_directory().await;
    let (user, tenant) = g.tokens().await;
    let bot = json!({"description": "deploy bot", "permissionIds": ["deploy-write"]});
    let (status, _) = g.acme("POST", TENANT_TOKENS, bot).await;
    assert_eq!(status, 201);
    let (status, listed) = g.acme("GET", TENANT_TOKENS, Value::Null).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(2)));
    let (status, listed) = g.alice("GET", USER_TOKENS, Value::Null).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));

    let tenant_token = format!("{TENANT_TOKENS}/{}", text(&tenant, "clientId"));
    let renamed = json!({"description": "renamed bot"});
    let (status, patched) = g.acme("PATCH", &tenant_token, renamed).await;
    assert_eq!(
        (status, patched["description"].as_str()),
        (200, Some("renamed bot"))
    );
    let grace = json!({"graceMinutes": 30});
    let rotate = format!("{tenant_token}/rotate");
    let (status, rotated) = g.acme("POST", &rotate, grace.clone()).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = g.exchange(EXCHANGE_V1, &rotated).await;
    assert_eq!(status, 200, "the new secret");
    let (status, _) = g.exchange(EXCHANGE_V1, &tenant).await;
    assert_eq!(status, 200, "the old secret, during its 30 minutes");
    let (status, _) = g.acme("DELETE", &tenant_token, Value::Null).await;
    assert_eq!(status, 200);
    let user_token = format!("{USER_TOKENS}/{}", text(&user, "clientId"));
    let (status, rotated) = g
        .alice("POST", &format!("{user_token}/rotate"), grace)
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    let (status, _) = g.alice("DELETE", &user_token, Value::Null).await;
    assert_eq!(status, 200);
    let (status, gone) = g.exchange(EXCHANGE_V1, &tenant).await;
    assert_eq!(status, 401, "{gone}");
}

#[tokio::test]
async fn a_function_serves_only_its_own_routes() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let exchange = example("exchange-v1", &[]);
    let (status, body) = deliver(&app, Function::Discovery, &exchange).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["errors"][0].is_string());
}

#[tokio::test]
async fn the_oauth_token_endpoint_answers_through_the_exchange_function() {
    use base64::Engine;
    let g = Gateway::start().await.with_directory().await;
    let (_, tenant) = g.tokens().await;
    let pair = format!("{}:{}", text(&tenant, "clientId"), text(&tenant, "secret"));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
    ];
    let form = "grant_type=client_credentials";
    let (status, body) = invoke(&g.app, "POST", "/oauth/token", &headers, form).await;
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
        let (status, body) = g.exchange(EXCHANGE_V1, &tenant).await;
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
    let named = json!({"name": "ci deploys"});
    let (status, created) = g.vendor("POST", VENDOR_CREDENTIALS, &[], named).await;
    assert_eq!(
        (status, created["name"].as_str()),
        (201, Some("ci deploys")),
        "{created}"
    );
    let (status, listed) = g.vendor("GET", VENDOR_CREDENTIALS, &[], Value::Null).await;
    assert_eq!(
        (status, listed.as_array().map(Vec::len)),
        (200, Some(2)),
        "{listed}"
    );
    let id = text(&created, "clientId");
    let credential = format!("{VENDOR_CREDENTIALS}/{id}");
    let grace = json!({"graceMinutes": 30});
    let rotate = format!("{credential}/rotate");
    let (status, rotated) = g.vendor("POST", &rotate, &[], grace).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    let (status, body) = g.vendor("DELETE", &credential, &[], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let login = [
        ("VENDOR_CLIENT_ID", id.as_str()),
        ("VENDOR_SECRET", &text(&rotated, "secret")),
    ];
    let event = example("vendor-auth", &login);
    let (status, _) = deliver(&g.app, Function::VendorAuth, &event).await;
    assert_eq!(status, 401, "revoked");
}

/// Through a function, an answer names its request by API Gateway's id, errors included.
#[tokio::test]
async fn a_functions_answers_carry_api_gateways_request_id() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    for (method, path) in [("GET", "/.well-known/jwks.json"), ("GET", "/audits")] {
        let (function, event) = gateway::event(method, path, &[], "");
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = service(Arc::clone(&app), Some(function))
            .oneshot(request)
            .await
            .unwrap();
        let id = response.headers().get("x-request-id").unwrap();
        assert_eq!(id, "QxR804gHoAMEJ2w=", "{path}: {}", response.status());
    }
}

/// Through a Lambda function URL (whose events name the URL as API Gateway names an API), the
/// service's URL is the function URL's, whatever the `Host` header says.
#[tokio::test]
async fn through_a_function_url_discovery_names_the_function_url() {
    let (app, _dir) = build_app(Backing::Embedded, Arc::new(TestClock::default())).await;
    let (function, mut event) = gateway::event("GET", "/.well-known/openid-configuration", &[], "");
    let context = &mut event["requestContext"];
    let url_id = "abcdefghij0123456789klmnopqrstuv";
    context["apiId"] = json!(url_id);
    context["domainName"] = json!(format!("{url_id}.lambda-url.eu-west-1.on.aws"));
    context["domainPrefix"] = json!(url_id);
    context["routeKey"] = json!("$default");
    event["routeKey"] = json!("$default");
    event["headers"]["host"] = json!("evil.example");
    let (status, discovery) = deliver(&app, function, &event).await;
    assert_eq!(status, 200, "{discovery}");
    let base = format!("https://{url_id}.lambda-url.eu-west-1.on.aws");
    assert_eq!(
        discovery["jwks_uri"],
        format!("{base}/.well-known/jwks.json")
    );
    assert_eq!(discovery["token_endpoint"], format!("{base}/oauth/token"));
}

/// An Application Load Balancer's `GET` event for `path`: it names no URL of the service, only
/// the target group, and the client's `Host` (here a forged one).
fn alb_event(path: &str) -> Value {
    json!({
        "requestContext": {"elb": {"targetGroupArn":
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/m2m/49e9d65c45c6791a"}},
        "httpMethod": "GET",
        "path": path,
        "queryStringParameters": {},
        "headers": {
            "accept": "application/json",
            "host": "evil.example",
            "x-amzn-trace-id": "Root=1-5c536348-3d683b8b04734faae651f476",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "body": "",
        "isBase64Encoded": false
    })
}

/// The variables a function's binary needs to run on `t`'s moto.
pub(crate) fn function_env(t: &crate::support::TestApp) -> Vec<(&'static str, String)> {
    let m2m_shared::config::Backend::Aws {
        table, kms_key_id, ..
    } = &t.app.settings().backend
    else {
        panic!("on AWS");
    };
    vec![
        ("AWS_ENDPOINT_URL", crate::support::moto_endpoint()),
        ("M2M_TABLE", table.clone()),
        ("M2M_KMS_KEY_ID", kms_key_id.clone()),
    ]
}

/// Behind a load balancer, an allow-list is checked against the address the balancer added
/// (the last of `X-Forwarded-For`), never one the client wrote before it.
#[tokio::test]
async fn behind_a_load_balancer_an_allow_list_reads_the_address_it_added() {
    let t = crate::support::spawn_app(Backing::Moto).await;
    let vendor = t.vendor_token().await;
    let allowed = json!({"allowedIps": ["203.0.113.0/24"]});
    let (client_id, secret) = t.tenant_token(&vendor, "acme", allowed).await;
    let exchange = |forwarded_for: &str| {
        let mut event = alb_event(EXCHANGE_V1);
        event["httpMethod"] = json!("POST");
        event["headers"]["content-type"] = json!("application/json");
        event["headers"]["x-forwarded-for"] = json!(forwarded_for);
        event["body"] = json!(json!({"clientId": client_id, "secret": secret}).to_string());
        event.to_string()
    };
    let events = vec![
        exchange("198.51.100.1, 203.0.113.7"),
        exchange("203.0.113.7, 198.51.100.9"),
    ];
    let mut env = function_env(&t);
    env.push(("M2M_PUBLIC_URL", "https://auth.example.com".into()));
    let run = runtime_api::invoke("exchange", &env, events).await;
    let statuses: Vec<&Value> = run.answers.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(statuses, [&json!(200), &json!(401)], "{}", run.log);
}

/// Each front AWS puts before a function, through the discovery function's real binary (polling
/// a stand-in of Lambda's Runtime API): API Gateway's and a function URL's events name the
/// service's URL; an Application Load Balancer's name none, so without `M2M_PUBLIC_URL` the
/// function refuses to start, saying what to set, instead of answering 500s; with it, it serves.
#[tokio::test]
async fn each_front_reaches_a_function_and_names_the_service() {
    let t = crate::support::spawn_app(Backing::Moto).await;
    let env = function_env(&t);
    let path = "/.well-known/openid-configuration";
    let (_, gateway_event) = gateway::event("GET", path, &[("host", "evil.example")], "");
    let mut url_event = gateway_event.clone();
    let url_id = "abcdefghij0123456789klmnopqrstuv";
    url_event["requestContext"]["apiId"] = json!(url_id);
    url_event["requestContext"]["domainName"] =
        json!(format!("{url_id}.lambda-url.us-east-1.on.aws"));
    let events = vec![gateway_event.to_string(), url_event.to_string()];
    let run = runtime_api::invoke("discovery", &env, events).await;
    let issuers: Vec<Value> = (run.answers.iter())
        .map(|answer| serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap())
        .map(|document: Value| document["issuer"].clone())
        .collect();
    let gateway_url = format!(
        "https://{}.execute-api.us-east-1.amazonaws.com",
        gateway_event["requestContext"]["apiId"].as_str().unwrap()
    );
    assert_eq!(
        issuers,
        [
            json!(gateway_url),
            json!(format!("https://{url_id}.lambda-url.us-east-1.on.aws"))
        ],
        "{}",
        run.log
    );

    let alb = alb_event(path).to_string();
    let run = runtime_api::invoke("discovery", &env, vec![alb.clone()]).await;
    assert!(run.answers.is_empty(), "{:?}", run.answers);
    assert_eq!(
        run.exit.and_then(|status| status.code()),
        Some(78),
        "{}",
        run.log
    );
    assert!(run.log.contains("set M2M_PUBLIC_URL"), "{}", run.log);

    let mut env = env;
    env.push(("M2M_PUBLIC_URL", "https://auth.example.com".into()));
    let run = runtime_api::invoke("discovery", &env, vec![alb]).await;
    let answer = &run.answers[..];
    assert_eq!(answer.len(), 1, "{}", run.log);
    assert_eq!(answer[0]["statusCode"], 200, "{}", answer[0]);
    assert_eq!(answer[0]["statusDescription"], "200 OK", "{}", answer[0]);
    let document: Value = serde_json::from_str(answer[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(document["issuer"], "https://auth.example.com");
}
