//! Each token's use per day, read through the token API: the per-minute counts every process
//! writes when a minute is over, added to their day's.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::portal::{portal_roles, session};
use crate::support::client::Issued;
use crate::support::*;
use m2m_shared::domain::usage::Day;

/// The sums over the answer's days: JWTs issued, and wrong secrets.
fn totals(usage: &Value) -> (u64, u64) {
    let days = usage["days"].as_array().unwrap();
    let sum = |pick: &dyn Fn(&Value) -> u64| days.iter().map(pick).sum::<u64>();
    (
        sum(&|d| d["issued"].as_u64().unwrap()),
        sum(&|d| d["refused"]["secret"].as_u64().unwrap()),
    )
}

async fn a_tokens_use_per_day_is_read_through_the_token_api(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({"description": "bot"})).await;
    let other = acme.token(json!({"description": "other"})).await;
    t.clock.to_next_minute();
    for _ in 0..3 {
        let reply = t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let wrong = t.exchange(EXCHANGE_V1, &bot.client_id, &other.secret).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let path = format!("{TENANT_TOKENS}/{}/usage", bot.client_id);
    let before = acme.call(Method::GET, &path, None).await;
    assert_eq!(before.status, StatusCode::OK, "{:?}", before.body);
    assert_eq!(
        totals(&before.body),
        (0, 0),
        "the current minute is not written yet"
    );
    // The next minute's first use writes the last one's counts.
    t.clock.to_next_minute();
    t.exchange(EXCHANGE_V1, &bot.client_id, &bot.secret).await;
    let usage = acme.call(Method::GET, &path, None).await;
    assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
    let days = usage.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(totals(&usage.body), (3, 1), "{:?}", usage.body);
    assert_eq!(usage.body["clientId"], json!(bot.client_id));
    assert!(usage.body["lastUsedAt"].is_string());
    let dates: Vec<&str> = days.iter().map(|d| d["date"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort_unstable();
    assert_eq!(dates, sorted, "oldest first");
    // Another tenant's token is answered as a missing one; personal tokens have theirs.
    let elsewhere = vendor.tenant("globex");
    elsewhere.create().await;
    let hidden = elsewhere.call(Method::GET, &path, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{:?}", hidden.body);
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let mine = alice.personal_token(json!({})).await;
    let personal = format!("{USER_TOKENS}/{}/usage", mine.client_id);
    let reply = vendor
        .tenant("acme")
        .user("alice")
        .call(Method::GET, &personal, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(totals(&reply.body), (0, 0));
}

on_both_stores!(a_tokens_use_per_day_is_read_through_the_token_api);

/// The `n`th token used `n + 1` times in a minute, and each once in the next, so that the first
/// minute's counts are written.
async fn use_in_turn(t: &TestApp, tokens: &[Issued]) {
    t.clock.to_next_minute();
    for (n, token) in tokens.iter().enumerate() {
        for _ in 0..=n {
            t.exchange(EXCHANGE_V1, &token.client_id, &token.secret)
                .await;
        }
    }
    // Each token's next use, a minute on, writes its last minute's counts.
    t.clock.to_next_minute();
    for token in tokens {
        t.exchange(EXCHANGE_V1, &token.client_id, &token.secret)
            .await;
    }
}

/// One read answers every token's use, each as its own read answers it: the tenant's tenant
/// tokens, or the user's personal tokens, and nobody else's.
async fn every_tokens_use_is_read_at_once(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let tokens = [
        acme.token(json!({"description": "a"})).await,
        acme.token(json!({"description": "b"})).await,
        acme.token(json!({"description": "c"})).await,
    ];
    use_in_turn(t, &tokens).await;
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let mine = alice.personal_token(json!({})).await;
    let deleted = acme.token(json!({"description": "gone"})).await;
    let gone = acme
        .call(
            Method::DELETE,
            &format!("{TENANT_TOKENS}/{}", deleted.client_id),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{:?}", gone.body);

    let all = acme
        .call(Method::GET, &format!("{TENANT_TOKENS}/usage"), None)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let listed = all.body.as_array().unwrap();
    let ids: Vec<&Value> = listed.iter().map(|u| &u["clientId"]).collect();
    let expected: Vec<Value> = tokens.iter().map(|t| json!(t.client_id)).collect();
    assert_eq!(
        ids,
        expected.iter().collect::<Vec<_>>(),
        "the listing's order, no other"
    );
    let counts: Vec<(u64, u64)> = listed.iter().map(totals).collect();
    assert_eq!(counts, [(1, 0), (2, 0), (3, 0)]);
    for (token, usage) in tokens.iter().zip(listed) {
        let one = acme
            .call(
                Method::GET,
                &format!("{TENANT_TOKENS}/{}/usage", token.client_id),
                None,
            )
            .await;
        assert_eq!(&one.body, usage, "as the token's own read");
    }

    let globex = vendor.tenant("globex");
    globex.create().await;
    let elsewhere = globex
        .call(Method::GET, &format!("{TENANT_TOKENS}/usage"), None)
        .await;
    assert_eq!(elsewhere.body, json!([]), "{:?}", elsewhere.body);
    let personal = alice
        .call(Method::GET, &format!("{USER_TOKENS}/usage"), None)
        .await;
    assert_eq!(personal.status, StatusCode::OK, "{:?}", personal.body);
    let ids: Vec<&Value> = (personal.body.as_array().unwrap().iter())
        .map(|u| &u["clientId"])
        .collect();
    assert_eq!(ids, [&json!(mine.client_id)]);
}

on_both_stores!(every_tokens_use_is_read_at_once);

/// A portal session reads the use of every token it lists, at once and one by one, a token
/// holding a role its user lacks too: grants bound what it does to a token, not what it sees.
async fn a_session_reads_the_use_of_every_token_it_lists(t: &TestApp) {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    let acme = vendor.tenant("acme");
    acme.user("alice").join(json!(["token-admin"])).await;
    let plain = acme.token(json!({"description": "plain"})).await;
    let billing = acme.token(json!({"roleIds": ["billing"]})).await;
    let admin = session(t, &acme.user("alice")).await;
    let listed = admin.call(Method::GET, TENANT_TOKENS, None).await;
    let all = admin
        .call(Method::GET, &format!("{TENANT_TOKENS}/usage"), None)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let ids = |reply: &Reply| -> Vec<Value> {
        (reply.body.as_array().unwrap().iter())
            .map(|u| u["clientId"].clone())
            .collect()
    };
    assert_eq!(
        ids(&all),
        [json!(plain.client_id), json!(billing.client_id)]
    );
    assert_eq!(ids(&all), ids(&listed), "as listed");
    let one = admin
        .call(
            Method::GET,
            &format!("{TENANT_TOKENS}/{}/usage", billing.client_id),
            None,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    let rotate = admin
        .call(
            Method::POST,
            &format!("{TENANT_TOKENS}/{}/rotate", billing.client_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        rotate.status,
        StatusCode::FORBIDDEN,
        "acting on it is refused"
    );
}

on_both_stores!(a_session_reads_the_use_of_every_token_it_lists);

/// A token's days never outlive it: the use that writes its finished minute, racing the
/// token's deletion or its tenant's, leaves no count behind, whichever lands first.
async fn counts_written_as_the_token_goes_go_with_it(t: &TestApp) {
    let vendor = t.as_vendor().await;
    for round in 0..16 {
        let tenant = format!("acme-{round}");
        let acme = vendor.tenant(&tenant);
        let token = acme.token(json!({})).await;
        t.exchange(EXCHANGE_V1, &token.client_id, &token.secret)
            .await;
        t.clock.to_next_minute();
        // Half the rounds delete the token, half its tenant.
        let path = match round % 2 {
            0 => format!("{TENANT_TOKENS}/{}", token.client_id),
            _ => format!("/identity/resources/tenants/v1/{tenant}"),
        };
        let (_, deleted) = tokio::join!(
            t.exchange(EXCHANGE_V1, &token.client_id, &token.secret),
            acme.call(Method::DELETE, &path, None)
        );
        assert!(deleted.status.is_success(), "{:?}", deleted.body);
        let client_id = m2m_shared::domain::ClientId::parse(&token.client_id).unwrap();
        let left = t.store.usage_since(&client_id, Day(0)).await.unwrap();
        assert!(left.is_empty(), "round {round} ({path}): {left:?}");
    }
}

on_both_stores!(counts_written_as_the_token_goes_go_with_it);
