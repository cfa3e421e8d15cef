//! The vendor's whole flow over HTTP, on the embedded default and on DynamoDB + KMS (moto),
//! and the failures a user would hit.

use crate::support::client::Vendor;
use crate::support::*;
use jsonwebtoken::DecodingKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The key a vendor's API verifies with, both ways it is served: the JWKS (anyone) and the
/// `publicKey` PEM of the configurations (vendor only).
async fn public_keys(vendor: &Vendor<'_>) -> (Value, DecodingKey, DecodingKey) {
    let t = vendor.t;
    let pem = vendor.call(Method::GET, CONFIGURATIONS, None).await;
    assert_eq!(pem.status, StatusCode::OK, "{:?}", pem.body);
    let pem_key =
        DecodingKey::from_rsa_pem(pem.body["publicKey"].as_str().unwrap().as_bytes()).unwrap();
    let jwks = t.get(JWKS, &[]).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let jwk = jwks.body["keys"][0].clone();
    let jwk_key = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    (jwk, jwk_key, pem_key)
}

async fn a_jwt_verifies_with_the_jwks_and_with_the_pem_alike(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let (jwk, jwk_key, pem_key) = public_keys(&vendor).await;
    assert_eq!((&jwk["alg"], &jwk["use"]), (&json!("RS256"), &json!("sig")));
    let bot = vendor.tenant("acme").token(json!({})).await;
    let reply = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let access = reply.body["accessToken"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    assert_eq!(verify_with(access, &jwk_key), verify_with(access, &pem_key));
}
on_both_stores!(a_jwt_verifies_with_the_jwks_and_with_the_pem_alike);

#[tokio::test]
async fn authorization_bearer_works_like_x_access_token() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let pem = t.get(CONFIGURATIONS, &[("x-access-token", &vendor)]).await;
    let bearer = format!("Bearer {vendor}");
    let same = t.get(CONFIGURATIONS, &[("authorization", &bearer)]).await;
    assert_eq!((same.status, same.body), (StatusCode::OK, pem.body));
}

async fn a_personal_token_is_created_as_asked_and_its_secret_shown_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let body = json!({"description": "CI", "metadata": {"team": "core"}, "expiresInMinutes": 60});
    let created = alice.create_personal_token(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["tenantId"], "acme");
    assert_eq!(created.body["description"], "CI");
    assert_eq!(created.body["metadata"], json!({"team": "core"}));
    assert!(created.body["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(created.body["expires"].as_str().is_some());
    assert!(
        created.body["secret"]
            .as_str()
            .unwrap()
            .starts_with("m2mu_")
    );
    let listed = alice.list_personal_tokens().await;
    assert!(listed.body[0].get("secret").is_none(), "{:?}", listed.body);
}
on_both_stores!(a_personal_token_is_created_as_asked_and_its_secret_shown_once);

async fn a_tenant_token_with_role_ids_and_permission_ids_keeps_the_roles(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor.permission("read", "reports.read").await;
    vendor.role("admin", "admin", json!(["read"])).await;
    vendor.tenant("acme").create().await;
    let bob = vendor.tenant("acme").user("bob");
    for path in [TENANT_TOKENS, TENANT_TOKENS_V2] {
        let body = json!({"description": "bot", "roleIds": ["admin"], "permissionIds": ["read"]});
        let created = bob.create_tenant_token(path, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["roleIds"], json!(["admin"]));
        assert_eq!(created.body["permissionIds"], json!([]));
        assert_eq!(created.body["createdByUserId"], "bob");
        assert_eq!(
            created.body.get("expires"),
            Some(&Value::Null),
            "no expiresInMinutes: never expires (null, as Frontegg's schema requires the field)"
        );
    }
}
on_both_stores!(a_tenant_token_with_role_ids_and_permission_ids_keeps_the_roles);

async fn a_tenant_tokens_jwt_carries_its_tenant_permissions_and_metadata(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor
        .permission("read-users", "fe.secure.read.users")
        .await;
    let body = json!({"permissionIds": ["read-users"], "metadata": {"env": "prod"}});
    let bot = vendor.tenant("acme").token(body).await;
    let v1 = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    assert_eq!(v1.status, StatusCode::OK, "{:?}", v1.body);
    assert_eq!(v1.body["expiresIn"], 600);
    assert!(v1.body["expires"].as_str().unwrap().ends_with(" GMT"));
    let claims = t.claims_of(&bot).await;
    assert_eq!(claims["type"], "tenantApiToken");
    assert_eq!(claims["sub"], bot.client_id.as_str());
    assert_eq!(claims["tenantId"], "acme");
    assert_eq!(claims["permissions"], json!(["fe.secure.read.users"]));
    assert_eq!(claims["roles"], json!([]));
    assert_eq!(claims["metadata"], json!({"env": "prod"}));
    assert_eq!(claims["applicationId"], "test-app");
    assert!(claims["jti"].as_str().is_some() && claims.get("userId").is_none());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 600);
}
on_both_stores!(a_tenant_tokens_jwt_carries_its_tenant_permissions_and_metadata);

