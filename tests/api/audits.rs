//! The audit trail: every change to a credential or to what it grants leaves one event, in the
//! same write as the change, naming who acted, on what, from where; a refused change leaves
//! none; events are read through Frontegg's audits API (and its Node SDK), a page at a time,
//! and hold no secret. On both stores.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::portal::{portal_roles, session};
use crate::support::client;
use crate::support::*;

/// `GET /audits` with `query` as the vendor (and `tenant`, if any): 200's body.
async fn audits(t: &TestApp, vendor: &str, tenant: Option<&str>, query: &str) -> Value {
    let mut headers = vec![("x-access-token", vendor)];
    headers.extend(tenant.map(|t| ("frontegg-tenant-id", t)));
    let reply = t.get(&format!("/audits?{query}"), &headers).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {:?}", reply.body);
    reply.body
}

/// The actions of a page, in its order.
fn actions(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// Changes, rotates and deletes the tenant's token, each answered 200.
async fn change_rotate_and_delete(tenant: &client::Tenant<'_>, client_id: &str) {
    let path = format!("{TENANT_TOKENS}/{client_id}");
    let patched = tenant
        .call(
            Method::PATCH,
            &path,
            Some(json!({"description": "deploys"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let rotate = format!("{path}/rotate");
    let rotated = tenant.call(Method::POST, &rotate, Some(json!({}))).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let deleted = tenant.delete_token(client_id).await;
    assert_eq!(deleted.status, StatusCode::OK);
}

async fn every_change_to_a_token_leaves_one_event_naming_who_and_what(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.create().await;
    let token = acme.token(json!({"description": "ci"})).await;
    change_rotate_and_delete(&acme, &token.client_id).await;

    // Refused changes leave nothing.
    let path = format!("{TENANT_TOKENS}/{}", token.client_id);
    let refused = acme
        .call(Method::PATCH, &path, Some(json!({"roleIds": ["nope"]})))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    let again = acme.delete_token(&token.client_id).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let ghost = (vendor.tenant("ghost"))
        .call(Method::POST, TENANT_TOKENS, Some(json!({})))
        .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND, "{:?}", ghost.body);

    let query = format!("filter={}", token.client_id);
    let page = audits(t, &vendor.token, None, &query).await;
    assert_eq!(
        actions(&page),
        [
            "apiToken.deleted",
            "apiToken.rotated",
            "apiToken.changed",
            "apiToken.created"
        ]
    );
    assert_eq!(page["total"], 4);
    for event in page["data"].as_array().unwrap() {
        assert_eq!(event["actor"]["type"], "vendor", "{event}");
        assert_eq!(event["actor"]["id"], t.vendor_client_id.as_str());
        let target = json!({"type": "apiToken", "id": token.client_id});
        assert_eq!(event["target"], target);
        assert_eq!(event["tenantId"], "acme");
        assert_eq!(event["ip"], "127.0.0.1");
        assert_eq!(event["outcome"], "success");
        assert_eq!(event["frontegg_id"], event["id"]);
    }
    let ghost = audits(t, &vendor.token, Some("ghost"), "").await;
    assert_eq!(ghost, json!({"data": [], "total": 0}));
    // Filters all apply: a target's events by one actor; two tenants match nothing.
    let by = |actor: &str| format!("filter={}&actorId={actor}&count=1", token.client_id);
    let vendors = audits(t, &vendor.token, None, &by(&t.vendor_client_id)).await;
    assert_eq!(
        (vendors["total"].clone(), actions(&vendors)),
        (json!(4), vec!["apiToken.deleted"])
    );
    assert_eq!(
        audits(t, &vendor.token, None, &by("alice")).await["total"],
        0
    );
    let two = audits(t, &vendor.token, Some("acme"), "tenantId=ghost").await;
    assert_eq!(two["total"], 0);
    let acme_log = audits(t, &vendor.token, Some("acme"), "sortDirection=asc").await;
    assert_eq!(
        actions(&acme_log)[..2],
        ["tenant.created", "apiToken.created"]
    );
}
on_both_stores!(every_change_to_a_token_leaves_one_event_naming_who_and_what);

async fn a_portal_session_acts_as_its_user_and_its_opening_is_recorded(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["token-admin"])).await;
    let session = session(t, &alice).await;
    let created = session
        .call(
            Method::POST,
            TENANT_TOKENS,
            Some(json!({"description": "mine"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    let page = audits(t, &vendor.token, Some("acme"), "actorId=alice").await;
    assert_eq!(actions(&page), ["apiToken.created", "portalSession.opened"]);
    for event in page["data"].as_array().unwrap() {
        let actor = json!({"type": "user", "id": "alice", "tenantId": "acme"});
        assert_eq!(event["actor"], actor, "{event}");
        assert_eq!(event["userId"], "alice");
    }
    let sessions = audits(t, &vendor.token, Some("acme"), "filter=alice").await;
    assert_eq!(
        actions(&sessions),
        [
            "portalSession.opened",
            "portalSession.handoffIssued",
            "user.created"
        ]
    );
    assert_eq!(sessions["data"][1]["actor"]["type"], "vendor");
}
on_both_stores!(a_portal_session_acts_as_its_user_and_its_opening_is_recorded);

async fn vendor_credentials_are_recorded(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let made = vendor
        .call(
            Method::POST,
            VENDOR_CREDENTIALS,
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let (id, _) = credentials(&made);
    let credential = format!("{VENDOR_CREDENTIALS}/{id}");
    let rotated = vendor
        .call(
            Method::POST,
            &format!("{credential}/rotate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert_eq!(
        vendor.call(Method::DELETE, &credential, None).await.status,
        StatusCode::OK
    );
    let page = audits(t, &vendor.token, None, &format!("targetId={id}")).await;
    assert_eq!(
        actions(&page),
        [
            "vendorCredential.revoked",
            "vendorCredential.rotated",
            "vendorCredential.created"
        ]
    );
    let logins = audits(
        t,
        &vendor.token,
        None,
        &format!("actorId={}", t.vendor_client_id),
    )
    .await;
    assert!(
        actions(&logins).contains(&"vendorCredential.login"),
        "{logins}"
    );
}
on_both_stores!(vendor_credentials_are_recorded);

/// A login to a vendor credential with a wrong secret is recorded, a few times a minute at
/// most, against that credential; one to a credential that does not exist names nothing.
async fn refused_vendor_logins_are_recorded_a_few_a_minute(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let wrong = m2m_shared::domain::Secret::generate(m2m_shared::domain::SecretKind::Vendor);
    let unknown = m2m_shared::domain::ClientId::generate().to_string();
    // All in one minute (the limit's), however near its end the test began.
    t.clock.to_next_minute();
    for client_id in [t.vendor_client_id.as_str(), unknown.as_str()] {
        for _ in 0..8 {
            let body = json!({"clientId": client_id, "secret": wrong.expose()});
            let refused = t.post("/auth/vendor", &[], &body).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        }
    }
    let query = format!("targetId={}", t.vendor_client_id);
    let page = audits(t, &vendor.token, None, &query).await;
    let refused: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "vendorCredential.refused")
        .collect();
    assert_eq!(refused.len(), 5, "{page}");
    assert_eq!(
        (&refused[0]["outcome"], &refused[0]["actor"]["type"]),
        (&json!("refused"), &json!("anonymous"))
    );
    let page = audits(t, &vendor.token, None, &format!("targetId={unknown}")).await;
    assert_eq!(page["total"], 0);
}
on_both_stores!(refused_vendor_logins_are_recorded_a_few_a_minute);

/// A revoked vendor credential still tried (its secret, or a token it issued) is what the trail
/// must show of a leak: each refusal is recorded against it.
async fn a_revoked_vendor_credential_still_tried_is_recorded(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let made = vendor
        .call(
            Method::POST,
            VENDOR_CREDENTIALS,
            Some(json!({"name": "leaked"})),
        )
        .await;
    let (id, secret) = credentials(&made);
    let login = json!({"clientId": id, "secret": secret});
    let token = t.post("/auth/vendor", &[], &login).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{VENDOR_CREDENTIALS}/{id}");
    assert_eq!(
        vendor.call(Method::DELETE, &path, None).await.status,
        StatusCode::OK
    );
    let again = t.post("/auth/vendor", &[], &login).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let used = t.get("/audits", &[("x-access-token", &token)]).await;
    assert_eq!(used.status, StatusCode::UNAUTHORIZED);
    let page = audits(t, &vendor.token, None, &format!("targetId={id}")).await;
    let descriptions: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "vendorCredential.refused")
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions.len(), 2, "{page}");
    assert!(descriptions[0].contains("vendor token"), "{descriptions:?}");
    assert!(descriptions[1].contains("login"), "{descriptions:?}");
    assert!(descriptions.iter().all(|d| d.contains("revoked")));
}
on_both_stores!(a_revoked_vendor_credential_still_tried_is_recorded);

/// A header that decides whose data a request reaches, given twice, is refused: which one was
/// meant is not for the service to guess.
async fn a_header_given_twice_is_refused(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.tenant("acme").token(json!({})).await;
    for path in ["/audits", TENANT_TOKENS] {
        let request = t
            .http
            .get(format!("{}{path}", t.base))
            .header("x-access-token", &vendor.token)
            .header("frontegg-tenant-id", "acme")
            .header("frontegg-tenant-id", "globex");
        let reply = t.send(request).await;
        reply.assert_refused(
            StatusCode::BAD_REQUEST,
            "frontegg-tenant-id",
            format_args!("{path}"),
        );
    }
}
on_both_stores!(a_header_given_twice_is_refused);

async fn the_directory_is_recorded(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.role("r-reader", "reader", json!(["p-read"])).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["r-reader"])).await;
    let switched = vendor
        .call(
            Method::PATCH,
            "/identity/resources/configurations/v1",
            Some(json!({"personalTokensEnabled": false})),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{:?}", switched.body);
    let gone = vendor
        .call(Method::DELETE, "/identity/resources/tenants/v1/acme", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{:?}", gone.body);
    let all = audits(t, &vendor.token, None, "count=100").await;
    let seen = actions(&all);
    for action in [
        "permission.created",
        "role.created",
        "tenant.created",
        "user.created",
        "configuration.changed",
        "tenant.deleted",
    ] {
        assert!(seen.contains(&action), "{action} in {seen:?}");
    }
}
on_both_stores!(the_directory_is_recorded);

/// A token created by a client that retries a 429 (the tenant's share of bcrypt work is full
/// while the others' creations hash).
async fn created_patiently(tenant: &client::Tenant<'_>) -> client::Issued {
    for _ in 0..100 {
        let reply = tenant.create_token(json!({})).await;
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
            return client::Issued {
                client_id: reply.body["clientId"].as_str().unwrap().to_owned(),
                secret: reply.body["secret"].as_str().unwrap().to_owned(),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the tenant stayed busy");
}

/// Tokens created at once each get their event, and their deletions too, however they race:
/// of two deletions of one token, one is recorded. The counts always equal what is listed.
async fn concurrent_changes_each_get_their_event(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.create().await;
    let mut expected = 1; // tenant.created
    for round in 0..4 {
        let made = futures::future::join_all((0..6).map(|_| created_patiently(&acme))).await;
        let deletions = made
            .iter()
            .flat_map(|token| [token, token])
            .map(|token| acme.delete_token(&token.client_id));
        let answers = futures::future::join_all(deletions).await;
        let deleted = answers
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert!(
            deleted >= 6,
            "round {round}: each token deleted once at least"
        );
        expected += 12;
        let page = audits(t, &vendor.token, Some("acme"), "count=1000").await;
        assert_eq!(page["total"], expected, "round {round}");
        assert_eq!(page["data"].as_array().unwrap().len(), expected);
        for token in &made {
            let one = audits(
                t,
                &vendor.token,
                Some("acme"),
                &format!("filter={}", token.client_id),
            )
            .await;
            assert_eq!(
                actions(&one),
                ["apiToken.deleted", "apiToken.created"],
                "round {round}"
            );
        }
    }
}
on_both_stores!(concurrent_changes_each_get_their_event);

/// Pages follow `offset`, `count` and `sortDirection`, and `total` counts them all.
async fn the_trail_is_read_a_page_at_a_time(t: &TestApp) {
    let vendor = t.as_vendor().await;
    for n in 0..7 {
        vendor.tenant(&format!("t{n}")).create().await;
    }
    let newest = audits(t, &vendor.token, None, "filter=t6").await;
    assert_eq!(newest["total"], 1);
    let all: Vec<String> = (0..7).map(|n| format!("t{n}")).collect();
    let read = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "tenant.created")
            .map(|e| e["target"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut pages = Vec::new();
    for offset in [0, 3, 6] {
        let page = audits(
            t,
            &vendor.token,
            None,
            &format!("offset={offset}&count=3&sortDirection=asc"),
        )
        .await;
        pages.extend(read(&page));
        assert!(page["total"].as_u64().unwrap() >= 7);
    }
    let created: Vec<&String> = pages.iter().filter(|id| all.contains(id)).collect();
    assert_eq!(
        created,
        all.iter().collect::<Vec<_>>(),
        "oldest first, none twice"
    );
    for (query, error) in [
        ("count=0", "count"),
        ("sortBy=severity", "sortBy"),
        ("sortDirection=up", "sortDirection"),
        ("severity=High", "severity"),
    ] {
        let reply = t
            .get(
                &format!("/audits?{query}"),
                &[("x-access-token", &vendor.token)],
            )
            .await;
        reply.assert_refused(StatusCode::BAD_REQUEST, error, format_args!("{query}"));
    }
    let anonymous = t.get("/audits", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
on_both_stores!(the_trail_is_read_a_page_at_a_time);

/// Frontegg's Node SDK records the vendor's own events and reads the trail unchanged.
#[tokio::test]
async fn frontegg_audits_client_sends_and_reads_events() {
    for backing in [Backing::Embedded, Backing::Moto] {
        let t = spawn_app(backing).await;
        let vendor = t.as_vendor().await;
        vendor.tenant("acme").create().await;
        let cases = json!({
            "send": [
                {"tenantId": "acme", "severity": "High", "action": "Exported report",
                 "description": "Q3 figures", "user": "carol@acme.test"},
                {"tenantId": "acme", "severity": "Info", "action": "Viewed report"}
            ],
            "get": {"tenantId": "acme", "offset": 0, "count": 2, "sortDirection": "desc"}
        });
        let credentials = (t.vendor_client_id.as_str(), t.vendor_secret.as_str());
        let out = frontegg_client("node", "node/audits.js", &t.base, credentials, &cases).await;
        let page = &out["page"];
        assert_eq!(page["total"], 3, "{out}"); // and tenant.created
        assert_eq!(actions(page), ["Viewed report", "Exported report"]);
        let exported = &page["data"][1];
        assert_eq!(exported["severity"], "High");
        assert_eq!(exported["description"], "Q3 figures");
        assert_eq!(exported["user"], "carol@acme.test");
        assert_eq!(exported["tenantId"], "acme");
        assert_eq!(exported["actor"]["type"], "vendor");
    }
}

/// A vendor's event is bounded and cannot pose as the service's.
async fn a_vendors_event_is_checked(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let secret = vendor.tenant("globex").token(json!({})).await.secret;
    let headers = [("x-access-token", vendor.token.as_str())];
    for (body, error) in [
        (json!({"severity": "Info"}), "tenantId"),
        (json!({"tenantId": "acme"}), "severity"),
        (json!({"tenantId": "acme", "severity": "Loud"}), "severity"),
        (
            json!({"tenantId": "acme", "severity": "Info", "actor": "root"}),
            "actor",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "big": "x".repeat(9000)}),
            "bytes",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "Actor": "root"}),
            "Actor",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "ttl": 1}),
            "ttl",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "actor\u{200b}": 1}),
            "field",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "": 1}),
            "field",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "action": "apiToken.deleted"}),
            "own",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "description": "a\nb"}),
            "control",
        ),
        (
            json!({"tenantId": "acme", "severity": "Info", "note": {"s": secret}}),
            "secret",
        ),
    ] {
        let reply = t.post("/audits", &headers, &body).await;
        reply.assert_refused(StatusCode::BAD_REQUEST, error, format_args!("{body}"));
    }
    assert_eq!(audits(t, &vendor.token, Some("acme"), "").await["total"], 0);
}
on_both_stores!(a_vendors_event_is_checked);

