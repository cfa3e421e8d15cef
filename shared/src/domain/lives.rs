//! What makes a deletion final, whatever the timing.
//!
//! Every tenant, user and membership has a *life*: an id it is given when it comes into being
//! and keeps until it is deleted. An API token records the lives it was created in (its
//! tenant's, and for a personal token its membership's) and works only while they are still the
//! current ones. So a token whose creation raced its tenant's deletion, or one a cascade missed,
//! never works again, and creating a tenant, a user or a membership again under an old id never
//! revives an older token. Cascades only tidy up; they are not what stops a token.
//!
//! A directory record is changed only by reading it and writing it back on the condition that
//! nobody wrote it in between (its revision), so no update is lost and nothing deleted is
//! written back. The rules for that change live here, the same for both stores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::directory::Origin;
use super::ids::{TenantId, UserId};
use super::secret::random_base62;

/// One coming-into-being of a tenant, a user or a membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Life(String);

impl Life {
    /// The life of a record's first creation. It is the same whoever computes it, so that a
    /// membership recorded before its tenant first exists (events may arrive out of order)
    /// belongs to that tenant once it is created.
    pub fn first() -> Self {
        Self("first".to_owned())
    }

    /// A life for a record created again after a deletion.
    pub fn generate() -> Self {
        Self(random_base62(22))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A membership's life, and the life its tenant had when it began (`None`: the tenant had been
/// deleted then, so the membership is void).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStamp {
    pub life: Life,
    pub tenant: Option<Life>,
}

/// The lives an API token (or a portal session) was created in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenLives {
    pub tenant: Option<Life>,
    /// Personal tokens (and portal sessions) only.
    pub membership: Option<Life>,
}

/// What a token cannot be created in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absent {
    /// The tenant does not exist (or no longer).
    Tenant,
    /// The user is not a member of the tenant (or no longer).
    Membership,
}

impl Absent {
    /// What a 404 says: the tenant `tenant` or the membership of `user` in it is missing.
    pub fn message(self, tenant: &TenantId, user: Option<&UserId>) -> String {
        match (self, user) {
            (Self::Membership, Some(user)) => {
                format!("User {user} is not a member of tenant {tenant}")
            }
            _ => format!("Tenant {tenant} not found"),
        }
    }
}

impl TokenLives {
    /// The lives a token created now gets in the tenant `tenant_id` (its record `tenant`) and,
    /// for a personal token, as the member whose record is `user` (`Some(None)`: no such user).
    pub fn of(
        tenant_id: &TenantId,
        tenant: Option<&DirectoryRecord>,
        user: Option<Option<&DirectoryRecord>>,
    ) -> Result<Self, Absent> {
        let tenant = tenant.filter(|t| t.is_live()).ok_or(Absent::Tenant)?;
        let membership = match user {
            None => None,
            Some(user) => {
                let stamp = user.and_then(|u| u.membership_in(tenant_id, tenant));
                Some(stamp.ok_or(Absent::Membership)?.life.clone())
            }
        };
        Ok(Self {
            tenant: tenant.life.clone(),
            membership,
        })
    }

    /// `Ok` while a token created in these lives still works, given the records as they are
    /// now; else what is gone.
    pub fn check(
        &self,
        tenant_id: &TenantId,
        tenant: Option<&DirectoryRecord>,
        user: Option<Option<&DirectoryRecord>>,
    ) -> Result<(), Absent> {
        let tenant = tenant
            .filter(|t| t.is_live() && t.life == self.tenant)
            .ok_or(Absent::Tenant)?;
        let Some(user) = user else {
            return Ok(());
        };
        let stamp = user.and_then(|u| u.membership_in(tenant_id, tenant));
        match (stamp, &self.membership) {
            (Some(stamp), Some(life)) if &stamp.life == life => Ok(()),
            _ => Err(Absent::Membership),
        }
    }
}

/// A directory record as stored: the document (`None` on a tombstone), the version of the
/// event that last wrote it, its life while it is live and, for a user, each membership's stamp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<Life>,
    /// Keyed by tenant id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, MemberStamp>,
}

/// The stored revision of a directory record; a write names the one it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revision(pub u64);

impl DirectoryRecord {
    pub fn is_live(&self) -> bool {
        self.doc.is_some()
    }

    /// Whether a write from `origin` must yield to this record: an event older than the stored
    /// version, or, on a tombstone, not newer than it (a redelivered upsert must not undo a
    /// delete of the same version).
    pub fn refuses(&self, origin: Origin) -> bool {
        match (origin, self.version) {
            (Origin::Event { version }, Some(stored)) if self.is_live() => version < stored,
            (Origin::Event { version }, Some(stored)) => version <= stored,
            _ => false,
        }
    }

    /// The record after `doc` is written over `stored`: a live record keeps its life, a
    /// tombstone's successor gets a new one, and a first creation gets [`Life::first`].
    pub fn upserted(stored: Option<&Self>, doc: Value, origin: Origin) -> Self {
        let life = match stored {
            None => Life::first(),
            Some(record) => match (&record.life, record.is_live()) {
                (Some(life), true) => life.clone(),
                _ => Life::generate(),
            },
        };
        Self {
            doc: Some(doc),
            version: origin.version().or_else(|| stored.and_then(|r| r.version)),
            life: Some(life),
            members: stored.map(|r| r.members.clone()).unwrap_or_default(),
        }
    }

