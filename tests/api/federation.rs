//! Workload identity federation: a token's trust policies, and `POST /oauth/token` taking a
//! workload's OIDC token (RFC 8693's token exchange, RFC 7523's JWT bearer grant) from a local
//! issuer that signs GitHub-Actions-shaped and Kubernetes-shaped tokens with RS256 and ES256.

use std::time::{Duration, Instant};

use m2m_shared::domain::federation::LocalIssuers;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::client::Issued;
use crate::support::oidc_issuer::{Issuer, Key, now};
use crate::support::*;

const TOKEN: &str = "/oauth/token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The audience the policies below name (what a workflow asks GitHub for).
const AUDIENCE: &str = "https://auth.test";

async fn federated_app(backing: Backing, issuer: &Issuer) -> TestApp {
    let local = LocalIssuers(vec![issuer.url.clone()]);
    spawn_app_with(backing, move |s| s.local_issuers = local).await
}

/// Runs `$name(&TestApp, &Issuer)` on both stores, each with an issuer of its own.
macro_rules! with_an_issuer_on_both_stores {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_the_embedded_store() {
                let issuer = Issuer::start().await;
                super::$name(&federated_app(Backing::Embedded, &issuer).await, &issuer).await;
            }

            #[tokio::test]
            async fn on_dynamodb() {
                let issuer = Issuer::start().await;
                super::$name(&federated_app(Backing::Moto, &issuer).await, &issuer).await;
            }
        }
    };
}

/// A GitHub Actions token of octo-org/app's production environment, signed RS256.
fn production_run(issuer: &Issuer) -> String {
    let claims = issuer.github(
        AUDIENCE,
        "octo-org/app",
        "refs/heads/main",
        Some("production"),
    );
    issuer.rs256.sign(&claims)
}

/// The policies of the deploy token: GitHub's production environment of octo-org/app, and
/// Kubernetes' `deploy*` service accounts in namespace `ci`.
fn policies(issuer: &Issuer) -> Value {
    json!([
        {"issuer": issuer.url, "audience": AUDIENCE,
         "subject": "repo:octo-org/app:environment:production",
         "claims": {"repository_owner_id": "65432"}},
        {"issuer": issuer.url, "audience": "m2m",
         "claims": {"kubernetes.io/namespace": "ci", "kubernetes.io/serviceaccount/name": "deploy*"}}
    ])
}

async fn deploy_token(t: &TestApp, issuer: &Issuer) -> Issued {
    let vendor = t.as_vendor().await;
    vendor.permission("p-deploy", "deploy.write").await;
    let body = json!({"permissionIds": ["p-deploy"], "trustPolicies": policies(issuer)});
    vendor.tenant("acme").token(body).await
}

/// What `/oauth/token` answered.
struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Answer {
    fn refused(&self, error: &str, says: &str) {
        assert_eq!(self.body["error"], error, "{}", self.text);
        let description = self.body["error_description"].as_str().unwrap();
        assert!(
            description.contains(says),
            "{description:?} should say {says:?}"
        );
    }
}

