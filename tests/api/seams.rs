//! Where two features meet, neither opens a door: portal sessions and grants, sessions and the
//! lives of their tenant and membership, rotation and refresh tokens, refresh tokens and the
//! rate limit, rotation and the vendor's switches. Each written as the attacker tried it, on
//! both stores.

use m2m_shared::http::ENDPOINTS;
use m2m_shared::http::caller::Access;
use m2m_shared::ports::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::portal::{self, Session, portal_roles, session};
use crate::support::client::{Issued, Vendor};
use crate::support::*;

fn rotate_path(base: &str, client_id: &str) -> String {
    format!("{base}/{client_id}/rotate")
}

async fn refresh(t: &TestApp, refresh_token: &str) -> Reply {
    t.post(REFRESH_V1, &[], &json!({"refreshToken": refresh_token}))
        .await
}

fn text<'r>(reply: &'r Reply, field: &str) -> &'r str {
    reply.body[field].as_str().unwrap_or_else(|| {
        panic!("{field} in {} {:?}", reply.status, reply.body);
    })
}

/// Whether `issued`'s secret still exchanges.
async fn exchanges(t: &TestApp, client_id: &str, secret: &str) -> bool {
    let reply = t.exchange(EXCHANGE_V1, client_id, secret).await;
    match reply.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("exchange: {other} {:?}", reply.body),
    }
}

/// A role holding only Frontegg's write permission on tenant tokens.
async fn writer_role(vendor: &Vendor<'_>) {
    vendor
        .permission("p-write", "fe.secure.write.tenantApiTokens")
        .await;
    vendor.role("writer", "writer", json!(["p-write"])).await;
}

/// The attacker: a portal user with only `fe.secure.write.tenantApiTokens` rotates a token the
/// vendor made with a role she lacks, to receive its secret and act with that role.
async fn a_session_cannot_rotate_a_token_beyond_its_users_grants(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    writer_role(&vendor).await;
    let acme = vendor.tenant("acme");
    let mallory = acme.user("mallory");
    mallory.join(json!(["writer"])).await;
    let billing_bot = acme.token(json!({"roleIds": ["billing"]})).await;
    let held = acme.token(json!({})).await;
    let attacker = session(t, &mallory).await;

    let path = rotate_path(TENANT_TOKENS, &billing_bot.client_id);
    let body = json!({"graceMinutes": 10080});
    let refused = attacker.call(Method::POST, &path, Some(body)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert!(refused.body.get("secret").is_none());
    assert!(
        refused
            .error()
            .contains("roles and permissions that you hold"),
        "{:?}",
        refused.body
    );
    assert!(
        exchanges(t, &billing_bot.client_id, &billing_bot.secret).await,
        "the owner's secret is untouched"
    );
    let listed = acme.list_tokens().await;
    let listed = listed.body.as_array().unwrap();
    let bot = listed
        .iter()
        .find(|l| l["clientId"] == billing_bot.client_id.as_str())
        .unwrap();
    assert!(bot.get("rotatedAt").is_none(), "{bot}");

    // A token within her grants (none) she may rotate: the rule refuses only what it must.
    let path = rotate_path(TENANT_TOKENS, &held.client_id);
    let rotated = attacker.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
}
on_both_stores!(a_session_cannot_rotate_a_token_beyond_its_users_grants);

/// The one rule, over the endpoint table: every route a portal session can reach on tokens,
/// today's and any added later, refuses a session acting on (or making) a tenant token that
/// holds more than its user, and reaches only the user's own personal tokens.
async fn no_session_route_acts_beyond_its_users_grants(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    acme.user("alice").join(json!(["token-admin"])).await;
    acme.user("bob").join(json!([])).await;
    let admin = session(t, &acme.user("alice")).await;

    let mut on_a_token = 0;
    for endpoint in ENDPOINTS {
        let access = endpoint.access();
        if !matches!(
            access,
            Access::TenantOwnerOrSession | Access::UserOwnerOrSession
        ) {
            continue;
        }
        let route = Route {
            method: Method::from_bytes(endpoint.method.as_str().as_bytes()).unwrap(),
            path: endpoint.path,
            tenant_tokens: access == Access::TenantOwnerOrSession,
        };
        if route.path.contains("{id}") {
            on_a_token += 1;
            route
                .tried_on_a_token_beyond_reach(t, &admin, &vendor)
                .await;
        } else if route.method == Method::POST {
            route.tried_creating_beyond_grants(t, &admin).await;
        } else {
            assert_eq!(route.method, Method::GET, "{route:?}: a new kind of route");
        }
    }
    assert!(on_a_token >= 5, "patch, delete and rotate: {on_a_token}");
}

/// A route of the endpoint table that a portal session reaches.
#[derive(Debug)]
struct Route {
    method: Method,
    path: &'static str,
    tenant_tokens: bool,
}

impl Route {
    /// On a token the session must not reach (one holding a role alice lacks, or another
    /// user's personal token): refused, and the token left as it was. A read of a token the
    /// session lists (its use) answers as the listing does.
    async fn tried_on_a_token_beyond_reach(
        &self,
        t: &TestApp,
        admin: &Session<'_>,
        vendor: &Vendor<'_>,
    ) {
        let acme = vendor.tenant("acme");
        let (target, expected) = if self.tenant_tokens {
            let billing = acme.token(json!({"roleIds": ["billing"]})).await;
            let expected = match self.method {
                Method::GET => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            };
            (billing, expected)
        } else {
            let bobs = acme.user("bob").personal_token(json!({})).await;
            (bobs, StatusCode::NOT_FOUND)
        };
        let path = self.path.replace("{id}", &target.client_id);
        let reply = admin
            .call(self.method.clone(), &path, Some(json!({})))
            .await;
        assert_eq!(reply.status, expected, "{self:?}: {:?}", reply.body);
        assert!(
            exchanges(t, &target.client_id, &target.secret).await,
            "{self:?} left the token as it was"
        );
    }

    /// Making a token with a role alice lacks: refused for tenant tokens; personal tokens hold
    /// their user's roles, never roles of their own.
    async fn tried_creating_beyond_grants(&self, t: &TestApp, admin: &Session<'_>) {
        let body = json!({"roleIds": ["billing"]});
        let reply = admin.call(Method::POST, self.path, Some(body)).await;
        if self.tenant_tokens {
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{self:?}: {:?}",
                reply.body
            );
            return;
        }
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{self:?}: {:?}",
            reply.body
        );
        let made = Issued {
            client_id: text(&reply, "clientId").to_owned(),
            secret: text(&reply, "secret").to_owned(),
        };
        let claims = t.claims_of(&made).await;
        assert_eq!(claims["roles"], json!(["token-admin"]), "{self:?}");
    }
}
on_both_stores!(no_session_route_acts_beyond_its_users_grants);