async fn a_personal_tokens_jwt_carries_the_users_roles_and_email_in_snake_case_on_v2(t: &TestApp) {
    let vendor = t.as_vendor().await;
    vendor
        .permission("read-users", "fe.secure.read.users")
        .await;
    vendor.role("admin", "admin", json!(["read-users"])).await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!(["admin"])).await;
    let laptop = alice.personal_token(json!({})).await;
    let v2 = t
        .exchange(EXCHANGE_V2, &laptop.client_id, &laptop.secret)
        .await;
    assert_eq!(v2.status, StatusCode::OK, "{:?}", v2.body);
    assert!(v2.body["expires_in"].is_number() && v2.body["expires"].is_string());
    let jwt = v2.body["access_token"].as_str().unwrap();
    let claims = serde_json::to_value(t.app.credentials(ISSUER).verify_access_token(jwt).unwrap());
    let claims = claims.unwrap();
    assert_eq!(claims["type"], "userApiToken");
    assert_eq!(claims["userId"], "alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["permissions"], json!(["fe.secure.read.users"]));
    assert_eq!(claims["createdByUserId"], "alice");
    assert_eq!(claims["sub"], laptop.client_id.as_str());
}
on_both_stores!(a_personal_tokens_jwt_carries_the_users_roles_and_email_in_snake_case_on_v2);

async fn a_refresh_token_renews_the_pair_once_on_v1_and_on_v2(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let bot = vendor.tenant("acme").token(json!({})).await;
    let v1 = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let refresh = v1.body["refreshToken"].as_str().unwrap();
    let renewed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    let jwt = renewed.body["accessToken"].as_str().unwrap();
    let claims = t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    assert_eq!(claims.sub, bot.client_id);
    let reused = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "single use");
    let next = renewed.body["refreshToken"].as_str().unwrap();
    let snake = t
        .post(REFRESH_V2, &[], &json!({"refreshToken": next}))
        .await;
    assert_eq!(snake.status, StatusCode::OK, "{:?}", snake.body);
    assert!(snake.body["access_token"].is_string() && snake.body["refresh_token"].is_string());
}
on_both_stores!(a_refresh_token_renews_the_pair_once_on_v1_and_on_v2);

async fn assert_unauthorized(reply: Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"errors": ["Unauthorized"]}));
}

