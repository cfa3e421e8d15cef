//! Event-driven provisioning: SQS events (as Lambda receives them from the queue that the
//! EventBridge rule feeds) applied to DynamoDB in moto.

use crate::support::*;
use aws_lambda_events::event::sqs::SqsEvent;
use m2m_shared::App;
use m2m_shared::domain::TenantId;
use m2m_shared::provisioning::handle_batch;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn fixture() -> SqsEvent {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/events/sqs/directory-batch.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An SQS event whose messages are EventBridge events of these detail-types and details.
fn batch(events: &[(&str, Value)]) -> SqsEvent {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (detail_type, detail))| {
            let body = json!({
                "version": "0", "id": format!("evt-{i}"), "detail-type": detail_type,
                "source": "acme.directory", "account": "123456789012",
                "time": "2026-11-28T14:00:00Z", "region": "us-east-1", "resources": [],
                "detail": detail,
            });
            json!({
                "messageId": format!("msg-{i}"), "receiptHandle": format!("rh-{i}"),
                "body": body.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:provisioning",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

async fn failures(app: &App, event: SqsEvent) -> Vec<String> {
    handle_batch(app, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

async fn roles_of(t: &TestApp, user: &str) -> Option<Vec<String>> {
    let user = t.stored_user(user).await?;
    Some(
        user.tenants
            .iter()
            .flat_map(|m| m.role_ids.iter().map(ToString::to_string))
            .collect(),
    )
}

#[tokio::test]
async fn malformed_events_fail_alone_and_the_rest_of_the_batch_applies() {
    let t = spawn_app(Backing::Moto).await;
    let failed = failures(&t.app, fixture()).await;
    assert_eq!(
        failed,
        [
            "0f3b6c4a-1111-4e2d-9c3b-000000000005",
            "0f3b6c4a-1111-4e2d-9c3b-000000000006",
            "0f3b6c4a-1111-4e2d-9c3b-000000000007"
        ],
        "not JSON, no userId, unknown detail-type"
    );
    assert_eq!(
        roles_of(&t, "alice").await,
        Some(vec!["r-admin".to_owned()])
    );

    // What the events provisioned is what the next JWT says.
    let vendor = t.vendor_token().await;
    let personal = t.user_token(&vendor, "acme", "alice", json!({})).await;
    let issued = t.exchange(EXCHANGE_V1, &personal.0, &personal.1).await;
    let claims = t
        .app
        .credentials(ISSUER)
        .verify_access_token(issued.body["accessToken"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (claims.roles, claims.permissions),
        (vec!["admin".to_owned()], vec!["deploy.write".to_owned()])
    );
    assert_eq!(claims.email.as_deref(), Some("alice@acme.test"));

    // Redelivery changes nothing and fails nothing new.
    assert_eq!(failures(&t.app, fixture()).await.len(), 3);
    assert_eq!(
        roles_of(&t, "alice").await,
        Some(vec!["r-admin".to_owned()])
    );
}

#[tokio::test]
async fn an_older_version_never_overwrites_newer_state() {
    let t = spawn_app(Backing::Moto).await;
    let member = |roles: Value, version: u64| json!({"userId": "bob", "tenants": [{"tenantId": "acme", "roleIds": roles}], "version": version});
    let events = [
        (
            "role.upserted",
            json!({"id": "r1", "key": "one", "version": 1}),
        ),
        ("user.upserted", member(json!(["r1"]), 3)),
        ("user.upserted", member(json!([]), 2)),
    ];
    assert!(failures(&t.app, batch(&events)).await.is_empty());
    assert_eq!(
        roles_of(&t, "bob").await,
        Some(vec!["r1".to_owned()]),
        "version 2 arrived late"
    );

    let role = t.app.directory().role("r1").await.unwrap();
    let stale_role = [(
        "role.upserted",
        json!({"id": "r1", "key": "renamed", "version": 0}),
    )];
    assert!(failures(&t.app, batch(&stale_role)).await.is_empty());
    assert_eq!(t.app.directory().role("r1").await.unwrap(), role);

    // A delete leaves a tombstone: an older upsert arriving later does not bring the user back.
    let events = [
        ("user.deleted", json!({"userId": "bob", "version": 5})),
        ("user.upserted", member(json!(["r1"]), 4)),
    ];
    assert!(failures(&t.app, batch(&events)).await.is_empty());
    assert_eq!(roles_of(&t, "bob").await, None);
    let newer = [("user.upserted", member(json!([]), 6))];
    assert!(failures(&t.app, batch(&newer)).await.is_empty());
    assert_eq!(roles_of(&t, "bob").await, Some(vec![]));
}

#[tokio::test]
async fn deletion_events_cascade_like_the_api() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.vendor_token().await;
    t.member(&vendor, "carol", "acme", json!([])).await;
    let personal = t.user_token(&vendor, "acme", "carol", json!({})).await;
    let tenant = t.tenant_token(&vendor, "globex", json!({})).await;
    let events = [
        // Above the versions the API's writes stamped.
        ("user.deleted", json!({"userId": "carol", "version": 10})),
        (
            "tenant.deleted",
            json!({"tenantId": "globex", "version": 10}),
        ),
    ];
    assert!(failures(&t.app, batch(&events)).await.is_empty());
    for gone in [&personal, &tenant] {
        assert_eq!(
            t.exchange(EXCHANGE_V1, &gone.0, &gone.1).await.status,
            reqwest::StatusCode::UNAUTHORIZED
        );
    }
}

/// Events go through the same domain rules as API bodies: what the API refuses, an event cannot
/// store. Each of these fails alone; the valid one beside them applies.
#[tokio::test]
async fn an_event_cannot_store_what_the_api_refuses() {
    let t = spawn_app(Backing::Embedded).await;
    let tenants: Vec<Value> = (0..=m2m_shared::domain::rules::MAX_TENANTS_PER_USER)
        .map(|i| json!({"tenantId": format!("t{i}"), "roleIds": []}))
        .collect();
    let events = [
        (
            "role.upserted",
            json!({"id": "r1", "key": "has space", "version": 1}),
        ),
        (
            "permission.upserted",
            json!({"id": "p1", "key": "k".repeat(257), "version": 1}),
        ),
        ("tenant.upserted", json!({"tenantId": "..", "version": 1})),
        (
            "tenant.upserted",
            json!({"tenantId": "big", "metadata": {"blob": "x".repeat(4096)}, "version": 1}),
        ),
        (
            "user.upserted",
            json!({"userId": "bob", "tenants": tenants, "version": 1}),
        ),
        (
            "user.upserted",
            json!({"userId": "eve", "email": "e".repeat(300), "version": 1}),
        ),
        (
            "role.upserted",
            json!({"id": "r2", "key": "fine", "version": 1}),
        ),
    ];
    let failed = failures(&t.app, batch(&events)).await;
    assert_eq!(
        failed,
        ["msg-0", "msg-1", "msg-2", "msg-3", "msg-4", "msg-5"]
    );
    let vendor = t.vendor_token().await;
    let mut roles = t.get(ROLES, &[("x-access-token", &vendor)]).await.body;
    for stamp in ["createdAt", "updatedAt"] {
        assert!(roles[0][stamp].is_string(), "{roles}");
        roles[0].as_object_mut().unwrap().remove(stamp);
    }
    assert_eq!(
        roles,
        json!([{"id": "r2", "key": "fine", "name": "", "description": "", "level": 0,
                "isDefault": false, "permissionIds": [], "permissions": [], "tenantId": null}])
    );
    assert_eq!(roles_of(&t, "bob").await, None);
    assert_eq!(roles_of(&t, "eve").await, None);
}

/// The messages of `event` that `failed` names, as SQS delivers them again.
fn redelivery(event: SqsEvent, failed: &[String]) -> SqsEvent {
    let mut event = event;
    event
        .records
        .retain(|r| failed.contains(r.message_id.as_ref().unwrap()));
    event
}

/// A throttled DynamoDB fails the batch for SQS to bring back, within about one call's budget
/// however long the batch, and loses nothing: redelivered once the throttling ends, a batch
/// and a burst of fifty users apply as if nothing had happened.
#[tokio::test]
async fn a_throttled_store_leaves_the_batch_for_retry_and_loses_nothing() {
    use crate::support::fault_proxy::Fault;
    use m2m_shared::config::DEFAULT_REQUEST_BUDGET_SECONDS as DEFAULT_BUDGET;
    let faulty = spawn_app_behind_fault_proxies(DEFAULT_BUDGET).await;
    let t = &faulty.api;
    let users: Vec<(&str, Value)> = (0..50)
        .map(|n| {
            let detail = json!({"userId": format!("u{n}"), "email": format!("u{n}@acme.test"),
                "tenants": [{"tenantId": "acme", "roleIds": []}], "version": 1});
            ("user.upserted", detail)
        })
        .collect();
    let mut burst = batch(&[(
        "tenant.upserted",
        // The fixture's acme is version 1: one version says one thing.
        json!({"tenantId": "acme", "name": "Acme", "version": 2}),
    )]);
    burst
        .records
        .extend(batch(&users).records.into_iter().map(|mut r| {
            r.message_id = r.message_id.map(|id| format!("user-{id}"));
            r
        }));

    faulty.dynamodb.set(Fault::Throttle);
    let started = std::time::Instant::now();
    let failed = failures(&t.app, fixture()).await;
    let failed_burst = failures(&t.app, burst.clone()).await;
    assert_eq!(
        (failed.len(), failed_burst.len()),
        (7, 51),
        "every message left for retry"
    );
    let took = started.elapsed();
    assert!(
        took < 3 * m2m_shared::adapters::aws::OPERATION_TIMEOUT,
        "two batches took {took:?}"
    );

    faulty.dynamodb.set(Fault::Forward);
    let still_failing = failures(&t.app, redelivery(fixture(), &failed)).await;
    assert_eq!(
        still_failing.len(),
        3,
        "only the malformed messages: {still_failing:?}"
    );
    assert_eq!(roles_of(t, "alice").await, Some(vec!["r-admin".to_owned()]));
    assert!(
        failures(&t.app, redelivery(burst, &failed_burst))
            .await
            .is_empty()
    );
    for n in 0..50 {
        let user = t.stored_user(&format!("u{n}")).await.expect("provisioned");
        assert_eq!(user.tenants.len(), 1);
    }
}

/// Applies one event, as the provisioning function does: `Err` (to the dead-letter queue after
/// its retries) with the reason, or `Ok`.
async fn event(t: &TestApp, detail_type: &str, detail: Value) -> Result<(), String> {
    let message = json!({"detail-type": detail_type, "detail": detail}).to_string();
    m2m_shared::provisioning::apply(&t.app, &message)
        .await
        .map_err(|e| e.to_string())
}

/// One version says one thing: a redelivery of it changes nothing, another body under it is
/// refused with the reason and changes nothing either; only a strictly newer version writes;
/// versions beyond 2^53 - 1 are refused.
async fn one_version_says_one_thing(t: &TestApp) {
    let tenant =
        |name: &str, version: u64| json!({"tenantId": "acme", "name": name, "version": version});
    event(t, "tenant.upserted", tenant("Acme", 3))
        .await
        .unwrap();
    event(t, "tenant.upserted", tenant("Acme", 3))
        .await
        .unwrap();
    let clash = event(t, "tenant.upserted", tenant("Evil", 3))
        .await
        .unwrap_err();
    assert!(clash.contains("version 3"), "{clash}");
    let delete_clash = event(
        t,
        "tenant.deleted",
        json!({"tenantId": "acme", "version": 3}),
    )
    .await;
    assert!(delete_clash.is_err(), "a delete under the upsert's version");
    let stored = t
        .app
        .directory()
        .tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(stored.map(|t| t.doc.name), Some("Acme".to_owned()));
    event(t, "tenant.upserted", tenant("Acme Inc.", 4))
        .await
        .unwrap();

    let beyond = event(t, "tenant.upserted", tenant("Acme", 1 << 53))
        .await
        .unwrap_err();
    assert!(beyond.contains("version must be at most"), "{beyond}");
    event(t, "tenant.upserted", tenant("Last", (1 << 53) - 1))
        .await
        .unwrap();
    let vendor = t.as_vendor().await;
    let renamed = vendor
        .call(
            Method::PUT,
            "/identity/resources/tenants/v1/acme",
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "the API still writes it");
}
on_both_stores!(one_version_says_one_thing);

/// An upsert event changes what it names and nothing else, as the API's `PUT` does.
async fn an_upsert_event_is_partial_like_the_apis_put(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r-reader", "reader", json!(["p-read"])).await;
    let acme = json!({"name": "Acme", "metadata": {"plan": "pro"}});
    let put = vendor.call(
        Method::PUT,
        "/identity/resources/tenants/v1/acme",
        Some(acme),
    );
    assert_eq!(put.await.status, StatusCode::OK);
    let alice = json!({"userId": "alice", "email": "alice@acme.test",
        "tenants": [{"tenantId": "acme", "roleIds": ["r-reader"]}], "version": 10});
    event(t, "user.upserted", alice).await.unwrap();

    let renamed = json!({"userId": "alice", "name": "Alice", "version": 11});
    event(t, "user.upserted", renamed).await.unwrap();
    let user = t.stored_user("alice").await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Alice"));
    assert_eq!(user.email.as_deref(), Some("alice@acme.test"));
    assert_eq!(
        user.tenants.len(),
        1,
        "memberships stay when tenants is left out"
    );

    let role = json!({"id": "r-reader", "name": "Reader", "version": 10});
    event(t, "role.upserted", role).await.unwrap();
    let role = t.app.directory().role("r-reader").await.unwrap();
    assert_eq!(
        (role.key.as_str(), role.name.as_str()),
        ("reader", "Reader")
    );
    assert_eq!(role.permission_ids.len(), 1, "permissions stay");

    let tenant = json!({"tenantId": "acme", "name": "Acme Inc.", "version": 10});
    event(t, "tenant.upserted", tenant).await.unwrap();
    let tenant = t
        .app
        .directory()
        .tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tenant.metadata.get("plan"),
        Some(&json!("pro")),
        "metadata stays"
    );
    let through_api = vendor
        .call(
            Method::PUT,
            "/identity/resources/tenants/v1/acme",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(
        through_api.body["metadata"],
        json!({"plan": "pro"}),
        "and through the API"
    );
}
on_both_stores!(an_upsert_event_is_partial_like_the_apis_put);

/// Deletes name valid ids; one for an id that never existed keeps older upserts out and
/// blocks nothing newer: a newer event, or the API, creates it.
async fn a_delete_of_what_never_existed_blocks_nothing(t: &TestApp) {
    let bad = event(t, "role.deleted", json!({"id": "a b", "version": 1})).await;
    assert!(bad.unwrap_err().contains("id must be"));
    let bad = event(t, "permission.deleted", json!({"id": "", "version": 1})).await;
    assert!(bad.is_err());
    for kind in ["role", "permission"] {
        let ghost = format!("{kind}-ghost");
        event(
            t,
            &format!("{kind}.deleted"),
            json!({"id": ghost, "version": 5}),
        )
        .await
        .unwrap();
        let older = json!({"id": ghost, "key": format!("{kind}.old"), "version": 4});
        event(t, &format!("{kind}.upserted"), older).await.unwrap();
        let vendor = t.as_vendor().await;
        let path = match kind {
            "role" => "/identity/resources/roles/v1",
            _ => "/identity/resources/permissions/v1",
        };
        let listed = vendor.call(Method::GET, path, None).await;
        assert!(
            !listed.body.to_string().contains(&ghost),
            "the older upsert stays out"
        );
        let created = vendor
            .call(
                Method::POST,
                path,
                Some(json!({"id": ghost, "key": format!("{kind}.new")})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let ghost_user = json!({"userId": "ghost", "version": 5});
    event(t, "user.deleted", ghost_user).await.unwrap();
    let newer = json!({"userId": "ghost", "email": "g@acme.test", "version": 6});
    event(t, "user.upserted", newer).await.unwrap();
    assert!(t.stored_user("ghost").await.is_some());
}
on_both_stores!(a_delete_of_what_never_existed_blocks_nothing);

/// Keys and names are stored composed (NFC), and refused when they hold what does not show,
/// by the API and by events alike: no JWT carries two keys that look the same.
async fn keys_that_look_alike_are_one_key_or_refused(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-cafe", "caf\u{e9}.read").await;
    let twin = vendor
        .call(
            Method::POST,
            "/identity/resources/permissions/v1",
            Some(json!({"id": "p-twin", "key": "cafe\u{301}.read"})),
        )
        .await;
    assert_eq!(
        twin.status,
        StatusCode::CONFLICT,
        "the same key, decomposed"
    );
    for hidden in [
        "reports.read\u{200b}",
        "reports\u{202e}daer",
        "\u{feff}reports.read",
        "reports.read\u{fe0f}",
        "reports.read\u{2800}",
    ] {
        let api = vendor
            .call(
                Method::POST,
                "/identity/resources/permissions/v1",
                Some(json!({"id": "p-hidden", "key": hidden})),
            )
            .await;
        assert_eq!(
            api.status,
            StatusCode::BAD_REQUEST,
            "{hidden:?}: {:?}",
            api.body
        );
        let by_event = json!({"id": "p-hidden", "key": hidden, "version": 1});
        let refused = event(t, "permission.upserted", by_event).await.unwrap_err();
        assert!(refused.contains("invisible"), "{refused}");
        let named = json!({"tenantId": "acme", "name": format!("Acme{hidden}"), "version": 1});
        assert!(event(t, "tenant.upserted", named).await.is_err());
    }
    // A description reaches terminals: no escape sequence, NUL or bell in it.
    let put = vendor.call(
        Method::PUT,
        "/identity/resources/tenants/v1/acme",
        Some(json!({})),
    );
    assert_eq!(put.await.status, StatusCode::OK);
    let escapes = json!({"description": "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{0}"});
    let acme = vendor.tenant("acme");
    let token = acme.call(Method::POST, TENANT_TOKENS, Some(escapes)).await;
    assert_eq!(token.status, StatusCode::BAD_REQUEST, "{:?}", token.body);
}
on_both_stores!(keys_that_look_alike_are_one_key_or_refused);
