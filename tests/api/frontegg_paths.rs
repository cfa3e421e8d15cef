//! The paths we share with Frontegg's identity API mean what they mean there: a `PUT` of a
//! user changes only the fields it names, and a `DELETE` of a user with `frontegg-tenant-id`
//! removes them from that tenant only.

use crate::support::client::Vendor;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ALICE: &str = "/identity/resources/users/v1/alice";
const USERS: &str = "/identity/resources/users/v1";
const TENANTS: &str = "/tenants/resources/tenants/v1";

async fn exchanges(t: &TestApp, token: &crate::support::client::Issued) -> bool {
    let reply = t
        .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
        .await;
    reply.status == StatusCode::OK
}

async fn a_users_put_changes_only_the_fields_it_names(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let laptop = alice.personal_token(json!({})).await;

    let renamed = json!({"name": "Alice Liddell", "metadata": {"team": "core"}});
    let reply = vendor.call(Method::PUT, ALICE, Some(renamed)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["email"], "alice@example.test", "the email stays");
    assert_eq!(reply.body["name"], "Alice Liddell");
    assert_eq!(
        reply.body["tenants"][0]["tenantId"], "acme",
        "the memberships stay"
    );
    assert!(exchanges(t, &laptop).await, "and so does her token");

    let email = json!({"email": "alice@wonderland.test"});
    let reply = vendor.call(Method::PUT, ALICE, Some(email)).await;
    assert_eq!(
        (&reply.body["name"], &reply.body["metadata"]),
        (&json!("Alice Liddell"), &json!({"team": "core"}))
    );
    // Frontegg sends a user's metadata as a string of JSON.
    let stringified = json!({"metadata": "{\"team\": \"data\"}"});
    let reply = vendor.call(Method::PUT, ALICE, Some(stringified)).await;
    assert_eq!(reply.body["metadata"], json!({"team": "data"}));
    let garbled = json!({"metadata": "{team"});
    let reply = vendor.call(Method::PUT, ALICE, Some(garbled)).await;
    reply.assert_refused(StatusCode::BAD_REQUEST, "metadata", "");

    let left = vendor
        .call(Method::PUT, ALICE, Some(json!({"tenants": []})))
        .await;
    assert_eq!(left.status, StatusCode::OK, "{:?}", left.body);
    assert!(
        !exchanges(t, &laptop).await,
        "tenants, when present, replace the memberships"
    );
}
on_both_stores!(a_users_put_changes_only_the_fields_it_names);

async fn deleting_a_user_with_a_tenant_header_removes_them_from_that_tenant_only(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    globex.create().await;
    acme.user("alice").join(json!([])).await;
    let both = json!({"tenants": [{"tenantId": "acme"}, {"tenantId": "globex"}]});
    assert_eq!(
        vendor.call(Method::PUT, ALICE, Some(both)).await.status,
        StatusCode::OK
    );
    let in_acme = acme.user("alice").personal_token(json!({})).await;
    let in_globex = globex.user("alice").personal_token(json!({})).await;

    let removed = acme.call(Method::DELETE, ALICE, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    assert!(!exchanges(t, &in_acme).await, "her token in acme ends");
    assert!(
        exchanges(t, &in_globex).await,
        "her token in globex lives on"
    );
    let user = t.stored_user("alice").await.expect("alice still exists");
    let tenants: Vec<&str> = user.tenants.iter().map(|m| m.tenant_id.as_str()).collect();
    assert_eq!(tenants, ["globex"]);
    let again = acme.call(Method::DELETE, ALICE, None).await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "no longer a member: {:?}",
        again.body
    );

    let everywhere = vendor.call(Method::DELETE, ALICE, None).await;
    assert_eq!(everywhere.status, StatusCode::NO_CONTENT);
    assert!(
        !exchanges(t, &in_globex).await,
        "without the header: everywhere"
    );
    assert_eq!(t.stored_user("alice").await, None);
}
on_both_stores!(deleting_a_user_with_a_tenant_header_removes_them_from_that_tenant_only);