#[tokio::test]
async fn unknown_client_id_and_wrong_secret_get_the_same_401() {
    for backing in [Backing::Embedded, Backing::Moto] {
        let t = spawn_app(backing).await;
        let vendor = t.vendor_token().await;
        let (client, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
        let (_, other_secret) = t.tenant_token(&vendor, "acme", json!({})).await;
        let wrong = t.exchange(EXCHANGE_V1, &client, &other_secret).await;
        let unknown = t
            .exchange(EXCHANGE_V1, "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11", &secret)
            .await;
        assert_eq!(wrong.body, unknown.body);
        assert_unauthorized(wrong).await;
        assert_unauthorized(unknown).await;
        assert_unauthorized(t.exchange(EXCHANGE_V2, &client, "m2mt_short").await).await;
        assert_unauthorized(t.exchange(EXCHANGE_V2, "not-a-uuid", &secret).await).await;
    }
}

/// `M2M_SECRET_FORMAT=uuid`: Frontegg-shaped secrets, for clients that type them as UUIDs.
async fn with_uuid_secrets_both_token_kinds_get_random_uuids_that_exchange(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (tenant_client, tenant_secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    t.member(&vendor, "alice", "acme", json!([])).await;
    let (user_client, user_secret) = t.user_token(&vendor, "acme", "alice", json!({})).await;
    for (client_id, secret) in [
        (&tenant_client, &tenant_secret),
        (&user_client, &user_secret),
    ] {
        let uuid = uuid::Uuid::parse_str(secret).expect("the secret is a UUID");
        assert_eq!(uuid.get_version_num(), 4, "a random UUID");
        assert_eq!(&uuid.hyphenated().to_string(), secret);
        let exchanged = t.exchange(EXCHANGE_V1, client_id, secret).await;
        assert_eq!(exchanged.status, StatusCode::OK, "{:?}", exchanged.body);
        // A client that parsed it as a UUID may print it in capitals.
        let shouted = t
            .exchange(EXCHANGE_V2, client_id, &secret.to_uppercase())
            .await;
        assert_eq!(shouted.status, StatusCode::OK, "{:?}", shouted.body);
    }
    // Another token's secret, a made-up UUID and a vendor login with a UUID are refused alike.
    assert_unauthorized(t.exchange(EXCHANGE_V1, &tenant_client, &user_secret).await).await;
    let made_up = uuid::Uuid::new_v4().to_string();
    assert_unauthorized(t.exchange(EXCHANGE_V1, &tenant_client, &made_up).await).await;
    let vendor_login = json!({"clientId": t.vendor_client_id, "secret": made_up});
    assert_unauthorized(t.post("/auth/vendor", &[], &vendor_login).await).await;
}

#[tokio::test]
async fn with_uuid_secrets_both_token_kinds_get_random_uuids_that_exchange_on_the_embedded_store() {
    let uuid = |settings: &mut Settings| settings.secret_format = SecretFormat::Uuid;
    let t = spawn_app_with(Backing::Embedded, uuid).await;
    with_uuid_secrets_both_token_kinds_get_random_uuids_that_exchange(&t).await;
}

#[tokio::test]
async fn with_uuid_secrets_both_token_kinds_get_random_uuids_that_exchange_on_dynamodb() {
    let uuid = |settings: &mut Settings| settings.secret_format = SecretFormat::Uuid;
    let t = spawn_app_with(Backing::Moto, uuid).await;
    with_uuid_secrets_both_token_kinds_get_random_uuids_that_exchange(&t).await;
}

/// Credential checks beyond one per core and a short queue (for one tenant, half of it) are
/// refused at once with 429 and `Retry-After`, the same answer for everyone; the rest go
/// through, and nothing is a 5xx. Ten first exchanges of ten tokens: checks of the same
/// credentials would share one run.
#[tokio::test]
async fn a_flood_of_exchanges_is_bounded_and_told_when_to_retry() {
    let t = spawn_app_with(Backing::Embedded, |s| s.bcrypt_cost = 12).await;
    let vendor = t.vendor_token().await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(t.tenant_token(&vendor, "acme", json!({})).await);
    }
    let attempts = tokens.iter().map(|(client_id, secret)| {
        t.http
            .post(format!("{}{EXCHANGE_V1}", t.base))
            .json(&json!({"clientId": client_id, "secret": secret}))
            .send()
    });
    let answers = futures::future::join_all(attempts).await;
    let mut passed = 0;
    let mut refused = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(answer.headers()["retry-after"], "1");
                let body: Value = answer.json().await.unwrap();
                assert_eq!(
                    body,
                    json!({"errors": ["Too many requests; try again shortly"]})
                );
            }
            other => panic!("only 200 or 429, got {other}"),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(passed >= cores, "{passed} went through");
    assert!(
        refused > 0,
        "a flood of {} is not all queued",
        passed + refused
    );
    // Once the flood is over, exchanges work again.
    let (client_id, secret) = &tokens[0];
    let again = t.exchange(EXCHANGE_V1, client_id, secret).await;
    assert_eq!(again.status, StatusCode::OK);
}