/// A vendor's event whose field is given twice would be read as the last one: refused. So are
/// one with a credential inside a sentence, one whose action reads as the service's own once
/// spaces, invisible characters, look-alike letters and wide dots are seen through, and one
/// holding what shows otherwise than it is (bidirectional overrides, line separators, terminal
/// escapes).
async fn a_vendors_event_names_each_field_once_and_holds_no_credential(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let secret = vendor.tenant("globex").token(json!({})).await.secret;
    let headers = [("x-access-token", vendor.token.as_str())];
    for (raw, error) in [
        (
            r#"{"tenantId": "acme", "severity": "Info", "severity": "Critical"}"#.to_owned(),
            "twice",
        ),
        (
            format!(
                r#"{{"tenantId": "acme", "severity": "Info", "description": "key {secret} leaked"}}"#
            ),
            "secret",
        ),
        // Posing as the service's own action, or hiding what a line holds.
        (
            r#"{"tenantId": "acme", "severity": "Info", "action": "\u200bapiToken.deleted"}"#
                .to_owned(),
            "action",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "action": " apiToken.created"}"#.to_owned(),
            "space",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "action": "аpiToken.created"}"#.to_owned(),
            "own",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "action": "apiToken\uff0edeleted"}"#
                .to_owned(),
            "own",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "action": "\u202edeteled.nekoTipa"}"#
                .to_owned(),
            "action",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "description": "first\u2028second"}"#
                .to_owned(),
            "description",
        ),
        (
            r#"{"tenantId": "acme", "severity": "Info", "note": "a\u001b[31mb"}"#.to_owned(),
            "note",
        ),
    ] {
        let reply = t.post_raw("/audits", &headers, raw.clone()).await;
        reply.assert_refused(StatusCode::BAD_REQUEST, error, format_args!("{raw}"));
    }
    assert_eq!(audits(t, &vendor.token, Some("acme"), "").await["total"], 0);
}
on_both_stores!(a_vendors_event_names_each_field_once_and_holds_no_credential);

