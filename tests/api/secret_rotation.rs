//! Rotating an API token's secret with overlap: the new secret is shown once, the previous one
//! keeps exchanging for the grace, at most two are live, and a rotation racing a delete or a
//! patch loses nothing and brings nothing back. On both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// A tenant token of `acme` and the vendor headers that manage it.
struct Bot {
    vendor: String,
    client_id: String,
    secret: String,
}

impl Bot {
    async fn new(t: &TestApp) -> Self {
        let vendor = t.vendor_token().await;
        let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
        Self {
            vendor,
            client_id,
            secret,
        }
    }

    fn headers(&self) -> [(&str, &str); 2] {
        [
            ("x-access-token", &self.vendor),
            ("frontegg-tenant-id", "acme"),
        ]
    }

    fn path(&self) -> String {
        format!("{TENANT_TOKENS}/{}", self.client_id)
    }

    async fn rotate(&self, t: &TestApp, body: Value) -> Reply {
        let path = format!("{}/rotate", self.path());
        t.post(&path, &self.headers(), &body).await
    }

    async fn exchanges(&self, t: &TestApp, secret: &str) -> bool {
        let reply = t.exchange(EXCHANGE_V1, &self.client_id, secret).await;
        match reply.status {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            other => panic!("exchange: {other} {:?}", reply.body),
        }
    }

    async fn listed(&self, t: &TestApp) -> Value {
        let listing = t.get(TENANT_TOKENS, &self.headers()).await;
        let tokens = listing.body.as_array().unwrap();
        let mine = tokens
            .iter()
            .find(|l| l["clientId"] == self.client_id.as_str());
        mine.cloned().unwrap_or(Value::Null)
    }
}

fn secret_of(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["secret"].as_str().unwrap().to_owned()
}

async fn the_previous_secret_works_for_its_grace_and_at_most_two_live(t: &TestApp) {
    let bot = Bot::new(t).await;
    let first = bot.rotate(t, json!({"graceMinutes": 5})).await;
    let s1 = secret_of(&first);
    assert_ne!(s1, bot.secret);
    assert!(
        first.body["rotatedAt"].is_string() && first.body["previousSecretExpiresAt"].is_string()
    );
    assert!(
        bot.exchanges(t, &bot.secret).await,
        "the old secret, in its grace"
    );
    assert!(bot.exchanges(t, &s1).await, "the new secret");
    let listed = bot.listed(t).await;
    assert_eq!(listed["rotatedAt"], first.body["rotatedAt"]);
    assert_eq!(
        listed["previousSecretExpiresAt"],
        first.body["previousSecretExpiresAt"]
    );
    assert!(listed.get("secret").is_none(), "never listed: {listed}");

    t.clock.advance_seconds(6 * 60);
    assert!(!bot.exchanges(t, &bot.secret).await, "after its grace");
    assert!(bot.exchanges(t, &s1).await);

    let s2 = secret_of(&bot.rotate(t, json!({})).await); // the default grace, an hour
    let s3 = secret_of(&bot.rotate(t, json!({"graceMinutes": 30})).await);
    assert!(
        !bot.exchanges(t, &s1).await,
        "a third secret ends the oldest"
    );
    assert!(bot.exchanges(t, &s2).await && bot.exchanges(t, &s3).await);
    let s4 = secret_of(&bot.rotate(t, json!({"graceMinutes": 0})).await);
    assert!(!bot.exchanges(t, &s3).await, "no grace: it stops at once");
    assert!(!bot.exchanges(t, &s2).await);
    assert!(bot.exchanges(t, &s4).await);
}
on_both_stores!(the_previous_secret_works_for_its_grace_and_at_most_two_live);

