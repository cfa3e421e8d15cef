//! The per-token rate limit: at most `M2M_TOKEN_RATE_LIMIT_PER_MINUTE` JWTs per API token and
//! minute, over exchange, refresh and `/oauth/token` together, shared by every process.

use std::sync::Arc;

use m2m_shared::App;
use m2m_shared::adapters::LocalKeySigner;
use m2m_shared::error::Error;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

async fn limited(backing: Backing, per_minute: u32) -> TestApp {
    spawn_app_with(backing, |s| s.token_rate_limit_per_minute = per_minute).await
}

/// An exchange refused for the token's limit: 429, `Retry-After` within the minute, the body
/// saying so.
async fn refused_exchange(t: &TestApp, id: &str, secret: &str) {
    let request = t
        .http
        .post(format!("{}{EXCHANGE_V1}", t.base))
        .json(&json!({"clientId": id, "secret": secret}));
    let refused = request.send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": [format!("Too many requests for this token; try again in {wait} s")]})
    );
}

/// Three a minute: the fourth JWT of a token is a 429 with `Retry-After` until the minute
/// ends; the refresh token refused meanwhile is not spent; wrong secrets are not counted; other
/// tokens go on; the next minute the token works again.
async fn a_token_gets_its_limit_a_minute_and_holds_back_no_other(backing: Backing) {
    let t = limited(backing, 3).await;
    let vendor = t.vendor_token().await;
    let (id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let (other_id, other_secret) = t.tenant_token(&vendor, "acme", json!({})).await;

    t.clock.to_next_minute();
    let first = t.exchange(EXCHANGE_V1, &id, &secret).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let refresh = first.body["refreshToken"].as_str().unwrap();
    let second = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    let wrong = t.exchange(EXCHANGE_V1, &id, &other_secret).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "not counted");
    let third = t.exchange(EXCHANGE_V2, &id, &secret).await;
    assert_eq!(third.status, StatusCode::OK, "{:?}", third.body);

    refused_exchange(&t, &id, &secret).await;
    let next = second.body["refreshToken"].as_str().unwrap();
    let held = t
        .post(REFRESH_V2, &[], &json!({"refreshToken": next}))
        .await;
    assert_eq!(
        held.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        held.body
    );
    assert_eq!(
        t.oauth_grant(&id, &secret).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = t.exchange(EXCHANGE_V1, &other_id, &other_secret).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another token is not held back"
    );

    t.clock.advance_seconds(60);
    let renewed = t
        .post(REFRESH_V2, &[], &json!({"refreshToken": next}))
        .await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "the refused refresh token was kept"
    );
    assert_eq!(
        t.exchange(EXCHANGE_V1, &id, &secret).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_gets_its_limit_a_minute_on_the_embedded_store() {
    a_token_gets_its_limit_a_minute_and_holds_back_no_other(Backing::Embedded).await;
}

#[tokio::test]
async fn a_token_gets_its_limit_a_minute_on_dynamodb() {
    a_token_gets_its_limit_a_minute_and_holds_back_no_other(Backing::Moto).await;
}

/// Two processes on one store (two Lambda instances), forty exchanges of one token, four at a
/// time: exactly the limit of ten succeed, the rest are told to wait; five rounds.
async fn the_limit_is_shared_by_every_process(backing: Backing) {
    let t = limited(backing, 10).await;
    let vendor = t.vendor_token().await;
    let key_dir = tempfile::tempdir().unwrap();
    let signer = LocalKeySigner::load_or_create(&key_dir.path().join("key.pem")).unwrap();
    let mut settings = test_settings(Backend::Embedded {
        data_dir: key_dir.path().to_owned(),
        audit_stream: None,
    });
    settings.token_rate_limit_per_minute = 10;
    let clock: Arc<TestClock> = Arc::clone(&t.clock);
    let twin = App::with_parts(settings, Arc::clone(&t.store), Arc::new(signer), clock);
    for round in 0..5 {
        let (id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
        t.clock.to_next_minute();
        let (mut issued, mut limited) = (0, 0);
        // Four at a time, two in each process: within the bcrypt queue of any machine.
        for _ in 0..10 {
            let exchanges = (0..4).map(|n| {
                let app = if n % 2 == 0 { &*t.app } else { &twin };
                let (id, secret) = (id.clone(), secret.clone());
                async move { app.credentials(ISSUER).exchange(&id, &secret).await }
            });
            for outcome in futures::future::join_all(exchanges).await {
                match outcome {
                    Ok(_) => issued += 1,
                    Err(Error::RateLimited(_)) => limited += 1,
                    Err(other) => panic!("round {round}: {other:?}"),
                }
            }
        }
        assert_eq!((issued, limited), (10, 30), "round {round}");
    }
}

#[tokio::test]
async fn the_limit_is_shared_by_every_process_on_the_embedded_store() {
    the_limit_is_shared_by_every_process(Backing::Embedded).await;
}

#[tokio::test]
async fn the_limit_is_shared_by_every_process_on_dynamodb() {
    the_limit_is_shared_by_every_process(Backing::Moto).await;
}

/// Eight clients of one token at once, a hundred exchanges in all at the start of a minute with
/// a limit of sixty: every use reserved is given out, so exactly sixty get their JWT (requests
/// that found the process's reservation empty at once each reserve one, and none is given up).
async fn concurrent_clients_get_the_whole_limit(backing: Backing) {
    let t = limited(backing, 60).await;
    let vendor = t.vendor_token().await;
    let (id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    t.clock.to_next_minute();
    let client = async || {
        let mut granted = 0;
        for _ in 0..13 {
            let reply = t.exchange(EXCHANGE_V1, &id, &secret).await;
            match reply.status {
                StatusCode::OK => granted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}: {:?}", reply.body),
            }
        }
        granted
    };
    let granted: usize = futures::future::join_all((0..8).map(|_| client()))
        .await
        .into_iter()
        .sum();
    assert_eq!(granted, 60, "of 104 asked, the limit and no fewer");
}

#[tokio::test]
async fn concurrent_clients_get_the_whole_limit_on_the_embedded_store() {
    concurrent_clients_get_the_whole_limit(Backing::Embedded).await;
}

#[tokio::test]
async fn concurrent_clients_get_the_whole_limit_on_dynamodb() {
    concurrent_clients_get_the_whole_limit(Backing::Moto).await;
}
