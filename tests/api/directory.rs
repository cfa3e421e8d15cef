//! The directory and the token lifecycle: JWTs say what holds at the moment of exchange,
//! tokens are managed by their owners only, and tokens die with their users and tenants.

use std::time::Duration;

use crate::support::client::Vendor;
use crate::support::*;
use m2m_shared::domain::{ClientId, TenantId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn grants(claims: &Value) -> (Value, Value) {
    (claims["roles"].clone(), claims["permissions"].clone())
}

/// `reports.read` and `reports.write`, and the role `reader` holding the first.
async fn reader_role(vendor: &Vendor<'_>) {
    vendor.permission("p-read", "reports.read").await;
    vendor.permission("p-write", "reports.write").await;
    vendor.role("r-reader", "reader", json!(["p-read"])).await;
}

async fn a_roles_new_permissions_show_in_the_next_jwt_of_its_tokens(t: &TestApp) {
    let vendor = t.as_vendor().await;
    reader_role(&vendor).await;
    let bot = vendor
        .tenant("acme")
        .token(json!({"roleIds": ["r-reader"]}))
        .await;
    let before = t.claims_of(&bot).await;
    assert_eq!(
        grants(&before),
        (json!(["reader"]), json!(["reports.read"]))
    );

    let both = json!({"permissionIds": ["p-read", "p-write"]});
    let reply = vendor
        .call(Method::PATCH, &format!("{ROLES}/r-reader"), Some(both))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let after = t.claims_of(&bot).await;
    assert_eq!(
        after["permissions"],
        json!(["reports.read", "reports.write"])
    );
}
on_both_stores!(a_roles_new_permissions_show_in_the_next_jwt_of_its_tokens);

async fn a_users_new_roles_show_in_the_next_jwt_of_their_personal_token(t: &TestApp) {
    let vendor = t.as_vendor().await;
    reader_role(&vendor).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["r-reader"])).await;
    let laptop = alice.personal_token(json!({})).await;
    let claims = t.claims_of(&laptop).await;
    assert_eq!(
        grants(&claims),
        (json!(["reader"]), json!(["reports.read"]))
    );
    assert_eq!(claims["email"], "alice@example.test");

    alice.join(json!([])).await;
    assert_eq!(grants(&t.claims_of(&laptop).await), (json!([]), json!([])));
}
on_both_stores!(a_users_new_roles_show_in_the_next_jwt_of_their_personal_token);

