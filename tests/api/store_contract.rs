//! The store contract: every behaviour the operations rely on, run once against each store
//! (the embedded one and DynamoDB in moto), so that the two cannot drift apart.

use std::sync::Arc;

use m2m_shared::adapters::{DynamoStore, EmbeddedStore};
use m2m_shared::domain::directory::{EntityKind, Membership, Origin, User};
use m2m_shared::domain::{
    ApiToken, ClientId, GrantId, Metadata, RefreshRecord, RefreshToken, SecretHash, TenantId,
    Timestamp, TokenOwner, UserId,
};
use m2m_shared::ports::Store;
use m2m_shared::{Error, Result};
use serde_json::{Value, json};

use crate::support::{aws_config, moto_resources};
use redb::ReadableTable;

/// A store under test, with a way to plant an unreadable token record in it.
struct Subject {
    store: Arc<dyn Store>,
    corrupt: Corruptor,
}

enum Corruptor {
    /// The database file: the store is closed, the record overwritten, the store reopened.
    Embedded(tempfile::TempDir),
    Dynamo(String),
}

async fn embedded() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("tokens.redb")).unwrap();
    Subject {
        store: Arc::new(store),
        corrupt: Corruptor::Embedded(dir),
    }
}

async fn dynamo() -> Subject {
    let (table, _) = moto_resources().await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    Subject {
        store: Arc::new(DynamoStore::new(client, &table)),
        corrupt: Corruptor::Dynamo(table),
    }
}

/// Runs `check` against both stores.
macro_rules! contract {
    ($(#[$doc:meta])* $name:ident, $check:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_the_embedded_store() {
                super::$check(super::embedded().await).await;
            }

            #[tokio::test]
            async fn on_dynamodb() {
                super::$check(super::dynamo().await).await;
            }
        }
    };
}

fn id<T>(parse: fn(&str) -> Result<T, m2m_shared::domain::ids::InvalidId>, text: &str) -> T {
    parse(text).unwrap()
}

fn token(tenant: &str, user: Option<&str>) -> ApiToken {
    ApiToken {
        client_id: ClientId::generate(),
        tenant_id: id(TenantId::parse, tenant),
        owner: user.map_or(TokenOwner::Tenant, |u| {
            TokenOwner::User(id(UserId::parse, u))
        }),
        created_by_user_id: None,
        description: "contract".into(),
        metadata: Metadata::new(),
        role_ids: vec![id(GrantId::parse, "admin")],
        permission_ids: Vec::new(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
        expires_at: None,
        last_used_at: None,
        secret_hash: SecretHash::from_stored(
            "$2b$04$notarealhashnotarealhashnotarealhashnotarealhas".into(),
        ),
    }
}

fn refresh_record(token: &RefreshToken, issued_ms: i64) -> RefreshRecord {
    RefreshRecord {
        digest: token.digest(),
        issued_at: Timestamp::from_millis(issued_ms),
        expires_at: Timestamp::from_millis(issued_ms + 86_400_000),
    }
}

async fn a_taken_client_id_is_refused(s: Subject) {
    let first = token("acme", None);
    s.store.put_new(&first).await.unwrap();
    let mut second = token("other", None);
    second.client_id = first.client_id;
    let refused = s.store.put_new(&second).await.unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused:?}");
    let kept = s.store.token(&first.client_id).await.unwrap().unwrap();
    assert_eq!(kept.tenant_id.as_str(), "acme", "never overwritten");
}
contract!(taken_client_ids, a_taken_client_id_is_refused);

async fn a_refresh_token_works_once(s: Subject) {
    let api = token("acme", None);
    s.store.put_new(&api).await.unwrap();
    let refresh = RefreshToken::generate(api.client_id);
    s.store
        .put_refresh(&api.client_id, &refresh_record(&refresh, 1), 100)
        .await
        .unwrap();
    let digest = refresh.digest();
    assert!(
        s.store
            .take_refresh(&api.client_id, &digest)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.store
            .take_refresh(&api.client_id, &digest)
            .await
            .unwrap()
            .is_none()
    );
}
contract!(single_use_refresh_tokens, a_refresh_token_works_once);

