//! Tokens are managed by their owners only: a user their personal tokens in a tenant, a tenant
//! its tenant tokens; and tokens die with their owners. Each behaviour runs on the embedded
//! store and on DynamoDB.

use crate::support::client::Issued;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn client_ids(list: &Reply) -> Vec<&str> {
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    let items = list.body.as_array().unwrap();
    items
        .iter()
        .map(|v| v["clientId"].as_str().unwrap())
        .collect()
}

async fn a_user_lists_only_their_own_personal_tokens_and_never_a_secret(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let (alice, bob) = (acme.user("alice"), acme.user("bob"));
    alice.join(json!([])).await;
    bob.join(json!([])).await;
    let mine = alice.personal_token(json!({"description": "laptop"})).await;
    bob.personal_token(json!({})).await;
    acme.token(json!({})).await;

    let list = alice.list_personal_tokens().await;
    assert_eq!(client_ids(&list), [mine.client_id.as_str()]);
    let text = list.body.to_string();
    assert!(!text.contains("secret") && !text.contains(&mine.secret) && !text.contains("$2"));
}
on_both_stores!(a_user_lists_only_their_own_personal_tokens_and_never_a_secret);

async fn a_tenant_lists_only_its_own_tenant_tokens(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.user("alice").join(json!([])).await;
    acme.user("alice").personal_token(json!({})).await;
    let bot = acme.token(json!({"description": "bot"})).await;
    vendor.tenant("globex").token(json!({})).await;

    let list = acme.list_tokens().await;
    assert_eq!(client_ids(&list), [bot.client_id.as_str()]);
    assert!(!list.body.to_string().contains("secret"));
    let item = &list.body[0];
    for field in [
        "createdByUserId",
        "roleIds",
        "permissionIds",
        "expires",
        "metadata",
    ] {
        assert!(
            item.get(field).is_some(),
            "{field} is always present: {item}"
        );
    }
}
on_both_stores!(a_tenant_lists_only_its_own_tenant_tokens);

async fn another_owners_token_is_answered_as_if_it_did_not_exist(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.user("alice").join(json!([])).await;
    acme.user("bob").join(json!([])).await;
    let alices = acme.user("alice").personal_token(json!({})).await;
    let bobs = acme.user("bob").personal_token(json!({})).await;
    let globexs = vendor.tenant("globex").token(json!({})).await;

    let refusals = [
        acme.user("alice")
            .delete_personal_token(&bobs.client_id)
            .await,
        acme.delete_token(&globexs.client_id).await,
        acme.patch_token(&globexs.client_id, json!({"description": "x"}))
            .await,
        acme.delete_token(&alices.client_id).await,
    ];
    for reply in refusals {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    }
    t.claims_of(&bobs).await;
    t.claims_of(&globexs).await;
}
on_both_stores!(another_owners_token_is_answered_as_if_it_did_not_exist);

async fn patching_a_tenant_token_changes_its_listing_and_its_next_jwt(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-deploy", "deploy").await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({"description": "bot"})).await;
    // Exchanged once before the patch, so that the next exchange reads ahead what this one read.
    assert_eq!(t.claims_of(&bot).await["permissions"], json!([]));

    let patch = json!({"description": "deploy bot", "metadata": {"env": "prod"}, "permissionIds": ["p-deploy"]});
    let reply = acme.patch_token(&bot.client_id, patch).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        acme.list_tokens().await.body[0]["description"],
        "deploy bot"
    );
    let claims = t.claims_of(&bot).await;
    assert_eq!(claims["permissions"], json!(["deploy"]));
    assert_eq!(claims["metadata"], json!({"env": "prod"}));

    let unknown_role = acme
        .patch_token(&bot.client_id, json!({"roleIds": ["nope"]}))
        .await;
    assert_eq!(unknown_role.status, StatusCode::NOT_FOUND);
}
on_both_stores!(patching_a_tenant_token_changes_its_listing_and_its_next_jwt);

