//! The `m2m-verify` crate against a running server: discovery, typed claims, refusals, the
//! bounded refetch on an unknown `kid`, and the axum layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::*;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use m2m_verify::axum::{Rejection, authenticate};
use m2m_verify::{Claims, TokenType, Verifier};
use serde_json::json;

async fn access_token(t: &TestApp, body: serde_json::Value) -> String {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", body).await;
    let issued = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    issued.body["accessToken"].as_str().unwrap().to_owned()
}

async fn grant_reports_read(t: &TestApp) {
    t.reports_read_permission(&t.vendor_token().await).await;
}

#[tokio::test]
async fn verified_claims_are_typed_and_refusals_are_errors() {
    let t = spawn_app(Backing::Embedded).await;
    grant_reports_read(&t).await;
    let verifier = Verifier::discover(&t.base, "test-api").await.unwrap();
    let token = access_token(&t, json!({"permissionIds": ["p-read"]})).await;
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(
        (claims.tenant_id.as_str(), claims.token_type),
        ("acme", TokenType::Tenant)
    );
    assert!(claims.has_permission("reports.read") && !claims.has_permission("reports.write"));
    assert!(claims.has_any_permission(&["reports.write", "reports.read"]));

    let vendor = t.vendor_token().await;
    assert!(
        verifier.verify(&vendor).await.is_err(),
        "a vendor token is not an access token"
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","tenantId":"evil","type":"tenantApiToken","exp":9999999999,"iss":"https://auth.test","aud":"test-api"}"#);
    parts[1] = &forged_claims;
    assert!(verifier.verify(&parts.join(".")).await.is_err(), "tampered");
    let other_api = Verifier::discover(&t.base, "another-api").await.unwrap();
    assert!(other_api.verify(&token).await.is_err(), "wrong audience");
    t.clock.advance_seconds(-3600);
    let expired = access_token(&t, json!({})).await;
    assert!(verifier.verify(&expired).await.is_err(), "expired");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let t = spawn_app(Backing::Embedded).await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let upstream = format!("{}/.well-known/jwks.json", t.base);
    let counter = Arc::clone(&fetches);
    let proxy = axum::Router::new().route(
        "/jwks",
        get(move || {
            let (counter, upstream) = (Arc::clone(&counter), upstream.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                reqwest::get(upstream).await.unwrap().text().await.unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, proxy).await });

    let verifier = Verifier::new(jwks, "https://auth.test", "test-api")
        .refetch_interval(std::time::Duration::from_millis(300));
    let token = access_token(&t, json!({})).await;
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "keys are cached");

    let (_, rest) = token.split_once('.').unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"rotated-key"}"#);
    let unknown_kid = format!("{header}.{rest}");
    for _ in 0..5 {
        assert!(verifier.verify(&unknown_kid).await.is_err());
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "within the interval, no refetch storm"
    );
}

/// What a stand-in JWKS server does with the next fetch.
const SERVE: usize = 0;
const FAIL: usize = 1;
const HANG: usize = 2;

