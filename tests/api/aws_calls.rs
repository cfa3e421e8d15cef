//! What an exchange and a refresh cost in AWS calls, counted at the proxies in front of moto:
//! an exchange reads its token, owners, roles and permissions in one batch (once the process
//! has seen the credentials; the first time, step by step); signs once; and writes to the store at most once a minute for a
//! token used steadily (its use count, last use and refresh-token numbers in one update). No
//! refresh token is stored. No key is looked up after start-up.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    EXCHANGE_V1, Faulty, REFRESH_V1, Signing, TENANT_TOKENS, TestApp,
    spawn_patient_app_behind_proxies,
};

/// Calls to DynamoDB and KMS since the last count, by operation.
fn count(f: &Faulty) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in f
        .dynamodb
        .take_calls()
        .into_iter()
        .chain(f.kms.take_calls())
    {
        *counts.entry(call).or_insert(0) += 1;
    }
    counts
}

fn of(counts: &BTreeMap<String, usize>, operation: &str) -> usize {
    counts.get(operation).copied().unwrap_or(0)
}

/// A tenant token holding a role with one permission.
async fn tenant_token_with_a_role(t: &TestApp) -> (String, String) {
    let vendor = t.vendor_token().await;
    t.reader_role(&vendor).await;
    t.tenant_token(&vendor, "acme", json!({"roleIds": ["r-reader"]}))
        .await
}

/// `n` exchanges; the last one's refresh token.
async fn exchanges(t: &TestApp, (client, secret): &(String, String), n: usize) -> Value {
    let mut refresh_token = Value::Null;
    for _ in 0..n {
        let reply = t.exchange(EXCHANGE_V1, client, secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        refresh_token = reply.body["refreshToken"].clone();
    }
    refresh_token
}

const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

fn writes(counts: &BTreeMap<String, usize>) -> usize {
    WRITES.iter().map(|w| of(counts, w)).sum()
}

#[tokio::test]
async fn an_exchange_reads_its_token_and_grants_signs_once_and_writes_once_a_minute() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let credentials = tenant_token_with_a_role(t).await;
    count(&f);

    exchanges(t, &credentials, 1).await;
    let first = count(&f);
    assert_eq!(
        of(&first, "Sign"),
        2,
        "the JWT, and once per process the refresh-token key: {first:?}"
    );
    assert_eq!(writes(&first), 1, "{first:?}");

    // A token used ten times a minute: the first minute learns the pace, the next one costs one
    // write of its count, one of the minute before's audit event (`apiToken.used`) and one
    // adding that minute to its day's usage.
    t.clock.to_next_minute();
    exchanges(t, &credentials, 10).await;
    let learning = count(&f);
    assert!(of(&learning, "UpdateItem") <= 4, "{learning:?}");
    assert_eq!(of(&learning, "TransactWriteItems"), 2, "{learning:?}");
    t.clock.to_next_minute();
    exchanges(t, &credentials, 10).await;
    let steady = count(&f);
    assert_eq!(
        of(&steady, "UpdateItem"),
        1,
        "one write a minute: {steady:?}"
    );
    assert_eq!(
        writes(&steady),
        3,
        "the count, the minute before's event and its day's usage; no refresh token is \
         stored: {steady:?}"
    );
    assert_eq!(of(&steady, "Sign"), 10, "{steady:?}");
    assert_eq!(
        of(&steady, "BatchGetItem"),
        10,
        "the token with its owners, roles and permissions, in one batch: {steady:?}"
    );
    let total: usize = steady.values().sum();
    assert_eq!(total, 23, "nothing else, no key lookups: {steady:?}");
}

