//! Upgrades never end a credential. `tests/fixtures/release-1/` holds data written by the
//! first release that versions its records, on both stores (the embedded store's file, and
//! the DynamoDB items as JSON, as `aws dynamodb scan` prints them), with the credentials it
//! handed out and the claims their JWTs carried. Every later change must keep serving it as
//! it was: the same claims, dead stays dead, refresh tokens still refresh.
//!
//! A release writes its own fixture once, beside the earlier ones (never over them):
//! `M2M_WRITE_FIXTURE=tests/fixtures/release-N cargo test -p m2m-tests --test api -- --ignored
//! upgrades::write_the_release_fixture`, then a test like the two below for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use m2m_shared::adapters::{DynamoStore, EmbeddedStore, LocalKeys};
use m2m_shared::config::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::dynamo_json::{item_to_json, json_to_item};
use crate::support::{
    EXCHANGE_V1, REFRESH_V1, TENANT_TOKENS, TestApp, aws_config, moto_resources, spawn_app_on,
};

const RELEASE_1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/release-1");

/// The claims of a JWT that say what it grants and to whom (not when, by which key, or where
/// it was served).
fn granted(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    let keep = [
        "sub",
        "type",
        "tenantId",
        "userId",
        "email",
        "roles",
        "permissions",
        "metadata",
        "createdByUserId",
        "applicationId",
        "aud",
    ];
    keep.iter()
        .filter_map(|k| claims.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn exchange(t: &TestApp, client_id: &str, secret: &str) -> (StatusCode, Value) {
    let reply = t.exchange(EXCHANGE_V1, client_id, secret).await;
    (reply.status, reply.body)
}

async fn refresh(t: &TestApp, token: &str) -> (StatusCode, Value) {
    let reply = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": token}))
        .await;
    (reply.status, reply.body)
}

fn credentials(value: &Value) -> (&str, &str) {
    let text = |k: &str| {
        value[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {value}"))
    };
    (text("clientId"), text("secret"))
}

/// Rotates tenant token `client_id` of acme with no grace: its new secret.
async fn rotated_out(t: &TestApp, vendor: &str, client_id: &str) -> String {
    let auth = [("x-access-token", vendor), ("frontegg-tenant-id", "acme")];
    let rotate = format!("{TENANT_TOKENS}/{client_id}/rotate");
    let rotated = t.post(&rotate, &auth, &json!({"graceMinutes": 0})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    rotated.body["secret"].as_str().unwrap().to_owned()
}

/// `DELETE path` with `headers`, which must answer 200.
async fn delete(t: &TestApp, path: &str, headers: &[(&str, &str)]) {
    let mut request = t.http.delete(format!("{}{path}", t.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = t.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
}

/// Exchanges each of `tokens` (the second is a personal token): their account with their JWTs'
/// claims, their refresh tokens not yet used, and the second's first refresh token, spent by
/// its use.
async fn used(t: &TestApp, tokens: &[(&str, &str)]) -> (Vec<Value>, Vec<Value>, Value) {
    let mut live = Vec::new();
    let mut refresh_tokens = Vec::new();
    for (client_id, secret) in tokens {
        let (status, issued) = exchange(t, client_id, secret).await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        let claims = granted(issued["accessToken"].as_str().unwrap());
        live.push(json!({"clientId": client_id, "secret": secret, "claims": claims}));
        refresh_tokens.push(issued["refreshToken"].clone());
    }
    let (status, renewed) = refresh(t, refresh_tokens[1].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let spent = refresh_tokens.remove(1);
    refresh_tokens.push(renewed["refreshToken"].clone());
    (live, refresh_tokens, spent)
}

/// Writes the data every release must keep serving, through the API, and says what it holds:
/// the vendor credential; live tokens (a tenant token with a role, metadata and an allow-list,
/// a personal token, a rotated one) with their JWTs' claims; dead ones (deleted, rotated
/// out, a personal token whose membership ended, of a deleted tenant); a refresh token not
/// yet used, and one spent.
pub(crate) async fn scenario(t: &TestApp) -> Value {
    let vendor = t.vendor_token().await;
    t.reader_role(&vendor).await;
    t.member(&vendor, "alice", "acme", json!(["r-reader"]))
        .await;
    t.member(&vendor, "bob", "acme", json!([])).await;
    t.member(&vendor, "carol", "globex", json!([])).await;
    let kept = json!({"description": "deploys", "roleIds": ["r-reader"],
        "metadata": {"team": "ci"}, "allowedIps": ["127.0.0.0/8"]});
    let (tenant_id, tenant_secret) = t.tenant_token(&vendor, "acme", kept).await;
    let alice = json!({"description": "alice's laptop"});
    let (alice_id, alice_secret) = t.user_token(&vendor, "acme", "alice", alice).await;
    let (rotated_id, old_secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let new_secret = rotated_out(t, &vendor, &rotated_id).await;
    let (deleted_id, deleted_secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let path = format!("{TENANT_TOKENS}/{deleted_id}");
    delete(
        t,
        &path,
        &[("x-access-token", &vendor), ("frontegg-tenant-id", "acme")],
    )
    .await;
    let (bob_id, bob_secret) = t.user_token(&vendor, "acme", "bob", json!({})).await;
    let bob = json!({"email": "bob@example.test", "tenants": []});
    let ended = t
        .put(
            "/identity/resources/users/v1/bob",
            &[("x-access-token", &vendor)],
            &bob,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    let (globex_id, globex_secret) = t.tenant_token(&vendor, "globex", json!({})).await;
    let globex = "/identity/resources/tenants/v1/globex";
    delete(t, globex, &[("x-access-token", &vendor)]).await;

    let live_tokens = [
        (tenant_id.as_str(), tenant_secret.as_str()),
        (alice_id.as_str(), alice_secret.as_str()),
        (rotated_id.as_str(), new_secret.as_str()),
    ];
    let (live, refresh_tokens, spent) = used(t, &live_tokens).await;
    let dead = [
        (&rotated_id, &old_secret, "rotated out"),
        (&deleted_id, &deleted_secret, "deleted"),
        (&bob_id, &bob_secret, "membership ended"),
        (&globex_id, &globex_secret, "tenant deleted"),
    ]
    .map(|(id, secret, why)| json!({"clientId": id, "secret": secret, "why": why}));
    json!({
        "vendor": {"clientId": t.vendor_client_id, "secret": t.vendor_secret},
        "live": live,
        "dead": dead,
        "refresh": refresh_tokens,
        "spent": [spent],
    })
}

/// Serves what `expected` (a scenario's account) says: the vendor logs in; each live token's
/// JWT grants what it did; each dead credential is refused; the unused refresh tokens refresh,
/// the spent one does not; the tenant's tokens are still listed.
pub(crate) async fn assert_serves(t: &TestApp, expected: &Value) {
    let (vendor_id, vendor_secret) = credentials(&expected["vendor"]);
    let login = json!({"clientId": vendor_id, "secret": vendor_secret});
    let reply = t.post("/auth/vendor", &[], &login).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let vendor = reply.body["token"].as_str().unwrap().to_owned();
    for token in expected["live"].as_array().unwrap() {
        let (client_id, secret) = credentials(token);
        let (status, issued) = exchange(t, client_id, secret).await;
        assert_eq!(status, StatusCode::OK, "{token}: {issued}");
        let claims = granted(issued["accessToken"].as_str().unwrap());
        assert_eq!(claims, token["claims"], "{client_id}");
    }
    for token in expected["dead"].as_array().unwrap() {
        let (client_id, secret) = credentials(token);
        let (status, _) = exchange(t, client_id, secret).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token} stays dead");
    }
    for (i, token) in expected["refresh"].as_array().unwrap().iter().enumerate() {
        let (status, renewed) = refresh(t, token.as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "refresh token {i}: {renewed}");
    }
    for token in expected["spent"].as_array().unwrap() {
        let (status, _) = refresh(t, token.as_str().unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a spent refresh token stays spent"
        );
    }
    let auth = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let listed = t.get(TENANT_TOKENS, &auth).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(2),
        "{:?}",
        listed.body
    );
}

/// A copy of the fixture's folder `name` (the store is opened for writing).
pub(crate) fn copy_of(fixture: &Path, name: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture.join(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    copy
}

/// The embedded store and local key in `dir`, served.
pub(crate) async fn embedded_app(dir: tempfile::TempDir) -> TestApp {
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("tokens.redb")).unwrap());
    let signer = LocalKeys::in_folder(dir.path()).signer().unwrap().into();
    let backend = Backend::Embedded {
        data_dir: dir.path().to_owned(),
        audit_stream: None,
    };
    spawn_app_on((store, signer), backend, Some(dir)).await
}

/// A fresh moto table holding `items`, served with the local key in `keys` (so that refresh
/// tokens made under it still verify).
pub(crate) async fn dynamodb_app(items: &[Value], keys: tempfile::TempDir) -> TestApp {
    let (table, kms_key_id) = moto_resources().await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    for item in items {
        let put = client
            .put_item()
            .table_name(&table)
            .set_item(Some(json_to_item(item)));
        put.send().await.unwrap();
    }
    serve_table(&table, &kms_key_id, keys).await
}

/// The moto table `table` served with the local key in `keys`.
pub(crate) async fn serve_table(table: &str, kms_key_id: &str, keys: tempfile::TempDir) -> TestApp {
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let store = Arc::new(DynamoStore::new(client, table.to_owned()));
    let signer = LocalKeys::in_folder(keys.path()).signer().unwrap().into();
    let backend = Backend::Aws {
        table: table.to_owned(),
        kms_key_id: kms_key_id.to_owned(),
        wrapping_key_id: None,
        previous_kms_key_id: None,
    };
    spawn_app_on((store, signer), backend, Some(keys)).await
}

fn expected(fixture: &Path) -> Value {
    let text = std::fs::read_to_string(fixture.join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_first_releases_embedded_store_is_served_as_written() {
    let fixture = Path::new(RELEASE_1);
    let t = embedded_app(copy_of(fixture, "embedded")).await;
    assert_serves(&t, &expected(fixture)["embedded"]).await;
}

#[tokio::test]
async fn the_first_releases_dynamodb_items_are_served_as_written() {
    let fixture = Path::new(RELEASE_1);
    let text = std::fs::read_to_string(fixture.join("dynamodb-items.json")).unwrap();
    let items: Vec<Value> = serde_json::from_str(&text).unwrap();
    let t = dynamodb_app(&items, copy_of(fixture, "keys")).await;
    assert_serves(&t, &expected(fixture)["dynamodb"]).await;
}

/// Writes this release's fixture into `M2M_WRITE_FIXTURE` (a folder that must not exist yet):
/// the scenario on the embedded store (its folder, `embedded/`), and on a moto table (its
/// items, `dynamodb-items.json`), both signing with one local key (`keys/`, also in
/// `embedded/`); and what each holds (`expected.json`).
#[tokio::test]
#[ignore = "run once per release, by hand (see the module's documentation)"]
async fn write_the_release_fixture() {
    let out = PathBuf::from(std::env::var("M2M_WRITE_FIXTURE").expect("M2M_WRITE_FIXTURE"));
    assert!(
        !out.exists(),
        "{} exists: a fixture is never rewritten",
        out.display()
    );
    let keys = tempfile::tempdir().unwrap();
    LocalKeys::in_folder(keys.path()).signer().unwrap();
    let t = embedded_app(copy_of(keys.path(), ".")).await;
    let embedded = scenario(&t).await;
    let embedded_dir = t.stop().await.unwrap();
    let t = dynamodb_app(&[], copy_of(keys.path(), ".")).await;
    let dynamodb = scenario(&t).await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let scan = client.scan().table_name(t.table.as_deref().unwrap());
    let scanned = scan.send().await.unwrap();
    assert!(
        scanned.last_evaluated_key.is_none(),
        "one page holds the fixture"
    );
    let mut items: Vec<Value> = scanned.items().iter().map(item_to_json).collect();
    items.sort_by_key(|item| (item["pk"].to_string(), item["sk"].to_string()));
    for (from, to) in [(embedded_dir.path(), "embedded"), (keys.path(), "keys")] {
        std::fs::create_dir_all(out.join(to)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, out.join(to).join(path.file_name().unwrap())).unwrap();
        }
    }
    let items = serde_json::to_string_pretty(&items).unwrap();
    std::fs::write(out.join("dynamodb-items.json"), items + "\n").unwrap();
    let expected = json!({
        "release": env!("CARGO_PKG_VERSION"),
        "embedded": embedded,
        "dynamodb": dynamodb,
    });
    let expected = serde_json::to_string_pretty(&expected).unwrap();
    std::fs::write(out.join("expected.json"), expected + "\n").unwrap();
}

/// Every record written now holds this release's format, on DynamoDB (the counters and the
/// key claims, which writes only add to, excepted), so a later release knows what it reads.
#[tokio::test]
async fn every_record_written_holds_this_releases_format() {
    let keys = tempfile::tempdir().unwrap();
    LocalKeys::in_folder(keys.path()).signer().unwrap();
    let t = dynamodb_app(&[], keys).await;
    scenario(&t).await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let scanned = client
        .scan()
        .table_name(t.table.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let format = m2m_shared::adapters::RECORD_FORMAT.to_string();
    let mut kinds = std::collections::BTreeSet::new();
    for item in scanned.items() {
        let pk = item["pk"].as_s().unwrap();
        let kind = pk.split('#').next().unwrap();
        if ["COUNT", "AUDITCOUNT", "KEY"].contains(&kind) {
            continue;
        }
        let held = item.get("v").and_then(|v| v.as_n().ok());
        assert_eq!(held, Some(&format), "{pk} {}", item["sk"].as_s().unwrap());
        kinds.insert(kind.to_owned());
    }
    let all = [
        "AUDIT",
        "PERMISSION",
        "ROLE",
        "TENANT",
        "TOKEN",
        "USER",
        "VENDOR",
    ];
    assert_eq!(kinds, all.map(String::from).into(), "every kind of record");
}
