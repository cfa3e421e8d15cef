//! The `m2m-verify` crate against a running server: discovery, typed claims, refusals, the
//! bounded refetch on an unknown `kid`, and the axum layer; and against stand-in servers
//! (JWKS, discovery, revocation list) signing with a test key: following the JWKS, refusing
//! keys not meant for RS256 signing, older lists, hanging polls and misleading discovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use m2m_verify::axum::{Rejection, authenticate};
use m2m_verify::{Claims, DiscoveryOptions, Error as VerifyError, TokenType, Verifier};
use serde_json::json;

/// m2m-verify for the test app, whose issuer ([`ISSUER`]) is not its URL.
pub(crate) async fn test_verifier(t: &TestApp, audience: &str) -> m2m_verify::Verifier {
    let options = m2m_verify::DiscoveryOptions::default().allow_issuer(ISSUER);
    m2m_verify::Verifier::discover_with(&t.base, audience, options)
        .await
        .unwrap()
}

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
    let verifier = test_verifier(&t, "test-api").await;
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
    let other_api = test_verifier(&t, "another-api").await;
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
    let verifier = test_verifier(&t, "test-api").await;
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
    let verifier = Arc::new(test_verifier(&t, "test-api").await);
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

/// A stand-in server's test signing key (RSA 2048, made for these tests only), and its modulus.
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDZ5X3zSe6uAphn\nrHcZGq/EXA0yhavP8yx0Jsp73nQ0zCKli66oFUJt5N0pwHIOKfg+9TOcUXVkTFuN\nKIYP8EDKzU8tcBOR+lAxFkQAoIVKD1BX78OQ/OJ+SGKa1Ku0p8xnBiTDNNrpLHg7\n1rJTCj8gMIz7ksHEJ4CYEqjoSjzuGtmZ6OGqwmQ4U73KAvoySG8x0SG60NqePLLj\nTaAlf+atmy7Te3e5aylRjzGY1N+Vayefjs8vDfwa9fiF5C8BsYolqxGNcmdM8zuh\nqUy0nEpA/JDY+Eh34XCF5xPx4rWifA+zpWaVYWOkVnWuDNPS41iwAPj6HXlJjQWb\nA3a22LYhAgMBAAECggEALaoNK7veQ+RyWSPJL98qX83kzCY8XA+7zLnGbJAxrVDs\nn+H2n+4Yplw0x0e3/2TnTBZqEwP1RKhF9X69HcD9ayL8yWp4B3s8bBUc+j6pwFwW\nO9+ZDh0ZQFreI1GXjHwv95VPhgNhL0WtCulTJNj8YrwaB6z5Y6jdp8EdWdUZENL3\noLLPzRVklT0ssI8o+Kh60Ies3ZADVt+otuQ2XO0Yo03/KvrQqhFn3iJLIfjWBbQQ\nfT3VvSgAekWYabscL6jKivCaXyoidVLbx94hzOKbuDE+bi1KqXvACQw5K2aYMCZ3\niJrMo1RnVGHOJWineHGlzJZCyLvwCMcAD9sSxknLgwKBgQD1EuaEBXEbiy3jgEjC\ntMbtf/jgO/u6EYA3lhSzwFTbMs5LhBoWqpmkARCphDnN5sc1694KHo6iuEqUe5yf\nHdwaY9EU0GRoPtpJ4AyHNxaU7ZNpGVfCgkQz/Y4GA1OCkdKaFQrlXuZ2JwGlqVZm\ncSpRoBo+hyIrdGFbL/kcCZlOqwKBgQDjnGh9bXPFyhu+BG4AIp9BWh6chlsPlxch\nuILLjOOXHfcf9mNL2UHlzKpidi64NDnT3532lGJHYlnsu+H2HJJlnPsAM001drHW\n97IVDShaGZob27Pt/49SazXBzp2+5qydiLcEp2xxK48DTzn8JZTJ2LzK45YRz3wn\nGS8UjwXeYwKBgAEugiYI0K7NUP9T0wX9USg8AbszDteq1e9urdLgDoiwCgabMHUD\nhZIg3y+yD4VKo5NC++MYmp92PAXTQsIRpsoJySxMhO9rvim1BtpwDY/SRW+wS5gI\ngMOvaUvmIDT09wr/JvpMJthS/9MIqf38dbPHDdlXVXbYLM//vze/ZBnZAoGARswi\n0EjYRwB7qpo0IQSj5q8CcIt2DZ5gipOa03eqXxnqAV4hOrmEPtdvdBrwo0lTZ2zZ\n9JXpD+0urW0vdt8iRksS49gRPv0Bii0Xjma+U3A9OEcZa4EfcnJ4kSUUegnETWf2\nDZOKLpVu8YeWMLD72+D3sGAkELwqEPtLYqiuGaMCgYEAl2pkL9/IlRrPkKh4eL69\n7lPAtnvCctlEaS1zNulf8uyUNECT6OQg+kA+Qv9BjSJHWXsvdNoNN0fu3W197MLU\nqsDPPD0llGo1X5VxvDYyc17KOt9OgB9+iLghJA6NGEeBMTIMWTlPPDLWRZYwXsSv\n1O72JddD1jUaQrqal/v7ydg=\n-----END PRIVATE KEY-----";
const TEST_KEY_N: &str = "2eV980nurgKYZ6x3GRqvxFwNMoWrz_MsdCbKe950NMwipYuuqBVCbeTdKcByDin4PvUznFF1ZExbjSiGD_BAys1PLXATkfpQMRZEAKCFSg9QV-_DkPzifkhimtSrtKfMZwYkwzTa6Sx4O9ayUwo_IDCM-5LBxCeAmBKo6Eo87hrZmejhqsJkOFO9ygL6MkhvMdEhutDanjyy402gJX_mrZsu03t3uWspUY8xmNTflWsnn47PLw38GvX4heQvAbGKJasRjXJnTPM7oalMtJxKQPyQ2PhId-FwhecT8eK1onwPs6VmlWFjpFZ1rgzT0uNYsAD4-h15SY0FmwN2tti2IQ";