/// The session is refused (401) for listing and for rotating `client_id`.
async fn assert_ended(session: &Session<'_>, client_id: &str) {
    let rotate = rotate_path(TENANT_TOKENS, client_id);
    for (method, path) in [
        (Method::GET, TENANT_TOKENS),
        (Method::POST, rotate.as_str()),
    ] {
        let refused = session.call(method, path, Some(json!({}))).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {:?}",
            refused.body
        );
    }
}

/// The attacker keeps a session past the lives it was opened in: removed and added back, or
/// her tenant deleted and made again under the same id.
async fn a_session_ends_with_the_lives_it_was_opened_in(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!(["token-admin"])).await;
    let bot = acme.token(json!({})).await;
    let kept = session(t, &alice).await;
    let listed = kept.call(Method::GET, TENANT_TOKENS, None).await;
    assert_eq!(listed.status, StatusCode::OK);

    let user = "/identity/resources/users/v1/alice";
    vendor.call(Method::DELETE, user, None).await;
    alice.join(json!(["token-admin"])).await;
    assert_ended(&kept, &bot.client_id).await;
    let fresh = session(t, &alice).await;
    let listed = fresh.call(Method::GET, TENANT_TOKENS, None).await;
    assert_eq!(
        listed.status,
        StatusCode::OK,
        "opened in the new membership"
    );

    let tenant = "/identity/resources/tenants/v1/acme";
    vendor.call(Method::DELETE, tenant, None).await;
    acme.create().await;
    alice.join(json!(["token-admin"])).await;
    let newer = acme.token(json!({})).await;
    assert_ended(&fresh, &newer.client_id).await;
    assert!(exchanges(t, &newer.client_id, &newer.secret).await);
    let in_the_new_tenant = session(t, &alice).await;
    let listed = in_the_new_tenant
        .call(Method::GET, TENANT_TOKENS, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body.as_array().unwrap().len(),
        1,
        "{:?}",
        listed.body
    );
}
on_both_stores!(a_session_ends_with_the_lives_it_was_opened_in);

/// The attacker exchanged a leaked secret once; the owner rotates it out at once. Its refresh
/// tokens stop with it and the JWTs it issued are revoked.
async fn a_secrets_end_ends_what_it_issued(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({})).await;
    let path = rotate_path(TENANT_TOKENS, &bot.client_id);
    let leaked = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let stolen_refresh = text(&leaked, "refreshToken").to_owned();
    t.clock.advance_seconds(1); // a revocation voids the JWTs of earlier seconds

    let at_once = json!({"graceMinutes": 0});
    let rotated = acme.call(Method::POST, &path, Some(at_once)).await;
    let second = text(&rotated, "secret");
    let refused = refresh(t, &stolen_refresh).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        refused.body
    );
    let jwt = text(&leaked, "accessToken");
    let active = t.app.credentials(ISSUER).introspect(jwt).await.unwrap();
    assert!(active.is_none(), "the JWT it issued is revoked");
    assert!(!exchanges(t, &bot.client_id, &bot.secret).await);
    assert!(exchanges(t, &bot.client_id, second).await);
}
on_both_stores!(a_secrets_end_ends_what_it_issued);

