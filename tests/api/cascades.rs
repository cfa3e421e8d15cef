//! A deletion is finished by any retry. A store that fails on cue cuts each cascade (a tenant's
//! or a user's deletion, an ended membership; from the API and from events) at every one of
//! its store calls in turn, on both stores; the retry (the same event redelivered, the same
//! `DELETE` repeated) must leave no token, no JWT that introspection calls active and no JWT
//! off the revocation list. Between the failure and the retry, a JWT whose tenant or
//! membership is gone is already inactive to introspection, as its token is to the exchange.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use m2m_shared::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use m2m_shared::domain::directory::EntityKind;
use m2m_shared::domain::document::Record;
use m2m_shared::domain::lives::Revision;
use m2m_shared::domain::portal::{Handoff, HandoffDigest};
use m2m_shared::domain::revocation::Revocation;
use m2m_shared::domain::{
    ApiToken, ClientId, SecretHash, SecretState, TenantId, Timestamp, UserId, VendorCredential,
};
use m2m_shared::error::{Error, Result};
use m2m_shared::ports::{
    AuditStore, DirectoryStore, ExportStore, HandoffStore, Listed, RateStore, RefreshStore,
    Reserved, RevocationStore, Store, TokenStore, UseWindow, VendorStore,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// The store under test, counting its calls; armed, it fails the call of that number (counted
/// from the arming) as an unreachable store would.
struct FailingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<(usize, Option<usize>)>,
}

impl FailingStore {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Mutex::new((0, None)),
        }
    }

    /// Counts calls from now on, failing the `nth` (1-based) if given.
    fn arm(&self, nth: Option<usize>) {
        *self.calls.lock().unwrap() = (0, nth);
    }

    /// Calls since arming, and whether the armed failure is still to come.
    fn counted(&self) -> (usize, bool) {
        let calls = self.calls.lock().unwrap();
        (calls.0, calls.1.is_some())
    }

    fn trip(&self, call: &str) -> Result<()> {
        let mut calls = self.calls.lock().unwrap();
        calls.0 += 1;
        if calls.1 == Some(calls.0) {
            calls.1 = None;
            return Err(Error::unavailable(
                m2m_shared::error::Dependency::DynamoDb,
                format!("injected failure of {call}"),
            ));
        }
        Ok(())
    }
}

/// Implements a port for [`FailingStore`]: every call counted, then passed on.
macro_rules! failing {
    ($port:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        #[async_trait]
        impl $port for FailingStore {
            $(async fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.trip(stringify!($name))?;
                self.inner.$name($($arg),*).await
            })*
        }
    };
}

failing!(VendorStore {
    fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>>;
    fn vendors(&self) -> Result<Vec<VendorCredential>>;
    fn put_vendor(&self, credential: &VendorCredential, event: &AuditEvent) -> Result<()>;
    fn has_vendor(&self) -> Result<bool>;
    fn swap_vendor_secret(&self, client_id: &ClientId, from: &SecretHash, to: &SecretState, event: Option<&AuditEvent>) -> Result<bool>;
    fn touch_vendor(&self, client_id: &ClientId, at: Timestamp) -> Result<()>;
    fn delete_vendor(&self, client_id: &ClientId, survivor: &ClientId, event: &AuditEvent) -> Result<bool>;
});
failing!(TokenStore {
    fn put_new(&self, token: &ApiToken, event: &AuditEvent) -> Result<()>;
    fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>>;
    fn token_with(&self, client_id: &ClientId, keys: &[(EntityKind, String)]) -> Result<(Option<ApiToken>, Vec<Option<Record>>)>;
    fn replace(&self, token: &ApiToken, event: &AuditEvent) -> Result<()>;
    fn swap_secret(&self, client_id: &ClientId, from: &SecretHash, to: &SecretState, event: Option<&AuditEvent>) -> Result<bool>;
    fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>>;
    fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>>;
    fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()>;
    fn delete_token(&self, client_id: &ClientId, event: &AuditEvent) -> Result<bool>;
});
failing!(DirectoryStore {
    fn record(&self, kind: EntityKind, id: &str) -> Result<Option<(Record, Revision)>>;
    fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<Record>>>;
    fn swap(&self, kind: EntityKind, id: &str, record: &Record, read: Option<Revision>, event: Option<&AuditEvent>) -> Result<bool>;
    fn entities(&self, kind: EntityKind) -> Result<Vec<Record>>;
    fn listed(&self, kind: EntityKind, skip: u64, limit: usize) -> Result<Listed>;
    fn index_members(&self, user: &UserId, joined: &[TenantId], left: &[TenantId]) -> Result<()>;
    fn members_of(&self, tenant: &TenantId) -> Result<Vec<UserId>>;
});
failing!(RefreshStore {
    fn spend_refresh(&self, client_id: &ClientId, serial: u64, until: Timestamp) -> Result<bool>;
    fn unspend_refresh(&self, client_id: &ClientId, serial: u64) -> Result<()>;
    fn spend_workload_token(&self, client_id: &ClientId, policy: (usize, &str), mark: &str, until: Timestamp) -> Result<m2m_shared::ports::Spend>;
    fn unspend_workload_token(&self, mark: &str) -> Result<()>;
    fn import_workload_mark(&self, mark: &str, until: Timestamp) -> Result<bool>;
});
failing!(RateStore {
    fn reserve_uses(&self, client_id: &ClientId, window: UseWindow, want: u32, limit: u32, at: Timestamp) -> Result<Option<Reserved>>;
    fn add_usage(&self, usage: &m2m_shared::domain::usage::MinuteUsage) -> Result<()>;
    fn usage_since(&self, client_id: &ClientId, from: m2m_shared::domain::usage::Day) -> Result<Vec<m2m_shared::domain::usage::DayUsage>>;
    fn import_usage(&self, client_id: &ClientId, usage: m2m_shared::domain::usage::DayUsage) -> Result<bool>;
});
failing!(HandoffStore {
    fn put_handoff(&self, handoff: &Handoff, event: &AuditEvent) -> Result<()>;
    fn handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>>;
    fn take_handoff(&self, digest: &HandoffDigest, event: &AuditEvent) -> Result<bool>;
});
failing!(AuditStore {
    fn record_event(&self, event: &AuditEvent) -> Result<()>;
    fn import_event(&self, event: &AuditEvent) -> Result<bool>;
    fn audits(&self, query: &AuditQuery, now: Timestamp) -> Result<AuditPage>;
});
failing!(ExportStore {
    fn export_page(&self, cursor: Option<String>, limit: usize) -> Result<(Vec<m2m_shared::adapters::Exported>, Option<String>)>;
});
failing!(RevocationStore {
    fn revoke(&self, revocations: &[Revocation]) -> Result<()>;
    fn revocations(&self, now: Timestamp) -> Result<Vec<Revocation>>;
    fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>>;
});

