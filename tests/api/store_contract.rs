//! The store contract: every behaviour the operations rely on, run once against each store
//! (the embedded one and DynamoDB in moto), so that the two cannot drift apart.

use std::sync::Arc;

use m2m_shared::adapters::{DynamoStore, EmbeddedStore};
use m2m_shared::domain::directory::{EntityKind, Origin};
use m2m_shared::domain::document::{Document, Record};
use m2m_shared::domain::lives::{DirectoryRecord, Life, TokenLives};
use m2m_shared::domain::portal::{Handoff, HandoffToken};
use m2m_shared::domain::{
    ApiToken, ClientId, GrantId, Metadata, SecretHash, SecretState, TenantId, Timestamp,
    TokenOwner, UserId, VendorCredential,
};
use m2m_shared::ports::{DirectoryStore, Listed, Reserved, Store, UseWindow};
use m2m_shared::{Error, Result};
use serde_json::json;

use crate::support::{audit_event as ev, aws_config, moto_resources};
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

/// A document of `kind`, from its JSON.
fn doc(kind: EntityKind, value: serde_json::Value) -> Document {
    Document::read(kind, value).unwrap()
}

fn tenant_doc(tenant: &str) -> Document {
    doc(
        EntityKind::Tenant,
        json!({"id": tenant, "name": "", "metadata": {}}),
    )
}

fn role_doc(id: &str, name: &str) -> Document {
    let role = json!({"id": id, "key": "reader", "name": name, "permissionIds": []});
    doc(EntityKind::Role, role)
}

/// A live tenant record as a first creation writes it.
async fn tenant(s: &Subject, tenant: &str) -> Record {
    let record = DirectoryRecord::upserted(None, tenant_doc(tenant), Origin::Api);
    let kind = EntityKind::Tenant;
    if let Some((stored, _)) = s.store.record(kind, tenant).await.unwrap() {
        return stored;
    }
    assert!(
        s.store
            .swap(kind, tenant, &record, None, None)
            .await
            .unwrap()
    );
    record
}

/// Makes `user` a member of `tenant` (creating both as needed) and returns the user's record.
async fn member(s: &Subject, user: &str, tenant_id: &str) -> Record {
    let tenant_record = tenant(s, tenant_id).await;
    let stored = s.store.record(EntityKind::User, user).await.unwrap();
    let (before, revision) = stored.map_or((None, None), |(r, rev)| (Some(r), Some(rev)));
    let mut tenants: Vec<(TenantId, Option<Life>)> = before
        .iter()
        .flat_map(|r| r.members.keys())
        .filter(|t| *t != tenant_id)
        .map(|t| (id(TenantId::parse, t), Some(Life::first())))
        .collect();
    tenants.push((id(TenantId::parse, tenant_id), tenant_record.life.clone()));
    let doc = doc(EntityKind::User, json!({"id": user, "tenants": []}));
    let after = DirectoryRecord::upserted(before.as_ref(), doc, Origin::Api).with_members(&tenants);
    assert!(
        s.store
            .swap(EntityKind::User, user, &after, revision, None)
            .await
            .unwrap()
    );
    after
}

/// A token in `tenant` (for `user`, when personal), with the lives of the records as they are.
async fn token(s: &Subject, tenant_id: &str, user: Option<&str>) -> ApiToken {
    let tenant_record = tenant(s, tenant_id).await;
    let user_record = match user {
        Some(user) => Some(Some(member(s, user, tenant_id).await)),
        None => None,
    };
    let lives = TokenLives::of(
        &id(TenantId::parse, tenant_id),
        Some(&tenant_record),
        user_record.as_ref().map(Option::as_ref),
    )
    .unwrap();
    ApiToken {
        client_id: ClientId::generate(),
        tenant_id: id(TenantId::parse, tenant_id),
        owner: user.map_or(TokenOwner::Tenant, |u| {
            TokenOwner::User(id(UserId::parse, u))
        }),
        created_by_user_id: None,
        description: Some("contract".into()),
        metadata: Metadata::new(),
        role_ids: vec![id(GrantId::parse, "admin")],
        permission_ids: Vec::new(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
        expires_at: None,
        last_used_at: None,
        issued: 0,
        secret: SecretState::new(SecretHash::from_stored(
            "$2b$04$notarealhashnotarealhashnotarealhashnotarealhas".into(),
            None,
        )),
        allowed_ips: m2m_shared::domain::network::AllowedIps::default(),
        trust_policies: Vec::new(),
        created_by_vendor: None,
        lives,
    }
}

async fn a_taken_client_id_is_refused(s: Subject) {
    let first = token(&s, "acme", None).await;
    s.store.put_new(&first, &ev()).await.unwrap();
    let mut second = token(&s, "other", None).await;
    second.client_id = first.client_id;
    let refused = s.store.put_new(&second, &ev()).await.unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused:?}");
    let kept = s.store.token(&first.client_id).await.unwrap().unwrap();
    assert_eq!(kept.tenant_id.as_str(), "acme", "never overwritten");
}
contract!(taken_client_ids, a_taken_client_id_is_refused);