async fn post(t: &TestApp, form: &[(&str, &str)]) -> Answer {
    let response = t
        .http
        .post(format!("{}{TOKEN}", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(form))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap(),
        text,
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn encoded(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A token exchange (RFC 8693) of `workload` for the JWT of `client_id`.
async fn exchange(t: &TestApp, client_id: &str, workload: &str) -> Answer {
    let form = [
        ("grant_type", EXCHANGE),
        ("client_id", client_id),
        ("subject_token", workload),
        ("subject_token_type", JWT_TYPE),
    ];
    post(t, &form).await
}

/// The JWT's claims but those that differ at each issue.
fn lasting(t: &TestApp, jwt: &str) -> Value {
    let claims = t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    let mut claims = serde_json::to_value(claims).unwrap();
    for varying in ["iat", "exp", "jti"] {
        claims.as_object_mut().unwrap().remove(varying);
    }
    claims
}

async fn workloads_get_the_secrets_jwt(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let listed = t.as_vendor().await.tenant("acme").list_tokens().await;
    let shown = &listed.body[0]["trustPolicies"];
    assert_eq!(shown.as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(
        shown[0]["subject"],
        "repo:octo-org/app:environment:production"
    );
    assert_eq!(shown[0]["id"].as_str().unwrap().len(), 16);

    // GitHub Actions, RS256, by token exchange: the secret's JWT, no refresh token.
    let answer = exchange(t, &bot.client_id, &production_run(issuer)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let issued = "urn:ietf:params:oauth:token-type:access_token";
    assert_eq!(answer.body["issued_token_type"], issued);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert!(answer.body.get("refresh_token").is_none());
    let federated = lasting(t, answer.body["access_token"].as_str().unwrap());
    let mut expected = t.claims_of(&bot).await;
    for varying in ["iat", "exp", "jti"] {
        expected.as_object_mut().unwrap().remove(varying);
    }
    assert_eq!(federated, expected, "the same claims as the secret's JWT");
    assert_eq!(federated["permissions"], json!(["deploy.write"]));

    // Kubernetes, ES256, by JWT bearer assertion (RFC 7523).
    let pod = issuer.kubernetes("m2m", "ci", "deployer");
    let form = [
        ("grant_type", JWT_BEARER),
        ("client_id", bot.client_id.as_str()),
        ("assertion", &issuer.es256.sign(&pod)),
    ];
    let answer = post(t, &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer.body.get("issued_token_type").is_none(),
        "RFC 6749's answer"
    );
}

with_an_issuer_on_both_stores!(workloads_get_the_secrets_jwt);

/// Every condition, each refusal naming what did not hold and never echoing the token.
async fn each_refusal_names_what_did_not_hold(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let github =
        |aud: &str, env: Option<&str>| issuer.github(aud, "octo-org/app", "refs/heads/main", env);
    let pod = |aud: &str, ns: &str, sa: &str| issuer.kubernetes(aud, ns, sa);
    let changed = |changes: Value| {
        let mut claims = github(AUDIENCE, Some("production"));
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let refusals: Vec<(Value, &str)> = vec![
        (github(AUDIENCE, Some("staging")), "sub does not match"),
        (github(AUDIENCE, None), "sub does not match"),
        (
            github("https://other.example", Some("production")),
            "aud does not match",
        ),
        (
            changed(json!({"repository_owner_id": "1"})),
            "claim repository_owner_id does not match",
        ),
        (
            pod("m2m", "prod", "deployer"),
            "claim kubernetes.io/namespace does not match",
        ),
        (
            pod("m2m", "ci", "builder"),
            "claim kubernetes.io/serviceaccount/name does not match",
        ),
        (pod("m2m-other", "ci", "deployer"), "aud does not match"),
        (changed(json!({"exp": now() - 120})), "expired (exp)"),
        (changed(json!({"nbf": now() + 600})), "not valid yet (nbf)"),
        (changed(json!({"iat": now() + 600})), "issued in the future"),
        (
            changed(json!({"exp": now() + 3 * 24 * 3600})),
            "valid for more than",
        ),
        (
            changed(json!({"iss": "https://token.actions.githubusercontent.com"})),
            "trusts no workload of issuer",
        ),
    ];
    for (claims, says) in refusals {
        let signed = issuer.rs256.sign(&claims);
        let answer = exchange(t, &bot.client_id, &signed).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{says}: {}",
            answer.text
        );
        answer.refused("invalid_grant", says);
        assert!(
            !answer.text.contains(signed.split('.').nth(1).unwrap()),
            "no echo"
        );
    }
}

with_an_issuer_on_both_stores!(each_refusal_names_what_did_not_hold);

/// The same ES256 token with its signature's twin: (r, n - s), n the order of P-256.
fn ecdsa_twin(token: &str) -> String {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = base64::Engine::decode(&engine, signature).unwrap();
    let s = signature.split_off(32);
    let mut borrow = 0_i16;
    let mut twin = [0_u8; 32];
    for i in (0..32).rev() {
        let mut digit = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(digit < 0);
        if digit < 0 {
            digit += 256;
        }
        twin[i] = u8::try_from(digit).unwrap();
    }
    signature.extend_from_slice(&twin);
    format!("{signed}.{}", base64::Engine::encode(&engine, signature))
}

/// A replayed token, a forged signature, a symmetric algorithm.
async fn replays_and_forgeries_are_refused(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let once = issuer
        .es256
        .sign(&issuer.kubernetes("m2m", "ci", "deploy-bot"));
    assert_eq!(
        exchange(t, &bot.client_id, &once).await.status,
        StatusCode::OK
    );
    exchange(t, &bot.client_id, &once)
        .await
        .refused("invalid_grant", "used before");
    let impostor = Key::new(jsonwebtoken::Algorithm::RS256);
    let github = issuer.github(
        AUDIENCE,
        "octo-org/app",
        "refs/heads/main",
        Some("production"),
    );
    let forged = {
        let (real, fake) = (issuer.rs256.sign(&github), impostor.sign(&github));
        let (head, _) = real.rsplit_once('.').unwrap();
        format!("{head}.{}", fake.rsplit_once('.').unwrap().1)
    };
    let answer = exchange(t, &bot.client_id, &forged).await;
    answer.refused("invalid_grant", "signature does not verify");
    // Without a jti, the token is taken once too, whatever form its signature takes: an ECDSA
    // signature (r, s) has a twin (r, n - s) that verifies as well.
    let mut pod = issuer.kubernetes("m2m", "ci", "deployer");
    pod.as_object_mut().unwrap().remove("jti");
    let signed = issuer.es256.sign(&pod);
    assert_eq!(
        exchange(t, &bot.client_id, &signed).await.status,
        StatusCode::OK
    );
    let twin = ecdsa_twin(&signed);
    assert_ne!(twin, signed);
    exchange(t, &bot.client_id, &twin)
        .await
        .refused("invalid_grant", "used before");
    let pss = issuer
        .rs256
        .sign_as(jsonwebtoken::Algorithm::PS256, &github);
    let answer = exchange(t, &bot.client_id, &pss).await;
    answer.refused("invalid_grant", "not the one its key is published for");
    let symmetric = jsonwebtoken::EncodingKey::from_secret(b"shared").unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let hs256 = jsonwebtoken::encode(&header, &github, &symmetric).unwrap();
    exchange(t, &bot.client_id, &hs256)
        .await
        .refused("invalid_grant", "only asymmetric");
}

with_an_issuer_on_both_stores!(replays_and_forgeries_are_refused);

/// An unknown clientId, a token without policies, a secret beside the workload's token, an
/// unknown subject token type; none of them spends the workload's token.
async fn strangers_and_malformed_requests_are_refused(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let unknown = exchange(
        t,
        &uuid::Uuid::new_v4().to_string(),
        &production_run(issuer),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    unknown.refused("invalid_client", "");
    let plain = t.as_vendor().await.tenant("acme").token(json!({})).await;
    let answer = exchange(t, &plain.client_id, &production_run(issuer)).await;
    answer.refused("invalid_grant", "trusts no workload");
    let good = production_run(issuer);
    let with_secret = [
        ("grant_type", EXCHANGE),
        ("client_id", bot.client_id.as_str()),
        ("client_secret", bot.secret.as_str()),
        ("subject_token", &good),
        ("subject_token_type", JWT_TYPE),
    ];
    post(t, &with_secret)
        .await
        .refused("invalid_request", "client_id alone");
    let wrong_type = [
        ("grant_type", EXCHANGE),
        ("client_id", bot.client_id.as_str()),
        ("subject_token", &good),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:saml2",
        ),
    ];
    post(t, &wrong_type)
        .await
        .refused("invalid_request", "subject_token_type");
    let answer = exchange(t, &bot.client_id, &good).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "none of these spent it: {}",
        answer.text
    );
}

with_an_issuer_on_both_stores!(strangers_and_malformed_requests_are_refused);

/// The token's other rules hold for a federated exchange too: its allow-list, and its
/// deletion, which ends the exchange and revokes the JWTs it issued.
async fn a_federated_exchange_meets_the_tokens_rules(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    let pod = || {
        issuer
            .es256
            .sign(&issuer.kubernetes("m2m", "ci", "deployer"))
    };
    let body = json!({"allowedIps": ["203.0.113.0/24"]});
    let patched = tenant.patch_token(&bot.client_id, body).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let outside = exchange(t, &bot.client_id, &pod()).await;
    assert_eq!(outside.status, StatusCode::UNAUTHORIZED, "{}", outside.text);
    tenant
        .patch_token(&bot.client_id, json!({"allowedIps": []}))
        .await;
    let answer = exchange(t, &bot.client_id, &pod()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let jwt = answer.body["access_token"].as_str().unwrap().to_owned();
    assert!(
        tenant
            .delete_token(&bot.client_id)
            .await
            .status
            .is_success()
    );
    let deleted = exchange(t, &bot.client_id, &pod()).await;
    assert_eq!(deleted.status, StatusCode::UNAUTHORIZED, "{}", deleted.text);
    let introspected = introspect(t, &vendor.token, &jwt).await;
    assert_eq!(
        introspected,
        json!({"active": false}),
        "revoked with its token"
    );
}

with_an_issuer_on_both_stores!(a_federated_exchange_meets_the_tokens_rules);

/// What introspection (as the vendor) says of `jwt`.
async fn introspect(t: &TestApp, vendor: &str, jwt: &str) -> Value {
    let introspected = t
        .http
        .post(format!("{}/oauth/introspect", t.base))
        .header("x-access-token", vendor)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={jwt}"))
        .send()
        .await
        .unwrap();
    introspected.json().await.unwrap()
}

/// A workload's exchange racing its token's deletion, repeated: whichever lands first, once
/// the deletion has answered nothing the exchange got works, and the next workload is refused.
async fn an_exchange_racing_the_tokens_deletion_leaves_nothing_working(
    t: &TestApp,
    issuer: &Issuer,
) {
    deploy_token(t, issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    let body = json!({"permissionIds": ["p-deploy"], "trustPolicies": policies(issuer)});
    for round in 0..10 {
        let bot = tenant.token(body.clone()).await;
        let account = format!("deploy-{round}");
        let pod = || issuer.es256.sign(&issuer.kubernetes("m2m", "ci", &account));
        let workload = pod();
        let (answer, deleted) = tokio::join!(
            exchange(t, &bot.client_id, &workload),
            tenant.delete_token(&bot.client_id)
        );
        assert!(deleted.status.is_success(), "{:?}", deleted.body);
        if answer.status == StatusCode::OK {
            let jwt = answer.body["access_token"].as_str().unwrap();
            let seen = introspect(t, &vendor.token, jwt).await;
            assert_eq!(seen, json!({"active": false}), "round {round}");
        }
        let after = exchange(t, &bot.client_id, &pod()).await;
        assert_eq!(
            after.status,
            StatusCode::UNAUTHORIZED,
            "round {round}: {}",
            after.text
        );
    }
}

with_an_issuer_on_both_stores!(an_exchange_racing_the_tokens_deletion_leaves_nothing_working);

/// Policies are refused by name when they break a rule.
#[tokio::test]
async fn bad_policies_are_refused_by_name() {
    let issuer = Issuer::start().await;
    let t = federated_app(Backing::Embedded, &issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    let policy = |n: usize| {
        let subject = format!("system:serviceaccount:ci:bot-{n}");
        json!({"issuer": issuer.url, "audience": "m2m", "subject": subject})
    };
    let other = |issuer: &str| json!([{"issuer": issuer, "audience": "m2m", "subject": "x"}]);
    let six: Vec<Value> = (0..6).map(policy).collect();
    let refusals = [
        (json!(six), "at most 5"),
        (other("http://ci.example.com"), "https://"),
        (
            other("https://169.254.169.254"),
            "reachable on the internet",
        ),
        (
            json!([{"issuer": issuer.url, "audience": "m2m"}]),
            "needs a subject or a claim",
        ),
        (
            json!([{"issuer": issuer.url, "audience": "m2m", "subject": "*"}]),
            "matches any value",
        ),
        (
            json!([{"issuer": issuer.url, "audience": "m2m", "claims": {"aud": "x"}}]),
            "checked by every exchange",
        ),
        (json!([policy(1), policy(1)]), "repeats a policy"),
        (json!("all"), "must be an array"),
    ];
    for (policies, says) in refusals {
        let reply = tenant
            .create_token(json!({"trustPolicies": policies}))
            .await;
        reply.assert_refused(StatusCode::BAD_REQUEST, says, format_args!("{says}"));
        assert!(
            reply.error().starts_with("trustPolicies"),
            "{:?}",
            reply.error()
        );
    }
}

/// A personal token carries policies too, set and changed by PATCH (its roles stay its
/// user's), its JWT is its user's, and each change is in the trail.
#[tokio::test]
async fn personal_tokens_carry_policies_and_changes_are_recorded() {
    let issuer = Issuer::start().await;
    let t = federated_app(Backing::Embedded, &issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    tenant.create().await;
    let policy = |n: usize| {
        let subject = format!("system:serviceaccount:ci:bot-{n}");
        json!({"issuer": issuer.url, "audience": "m2m", "subject": subject})
    };
    let alice = tenant.user("alice");
    alice.join(json!([])).await;
    let mine = alice
        .personal_token(json!({"trustPolicies": [policy(1)]}))
        .await;
    let body = json!({"trustPolicies": [policy(2), policy(3)]});
    let patched = alice.patch_personal_token(&mine.client_id, body).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(
        patched.body["trustPolicies"][1]["subject"],
        "system:serviceaccount:ci:bot-3"
    );
    let grants = alice
        .patch_personal_token(&mine.client_id, json!({"roleIds": []}))
        .await;
    assert_eq!(grants.status, StatusCode::BAD_REQUEST, "{:?}", grants.body);
    let pod = issuer.es256.sign(&issuer.kubernetes("m2m", "ci", "bot-3"));
    let answer = exchange(&t, &mine.client_id, &pod).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let claims = lasting(&t, answer.body["access_token"].as_str().unwrap());
    assert_eq!(claims["userId"], "alice");
    let listed = alice.list_personal_tokens().await;
    assert_eq!(listed.body[0]["trustPolicies"].as_array().unwrap().len(), 2);
    let headers = [
        ("x-access-token", vendor.token.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let trail = t.get("/audits?count=100", &headers).await;
    assert_eq!(trail.status, StatusCode::OK, "{:?}", trail.body);
    let changed = trail.body["data"].as_array().unwrap().iter();
    let changed = changed
        .filter(|e| e["action"] == "apiToken.changed")
        .count();
    assert_eq!(changed, 1, "{:?}", trail.body);
}

/// A key the issuer publishes later is fetched when a token names it, at most once a second
/// however many forged `kid`s arrive.
#[tokio::test]
async fn a_key_published_later_is_fetched_when_named() {
    let issuer = Issuer::start().await;
    let t = federated_app(Backing::Embedded, &issuer).await;
    let bot = deploy_token(&t, &issuer).await;
    let pod = |key: &Key| key.sign(&issuer.kubernetes("m2m", "ci", "deployer"));
    assert_eq!(
        exchange(&t, &bot.client_id, &pod(&issuer.es256))
            .await
            .status,
        StatusCode::OK
    );
    let rotated_in = Key::new(jsonwebtoken::Algorithm::ES256);
    let fetched_before = issuer.fetches();
    for _ in 0..10 {
        let answer = exchange(&t, &bot.client_id, &pod(&rotated_in)).await;
        answer.refused("invalid_grant", "publishes no key");
    }
    let fetched = issuer.fetches() - fetched_before;
    assert!(fetched <= 2, "forged kids fetched {fetched} times");
    issuer.publish(&rotated_in);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = exchange(&t, &bot.client_id, &pod(&rotated_in)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

/// An issuer that hangs costs its own requests a 503 within the fetch timeout, then at once,
/// and no other issuer's requests anything.
#[tokio::test]
async fn a_hanging_issuer_is_refused_alone() {
    let (issuer, hanging) = (Issuer::start().await, Issuer::start().await);
    let local = LocalIssuers(vec![issuer.url.clone(), hanging.url.clone()]);
    let t = spawn_app_with(Backing::Embedded, move |s| s.local_issuers = local).await;
    let bot = deploy_token(&t, &issuer).await;
    let vendor = t.as_vendor().await;
    let subject = "system:serviceaccount:ci:x";
    let policy = json!([{"issuer": hanging.url, "audience": "m2m", "subject": subject}]);
    let stuck = vendor
        .tenant("acme")
        .token(json!({"trustPolicies": policy}))
        .await;
    let pod = || {
        issuer
            .es256
            .sign(&issuer.kubernetes("m2m", "ci", "deployer"))
    };
    let hung = || hanging.es256.sign(&hanging.kubernetes("m2m", "ci", "x"));
    hanging.hang(true);
    let started = Instant::now();
    let stuck_token = hung();
    let (stalled, meanwhile) = tokio::join!(exchange(&t, &stuck.client_id, &stuck_token), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at = Instant::now();
        let answer = exchange(&t, &bot.client_id, &pod()).await;
        (answer, at.elapsed())
    });
    assert_eq!(
        stalled.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stalled.text
    );
    stalled.refused("temporarily_unavailable", "issuer could not be reached");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(meanwhile.0.status, StatusCode::OK, "{}", meanwhile.0.text);
    assert!(
        meanwhile.1 < Duration::from_secs(2),
        "the other issuer waited {:?}",
        meanwhile.1
    );
    // Right after, the hung issuer is answered at once, not waited for again.
    let again = Instant::now();
    let answer = exchange(&t, &stuck.client_id, &hung()).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert!(
        again.elapsed() < Duration::from_millis(900),
        "{:?}",
        again.elapsed()
    );
    hanging.hang(false);
}

/// A policy removed while a workload's token is being verified issues nothing: the use is
/// recorded only while the policy that admitted it is still the token's.
async fn a_policy_removed_in_flight_issues_nothing(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    // The issuer holds the key fetch while the policies go.
    issuer.hang(true);
    let pod = issuer
        .es256
        .sign(&issuer.kubernetes("m2m", "ci", "deployer"));
    let (answer, ()) = tokio::join!(exchange(t, &bot.client_id, &pod), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let removed = tenant
            .patch_token(&bot.client_id, json!({"trustPolicies": []}))
            .await;
        assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
        issuer.hang(false);
    });
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    answer.refused("invalid_grant", "removed meanwhile");
}

with_an_issuer_on_both_stores!(a_policy_removed_in_flight_issues_nothing);

/// Of many simultaneous uses of one workload token, exactly one gets a JWT; repeated.
async fn one_use_of_a_workload_token_wins(t: &TestApp, issuer: &Issuer) {
    let bot = deploy_token(t, issuer).await;
    for round in 0..10 {
        let account = format!("deploy-{round}");
        let pod = issuer.es256.sign(&issuer.kubernetes("m2m", "ci", &account));
        let uses = (0..6).map(|_| exchange(t, &bot.client_id, &pod));
        let answers = futures::future::join_all(uses).await;
        let won = answers
            .iter()
            .filter(|a| a.status == StatusCode::OK)
            .count();
        let texts: Vec<&String> = answers.iter().map(|a| &a.text).collect();
        assert_eq!(won, 1, "round {round}: {texts:?}");
        for lost in answers.iter().filter(|a| a.status != StatusCode::OK) {
            lost.refused("invalid_grant", "used before");
        }
    }
}

with_an_issuer_on_both_stores!(one_use_of_a_workload_token_wins);

/// On Lambda: the exchange function's own binary (behind API Gateway, polling a stand-in of
/// the Runtime API) fetches the issuer's keys within the request's budget; an issuer that hangs
/// costs its own request a 503, and the next workload of another issuer is served.
#[tokio::test]
async fn the_exchange_function_federates_on_lambda() {
    let (issuer, hanging) = (Issuer::start().await, Issuer::start().await);
    let local = LocalIssuers(vec![issuer.url.clone(), hanging.url.clone()]);
    let t = spawn_app_with(Backing::Moto, move |s| s.local_issuers = local).await;
    let bot = deploy_token(&t, &issuer).await;
    let vendor = t.as_vendor().await;
    let subject = "system:serviceaccount:ci:x";
    let policy = json!([{"issuer": hanging.url, "audience": "m2m", "subject": subject}]);
    let body = json!({"trustPolicies": policy});
    let stuck = vendor.tenant("acme").token(body).await;
    hanging.hang(true);
    let pod = || {
        issuer
            .es256
            .sign(&issuer.kubernetes("m2m", "ci", "deployer"))
    };
    let hung = hanging.es256.sign(&hanging.kubernetes("m2m", "ci", "x"));
    let events = vec![
        exchange_event(&bot.client_id, &pod()),
        exchange_event(&stuck.client_id, &hung),
        exchange_event(&bot.client_id, &pod()),
    ];
    let mut env = crate::gateway_events::function_env(&t);
    let local = format!("{},{}", issuer.url, hanging.url);
    env.push(("M2M_FEDERATION_LOCAL_ISSUERS", local));
    let run = crate::support::runtime_api::invoke("exchange", &env, events).await;
    let statuses: Vec<&Value> = run.answers.iter().map(|a| &a["statusCode"]).collect();
    let expected = [&json!(200), &json!(503), &json!(200)];
    assert_eq!(statuses, expected, "{}", run.log);
    let body = |n: usize| -> Value {
        serde_json::from_str(run.answers[n]["body"].as_str().unwrap()).unwrap()
    };
    assert_eq!(body(1)["error"], "temporarily_unavailable", "{}", body(1));
    let jwt = body(2)["access_token"].as_str().unwrap().to_owned();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = base64::Engine::decode(&engine, jwt.split('.').nth(1).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["sub"], json!(bot.client_id));
    assert_eq!(claims["permissions"], json!(["deploy.write"]));
    hanging.hang(false);
}

/// An API Gateway event of a token exchange of `workload` for `client_id`'s JWT.
fn exchange_event(client_id: &str, workload: &str) -> String {
    let form = encoded(&[
        ("grant_type", EXCHANGE),
        ("client_id", client_id),
        ("subject_token", workload),
        ("subject_token_type", JWT_TYPE),
    ]);
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (_, event) = crate::support::gateway::event("POST", TOKEN, &headers, &form);
    event.to_string()
}

/// A token made for workloads only (`withSecret: false`) shows no secret, ever known outside
/// the service, and works with its policy; without a policy it could not work, and is refused.
#[tokio::test]
async fn a_token_for_workloads_only_shows_no_secret() {
    let issuer = Issuer::start().await;
    let t = federated_app(Backing::Embedded, &issuer).await;
    let vendor = t.as_vendor().await;
    let tenant = vendor.tenant("acme");
    let policy = json!([{"issuer": issuer.url, "audience": "m2m", "subject": "system:serviceaccount:ci:bot"}]);
    let made = tenant
        .create_token(json!({"withSecret": false, "trustPolicies": policy}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert!(made.body.get("secret").is_none(), "{:?}", made.body);
    let client_id = made.body["clientId"].as_str().unwrap();
    let pod = issuer.es256.sign(&issuer.kubernetes("m2m", "ci", "bot"));
    let answer = exchange(&t, client_id, &pod).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    for (body, says) in [
        (json!({"withSecret": false}), "needs trustPolicies"),
        (
            json!({"withSecret": false, "trustPolicies": []}),
            "needs trustPolicies",
        ),
        (
            json!({"withSecret": "no", "trustPolicies": policy}),
            "true or false",
        ),
    ] {
        let reply = tenant.create_token(body).await;
        reply.assert_refused(StatusCode::BAD_REQUEST, says, "");
    }
}