/// With a grace, the old secret's refresh tokens renew until the grace ends and no longer, the
/// JWTs it issues in its grace end with it, and those it issued before are revoked then.
async fn a_secret_in_its_grace_issues_nothing_that_outlives_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({})).await;
    let path = rotate_path(TENANT_TOKENS, &bot.client_id);
    let before = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let old_chain = text(&before, "refreshToken").to_owned();
    let issued_before = text(&before, "accessToken").to_owned();
    t.clock.advance_seconds(1); // a revocation voids the JWTs of earlier seconds
    let graced = acme
        .call(Method::POST, &path, Some(json!({"graceMinutes": 5})))
        .await;
    let new_secret = text(&graced, "secret").to_owned();
    let grace_end = t.clock.now().plus_seconds(300).seconds();
    let renewed = refresh(t, &old_chain).await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "in the grace: {:?}",
        renewed.body
    );
    let old_chain = text(&renewed, "refreshToken").to_owned();
    let from_old = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let jwt = text(&from_old, "accessToken");
    let claims = t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    assert!(claims.exp <= grace_end, "{} > {grace_end}", claims.exp);
    let new_chain = t.exchange(EXCHANGE_V1, &bot.client_id, &new_secret).await;
    let new_chain = text(&new_chain, "refreshToken").to_owned();

    let credentials = t.app.credentials(ISSUER);
    let active = credentials.introspect(&issued_before).await.unwrap();
    assert!(active.is_some(), "the old secret's JWTs work in its grace");
    t.clock.advance_seconds(301);
    let active = credentials.introspect(&issued_before).await.unwrap();
    assert!(active.is_none(), "and are revoked when it ends");
    let refused = refresh(t, &old_chain).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "after the grace: {:?}",
        refused.body
    );
    assert!(!exchanges(t, &bot.client_id, &bot.secret).await);
    let renewed = refresh(t, &new_chain).await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "the new secret's: {:?}",
        renewed.body
    );
}
on_both_stores!(a_secret_in_its_grace_issues_nothing_that_outlives_it);

fn iat_of(t: &TestApp, jwt: &str) -> i64 {
    let claims = t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    claims.iat
}

async fn is_active(t: &TestApp, jwt: &str) -> bool {
    let active = t.app.credentials(ISSUER).introspect(jwt).await.unwrap();
    active.is_some()
}

/// The attacker exchanges in a loop while the owner deletes the token or rotates its secret
/// out: a JWT issued in the same second as the deletion or rotation is void too, while the new
/// secret's first JWT (issued from the next second) stands.
async fn nothing_issued_in_the_second_of_an_end_survives_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({})).await;
    let doomed = acme.token(json!({})).await;
    t.clock.to_next_minute(); // a second's room for what follows
    let same_second = t
        .exchange(EXCHANGE_V1, &doomed.client_id, &doomed.secret)
        .await;
    let same_second = text(&same_second, "accessToken").to_owned();
    assert_eq!(
        acme.delete_token(&doomed.client_id).await.status,
        StatusCode::OK
    );
    assert!(
        !is_active(t, &same_second).await,
        "issued in the deletion's second"
    );

    t.clock.to_next_minute();
    let old = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let old = text(&old, "accessToken").to_owned();
    let path = rotate_path(TENANT_TOKENS, &bot.client_id);
    let rotated = acme
        .call(Method::POST, &path, Some(json!({"graceMinutes": 0})))
        .await;
    let rotation_second = t.clock.now().seconds();
    let new = t
        .exchange(EXCHANGE_V1, &bot.client_id, text(&rotated, "secret"))
        .await;
    let new = text(&new, "accessToken").to_owned();
    assert_eq!(
        iat_of(t, &old),
        rotation_second,
        "the test's premise: one second"
    );
    assert!(!is_active(t, &old).await, "issued in the rotation's second");
    assert!(iat_of(t, &new) > rotation_second);
    assert!(
        is_active(t, &new).await,
        "the new secret's first JWT stands"
    );
}
on_both_stores!(nothing_issued_in_the_second_of_an_end_survives_it);