const A_DAY_ON: Timestamp = Timestamp::from_millis(1_800_000_000_000);

async fn a_refresh_token_is_spent_once(s: Subject) {
    let api = token(&s, "acme", None).await;
    s.store.put_new(&api, &ev()).await.unwrap();
    // Two uses at once, round after round: exactly one spends it; after, neither can.
    for serial in 1..=20 {
        let spend = || {
            let (store, client_id) = (Arc::clone(&s.store), api.client_id);
            async move {
                store
                    .spend_refresh(&client_id, serial, A_DAY_ON)
                    .await
                    .unwrap()
            }
        };
        let (first, second) = tokio::join!(spend(), spend());
        assert!(first ^ second, "#{serial}: one use wins: {first} {second}");
        assert!(!spend().await, "#{serial}: spent");
    }
    let other = token(&s, "acme", None).await;
    s.store.put_new(&other, &ev()).await.unwrap();
    let spent = s.store.spend_refresh(&other.client_id, 1, A_DAY_ON);
    assert!(spent.await.unwrap(), "numbers are counted per API token");
}
contract!(single_use_refresh_tokens, a_refresh_token_is_spent_once);

async fn a_handoff_is_taken_once_with_what_it_was_given(s: Subject) {
    let token = HandoffToken::generate();
    let handoff = Handoff {
        digest: token.digest(),
        tenant_id: TenantId::parse("acme").unwrap(),
        user_id: UserId::parse("alice").unwrap(),
        lives: TokenLives {
            tenant: Some(Life::first()),
            membership: Some(Life::generate()),
        },
        expires_at: Timestamp::from_millis(1_800_000_000_000),
    };
    s.store.put_handoff(&handoff, &ev()).await.unwrap();
    let other = HandoffToken::generate().digest();
    assert!(s.store.handoff(&other).await.unwrap().is_none());
    assert!(!s.store.take_handoff(&other, &ev()).await.unwrap());
    let read = s.store.handoff(&token.digest()).await.unwrap().unwrap();
    assert_eq!(
        (read.tenant_id.as_str(), read.user_id.as_str()),
        ("acme", "alice")
    );
    assert_eq!(read.expires_at, handoff.expires_at);
    assert_eq!(read.lives, handoff.lives);
    assert!(s.store.take_handoff(&token.digest(), &ev()).await.unwrap());
    assert!(!s.store.take_handoff(&token.digest(), &ev()).await.unwrap());
    assert!(s.store.handoff(&token.digest()).await.unwrap().is_none());
}
contract!(
    single_use_handoffs,
    a_handoff_is_taken_once_with_what_it_was_given
);

async fn deleting_tokens_takes_their_refresh_tokens_and_index_entries(s: Subject) {
    let tenant_token = token(&s, "acme", None).await;
    let personal = token(&s, "acme", Some("alice")).await;
    let elsewhere = token(&s, "other", Some("alice")).await;
    for t in [&tenant_token, &personal, &elsewhere] {
        s.store.put_new(t, &ev()).await.unwrap();
    }
    let spend = |serial| s.store.spend_refresh(&personal.client_id, serial, A_DAY_ON);
    assert!(spend(1).await.unwrap());
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
    assert!(
        !spend(2).await.unwrap(),
        "nothing of a deleted token can be spent"
    );
}
contract!(
    token_cascades,
    deleting_tokens_takes_their_refresh_tokens_and_index_entries
);

