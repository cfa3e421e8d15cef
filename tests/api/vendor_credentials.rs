//! The vendor's own credentials while the service runs: several, each named and listed with its
//! last use; rotated with a grace (the old secret, and the vendor tokens it issues, work until
//! the grace ends); revoked (its secret and its vendor tokens stop at once, here and on the
//! revocation list). On both stores.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// One vendor credential, as its creation or rotation answered it.
#[derive(Clone)]
struct Credential {
    client_id: String,
    secret: String,
}

impl Credential {
    fn of(reply: &Reply) -> Self {
        let (client_id, secret) = credentials(reply);
        Self { client_id, secret }
    }

    /// `POST /auth/vendor`: the vendor token, or the refusal's status.
    async fn login(&self, t: &TestApp) -> Result<(String, i64), StatusCode> {
        let body = json!({"clientId": self.client_id, "secret": self.secret});
        let reply = t.post("/auth/vendor", &[], &body).await;
        match reply.status {
            StatusCode::OK => Ok((
                reply.body["token"].as_str().unwrap().to_owned(),
                reply.body["expiresIn"].as_i64().unwrap(),
            )),
            other => Err(other),
        }
    }

    async fn token(&self, t: &TestApp) -> String {
        self.login(t).await.expect("the secret logs in").0
    }
}

/// A vendor call with `token`.
async fn call(t: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = t
        .http
        .request(method, format!("{}{path}", t.base))
        .header("x-access-token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    t.send(request).await
}

async fn create(t: &TestApp, token: &str, name: &str) -> Credential {
    let reply = call(
        t,
        token,
        Method::POST,
        VENDOR_CREDENTIALS,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["name"], name);
    Credential::of(&reply)
}

async fn rotate(t: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    let path = format!("{VENDOR_CREDENTIALS}/{id}/rotate");
    call(t, token, Method::POST, &path, Some(body)).await
}

async fn revoke(t: &TestApp, token: &str, id: &str) -> Reply {
    let path = format!("{VENDOR_CREDENTIALS}/{id}");
    call(t, token, Method::DELETE, &path, None).await
}

async fn listed(t: &TestApp, token: &str) -> Vec<Value> {
    let reply = call(t, token, Method::GET, VENDOR_CREDENTIALS, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body.as_array().unwrap().clone()
}

fn entry<'l>(list: &'l [Value], id: &str) -> Option<&'l Value> {
    list.iter().find(|c| c["clientId"] == id)
}

/// Whether our own vendor routes still take `token`: its credentials, and tenant tokens.
async fn accepted(t: &TestApp, token: &str) -> bool {
    let own = call(t, token, Method::GET, VENDOR_CREDENTIALS, None).await;
    let tenant = t
        .get(
            TENANT_TOKENS,
            &[("x-access-token", token), ("frontegg-tenant-id", "acme")],
        )
        .await;
    assert_eq!(
        own.status, tenant.status,
        "{:?} {:?}",
        own.body, tenant.body
    );
    match own.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("{other}: {:?}", own.body),
    }
}