    /// The tombstone a delete from `origin` leaves: no document, no life, no memberships, and
    /// the version (the event's, or the one last stored), so that a late older event cannot
    /// bring the record back, whether the API or an event deleted it.
    pub fn deleted(&self, origin: Origin) -> Self {
        Self {
            doc: None,
            version: origin.version().or(self.version),
            life: None,
            members: BTreeMap::new(),
        }
    }

    /// The life of the tenant this record is, as a membership begun now would record it: the
    /// current life when live, [`Life::first`] when it never existed, `None` when deleted.
    pub fn tenant_life(record: Option<&Self>) -> Option<Life> {
        match record {
            None => Some(Life::first()),
            Some(r) if r.is_live() => r.life.clone(),
            Some(_) => None,
        }
    }

    /// Sets a user's membership stamps to `tenants`, each with its tenant's current life
    /// (`tenant_lives`, as [`Self::tenant_life`] gives it). A membership whose tenant is still
    /// the one it began in keeps its stamp; any other gets a new life, so tokens of an earlier
    /// membership never work again.
    pub fn with_members(mut self, tenants: &[(TenantId, Option<Life>)]) -> Self {
        let previous = std::mem::take(&mut self.members);
        for (tenant, tenant_life) in tenants {
            let kept = previous
                .get(tenant.as_str())
                .filter(|stamp| stamp.tenant.is_some() && &stamp.tenant == tenant_life);
            let stamp = kept.cloned().unwrap_or_else(|| MemberStamp {
                life: Life::generate(),
                tenant: tenant_life.clone(),
            });
            self.members.insert(tenant.as_str().to_owned(), stamp);
        }
        self
    }

    /// The membership in `tenant`, when it is one of the tenant's current life (`tenant` being
    /// that tenant's record).
    pub fn membership_in(&self, tenant_id: &TenantId, tenant: &Self) -> Option<&MemberStamp> {
        let stamp = self.members.get(tenant_id.as_str())?;
        let current = tenant.life.as_ref().filter(|_| tenant.is_live())?;
        (self.is_live() && stamp.tenant.as_ref() == Some(current)).then_some(stamp)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const API: Origin = Origin::Api;

    fn event(version: u64) -> Origin {
        Origin::Event { version }
    }

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn a_life_lasts_until_the_delete_and_never_comes_back() {
        let first = DirectoryRecord::upserted(None, json!({}), API);
        assert_eq!(first.life, Some(Life::first()));
        let updated = DirectoryRecord::upserted(Some(&first), json!({"n": 1}), API);
        assert_eq!(updated.life, first.life, "an update keeps the life");
        let tombstone = updated.deleted(API);
        assert_eq!(
            (tombstone.doc.as_ref(), tombstone.life.as_ref()),
            (None, None)
        );
        let again = DirectoryRecord::upserted(Some(&tombstone), json!({}), API);
        assert!(again.life.is_some() && again.life != first.life);
    }

    #[test]
    fn a_tombstone_refuses_events_up_to_its_version_and_a_live_record_older_ones() {
        let live = DirectoryRecord::upserted(None, json!({}), event(5));
        assert!(live.refuses(event(4)) && !live.refuses(event(5)) && !live.refuses(API));
        let api_deleted = live.deleted(API);
        assert_eq!(
            api_deleted.version,
            Some(5),
            "the API's tombstone keeps the version"
        );
        assert!(api_deleted.refuses(event(5)) && !api_deleted.refuses(event(6)));
    }

    #[test]
    fn a_membership_keeps_its_life_only_while_its_tenant_does() {
        let tenant = DirectoryRecord::upserted(None, json!({}), API);
        let lives = [(acme(), DirectoryRecord::tenant_life(Some(&tenant)))];
        let user = DirectoryRecord::upserted(None, json!({}), API).with_members(&lives);
        let stamp = user.membership_in(&acme(), &tenant).unwrap().clone();
        let same = user.clone().with_members(&lives);
        assert_eq!(same.membership_in(&acme(), &tenant), Some(&stamp));

        let reborn = DirectoryRecord::upserted(Some(&tenant.deleted(API)), json!({}), API);
        assert_eq!(
            user.membership_in(&acme(), &reborn),
            None,
            "a new tenant, no member"
        );
        let rejoined = user.with_members(&[(acme(), reborn.life.clone())]);
        let new_stamp = rejoined.membership_in(&acme(), &reborn).unwrap();
        assert_ne!(new_stamp.life, stamp.life, "old tokens stay dead");
    }

    #[test]
    fn a_membership_recorded_before_its_tenant_exists_belongs_to_its_first_life() {
        let early = [(acme(), DirectoryRecord::tenant_life(None))];
        let user = DirectoryRecord::upserted(None, json!({}), event(1)).with_members(&early);
        let tenant = DirectoryRecord::upserted(None, json!({}), event(1));
        assert!(user.membership_in(&acme(), &tenant).is_some());
        let deleted = tenant.deleted(API);
        let void = [(acme(), DirectoryRecord::tenant_life(Some(&deleted)))];
        let late = user.with_members(&void);
        let reborn = DirectoryRecord::upserted(Some(&deleted), json!({}), API);
        assert!(late.membership_in(&acme(), &reborn).is_none());
    }
}