async fn a_record_is_written_only_over_the_revision_read(s: Subject) {
    let kind = EntityKind::Role;
    let record = DirectoryRecord::upserted(None, role_doc("r1", "one"), Origin::Api);
    assert!(s.store.swap(kind, "r1", &record, None, None).await.unwrap());
    assert!(
        !s.store.swap(kind, "r1", &record, None, None).await.unwrap(),
        "it exists now: a second creation loses"
    );
    let (read, revision) = s.store.record(kind, "r1").await.unwrap().unwrap();
    assert_eq!(read, record);
    let next = DirectoryRecord::upserted(Some(&read), role_doc("r1", "two"), Origin::Api);
    assert!(
        s.store
            .swap(kind, "r1", &next, Some(revision.clone()), None)
            .await
            .unwrap()
    );
    let stale = DirectoryRecord::deleted(Some(&read), Origin::Api);
    assert!(
        !s.store
            .swap(kind, "r1", &stale, Some(revision), None)
            .await
            .unwrap(),
        "a write based on an older read loses, so nothing is undone"
    );
    let records = s.store.entities(kind).await.unwrap();
    let docs: Vec<_> = records.into_iter().map(|r| r.doc).collect();
    assert_eq!(docs, [Some(role_doc("r1", "two"))]);
}
contract!(revisions, a_record_is_written_only_over_the_revision_read);

async fn records_come_back_in_the_order_asked(s: Subject) {
    let acme = tenant(&s, "acme").await;
    let alice = member(&s, "alice", "acme").await;
    let keys = [
        (EntityKind::User, "alice".to_owned()),
        (EntityKind::Tenant, "nobody".to_owned()),
        (EntityKind::Tenant, "acme".to_owned()),
        (EntityKind::User, "alice".to_owned()),
    ];
    let read = s.store.records(&keys).await.unwrap();
    assert_eq!(read, [Some(alice.clone()), None, Some(acme), Some(alice)]);
}
contract!(batched_reads, records_come_back_in_the_order_asked);

/// A token read with directory records: the token as stored, the records in the order asked
/// (repeats and missing ones included), past a batch's hundred keys; and the records even when
/// the token is gone.
async fn a_token_comes_with_the_records_asked(s: Subject) {
    let acme = tenant(&s, "acme").await;
    let stored = token(&s, "acme", Some("alice")).await;
    s.store.put_new(&stored, &ev()).await.unwrap();
    let (alice, _) = s
        .store
        .record(EntityKind::User, "alice")
        .await
        .unwrap()
        .unwrap();
    let mut keys = vec![
        (EntityKind::Tenant, "acme".to_owned()),
        (EntityKind::Role, "nobody".to_owned()),
        (EntityKind::User, "alice".to_owned()),
    ];
    keys.extend((0..120).map(|n| (EntityKind::Permission, format!("p{n}"))));
    keys.push((EntityKind::Tenant, "acme".to_owned()));
    let (read, records) = s.store.token_with(&stored.client_id, &keys).await.unwrap();
    let read = read.expect("the token");
    assert_eq!(format!("{read:?}"), format!("{stored:?}"));
    assert_eq!(records.len(), keys.len());
    assert_eq!(records[..3], [Some(acme.clone()), None, Some(alice)]);
    assert!(records[3..123].iter().all(Option::is_none));
    assert_eq!(records[123], Some(acme.clone()));

    let (alone, none) = s.store.token_with(&stored.client_id, &[]).await.unwrap();
    assert_eq!(alone.map(|t| t.client_id), Some(stored.client_id));
    assert!(none.is_empty());
    s.store.delete_tokens(&[stored.client_id]).await.unwrap();
    let (gone, records) = s
        .store
        .token_with(&stored.client_id, &keys[..1])
        .await
        .unwrap();
    assert!(gone.is_none());
    assert_eq!(records, [Some(acme)]);
}
contract!(token_with_records, a_token_comes_with_the_records_asked);