async fn last_used_at_is_written_by_the_exchange_at_most_once_a_minute(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({})).await;
    let last_used = || async { acme.list_tokens().await.body[0]["lastUsedAt"].clone() };
    assert_eq!(last_used().await, Value::Null, "never used yet");

    t.claims_of(&bot).await;
    let first = last_used().await;
    assert!(first.is_string(), "{first}");
    t.claims_of(&bot).await;
    assert_eq!(last_used().await, first, "not rewritten within the minute");
    t.clock.advance_seconds(61);
    t.claims_of(&bot).await;
    assert_ne!(last_used().await, first);
}
on_both_stores!(last_used_at_is_written_by_the_exchange_at_most_once_a_minute);

async fn deleting_a_token_stops_its_exchange_and_its_refresh_tokens_at_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme");
    let alice = alice.user("alice");
    alice.join(json!([])).await;
    let laptop = alice.personal_token(json!({})).await;
    let issued = t
        .exchange(EXCHANGE_V1, &laptop.client_id, &laptop.secret)
        .await;
    let refresh = issued.body["refreshToken"].clone();

    let deleted = alice.delete_personal_token(&laptop.client_id).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let exchange = t
        .exchange(EXCHANGE_V1, &laptop.client_id, &laptop.secret)
        .await;
    assert_eq!(exchange.status, StatusCode::UNAUTHORIZED);
    let refreshed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(alice.list_personal_tokens().await.body, json!([]));
}
on_both_stores!(deleting_a_token_stops_its_exchange_and_its_refresh_tokens_at_once);

async fn refused(t: &TestApp, issued: &Issued) -> bool {
    let reply = t
        .exchange(EXCHANGE_V1, &issued.client_id, &issued.secret)
        .await;
    reply.status == StatusCode::UNAUTHORIZED
}

async fn deleting_a_user_deletes_their_tokens_in_every_tenant_and_their_refresh_tokens(
    t: &TestApp,
) {
    let vendor = t.as_vendor().await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    acme.create().await;
    globex.create().await;
    let both = json!({"tenants": [{"tenantId": "acme", "roleIds": []}, {"tenantId": "globex", "roleIds": []}]});
    let put = vendor
        .call(
            Method::PUT,
            "/identity/resources/users/v1/alice",
            Some(both),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    acme.user("bob").join(json!([])).await;
    let in_acme = acme.user("alice").personal_token(json!({})).await;
    let in_globex = globex.user("alice").personal_token(json!({})).await;
    let bobs = acme.user("bob").personal_token(json!({})).await;
    let issued = t
        .exchange(EXCHANGE_V1, &in_globex.client_id, &in_globex.secret)
        .await;
    let refresh = issued.body["refreshToken"].clone();

    let deleted = vendor
        .call(Method::DELETE, "/identity/resources/users/v1/alice", None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(refused(t, &in_acme).await && refused(t, &in_globex).await);
    let refreshed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    assert!(!refused(t, &bobs).await, "other users' tokens live on");
}
on_both_stores!(deleting_a_user_deletes_their_tokens_in_every_tenant_and_their_refresh_tokens);

async fn deleting_a_tenant_deletes_its_tokens_its_members_tokens_and_its_memberships(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    let put = vendor
        .call(
            Method::PUT,
            "/identity/resources/tenants/v1/acme",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    acme.user("bob").join(json!([])).await;
    let bobs = acme.user("bob").personal_token(json!({})).await;
    let acmes = acme.token(json!({})).await;
    let globexs = globex.token(json!({})).await;

    let deleted = vendor
        .call(Method::DELETE, "/identity/resources/tenants/v1/acme", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(refused(t, &acmes).await && refused(t, &bobs).await);
    assert!(!refused(t, &globexs).await, "other tenants' tokens live on");
    let bob = t.stored_user("bob").await.unwrap();
    assert!(bob.tenants.is_empty(), "bob's membership in acme is gone");
    let again = acme.user("bob").create_personal_token(json!({})).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "no longer a member");
}
on_both_stores!(deleting_a_tenant_deletes_its_tokens_its_members_tokens_and_its_memberships);