/// The test key as a JWK under `kid`, with `extra` members (`use`, `alg`).
fn test_jwk(kid: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut jwk = json!({"kty": "RSA", "kid": kid, "n": TEST_KEY_N, "e": "AQAB"});
    jwk.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    jwk
}

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.unwrap().as_secs()).unwrap()
}

/// `claims` signed with the test key under `kid`.
fn signed(kid: &str, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// An access token's claims for `sub`, issued at `iat`.
fn claims_at(sub: &str, iat: i64) -> serde_json::Value {
    json!({"sub": sub, "tenantId": "acme", "type": "tenantApiToken", "iss": ISSUER,
           "aud": "test-api", "iat": iat, "exp": iat + 600})
}

/// A revocation list issued at `iat` voiding `sub`'s JWTs from before `before`.
fn revocation_list(iat: i64, revoked: &[(&str, i64)]) -> String {
    let revoked: Vec<_> = revoked
        .iter()
        .map(|(sub, before)| json!({"sub": sub, "before": before}))
        .collect();
    let list = json!({"iss": ISSUER, "iat": iat, "exp": iat + 600, "revoked": revoked});
    signed("list-key", &list)
}

/// A server answering each path with what it was last told to; a path it was told nothing
/// about hangs.
struct StandIn {
    base: String,
    answers: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl StandIn {
    async fn start() -> Self {
        let answers = Arc::new(std::sync::Mutex::new(HashMap::<String, String>::new()));
        let served = Arc::clone(&answers);
        let server = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let answer = served.lock().unwrap().get(uri.path()).cloned();
            async move {
                match answer {
                    Some(body) => body,
                    None => std::future::pending().await,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, server).await });
        Self { base, answers }
    }

    fn answer(&self, path: &str, body: impl ToString) {
        let mut answers = self.answers.lock().unwrap();
        answers.insert(path.to_owned(), body.to_string());
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn serve_keys(&self, keys: &[serde_json::Value]) {
        self.answer("/jwks", json!({ "keys": keys }));
    }

    /// A verifier of this server's JWKS.
    fn verifier(&self) -> Verifier {
        Verifier::new(self.url("/jwks"), ISSUER, "test-api")
    }
}

#[tokio::test]
async fn a_key_dropped_from_the_jwks_stops_verifying_within_the_refresh_interval() {
    let server = StandIn::start().await;
    server.serve_keys(&[test_jwk("old", json!({})), test_jwk("new", json!({}))]);
    let verifier = server
        .verifier()
        .key_refresh_interval(Duration::from_secs(1));
    let (old, new) = (
        signed("old", &claims_at("c", now())),
        signed("new", &claims_at("c", now())),
    );
    verifier.verify(&old).await.unwrap();
    verifier.verify(&new).await.unwrap();

    server.serve_keys(&[test_jwk("new", json!({}))]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        verifier.verify(&old).await.is_err(),
        "the retired key no longer verifies"
    );
    verifier.verify(&new).await.unwrap();
}

#[tokio::test]
async fn jwks_keys_for_encryption_or_another_algorithm_are_not_used() {
    let server = StandIn::start().await;
    server.serve_keys(&[
        test_jwk("enc", json!({"use": "enc"})),
        test_jwk("rs384", json!({"alg": "RS384"})),
        test_jwk("sig", json!({"use": "sig", "alg": "RS256"})),
    ]);
    let verifier = server.verifier();
    for kid in ["enc", "rs384"] {
        let token = signed(kid, &claims_at("c", now()));
        assert!(verifier.verify(&token).await.is_err(), "{kid} is not used");
    }
    verifier
        .verify(&signed("sig", &claims_at("c", now())))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_jwks_naming_a_kid_twice_is_refused_and_the_last_good_keys_stay() {
    let server = StandIn::start().await;
    server.serve_keys(&[test_jwk("kept", json!({}))]);
    let verifier = server
        .verifier()
        .key_refresh_interval(Duration::from_secs(1));
    let kept = signed("kept", &claims_at("c", now()));
    verifier.verify(&kept).await.unwrap();

    let twin = test_jwk("twin", json!({}));
    server.serve_keys(&[twin.clone(), twin, test_jwk("other", json!({}))]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    verifier
        .verify(&kept)
        .await
        .expect("the last good keys stay");
    for kid in ["twin", "other"] {
        let token = signed(kid, &claims_at("c", now()));
        assert!(verifier.verify(&token).await.is_err(), "{kid}: refused");
    }
}

/// A stand-in publishing the keys `c-key` and `list-key` and a list revoking `c`'s JWTs issued
/// up to ten seconds ago; and that moment.
async fn revoking_stand_in() -> (StandIn, i64) {
    let server = StandIn::start().await;
    server.serve_keys(&[
        test_jwk("c-key", json!({})),
        test_jwk("list-key", json!({})),
    ]);
    let issued = now() - 10;
    server.answer("/revocations", revocation_list(now(), &[("c", issued + 1)]));
    (server, issued)
}

#[tokio::test]
async fn an_older_revocation_list_does_not_bring_revoked_jwts_back() {
    let (server, issued) = revoking_stand_in().await;
    let verifier = server
        .verifier()
        .revocations_from(server.url("/revocations"))
        .revocation_poll_interval(Duration::from_millis(200));
    let token = signed("c-key", &claims_at("c", issued));
    let _ = verifier.verify(&token).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Revoked)
    ));

    server.answer("/revocations", revocation_list(now() - 240, &[]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        matches!(verifier.verify(&token).await, Err(VerifyError::Revoked)),
        "a list signed 240 s earlier is ignored"
    );
}

#[tokio::test]
async fn a_verifier_warmed_up_refuses_a_revoked_jwt_on_its_first_request() {
    let (server, issued) = revoking_stand_in().await;
    let verifier = server
        .verifier()
        .revocations_from(server.url("/revocations"));
    verifier.warm_up().await.unwrap();
    let token = signed("c-key", &claims_at("c", issued));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Revoked)
    ));
}