async fn a_token_is_stored_only_while_its_tenant_and_membership_live(s: Subject) {
    let bot = token(&s, "acme", None).await;
    let laptop = token(&s, "acme", Some("alice")).await;
    let (acme, revision) = s
        .store
        .record(EntityKind::Tenant, "acme")
        .await
        .unwrap()
        .unwrap();
    let reborn = DirectoryRecord::upserted(
        Some(&DirectoryRecord::deleted(Some(&acme), Origin::Api)),
        tenant_doc("acme"),
        Origin::Api,
    );
    assert!(
        s.store
            .swap(EntityKind::Tenant, "acme", &reborn, Some(revision), None)
            .await
            .unwrap()
    );
    for (token, message) in [
        (&bot, "Tenant acme not found"),
        (&laptop, "Tenant acme not found"),
    ] {
        let refused = s.store.put_new(token, &ev()).await.unwrap_err();
        assert!(
            matches!(&refused, Error::NotFound(m) if m == message),
            "{refused:?}"
        );
        assert!(s.store.token(&token.client_id).await.unwrap().is_none());
    }
    let mut stale_member = token(&s, "acme", Some("alice")).await;
    stale_member.lives.membership = Some(Life::generate());
    let refused = s.store.put_new(&stale_member, &ev()).await.unwrap_err();
    let expected = "User alice is not a member of tenant acme";
    assert!(
        matches!(&refused, Error::NotFound(m) if m == expected),
        "{refused:?}"
    );
    s.store
        .put_new(&token(&s, "acme", Some("alice")).await, &ev())
        .await
        .unwrap();
}
contract!(
    token_lives,
    a_token_is_stored_only_while_its_tenant_and_membership_live
);

async fn the_member_index_lists_who_joined_and_not_who_left(s: Subject) {
    let (acme, globex) = (id(TenantId::parse, "acme"), id(TenantId::parse, "globex"));
    let (alice, bob) = (id(UserId::parse, "alice"), id(UserId::parse, "bob"));
    let both = [acme.clone(), globex.clone()];
    s.store.index_members(&alice, &both, &[]).await.unwrap();
    s.store
        .index_members(&bob, std::slice::from_ref(&acme), &[])
        .await
        .unwrap();
    s.store
        .index_members(&alice, &[], std::slice::from_ref(&acme))
        .await
        .unwrap();
    s.store
        .index_members(&alice, &[], std::slice::from_ref(&acme))
        .await
        .unwrap();
    assert_eq!(s.store.members_of(&acme).await.unwrap(), [bob]);
    assert_eq!(s.store.members_of(&globex).await.unwrap(), [alice]);
}
contract!(
    member_index,
    the_member_index_lists_who_joined_and_not_who_left
);

