//! bcrypt admission is fair: hashing new secrets (token management) and checking presented ones
//! (exchanges) are admitted separately, so one tenant's burst of creates refuses no other
//! tenant's exchange; and concurrent first exchanges of the same credentials share one check, so
//! replicas of a service starting together all get their JWT. At cost 10, so that the work
//! contends on a small machine as it does in production. On both stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

/// At the production cost: one bcrypt takes tens of milliseconds.
async fn costly(backing: Backing) -> TestApp {
    spawn_app_with(backing, |s| s.bcrypt_cost = 10).await
}

async fn sixteen_replicas_starting_at_once_all_get_a_jwt_for_one_bcrypt_check(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let before = t.app.bcrypt_checks_run();
    let replicas = (0..16).map(|_| t.exchange(EXCHANGE_V1, &client_id, &secret));
    for reply in futures::future::join_all(replicas).await {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    assert_eq!(t.app.bcrypt_checks_run() - before, 1, "one check, shared");
}

/// How many bcrypt runs of one kind one tenant may hold at once here: half of one run and two
/// waiting per core.
fn a_tenants_share() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores * 3 / 2).max(1)
}

/// Tenant acme creates tokens as fast as it can (twelve at a time, for as long as the test
/// runs) while globex's services exchange fresh tokens, as many at once as a tenant may have
/// checked: each of them gets its JWT.
async fn one_tenants_flood_of_creates_refuses_no_other_tenants_exchange(t: &TestApp) {
    let vendor = t.vendor_token().await;
    t.tenant(&vendor, "acme").await;
    let mut fresh = Vec::new();
    for _ in 0..a_tenants_share() {
        fresh.push(t.tenant_token(&vendor, "globex", json!({})).await);
    }
    let flooding = Arc::new(AtomicBool::new(true));
    let acme = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let create = async || {
        let mut answers = Vec::new();
        while flooding.load(Ordering::SeqCst) {
            let status = t.post(TENANT_TOKENS, &acme, &json!({})).await.status;
            if status == StatusCode::TOO_MANY_REQUESTS {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answers.push(status);
        }
        answers
    };
    let exchanges = async {
        tokio::time::sleep(Duration::from_millis(200)).await; // the flood is under way
        let exchanges = fresh
            .iter()
            .map(|(id, secret)| t.exchange(EXCHANGE_V1, id, secret));
        let replies = futures::future::join_all(exchanges).await;
        flooding.store(false, Ordering::SeqCst);
        replies
    };
    let (created, replies) = tokio::join!(
        futures::future::join_all((0..12).map(|_| create())),
        exchanges
    );
    for reply in replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let created: Vec<StatusCode> = created.into_iter().flatten().collect();
    assert!(created.contains(&StatusCode::CREATED), "{created:?}");
    assert!(
        created.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the flood is bounded: {created:?}"
    );
}

/// Tenant acme's services exchange twenty fresh tokens at once, again and again, while globex's
/// exchange theirs one after another: acme holds at most its share of the checks, so none of
/// globex's is refused.
async fn one_tenants_flood_of_first_exchanges_refuses_no_other_tenants(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let mut acme = Vec::new();
    for _ in 0..20 {
        acme.push(t.tenant_token(&vendor, "acme", json!({})).await);
    }
    let mut globex = Vec::new();
    for _ in 0..4 {
        globex.push(t.tenant_token(&vendor, "globex", json!({})).await);
    }
    let flooding = Arc::new(AtomicBool::new(true));
    // Each token's first successful exchange is its last check (later ones are remembered),
    // so the flood lasts while acme's refused exchanges try again: several rounds of checks.
    let flood = async || {
        let mut refused = 0;
        while flooding.load(Ordering::SeqCst) {
            let all = acme
                .iter()
                .map(|(id, secret)| t.exchange(EXCHANGE_V1, id, secret));
            for reply in futures::future::join_all(all).await {
                refused += usize::from(reply.status == StatusCode::TOO_MANY_REQUESTS);
            }
        }
        refused
    };
    let exchanges = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut replies = Vec::new();
        for (id, secret) in &globex {
            replies.push(t.exchange(EXCHANGE_V1, id, secret).await);
        }
        flooding.store(false, Ordering::SeqCst);
        replies
    };
    let (refused, replies) = tokio::join!(flood(), exchanges);
    for reply in replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    assert!(refused > 0, "acme's flood was bounded");
}

mod a_flood_of_first_exchanges {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        let t = costly(Backing::Embedded).await;
        one_tenants_flood_of_first_exchanges_refuses_no_other_tenants(&t).await;
    }

    #[tokio::test]
    async fn on_dynamodb() {
        let t = costly(Backing::Moto).await;
        one_tenants_flood_of_first_exchanges_refuses_no_other_tenants(&t).await;
    }
}

mod sixteen_replicas {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        let t = costly(Backing::Embedded).await;
        sixteen_replicas_starting_at_once_all_get_a_jwt_for_one_bcrypt_check(&t).await;
    }

    #[tokio::test]
    async fn on_dynamodb() {
        let t = costly(Backing::Moto).await;
        sixteen_replicas_starting_at_once_all_get_a_jwt_for_one_bcrypt_check(&t).await;
    }
}

mod a_flood_of_creates {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        let t = costly(Backing::Embedded).await;
        one_tenants_flood_of_creates_refuses_no_other_tenants_exchange(&t).await;
    }

    #[tokio::test]
    async fn on_dynamodb() {
        let t = costly(Backing::Moto).await;
        one_tenants_flood_of_creates_refuses_no_other_tenants_exchange(&t).await;
    }
}