/// No event holds a secret, a hash, a JWT, a refresh token or a hand-off: whatever the flow
/// that made them.
async fn no_event_holds_a_secret(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["token-admin"])).await;
    let mut secrets = vec![t.vendor_secret.clone(), vendor.token.clone()];
    let token = vendor.tenant("acme").token(json!({})).await;
    secrets.push(token.secret.clone());
    let exchanged = t
        .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
        .await;
    secrets.push(exchanged.body["accessToken"].as_str().unwrap().to_owned());
    secrets.push(exchanged.body["refreshToken"].as_str().unwrap().to_owned());
    let rotate = format!("{TENANT_TOKENS}/{}/rotate", token.client_id);
    let rotated = vendor
        .tenant("acme")
        .call(Method::POST, &rotate, Some(json!({})))
        .await;
    secrets.push(rotated.body["secret"].as_str().unwrap().to_owned());
    let personal = alice.personal_token(json!({})).await;
    secrets.push(personal.secret);
    let opened = alice.open_portal().await;
    let url = opened.body["url"].as_str().unwrap();
    secrets.push(url.split_once("#handoff=").unwrap().1.to_owned());
    let sent = json!({"tenantId": "acme", "severity": "Info", "note": "hello"});
    let recorded = t
        .post("/audits", &[("x-access-token", &vendor.token)], &sent)
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{:?}", recorded.body);

    let page = audits(t, &vendor.token, None, "count=1000").await;
    assert!(page["total"].as_u64().unwrap() >= 10, "{page}");
    let text = page.to_string();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "an event holds {secret}");
    }
    for marker in ["$2a$", "$2b$", "$2y$", "eyJ", "m2mh_", "secretHash"] {
        assert!(!text.contains(marker), "an event holds {marker}: {text}");
    }
}
on_both_stores!(no_event_holds_a_secret);