/// Frontegg's shapes: whole-number floats for `expiresInMinutes` (up to Frontegg's 5,256,000),
/// `userMetadata` in personal tokens' JWTs, and the configuration's fields that apply here.
#[tokio::test]
async fn frontegg_shapes_are_accepted_and_answered() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let created = acme.create_token(json!({"expiresInMinutes": 1440.0})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(created.body["expires"].is_string());
    for refused in [json!(1.5), json!(5_256_001), json!("60")] {
        let reply = acme
            .create_token(json!({"expiresInMinutes": refused}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{refused}: {:?}",
            reply.body
        );
    }

    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let metadata = json!({"metadata": {"plan": "pro"}});
    assert_eq!(
        vendor.call(Method::PUT, ALICE, Some(metadata)).await.status,
        StatusCode::OK
    );
    let laptop = alice.personal_token(json!({})).await;
    assert_eq!(
        t.claims_of(&laptop).await["userMetadata"],
        json!({"plan": "pro"})
    );

    let configuration = vendor.call(Method::GET, CONFIGURATIONS, None).await;
    assert_eq!(configuration.body["jwtAlgorithm"], "RS256");
    assert_eq!(configuration.body["defaultTokenExpiration"], 600);
    assert_eq!(configuration.body["apiTokensEnabled"], true);
}

/// Frontegg's `POST` of roles and permissions takes arrays; a single object still works. An
/// invalid item stores nothing.
#[tokio::test]
async fn roles_and_permissions_are_created_from_frontegg_arrays() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let permissions = json!([{"key": "reports.read", "name": "Read"}, {"key": "reports.write"}]);
    let created = vendor
        .call(Method::POST, PERMISSIONS, Some(permissions))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let ids: Vec<&str> = created
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);

    let roles = json!([{"key": "reader", "name": "Reader", "permissionIds": [ids[0]]}]);
    let created = vendor.call(Method::POST, ROLES, Some(roles)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.body[0]["permissions"],
        json!([ids[0]]),
        "Frontegg's field"
    );
    assert_eq!(created.body[0]["permissionIds"], json!([ids[0]]));

    let one = vendor
        .call(Method::POST, ROLES, Some(json!({"key": "writer"})))
        .await;
    assert_eq!(
        (one.status, one.body["key"].as_str()),
        (StatusCode::CREATED, Some("writer"))
    );

    let half_bad = json!([{"key": "fine"}, {"key": "has space"}]);
    let refused = vendor.call(Method::POST, PERMISSIONS, Some(half_bad)).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    let twice = json!([{"key": "same"}, {"key": "same"}]);
    let refused = vendor.call(Method::POST, PERMISSIONS, Some(twice)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    let listed = vendor.call(Method::GET, PERMISSIONS, None).await;
    assert_eq!(
        listed.body.as_array().unwrap().len(),
        2,
        "nothing of a refused array was stored"
    );
}