/// Wrong secrets and unknown clientIds take the cheap path: a flood of them never waits for
/// bcrypt, so none is told to retry, and a legitimate exchange in the middle goes through.
#[tokio::test]
async fn a_flood_of_wrong_secrets_never_queues_for_bcrypt() {
    let t = spawn_app_with(Backing::Embedded, |s| s.bcrypt_cost = 12).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let unknown = "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11";
    let t = &t;
    let flood = (0..40).map(|i| {
        let wrong =
            m2m_shared::domain::Secret::generate(m2m_shared::domain::SecretKind::TenantToken);
        let id = if i % 2 == 0 {
            client_id.as_str()
        } else {
            unknown
        };
        let body = json!({"clientId": id, "secret": wrong.expose()});
        async move { t.post(EXCHANGE_V1, &[], &body).await }
    });
    let (answers, legitimate) = tokio::join!(
        futures::future::join_all(flood),
        t.exchange(EXCHANGE_V1, &client_id, &secret)
    );
    assert_eq!(legitimate.status, StatusCode::OK, "{:?}", legitimate.body);
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
        assert_eq!(answer.body, json!({"errors": ["Unauthorized"]}));
    }
}

/// After `M2M_BCRYPT_COST` changes (here from 6 to the configured 4), a token's hash and a
/// vendor's move to the configured cost on their next successful use, and the secrets keep
/// working; a wrong secret changes nothing.
async fn hashes_at_another_cost_move_to_the_configured_one_on_use(t: &TestApp) {
    use m2m_shared::domain::{ClientId, Secret, SecretKind};
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let id = ClientId::parse(&client_id).unwrap();
    let made = t.store.token(&id).await.unwrap().unwrap().secret;
    let old = Secret::parse(&secret).unwrap().hash(6).await.unwrap();
    let rehashed = made.rehashed(old);
    assert!(
        t.store
            .swap_secret(&id, &made.hash, &rehashed, None)
            .await
            .unwrap()
    );
    let stored_cost = async || {
        t.store
            .token(&id)
            .await
            .unwrap()
            .unwrap()
            .secret
            .hash
            .cost()
    };
    let wrong = Secret::generate(SecretKind::TenantToken);
    let refused = t.exchange(EXCHANGE_V1, &client_id, wrong.expose()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stored_cost().await,
        Some(6),
        "a wrong secret changes nothing"
    );
    for _ in 0..2 {
        let reply = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(stored_cost().await, Some(4));
    }
}
on_both_stores!(hashes_at_another_cost_move_to_the_configured_one_on_use);

/// The same for a vendor credential, on the vendor's next login.
async fn a_vendors_hash_moves_to_the_configured_cost_on_login(t: &TestApp) {
    use m2m_shared::domain::{ClientId, Secret};
    let vendor_id = ClientId::parse(&t.vendor_client_id).unwrap();
    let stored = async || t.store.vendor(&vendor_id).await.unwrap().unwrap().secret;
    let made = stored().await;
    let old = Secret::parse(&t.vendor_secret)
        .unwrap()
        .hash(6)
        .await
        .unwrap();
    let at_old_cost = made.rehashed(old);
    assert!(
        t.store
            .swap_vendor_secret(&vendor_id, &made.hash, &at_old_cost, None)
            .await
            .unwrap()
    );
    t.vendor_token().await;
    let stored = stored().await.hash;
    assert_eq!(stored.cost(), Some(4));
    assert!(stored.check().is_some());
    t.vendor_token().await;
}
on_both_stores!(a_vendors_hash_moves_to_the_configured_cost_on_login);

