//! What is deleted stops working, whatever the timing: a token lives only inside a live tenant
//! and, for a personal token, a live membership; nothing deleted comes back; no update is lost.
//! Races are run many times with a small delay window, on both stores.

use std::time::Duration;

use crate::support::client::{Issued, Vendor};
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TENANTS: &str = "/identity/resources/tenants/v1";
const USERS: &str = "/identity/resources/users/v1";

async fn exchanges(t: &TestApp, token: &Issued) -> bool {
    let reply = t
        .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
        .await;
    match reply.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("exchange answered {other}: {:?}", reply.body),
    }
}

async fn delete(vendor: &Vendor<'_>, path: &str) {
    let reply = vendor.call(Method::DELETE, path, None).await;
    assert!(reply.status.is_success(), "DELETE {path}: {:?}", reply.body);
}

async fn put_user(vendor: &Vendor<'_>, user: &str, tenants: Value) -> Reply {
    let body = json!({"email": format!("{user}@example.test"), "tenants": tenants});
    vendor
        .call(Method::PUT, &format!("{USERS}/{user}"), Some(body))
        .await
}

/// A pause of 0 to `window` milliseconds, different each round.
fn jitter(round: u64, window: u64) -> Duration {
    Duration::from_micros((round * 7919) % (window * 1000 + 1))
}

async fn no_token_is_created_for_a_tenant_that_does_not_exist(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let headers = [
        ("x-access-token", vendor.token.as_str()),
        ("frontegg-tenant-id", "nowhere"),
        ("frontegg-user-id", "alice"),
    ];
    for (path, headers) in [(TENANT_TOKENS, &headers[..2]), (USER_TOKENS, &headers[..])] {
        let reply = t.post(path, headers, &json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {:?}",
            reply.body
        );
        assert_eq!(reply.error(), "Tenant nowhere not found");
    }
    let listed = vendor.tenant("nowhere").list_tokens().await;
    assert_eq!(listed.body, json!([]));
}
on_both_stores!(no_token_is_created_for_a_tenant_that_does_not_exist);

/// Creation and the tenant's deletion race; once the deletion has answered, a token whose
/// creation answered 201 never exchanges, is never listed, and does not come back with a new
/// tenant of the same id.
async fn race_creation_against_tenant_deletion(t: &TestApp, rounds: u64) {
    let vendor = t.as_vendor().await;
    let mut created = 0;
    for round in 0..rounds {
        let id = format!("race-{round}");
        let tenant = vendor.tenant(&id);
        tenant.create().await;
        let path = format!("{TENANTS}/{id}");
        let headers = [
            ("x-access-token", vendor.token.as_str()),
            ("frontegg-tenant-id", id.as_str()),
        ];
        let empty = json!({});
        let (creation, ()) = tokio::join!(t.post(TENANT_TOKENS, &headers, &empty), async {
            tokio::time::sleep(jitter(round, 3)).await;
            delete(&vendor, &path).await;
        });
        if creation.status != StatusCode::CREATED {
            assert_eq!(
                creation.status,
                StatusCode::NOT_FOUND,
                "{:?}",
                creation.body
            );
            continue;
        }
        created += 1;
        let token = Issued {
            client_id: creation.body["clientId"].as_str().unwrap().to_owned(),
            secret: creation.body["secret"].as_str().unwrap().to_owned(),
        };
        assert!(
            !exchanges(t, &token).await,
            "round {round}: a token outlived its tenant"
        );
        tenant.create().await;
        assert!(
            !exchanges(t, &token).await,
            "round {round}: revived by a new tenant"
        );
        assert_eq!(tenant.list_tokens().await.body, json!([]), "round {round}");
    }
    assert!(created > 0, "no round created a token before the deletion");
}

#[tokio::test]
async fn a_token_whose_creation_raced_its_tenants_deletion_never_works_on_the_embedded_store() {
    race_creation_against_tenant_deletion(&spawn_app(Backing::Embedded).await, 200).await;
}

#[tokio::test]
async fn a_token_whose_creation_raced_its_tenants_deletion_never_works_on_dynamodb() {
    race_creation_against_tenant_deletion(&spawn_app(Backing::Moto).await, 100).await;
}

