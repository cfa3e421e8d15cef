//! Revoking JWTs that are already out: deleting a token, rotating its secret out at once, or
//! removing its user from the tenant voids the JWTs issued from it before they expire. The
//! signed list at `/.well-known/revocations` says so (m2m-verify refuses them within one poll
//! interval), and `POST /oauth/introspect` answers `{"active": false}`. On both stores.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use m2m_verify::Error as VerifyError;

use crate::verifier::test_verifier;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn introspect(t: &TestApp, vendor: &str, token: &str) -> Reply {
    let request = t.http.post(format!("{}/oauth/introspect", t.base));
    let request = request
        .header("x-access-token", vendor)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token));
    t.send(request).await
}

async fn active(t: &TestApp, vendor: &str, token: &str) -> bool {
    let reply = introspect(t, vendor, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["active"].as_bool().unwrap()
}

async fn access_token(t: &TestApp, client_id: &str, secret: &str) -> String {
    let issued = t.exchange(EXCHANGE_V1, client_id, secret).await;
    assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
    issued.body["accessToken"].as_str().unwrap().to_owned()
}

/// The published list, verified with the JWKS as any verifier would.
async fn revocation_list(t: &TestApp) -> (String, Value) {
    let text = t
        .http
        .get(format!("{}/.well-known/revocations", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["content-type"], "application/jwt");
    let text = text.text().await.unwrap();
    let claims = verify_list(t, &text)
        .await
        .expect("the list verifies with the JWKS");
    (text, claims)
}

async fn verify_list(t: &TestApp, text: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks = t.get(JWKS, &[]).await.body;
    let kid = jsonwebtoken::decode_header(text)?.kid.unwrap_or_default();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str());
    let key = DecodingKey::from_jwk(&serde_json::from_value(jwk.unwrap().clone()).unwrap())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(text, &key, &validation).map(|data| data.claims)
}

async fn a_deleted_tokens_jwts_are_refused_by_the_list_and_by_introspection(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let jwt = access_token(t, &client_id, &secret).await;
    let verifier = test_verifier(t, "test-api").await;
    let verifier = verifier.revocation_poll_interval(Duration::from_millis(300));
    assert!(verifier.verify(&jwt).await.is_ok());
    let answer = introspect(t, &vendor, &jwt).await.body;
    assert_eq!(
        (&answer["active"], &answer["sub"]),
        (&json!(true), &json!(client_id))
    );
    assert_eq!(answer["client_id"], client_id.as_str());
    tokio::time::sleep(Duration::from_millis(1100)).await; // the revocation's second is later

    let url = format!("{}{TENANT_TOKENS}/{client_id}", t.base);
    let delete = t.http.delete(url).header("x-access-token", &vendor);
    assert_eq!(
        t.send(delete.header("frontegg-tenant-id", "acme"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        introspect(t, &vendor, &jwt).await.body,
        json!({"active": false})
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        matches!(verifier.verify(&jwt).await, Err(VerifyError::Revoked)),
        "within one interval"
    );

    let (text, list) = revocation_list(t).await;
    let revoked = list["revoked"].as_array().unwrap();
    let entry = revoked
        .iter()
        .find(|r| r["sub"] == client_id.as_str())
        .expect("listed");
    let iat = jsonwebtoken::dangerous::insecure_decode::<Value>(&jwt)
        .unwrap()
        .claims["iat"]
        .as_i64()
        .unwrap();
    assert!(entry["before"].as_i64().unwrap() > iat);
    let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    let tampered = json!({"iss": ISSUER, "iat": list["iat"], "exp": list["exp"], "revoked": []});
    parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
    assert!(
        verify_list(t, &parts.join(".")).await.is_err(),
        "tampering is refused"
    );
}
on_both_stores!(a_deleted_tokens_jwts_are_refused_by_the_list_and_by_introspection);

async fn a_secret_rotated_out_at_once_takes_its_jwts_and_a_grace_keeps_them(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let before = access_token(t, &client_id, &secret).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let path = format!("{TENANT_TOKENS}/{client_id}/rotate");
    let graced = t.post(&path, &headers, &json!({"graceMinutes": 5})).await;
    assert!(
        active(t, &vendor, &before).await,
        "a grace keeps the JWTs out"
    );
    let now_secret = graced.body["secret"].as_str().unwrap().to_owned();
    let rotated = t.post(&path, &headers, &json!({"graceMinutes": 0})).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(
        !active(t, &vendor, &before).await,
        "rotated out at once: revoked"
    );
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert_ne!(new_secret, now_secret);
    let after = access_token(t, &client_id, new_secret).await;
    assert!(
        active(t, &vendor, &after).await,
        "the new secret's JWTs stand"
    );
}
on_both_stores!(a_secret_rotated_out_at_once_takes_its_jwts_and_a_grace_keeps_them);

async fn a_user_leaving_the_tenant_takes_their_tokens_jwts(t: &TestApp) {
    let vendor = t.vendor_token().await;
    t.member(&vendor, "alice", "acme", json!([])).await;
    let (client_id, secret) = t.user_token(&vendor, "acme", "alice", json!({})).await;
    let jwt = access_token(t, &client_id, &secret).await;
    assert!(active(t, &vendor, &jwt).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let left = t
        .put(
            "/identity/resources/users/v1/alice",
            &[("x-access-token", &vendor)],
            &json!({"tenants": []}),
        )
        .await;
    assert_eq!(left.status, StatusCode::OK, "{:?}", left.body);
    assert!(!active(t, &vendor, &jwt).await);
    let (_, list) = revocation_list(t).await;
    assert!(
        list["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["sub"] == client_id.as_str())
    );
}
on_both_stores!(a_user_leaving_the_tenant_takes_their_tokens_jwts);

async fn listed(t: &TestApp) -> Vec<String> {
    let (_, list) = revocation_list(t).await;
    let revoked = list["revoked"].as_array().unwrap();
    revoked
        .iter()
        .map(|r| r["sub"].as_str().unwrap().to_owned())
        .collect()
}

/// The list grows with recent use, not with churn: a token deleted (or rotated out) without a
/// JWT out, or whose last JWT has expired, adds nothing; one with a JWT that may live, one entry.
async fn only_tokens_with_a_jwt_that_may_live_are_listed(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let long_ago = acme.token(json!({})).await;
    access_token(t, &long_ago.client_id, &long_ago.secret).await;
    // Past its JWT's life (600 s), the minute its last use stands for, and the verifiers' skew.
    t.clock.advance_seconds(600 + 120);
    let used = acme.token(json!({})).await;
    access_token(t, &used.client_id, &used.secret).await;
    for _ in 0..20 {
        let unused = acme.token(json!({})).await;
        assert_eq!(
            acme.delete_token(&unused.client_id).await.status,
            StatusCode::OK
        );
    }
    let rotated = acme.token(json!({})).await;
    let path = format!("{TENANT_TOKENS}/{}/rotate", rotated.client_id);
    let headers = [
        ("x-access-token", vendor.token.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let rotation = t.post(&path, &headers, &json!({"graceMinutes": 0})).await;
    assert_eq!(rotation.status, StatusCode::OK, "{:?}", rotation.body);
    assert_eq!(
        acme.delete_token(&long_ago.client_id).await.status,
        StatusCode::OK
    );
    assert_eq!(
        listed(t).await,
        Vec::<String>::new(),
        "unused and outlived tokens"
    );

    assert_eq!(
        acme.delete_token(&used.client_id).await.status,
        StatusCode::OK
    );
    assert_eq!(
        listed(t).await,
        vec![used.client_id],
        "a token with a JWT out"
    );
}
on_both_stores!(only_tokens_with_a_jwt_that_may_live_are_listed);

/// Anonymous readers are served from memory: the list may be cached for 5 s and a client that
/// holds it is answered `304 Not Modified`; an unchanged list keeps its signature (and tag)
/// past the interval; a revocation by this process is published at once.
#[tokio::test]
async fn the_list_is_cacheable_and_answers_its_etag_with_304() {
    let t = spawn_app(Backing::Embedded).await;
    let url = format!("{}/.well-known/revocations", t.base);
    let first = t.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["cache-control"], "public, max-age=5");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let text = first.text().await.unwrap();
    let held = get_if_none_match(&t, &etag).await;
    assert_eq!(held.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(held.headers()["etag"], etag.as_str());
    assert_eq!(held.text().await.unwrap(), "", "no body");
    let other = get_if_none_match(&t, "\"other\"").await;
    assert_eq!(other.status(), StatusCode::OK);

    t.clock.advance_seconds(6);
    let (again, _) = revocation_list(&t).await;
    assert_eq!(again, text, "unchanged: the same signed document");

    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let used = acme.token(json!({})).await;
    access_token(&t, &used.client_id, &used.secret).await;
    assert_eq!(
        acme.delete_token(&used.client_id).await.status,
        StatusCode::OK
    );
    let after = get_if_none_match(&t, &etag).await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "this process's revocation, at once"
    );
    assert_ne!(after.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn introspection_needs_the_vendor_and_says_nothing_of_what_is_not_a_jwt() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let form = t
        .http
        .post(format!("{}/oauth/introspect", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=x");
    assert_eq!(t.send(form).await.status, StatusCode::UNAUTHORIZED);
    for junk in ["x", "eyJhbGciOiJub25lIn0.e30.", vendor.as_str()] {
        assert_eq!(
            introspect(&t, &vendor, junk).await.body,
            json!({"active": false}),
            "{junk}"
        );
    }
    let missing = t
        .send(
            t.http
                .post(format!("{}/oauth/introspect", t.base))
                .header("x-access-token", &vendor),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

/// The list, asked for unless it is still the one tagged `etag`.
async fn get_if_none_match(t: &TestApp, etag: &str) -> reqwest::Response {
    let url = format!("{}/.well-known/revocations", t.base);
    let request = t.http.get(url).header("if-none-match", etag);
    request.send().await.unwrap()
}
