//! Each token's use per day, read through the token API: the per-minute counts every process
//! writes when a minute is over, added to their day's.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

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
