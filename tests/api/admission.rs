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

/// Tenant acme creates tokens as fast as it can (twelve at a time, for as long as the test
/// runs) while globex's services exchange four fresh tokens: each of them gets its JWT.
async fn one_tenants_flood_of_creates_refuses_no_other_tenants_exchange(t: &TestApp) {
    let vendor = t.vendor_token().await;
    t.tenant(&vendor, "acme").await;
    let mut fresh = Vec::new();
    for _ in 0..4 {
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
