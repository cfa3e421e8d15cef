//! The self-service portal's API: sessions opened by the vendor for a signed-in user, swapped
//! once from a hand-off, and token management on the user's own permissions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::client::{Member, Vendor};
use crate::support::*;
use crate::verifier::test_verifier;

const HANDOFF: &str = "/portal/v1/sessions/handoff";

/// A portal session, as the page holds it.
pub(crate) struct Session<'a> {
    t: &'a TestApp,
    pub(crate) token: String,
}

impl Session<'_> {
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, &[], body).await
    }

    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .t
            .http
            .request(method, format!("{}{path}", self.t.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.t.send(request).await
    }
}

/// The hand-off in a portal URL's fragment.
fn handoff_of(opened: &Reply) -> String {
    let url = opened.body["url"].as_str().unwrap();
    url.split_once("#handoff=").unwrap().1.to_owned()
}

async fn swap(t: &TestApp, handoff: &str) -> Reply {
    t.post(HANDOFF, &[], &json!({"handoff": handoff})).await
}

pub(crate) async fn session<'a>(t: &'a TestApp, member: &Member<'_>) -> Session<'a> {
    let opened = member.open_portal().await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    let swapped = swap(t, &handoff_of(&opened)).await;
    assert_eq!(swapped.status, StatusCode::OK, "{:?}", swapped.body);
    Session {
        t,
        token: swapped.body["accessToken"].as_str().unwrap().to_owned(),
    }
}

/// Frontegg's token permissions as roles: `token-admin` may do everything (`fe.secure.*`),
/// `reader` may read (`fe.secure.read.*`), `deployer` holds only an API permission.
pub(crate) async fn portal_roles(vendor: &Vendor<'_>) {
    vendor.permission("p-all", "fe.secure.*").await;
    vendor.permission("p-read", "fe.secure.read.*").await;
    vendor.permission("p-deploy", "deploy.write").await;
    vendor.permission("p-billing", "billing.write").await;
    vendor
        .role("token-admin", "token-admin", json!(["p-all", "p-deploy"]))
        .await;
    vendor.role("reader", "reader", json!(["p-read"])).await;
    vendor
        .role("deployer", "deployer", json!(["p-deploy"]))
        .await;
    vendor
        .role("billing", "billing", json!(["p-billing"]))
        .await;
}

async fn a_handoff_opens_one_session_once_and_in_time(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let opened = alice.open_portal().await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    let url = opened.body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/portal#handoff=", t.base)),
        "{url}"
    );
    assert!(opened.body["expiresIn"].as_i64().unwrap() <= 120);

    let handoff = handoff_of(&opened);
    let swapped = swap(t, &handoff).await;
    assert_eq!(swapped.status, StatusCode::OK, "{:?}", swapped.body);
    assert!(swapped.body["expiresIn"].as_i64().unwrap() <= 3600);
    assert_eq!(
        swap(t, &handoff).await.status,
        StatusCode::UNAUTHORIZED,
        "used once"
    );
    let tampered = handoff.replace(&handoff[6..8], "zz");
    assert_eq!(swap(t, &tampered).await.status, StatusCode::UNAUTHORIZED);

    let late = handoff_of(&alice.open_portal().await);
    t.clock.advance_seconds(121);
    assert_eq!(
        swap(t, &late).await.status,
        StatusCode::UNAUTHORIZED,
        "expired"
    );

    let stranger = vendor.tenant("acme").user("mallory").open_portal().await;
    assert_eq!(
        stranger.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        stranger.body
    );
}
on_both_stores!(a_handoff_opens_one_session_once_and_in_time);

/// Of concurrent swaps of one hand-off, exactly one gets a session.
async fn concurrent_swaps_of_one_handoff_yield_one_session(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    for _ in 0..10 {
        let handoff = handoff_of(&alice.open_portal().await);
        let swaps = (0..8).map(|_| swap(t, &handoff));
        let answers = futures::future::join_all(swaps).await;
        let won = answers
            .iter()
            .filter(|a| a.status == StatusCode::OK)
            .count();
        assert_eq!(won, 1, "{answers:?}");
    }
}
on_both_stores!(concurrent_swaps_of_one_handoff_yield_one_session);