/// A personal token's grants come through its user's roles, three steps the first time; after
/// that, one batch too. So does a refresh.
#[tokio::test]
async fn a_personal_tokens_exchange_and_refresh_read_in_one_batch() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let vendor = t.vendor_token().await;
    t.reader_role(&vendor).await;
    t.member(&vendor, "alice", "acme", json!(["r-reader"]))
        .await;
    let credentials = t.user_token(&vendor, "acme", "alice", json!({})).await;
    count(&f);

    exchanges(t, &credentials, 1).await;
    let first = count(&f);
    let reads = of(&first, "GetItem") + of(&first, "BatchGetItem");
    assert_eq!(
        reads, 4,
        "token, owners, the user's roles, permissions: {first:?}"
    );
    let refresh_token = exchanges(t, &credentials, 5).await;
    let again = count(&f);
    assert_eq!(
        (of(&again, "GetItem"), of(&again, "BatchGetItem")),
        (0, 5),
        "{again:?}"
    );

    let mut refresh_token = refresh_token;
    for round in 0..3 {
        let body = json!({"refreshToken": refresh_token});
        let reply = t.post(REFRESH_V1, &[], &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        refresh_token = reply.body["refreshToken"].clone();
        let refreshed = count(&f);
        let batches = if round == 0 { 4 } else { 1 };
        let reads = of(&refreshed, "GetItem") + of(&refreshed, "BatchGetItem");
        assert_eq!(reads, batches, "round {round}: {refreshed:?}");
    }
}

#[tokio::test]
async fn a_refresh_spends_its_token_in_one_write_and_stores_no_successor() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let credentials = tenant_token_with_a_role(t).await;
    let mut refresh_token = exchanges(t, &credentials, 3).await;
    count(&f);
    for _ in 0..3 {
        let body = json!({"refreshToken": refresh_token});
        let reply = t.post(REFRESH_V1, &[], &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        refresh_token = reply.body["refreshToken"].clone();
    }
    let refreshes = count(&f);
    assert_eq!(of(&refreshes, "TransactWriteItems"), 3, "{refreshes:?}");
    assert_eq!(
        of(&refreshes, "PutItem") + of(&refreshes, "Query"),
        0,
        "{refreshes:?}"
    );
    assert_eq!(of(&refreshes, "Sign"), 3, "{refreshes:?}");
    assert!(
        of(&refreshes, "UpdateItem") <= 2,
        "uses reserved ahead: {refreshes:?}"
    );
}

/// The attacker replays a spent refresh token and sends forged ones: neither is signed (no KMS
/// call) nor counted (no reservation); a replay costs one read and one refused conditional
/// write, a forged one nothing at all.
#[tokio::test]
async fn a_replayed_or_forged_refresh_token_is_never_signed_nor_counted() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let credentials = tenant_token_with_a_role(t).await;
    let spent = exchanges(t, &credentials, 1).await;
    let body = json!({"refreshToken": spent});
    let reply = t.post(REFRESH_V1, &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    count(&f);
    for _ in 0..5 {
        let reply = t.post(REFRESH_V1, &[], &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    }
    let replays = count(&f);
    assert_eq!(of(&replays, "Sign"), 0, "{replays:?}");
    assert_eq!(of(&replays, "UpdateItem"), 0, "no use counted: {replays:?}");
    assert_eq!(of(&replays, "TransactWriteItems"), 5, "{replays:?}");
    let forged = spent.as_str().unwrap().replace("m2mr_", "m2mr_0");
    let forged = json!({"refreshToken": &forged[..forged.len() - 1]});
    for _ in 0..5 {
        let reply = t.post(REFRESH_V1, &[], &forged).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    }
    let forgeries = count(&f);
    assert!(forgeries.is_empty(), "{forgeries:?}");
}

/// Anonymous reads of the revocation list cost no AWS call beyond one read per interval, and a
/// signature only when what it says changed: 40 GETs at once, one `Query` and one `Sign`; 40
/// more after the interval, one `Query` and no `Sign`.
#[tokio::test]
async fn gets_of_the_revocation_list_cost_one_read_per_interval_and_sign_once() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let credentials = tenant_token_with_a_role(t).await;
    exchanges(t, &credentials, 1).await;
    let vendor = t.vendor_token().await;
    let delete = t
        .http
        .delete(format!("{}{TENANT_TOKENS}/{}", t.base, credentials.0))
        .header("x-access-token", &vendor)
        .header("frontegg-tenant-id", "acme");
    assert_eq!(t.send(delete).await.status, StatusCode::OK);
    count(&f);

    let url = format!("{}/.well-known/revocations", t.base);
    let get = || async {
        let reply = t.http.get(&url).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(reply.text().await.unwrap().contains('.'));
    };
    futures::future::join_all((0..40).map(|_| get())).await;
    let burst = count(&f);
    assert_eq!(
        (of(&burst, "Query"), of(&burst, "Sign")),
        (1, 1),
        "{burst:?}"
    );
    assert_eq!(burst.values().sum::<usize>(), 2, "{burst:?}");

    t.clock.advance_seconds(6);
    futures::future::join_all((0..40).map(|_| get())).await;
    let later = count(&f);
    assert_eq!(
        (of(&later, "Query"), of(&later, "Sign")),
        (1, 0),
        "{later:?}"
    );
}