async fn an_unreadable_token_record_is_reported_not_skipped(s: Subject) {
    let planted = token(&s, "acme", None).await;
    s.store.put_new(&planted, &ev()).await.unwrap();
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

/// Uses per token and minute: a reservation is granted whole while it fits, else one, else
/// none; minutes and tokens are counted apart. Every use granted gets its own number, counted
/// on the token's record; a deleted token has none.
async fn uses_are_reserved_up_to_the_limit_and_never_past_it(s: Subject) {
    let [token_a, token_b] = [(); 2].map(|()| ClientId::generate());
    for client_id in [token_a, token_b] {
        let mut api = token(&s, "acme", None).await;
        api.client_id = client_id;
        s.store.put_new(&api, &ev()).await.unwrap();
    }
    let reserve = |client_id: ClientId, minute: i64, want: u32, new_window: bool| {
        let store = Arc::clone(&s.store);
        let window = UseWindow { minute, new_window };
        async move {
            let at = Timestamp::from_millis(minute * 60_000);
            let reserved = store.reserve_uses(&client_id, window, want, 10, at);
            reserved.await.unwrap().unwrap()
        }
    };
    let numbered = |granted, last_serial| Reserved {
        granted,
        last_serial,
    };
    assert_eq!(reserve(token_a, 7, 8, true).await, numbered(8, 8));
    let one = reserve(token_a, 7, 4, false).await;
    assert_eq!(one, numbered(1, 9), "four do not fit, one does");
    assert_eq!(
        reserve(token_a, 7, 1, true).await,
        numbered(1, 10),
        "a wrong guess costs no use"
    );
    assert_eq!(
        reserve(token_a, 7, 1, false).await.granted,
        0,
        "the minute is full"
    );
    let next = reserve(token_a, 8, 10, false).await;
    assert_eq!(next, numbered(10, 20), "the next minute is its own");
    assert_eq!(
        reserve(token_b, 7, 2, true).await,
        numbered(2, 2),
        "another token is its own"
    );

    let stored = s.store.token(&token_a).await.unwrap().unwrap();
    assert_eq!(stored.issued, 20);
    assert_eq!(
        stored.last_used_at,
        Some(Timestamp::from_millis(8 * 60_000))
    );

    s.store.delete_tokens(&[token_b]).await.unwrap();
    let window = UseWindow {
        minute: 9,
        new_window: true,
    };
    let gone = s.store.reserve_uses(&token_b, window, 1, 10, A_DAY_ON);
    assert_eq!(gone.await.unwrap(), None, "a deleted token");
}
contract!(
    uses_per_minute,
    uses_are_reserved_up_to_the_limit_and_never_past_it
);

/// Twenty concurrent reservations of three against a limit of ten, half of them expecting a
/// new minute: they never add up past the limit, and each number is given once.
async fn concurrent_reservations_never_pass_the_limit_or_share_a_number(s: Subject) {
    let api = token(&s, "acme", None).await;
    s.store.put_new(&api, &ev()).await.unwrap();
    let reserve = |new_window: bool| {
        let store = Arc::clone(&s.store);
        let window = UseWindow {
            minute: 7,
            new_window,
        };
        async move {
            let reserved = store.reserve_uses(&api.client_id, window, 3, 10, A_DAY_ON);
            reserved.await.unwrap().unwrap()
        }
    };
    let granted = futures::future::join_all((0..20).map(|n| reserve(n % 2 == 0))).await;
    let total: u32 = granted.iter().map(|r| r.granted).sum();
    assert_eq!(total, 10, "{granted:?}");
    let mut numbers: Vec<u64> = granted
        .iter()
        .flat_map(|r| (r.last_serial + 1 - u64::from(r.granted))..=r.last_serial)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>(), "each number once");
}
contract!(
    concurrent_uses,
    concurrent_reservations_never_pass_the_limit_or_share_a_number
);

/// Replacing a token's record (a patch) keeps what only reservations write: its count of JWTs
/// issued (the refresh tokens' numbers) and its last use.
async fn replacing_a_token_keeps_its_use_counts(s: Subject) {
    let api = token(&s, "acme", None).await;
    s.store.put_new(&api, &ev()).await.unwrap();
    let window = UseWindow {
        minute: 7,
        new_window: true,
    };
    let reserved = s
        .store
        .reserve_uses(&api.client_id, window, 5, 10, A_DAY_ON);
    assert_eq!(reserved.await.unwrap().unwrap().last_serial, 5);
    let mut patched = api.clone();
    patched.description = None;
    patched.expires_at = Some(A_DAY_ON);
    s.store.replace(&patched, &ev()).await.unwrap();
    let stored = s.store.token(&api.client_id).await.unwrap().unwrap();
    assert_eq!(stored.description, None, "an absent field is removed");
    assert_eq!(stored.expires_at, Some(A_DAY_ON));
    assert_eq!(stored.issued, 5, "only reservations count");
    assert_eq!(stored.last_used_at, Some(A_DAY_ON));
    let gone = token(&s, "acme", None).await;
    let refused = s.store.replace(&gone, &ev()).await.unwrap_err();
    assert!(matches!(refused, Error::NotFound(_)), "{refused:?}");
}
contract!(
    replacing_keeps_use_counts,
    replacing_a_token_keeps_its_use_counts
);