/// Events are kept `M2M_AUDIT_RETENTION_DAYS`, counted from the start of their day: then
/// gone from pages and totals.
#[tokio::test]
async fn events_are_kept_for_the_retention_and_no_longer() {
    for backing in [Backing::Embedded, Backing::Moto] {
        let t = spawn_app_with(backing, |s| s.audit_retention_days = 1).await;
        let vendor = t.as_vendor().await;
        vendor.tenant("acme").create().await;
        assert_eq!(
            audits(&t, &vendor.token, Some("acme"), "").await["total"],
            1
        );
        t.clock.advance_seconds(86_400);
        let vendor = t.as_vendor().await;
        assert_eq!(
            audits(&t, &vendor.token, Some("acme"), "").await["total"],
            1
        );
        t.clock.advance_seconds(86_400);
        let vendor = t.as_vendor().await; // a write: the embedded store purges as it writes
        assert_eq!(
            audits(&t, &vendor.token, Some("acme"), "").await,
            json!({"data": [], "total": 0})
        );
    }
}

/// One event per token and minute counts its JWTs and its refusals by reason, whatever the
/// number of exchanges: written with the token's first use of a later minute.
#[tokio::test]
async fn exchanges_are_counted_per_token_and_minute_not_recorded_one_by_one() {
    for backing in [Backing::Embedded, Backing::Moto] {
        let t = spawn_app_with(backing, |s| s.token_rate_limit_per_minute = 4).await;
        let vendor = t.as_vendor().await;
        let acme = vendor.tenant("acme");
        let open = acme.token(json!({})).await;
        let fenced = acme.token(json!({"allowedIps": ["203.0.113.0/24"]})).await;
        t.clock.to_next_minute();
        let mut statuses = Vec::new();
        for secret in [&open.secret, &open.secret, &"m2mt_wrong".to_owned()] {
            statuses.push(
                t.exchange(EXCHANGE_V1, &open.client_id, secret)
                    .await
                    .status,
            );
        }
        let wrong = fenced.secret.clone(); // well formed: checked by bcrypt
        statuses.push(
            t.exchange(EXCHANGE_V1, &open.client_id, &wrong)
                .await
                .status,
        );
        for _ in 0..3 {
            statuses.push(
                t.exchange(EXCHANGE_V1, &open.client_id, &open.secret)
                    .await
                    .status,
            );
        }
        let fenced_reply = t
            .exchange(EXCHANGE_V1, &fenced.client_id, &fenced.secret)
            .await;
        assert_eq!(fenced_reply.status, StatusCode::UNAUTHORIZED);
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let limited = statuses.iter().filter(|s| s.as_u16() == 429).count();
        assert_eq!((ok, limited), (4, 1), "{statuses:?}");
        let used = |id: &str| format!("filter={id}");
        let before = audits(&t, &vendor.token, None, &used(&open.client_id)).await;
        assert!(!actions(&before).contains(&"apiToken.used"), "{before}");

        t.clock.to_next_minute();
        t.exchange(EXCHANGE_V1, &open.client_id, &open.secret).await;
        t.exchange(EXCHANGE_V1, &fenced.client_id, &fenced.secret)
            .await;
        let vendor = t.as_vendor().await;
        let page = audits(&t, &vendor.token, None, &used(&open.client_id)).await;
        let event = &page["data"][0];
        assert_eq!(event["action"], "apiToken.used", "{page}");
        assert_eq!(event["issued"], 4);
        // The malformed secret is refused before the token is read: not counted.
        let refused = json!({"secret": 1, "allowList": 0, "rateLimit": 1, "disabled": 0});
        assert_eq!(event["refused"], refused);
        assert_eq!(event["actor"]["type"], "credential");
        let page = audits(&t, &vendor.token, None, &used(&fenced.client_id)).await;
        assert_eq!(page["data"][0]["refused"]["allowList"], 1, "{page}");
    }
}