/// A second rotation during a grace ends the older secret at once: the JWTs it issued before
/// its own rotation are revoked then, not when its grace would have ended.
async fn a_rotation_during_a_grace_revokes_the_older_secrets_jwts_at_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({})).await;
    let path = rotate_path(TENANT_TOKENS, &bot.client_id);
    let oldest = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let oldest = text(&oldest, "accessToken").to_owned();
    t.clock.advance_seconds(1);
    let graced = acme
        .call(Method::POST, &path, Some(json!({"graceMinutes": 5})))
        .await;
    let second = text(&graced, "secret").to_owned();
    let from_second = t.exchange(EXCHANGE_V1, &bot.client_id, &second).await;
    let from_second = text(&from_second, "accessToken").to_owned();
    t.clock.advance_seconds(1);
    let again = acme
        .call(Method::POST, &path, Some(json!({"graceMinutes": 5})))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert!(
        !exchanges(t, &bot.client_id, &bot.secret).await,
        "the oldest secret ended"
    );
    assert!(!is_active(t, &oldest).await, "its JWTs revoked at once");
    assert!(
        is_active(t, &from_second).await,
        "the second secret is in its grace"
    );
}
on_both_stores!(a_rotation_during_a_grace_revokes_the_older_secrets_jwts_at_once);

/// The attacker replays a spent refresh token: it is refused before it is counted, numbered or
/// signed, so the owner's next exchange is not limited and their live refresh token is not
/// pushed out of the newest hundred.
async fn a_spent_refresh_token_costs_its_owner_nothing(t: &TestApp) {
    t.clock.to_next_minute();
    let vendor = t.as_vendor().await;
    let bot = vendor.tenant("acme").token(json!({})).await;
    let first = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let spent = text(&first, "refreshToken").to_owned();
    let renewed = refresh(t, &spent).await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    let live = text(&renewed, "refreshToken").to_owned();

    let mut forged = spent.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for replay in [&spent, &forged].into_iter().cycle().take(110) {
        let refused = refresh(t, replay).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            refused.body
        );
    }
    // Two uses in this minute so far; the limit is six.
    assert!(
        exchanges(t, &bot.client_id, &bot.secret).await,
        "not rate limited"
    );
    let renewed = refresh(t, &live).await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "still among the newest: {:?}",
        renewed.body
    );
}

mod a_spent_refresh_token_costs_its_owner_nothing {
    use crate::support::{Backing, spawn_app_with};

    #[tokio::test]
    async fn on_the_embedded_store() {
        let t = spawn_app_with(Backing::Embedded, |s| s.token_rate_limit_per_minute = 6).await;
        super::a_spent_refresh_token_costs_its_owner_nothing(&t).await;
    }

    #[tokio::test]
    async fn on_dynamodb() {
        let t = spawn_app_with(Backing::Moto, |s| s.token_rate_limit_per_minute = 6).await;
        super::a_spent_refresh_token_costs_its_owner_nothing(&t).await;
    }
}

async fn configure(vendor: &Vendor<'_>, body: Value) {
    let reply = portal::configure(vendor, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

/// The vendor's switches govern every way to get a secret: no rotation while tokens (or that
/// kind) are off, and none for a token that lives beyond the longest expiry allowed.
async fn rotation_keeps_the_vendors_switches(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let bot = acme.token(json!({})).await;
    let laptop = alice.personal_token(json!({})).await;
    let bot_path = rotate_path(TENANT_TOKENS, &bot.client_id);
    let laptop_path = rotate_path(USER_TOKENS, &laptop.client_id);

    configure(&vendor, json!({"apiTokensEnabled": false})).await;
    let refused = acme.call(Method::POST, &bot_path, Some(json!({}))).await;
    assert_eq!(
        (refused.status, &refused.body),
        (
            StatusCode::FORBIDDEN,
            &json!({"errors": ["Api tokens are disabled"]})
        )
    );
    configure(
        &vendor,
        json!({"apiTokensEnabled": true, "tenantTokensEnabled": false}),
    )
    .await;
    let refused = acme.call(Method::POST, &bot_path, Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let headers = [
        ("x-access-token", vendor.token.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    let rotated = t.post(&laptop_path, &headers, &json!({})).await;
    assert_eq!(
        rotated.status,
        StatusCode::OK,
        "personal tokens are on: {:?}",
        rotated.body
    );
    configure(&vendor, json!({"tenantTokensEnabled": true})).await;
    assert!(
        exchanges(t, &bot.client_id, &bot.secret).await,
        "refused rotations changed nothing"
    );

    configure(&vendor, json!({"maxExpiresInMinutes": 60})).await;
    let refused = acme.call(Method::POST, &bot_path, Some(json!({}))).await;
    refused.assert_refused(StatusCode::FORBIDDEN, "maxExpiresInMinutes", "");
    let refused = t.post(&laptop_path, &headers, &json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let short = acme.token(json!({"expiresInMinutes": 60})).await;
    let path = rotate_path(TENANT_TOKENS, &short.client_id);
    let rotated = acme.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
}
on_both_stores!(rotation_keeps_the_vendors_switches);
