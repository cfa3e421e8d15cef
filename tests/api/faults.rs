//! Failing dependencies: DynamoDB and KMS (moto) behind fault proxies that refuse, hang or
//! throttle. Every endpoint that needs them answers 503 with `Retry-After` in the contract's
//! shape (`/oauth/token` in OAuth's) within the request budget; the JWKS and discovery are served from memory; a failed
//! request spends nothing (a refresh token stays usable); all works again once the fault clears.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use m2m_shared::http::ENDPOINTS;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::fault_proxy::Fault;
use crate::support::*;
use m2m_shared::config::DEFAULT_REQUEST_BUDGET_SECONDS as DEFAULT_BUDGET;

/// What the requests below name: made while nothing fails.
struct Fixture {
    vendor_login: Value,
    vendor: String,
    tenant_token: (String, String),
    personal_token: (String, String),
    access_token: String,
    refresh_token: String,
    /// Another, so that the two refresh rows tried at once do not spend one between them.
    other_refresh_token: String,
    handoff: String,
    session: String,
}

async fn fixture(t: &TestApp) -> Fixture {
    let vendor = t.vendor_token().await;
    t.reader_role(&vendor).await;
    t.member(&vendor, "alice", "acme", json!(["r-reader"]))
        .await;
    let tenant_token = t.tenant_token(&vendor, "acme", json!({})).await;
    let personal_token = t.user_token(&vendor, "acme", "alice", json!({})).await;
    let exchanged = t
        .exchange(EXCHANGE_V1, &tenant_token.0, &tenant_token.1)
        .await;
    assert_eq!(exchanged.status, StatusCode::OK, "{:?}", exchanged.body);
    let refresh_token = exchanged.body["refreshToken"].as_str().unwrap().to_owned();
    let access_token = exchanged.body["accessToken"].as_str().unwrap().to_owned();
    let again = t
        .exchange(EXCHANGE_V1, &tenant_token.0, &tenant_token.1)
        .await;
    let other_refresh_token = again.body["refreshToken"].as_str().unwrap().to_owned();
    let user = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    let handoff_of = |opened: Reply| {
        assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
        let url = opened.body["url"].as_str().unwrap().to_owned();
        url.split_once("#handoff=").unwrap().1.to_owned()
    };
    let first = handoff_of(t.post("/portal/v1/sessions", &user, &json!({})).await);
    let swapped = t
        .post(
            "/portal/v1/sessions/handoff",
            &[],
            &json!({"handoff": first}),
        )
        .await;
    assert_eq!(swapped.status, StatusCode::OK, "{:?}", swapped.body);
    Fixture {
        vendor_login: json!({"clientId": t.vendor_client_id, "secret": t.vendor_secret}),
        session: swapped.body["accessToken"].as_str().unwrap().to_owned(),
        handoff: handoff_of(t.post("/portal/v1/sessions", &user, &json!({})).await),
        vendor,
        tenant_token,
        personal_token,
        access_token,
        refresh_token,
        other_refresh_token,
    }
}