/// A token found expired on use is deleted, with its one event.
async fn an_expired_token_is_ended_on_use_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let token = vendor
        .tenant("acme")
        .token(json!({"expiresInMinutes": 1}))
        .await;
    t.clock.advance_seconds(120);
    for _ in 0..2 {
        let reply = t
            .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let vendor = t.as_vendor().await;
    let page = audits(
        t,
        &vendor.token,
        None,
        &format!("filter={}", token.client_id),
    )
    .await;
    assert_eq!(actions(&page), ["apiToken.expired", "apiToken.created"]);
    let client_id = m2m_shared::domain::ClientId::parse(&token.client_id).unwrap();
    assert!(t.store.token(&client_id).await.unwrap().is_none());
}
on_both_stores!(an_expired_token_is_ended_on_use_once);

/// A portal session refused (403) leaves one event naming its user: the refusal is the event.
async fn a_refused_escalation_is_recorded(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let bob = vendor.tenant("acme").user("bob");
    bob.join(json!(["reader"])).await;
    let reader = session(t, &bob).await;
    // Bob's refusals all in one minute (the limit's), however near its end the test began.
    t.clock.to_next_minute();
    let made = reader
        .call(Method::POST, TENANT_TOKENS, Some(json!({})))
        .await;
    assert_eq!(made.status, StatusCode::FORBIDDEN, "{:?}", made.body);
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["token-admin"])).await;
    let admin = session(t, &alice).await;
    let body = json!({"roleIds": ["billing"]});
    let beyond = admin.call(Method::POST, TENANT_TOKENS, Some(body)).await;
    assert_eq!(beyond.status, StatusCode::FORBIDDEN, "{:?}", beyond.body);

    // Refused before a token is read, or on a creation: the tenant is the target.
    for user in ["alice", "bob"] {
        let page = audits(t, &vendor.token, Some("acme"), &format!("actorId={user}")).await;
        let event = &page["data"][0];
        assert_eq!(event["action"], "apiToken.refused", "{page}");
        assert_eq!(event["target"], json!({"type": "tenant", "id": "acme"}));
        assert_eq!(
            (&event["outcome"], &event["severity"]),
            (&json!("refused"), &json!("High"))
        );
    }
    // A flood of refusals is recorded a few times a minute, not at the rate it comes.
    for _ in 0..8 {
        let made = reader
            .call(Method::POST, TENANT_TOKENS, Some(json!({})))
            .await;
        assert_eq!(made.status, StatusCode::FORBIDDEN);
    }
    let bobs = audits(t, &vendor.token, Some("acme"), "actorId=bob&count=100").await;
    let refused = actions(&bobs)
        .iter()
        .filter(|a| **a == "apiToken.refused")
        .count();
    assert_eq!(refused, 5, "{bobs}");
}
on_both_stores!(a_refused_escalation_is_recorded);