/// A JWKS server in front of the app's that serves, fails (500) or hangs as `mode` says, and
/// counts the fetches; its URL.
async fn jwks_server(t: &TestApp, mode: Arc<AtomicUsize>, fetches: Arc<AtomicUsize>) -> String {
    let upstream = format!("{}/.well-known/jwks.json", t.base);
    let server = axum::Router::new().route(
        "/jwks",
        get(move || {
            let (mode, fetches, upstream) = (mode.clone(), fetches.clone(), upstream.clone());
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                match mode.load(Ordering::SeqCst) {
                    FAIL => Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                    HANG => std::future::pending().await,
                    _ => Ok(reqwest::get(upstream).await.unwrap().text().await.unwrap()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, server).await });
    url
}

/// `token` under another `kid`, as after a key rotation (or a forgery).
fn with_kid(token: &str, kid: &str) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}

/// A verifier (refetch interval 500 ms, fetch timeout 1 s) whose JWKS server does what `mode`
/// says, having fetched the keys once; the fetch count, and a token its keys verify.
struct Flaky {
    mode: Arc<AtomicUsize>,
    fetches: Arc<AtomicUsize>,
    verifier: Arc<Verifier>,
    token: String,
    _app: TestApp,
}

const INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

async fn flaky_verifier() -> Flaky {
    let t = spawn_app(Backing::Embedded).await;
    let (mode, fetches) = (
        Arc::new(AtomicUsize::new(SERVE)),
        Arc::new(AtomicUsize::new(0)),
    );
    let jwks = jwks_server(&t, Arc::clone(&mode), Arc::clone(&fetches)).await;
    let verifier = Verifier::new(jwks, ISSUER, "test-api")
        .refetch_interval(INTERVAL)
        .fetch_timeout(std::time::Duration::from_secs(1));
    let token = access_token(&t, json!({})).await;
    verifier.verify(&token).await.unwrap();
    Flaky {
        mode,
        fetches,
        verifier: Arc::new(verifier),
        token,
        _app: t,
    }
}

/// While the JWKS server fails, a failed fetch is the interval's attempt (no storm of unknown
/// `kid`s), and the keys already known keep verifying.
#[tokio::test]
async fn a_failing_jwks_server_is_tried_once_an_interval_and_known_keys_keep_working() {
    let f = flaky_verifier().await;
    f.mode.store(FAIL, Ordering::SeqCst);
    tokio::time::sleep(INTERVAL).await;
    for n in 0..5 {
        let forged = with_kid(&f.token, &format!("k{n}"));
        assert!(f.verifier.verify(&forged).await.is_err());
        f.verifier
            .verify(&f.token)
            .await
            .expect("the known key still verifies");
    }
    assert_eq!(
        f.fetches.load(Ordering::SeqCst),
        2,
        "one failed attempt in the interval"
    );
}

/// While a fetch hangs, tokens under known keys do not wait for it; concurrent unknown `kid`s
/// share that one fetch, and its timeout is the interval's attempt.
#[tokio::test]
async fn a_hanging_jwks_fetch_stalls_no_known_key_and_is_not_repeated() {
    let f = flaky_verifier().await;
    f.mode.store(HANG, Ordering::SeqCst);
    tokio::time::sleep(INTERVAL).await;
    let unknown: Vec<_> = (0..4)
        .map(|n| {
            let verifier = Arc::clone(&f.verifier);
            let forged = with_kid(&f.token, &format!("h{n}"));
            tokio::spawn(async move { verifier.verify(&forged).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    for _ in 0..20 {
        f.verifier.verify(&f.token).await.unwrap();
    }
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "cached keys do not wait for the hanging fetch: {:?}",
        started.elapsed()
    );
    assert_eq!(
        f.fetches.load(Ordering::SeqCst),
        2,
        "one fetch for four unknown kids"
    );
    f.mode.store(SERVE, Ordering::SeqCst);
    for waiting in unknown {
        assert!(
            waiting.await.unwrap().is_err(),
            "the hanging fetch ends at its timeout"
        );
    }
    assert_eq!(
        f.fetches.load(Ordering::SeqCst),
        2,
        "the waiters found the interval's attempt"
    );
    f.verifier.verify(&f.token).await.unwrap();
}

/// The classic algorithm confusion: an HS256 token "signed" with the published RSA key as the
/// HMAC secret, under the real `kid`. Only the RS256 pin stands between it and acceptance.
#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_refused_for_its_algorithm() {
    let t = spawn_app(Backing::Embedded).await;
    let verifier = Verifier::discover(&t.base, "test-api").await.unwrap();
    let genuine = access_token(&t, json!({})).await;
    verifier.verify(&genuine).await.unwrap();

    let kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let vendor = t.vendor_token().await;
    let pem = t.get(CONFIGURATIONS, &[("x-access-token", &vendor)]).await;
    let public_key = pem.body["publicKey"].as_str().unwrap().to_owned();
    let (_, payload) = genuine.split_once('.').unwrap();
    let payload = payload.split_once('.').unwrap().0;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public_key.as_bytes()).unwrap(),
    )
    .unwrap();

    let refused = verifier.verify(&forged).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("algorithm HS256 is not accepted"),
        "refused for its algorithm, got: {refused}"
    );
}

async fn reports(claims: Claims) -> Result<String, Rejection> {
    claims.require_permission("reports.read")?;
    Ok(format!("reports of {}", claims.tenant_id))
}

#[tokio::test]
async fn the_axum_layer_guards_a_vendor_api() {
    let t = spawn_app(Backing::Embedded).await;
    grant_reports_read(&t).await;
    let verifier = Arc::new(Verifier::discover(&t.base, "test-api").await.unwrap());
    let api = axum::Router::new()
        .route("/reports", get(reports))
        .route_layer(axum::middleware::from_fn_with_state(verifier, authenticate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/reports", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });

    let client = reqwest::Client::new();
    let call = |token: Option<String>| {
        let mut request = client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(None).await, 401);
    assert_eq!(call(Some("not-a-jwt".into())).await, 401);
    assert_eq!(call(Some(access_token(&t, json!({})).await)).await, 403);
    let allowed = access_token(&t, json!({"permissionIds": ["p-read"]})).await;
    assert_eq!(call(Some(allowed)).await, 200);
}
