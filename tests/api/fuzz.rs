//! Property tests over everything that arrives from outside: request bodies into every
//! endpoint's command, API Gateway events into the Lambda entry point, SQS events into
//! provisioning. (Secrets and refresh tokens: the properties beside their parsers in the shared
//! crate.) No coverage-guided fuzzer runs on this machine's stable toolchain (cargo-fuzz needs
//! nightly's `-Z sanitizer`), so these are proptest properties: generated inputs built from the
//! API's own vocabulary, and mutations of an API Gateway event built for every row of the endpoint table.
//! What must hold: never a 5xx or a panic, every refusal in the contract's `{"errors": [...]}`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Body;
use axum::http::Request;
use m2m_shared::App;
use m2m_shared::http::{ENDPOINTS, service};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::*;

/// Cases per property: enough to reach every endpoint many times, bounded to seconds.
const CASES: u32 = 1500;

/// Field names and values the API knows, so that generated bodies get past the first check.
fn vocabulary_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "acme",
            "alice",
            "admin",
            "p-read",
            "reports.read",
            "client_credentials",
            "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
            "m2mt_",
            "",
            "../../x",
            "%2F",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(field(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "clientId",
            "secret",
            "description",
            "roleIds",
            "permissionIds",
            "expiresInMinutes",
            "metadata",
            "tenantId",
            "userId",
            "email",
            "name",
            "key",
            "refreshToken",
            "grant_type",
            "scope",
            "handoff",
            "tenants",
            "apiTokensEnabled",
            "maxExpiresInMinutes",
            "categoryId",
            "graceMinutes",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{1,12}",
    ]
}

/// A body: JSON from the vocabulary, or bytes of anything.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vocabulary_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// The app on the embedded store, a vendor token for it, and a tenant `acme` with a user.
fn fuzzed_app(runtime: &tokio::runtime::Runtime) -> (Arc<App>, String, tempfile::TempDir) {
    runtime.block_on(async {
        let clock = Arc::new(TestClock::default());
        let public = |s: &mut Settings| s.public_url = Some("http://127.0.0.1:9".into());
        let built = build_app_with(Backing::Embedded, clock, public).await;
        let app = built.app;
        let vendor = app.vendors().create("tests".into()).await.unwrap();
        let (client_id, secret) = (vendor.record.client_id.to_string(), vendor.secret);
        let vendors = app.vendors();
        let (token, _) = vendors
            .authenticate(&client_id, secret.expose(), ISSUER)
            .await
            .unwrap();
        (app, token, built.dir.unwrap())
    })
}

/// Sends `request` through the service of every route; its path, status and JSON body.
async fn answer<B>(app: &Arc<App>, request: Request<B>) -> (String, u16, Value)
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let path = request.uri().path().to_owned();
    let response = service(Arc::clone(app), None)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (path, status, body)
}

/// No 5xx, and every refusal in the contract's shape: `{"errors": [...]}`, or on the OAuth
/// token endpoint RFC 6749's `{"error": ...}`.
fn holds_the_contract((path, status, body): (String, u16, Value)) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{path}: {status}: {body}");
    if status < 400 || status == 404 || status == 405 {
        return Ok(()); // 404 and 405 from routing may come without a body
    }
    if path.starts_with("/oauth/") && body.get("error").is_some() {
        prop_assert!(body["error"].is_string(), "{path}: {status}: {body}");
        return Ok(());
    }
    let errors = body["errors"].as_array();
    let shaped = errors.is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string));
    prop_assert!(shaped, "{path}: {status}: {body}");
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The same cases on every run, so that CI is repeatable; `PROPTEST_RNG_SEED=<n>` explores
/// others and `PROPTEST_CASES=<n>` runs more (a failure prints the case to keep as a test).
fn runner() -> TestRunner {
    let defaults = ProptestConfig::default(); // with PROPTEST_* from the environment
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(20_261_130),
        chosen => chosen,
    };
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => defaults.cases,
        Err(_) => CASES,
    };
    TestRunner::new(ProptestConfig {
        cases,
        rng_seed,
        failure_persistence: None,
        ..defaults
    })
}