#[tokio::test]
async fn no_verify_waits_for_a_hanging_revocation_list() {
    let server = StandIn::start().await;
    server.serve_keys(&[test_jwk("c-key", json!({}))]);
    let verifier = server
        .verifier()
        .revocations_from(server.url("/revocations"))
        .revocation_poll_interval(Duration::from_millis(100));
    let token = signed("c-key", &claims_at("c", now()));
    for _ in 0..3 {
        let started = Instant::now();
        verifier.verify(&token).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "verified in {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn discovery_sending_keys_or_the_issuer_to_another_host_is_refused() {
    let server = StandIn::start().await;
    let document = |issuer: &str, jwks: &str, list: &str| json!({"issuer": issuer, "jwks_uri": jwks, "revocations_uri": list});
    let (own_jwks, own_list) = (server.url("/jwks"), server.url("/revocations"));
    let cases = [
        ("http://evil.test/jwks", own_list.as_str()),
        (own_jwks.as_str(), "http://evil.test/revocations"),
        (&own_jwks.replace("http://", "https://"), own_list.as_str()),
    ];
    for (jwks, list) in cases {
        let answer = document(&server.base, jwks, list);
        server.answer("/.well-known/openid-configuration", &answer);
        assert!(
            Verifier::discover(&server.base, "test-api").await.is_err(),
            "{answer}"
        );
    }
    let elsewhere = DiscoveryOptions::default().allow_origin("http://keys.test");
    let answer = document(&server.base, "http://keys.test/jwks", &own_list);
    server.answer("/.well-known/openid-configuration", answer);
    assert!(
        Verifier::discover_with(&server.base, "test-api", elsewhere)
            .await
            .is_ok()
    );

    let answer = document("https://evil.test", &own_jwks, &own_list);
    server.answer("/.well-known/openid-configuration", answer);
    assert!(
        Verifier::discover(&server.base, "test-api").await.is_err(),
        "the issuer is bound to the base URL"
    );
    let named = DiscoveryOptions::default().allow_issuer("https://evil.test");
    assert!(
        Verifier::discover_with(&server.base, "test-api", named)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn discovery_from_a_hanging_server_fails_within_its_timeout() {
    let server = StandIn::start().await;
    let options = DiscoveryOptions::default().timeout(Duration::from_millis(300));
    let started = Instant::now();
    assert!(
        Verifier::discover_with(&server.base, "test-api", options)
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tokens_valid_only_in_the_future_are_refused() {
    let server = StandIn::start().await;
    server.serve_keys(&[test_jwk("k", json!({}))]);
    let verifier = server.verifier();
    let mut not_yet = claims_at("c", now());
    not_yet["nbf"] = json!(now() + 3600);
    let from_the_future = claims_at("c", now() + 3600);
    for claims in [not_yet, from_the_future] {
        let refused = verifier.verify(&signed("k", &claims)).await;
        assert!(refused.is_err(), "{claims}");
    }
    let mut current = claims_at("c", now());
    current["nbf"] = json!(now() - 10);
    verifier.verify(&signed("k", &current)).await.unwrap();
}