async fn a_rotation_is_refused_clearly_and_changes_nothing(t: &TestApp) {
    let bot = Bot::new(t).await;
    for bad in [
        json!({"graceMinutes": -1}),
        json!({"graceMinutes": 10_081}),
        json!({"graceMinutes": 1.5}),
        json!({"graceMinutes": "60"}),
    ] {
        let refused = bot.rotate(t, bad.clone()).await;
        refused.assert_refused(
            StatusCode::BAD_REQUEST,
            "graceMinutes",
            format_args!("{bad}"),
        );
    }
    let path = format!("{TENANT_TOKENS}/0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11/rotate");
    let unknown = t.post(&path, &bot.headers(), &json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let other = [
        ("x-access-token", bot.vendor.as_str()),
        ("frontegg-tenant-id", "globex"),
    ];
    t.tenant(&bot.vendor, "globex").await;
    let elsewhere = t
        .post(&format!("{}/rotate", bot.path()), &other, &json!({}))
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "another tenant's token"
    );
    assert!(bot.exchanges(t, &bot.secret).await, "still the only secret");
    assert!(bot.listed(t).await.get("rotatedAt").is_none());

    let vendor = &bot.vendor;
    t.member(vendor, "alice", "acme", json!([])).await;
    let (client_id, secret) = t.user_token(vendor, "acme", "alice", json!({})).await;
    let personal = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    let path = format!("{USER_TOKENS}/{client_id}/rotate");
    let rotated = t.post_raw(&path, &personal, String::new()).await;
    let new_secret = secret_of(&rotated);
    assert!(
        new_secret.starts_with("m2mu_") || !secret.starts_with("m2mu_"),
        "{new_secret}"
    );
    for secret in [&secret, &new_secret] {
        let reply = t.exchange(EXCHANGE_V1, &client_id, secret).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "an empty body is the default grace"
        );
    }
}
on_both_stores!(a_rotation_is_refused_clearly_and_changes_nothing);

/// A rotation racing the token's delete: the token stays deleted, neither secret works.
async fn race_a_delete(t: &TestApp, round: u32) {
    let bot = Bot::new(t).await;
    let url = format!("{}{}", t.base, bot.path());
    let delete = t.http.delete(url).header("x-access-token", &bot.vendor);
    let delete = t.send(delete.header("frontegg-tenant-id", "acme"));
    let (rotated, deleted) = tokio::join!(bot.rotate(t, json!({})), delete);
    assert_eq!(deleted.status, StatusCode::OK);
    let answered = [StatusCode::OK, StatusCode::NOT_FOUND].contains(&rotated.status);
    assert!(answered, "{round}: {:?}", rotated.body);
    assert!(
        !bot.exchanges(t, &bot.secret).await,
        "{round}: deleted stays deleted"
    );
    if rotated.status == StatusCode::OK {
        assert!(!bot.exchanges(t, &secret_of(&rotated)).await, "{round}");
    }
}

/// A rotation racing a patch: both are kept, and the old secret never comes back.
async fn race_a_patch(t: &TestApp, round: u32) {
    let bot = Bot::new(t).await;
    let description = format!("round {round}");
    let url = format!("{}{}", t.base, bot.path());
    let patch = t.http.patch(url).header("x-access-token", &bot.vendor);
    let patch = patch.header("frontegg-tenant-id", "acme");
    let patch = t.send(patch.json(&json!({"description": description})));
    let (rotated, patched) = tokio::join!(bot.rotate(t, json!({"graceMinutes": 0})), patch);
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let new_secret = secret_of(&rotated);
    assert!(
        bot.exchanges(t, &new_secret).await,
        "{round}: the patch kept the new secret"
    );
    assert!(
        !bot.exchanges(t, &bot.secret).await,
        "{round}: and did not bring back the old"
    );
    assert_eq!(bot.listed(t).await["description"], description.as_str());
}

/// Two rotations at once: one wins (the other answers 409), and every secret shown works.
async fn race_a_rotation(t: &TestApp, round: u32) {
    let bot = Bot::new(t).await;
    let (a, b) = tokio::join!(bot.rotate(t, json!({})), bot.rotate(t, json!({})));
    for reply in [&a, &b] {
        let answered = [StatusCode::OK, StatusCode::CONFLICT].contains(&reply.status);
        assert!(answered, "{round}: {:?}", reply.body);
    }
    let won: Vec<&Reply> = [&a, &b]
        .into_iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert!(!won.is_empty(), "{round}");
    for reply in won {
        assert!(
            bot.exchanges(t, &secret_of(reply)).await,
            "{round}: every secret shown works"
        );
    }
}

/// Rotations racing deletes, patches and each other, many times: a deleted token stays
/// deleted; a patch never brings back the old secret; of concurrent rotations one wins.
async fn a_rotation_racing_a_delete_a_patch_or_another_rotation_loses_nothing(t: &TestApp) {
    for round in 0..12 {
        race_a_delete(t, round).await;
        race_a_patch(t, round).await;
        race_a_rotation(t, round).await;
    }
}
on_both_stores!(a_rotation_racing_a_delete_a_patch_or_another_rotation_loses_nothing);