/// Both failures take the same path (no bcrypt but one time in 65,536), so response time does
/// not tell an attacker which clientIds exist. Compares medians of alternating attempts.
#[tokio::test]
async fn unknown_client_id_takes_as_long_as_a_wrong_secret() {
    let t = spawn_app_with(Backing::Embedded, |s| s.bcrypt_cost = 10).await;
    let vendor = t.vendor_token().await;
    let (client, _) = t.tenant_token(&vendor, "acme", json!({})).await;
    let wrong_secret =
        m2m_shared::domain::Secret::generate(m2m_shared::domain::SecretKind::TenantToken);
    let unknown_client = "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11";
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        for (id, times) in [
            (client.as_str(), &mut wrong),
            (unknown_client, &mut unknown),
        ] {
            let started = std::time::Instant::now();
            let reply = t.exchange(EXCHANGE_V1, id, wrong_secret.expose()).await;
            times.push(started.elapsed().as_secs_f64());
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (wrong, unknown) = (median(&mut wrong), median(&mut unknown));
    // Both take about a millisecond; what must not show is one bcrypt at cost 10 (about 60 ms
    // here): a difference of a third of one is noise from the rest of the suite, no more.
    let bcrypt = {
        let secret = m2m_shared::domain::Secret::generate(m2m_shared::domain::SecretKind::Vendor);
        let hash = secret.hash(10).await.unwrap();
        let started = std::time::Instant::now();
        assert!(secret.matches(&hash).await.unwrap());
        started.elapsed().as_secs_f64()
    };
    assert!(
        (unknown - wrong).abs() < bcrypt / 3.0,
        "unknown clientId {unknown:.4}s vs wrong secret {wrong:.4}s (one bcrypt: {bcrypt:.4}s)"
    );
}

#[tokio::test]
async fn vendor_endpoints_refuse_missing_wrong_and_expired_vendor_tokens() {
    let t = spawn_app(Backing::Embedded).await;
    assert_unauthorized(t.get(CONFIGURATIONS, &[]).await).await;
    assert_unauthorized(
        t.get(CONFIGURATIONS, &[("x-access-token", "garbage")])
            .await,
    )
    .await;
    assert_unauthorized(
        t.get(CONFIGURATIONS, &[("authorization", "Basic abc")])
            .await,
    )
    .await;
    let wrong_vendor = t
        .post(
            "/auth/vendor",
            &[],
            &json!({"clientId": t.vendor_client_id, "secret": "m2mv_nope"}),
        )
        .await;
    assert_unauthorized(wrong_vendor).await;

    let vendor = t.vendor_token().await;
    t.clock.advance_seconds(3601);
    assert_unauthorized(t.get(CONFIGURATIONS, &[("x-access-token", &vendor)]).await).await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    assert_unauthorized(t.post(TENANT_TOKENS, &headers, &json!({})).await).await;
}

#[tokio::test]
async fn a_vendor_token_and_an_api_token_jwt_never_stand_in_for_each_other() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let access = t.exchange(EXCHANGE_V1, &client, &secret).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // An API-token JWT is not a vendor token.
    assert_unauthorized(t.get(CONFIGURATIONS, &[("x-access-token", &access)]).await).await;
    let bearer = format!("Bearer {access}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    assert_unauthorized(t.post(TENANT_TOKENS, &headers, &json!({})).await).await;

    // A vendor token is not an API-token JWT: not for a vendor's API, not as a refresh token.
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&vendor)
            .is_err()
    );
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&access)
            .is_ok()
    );
    assert_unauthorized(
        t.post(REFRESH_V1, &[], &json!({"refreshToken": vendor}))
            .await,
    )
    .await;
    assert_unauthorized(
        t.post(REFRESH_V2, &[], &json!({"refreshToken": access}))
            .await,
    )
    .await;
}