/// A deletion as the vendor makes it.
#[derive(Clone, Copy, Debug)]
enum Deletion {
    TenantEvent,
    TenantApi,
    UserEvent,
    UserApi,
    /// `DELETE` of a user with `frontegg-tenant-id`.
    MembershipApi,
    /// A `user.upserted` whose `tenants` no longer lists the tenant.
    MembershipEvent,
}

/// What one deletion is about: a tenant with a tenant token, a member with a personal token,
/// each exchanged once; `tokens` are the ones the deletion must end, with their JWTs.
struct Fixture {
    tenant: String,
    user: String,
    tokens: Vec<(String, String)>,
    kept: Vec<(String, String)>,
}

async fn fixture(t: &TestApp, vendor: &str, n: usize, deletion: Deletion) -> Fixture {
    let (tenant, user) = (format!("acme-{n}"), format!("alice-{n}"));
    t.member(vendor, &user, &tenant, json!([])).await;
    let tenant_token = t.tenant_token(vendor, &tenant, json!({})).await;
    let personal = t.user_token(vendor, &tenant, &user, json!({})).await;
    let mut jwts = Vec::new();
    for (client_id, secret) in [&tenant_token, &personal] {
        let issued = t.exchange(EXCHANGE_V1, client_id, secret).await;
        assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
        let jwt = issued.body["accessToken"].as_str().unwrap().to_owned();
        jwts.push((client_id.clone(), jwt));
    }
    let (tenant_jwt, personal_jwt) = (jwts.remove(0), jwts.remove(0));
    let (tokens, kept) = match deletion {
        Deletion::TenantEvent | Deletion::TenantApi => (vec![tenant_jwt, personal_jwt], vec![]),
        _ => (vec![personal_jwt], vec![tenant_jwt]),
    };
    Fixture {
        tenant,
        user,
        tokens,
        kept,
    }
}

/// Makes the deletion once: `Err` when it failed (a 5xx, or an event left for redelivery).
async fn delete(t: &TestApp, vendor: &str, f: &Fixture, deletion: Deletion) -> Result<(), String> {
    let event = |detail_type: &str, detail: Value| {
        json!({"detail-type": detail_type, "detail": detail}).to_string()
    };
    let applied = |message: String| async move {
        m2m_shared::provisioning::apply(&t.app, &message)
            .await
            .map_err(|e| e.to_string())
    };
    let (tenant, user) = (&f.tenant, &f.user);
    let (path, headers) = match deletion {
        Deletion::TenantEvent => {
            let detail = json!({"tenantId": tenant, "version": 100});
            return applied(event("tenant.deleted", detail)).await;
        }
        Deletion::UserEvent => {
            let detail = json!({"userId": user, "version": 100});
            return applied(event("user.deleted", detail)).await;
        }
        Deletion::MembershipEvent => {
            let detail = json!({"userId": user, "tenants": [], "version": 100});
            return applied(event("user.upserted", detail)).await;
        }
        Deletion::TenantApi => (format!("/identity/resources/tenants/v1/{tenant}"), vec![]),
        Deletion::UserApi => (format!("/identity/resources/users/v1/{user}"), vec![]),
        Deletion::MembershipApi => (
            format!("/identity/resources/users/v1/{user}"),
            vec![("frontegg-tenant-id", tenant.as_str())],
        ),
    };
    let mut request = t
        .http
        .request(Method::DELETE, format!("{}{path}", t.base))
        .header("x-access-token", vendor);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let reply = t.send(request).await;
    match reply.status {
        // A repeated removal of a membership already ended says so, and still finishes.
        StatusCode::OK | StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
        status => Err(format!("{status}: {:?}", reply.body)),
    }
}