/// Any body, to any endpoint, as the vendor or as anyone, with or without a tenant.
#[test]
fn no_request_body_makes_a_server_error() {
    let runtime = runtime();
    let (app, vendor, _dir) = fuzzed_app(&runtime);
    let ids = vec!["acme", "alice", "x", "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11"];
    let tenants = vec!["acme", "nope", " ", "a/b"];
    let requests = (
        0..ENDPOINTS.len(),
        prop::sample::select(ids),
        any::<bool>(),
        prop::option::of(prop::sample::select(tenants)),
        body(),
    );
    let outcome = runner().run(&requests, |(endpoint, id, as_vendor, tenant, body)| {
        let endpoint = &ENDPOINTS[endpoint];
        let mut request = Request::builder()
            .method(endpoint.method.clone())
            .uri(endpoint.path.replace("{id}", id))
            .header("content-type", "application/json");
        if as_vendor {
            request = request.header("x-access-token", vendor.as_str());
        }
        if let Some(tenant) = tenant {
            request = request
                .header("frontegg-tenant-id", tenant)
                .header("frontegg-user-id", "alice");
        }
        let request = request.body(Body::from(body)).unwrap();
        holds_the_contract(runtime.block_on(answer(&app, request)))
    });
    outcome.unwrap();
}

/// `event` with the value at `path` (object keys, in order) replaced, or removed if `None`.
fn mutated(mut event: Value, path: &[String], replacement: Option<Value>) -> Value {
    let mut at = &mut event;
    for key in &path[..path.len().saturating_sub(1)] {
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return event,
        }
    }
    if let (Some(last), Some(object)) = (path.last(), at.as_object_mut()) {
        match replacement {
            Some(value) => object.insert(last.clone(), value),
            None => object.remove(last),
        };
    }
    event
}

/// Each kept event with fields replaced by anything or removed, through the Lambda entry point.
#[test]
fn no_api_gateway_event_makes_a_server_error() {
    let runtime = runtime();
    let (app, vendor, _dir) = fuzzed_app(&runtime);
    let corpus = crate::support::gateway::one_per_row();
    let keys = vec![
        "body",
        "headers",
        "rawPath",
        "rawQueryString",
        "requestContext",
        "http",
        "method",
        "path",
        "isBase64Encoded",
        "x-access-token",
        "content-type",
        "routeKey",
        "domainName",
        "apiId",
        "stage",
        "cookies",
        "pathParameters",
    ];
    let mutations = (
        0..corpus.len(),
        prop::collection::vec(prop::sample::select(keys).prop_map(str::to_owned), 1..4),
        prop::option::of(vocabulary_value()),
        any::<bool>(),
    );
    let outcome = runner().run(&mutations, |(which, path, replacement, as_vendor)| {
        let (_, event) = &corpus[which];
        let mut event = mutated(event.clone(), &path, replacement);
        if as_vendor && event["headers"].is_object() {
            event["headers"]["x-access-token"] = json!(vendor);
        }
        // lambda_http's own conversion panics on a `Host` (or domainName) that makes no valid
        // URL, before any of our code runs; API Gateway routes by `Host`, so no such event
        // reaches a function. Those and the events it refuses are skipped.
        let text = event.to_string();
        let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(&text));
        let Ok(Ok(request)) = converted else {
            return Ok(());
        };
        holds_the_contract(runtime.block_on(answer(&app, request)))
    });
    outcome.unwrap();
}

/// SQS messages of any body (EventBridge envelopes of the directory's events with any detail,
/// or anything at all): never a panic, every message either applied or
/// reported failed for a retry, and nothing else reported.
#[test]
fn no_sqs_event_upsets_provisioning() {
    let runtime = runtime();
    let (app, _, _dir) = fuzzed_app(&runtime);
    let detail_types = vec![
        "tenant.created",
        "tenant.updated",
        "tenant.deleted",
        "user.created",
        "user.updated",
        "user.deleted",
        "user.roles.assigned",
        "role.created",
        "something.else",
        "",
    ];
    let message = prop_oneof![
        3 => (prop::sample::select(detail_types), vocabulary_value()).prop_map(|(kind, detail)| {
            json!({"version": "0", "id": "e", "detail-type": kind, "source": "acme.directory",
                   "detail": detail}).to_string()
        }),
        1 => "\\PC{0,200}",
    ];
    let batches = prop::collection::vec(prop::option::of(message), 1..10);
    let outcome = runner().run(&batches, |bodies| {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body}))
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
        let response = runtime.block_on(m2m_shared::provisioning::handle_batch(&app, event));
        for failure in &response.batch_item_failures {
            let known = (0..bodies.len()).any(|i| failure.item_identifier == format!("m{i}"));
            prop_assert!(known, "{}", failure.item_identifier);
        }
        Ok(())
    });
    outcome.unwrap();
}