/// A cascade's tokens each get their deletion; a change that changes nothing gets none.
async fn a_cascade_records_each_token_it_ends(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let bot = acme.token(json!({"description": "bot"})).await;
    let laptop = alice.personal_token(json!({})).await;
    let path = format!("{TENANT_TOKENS}/{}", bot.client_id);
    for body in [json!({}), json!({"description": "bot"})] {
        let same = acme.call(Method::PATCH, &path, Some(body)).await;
        assert_eq!(same.status, StatusCode::OK, "{:?}", same.body);
    }
    let gone = vendor
        .call(Method::DELETE, "/identity/resources/tenants/v1/acme", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{:?}", gone.body);
    for token in [&bot, &laptop] {
        let page = audits(
            t,
            &vendor.token,
            None,
            &format!("filter={}", token.client_id),
        )
        .await;
        assert_eq!(actions(&page), ["apiToken.deleted", "apiToken.created"]);
        assert_eq!(page["data"][0]["actor"]["type"], "vendor");
    }
}
on_both_stores!(a_cascade_records_each_token_it_ends);

/// A user's change that concerns one tenant (joining it, leaving it, roles there) is that
/// tenant's event too.
async fn a_users_change_in_one_tenant_is_in_that_tenants_log(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.role("r-admin", "admin", json!([])).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let assigned = (vendor.tenant("acme"))
        .call(
            Method::POST,
            "/identity/resources/users/v1/alice/roles",
            Some(json!({"roleIds": ["r-admin"]})),
        )
        .await;
    assert!(assigned.status.is_success(), "{:?}", assigned.body);
    let page = audits(t, &vendor.token, Some("acme"), "filter=alice").await;
    assert_eq!(actions(&page), ["user.changed", "user.created"], "{page}");
    let globex = audits(t, &vendor.token, Some("globex"), "filter=alice").await;
    assert_eq!(globex["total"], 0);
}
on_both_stores!(a_users_change_in_one_tenant_is_in_that_tenants_log);

/// A portal session whose user holds `fe.secure.read.audits` reads its own tenant's events and
/// no other's, whatever it names; one without it is refused, and that refusal is recorded.
async fn a_session_reads_its_own_tenants_trail_only(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    let ours = acme.token(json!({"description": "ours"})).await;
    let theirs = globex.token(json!({"description": "theirs"})).await;
    acme.user("alice").join(json!(["token-admin"])).await;
    acme.user("dave").join(json!(["deployer"])).await;
    let admin = session(t, &acme.user("alice")).await;
    let info = admin.call(Method::GET, "/portal/v1/session", None).await;
    assert_eq!(info.body["readAudits"], true, "{:?}", info.body);

    let read = |query: String, tenant: Option<&'static str>| {
        let headers: Vec<_> = tenant
            .map(|t| ("frontegg-tenant-id", t))
            .into_iter()
            .collect();
        let admin = &admin;
        async move {
            let path = format!("/audits?{query}");
            let reply = admin.call_with(Method::GET, &path, &headers, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {:?}", reply.body);
            reply.body
        }
    };
    let all = read("count=100".into(), None).await;
    let events = all["data"].as_array().unwrap();
    assert!(events.len() >= 3, "{all}");
    assert!(events.iter().all(|e| e["tenantId"] == "acme"), "{all}");
    let own = read(format!("filter={}", ours.client_id), None).await;
    assert_eq!(actions(&own), ["apiToken.created"]);
    for (query, tenant) in [
        (format!("filter={}", theirs.client_id), None),
        ("tenantId=globex".to_owned(), None),
        (String::new(), Some("globex")),
        (format!("filter={}", theirs.client_id), Some("globex")),
    ] {
        assert_eq!(read(query, tenant).await["total"], 0, "another tenant's");
    }

    let deployer = session(t, &acme.user("dave")).await;
    let info = deployer.call(Method::GET, "/portal/v1/session", None).await;
    assert_eq!(info.body["readAudits"], false);
    let refused = deployer.call(Method::GET, "/audits", None).await;
    refused.assert_refused(StatusCode::FORBIDDEN, "fe.secure.read.audits", "");
    let page = audits(t, &vendor.token, Some("acme"), "actorId=dave").await;
    assert_eq!(page["data"][0]["action"], "portalSession.refused", "{page}");
}
on_both_stores!(a_session_reads_its_own_tenants_trail_only);

/// Where a request carries a credential it was given.
#[derive(Clone, Copy, Debug)]
enum Planted {
    /// As the path's `{id}`.
    Path,
    /// As query parameters' values.
    Query,
    /// As the value of every field a body commonly has.
    Body,
    /// In the user agent.
    UserAgent,
    /// As the `frontegg-*` headers.
    Headers,
}

const PLANTED: [Planted; 5] = [
    Planted::Path,
    Planted::Query,
    Planted::Body,
    Planted::UserAgent,
    Planted::Headers,
];

/// Calls `endpoint` as the vendor or a portal session, with `credential` planted in it.
async fn planted_call(
    t: &TestApp,
    endpoint: &m2m_shared::http::endpoints::Endpoint,
    (caller, as_session): (&str, bool),
    credential: &str,
    planted: Planted,
) {
    let id = match planted {
        Planted::Path => credential,
        _ => "acme",
    };
    let mut url = format!("{}{}", t.base, endpoint.path.replace("{id}", id));
    url = url.replace("{key}", id);
    if let Planted::Query = planted {
        url.push_str(&format!("?filter={credential}&description={credential}"));
    }
    let method = Method::from_bytes(endpoint.method.as_str().as_bytes()).unwrap();
    let mut request = t.http.request(method, url);
    request = match as_session {
        true => request.header("authorization", format!("Bearer {caller}")),
        false => request.header("x-access-token", caller),
    };
    let (tenant, user) = match planted {
        Planted::Headers => (credential, credential),
        _ => ("acme", "alice"),
    };
    request = request
        .header("frontegg-tenant-id", tenant)
        .header("frontegg-user-id", user);
    if let Planted::UserAgent = planted {
        request = request.header("user-agent", format!("ci/1.0 token={credential}"));
    }
    // A credential in each field a body commonly has, one at a time, so that strict bodies
    // still take them; else the least body.
    let bodies = match planted {
        Planted::Body => vec![
            json!({"description": credential}),
            json!({"name": credential, "key": "k"}),
            json!({"metadata": {"note": credential}}),
            json!({"email": format!("{credential}@example.com")}),
            json!({"tenantId": "acme", "severity": "Info", "description": credential}),
        ],
        _ => vec![json!({})],
    };
    for body in bodies {
        let reply = request
            .try_clone()
            .unwrap()
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            reply.status().as_u16() < 500,
            "{} {}: {}",
            endpoint.method,
            endpoint.path,
            reply.status()
        );
    }
}