/// Whether introspection calls `jwt` active.
async fn active(t: &TestApp, jwt: &str) -> bool {
    let credentials = t.app.credentials(ISSUER);
    credentials.introspect(jwt).await.unwrap().is_some()
}

/// Every token the deletion ends is gone, refused, and its JWT revoked and inactive; the
/// others still work.
async fn finished(t: &TestApp, f: &Fixture, context: &str) {
    use m2m_shared::ports::Clock;
    let now = t.clock.now();
    let credentials = t.app.credentials(ISSUER);
    for (client_id, jwt) in &f.tokens {
        let id = ClientId::parse(client_id).unwrap();
        assert!(
            t.store.token(&id).await.unwrap().is_none(),
            "{context}: token left"
        );
        assert!(!active(t, jwt).await, "{context}: JWT active");
        let revocation = t.store.revocation(&id, now).await.unwrap();
        let iat = credentials.verify_access_token(jwt).unwrap().iat;
        assert!(
            revocation.is_some_and(|r| r.voids(iat)),
            "{context}: JWT not on the revocation list"
        );
    }
    for (_, jwt) in &f.kept {
        assert!(active(t, jwt).await, "{context}: another token's JWT ended");
    }
}

/// For each store call the deletion makes, a fresh fixture whose deletion fails at that call;
/// the retry finishes it.
async fn a_deletion_cut_at_any_step_is_finished_by_its_retry(backing: Backing, deletion: Deletion) {
    let failing = Arc::new(Mutex::new(None::<Arc<FailingStore>>));
    let keep = Arc::clone(&failing);
    let t = spawn_app_wrapping(backing, move |inner| {
        let store = Arc::new(FailingStore::new(inner));
        *keep.lock().unwrap() = Some(Arc::clone(&store));
        store
    })
    .await;
    let store = failing.lock().unwrap().clone().unwrap();
    let vendor = t.vendor_token().await;

    // A clean run, to count the calls.
    let f = fixture(&t, &vendor, 0, deletion).await;
    store.arm(None);
    delete(&t, &vendor, &f, deletion).await.unwrap();
    let (steps, _) = store.counted();
    finished(&t, &f, &format!("{deletion:?} uncut")).await;
    assert!(steps >= 4, "{deletion:?} made {steps} store calls");

    for step in 1..=steps {
        let f = fixture(&t, &vendor, step, deletion).await;
        store.arm(Some(step));
        let first = delete(&t, &vendor, &f, deletion).await;
        let (_, pending) = store.counted();
        store.arm(None);
        let context = format!("{deletion:?} cut at call {step} of {steps}");
        assert!(!pending, "{context}: the failure never came");
        assert!(first.is_err(), "{context}: the failure went unnoticed");
        // Whatever is left, a JWT whose tenant or membership is gone is inactive already.
        if deletion_written(&t, &f, deletion).await {
            for (_, jwt) in &f.tokens {
                assert!(
                    !active(&t, jwt).await,
                    "{context}: JWT active before the retry"
                );
            }
        }
        delete(&t, &vendor, &f, deletion)
            .await
            .unwrap_or_else(|e| panic!("{context}: the retry failed: {e}"));
        finished(&t, &f, &context).await;
    }
}

/// Whether the deletion's own record change (the tombstone, the membership's end) is stored.
async fn deletion_written(t: &TestApp, f: &Fixture, deletion: Deletion) -> bool {
    let (kind, id) = match deletion {
        Deletion::TenantEvent | Deletion::TenantApi => (EntityKind::Tenant, &f.tenant),
        _ => (EntityKind::User, &f.user),
    };
    let record = t.store.record(kind, id).await.unwrap();
    let record = record.map(|(r, _)| r);
    match deletion {
        Deletion::MembershipApi | Deletion::MembershipEvent => {
            record.is_some_and(|r| !r.members.contains_key(&f.tenant))
        }
        _ => record.is_some_and(|r| !r.is_live()),
    }
}

macro_rules! cut_at_every_step {
    ($($name:ident: $deletion:expr,)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_the_embedded_store() {
                a_deletion_cut_at_any_step_is_finished_by_its_retry(Backing::Embedded, $deletion).await;
            }

            #[tokio::test]
            async fn on_dynamodb() {
                a_deletion_cut_at_any_step_is_finished_by_its_retry(Backing::Moto, $deletion).await;
            }
        }
    )*};
}

cut_at_every_step! {
    a_tenant_deleted_by_an_event: Deletion::TenantEvent,
    a_tenant_deleted_through_the_api: Deletion::TenantApi,
    a_user_deleted_by_an_event: Deletion::UserEvent,
    a_user_deleted_through_the_api: Deletion::UserApi,
    a_membership_ended_by_an_event: Deletion::MembershipEvent,
    a_membership_ended_through_the_api: Deletion::MembershipApi,
}