/// One request, as the endpoint table names its row.
struct Call {
    method: Method,
    row: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

fn call(method: Method, row: &'static str, path: &str, body: Option<Value>) -> Call {
    Call {
        method,
        row,
        path: path.to_owned(),
        headers: Vec::new(),
        body,
    }
}

impl Call {
    fn with(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// A request for every row of the endpoint table that reads or writes the store or signs,
/// each one that would succeed if nothing failed.
#[allow(clippy::too_many_lines)] // one line per row of the table
fn store_calls(f: &Fixture) -> Vec<Call> {
    use Method as M;
    let (tenant_id, tenant_secret) = &f.tenant_token;
    let personal = &f.personal_token.0;
    let exchange = json!({"clientId": tenant_id, "secret": tenant_secret});
    let refresh = json!({"refreshToken": f.refresh_token});
    let other_refresh = json!({"refreshToken": f.other_refresh_token});
    let vendor = |c: Call| c.with("x-access-token", &f.vendor);
    let tenant = |c: Call| vendor(c).with("frontegg-tenant-id", "acme");
    let user = |c: Call| tenant(c).with("frontegg-user-id", "alice");
    let session = |c: Call| c.with("authorization", &format!("Bearer {}", f.session));
    let user_tokens = "/identity/resources/users/api-tokens/v1";
    let tenant_tokens = "/identity/resources/tenants/api-tokens/v1";
    let roles = "/identity/resources/users/v1/alice/roles";
    let vendor_id = f.vendor_login["clientId"].as_str().unwrap_or_default();
    let oauth = format!(
        "grant_type=client_credentials&client_id={tenant_id}&client_secret={tenant_secret}"
    );
    vec![
        call(
            M::POST,
            "/auth/vendor",
            "/auth/vendor",
            Some(f.vendor_login.clone()),
        ),
        vendor(call(M::GET, VENDOR_CREDENTIALS, VENDOR_CREDENTIALS, None)),
        vendor(call(
            M::POST,
            VENDOR_CREDENTIALS,
            VENDOR_CREDENTIALS,
            Some(json!({"name": "ci"})),
        )),
        vendor(call(
            M::POST,
            "/vendor/v1/credentials/{id}/rotate",
            &format!("{VENDOR_CREDENTIALS}/{vendor_id}/rotate"),
            Some(json!({"graceMinutes": 0})),
        )),
        vendor(call(
            M::DELETE,
            "/vendor/v1/credentials/{id}",
            &format!("{VENDOR_CREDENTIALS}/{vendor_id}"),
            None,
        )),
        call(M::POST, EXCHANGE_V1, EXCHANGE_V1, Some(exchange.clone())),
        call(M::POST, EXCHANGE_V2, EXCHANGE_V2, Some(exchange)),
        call(M::POST, "/oauth/token", "/oauth/token", None)
            .with("content-type", "application/x-www-form-urlencoded")
            .with("x-form", &oauth),
        vendor(call(
            M::POST,
            "/oauth/introspect",
            "/oauth/introspect",
            None,
        ))
        .with("content-type", "application/x-www-form-urlencoded")
        .with("x-form", &format!("token={}", f.access_token)),
        call(
            M::GET,
            "/.well-known/revocations",
            "/.well-known/revocations",
            None,
        ),
        call(M::POST, REFRESH_V1, REFRESH_V1, Some(refresh.clone())),
        call(M::POST, REFRESH_V2, REFRESH_V2, Some(other_refresh)),
        vendor(call(M::GET, "/audits", "/audits", None)),
        vendor(call(
            M::POST,
            "/audits",
            "/audits",
            Some(json!({"tenantId": "acme", "severity": "Info"})),
        )),
        vendor(call(M::GET, CONFIGURATIONS, CONFIGURATIONS, None)),
        vendor(call(
            M::POST,
            CONFIGURATIONS,
            CONFIGURATIONS,
            Some(json!({"apiTokensEnabled": true})),
        )),
        vendor(call(
            M::PATCH,
            CONFIGURATIONS,
            CONFIGURATIONS,
            Some(json!({"apiTokensEnabled": true})),
        )),
        user(call(M::POST, user_tokens, user_tokens, Some(json!({})))),
        user(call(M::GET, user_tokens, user_tokens, None)),
        user(call(
            M::PATCH,
            "/identity/resources/users/api-tokens/v1/{id}",
            &format!("{user_tokens}/{personal}"),
            Some(json!({"description": "x"})),
        )),
        user(call(
            M::DELETE,
            "/identity/resources/users/api-tokens/v1/{id}",
            &format!("{user_tokens}/{personal}"),
            None,
        )),
        user(call(
            M::POST,
            "/identity/resources/users/api-tokens/v1/{id}/rotate",
            &format!("{user_tokens}/{personal}/rotate"),
            Some(json!({})),
        )),
        user(call(
            M::GET,
            "/identity/resources/users/api-tokens/v1/{id}/usage",
            &format!("{user_tokens}/{personal}/usage"),
            None,
        )),
        tenant(call(
            M::GET,
            "/identity/resources/tenants/api-tokens/v1/{id}/usage",
            &format!("{tenant_tokens}/{tenant_id}/usage"),
            None,
        )),
        user(call(
            M::GET,
            "/identity/resources/users/api-tokens/v1/usage",
            &format!("{user_tokens}/usage"),
            None,
        )),
        tenant(call(
            M::GET,
            "/identity/resources/tenants/api-tokens/v1/usage",
            &format!("{tenant_tokens}/usage"),
            None,
        )),
        tenant(call(
            M::POST,
            "/identity/resources/tenants/api-tokens/v1/{id}/rotate",
            &format!("{tenant_tokens}/{tenant_id}/rotate"),
            Some(json!({"graceMinutes": 0})),
        )),
        tenant(call(M::POST, tenant_tokens, tenant_tokens, Some(json!({})))),
        tenant(call(
            M::POST,
            TENANT_TOKENS_V2,
            TENANT_TOKENS_V2,
            Some(json!({})),
        )),
        session(call(M::GET, tenant_tokens, tenant_tokens, None)),
        tenant(call(
            M::PATCH,
            "/identity/resources/tenants/api-tokens/v1/{id}",
            &format!("{tenant_tokens}/{tenant_id}"),
            Some(json!({"description": "x"})),
        )),
        tenant(call(
            M::DELETE,
            "/identity/resources/tenants/api-tokens/v1/{id}",
            &format!("{tenant_tokens}/{tenant_id}"),
            None,
        )),
        user(call(
            M::POST,
            "/portal/v1/sessions",
            "/portal/v1/sessions",
            Some(json!({})),
        )),
        call(
            M::POST,
            "/portal/v1/sessions/handoff",
            "/portal/v1/sessions/handoff",
            Some(json!({"handoff": f.handoff})),
        ),
        session(call(
            M::GET,
            "/portal/v1/session",
            "/portal/v1/session",
            None,
        )),
        vendor(call(
            M::POST,
            PERMISSIONS,
            PERMISSIONS,
            Some(json!({"id": "p-new", "key": "new.read"})),
        )),
        vendor(call(M::GET, PERMISSIONS, PERMISSIONS, None)),
        vendor(call(
            M::PATCH,
            "/identity/resources/permissions/v1/{id}",
            "/identity/resources/permissions/v1/p-read",
            Some(json!({"name": "Read"})),
        )),
        vendor(call(
            M::DELETE,
            "/identity/resources/permissions/v1/{id}",
            &format!("{PERMISSIONS}/p-read"),
            None,
        )),
        vendor(call(
            M::POST,
            ROLES,
            ROLES,
            Some(json!({"id": "r-new", "key": "new", "permissionIds": []})),
        )),
        vendor(call(M::GET, ROLES, ROLES, None)),
        vendor(call(
            M::PATCH,
            "/identity/resources/roles/v1/{id}",
            &format!("{ROLES}/r-reader"),
            Some(json!({"name": "Reader"})),
        )),
        vendor(call(
            M::PUT,
            "/identity/resources/roles/v1/{id}/permissions",
            &format!("{ROLES}/r-reader/permissions"),
            Some(json!({"permissionIds": []})),
        )),
        vendor(call(
            M::DELETE,
            "/identity/resources/roles/v1/{id}",
            &format!("{ROLES}/r-reader"),
            None,
        )),
        vendor(call(
            M::PUT,
            "/identity/resources/tenants/v1/{id}",
            "/identity/resources/tenants/v1/acme",
            Some(json!({"name": "Acme"})),
        )),
        vendor(call(
            M::DELETE,
            "/identity/resources/tenants/v1/{id}",
            "/identity/resources/tenants/v1/acme",
            None,
        )),
        vendor(call(
            M::POST,
            "/tenants/resources/tenants/v1",
            "/tenants/resources/tenants/v1",
            Some(json!({"tenantId": "globex", "name": "Globex"})),
        )),
        vendor(call(
            M::GET,
            "/tenants/resources/tenants/v1/{id}",
            "/tenants/resources/tenants/v1/acme",
            None,
        )),
        vendor(call(
            M::PUT,
            "/tenants/resources/tenants/v1/{id}",
            "/tenants/resources/tenants/v1/acme",
            Some(json!({"name": "Acme"})),
        )),
        vendor(call(
            M::DELETE,
            "/tenants/resources/tenants/v1/{id}",
            "/tenants/resources/tenants/v1/acme",
            None,
        )),
        vendor(call(
            M::PUT,
            "/identity/resources/users/v1/{id}",
            "/identity/resources/users/v1/bob",
            Some(
                json!({"email": "bob@example.test", "tenants": [{"tenantId": "acme", "roleIds": []}]}),
            ),
        )),
        vendor(call(
            M::DELETE,
            "/identity/resources/users/v1/{id}",
            "/identity/resources/users/v1/alice",
            None,
        )),
        vendor(call(M::GET, USERS, USERS, None)),
        vendor(call(
            M::GET,
            "/identity/resources/users/v1/{id}",
            "/identity/resources/users/v1/alice",
            None,
        )),
        vendor(call(
            M::GET,
            "/identity/resources/vendor-only/users/v1/{id}",
            "/identity/resources/vendor-only/users/v1/alice",
            None,
        )),
        tenant(call(
            M::POST,
            "/identity/resources/users/v2",
            "/identity/resources/users/v2",
            Some(json!({"id": "dave", "email": "dave@example.test"})),
        )),
        vendor(call(M::GET, FRONTEGG_TENANTS, FRONTEGG_TENANTS, None)),
        vendor(call(
            M::GET,
            "/tenants/resources/tenants/v2",
            "/tenants/resources/tenants/v2?_limit=10",
            None,
        )),
        vendor(call(
            M::POST,
            "/tenants/resources/tenants/v1/{id}/metadata",
            "/tenants/resources/tenants/v1/acme/metadata",
            Some(json!({"metadata": {"tier": "gold"}})),
        )),
        vendor(call(
            M::DELETE,
            "/tenants/resources/tenants/v1/{id}/metadata/{key}",
            "/tenants/resources/tenants/v1/acme/metadata/tier",
            None,
        )),
        tenant(call(
            M::POST,
            "/identity/resources/users/v1",
            "/identity/resources/users/v1",
            Some(json!({"id": "carol", "email": "carol@example.test"})),
        )),
        tenant(call(
            M::POST,
            "/identity/resources/users/v1/{id}/roles",
            roles,
            Some(json!({"roleIds": ["r-reader"]})),
        )),
        tenant(call(
            M::DELETE,
            "/identity/resources/users/v1/{id}/roles",
            roles,
            Some(json!({"roleIds": ["r-reader"]})),
        )),
    ]
}

/// The rows served from memory, whatever the store and KMS do.
const FROM_MEMORY: &[&str] = &[
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/openapi.json",
    "/portal",
    "/identity/resources/configurations/v1/public",
    "/health",
];

/// The rows that answer a failing store or KMS in words of their own: readiness names which
/// (see `readiness_names_what_does_not_answer_and_probes_do_not_flood_it`).
const OWN_WORDS: &[&str] = &["/health/ready"];

#[test]
fn the_requests_cover_every_row_of_the_endpoint_table() {
    let fixture = Fixture {
        vendor_login: Value::Null,
        vendor: String::new(),
        tenant_token: (String::new(), String::new()),
        personal_token: (String::new(), String::new()),
        access_token: String::new(),
        refresh_token: String::new(),
        other_refresh_token: String::new(),
        handoff: String::new(),
        session: String::new(),
    };
    let mut covered: BTreeSet<(String, &str)> = store_calls(&fixture)
        .iter()
        .map(|c| (c.method.to_string(), c.row))
        .collect();
    covered.extend(FROM_MEMORY.iter().map(|row| ("GET".to_owned(), *row)));
    covered.extend(OWN_WORDS.iter().map(|row| ("GET".to_owned(), *row)));
    let table: BTreeSet<(String, &str)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_string(), e.path))
        .collect();
    assert_eq!(covered, table);
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn send(t: &TestApp, c: &Call) -> Answer {
    let mut request = t
        .http
        .request(c.method.clone(), format!("{}{}", t.base, c.path));
    for (name, value) in &c.headers {
        if *name == "x-form" {
            request = request.body(value.clone());
        } else {
            request = request.header(*name, value);
        }
    }
    if let Some(body) = &c.body {
        request = request.json(body);
    }
    let started = Instant::now();
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

const USERS: &str = "/identity/resources/users/v1";
const FRONTEGG_TENANTS: &str = "/tenants/resources/tenants/v1";

/// Every store-backed request at once under `fault`: each a 503 with `Retry-After` and the
/// contract's body, within the budget; the in-memory rows answer 200 at once.
async fn everything_is_unavailable(t: &TestApp, calls: &[Call], fault: Fault) {
    let answers = futures::future::join_all(calls.iter().map(|c| send(t, c))).await;
    for (c, answer) in calls.iter().zip(&answers) {
        let what = format!("{fault:?}: {} {}", c.method, c.path);
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {:?}",
            answer.body
        );
        assert_eq!(answer.retry_after.as_deref(), Some("2"), "{what}");
        let message = "Service temporarily unavailable; try again shortly";
        let body = if c.row == "/oauth/token" {
            json!({"error": "temporarily_unavailable", "error_description": message})
        } else {
            json!({"errors": [message]})
        };
        assert_eq!(answer.body, body, "{what}");
        assert!(
            answer.took < t.app.request_budget() + Duration::from_secs(1),
            "{what} took {:?}",
            answer.took
        );
    }
    for row in FROM_MEMORY {
        let answer = send(t, &call(Method::GET, row, row, None)).await;
        assert_eq!(answer.status, StatusCode::OK, "{fault:?}: GET {row}");
        assert!(
            answer.took < Duration::from_secs(1),
            "{fault:?}: GET {row} took {:?}",
            answer.took
        );
    }
}

/// DynamoDB and KMS refusing, hanging, then throttling: every endpoint answers 503 in time;
/// when the fault clears, the same credentials, refresh token and directory work as before.
#[tokio::test]
async fn every_endpoint_answers_503_in_time_while_dynamodb_and_kms_fail() {
    let faulty = spawn_app_behind_fault_proxies(DEFAULT_BUDGET).await;
    let t = &faulty.api;
    let f = fixture(t).await;
    let calls = store_calls(&f);
    let before = listing(t, &f).await;
    for fault in [Fault::Refuse, Fault::Hang, Fault::Throttle] {
        faulty.dynamodb.set(fault);
        faulty.kms.set(fault);
        everything_is_unavailable(t, &calls, fault).await;
        faulty.dynamodb.set(Fault::Forward);
        faulty.kms.set(Fault::Forward);
        assert_eq!(
            listing(t, &f).await,
            before,
            "after {fault:?}: nothing was written"
        );
    }
    // The refresh token tried under every fault was never spent.
    let refreshed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": f.refresh_token}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let (id, secret) = &f.personal_token;
    assert_eq!(
        t.exchange(EXCHANGE_V2, id, secret).await.status,
        StatusCode::OK
    );
}

/// What the directory and the tokens hold, as the vendor lists them.
async fn listing(t: &TestApp, f: &Fixture) -> Value {
    let vendor = [("x-access-token", f.vendor.as_str())];
    let tenant = [
        ("x-access-token", f.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let user = [
        ("x-access-token", f.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    // When a token was last used changes with the successful exchanges between listings.
    let tokens = |mut listed: Value| {
        for token in listed.as_array_mut().unwrap() {
            token.as_object_mut().unwrap().remove("lastUsedAt");
        }
        listed
    };
    json!({
        "tenantTokens": tokens(t.get(TENANT_TOKENS, &tenant).await.body),
        "personalTokens": tokens(t.get(USER_TOKENS, &user).await.body),
        "roles": t.get(ROLES, &vendor).await.body,
        "permissions": t.get(PERMISSIONS, &vendor).await.body,
        "acme": t.get("/tenants/resources/tenants/v1/acme", &vendor).await.body,
        "globex": t.get("/tenants/resources/tenants/v1/globex", &vendor).await.status.as_u16(),
    })
}

/// KMS alone hanging: exchange, refresh and the vendor login answer 503 in time, the refresh
/// token stays usable, token management (which never signs) goes on; KMS back, all works.
#[tokio::test]
async fn a_hanging_kms_fails_only_what_signs_and_spends_nothing() {
    let faulty = spawn_app_behind_fault_proxies(DEFAULT_BUDGET).await;
    let t = &faulty.api;
    let f = fixture(t).await;
    let (id, secret) = &f.tenant_token;
    faulty.kms.set(Fault::Hang);
    let calls = store_calls(&f);
    let signing: Vec<Call> = calls
        .into_iter()
        .filter(|c| {
            [
                EXCHANGE_V1,
                EXCHANGE_V2,
                REFRESH_V1,
                REFRESH_V2,
                "/oauth/token",
                "/auth/vendor",
            ]
            .contains(&c.row)
        })
        .collect();
    everything_is_unavailable(t, &signing, Fault::Hang).await;
    let listed = t
        .get(
            TENANT_TOKENS,
            &[
                ("x-access-token", &f.vendor),
                ("frontegg-tenant-id", "acme"),
            ],
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    faulty.kms.set(Fault::Forward);
    let refreshed = t
        .post(REFRESH_V2, &[], &json!({"refreshToken": f.refresh_token}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    assert_eq!(
        t.exchange(EXCHANGE_V1, id, secret).await.status,
        StatusCode::OK
    );
}

/// A request that outlives its budget is answered 503 by the service itself, even while
/// the AWS call it waits on has time left.
#[tokio::test]
async fn a_request_past_its_budget_is_answered_503_at_the_budget() {
    let faulty = spawn_app_behind_fault_proxies(2).await;
    let t = &faulty.api;
    let vendor = t.vendor_token().await;
    faulty.dynamodb.set(Fault::Hang);
    let listing = call(Method::GET, ROLES, ROLES, None).with("x-access-token", &vendor);
    let answer = send(t, &listing).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        answer.body
    );
    assert_eq!(answer.retry_after.as_deref(), Some("2"));
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(3500)).contains(&answer.took),
        "answered after {:?}",
        answer.took
    );
    faulty.dynamodb.set(Fault::Forward);
    // As a client told to retry does (moto may be busy with the rest of the suite).
    for _ in 0..10 {
        if send(t, &listing).await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("the listing never recovered");
}

/// A Lambda cold start while KMS hangs (the public key cannot be fetched): the function does
/// not fail its init (API Gateway would answer 500) but answers 503 in time, and serves the
/// JWKS once KMS is back, from the same instance.
#[tokio::test]
async fn a_cold_start_without_kms_answers_503_then_serves_when_kms_is_back() {
    use m2m_shared::adapters::{DynamoStore, KmsSigner, SystemClock};
    use m2m_shared::http::Function;
    use m2m_shared::runtime::function_service;
    use std::sync::Arc;
    use tower::ServiceExt;

    let kms = crate::support::fault_proxy::FaultProxy::start(&moto_endpoint()).await;
    kms.set(Fault::Hang);
    let (table, key_id) = moto_resources().await;
    let dynamodb = aws_config().await;
    let kms_config = aws_config_at(&kms.url).await;
    let start = move || {
        let (table, key_id) = (table.clone(), key_id.clone());
        let (dynamodb, kms_config) = (dynamodb.clone(), kms_config.clone());
        async move {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&dynamodb), &table);
            let signer = KmsSigner::connect(aws_sdk_kms::Client::new(&kms_config), &key_id).await?;
            let settings = test_settings(Backend::Aws {
                table,
                kms_key_id: key_id,
                wrapping_key_id: None,
                previous_kms_key_id: None,
            });
            Ok(m2m_shared::App::with_parts(
                settings,
                Arc::new(store),
                Arc::new(signer),
                Arc::new(SystemClock),
            ))
        }
    };
    let service = function_service(start, Function::Discovery);
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/events/jwks.json"
    ))
    .unwrap();
    let jwks = || lambda_http::request::from_str(&event).unwrap();

    let started = Instant::now();
    service.start().await; // the cold start, as the binary makes it
    let answer = service.clone().oneshot(jwks()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["retry-after"], "2");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );

    kms.set(Fault::Forward);
    let answer = service.clone().oneshot(jwks()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap();
    let keys: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(keys["keys"][0]["kty"], "RSA");
}

/// `GET /health` answers without touching anything; `GET /health/ready` answers 200 while the
/// table and the key answer, 503 naming the table when it hangs (within its 2 s budget), and a
/// flood of probes reaches the table once per few seconds, not at its rate.
#[tokio::test]
async fn readiness_names_what_does_not_answer_and_probes_do_not_flood_it() {
    let f = spawn_signing_app_behind_fault_proxies(DEFAULT_BUDGET, Signing::Kms).await;
    let t = &f.api;
    f.dynamodb.take_calls();
    let alive = t.get("/health", &[]).await;
    assert_eq!(alive.status, StatusCode::OK);
    assert_eq!(alive.body["status"], "alive");
    for _ in 0..20 {
        let ready = t.get("/health/ready", &[]).await;
        assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
        assert_eq!(ready.body["store"], "ok");
        assert_eq!(ready.body["signer"], "ok");
    }
    let reads = f.dynamodb.take_calls();
    assert_eq!(
        reads.len(),
        1,
        "20 probes, one read of the table: {reads:?}"
    );

    f.dynamodb.set(Fault::Hang);
    tokio::time::sleep(Duration::from_secs(6)).await; // the kept readiness is over
    let started = Instant::now();
    let down = t.get("/health/ready", &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.body
    );
    assert_eq!(down.body["store"], "timedOut", "{:?}", down.body);
    assert_eq!(down.body["signer"], "ok");
    assert!(down.error().contains("store"), "{:?}", down.body);
    assert_eq!(down.body["status"], "unavailable");
    let alive = t.get("/health", &[]).await;
    assert_eq!(
        alive.status,
        StatusCode::OK,
        "alive whatever the table does"
    );
    f.dynamodb.set(Fault::Forward);
}