/// Frontegg's tenant paths: create with `tenantId`, read (an array, as Frontegg answers),
/// update and delete; our `/identity/resources/tenants/v1/{id}` stays an alias.
async fn frontegg_tenant_paths_create_read_update_and_delete(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let body = json!({"tenantId": "globex", "name": "Globex", "metadata": {"tier": "gold"}});
    let created = vendor.call(Method::POST, TENANTS, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["tenantId"], "globex");
    let generated = vendor
        .call(Method::POST, TENANTS, Some(json!({"name": "Initech"})))
        .await;
    assert!(
        generated.body["tenantId"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );

    let path = format!("{TENANTS}/globex");
    let read = vendor.call(Method::GET, &path, None).await;
    assert_eq!(
        read.body[0]["metadata"], r#"{"tier":"gold"}"#,
        "a string of JSON, as Frontegg answers: {:?}",
        read.body
    );
    let renamed = vendor
        .call(Method::PUT, &path, Some(json!({"name": "Globex Corp"})))
        .await;
    assert_eq!(renamed.body["name"], "Globex Corp");
    let bot = vendor.tenant("globex").token(json!({})).await;
    assert_eq!(
        vendor.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(vendor.call(Method::GET, &path, None).await.body, json!([]));
    let exchange = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    assert_eq!(
        exchange.status,
        StatusCode::UNAUTHORIZED,
        "its tokens went with it"
    );
}
on_both_stores!(frontegg_tenant_paths_create_read_update_and_delete);

/// Frontegg's paginated tenant list: pages of `_limit` by id, `_offset` counting pages, with
/// the totals; a deleted tenant leaves the pages and the totals at once.
async fn tenants_are_listed_page_by_page(t: &TestApp) {
    let vendor = t.as_vendor().await;
    for n in [3, 1, 5, 2, 4] {
        let body = json!({"tenantId": format!("org-{n}"), "name": format!("Org {n}")});
        let created = vendor.call(Method::POST, TENANTS, Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let page = |offset: u32| {
        let path = format!("/tenants/resources/tenants/v2?_limit=2&_offset={offset}");
        let vendor = &vendor;
        async move { vendor.call(Method::GET, &path, None).await.body }
    };
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenantId"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = page(0).await;
    assert_eq!(ids(&first), ["org-1", "org-2"]);
    assert_eq!(
        first["_metadata"],
        json!({"totalItems": 5, "totalPages": 3})
    );
    assert_eq!(first["items"][0]["name"], "Org 1");
    assert_eq!(ids(&page(2).await), ["org-5"]);
    let path = format!("{TENANTS}/org-2");
    assert_eq!(
        vendor.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let after = page(0).await;
    assert_eq!(ids(&after), ["org-1", "org-3"]);
    assert_eq!(
        after["_metadata"],
        json!({"totalItems": 4, "totalPages": 2})
    );
    let too_big = vendor
        .call(
            Method::GET,
            "/tenants/resources/tenants/v2?_limit=201",
            None,
        )
        .await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
}
on_both_stores!(tenants_are_listed_page_by_page);

/// Frontegg's user creation in a tenant, and its role assignment and unassignment there.
async fn users_are_created_in_a_tenant_and_their_roles_assigned_there(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r-reader", "reader", json!(["p-read"])).await;
    let acme = vendor.tenant("acme");
    acme.create().await;
    let body = json!({"id": "carol", "email": "carol@acme.test", "name": "Carol"});
    let created = acme
        .call(
            Method::POST,
            "/identity/resources/users/v1",
            Some(body.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["tenantIds"], json!(["acme"]));
    assert_eq!(created.body["roles"], json!([]));
    let taken = acme
        .call(Method::POST, "/identity/resources/users/v1", Some(body))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);

    let laptop = acme.user("carol").personal_token(json!({})).await;
    let roles = "/identity/resources/users/v1/carol/roles";
    let reader = json!({"roleIds": ["r-reader"]});
    let assigned = acme.call(Method::POST, roles, Some(reader.clone())).await;
    assert_eq!(assigned.status, StatusCode::OK, "{:?}", assigned.body);
    assert_eq!(
        assigned.body["tenantId"], "acme",
        "Frontegg's membership answer"
    );
    assert_eq!(
        assigned.body["roles"][0]["key"], "reader",
        "{:?}",
        assigned.body
    );
    assert_eq!(assigned.body["isDisabled"], false);
    assert_eq!(t.claims_of(&laptop).await["roles"], json!(["reader"]));
    let unassigned = acme.call(Method::DELETE, roles, Some(reader.clone())).await;
    assert_eq!(unassigned.status, StatusCode::OK, "{:?}", unassigned.body);
    assert_eq!(
        t.claims_of(&laptop).await["roles"],
        json!([]),
        "the token lives on"
    );

    let elsewhere = vendor.tenant("globex");
    elsewhere.create().await;
    let not_member = elsewhere.call(Method::POST, roles, Some(reader)).await;
    assert_eq!(
        not_member.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        not_member.body
    );
}
on_both_stores!(users_are_created_in_a_tenant_and_their_roles_assigned_there);

/// Frontegg's listing shape: `description` is `null` when none was given, beside every other
/// field of a tenant token.
#[tokio::test]
async fn a_tenant_token_listing_has_frontegg_fields_with_null_where_unset() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.token(json!({})).await;
    acme.token(json!({"description": "deploy bot"})).await;
    let listed = acme.list_tokens().await;
    let items = listed.body.as_array().unwrap();
    assert_eq!(
        items[0]["description"],
        serde_json::Value::Null,
        "{:?}",
        listed.body
    );
    assert_eq!(items[1]["description"], "deploy bot");
    for field in [
        "clientId",
        "description",
        "tenantId",
        "createdByUserId",
        "metadata",
        "createdAt",
        "permissionIds",
        "roleIds",
        "expires",
    ] {
        assert!(items[0].get(field).is_some(), "{field} in {:?}", items[0]);
    }
}

/// Frontegg's `PUT …/roles/v1/{roleId}/permissions` sets a role's permissions, and the next
/// exchange of a token holding the role shows them.
async fn a_roles_permissions_are_set_on_frontegg_path(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.permission("p-write", "reports.write").await;
    vendor.role("analyst", "analyst", json!(["p-read"])).await;
    let bot = vendor
        .tenant("acme")
        .token(json!({"roleIds": ["analyst"]}))
        .await;
    let path = format!("{ROLES}/analyst/permissions");
    let set = json!({"permissionIds": ["p-read", "p-write"]});
    let reply = vendor.call(Method::PUT, &path, Some(set)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["permissions"], json!(["p-read", "p-write"]));
    assert_eq!(reply.body["key"], "analyst", "the rest of the role stays");
    let claims = t.claims_of(&bot).await;
    assert_eq!(
        claims["permissions"],
        json!(["reports.read", "reports.write"])
    );

    for (body, status) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({"permissionIds": ["p-nowhere"]}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let refused = vendor.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(refused.status, status, "{:?}", refused.body);
    }
    let missing = format!("{ROLES}/nobody/permissions");
    let refused = vendor
        .call(Method::PUT, &missing, Some(json!({"permissionIds": []})))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
}
on_both_stores!(a_roles_permissions_are_set_on_frontegg_path);

/// The keys of a role listing.
fn keys(roles: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    keys
}

/// The vendor's role `r-viewer` (`viewer`) and tenants `acme` and `globex`, each with a role of
/// its own keyed `auditor` (`r-acme`, `r-globex`): another tenant may use a tenant role's key.
async fn tenant_roles(vendor: &Vendor<'_>) {
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r-viewer", "viewer", json!(["p-read"])).await;
    for tenant in ["acme", "globex"] {
        let tenant = vendor.tenant(tenant);
        tenant.create().await;
        let id = format!("r-{}", tenant.id());
        let role = json!({"id": id, "key": "auditor", "permissionIds": ["p-read"]});
        let made = tenant.call(Method::POST, ROLES, Some(role)).await;
        assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
        assert_eq!(made.body["tenantId"], tenant.id());
    }
}

/// The roles listed with `tenant`'s header, or without one.
async fn listed_roles(vendor: &Vendor<'_>, tenant: Option<&str>) -> serde_json::Value {
    match tenant {
        Some(id) => vendor.tenant(id).call(Method::GET, ROLES, None).await.body,
        None => vendor.call(Method::GET, ROLES, None).await.body,
    }
}

/// Frontegg's tenant-specific roles: a role created with `frontegg-tenant-id` belongs to that
/// tenant, listed there beside the vendor's; its key is unique where it may be held.
async fn a_tenants_role_is_created_and_listed_for_that_tenant(t: &TestApp) {
    let vendor = t.as_vendor().await;
    tenant_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    for (body, why) in [
        (json!({"key": "viewer"}), "the vendor's roles hold the key"),
        (json!({"key": "auditor"}), "the tenant's own role holds it"),
    ] {
        let clash = acme.call(Method::POST, ROLES, Some(body)).await;
        assert_eq!(
            clash.status,
            StatusCode::CONFLICT,
            "{why}: {:?}",
            clash.body
        );
    }
    let refused = vendor
        .tenant("nowhere")
        .call(Method::POST, ROLES, Some(json!({"key": "ghost"})))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    assert_eq!(keys(&listed_roles(&vendor, None).await), ["viewer"]);
    let acme_roles = listed_roles(&vendor, Some("acme")).await;
    assert_eq!(keys(&acme_roles), ["auditor", "viewer"]);
    assert!(acme_roles.to_string().contains("r-acme"), "{acme_roles}");
    assert!(!acme_roles.to_string().contains("r-globex"), "{acme_roles}");
}
on_both_stores!(a_tenants_role_is_created_and_listed_for_that_tenant);

/// A tenant's role is held in that tenant only: tokens, memberships and assignments elsewhere
/// are refused as for an unknown role; in its tenant, JWTs carry it.
async fn a_tenants_role_is_held_in_that_tenant_only(t: &TestApp) {
    let vendor = t.as_vendor().await;
    tenant_roles(&vendor).await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    let refused = globex.create_token(json!({"roleIds": ["r-acme"]})).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    let join = json!({"tenants": [{"tenantId": "globex", "roleIds": ["r-acme"]}]});
    let refused = vendor.call(Method::PUT, ALICE, Some(join)).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    globex.user("alice").join(json!([])).await;
    let path = format!("{ALICE}/roles");
    let assign = json!({"roleIds": ["r-acme"]});
    let refused = globex.call(Method::POST, &path, Some(assign)).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    let bot = globex.token(json!({})).await;
    let patch = globex
        .patch_token(&bot.client_id, json!({"roleIds": ["r-acme"]}))
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "{:?}", patch.body);

    let bot = acme.token(json!({"roleIds": ["r-acme", "r-viewer"]})).await;
    let claims = t.claims_of(&bot).await;
    assert_eq!(claims["roles"], json!(["auditor", "viewer"]));
}
on_both_stores!(a_tenants_role_is_held_in_that_tenant_only);

/// A tenant's role is changed through its tenant (or by the vendor), never through another;
/// it ends with its tenant, and a tenant created again under the id inherits nothing of it.
async fn a_tenants_role_is_changed_there_and_ends_with_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    tenant_roles(&vendor).await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    let path = format!("{ROLES}/r-acme");
    for (method, body) in [
        (Method::PATCH, Some(json!({"name": "Stolen"}))),
        (Method::DELETE, None),
    ] {
        let refused = globex.call(method.clone(), &path, body).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{method}");
    }
    let vendors = format!("{ROLES}/r-viewer");
    let refused = acme
        .call(Method::PATCH, &vendors, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "the vendor's role");
    let renamed = acme
        .call(Method::PATCH, &path, Some(json!({"name": "Auditor"})))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["tenantId"], "acme");

    let deleted = vendor
        .call(Method::DELETE, &format!("{TENANTS}/acme"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    acme.create().await;
    assert_eq!(keys(&listed_roles(&vendor, Some("acme")).await), ["viewer"]);
    let refused = acme.create_token(json!({"roleIds": ["r-acme"]})).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    let again = json!({"id": "r-acme-2", "key": "auditor"});
    let again = acme.call(Method::POST, ROLES, Some(again)).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "its key is free: {:?}",
        again.body
    );
}
on_both_stores!(a_tenants_role_is_changed_there_and_ends_with_it);

/// A tenant's default role is given to users created in that tenant only.
async fn a_tenants_default_role_is_given_in_that_tenant_only(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    acme.create().await;
    globex.create().await;
    let role = json!({"id": "r-new", "key": "newcomer", "isDefault": true});
    let made = acme.call(Method::POST, ROLES, Some(role)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    for (tenant, roles) in [(&acme, json!(["newcomer"])), (&globex, json!([]))] {
        let user = json!({"email": format!("someone@{}.test", tenant.id())});
        let created = tenant.call(Method::POST, USERS, Some(user)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let keys: Vec<&serde_json::Value> = created.body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["key"])
            .collect();
        assert_eq!(json!(keys), roles, "in {}", tenant.id());
    }
}
on_both_stores!(a_tenants_default_role_is_given_in_that_tenant_only);

/// A tenant's role created while its tenant is deleted, many times over: whichever lands
/// first, nothing is left of the role, and a tenant created again under the id never lists
/// nor grants it.
async fn a_tenants_role_racing_its_tenants_deletion_never_outlives_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    for round in 0..10 {
        acme.create().await;
        let id = format!("r-race-{round}");
        let role = json!({"id": id, "key": format!("racer-{round}")});
        let tenant = format!("{TENANTS}/acme");
        let (made, _) = tokio::join!(
            acme.call(Method::POST, ROLES, Some(role)),
            vendor.call(Method::DELETE, &tenant, None),
        );
        assert!(
            [StatusCode::CREATED, StatusCode::NOT_FOUND].contains(&made.status),
            "round {round}: {:?}",
            made.body
        );
        acme.create().await;
        let listed = acme.call(Method::GET, ROLES, None).await.body;
        assert!(!listed.to_string().contains(&id), "round {round}: {listed}");
        let refused = acme.create_token(json!({"roleIds": [id]})).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "round {round}");
        // Nothing is left of it: not even for the vendor, and its key is free again.
        let path = format!("{ROLES}/{id}");
        let gone = vendor
            .call(Method::PATCH, &path, Some(json!({"name": "x"})))
            .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "round {round}");
        let key = json!({"key": format!("racer-{round}")});
        let free = vendor.call(Method::POST, ROLES, Some(key)).await;
        assert_eq!(
            free.status,
            StatusCode::CREATED,
            "round {round}: {:?}",
            free.body
        );
    }
}
on_both_stores!(a_tenants_role_racing_its_tenants_deletion_never_outlives_it);

