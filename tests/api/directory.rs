//! The directory and the token lifecycle: JWTs say what holds at the moment of exchange,
//! tokens are managed by their owners only, and tokens die with their users and tenants.

use std::time::Duration;

use crate::support::*;
use m2m_shared::domain::{ClientId, TenantId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TENANT_TOKENS_LIST: &str = "/identity/resources/tenants/api-tokens/v1";

struct Directory<'a> {
    t: &'a TestApp,
    vendor: String,
}

impl Directory<'_> {
    fn auth(&self) -> [(&str, &str); 1] {
        [("x-access-token", self.vendor.as_str())]
    }

    async fn permission(&self, id: &str, key: &str) {
        let reply = self
            .t
            .post(PERMISSIONS, &self.auth(), &json!({"id": id, "key": key}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    async fn role(&self, id: &str, key: &str, permission_ids: Value) {
        let body = json!({"id": id, "key": key, "permissionIds": permission_ids});
        let reply = self.t.post(ROLES, &self.auth(), &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    /// Exchanges credentials and returns the verified claims.
    async fn claims(&self, (client_id, secret): &(String, String)) -> Value {
        let reply = self.t.exchange(EXCHANGE_V1, client_id, secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        serde_json::to_value(
            self.t
                .app
                .verify_access_token(reply.body["accessToken"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    }
}

async fn directory(t: &TestApp) -> Directory<'_> {
    Directory {
        t,
        vendor: t.vendor_token().await,
    }
}

async fn claims_follow_the_directory(t: &TestApp) {
    let d = directory(t).await;
    d.permission("p-read", "reports.read").await;
    d.permission("p-write", "reports.write").await;
    d.role("r-reader", "reader", json!(["p-read"])).await;
    let tenant_token = t
        .tenant_token(&d.vendor, "acme", json!({"roleIds": ["r-reader"]}))
        .await;
    let claims = d.claims(&tenant_token).await;
    assert_eq!(
        (claims["roles"].clone(), claims["permissions"].clone()),
        (json!(["reader"]), json!(["reports.read"]))
    );

    // A role's permissions change: the next JWT shows it, with no change to the token.
    let reply = t
        .patch(
            &format!("{ROLES}/r-reader"),
            &d.auth(),
            &json!({"permissionIds": ["p-read", "p-write"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        d.claims(&tenant_token).await["permissions"],
        json!(["reports.read", "reports.write"])
    );

    // A user's roles change: the next JWT of their personal token shows it.
    t.member(&d.vendor, "alice", "acme", json!(["r-reader"]))
        .await;
    let personal = t.user_token(&d.vendor, "acme", "alice", json!({})).await;
    let claims = d.claims(&personal).await;
    assert_eq!(claims["roles"], json!(["reader"]));
    assert_eq!(claims["email"], "alice@example.test");
    t.member(&d.vendor, "alice", "acme", json!([])).await;
    let claims = d.claims(&personal).await;
    assert_eq!(
        (claims["roles"].clone(), claims["permissions"].clone()),
        (json!([]), json!([]))
    );

    // Deleting a permission or a role removes it from every JWT issued afterwards.
    assert_eq!(
        t.delete(&format!("{PERMISSIONS}/p-write"), &d.auth())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        d.claims(&tenant_token).await["permissions"],
        json!(["reports.read"])
    );
    assert_eq!(
        t.delete(&format!("{ROLES}/r-reader"), &d.auth())
            .await
            .status,
        StatusCode::OK
    );
    let claims = d.claims(&tenant_token).await;
    assert_eq!(
        (claims["roles"].clone(), claims["permissions"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(
        t.delete(&format!("{ROLES}/r-reader"), &d.auth())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn claims_follow_the_directory_on_the_embedded_default() {
    claims_follow_the_directory(&spawn_app(Backing::Embedded).await).await;
}

#[tokio::test]
async fn claims_follow_the_directory_on_dynamodb() {
    claims_follow_the_directory(&spawn_app(Backing::Moto).await).await;
}

#[tokio::test]
async fn token_creation_checks_the_directory() {
    let t = spawn_app(Backing::Embedded).await;
    let d = directory(&t).await;
    d.permission("p1", "one").await;
    let headers = [
        ("x-access-token", d.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "stranger"),
    ];
    let reply = t.post(USER_TOKENS, &headers, &json!({})).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "not a member of the tenant: {:?}",
        reply.body
    );
    t.member(&d.vendor, "bob", "other", json!([])).await;
    let headers = [
        ("x-access-token", d.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "bob"),
    ];
    assert_eq!(
        t.post(USER_TOKENS, &headers, &json!({})).await.status,
        StatusCode::NOT_FOUND
    );

    let headers = [
        ("x-access-token", d.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    for body in [
        json!({"roleIds": ["nope"]}),
        json!({"permissionIds": ["p1", "nope"]}),
    ] {
        let reply = t.post(TENANT_TOKENS, &headers, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.error().contains("nope"), "{:?}", reply.body);
    }
    let reply = t
        .post(
            ROLES,
            &d.auth(),
            &json!({"key": "r", "permissionIds": ["nope"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = t
        .put(
            "/identity/resources/users/v1/carol",
            &d.auth(),
            &json!({"tenants": [{"tenantId": "acme", "roleIds": ["nope"]}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = t.post(PERMISSIONS, &d.auth(), &json!({"key": "one"})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "keys are unique");
    let reply = t
        .post(PERMISSIONS, &d.auth(), &json!({"key": "has space"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        t.get(PERMISSIONS, &[]).await.status,
        StatusCode::UNAUTHORIZED,
        "the directory needs a vendor token"
    );
}

/// 1,000 tokens under one user on DynamoDB: the cascade pages through the index and batches
/// its deletes; cut short (as a Lambda timeout would), it completes when run again.
#[tokio::test]
async fn a_cascade_over_a_thousand_tokens_completes_even_after_an_interruption() {
    let t = spawn_app(Backing::Moto).await;
    let d = directory(&t).await;
    t.member(&d.vendor, "alice", "acme", json!([])).await;
    let (_, secret) = t.user_token(&d.vendor, "acme", "alice", json!({})).await;
    let template = t
        .store
        .tokens_of_user(&UserId::parse("alice").unwrap())
        .await
        .unwrap()
        .remove(0);
    let alice = UserId::parse("alice").unwrap();
    for _ in 0..999 {
        let mut token = template.clone();
        token.client_id = ClientId::generate();
        t.store.put_new(&token).await.unwrap();
    }
    assert_eq!(t.store.tokens_of_user(&alice).await.unwrap().len(), 1000);
    assert_eq!(
        t.store
            .tokens_in_tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()
            .len(),
        1000
    );

    let cut_short = tokio::time::timeout(
        Duration::from_millis(300),
        t.app
            .delete_user(&alice, m2m_shared::domain::directory::Origin::Api),
    )
    .await;
    assert!(cut_short.is_err(), "the cascade was interrupted");
    let left = t.store.tokens_of_user(&alice).await.unwrap().len();
    assert!(left > 0, "the interruption left work to do");

    let reply = t
        .delete("/identity/resources/users/v1/alice", &d.auth())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(t.store.tokens_of_user(&alice).await.unwrap().len(), 0);
    assert_eq!(
        t.exchange(EXCHANGE_V1, &template.client_id.to_string(), &secret)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expiring_tokens_carry_a_ttl_and_stop_at_expiry() {
    let t = spawn_app(Backing::Moto).await;
    let d = directory(&t).await;
    let headers = [
        ("x-access-token", d.vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let reply = t
        .post(TENANT_TOKENS, &headers, &json!({"expiresInMinutes": 5}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let (client_id, secret) = credentials(&reply);
    let expires = reply.body["expires"].as_str().unwrap().to_owned();
    let listed = t.get(TENANT_TOKENS_LIST, &headers).await;
    assert_eq!(listed.body[0]["expires"], expires.as_str());
    let id = ClientId::parse(&client_id).unwrap();
    let token = t.store.token(&id).await.unwrap().unwrap();
    let item = dynamo_item(&t, &client_id).await;
    assert_eq!(
        item["ttl"].as_n().unwrap(),
        &token.expires_at.unwrap().seconds().to_string(),
        "DynamoDB TTL attribute"
    );
    assert_eq!(
        t.exchange(EXCHANGE_V1, &client_id, &secret).await.status,
        StatusCode::OK
    );
    t.clock.advance_seconds(5 * 60);
    assert_eq!(
        t.exchange(EXCHANGE_V1, &client_id, &secret).await.status,
        StatusCode::UNAUTHORIZED,
        "refused before TTL deletion"
    );
}

async fn dynamo_item(
    t: &TestApp,
    client_id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let table = t.table.as_deref().expect("a DynamoDB test");
    aws_sdk_dynamodb::Client::new(&aws_config().await)
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("TOKEN#{client_id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("TOKEN".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}