async fn a_deleted_permission_or_role_is_in_no_later_jwt(t: &TestApp) {
    let vendor = t.as_vendor().await;
    reader_role(&vendor).await;
    let body = json!({"roleIds": ["r-reader"], "permissionIds": []});
    let bot = vendor.tenant("acme").token(body).await;
    let direct = vendor
        .tenant("acme")
        .token(json!({"permissionIds": ["p-write"]}))
        .await;
    assert_eq!(
        t.claims_of(&direct).await["permissions"],
        json!(["reports.write"])
    );

    let deleted = vendor
        .call(Method::DELETE, &format!("{PERMISSIONS}/p-write"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(t.claims_of(&direct).await["permissions"], json!([]));

    let role = format!("{ROLES}/r-reader");
    assert_eq!(
        vendor.call(Method::DELETE, &role, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(grants(&t.claims_of(&bot).await), (json!([]), json!([])));
    let again = vendor.call(Method::DELETE, &role, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "deleted already");
}
on_both_stores!(a_deleted_permission_or_role_is_in_no_later_jwt);

#[tokio::test]
async fn a_personal_token_needs_its_user_to_be_a_member_of_the_tenant() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let stranger = acme.user("stranger").create_personal_token(json!({})).await;
    assert_eq!(
        stranger.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        stranger.body
    );
    vendor.tenant("other").user("bob").join(json!([])).await;
    let elsewhere = acme.user("bob").create_personal_token(json!({})).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "a member of another tenant only"
    );
}

/// Unknown ids are answered 404, naming them: the request is well-formed, what it names is not
/// there.
#[tokio::test]
async fn unknown_role_and_permission_ids_are_refused_by_name() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    vendor.permission("p1", "one").await;
    let acme = vendor.tenant("acme");
    for body in [
        json!({"roleIds": ["nope"]}),
        json!({"permissionIds": ["p1", "nope"]}),
    ] {
        let reply = acme.create_token(body.clone()).await;
        reply.assert_refused(StatusCode::NOT_FOUND, "nope", format_args!("{body}"));
    }
    let role = json!({"key": "r", "permissionIds": ["nope"]});
    let reply = vendor.call(Method::POST, ROLES, Some(role)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    let user = json!({"tenants": [{"tenantId": "acme", "roleIds": ["nope"]}]});
    let path = "/identity/resources/users/v1/carol";
    let reply = vendor.call(Method::PUT, path, Some(user)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
}

#[tokio::test]
async fn permission_keys_are_unique_and_well_formed() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    vendor.permission("p1", "one").await;
    let taken = vendor
        .call(Method::POST, PERMISSIONS, Some(json!({"key": "one"})))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    let spaced = json!({"key": "has space"});
    let reply = vendor.call(Method::POST, PERMISSIONS, Some(spaced)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
}

/// 1,000 tokens under one user on DynamoDB: the cascade pages through the index and batches
/// its deletes; cut short (as a Lambda timeout would), it completes when run again.
#[tokio::test]
async fn a_cascade_over_a_thousand_tokens_completes_even_after_an_interruption() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let secret = alice.personal_token(json!({})).await.secret;
    let template = t
        .store
        .tokens_of_user(&UserId::parse("alice").unwrap())
        .await
        .unwrap()
        .remove(0);
    let alice = UserId::parse("alice").unwrap();
    plant_copies(&t, &template.client_id.to_string(), 999).await;
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
            .directory()
            .delete_user(&alice, m2m_shared::domain::directory::Origin::Api),
    )
    .await;
    assert!(cut_short.is_err(), "the cascade was interrupted");
    let left = t.store.tokens_of_user(&alice).await.unwrap().len();
    assert!(left > 0, "the interruption left work to do");

    let path = "/identity/resources/users/v1/alice";
    let reply = vendor.call(Method::DELETE, path, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
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
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let reply = acme.create_token(json!({"expiresInMinutes": 5})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let (client_id, secret) = credentials(&reply);
    let expires = reply.body["expires"].as_str().unwrap().to_owned();
    let listed = acme.list_tokens().await;
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

/// Writes `copies` copies of a token's item under new clientIds, straight into the table
/// (moto copies the whole table for every transaction, so 999 creations would take minutes).
async fn plant_copies(t: &TestApp, client_id: &str, copies: usize) {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let template = dynamo_item(t, client_id).await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let requests: Vec<WriteRequest> = (0..copies)
        .map(|_| {
            let id = ClientId::generate().to_string();
            let mut item = template.clone();
            item.insert("pk".into(), AttributeValue::S(format!("TOKEN#{id}")));
            item.insert("clientId".into(), AttributeValue::S(id.clone()));
            for index in ["gsi1sk", "gsi2sk"] {
                item.insert(index.into(), AttributeValue::S(format!("TOKEN#{id}")));
            }
            let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in requests.chunks(25) {
        let out = client
            .batch_write_item()
            .request_items(t.table.as_deref().unwrap(), chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items.is_none_or(|u| u.is_empty()));
    }
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

async fn refused_naming(vendor: &Vendor<'_>, method: Method, path: &str, body: Value, field: &str) {
    let reply = vendor.call(method.clone(), path, Some(body)).await;
    let what = format!("{method} {path}: {:?}", reply.body);
    reply.assert_refused(StatusCode::BAD_REQUEST, field, format_args!("{what}"));
}

/// Every string the API stores has a limit, answered with a 400 that names the field.
#[tokio::test]
async fn oversized_strings_are_refused_by_name() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let email = json!({"email": format!("{}@x.test", "e".repeat(60_000))});
    refused_naming(
        &vendor,
        Method::PUT,
        "/identity/resources/users/v1/alice",
        email,
        "email",
    )
    .await;
    for (body, field) in [
        (json!({"key": "k", "name": "n".repeat(50_000)}), "name"),
        (
            json!({"key": "k", "description": "d".repeat(50_000)}),
            "description",
        ),
        (json!({"key": "k".repeat(300)}), "key"),
        (json!({"id": "x".repeat(200), "key": "k"}), "id"),
    ] {
        refused_naming(&vendor, Method::POST, PERMISSIONS, body, field).await;
    }
}

/// Metadata is limited in size and in depth, on tenants and on tokens alike.
#[tokio::test]
async fn oversized_or_deep_metadata_is_refused_by_name() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let deep = json!({"a": {"b": {"c": {"d": {"e": {}}}}}});
    let big = json!({"blob": "x".repeat(50_000)});
    for metadata in [&deep, &big] {
        let body = json!({"metadata": metadata});
        let path = "/identity/resources/tenants/v1/acme";
        refused_naming(&vendor, Method::PUT, path, body, "metadata").await;
        let token = vendor
            .tenant("acme")
            .create_token(json!({"metadata": metadata}))
            .await;
        token.assert_refused(StatusCode::BAD_REQUEST, "metadata", "");
    }
}