/// A secret swap (a rehash or a rotation) replaces the secrets it was computed from and nothing
/// else: not secrets that changed meanwhile, and never a token or vendor that was deleted (it
/// does not come back). A replacement (a patch) keeps the secrets as they are.
async fn a_secret_swap_replaces_only_the_secret_it_read(s: Subject) {
    let hash = |text: &str, check: Option<&str>| SecretHash::from_stored(text.into(), check);
    let (old, new) = (hash("$2b$04$old", None), hash("$2b$10$new", Some("beef")));
    let api = token(&s, "acme", None).await;
    let api = ApiToken {
        secret: SecretState::new(old.clone()),
        ..api
    };
    s.store.put_new(&api, &ev()).await.unwrap();
    let rotated = api.secret.rotated(new.clone(), A_DAY_ON, 30);
    assert!(
        s.store
            .swap_secret(&api.client_id, &old, &rotated, None)
            .await
            .unwrap()
    );
    let stored = s.store.token(&api.client_id).await.unwrap().unwrap();
    assert_eq!(
        stored.secret, rotated,
        "the new secret, the previous one and its grace"
    );
    assert_eq!(stored.description, api.description, "the rest is kept");
    let mut patched = stored.clone();
    patched.description = Some("patched".into());
    patched.secret = SecretState::new(old.clone());
    s.store.replace(&patched, &ev()).await.unwrap();
    let stored = s.store.token(&api.client_id).await.unwrap().unwrap();
    assert_eq!(
        stored.secret, rotated,
        "a replacement never writes the secrets"
    );
    let newer = SecretState::new(hash("$2b$12$newer", None));
    assert!(
        !s.store
            .swap_secret(&api.client_id, &old, &newer, None)
            .await
            .unwrap()
    );
    let stored = s.store.token(&api.client_id).await.unwrap().unwrap();
    assert_eq!(
        stored.secret, rotated,
        "computed from a hash no longer there"
    );
    s.store.delete_tokens(&[api.client_id]).await.unwrap();
    assert!(
        !s.store
            .swap_secret(&api.client_id, &new, &newer, None)
            .await
            .unwrap()
    );
    assert!(
        s.store.token(&api.client_id).await.unwrap().is_none(),
        "not resurrected"
    );
}
contract!(
    secret_swaps_are_conditional,
    a_secret_swap_replaces_only_the_secret_it_read
);

/// A vendor's secret swap likewise: only over the hash it read, never creating a vendor; and
/// its last use is recorded without ever re-creating a revoked one.
async fn a_vendor_rehash_replaces_only_the_hash_it_read(s: Subject) {
    let hash = |text: &str, check: Option<&str>| SecretHash::from_stored(text.into(), check);
    let (old, new) = (hash("$2b$04$old", None), hash("$2b$10$new", Some("beef")));
    let newer = hash("$2b$12$newer", None);
    let vendor = VendorCredential {
        client_id: ClientId::generate(),
        name: "ci".into(),
        created_at: A_DAY_ON,
        last_used_at: None,
        secret: SecretState::new(old.clone()),
    };
    s.store.put_vendor(&vendor, &ev()).await.unwrap();
    let swap = async |from: &SecretHash, to: &SecretHash| {
        let state = vendor.secret.rehashed(to.clone());
        s.store
            .swap_vendor_secret(&vendor.client_id, from, &state, None)
            .await
            .unwrap()
    };
    assert!(swap(&old, &new).await);
    assert!(!swap(&old, &newer).await);
    let stored = s.store.vendor(&vendor.client_id).await.unwrap().unwrap();
    assert_eq!(stored.secret.hash, new);
    assert_eq!(stored.name, "ci");
    let unknown = ClientId::generate();
    let state = SecretState::new(new.clone());
    assert!(
        !s.store
            .swap_vendor_secret(&unknown, &old, &state, None)
            .await
            .unwrap()
    );
    s.store.touch_vendor(&unknown, A_DAY_ON).await.unwrap();
    assert!(
        s.store.vendor(&unknown).await.unwrap().is_none(),
        "not created"
    );
}
contract!(
    vendor_rehashes_are_conditional,
    a_vendor_rehash_replaces_only_the_hash_it_read
);