/// `sub` -> `before` of the published revocation list (its payload, read as any verifier would
/// once the signature checked out; the revocation tests check the signature).
async fn revocation_list(t: &TestApp) -> Vec<(String, i64)> {
    let text = t
        .http
        .get(format!("{}/.well-known/revocations", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payload = text.split('.').nth(1).unwrap();
    let list: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    list["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["sub"].as_str().unwrap().to_owned(),
                r["before"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn named_credentials_are_listed_with_their_last_use_and_never_a_secret(t: &TestApp) {
    let admin = t.vendor_token().await;
    let ci = create(t, &admin, "ci deploys").await;
    let backend = create(t, &admin, "billing backend").await;
    assert_ne!(ci.client_id, backend.client_id);
    ci.token(t).await;
    let list = listed(t, &admin).await;
    assert_eq!(list.len(), 3, "the first credential and two more: {list:?}");
    let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names[1..],
        ["ci deploys", "billing backend"],
        "oldest first"
    );
    assert!(entry(&list, &ci.client_id).unwrap()["lastUsedAt"].is_string());
    assert!(
        entry(&list, &backend.client_id)
            .unwrap()
            .get("lastUsedAt")
            .is_none()
    );
    assert!(entry(&list, &t.vendor_client_id).unwrap()["lastUsedAt"].is_string());
    for credential in &list {
        for field in ["secret", "secretHash", "hash"] {
            assert!(credential.get(field).is_none(), "{credential}");
        }
        assert!(credential["createdAt"].is_string(), "{credential}");
    }
    // Each works on its own; a login a minute later moves lastUsedAt, one within it does not.
    let first_use = entry(&list, &ci.client_id).unwrap()["lastUsedAt"].clone();
    ci.token(t).await;
    assert_eq!(
        entry(&listed(t, &admin).await, &ci.client_id).unwrap()["lastUsedAt"],
        first_use
    );
    t.clock.advance_seconds(61);
    let backend_token = backend.token(t).await;
    ci.token(t).await;
    let list = listed(t, &backend_token).await;
    assert_ne!(
        entry(&list, &ci.client_id).unwrap()["lastUsedAt"],
        first_use
    );
}
on_both_stores!(named_credentials_are_listed_with_their_last_use_and_never_a_secret);

async fn a_rotated_secret_logs_in_during_its_grace_and_its_tokens_end_with_it(t: &TestApp) {
    let admin = t.vendor_token().await;
    let old = create(t, &admin, "backend").await;
    let rotated = rotate(t, &admin, &old.client_id, json!({"graceMinutes": 5})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert!(rotated.body["rotatedAt"].is_string());
    assert!(rotated.body["previousSecretExpiresAt"].is_string());
    let new = Credential::of(&rotated);
    assert_eq!(new.client_id, old.client_id);
    assert_ne!(new.secret, old.secret);
    let listed_now = listed(t, &admin).await;
    let shown = entry(&listed_now, &old.client_id).unwrap();
    assert_eq!(
        shown["previousSecretExpiresAt"],
        rotated.body["previousSecretExpiresAt"]
    );
    assert!(shown.get("secret").is_none());

    let (old_token, expires_in) = old.login(t).await.expect("in its grace");
    assert!(expires_in <= 300, "ends with the grace: {expires_in}");
    let (new_token, new_expires_in) = new.login(t).await.unwrap();
    assert!(new_expires_in > 300);
    assert_eq!(claims(&new_token)["sub"], new.client_id.as_str());
    assert!(accepted(t, &old_token).await && accepted(t, &new_token).await);

    t.clock.advance_seconds(6 * 60);
    assert_eq!(
        old.login(t).await.err(),
        Some(StatusCode::UNAUTHORIZED),
        "after its grace"
    );
    assert!(!accepted(t, &old_token).await, "its tokens end with it");
    assert!(accepted(t, &new_token).await);
    assert!(new.login(t).await.is_ok());
}
on_both_stores!(a_rotated_secret_logs_in_during_its_grace_and_its_tokens_end_with_it);

async fn a_rotation_without_grace_voids_the_old_secrets_tokens_at_once(t: &TestApp) {
    let admin = t.vendor_token().await;
    let old = create(t, &admin, "backend").await;
    let old_token = old.token(t).await;
    t.clock.advance_seconds(1);
    let rotated = rotate(t, &admin, &old.client_id, json!({"graceMinutes": 0})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert!(
        !accepted(t, &old_token).await,
        "refused by our own routes at once"
    );
    assert_eq!(old.login(t).await.err(), Some(StatusCode::UNAUTHORIZED));
    let new_token = Credential::of(&rotated).token(t).await;
    assert!(accepted(t, &new_token).await);
    let list = revocation_list(t).await;
    let (_, before) = list
        .iter()
        .find(|(sub, _)| *sub == old.client_id)
        .expect("the revocation list names the credential");
    assert!(claims(&old_token)["iat"].as_i64().unwrap() < *before);
    assert!(
        claims(&new_token)["iat"].as_i64().unwrap() >= *before,
        "the new secret's stand"
    );
}
on_both_stores!(a_rotation_without_grace_voids_the_old_secrets_tokens_at_once);

async fn a_revoked_credentials_secret_and_tokens_stop_at_once(t: &TestApp) {
    let admin = t.vendor_token().await;
    let leaked = create(t, &admin, "leaked").await;
    let attacker = leaked.token(t).await;
    assert!(accepted(t, &attacker).await);
    t.clock.advance_seconds(1);
    let revoked = revoke(t, &admin, &leaked.client_id).await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    assert!(entry(&listed(t, &admin).await, &leaked.client_id).is_none());
    assert_eq!(leaked.login(t).await.err(), Some(StatusCode::UNAUTHORIZED));
    assert!(
        revocation_list(t)
            .await
            .iter()
            .any(|(sub, _)| *sub == leaked.client_id)
    );

    // The attacker's token reaches nothing: not the tokens, not the directory, not the
    // credentials; and creates nothing.
    let tenant = [
        ("x-access-token", attacker.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    t.tenant(&admin, "acme").await;
    let refused = [
        t.get(TENANT_TOKENS, &tenant).await,
        t.post(TENANT_TOKENS, &tenant, &json!({})).await,
        t.get(ROLES, &[("x-access-token", &attacker)]).await,
        call(
            t,
            &attacker,
            Method::POST,
            VENDOR_CREDENTIALS,
            Some(json!({"name": "mine"})),
        )
        .await,
        rotate(t, &attacker, &t.vendor_client_id, json!({})).await,
        revoke(t, &attacker, &t.vendor_client_id).await,
        call(
            t,
            &attacker,
            Method::POST,
            PERMISSIONS,
            Some(json!({"key": "x.y"})),
        )
        .await,
    ];
    for reply in refused {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    }
    let list = listed(t, &admin).await;
    assert_eq!(list.len(), 1, "nothing was made: {list:?}");
    assert!(
        t.vendor_token().await.len() > 1,
        "the other credential still logs in"
    );
    assert_eq!(
        revoke(t, &admin, &leaked.client_id).await.status,
        StatusCode::NOT_FOUND
    );
}
on_both_stores!(a_revoked_credentials_secret_and_tokens_stop_at_once);

async fn the_last_credential_is_kept_and_a_credential_may_revoke_itself(t: &TestApp) {
    let admin = t.vendor_token().await;
    let last = revoke(t, &admin, &t.vendor_client_id).await;
    last.assert_refused(StatusCode::CONFLICT, "last", "");
    let next = create(t, &admin, "successor").await;
    let itself = revoke(t, &admin, &t.vendor_client_id).await;
    assert_eq!(itself.status, StatusCode::OK, "{:?}", itself.body);
    assert!(!accepted(t, &admin).await, "its own token ended with it");
    let successor = next.token(t).await;
    let list = listed(t, &successor).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        revoke(t, &successor, &next.client_id).await.status,
        StatusCode::CONFLICT
    );
}
on_both_stores!(the_last_credential_is_kept_and_a_credential_may_revoke_itself);

/// Two rotations at once: when both read the same secret, one wins and the other answers 409
/// (never both refused); every secret shown logs in. Every credential revoked at once: at least
/// one is kept, and each answer says truly what became of its credential.
async fn concurrent_rotations_and_revocations_keep_one_secret_and_one_credential(t: &TestApp) {
    let admin = t.vendor_token().await;
    let mut conflicts = 0;
    for round in 0..8 {
        let credential = create(t, &admin, &format!("round {round}")).await;
        let (a, b) = tokio::join!(
            rotate(t, &admin, &credential.client_id, json!({})),
            rotate(t, &admin, &credential.client_id, json!({}))
        );
        let won: Vec<&Reply> = [&a, &b]
            .into_iter()
            .filter(|r| r.status == StatusCode::OK)
            .collect();
        let lost = [&a, &b]
            .into_iter()
            .filter(|r| r.status == StatusCode::CONFLICT)
            .count();
        assert!(
            !won.is_empty() && won.len() + lost == 2,
            "{round}: {a:?} {b:?}"
        );
        conflicts += lost;
        for reply in won {
            assert!(Credential::of(reply).login(t).await.is_ok(), "{round}");
        }
    }
    // Rotations that met answered one 409; how many met depends on the machine's load, so the
    // rounds only hold that every answer was one or the other and every winner's secret works.
    eprintln!("rotations that met: {conflicts} of 8");
    let list = listed(t, &admin).await;
    let ids: Vec<String> = list
        .iter()
        .map(|c| c["clientId"].as_str().unwrap().to_owned())
        .collect();
    let (a, b) = tokio::join!(
        futures::future::join_all(ids[1..].iter().map(|id| revoke(t, &admin, id))),
        revoke(t, &admin, &ids[0])
    );
    let answers: Vec<&Reply> = a.iter().chain([&b]).collect();
    let kept = answers
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    assert!(
        answers
            .iter()
            .all(|r| [StatusCode::OK, StatusCode::CONFLICT].contains(&r.status)),
        "{answers:?}"
    );
    let left = t.store.vendors().await.unwrap();
    assert!(kept >= 1, "never the last one: {answers:?}");
    assert_eq!(
        left.len(),
        kept,
        "each 409 kept its credential, each 200 revoked one"
    );
}
on_both_stores!(concurrent_rotations_and_revocations_keep_one_secret_and_one_credential);

/// A 400 whose message names `field`.
fn refused_naming(reply: &Reply, field: &str, what: &str) {
    reply.assert_refused(StatusCode::BAD_REQUEST, field, format_args!("{what}"));
}

async fn credential_bodies_are_strict_and_unknown_credentials_are_404(t: &TestApp) {
    let admin = t.vendor_token().await;
    let long = format!(r#"{{"name": "{}"}}"#, "x".repeat(101));
    for (body, field) in [
        (r#"{"name": "a", "extra": 1}"#, "extra"),
        (r#"{"name": null}"#, "name"),
        (r#"{"name": "a", "name": "b"}"#, "name"),
        (r"{}", "name"),
        (r#"{"name": ""}"#, "name"),
        (r#"{"name": 5}"#, "name"),
        (long.as_str(), "name"),
    ] {
        let request = t.http.post(format!("{}{VENDOR_CREDENTIALS}", t.base));
        let request = request
            .header("x-access-token", &admin)
            .header("content-type", "application/json");
        refused_naming(&t.send(request.body(body.to_owned())).await, field, body);
    }
    let id = t.vendor_client_id.clone();
    for bad in [
        json!({"graceMinutes": -1}),
        json!({"graceMinutes": 10_081}),
        json!({"graceMinutes": "60"}),
        json!({"graceMinutes": null}),
        json!({"grace": 5}),
    ] {
        let reply = rotate(t, &admin, &id, bad.clone()).await;
        refused_naming(&reply, "grace", &bad.to_string());
    }
    for unknown in ["0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11", "not-an-id"] {
        let rotated = rotate(t, &admin, unknown, json!({})).await;
        let revoked = revoke(t, &admin, unknown).await;
        assert_eq!(
            (rotated.status, revoked.status),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
        );
    }
    assert_eq!(listed(t, &admin).await.len(), 1, "nothing changed");
    assert!(accepted(t, &admin).await);
}
on_both_stores!(credential_bodies_are_strict_and_unknown_credentials_are_404);