/// Every event still kept, read a page at a time as the vendor: their JSON, and how many.
async fn every_event(t: &TestApp, vendor: &str) -> (String, usize) {
    let mut text = String::new();
    let mut offset = 0;
    loop {
        let page = audits(t, vendor, None, &format!("count=1000&offset={offset}")).await;
        let read = page["data"].as_array().unwrap().len();
        text.push_str(&page["data"].to_string());
        offset += read;
        if read == 0 || offset as u64 >= page["total"].as_u64().unwrap() {
            break;
        }
    }
    (text, offset)
}

/// Alice's portal session, and one credential of each kind the service gives out.
async fn credentials_of<'t>(
    t: &'t TestApp,
    vendor: &client::Vendor<'t>,
) -> (crate::portal::Session<'t>, Vec<String>) {
    portal_roles(vendor).await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!(["token-admin"])).await;
    let token = acme.token(json!({})).await;
    let exchanged = t
        .exchange(EXCHANGE_V1, &token.client_id, &token.secret)
        .await;
    let opened = alice.open_portal().await;
    let url = opened.body["url"].as_str().unwrap();
    let session = session(t, &alice).await;
    let credentials = vec![
        t.vendor_secret.clone(),
        vendor.token.clone(),
        token.secret.clone(),
        exchanged.body["accessToken"].as_str().unwrap().to_owned(),
        exchanged.body["refreshToken"].as_str().unwrap().to_owned(),
        alice.personal_token(json!({})).await.secret,
        url.split_once("#handoff=").unwrap().1.to_owned(),
        session.token.clone(),
    ];
    (session, credentials)
}