/// A vendor credential is deleted only in the same write as the check that another one
/// survives: never the last, never one already gone; every credential is listed.
async fn a_vendor_is_deleted_only_while_another_survives(s: Subject) {
    let vendor = |name: &str| VendorCredential {
        client_id: ClientId::generate(),
        name: name.into(),
        created_at: A_DAY_ON,
        last_used_at: None,
        secret: SecretState::new(SecretHash::from_stored("$2b$04$x".into(), None)),
    };
    let (a, b) = (vendor("a"), vendor("b"));
    for v in [&a, &b] {
        s.store.put_vendor(v, &ev()).await.unwrap();
    }
    let mut names: Vec<String> = s
        .store
        .vendors()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let gone = ClientId::generate();
    let delete = async |target: &ClientId, survivor: &ClientId| {
        s.store
            .delete_vendor(target, survivor, &ev())
            .await
            .unwrap()
    };
    assert!(!delete(&a.client_id, &gone).await, "no survivor");
    assert!(!delete(&gone, &a.client_id).await, "nothing to delete");
    assert!(delete(&a.client_id, &b.client_id).await);
    assert!(!delete(&b.client_id, &a.client_id).await, "the last one");
    assert!(s.store.vendor(&a.client_id).await.unwrap().is_none());
    s.store.touch_vendor(&a.client_id, A_DAY_ON).await.unwrap();
    assert!(
        s.store.vendor(&a.client_id).await.unwrap().is_none(),
        "not re-created"
    );
    s.store.touch_vendor(&b.client_id, A_DAY_ON).await.unwrap();
    let b_now = s.store.vendor(&b.client_id).await.unwrap().unwrap();
    assert_eq!(b_now.last_used_at, Some(A_DAY_ON));
    assert_eq!(b_now.secret, b.secret, "a use changes nothing else");
}
contract!(
    vendor_deletions_keep_one,
    a_vendor_is_deleted_only_while_another_survives
);

/// Writes the tenant `id` live (a new or rewritten document) or as a tombstone, over whatever
/// is stored, reading again when another write came in between.
async fn write_tenant(store: &dyn Store, id: &str, live: bool) {
    loop {
        let stored = store.record(EntityKind::Tenant, id).await.unwrap();
        let (before, revision) = stored.map_or((None, None), |(r, rev)| (Some(r), Some(rev)));
        let after = if live {
            DirectoryRecord::upserted(before.as_ref(), tenant_doc(id), Origin::Api)
        } else {
            DirectoryRecord::deleted(before.as_ref(), Origin::Api)
        };
        if store
            .swap(EntityKind::Tenant, id, &after, revision, None)
            .await
            .unwrap()
        {
            return;
        }
    }
}

fn listed(ids: &[&str], total: u64) -> Listed {
    Listed {
        ids: ids.iter().map(ToString::to_string).collect(),
        total,
    }
}

/// Live tenants are listed by id a page at a time and counted: a rewrite counts once, a
/// tombstone is neither listed nor counted, a tenant created again is counted again.
async fn live_tenants_are_listed_by_page_and_counted(s: Subject) {
    for id in ["t3", "t1", "t5", "t2", "t4"] {
        write_tenant(&*s.store, id, true).await;
    }
    write_tenant(&*s.store, "t2", true).await;
    write_tenant(&*s.store, "t4", false).await;
    write_tenant(&*s.store, "t4", false).await;
    let page = |skip, limit| s.store.listed(EntityKind::Tenant, skip, limit);
    assert_eq!(page(0, 2).await.unwrap(), listed(&["t1", "t2"], 4));
    assert_eq!(page(2, 2).await.unwrap(), listed(&["t3", "t5"], 4));
    assert_eq!(page(4, 2).await.unwrap(), listed(&[], 4));
    write_tenant(&*s.store, "t4", true).await;
    assert_eq!(page(3, 5).await.unwrap(), listed(&["t4", "t5"], 5));
    let users = s.store.listed(EntityKind::User, 0, 10).await.unwrap();
    assert_eq!(users, listed(&[], 0));
}
contract!(listings, live_tenants_are_listed_by_page_and_counted);