/// A user read or listed within a tenant shows that membership alone.
async fn a_read_within_a_tenant_shows_nothing_of_the_users_other_tenants(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.role("r-admin", "admin", json!([])).await;
    vendor.role("r-basic", "basic", json!([])).await;
    for tenant in ["ta", "tb"] {
        vendor.tenant(tenant).create().await;
    }
    let tenants = json!([{"tenantId": "ta", "roleIds": ["r-admin"]},
                         {"tenantId": "tb", "roleIds": ["r-basic"]}]);
    let made = vendor
        .call(
            Method::PUT,
            ALICE,
            Some(json!({"email": "a@x.test", "tenants": tenants})),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    let tb = vendor.tenant("tb");
    let read = tb.call(Method::GET, ALICE, None).await.body;
    let listed = tb.call(Method::GET, USERS, None).await.body;
    for user in [&read, &listed["items"][0]] {
        assert_eq!(user["tenantId"], "tb", "{user}");
        assert_eq!(user["tenantIds"], json!(["tb"]), "{user}");
        assert_eq!(user["tenants"].as_array().unwrap().len(), 1, "{user}");
        assert_eq!(user["tenants"][0]["roles"][0]["key"], "basic", "{user}");
    }
    let everywhere = vendor.call(Method::GET, ALICE, None).await.body;
    assert_eq!(everywhere["tenantIds"], json!(["ta", "tb"]));
}
on_both_stores!(a_read_within_a_tenant_shows_nothing_of_the_users_other_tenants);

/// Ids are read from paths percent-decoded, as clients encode them; a tenant is created once;
/// metadata keys its DELETE path could not name are refused.
async fn paths_decode_ids_and_creates_do_not_overwrite(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let created = vendor
        .call(
            Method::POST,
            TENANTS,
            Some(json!({"tenantId": "a@b", "name": "A"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let again = json!({"tenantId": "a@b", "name": "Mallory", "creatorEmail": "m@x.test"});
    let taken = vendor.call(Method::POST, TENANTS, Some(again)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    let read = vendor
        .call(Method::GET, &format!("{TENANTS}/a%40b"), None)
        .await;
    assert_eq!(read.body[0]["name"], "A", "{:?}", read.body);

    let tenant = vendor.tenant("a@b");
    let user = json!({"id": "auth0|123", "email": "z@a.test"});
    let made = tenant.call(Method::POST, USERS, Some(user)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let encoded = format!("{USERS}/auth0%7C123");
    assert_eq!(
        vendor.call(Method::GET, &encoded, None).await.status,
        StatusCode::OK
    );
    let deleted = vendor.call(Method::DELETE, &encoded, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(t.stored_user("auth0|123").await, None);

    let metadata = format!("{TENANTS}/a%40b/metadata");
    for key in ["", ".", ".."] {
        let body = json!({"metadata": {key: 1}});
        let refused = vendor.call(Method::POST, &metadata, Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{key:?}");
    }
}
on_both_stores!(paths_decode_ids_and_creates_do_not_overwrite);

/// Frontegg's configuration update ignores the settings that are not ours; a role's level is a
/// whole number every JSON parser reads exactly; a refusal quotes a long id only in part.
#[tokio::test]
async fn frontegg_bodies_are_read_as_frontegg_sends_them() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let body =
        json!({"apiTokensEnabled": false, "allowSignups": true, "defaultTokenExpiration": 86400});
    let updated = vendor.call(Method::POST, CONFIGURATIONS, Some(body)).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["apiTokensEnabled"], false);
    let strict = json!({"allowSignups": true});
    let refused = vendor
        .call(Method::PATCH, CONFIGURATIONS, Some(strict))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "our PATCH stays strict"
    );

    let whole = json!({"key": "k1", "level": 54.0});
    let made = vendor.call(Method::POST, ROLES, Some(whole)).await;
    assert_eq!(
        (made.status, &made.body["level"]),
        (StatusCode::CREATED, &json!(54))
    );
    for level in [
        json!(9_007_199_254_740_992_i64),
        json!(1.5),
        json!(i64::MIN),
    ] {
        let body = json!({"key": "k2", "level": level});
        let refused = vendor.call(Method::POST, ROLES, Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{level}");
    }

    let long = "b".repeat(128);
    let other = vendor.tenant("other");
    other.create().await;
    let user = json!({"id": long, "email": "b@x.test"});
    assert_eq!(
        other.call(Method::POST, USERS, Some(user)).await.status,
        StatusCode::CREATED
    );
    let acme = vendor.tenant("acme");
    acme.create().await;
    let path = format!("{USERS}/{long}/roles");
    let missing = acme
        .call(Method::POST, &path, Some(json!({"roleIds": []})))
        .await;
    missing.assert_refused(StatusCode::NOT_FOUND, "not a member", "");
    assert!(missing.error().len() < 120, "{}", missing.error());
}

/// A create never replaces: an id in use (or given twice in one array) is a 409 and the stored
/// role keeps what every JWT carrying it is made of; refusals quote a long key in part and a
/// control character as its escape.
async fn a_create_never_replaces_a_role_or_permission(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r-def", "viewer", json!(["p-read"])).await;
    for (path, body) in [
        (ROLES, json!({"id": "r-def", "key": "zzz"})),
        (PERMISSIONS, json!({"id": "p-read", "key": "zzz"})),
        (
            ROLES,
            json!([{"id": "d", "key": "k1"}, {"id": "d", "key": "k2"}]),
        ),
    ] {
        let refused = vendor.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{body}: {:?}",
            refused.body
        );
    }
    let roles = vendor.call(Method::GET, ROLES, None).await.body;
    assert_eq!(roles.as_array().unwrap().len(), 1, "{roles}");
    assert_eq!(roles[0]["key"], "viewer");
    assert_eq!(roles[0]["permissionIds"], json!(["p-read"]));

    let long = json!({"key": "K".repeat(256)});
    vendor
        .call(Method::POST, PERMISSIONS, Some(long.clone()))
        .await;
    let taken = vendor.call(Method::POST, PERMISSIONS, Some(long)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.error().len() < 120, "{}", taken.error());
    let path = format!("{PERMISSIONS}/a%1b%5b2J%07");
    let missing = vendor.call(Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        !missing.error().chars().any(char::is_control),
        "{:?}",
        missing.error()
    );
    assert!(missing.error().contains("\\u{1b}"), "{:?}", missing.error());
}
on_both_stores!(a_create_never_replaces_a_role_or_permission);

/// A user's `PUT` listing a tenant twice conflicts with itself: 409, and nothing is written.
#[tokio::test]
async fn a_tenant_listed_twice_in_a_users_put_is_a_conflict() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    vendor.tenant("acme").create().await;
    let twice = json!({"tenants": [{"tenantId": "acme"}, {"tenantId": "acme", "roleIds": []}]});
    let refused = vendor.call(Method::PUT, ALICE, Some(twice)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.body["errors"][0], "tenants: acme is listed twice");
    assert!(t.stored_user("alice").await.is_none());
}

/// A membership begun while its tenant is deleted, many times over: whichever lands first,
/// the tenant created again under the id has no such member. The user is not shown in it,
/// cannot be given roles there, gets no personal token there, and a later write of the user
/// does not bring the membership back.
async fn a_membership_racing_its_tenants_deletion_never_outlives_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.tenant("base").create().await;
    for round in 0..12 {
        let id = format!("t-race-{round}");
        let tenant = vendor.tenant(&id);
        tenant.create().await;
        let user = format!("{USERS}/u-{round}");
        let join = json!({"tenants": [{"tenantId": "base"}, {"tenantId": id}]});
        let deleted = format!("{TENANTS}/{id}");
        let (joined, _) = tokio::join!(
            vendor.call(Method::PUT, &user, Some(join)),
            vendor.call(Method::DELETE, &deleted, None),
        );
        assert!(
            [StatusCode::OK, StatusCode::NOT_FOUND].contains(&joined.status),
            "round {round}: {:?}",
            joined.body
        );
        tenant.create().await;
        nothing_of_the_membership_is_left(&vendor, &id, &format!("u-{round}")).await;
    }
}

/// `user` is no member of `tenant_id`: not shown there, not given roles there, given no
/// personal token there, and a later write of the user does not bring the membership back.
async fn nothing_of_the_membership_is_left(vendor: &Vendor<'_>, tenant_id: &str, user: &str) {
    let tenant = vendor.tenant(tenant_id);
    let path = format!("{USERS}/{user}");
    let read = vendor.call(Method::GET, &path, None).await;
    if read.status == StatusCode::OK {
        assert!(!read.body.to_string().contains(tenant_id), "{}", read.body);
    }
    let members = tenant.call(Method::GET, USERS, None).await.body;
    assert_eq!(members["items"], json!([]), "{tenant_id}");
    assert_eq!(
        members["_metadata"]["totalItems"], 0,
        "{tenant_id}: {members}"
    );
    let roles = format!("{path}/roles");
    let assign = tenant
        .call(Method::POST, &roles, Some(json!({"roleIds": []})))
        .await;
    assert_eq!(assign.status, StatusCode::NOT_FOUND, "{:?}", assign.body);
    let rename = vendor
        .call(Method::PUT, &path, Some(json!({"name": "Later"})))
        .await;
    assert_eq!(rename.status, StatusCode::OK, "{user}");
    assert!(
        !rename.body.to_string().contains(tenant_id),
        "{}",
        rename.body
    );
    let token = tenant.user(user).create_personal_token(json!({})).await;
    assert_eq!(token.status, StatusCode::NOT_FOUND, "{:?}", token.body);
}
on_both_stores!(a_membership_racing_its_tenants_deletion_never_outlives_it);

/// Creates of one key racing each other, many times over: one is created, the others answer
/// 409, for permissions, for the vendor's roles, and between the vendor's role and a tenant's.
async fn racing_creates_of_one_key_make_one_role_or_permission(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.create().await;
    for round in 0..8 {
        let key = format!("racer.{round}");
        let body = |n: usize| json!({"id": format!("r{round}-{n}"), "key": key});
        let (a, b, c, d) = tokio::join!(
            vendor.call(Method::POST, ROLES, Some(body(0))),
            vendor.call(Method::POST, ROLES, Some(body(1))),
            acme.call(Method::POST, ROLES, Some(body(2))),
            acme.call(Method::POST, ROLES, Some(body(3))),
        );
        let statuses = [a.status, b.status, c.status, d.status];
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "round {round}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| [StatusCode::CREATED, StatusCode::CONFLICT].contains(s)),
            "round {round}: {statuses:?}"
        );
        let listed = acme.call(Method::GET, ROLES, None).await.body;
        let holders = keys(&listed).iter().filter(|k| **k == key).count();
        assert_eq!(holders, 1, "round {round}: {listed}");

        let permission = |n: usize| json!({"id": format!("p{round}-{n}"), "key": key});
        let path = "/identity/resources/permissions/v1";
        let (a, b, c) = tokio::join!(
            vendor.call(Method::POST, path, Some(permission(0))),
            vendor.call(Method::POST, path, Some(permission(1))),
            vendor.call(Method::POST, path, Some(permission(2))),
        );
        let statuses = [a.status, b.status, c.status];
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "round {round}: {statuses:?}");
    }
}
on_both_stores!(racing_creates_of_one_key_make_one_role_or_permission);

/// A role or permission deleted while held blocks nothing: the user who held the role is
/// still changed (name, roles assigned and unassigned), the role that held the permission is
/// still renamed, and a token holding it is still patched; the deleted one grants nothing.
async fn a_deleted_grant_blocks_no_later_change_of_its_holders(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-gone", "gone.read").await;
    vendor.role("r-gone", "gone", json!(["p-gone"])).await;
    vendor.role("r-kept", "kept", json!([])).await;
    let acme = vendor.tenant("acme");
    acme.user("alice").join(json!(["r-gone"])).await;
    let bot = acme
        .token(json!({"roleIds": ["r-gone"], "permissionIds": ["p-gone"]}))
        .await;
    for path in [
        "/identity/resources/permissions/v1/p-gone",
        &format!("{ROLES}/r-gone"),
    ] {
        let deleted = vendor.call(Method::DELETE, path, None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{path}");
    }
    let renamed = vendor
        .call(Method::PUT, ALICE, Some(json!({"name": "Alice"})))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    let roles = format!("{ALICE}/roles");
    for method in [Method::POST, Method::DELETE] {
        let reply = acme
            .call(method.clone(), &roles, Some(json!({"roleIds": ["r-kept"]})))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {:?}", reply.body);
    }
    vendor.permission("p-held", "held.read").await;
    vendor.role("r-perm", "perm", json!(["p-held"])).await;
    let path = "/identity/resources/permissions/v1/p-held";
    assert_eq!(
        vendor.call(Method::DELETE, path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let patched = vendor
        .call(
            Method::PATCH,
            &format!("{ROLES}/r-perm"),
            Some(json!({"key": "perm2"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let patch = json!({"description": "still mine", "roleIds": ["r-gone", "r-kept"]});
    let reply = acme.patch_token(&bot.client_id, patch).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let claims = t.claims_of(&bot).await;
    assert_eq!(claims["roles"], json!(["kept"]));
    assert_eq!(claims["permissions"], json!([]));
    let refused = acme
        .patch_token(&bot.client_id, json!({"roleIds": ["r-nowhere"]}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::NOT_FOUND,
        "a new unknown id is still refused"
    );
}
on_both_stores!(a_deleted_grant_blocks_no_later_change_of_its_holders);