async fn a_deleted_tenants_refresh_tokens_stop_with_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let bot = vendor.tenant("acme").token(json!({})).await;
    let laptop = alice.personal_token(json!({})).await;
    let mut refresh_tokens = Vec::new();
    for token in [&bot, &laptop] {
        let issued = t
            .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
            .await;
        refresh_tokens.push(issued.body["refreshToken"].clone());
    }
    delete(&vendor, &format!("{TENANTS}/acme")).await;
    vendor.tenant("acme").create().await;
    for refresh in refresh_tokens {
        let reply = t
            .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    }
}
on_both_stores!(a_deleted_tenants_refresh_tokens_stop_with_it);

async fn leaving_a_tenant_ends_the_personal_tokens_there_and_rejoining_revives_none(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    globex.create().await;
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let laptop = alice.personal_token(json!({})).await;
    assert!(exchanges(t, &laptop).await);

    let moved = put_user(&vendor, "alice", json!([{"tenantId": "globex"}])).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert!(!exchanges(t, &laptop).await);
    assert_eq!(alice.list_personal_tokens().await.body, json!([]));
    let client_id = m2m_shared::domain::ClientId::parse(&laptop.client_id).unwrap();
    assert!(
        t.store.token(&client_id).await.unwrap().is_none(),
        "deleted, not only refused"
    );

    alice.join(json!([])).await;
    assert!(
        !exchanges(t, &laptop).await,
        "re-adding alice does not revive it"
    );
}
on_both_stores!(leaving_a_tenant_ends_the_personal_tokens_there_and_rejoining_revives_none);

async fn a_new_user_under_a_deleted_users_id_inherits_no_token(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let laptop = alice.personal_token(json!({})).await;
    delete(&vendor, &format!("{USERS}/alice")).await;
    alice.join(json!([])).await;
    assert!(!exchanges(t, &laptop).await);
    assert_eq!(alice.list_personal_tokens().await.body, json!([]));
}
on_both_stores!(a_new_user_under_a_deleted_users_id_inherits_no_token);

async fn a_deleted_roles_id_is_never_used_again(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r1", "reader", json!(["p-read"])).await;
    let bot = vendor
        .tenant("acme")
        .token(json!({"roleIds": ["r1"]}))
        .await;
    delete(&vendor, &format!("{ROLES}/r1")).await;
    let body = json!({"id": "r1", "key": "admin", "permissionIds": ["p-read"]});
    let again = vendor.call(Method::POST, ROLES, Some(body)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let claims = t.claims_of(&bot).await;
    assert_eq!(
        (&claims["roles"], &claims["permissions"]),
        (&json!([]), &json!([]))
    );
}
on_both_stores!(a_deleted_roles_id_is_never_used_again);

/// A demotion in one tenant races the deletion of another: neither undoes the other.
async fn race_membership_change_against_tenant_deletion(t: &TestApp, rounds: u64) {
    let vendor = t.as_vendor().await;
    vendor.permission("p", "p").await;
    vendor.role("admin", "admin", json!(["p"])).await;
    for round in 0..rounds {
        let (gone, kept) = (format!("gone-{round}"), format!("kept-{round}"));
        vendor.tenant(&gone).create().await;
        vendor.tenant(&kept).create().await;
        let both = json!([{"tenantId": gone, "roleIds": ["admin"]}, {"tenantId": kept, "roleIds": ["admin"]}]);
        assert_eq!(
            put_user(&vendor, "alice", both).await.status,
            StatusCode::OK
        );
        let demoted =
            json!([{"tenantId": gone, "roleIds": ["admin"]}, {"tenantId": kept, "roleIds": []}]);
        let (put, ()) = tokio::join!(put_user(&vendor, "alice", demoted), async {
            tokio::time::sleep(jitter(round, 3)).await;
            delete(&vendor, &format!("{TENANTS}/{gone}")).await;
        });
        let alice = t.stored_user("alice").await.unwrap();
        let kept_roles = alice
            .tenants
            .iter()
            .find(|m| m.tenant_id.as_str() == kept)
            .map(|m| m.role_ids.len());
        match put.status {
            StatusCode::OK => assert_eq!(kept_roles, Some(0), "round {round}: demotion lost"),
            StatusCode::NOT_FOUND => assert_eq!(kept_roles, Some(1), "round {round}"),
            other => panic!("round {round}: PUT user answered {other}: {:?}", put.body),
        }
        // Whatever the order, alice is no member of the deleted tenant, nor of a new one.
        let in_gone = vendor.tenant(&gone).user("alice");
        let refused = in_gone.create_personal_token(json!({})).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "round {round}");
        vendor.tenant(&gone).create().await;
        let refused = in_gone.create_personal_token(json!({})).await;
        assert_eq!(
            refused.status,
            StatusCode::NOT_FOUND,
            "round {round}: {:?}",
            refused.body
        );
    }
}