/// No event holds a credential, whatever endpoint is called, by whom, with a secret, a JWT, a
/// refresh token or a hand-off planted in its path, query, body, user agent or headers: every
/// endpoint with every placement, then generated combinations.
async fn no_endpoint_puts_a_credential_in_an_event(t: &TestApp) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    let vendor = t.as_vendor().await;
    let (session, credentials) = credentials_of(t, &vendor).await;
    let callers = [
        (vendor.token.as_str(), false),
        (session.token.as_str(), true),
    ];
    let endpoints = m2m_shared::http::endpoints::ENDPOINTS;
    let mut n = 0;
    for endpoint in endpoints {
        for planted in PLANTED {
            let credential = &credentials[n % credentials.len()];
            planted_call(t, endpoint, callers[n % 2], credential, planted).await;
            n += 1;
        }
    }
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(27),
        failure_persistence: None,
        ..Config::default()
    });
    let cases = (
        0..endpoints.len(),
        0..credentials.len(),
        0..PLANTED.len(),
        any::<bool>(),
    );
    for _ in 0..200 {
        let (endpoint, credential, planted, as_session) =
            cases.new_tree(&mut runner).unwrap().current();
        let caller = callers[usize::from(as_session)];
        let (endpoint, planted) = (&endpoints[endpoint], PLANTED[planted]);
        planted_call(t, endpoint, caller, &credentials[credential], planted).await;
    }

    let (text, events) = every_event(t, &vendor.token).await;
    assert!(events >= 50, "{events} events");
    for credential in &credentials {
        assert!(
            !text.contains(credential.as_str()),
            "an event holds {credential}"
        );
    }
    for marker in [
        "$2a$", "$2b$", "$2y$", "eyJ", "m2mh_", "m2mr_", "m2mt_", "m2mu_", "m2mv_",
    ] {
        assert!(!text.contains(marker), "an event holds {marker}");
    }
}
on_both_stores!(no_endpoint_puts_a_credential_in_an_event);