/// Creates and deletes of the same tenants racing each other, many times over: every write
/// that lands moves the count with it, so the count is always what is listed.
async fn the_count_follows_racing_creates_and_deletes(s: Subject) {
    let ids = ["race-a", "race-b", "race-c"];
    for round in 0..12 {
        let writers = (0..6).map(|n| {
            let store = Arc::clone(&s.store);
            let id = ids[(round + n) % ids.len()];
            tokio::spawn(async move { write_tenant(&*store, id, (round + n) % 2 == 0).await })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
        let all = s.store.listed(EntityKind::Tenant, 0, 100).await.unwrap();
        let mut live = Vec::new();
        for id in ids {
            let stored = s.store.record(EntityKind::Tenant, id).await.unwrap();
            if stored.is_some_and(|(r, _)| r.is_live()) {
                live.push(id.to_owned());
            }
        }
        assert_eq!(all.ids, live, "round {round}");
        assert_eq!(all.total, live.len() as u64, "round {round}");
    }
}
contract!(
    listing_counts_under_races,
    the_count_follows_racing_creates_and_deletes
);

/// A database file written before the listings and the key claims existed gets them when it
/// is opened: every live tenant and user is listed and counted, no tombstone is; every live
/// role's key is held.
#[tokio::test]
async fn an_older_embedded_database_gets_its_listings_and_key_claims_on_opening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    let role = DirectoryRecord::upserted(None, role_doc("r1", "Reader"), Origin::Api);
    {
        let store = EmbeddedStore::open(&path).unwrap();
        for id in ["old-1", "old-2", "gone"] {
            write_tenant(&store, id, true).await;
        }
        write_tenant(&store, "gone", false).await;
        assert!(
            store
                .swap(EntityKind::Role, "r1", &role, None, None)
                .await
                .unwrap()
        );
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        for name in ["listed_tenants", "listed_users", "key_claims"] {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(name);
            assert!(txn.delete_table(table).unwrap(), "{name} existed");
        }
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let all = store.listed(EntityKind::Tenant, 0, 10).await.unwrap();
    assert_eq!(all, listed(&["old-1", "old-2"], 2));
    let same_key = DirectoryRecord::upserted(None, role_doc("r2", "Also"), Origin::Api);
    let refused = store
        .swap(EntityKind::Role, "r2", &same_key, None, None)
        .await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
}

/// A role of `tenant` (or the vendor's) with `key`.
fn scoped_role(id: &str, key: &str, tenant: Option<&str>) -> Record {
    let role = json!({"id": id, "key": key, "name": "", "permissionIds": [], "tenantId": tenant});
    DirectoryRecord::upserted(None, doc(EntityKind::Role, role), Origin::Api)
}

/// A role's key is held where it may not be shared, in the same write as the role: the
/// vendor's alone, a tenant's beside other tenants'; a rename or a delete lets it go.
async fn a_roles_key_is_held_where_it_may_not_be_shared(s: Subject) {
    let kind = EntityKind::Role;
    let swap = |id: &'static str, record: Record, read| {
        let store = Arc::clone(&s.store);
        async move { store.swap(kind, id, &record, read, None).await }
    };
    let conflict = |r: Result<bool>| matches!(r, Err(Error::Conflict(_)));
    assert!(
        swap("v1", scoped_role("v1", "admin", None), None)
            .await
            .unwrap()
    );
    assert!(conflict(
        swap("v2", scoped_role("v2", "admin", None), None).await
    ));
    assert!(conflict(
        swap("a1", scoped_role("a1", "admin", Some("acme")), None).await
    ));
    assert!(
        swap("a1", scoped_role("a1", "audit", Some("acme")), None)
            .await
            .unwrap()
    );
    assert!(
        swap("g1", scoped_role("g1", "audit", Some("globex")), None)
            .await
            .unwrap()
    );
    assert!(conflict(
        swap("a2", scoped_role("a2", "audit", Some("acme")), None).await
    ));
    assert!(conflict(
        swap("v3", scoped_role("v3", "audit", None), None).await
    ));
    // Renamed, the vendor's role lets its key go; deleted, the tenant's role lets its go.
    let (read, revision) = s.store.record(kind, "v1").await.unwrap().unwrap();
    let owner = json!({"id": "v1", "key": "owner", "name": "", "permissionIds": []});
    let renamed = DirectoryRecord::upserted(Some(&read), doc(kind, owner), Origin::Api);
    assert!(swap("v1", renamed, Some(revision)).await.unwrap());
    assert!(
        swap("a3", scoped_role("a3", "admin", Some("acme")), None)
            .await
            .unwrap()
    );
    let (read, revision) = s.store.record(kind, "a1").await.unwrap().unwrap();
    let deleted = DirectoryRecord::deleted(Some(&read), Origin::Api);
    assert!(swap("a1", deleted, Some(revision)).await.unwrap());
    assert!(
        swap("a4", scoped_role("a4", "audit", Some("acme")), None)
            .await
            .unwrap()
    );
}
contract!(key_claims, a_roles_key_is_held_where_it_may_not_be_shared);