#[tokio::test]
async fn a_demotion_racing_a_tenant_deletion_is_never_lost_on_the_embedded_store() {
    race_membership_change_against_tenant_deletion(&spawn_app(Backing::Embedded).await, 200).await;
}

#[tokio::test]
async fn a_demotion_racing_a_tenant_deletion_is_never_lost_on_dynamodb() {
    race_membership_change_against_tenant_deletion(&spawn_app(Backing::Moto).await, 60).await;
}

/// A user deleted while a tenant deletion ends their membership stays deleted.
async fn race_user_deletion_against_tenant_deletion(t: &TestApp, rounds: u64) {
    let vendor = t.as_vendor().await;
    for round in 0..rounds {
        let (tenant, user) = (format!("t-{round}"), format!("u-{round}"));
        vendor.tenant(&tenant).create().await;
        let member = json!([{"tenantId": tenant}]);
        assert_eq!(
            put_user(&vendor, &user, member).await.status,
            StatusCode::OK
        );
        let user_path = format!("{USERS}/{user}");
        tokio::join!(delete(&vendor, &user_path), async {
            tokio::time::sleep(jitter(round, 3)).await;
            delete(&vendor, &format!("{TENANTS}/{tenant}")).await;
        });
        assert_eq!(
            t.stored_user(&user).await,
            None,
            "round {round}: the user came back"
        );
    }
}

#[tokio::test]
async fn a_deleted_user_never_comes_back_from_a_racing_tenant_deletion_on_the_embedded_store() {
    race_user_deletion_against_tenant_deletion(&spawn_app(Backing::Embedded).await, 200).await;
}

#[tokio::test]
async fn a_deleted_user_never_comes_back_from_a_racing_tenant_deletion_on_dynamodb() {
    race_user_deletion_against_tenant_deletion(&spawn_app(Backing::Moto).await, 60).await;
}

/// DynamoDB's transactions hold at most 100 items; moving between 60 tenants is not one.
async fn a_user_moves_between_sixty_tenants_at_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let tenants = |from: usize| -> Value {
        (from..from + 60)
            .map(|n| json!({"tenantId": format!("t{n}")}))
            .collect()
    };
    for n in 0..120 {
        vendor.tenant(&format!("t{n}")).create().await;
    }
    for list in [tenants(0), tenants(60), tenants(30)] {
        let reply = put_user(&vendor, "alice", list).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let alice = t.stored_user("alice").await.unwrap();
    assert_eq!(alice.tenants.len(), 60);
}
on_both_stores!(a_user_moves_between_sixty_tenants_at_once);

async fn a_tenant_deleted_by_the_api_is_not_brought_back_by_a_late_event(t: &TestApp) {
    use m2m_shared::provisioning::apply;
    let event = |version: u64| {
        json!({"detail-type": "tenant.upserted", "detail": {"tenantId": "acme", "version": version}})
            .to_string()
    };
    apply(&t.app, &event(3)).await.unwrap();
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    delete(&vendor, &format!("{TENANTS}/acme")).await;
    for late in [2, 3] {
        apply(&t.app, &event(late)).await.unwrap();
        let reply = acme.list_tokens().await;
        assert_eq!(reply.status, StatusCode::OK);
        let token = acme
            .call(Method::POST, TENANT_TOKENS, Some(json!({})))
            .await;
        assert_eq!(
            token.status,
            StatusCode::NOT_FOUND,
            "version {late} brought it back"
        );
    }
    // The API's delete stamped version 4 (one above the stored 3): the next is 5.
    let clash = apply(&t.app, &event(4)).await.unwrap_err();
    assert!(clash.to_string().contains("version 4"), "{clash}");
    apply(&t.app, &event(5)).await.unwrap();
    let token = acme
        .call(Method::POST, TENANT_TOKENS, Some(json!({})))
        .await;
    assert_eq!(
        token.status,
        StatusCode::CREATED,
        "a newer event re-creates it"
    );
}
on_both_stores!(a_tenant_deleted_by_the_api_is_not_brought_back_by_a_late_event);