#[tokio::test]
async fn token_creation_requires_the_contract_headers() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let no_tenant = t
        .post(
            USER_TOKENS,
            &[("x-access-token", &vendor), ("frontegg-user-id", "u")],
            &json!({}),
        )
        .await;
    assert_eq!(no_tenant.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_tenant.error(), "Missing header frontegg-tenant-id");
    let no_user = t
        .post(
            USER_TOKENS,
            &[("x-access-token", &vendor), ("frontegg-tenant-id", "t")],
            &json!({}),
        )
        .await;
    assert_eq!(no_user.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_user.error(), "Missing header frontegg-user-id");
    let tenant_missing = t
        .post(TENANT_TOKENS, &[("x-access-token", &vendor)], &json!({}))
        .await;
    assert_eq!(tenant_missing.status, StatusCode::BAD_REQUEST);
    let odd = t
        .post(
            TENANT_TOKENS,
            &[("x-access-token", &vendor), ("frontegg-tenant-id", "a b")],
            &json!({}),
        )
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST, "{:?}", odd.body);
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_400() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let cases: Vec<(&str, String)> = vec![
        (TENANT_TOKENS, "{not json".into()),
        (TENANT_TOKENS, "[]".into()),
        (TENANT_TOKENS, json!({"description": 5}).to_string()),
        (TENANT_TOKENS, json!({"metadata": "text"}).to_string()),
        (TENANT_TOKENS, json!({"roleIds": "admin"}).to_string()),
        (TENANT_TOKENS, json!({"expiresInMinutes": -5}).to_string()),
        (TENANT_TOKENS, json!({"expiresInMinutes": 0}).to_string()),
        (
            TENANT_TOKENS,
            json!({"description": "x".repeat(2000)}).to_string(),
        ),
        (EXCHANGE_V1, "".into()),
        (
            EXCHANGE_V1,
            json!({"clientId": 7, "secret": "s"}).to_string(),
        ),
        (EXCHANGE_V2, json!({"secret": "s"}).to_string()),
        (REFRESH_V1, json!({"refreshToken": 1}).to_string()),
        (REFRESH_V1, json!({}).to_string()),
        ("/auth/vendor", "null".into()),
    ];
    for (path, body) in cases {
        let reply = t.post_raw(path, &headers, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {:?}",
            reply.body
        );
        assert!(
            !reply.error().is_empty(),
            "{path} {body}: a message says what is wrong"
        );
    }
    let huge = t
        .post_raw(
            TENANT_TOKENS,
            &headers,
            format!("{{\"description\":\"{}\"}}", "x".repeat(70_000)),
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        t.get("/no/such/route", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(EXCHANGE_V1, &[]).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn trailing_slashes_are_accepted() {
    let t = spawn_app(Backing::Embedded).await;
    let reply = t
        .post(
            "/auth/vendor/",
            &[],
            &json!({"clientId": t.vendor_client_id, "secret": t.vendor_secret}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let vendor = reply.body["token"].as_str().unwrap();
    let config = t
        .get(&format!("{CONFIGURATIONS}/"), &[("x-access-token", vendor)])
        .await;
    assert_eq!(config.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_api_token_cannot_exchange() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client, secret) = t
        .tenant_token(&vendor, "acme", json!({"expiresInMinutes": 1}))
        .await;
    assert_eq!(
        t.exchange(EXCHANGE_V1, &client, &secret).await.status,
        StatusCode::OK
    );
    t.clock.advance_seconds(61);
    assert_unauthorized(t.exchange(EXCHANGE_V1, &client, &secret).await).await;
}

/// Exchanged twice (the second without bcrypt, from the verification remembered), a token
/// still stops at once when it is deleted or expires, and a wrong secret is still refused.
async fn a_remembered_verification_never_outlives_its_token(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (deleted, deleted_secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let (expiring, expiring_secret) = t
        .tenant_token(&vendor, "acme", json!({"expiresInMinutes": 1}))
        .await;
    for (id, secret) in [(&deleted, &deleted_secret), (&expiring, &expiring_secret)] {
        for _ in 0..2 {
            let reply = t.exchange(EXCHANGE_V1, id, secret).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        }
    }
    assert_unauthorized(t.exchange(EXCHANGE_V1, &deleted, &expiring_secret).await).await;
    let path = format!("{TENANT_TOKENS}/{deleted}");
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let request = t.http.delete(format!("{}{path}", t.base));
    let request = headers.iter().fold(request, |r, (k, v)| r.header(*k, *v));
    assert_eq!(t.send(request).await.status, StatusCode::OK);
    assert_unauthorized(t.exchange(EXCHANGE_V1, &deleted, &deleted_secret).await).await;
    t.clock.advance_seconds(61);
    assert_unauthorized(t.exchange(EXCHANGE_V1, &expiring, &expiring_secret).await).await;
}
on_both_stores!(a_remembered_verification_never_outlives_its_token);

async fn a_jwt_never_outlives_its_api_token(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let bot = vendor
        .tenant("acme")
        .token(json!({"expiresInMinutes": 1}))
        .await;
    // The test clock follows real time, so a slow store may cost a second.
    let within_the_minute = |seconds: i64| (50..=60).contains(&seconds);
    let issued = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let expires_in = issued.body["expiresIn"].as_i64().unwrap();
    assert!(
        within_the_minute(expires_in),
        "a minute left, not ten: {expires_in}"
    );
    let claims = t.claims_of(&bot).await;
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(within_the_minute(lifetime), "{lifetime}");
    t.clock.advance_seconds(61);
    let refresh = json!({"refreshToken": issued.body["refreshToken"]});
    assert_unauthorized(t.post(REFRESH_V1, &[], &refresh).await).await;
}
on_both_stores!(a_jwt_never_outlives_its_api_token);

async fn the_101st_refresh_token_drops_the_oldest(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (client, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let mut refresh_tokens: Vec<Value> = Vec::new();
    for n in 0..101 {
        if n % 40 == 39 {
            // Across minutes: uses reserved in one and not given out count for nothing.
            t.clock.to_next_minute();
        }
        let reply = t.exchange(EXCHANGE_V1, &client, &secret).await;
        assert_eq!(reply.status, StatusCode::OK);
        refresh_tokens.push(reply.body["refreshToken"].clone());
    }
    let oldest = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh_tokens[0]}))
        .await;
    assert_unauthorized(oldest).await;
    let second = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh_tokens[1]}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "the 100 newest stay live");
}

#[tokio::test]
async fn the_101st_refresh_token_drops_the_oldest_on_the_embedded_default() {
    the_101st_refresh_token_drops_the_oldest(&spawn_app(Backing::Embedded).await).await;
}

#[tokio::test]
async fn the_101st_refresh_token_drops_the_oldest_on_dynamodb() {
    the_101st_refresh_token_drops_the_oldest(&spawn_app(Backing::Moto).await).await;
}

/// The caller check runs from the endpoint table: every row that names a caller refuses a
/// request without a vendor token, whatever else it carries.
#[tokio::test]
async fn every_endpoint_that_names_a_caller_refuses_an_anonymous_request() {
    use m2m_shared::http::ENDPOINTS;
    use m2m_shared::http::caller::Access;
    let t = spawn_app(Backing::Embedded).await;
    let guarded = ENDPOINTS.iter().filter(|e| e.access() != Access::Anyone);
    for endpoint in guarded {
        let url = format!("{}{}", t.base, endpoint.path.replace("{id}", "acme"));
        let request = t
            .http
            .request(endpoint.method.clone(), url)
            .header("frontegg-tenant-id", "acme")
            .header("frontegg-user-id", "alice")
            .json(&json!({"key": "k", "id": "acme"}));
        let reply = t.send(request).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{} {}: {:?}",
            endpoint.method,
            endpoint.path,
            reply.body
        );
    }
}