async fn a_session_manages_only_what_its_users_permissions_allow(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    let (rita, dave) = (acme.user("rita"), acme.user("dave"));
    rita.join(json!(["reader"])).await;
    dave.join(json!(["deployer"])).await;
    acme.token(json!({"description": "ci"})).await;

    let reader = session(t, &rita).await;
    let listed = reader.call(Method::GET, TENANT_TOKENS, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let created = reader
        .call(Method::POST, TENANT_TOKENS, Some(json!({})))
        .await;
    created.assert_refused(StatusCode::FORBIDDEN, "fe.secure.write.tenantApiTokens", "");

    let outsider = session(t, &dave).await;
    for path in [TENANT_TOKENS, USER_TOKENS] {
        let refused = outsider.call(Method::GET, path, None).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {:?}",
            refused.body
        );
    }

    // Permissions are read on every request: demoted, rita can no longer read.
    rita.join(json!(["deployer"])).await;
    let demoted = reader.call(Method::GET, TENANT_TOKENS, None).await;
    assert_eq!(demoted.status, StatusCode::FORBIDDEN);
    // Removed from the tenant, her session ends.
    vendor
        .call(
            Method::PUT,
            "/identity/resources/users/v1/rita",
            Some(json!({"tenants": []})),
        )
        .await;
    let gone = reader.call(Method::GET, TENANT_TOKENS, None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}
on_both_stores!(a_session_manages_only_what_its_users_permissions_allow);

async fn a_session_decides_the_tenant_and_user_whatever_the_headers_say(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let (acme, globex) = (vendor.tenant("acme"), vendor.tenant("globex"));
    let alice = acme.user("alice");
    alice.join(json!(["token-admin"])).await;
    let bob = acme.user("bob");
    bob.join(json!(["token-admin"])).await;
    globex.token(json!({"description": "globex bot"})).await;
    let bobs = bob
        .personal_token(json!({"description": "bob laptop"}))
        .await;

    let admin = session(t, &alice).await;
    let elsewhere = [
        ("frontegg-tenant-id", "globex"),
        ("frontegg-user-id", "bob"),
    ];
    let listed = admin
        .call_with(Method::GET, TENANT_TOKENS, &elsewhere, None)
        .await;
    assert_eq!(listed.body, json!([]), "acme's tokens, not globex's");
    let mine = admin
        .call_with(Method::GET, USER_TOKENS, &elsewhere, None)
        .await;
    assert_eq!(mine.body, json!([]), "alice's personal tokens, not bob's");
    let path = format!("{USER_TOKENS}/{}", bobs.client_id);
    let deleted = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(
        deleted.status,
        StatusCode::NOT_FOUND,
        "bob's token is not hers"
    );

    let made = admin
        .call_with(Method::POST, USER_TOKENS, &elsewhere, Some(json!({})))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let listed = admin.call(Method::GET, USER_TOKENS, None).await;
    assert_eq!(listed.body[0]["clientId"], made.body["clientId"]);
}
on_both_stores!(a_session_decides_the_tenant_and_user_whatever_the_headers_say);

async fn a_session_grants_only_roles_and_permissions_its_user_holds(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["token-admin", "deployer"])).await;
    let admin = session(t, &alice).await;

    for body in [
        json!({"roleIds": ["billing"]}),
        json!({"permissionIds": ["p-billing"]}),
    ] {
        let refused = admin.call(Method::POST, TENANT_TOKENS, Some(body)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    }
    let held = json!({"roleIds": ["deployer"], "description": "deploys"});
    let made = admin.call(Method::POST, TENANT_TOKENS, Some(held)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert_eq!(made.body["createdByUserId"], "alice");
    let by_permission = json!({"permissionIds": ["p-deploy"]});
    let made_too = admin
        .call(Method::POST, TENANT_TOKENS_V2, Some(by_permission))
        .await;
    assert_eq!(made_too.status, StatusCode::CREATED, "{:?}", made_too.body);

    let path = format!(
        "{TENANT_TOKENS}/{}",
        made.body["clientId"].as_str().unwrap()
    );
    let escalate = json!({"roleIds": ["deployer", "billing"]});
    let refused = admin.call(Method::PATCH, &path, Some(escalate)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let renamed = admin
        .call(
            Method::PATCH,
            &path,
            Some(json!({"description": "deploys prod"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);

    // A token the vendor gave more than alice holds cannot be edited through her session.
    let wider = vendor
        .tenant("acme")
        .token(json!({"roleIds": ["billing"]}))
        .await;
    let path = format!("{TENANT_TOKENS}/{}", wider.client_id);
    let refused = admin
        .call(Method::PATCH, &path, Some(json!({"description": "x"})))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
}
on_both_stores!(a_session_grants_only_roles_and_permissions_its_user_holds);

pub(crate) async fn configure(vendor: &Vendor<'_>, body: Value) -> Reply {
    vendor.call(Method::PATCH, CONFIGURATIONS, Some(body)).await
}

/// The vendor's switches: off, tokens are neither made nor exchanged, with the message
/// Frontegg's SDKs recognise; on again, the same tokens work.
async fn switched_off_api_tokens_are_neither_created_nor_exchanged(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let bot = acme.token(json!({})).await;
    let laptop = alice.personal_token(json!({})).await;
    let shown = vendor.call(Method::GET, CONFIGURATIONS, None).await;
    assert_eq!(shown.body["apiTokensEnabled"], true);
    assert_eq!(shown.body["maxExpiresInMinutes"], Value::Null);

    let off = configure(&vendor, json!({"apiTokensEnabled": false})).await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    assert_eq!(off.body["apiTokensEnabled"], false);
    assert_eq!(
        off.body["personalTokensEnabled"], true,
        "the other fields stay"
    );
    let disabled = json!({"errors": ["Api tokens are disabled"]});
    for issued in [&bot, &laptop] {
        let refused = t
            .exchange(EXCHANGE_V1, &issued.client_id, &issued.secret)
            .await;
        assert_eq!(
            (refused.status, &refused.body),
            (StatusCode::FORBIDDEN, &disabled)
        );
    }
    let refused = acme.create_token(json!({})).await;
    assert_eq!(
        (refused.status, &refused.body),
        (StatusCode::FORBIDDEN, &disabled)
    );
    let refused = alice.create_personal_token(json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (status, body) = t.oauth_grant(&bot.client_id, &bot.secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    configure(
        &vendor,
        json!({"apiTokensEnabled": true, "personalTokensEnabled": false}),
    )
    .await;
    let works = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    assert_eq!(works.status, StatusCode::OK, "{:?}", works.body);
    let refused = t
        .exchange(EXCHANGE_V2, &laptop.client_id, &laptop.secret)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
}
on_both_stores!(switched_off_api_tokens_are_neither_created_nor_exchanged);

async fn with_a_maximum_expiry_every_new_token_expires_within_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let capped = configure(&vendor, json!({"maxExpiresInMinutes": 10080})).await;
    assert_eq!(capped.body["maxExpiresInMinutes"], 10080);
    for body in [json!({}), json!({"expiresInMinutes": 10081})] {
        let refused = acme.create_token(body).await;
        refused.assert_refused(StatusCode::BAD_REQUEST, "10080", "");
    }
    acme.token(json!({"expiresInMinutes": 10080})).await;
    let lifted = configure(&vendor, json!({"maxExpiresInMinutes": null})).await;
    assert_eq!(lifted.body["maxExpiresInMinutes"], Value::Null);
    acme.token(json!({})).await;
    for wrong in [
        json!({"apiTokensEnabled": "no"}),
        json!({"maxExpiresInMinutes": 0}),
    ] {
        let refused = configure(&vendor, wrong).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            refused.body
        );
    }
}
on_both_stores!(with_a_maximum_expiry_every_new_token_expires_within_it);

/// The page: HTML with a policy that allows only its own hashed script and style, talks only
/// to the API, and is framed only where the vendor says.
#[tokio::test]
async fn the_page_is_served_under_a_strict_policy() {
    let ancestors = "https://app.example.com";
    let t = spawn_app_with(Backing::Embedded, |settings| {
        settings.portal_frame_ancestors = ancestors.into();
    })
    .await;
    let response = t
        .http
        .get(format!("{}/portal", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let policy = header("content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "frame-ancestors https://app.example.com",
    ] {
        assert!(policy.contains(part), "{part} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<script>'use strict';"),
        "the script is inline and hashed"
    );

    let default = spawn_app(Backing::Embedded).await;
    let response = default
        .http
        .get(format!("{}/portal", default.base))
        .send()
        .await
        .unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");
}

/// What the page offers follows the user's permissions and the vendor's switches.
async fn the_session_says_what_its_user_may_do(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let rita = vendor.tenant("acme").user("rita");
    rita.join(json!(["reader", "deployer"])).await;
    let reader = session(t, &rita).await;
    let info = reader.call(Method::GET, "/portal/v1/session", None).await;
    assert_eq!(info.status, StatusCode::OK, "{:?}", info.body);
    assert_eq!(
        (&info.body["tenantId"], &info.body["userId"]),
        (&json!("acme"), &json!("rita"))
    );
    let tenant = &info.body["tenantTokens"];
    assert_eq!(
        (
            &tenant["enabled"],
            &tenant["read"],
            &tenant["write"],
            &tenant["delete"]
        ),
        (&json!(true), &json!(true), &json!(false), &json!(false))
    );
    let keys: Vec<&str> = info.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["deployer", "reader"], "the roles she may grant");
    configure(
        &vendor,
        json!({"personalTokensEnabled": false, "maxExpiresInMinutes": 1440}),
    )
    .await;
    let info = reader.call(Method::GET, "/portal/v1/session", None).await;
    assert_eq!(info.body["personalTokens"]["enabled"], false);
    assert_eq!(info.body["maxExpiresInMinutes"], 1440);
    let vendor_token = t.vendor_token().await;
    let refused = t
        .get(
            "/portal/v1/session",
            &[("authorization", &format!("Bearer {vendor_token}"))],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "a vendor token is no session"
    );
}
on_both_stores!(the_session_says_what_its_user_may_do);

/// A session is a JWT of its own type and audience: no vendor endpoint takes it (not even the
/// one that opens sessions), whatever headers come with it, and neither the API-token check
/// nor m2m-verify accepts it.
#[tokio::test]
async fn a_session_stands_in_for_no_other_token() {
    use m2m_shared::http::ENDPOINTS;
    use m2m_shared::http::caller::Access;
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["token-admin"])).await;
    let admin = session(&t, &alice).await;
    let headers = [
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    let vendor_only = [Access::Vendor, Access::TenantOwner, Access::UserOwner];
    for endpoint in ENDPOINTS
        .iter()
        .filter(|e| vendor_only.contains(&e.access()))
    {
        let path = endpoint.path.replace("{id}", "alice");
        let reply = admin
            .call_with(endpoint.method.clone(), &path, &headers, Some(json!({})))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{} {path}",
            endpoint.method
        );
    }
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&admin.token)
            .is_err()
    );
    let verifier = test_verifier(&t, "test-api").await;
    assert!(
        verifier.verify(&admin.token).await.is_err(),
        "m2m-verify refuses it"
    );
}

/// Two switches changed at the same moment both hold: each change is applied to the settings
/// as read inside one conditional write.
async fn concurrent_switches_are_both_kept(t: &TestApp) {
    let vendor = t.as_vendor().await;
    for _ in 0..15 {
        configure(
            &vendor,
            json!({"personalTokensEnabled": true, "tenantTokensEnabled": true}),
        )
        .await;
        let (a, b) = tokio::join!(
            configure(&vendor, json!({"personalTokensEnabled": false})),
            configure(&vendor, json!({"tenantTokensEnabled": false})),
        );
        assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
        let shown = vendor.call(Method::GET, CONFIGURATIONS, None).await.body;
        assert_eq!(
            (
                &shown["personalTokensEnabled"],
                &shown["tenantTokensEnabled"]
            ),
            (&json!(false), &json!(false)),
            "no switch is lost"
        );
    }
}
on_both_stores!(concurrent_switches_are_both_kept);

/// A hand-off is of the lives it was opened in: once the user has left and rejoined, or the
/// tenant was deleted and made again, it opens no session (401), though it has not expired.
async fn a_handoff_of_ended_lives_opens_nothing(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!(["token-admin"])).await;

    let before_leaving = handoff_of(&alice.open_portal().await);
    let user = "/identity/resources/users/v1/alice";
    vendor.call(Method::DELETE, user, None).await;
    alice.join(json!(["token-admin"])).await;
    let refused = swap(t, &before_leaving).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        refused.body
    );

    let before_deletion = handoff_of(&alice.open_portal().await);
    vendor
        .call(Method::DELETE, "/identity/resources/tenants/v1/acme", None)
        .await;
    acme.create().await;
    alice.join(json!(["token-admin"])).await;
    let refused = swap(t, &before_deletion).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        refused.body
    );

    let current = swap(t, &handoff_of(&alice.open_portal().await)).await;
    assert_eq!(current.status, StatusCode::OK, "{:?}", current.body);
}
on_both_stores!(a_handoff_of_ended_lives_opens_nothing);