/// A page of the users list costs the same calls and reads the same bytes whatever the
/// directory's size: the keys up to the page from the listing index, the count, and the page's
/// own records in one batch.
#[tokio::test]
async fn a_page_of_users_costs_the_same_at_ten_users_as_at_two_hundred() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let vendor = t.vendor_token().await;
    let page = || async {
        let path = "/identity/resources/users/v1?_limit=5&_offset=1";
        let reply = t.get(path, &[("x-access-token", &vendor)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    };
    let add_users = |from: usize, to: usize| {
        let vendor = vendor.clone();
        async move {
            for n in from..to {
                t.member(&vendor, &format!("user-{n:04}"), "acme", json!([]))
                    .await;
            }
        }
    };
    add_users(0, 10).await;
    count(&f);
    f.dynamodb.take_answered();
    let small = page().await;
    let (small_cost, small_bytes) = (count(&f), f.dynamodb.take_answered());
    add_users(10, 200).await;
    count(&f);
    f.dynamodb.take_answered();
    let large = page().await;
    let (large_cost, large_bytes) = (count(&f), f.dynamodb.take_answered());

    assert_eq!(small["_metadata"]["totalItems"], 10);
    assert_eq!(large["_metadata"]["totalItems"], 200);
    assert_eq!(large["items"][0]["id"], "user-0005");
    assert_eq!(small["items"], large["items"], "the same second page");
    assert_eq!(small_cost, large_cost, "calls at 10 and at 200 users");
    assert!(
        large_bytes < small_bytes + small_bytes / 5,
        "DynamoDB answered {small_bytes} bytes at 10 users, {large_bytes} at 200"
    );
}

/// Reads a page of 20 of `search`'s events as the vendor: the DynamoDB calls it made, and how
/// many events the search found.
async fn page_cost(f: &Faulty, vendor: &str, search: &str) -> (BTreeMap<String, usize>, u64) {
    count(f);
    let path = format!("/audits?count=20{search}");
    let reply = f.api.get(&path, &[("x-access-token", vendor)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"].as_array().unwrap().len(), 20);
    (count(f), reply.body["total"].as_u64().unwrap())
}

/// A page of the audit trail costs the same DynamoDB calls whatever the trail's size: one query
/// of the search's counts per day, then one of each day the page shows (two here), for every
/// event, a tenant's or an actor's alike; none grows with the days or the events behind it.
#[tokio::test]
async fn a_page_of_the_audit_trail_costs_the_page_not_the_trail() {
    let f = spawn_patient_app_behind_proxies(Signing::Kms).await;
    let t = &f.api;
    let actor = format!("&actorId={}", t.vendor_client_id);
    let searches = ["", "&tenantId=acme", actor.as_str()];
    let mut day = 0;
    for days in [3, 30] {
        let mut vendor = String::new();
        while day < days {
            t.clock.advance_seconds(86_400);
            vendor = t.vendor_token().await; // each day's, as a token lives an hour
            for n in 0..12 {
                let event = json!({"tenantId": "acme", "severity": "Info", "n": n});
                let sent = t
                    .post("/audits", &[("x-access-token", &vendor)], &event)
                    .await;
                assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
            }
            day += 1;
        }
        let mut pages = Vec::new();
        for search in searches {
            pages.push(page_cost(&f, &vendor, search).await);
        }
        let reads: Vec<_> = pages.iter().map(|(calls, _)| calls.clone()).collect();
        for (calls, total) in &pages {
            assert!(*total >= 12 * days as u64, "{total}");
            assert_eq!(of(calls, "Query"), 3, "{days} days: {calls:?}");
            assert_eq!(writes(calls), 0, "{calls:?}");
        }
        assert!(reads.windows(2).all(|w| w[0] == w[1]), "{reads:?}");
    }
}