/// Every answer of the local server names its request with an id of its own (a UUID), errors
/// included, so that a user's report finds its log lines.
#[tokio::test]
async fn every_answer_names_its_request() {
    let t = spawn_app(Backing::Embedded).await;
    let mut ids = std::collections::BTreeSet::new();
    for (method, path, status) in [
        ("GET", "/.well-known/jwks.json", 200),
        ("GET", "/no/such/route", 404),
        ("GET", "/audits", 401),
        ("POST", "/oauth/token", 401),
    ] {
        let request = t
            .http
            .request(method.parse().unwrap(), format!("{}{path}", t.base))
            .header("content-type", "application/x-www-form-urlencoded");
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{path}: {id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 4, "each request its own id");
}

/// On the embedded store, the process is alive and ready (its store and its key in memory).
#[tokio::test]
async fn the_local_server_is_alive_and_ready() {
    let t = spawn_app(Backing::Embedded).await;
    let alive = t.get("/health", &[]).await;
    assert_eq!(
        (alive.status, &alive.body),
        (StatusCode::OK, &json!({"status": "alive"}))
    );
    let ready = t.get("/health/ready", &[]).await;
    assert_eq!(
        (ready.status, &ready.body),
        (
            StatusCode::OK,
            &json!({"status": "ready", "store": "ok", "signer": "ok"})
        )
    );
}

/// An answer the router makes itself (no route, a method the route does not take) carries the
/// headers every answer does, in the contract's shape.
#[tokio::test]
async fn the_routers_own_answers_carry_every_answers_headers() {
    let t = spawn_app(Backing::Embedded).await;
    for (method, path, status) in [
        (
            reqwest::Method::GET,
            "/no/such/route",
            StatusCode::NOT_FOUND,
        ),
        (
            reqwest::Method::DELETE,
            "/health",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let answer = t
            .http
            .request(method, format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{path}");
        let headers = answer.headers().clone();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(headers.contains_key("allow"), "{path}: {headers:?}");
        }
        let body: Value = answer.json().await.unwrap();
        assert!(body["errors"][0].is_string(), "{body}");
    }
}