async fn at_most_a_hundred_refresh_tokens_live_and_the_oldest_goes_first(s: Subject) {
    let api = token("acme", None);
    s.store.put_new(&api).await.unwrap();
    let issued: Vec<RefreshToken> = (0..101)
        .map(|_| RefreshToken::generate(api.client_id))
        .collect();
    for (n, refresh) in issued.iter().enumerate() {
        let record = refresh_record(refresh, 1_000 + i64::try_from(n).unwrap());
        s.store
            .put_refresh(&api.client_id, &record, 100)
            .await
            .unwrap();
    }
    let live = |n: usize| {
        let digest = issued[n].digest();
        let (store, client_id) = (Arc::clone(&s.store), api.client_id);
        async move {
            store
                .take_refresh(&client_id, &digest)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!live(0).await, "the oldest was dropped");
    assert!(live(1).await && live(100).await);
}
contract!(
    refresh_token_cap,
    at_most_a_hundred_refresh_tokens_live_and_the_oldest_goes_first
);

async fn deleting_tokens_takes_their_refresh_tokens_and_index_entries(s: Subject) {
    let tenant_token = token("acme", None);
    let personal = token("acme", Some("alice"));
    let elsewhere = token("other", Some("alice"));
    for t in [&tenant_token, &personal, &elsewhere] {
        s.store.put_new(t).await.unwrap();
    }
    let refresh = RefreshToken::generate(personal.client_id);
    let record = refresh_record(&refresh, 1);
    s.store
        .put_refresh(&personal.client_id, &record, 100)
        .await
        .unwrap();
    let acme = id(TenantId::parse, "acme");
    let alice = id(UserId::parse, "alice");
    assert_eq!(s.store.tokens_in_tenant(&acme).await.unwrap().len(), 2);
    assert_eq!(s.store.tokens_of_user(&alice).await.unwrap().len(), 2);

    let ids = [
        tenant_token.client_id,
        personal.client_id,
        ClientId::generate(),
    ];
    s.store.delete_tokens(&ids).await.unwrap();
    s.store.delete_tokens(&ids).await.unwrap(); // again: nothing left is not an error
    assert!(s.store.tokens_in_tenant(&acme).await.unwrap().is_empty());
    let left = s.store.tokens_of_user(&alice).await.unwrap();
    assert_eq!(
        left.iter().map(|t| t.client_id).collect::<Vec<_>>(),
        [elsewhere.client_id]
    );
    assert!(s.store.token(&personal.client_id).await.unwrap().is_none());
    let digest = refresh.digest();
    assert!(
        s.store
            .take_refresh(&personal.client_id, &digest)
            .await
            .unwrap()
            .is_none()
    );
}
contract!(
    token_cascades,
    deleting_tokens_takes_their_refresh_tokens_and_index_entries
);

fn member_of(user: &str, tenants: &[&str]) -> User {
    User {
        id: id(UserId::parse, user),
        email: Some(format!("{user}@example.test")),
        tenants: tenants
            .iter()
            .map(|t| Membership {
                tenant_id: id(TenantId::parse, t),
                role_ids: vec![id(GrantId::parse, "admin")],
            })
            .collect(),
    }
}

async fn removing_a_tenants_members_keeps_their_other_memberships(s: Subject) {
    s.store
        .put_user(&member_of("alice", &["acme", "globex"]), Origin::Api)
        .await
        .unwrap();
    s.store
        .put_user(&member_of("bob", &["acme"]), Origin::Api)
        .await
        .unwrap();
    let acme = id(TenantId::parse, "acme");
    s.store.remove_members(&acme).await.unwrap();
    s.store.remove_members(&acme).await.unwrap();

    let alice = s
        .store
        .user(&id(UserId::parse, "alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alice,
        member_of("alice", &["globex"]),
        "typed and otherwise unchanged"
    );
    let bob = s
        .store
        .user(&id(UserId::parse, "bob"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        bob.tenants.is_empty(),
        "the user stays, without the membership"
    );
}
contract!(
    removing_members,
    removing_a_tenants_members_keeps_their_other_memberships
);

fn v(version: u64) -> Origin {
    Origin::Event { version }
}

async fn put_tenant(s: &Subject, doc: Value, origin: Origin) -> bool {
    let kind = EntityKind::Tenant;
    s.store
        .put_entity(kind, "acme", &doc, origin)
        .await
        .unwrap()
}

async fn stored_tenant(s: &Subject) -> Option<Value> {
    s.store.entity(EntityKind::Tenant, "acme").await.unwrap()
}

async fn an_older_version_never_overwrites_a_newer_one(s: Subject) {
    assert!(put_tenant(&s, json!({"v": 2}), v(2)).await);
    assert!(
        !put_tenant(&s, json!({"v": 1}), v(1)).await,
        "older: skipped"
    );
    assert_eq!(stored_tenant(&s).await, Some(json!({"v": 2})));
    assert!(
        put_tenant(&s, json!({"v": 2.5}), v(2)).await,
        "same version reapplies"
    );
    assert_eq!(stored_tenant(&s).await, Some(json!({"v": 2.5})));
}
contract!(
    version_ordering,
    an_older_version_never_overwrites_a_newer_one
);

async fn a_tombstone_stops_late_upserts_until_a_newer_version(s: Subject) {
    let kind = EntityKind::Tenant;
    assert!(put_tenant(&s, json!({"v": 2}), v(2)).await);
    assert!(s.store.delete_entity(kind, "acme", v(3)).await.unwrap());
    assert!(!put_tenant(&s, json!({"v": 2}), v(2)).await);
    assert_eq!(stored_tenant(&s).await, None, "the tombstone holds");
    let listed = s.store.entities(kind).await.unwrap();
    assert!(listed.is_empty(), "and is not listed");
    assert!(put_tenant(&s, json!({"v": 4}), v(4)).await);
    assert_eq!(stored_tenant(&s).await, Some(json!({"v": 4})));
}
contract!(
    tombstones,
    a_tombstone_stops_late_upserts_until_a_newer_version
);

async fn users_and_their_memberships_follow_the_same_version_order(s: Subject) {
    let carol = id(UserId::parse, "carol");
    let put = |tenants: &'static [&'static str], version| {
        let store = &s.store;
        async move {
            store
                .put_user(&member_of("carol", tenants), v(version))
                .await
                .unwrap()
        }
    };
    assert!(put(&["acme"], 5).await);
    assert!(!put(&[], 4).await, "older: skipped");
    assert!(s.store.delete_user(&carol, v(6)).await.unwrap());
    assert!(
        !put(&["acme"], 5).await,
        "older than the tombstone: skipped"
    );
    assert_eq!(s.store.user(&carol).await.unwrap(), None);
}
contract!(
    user_versions,
    users_and_their_memberships_follow_the_same_version_order
);

async fn an_unreadable_token_record_is_reported_not_skipped(s: Subject) {
    let planted = token("acme", None);
    s.store.put_new(&planted).await.unwrap();
    let (store, _dir) = corrupt_token(s, &planted).await;
    for error in [
        store
            .token(&planted.client_id)
            .await
            .map(|_| ())
            .unwrap_err(),
        store
            .tokens_in_tenant(&planted.tenant_id)
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        let Error::Internal(cause) = &error else {
            panic!("an internal error, got {error:?}")
        };
        assert!(
            format!("{cause:?}").contains("stored token record is unreadable"),
            "{cause:?}"
        );
    }
}
contract!(
    corrupt_records,
    an_unreadable_token_record_is_reported_not_skipped
);

/// Overwrites the token's stored record with one whose `createdAt` is not a number.
async fn corrupt_token(
    s: Subject,
    planted: &ApiToken,
) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match s.corrupt {
        Corruptor::Embedded(dir) => {
            drop(s.store);
            let path = dir.path().join("tokens.redb");
            {
                let db = redb::Database::create(&path).unwrap();
                let txn = db.begin_write().unwrap();
                {
                    let table: redb::TableDefinition<&str, &[u8]> =
                        redb::TableDefinition::new("tokens");
                    let mut table = txn.open_table(table).unwrap();
                    let key = planted.client_id.to_string();
                    let mut record: serde_json::Value =
                        serde_json::from_slice(table.get(key.as_str()).unwrap().unwrap().value())
                            .unwrap();
                    record["createdAt"] = json!("yesterday");
                    let bytes = serde_json::to_vec(&record).unwrap();
                    table.insert(key.as_str(), bytes.as_slice()).unwrap();
                }
                txn.commit().unwrap();
            }
            let store = EmbeddedStore::open(&path).unwrap();
            (Arc::new(store), Some(dir))
        }
        Corruptor::Dynamo(table) => {
            use aws_sdk_dynamodb::types::AttributeValue;
            let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
            client
                .update_item()
                .table_name(&table)
                .key(
                    "pk",
                    AttributeValue::S(format!("TOKEN#{}", planted.client_id)),
                )
                .key("sk", AttributeValue::S("TOKEN".into()))
                .update_expression("SET createdAt = :bad")
                .expression_attribute_values(":bad", AttributeValue::S("yesterday".into()))
                .send()
                .await
                .unwrap();
            (s.store, None)
        }
    }
}
