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

use super::directory::KeyClaim;
use super::ids::{TenantId, UserId};
use super::rules::excerpt;
use super::secret::random_base62;
use super::time::Timestamp;

/// Where a directory write comes from, which decides whether a newer state may refuse it
/// (see [`DirectoryRecord::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The management API: applies as it arrives, and stamps the next version.
    Api,
    /// A provisioning event: applies only when strictly newer than the stored version, and a
    /// delete leaves a tombstone so that an older upsert arriving later cannot bring it back.
    Event { version: u64 },
}

impl Origin {
    pub fn version(self) -> Option<u64> {
        match self {
            Self::Api => None,
            Self::Event { version } => Some(version),
        }
    }
}

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
            (Self::Membership, Some(user)) => not_a_member(user, tenant),
            _ => format!("Tenant {} not found", excerpt(tenant.as_str())),
        }
    }
}

/// What a 404 says of a user who is not a member of a tenant (each id cut to an excerpt).
pub fn not_a_member(user: &UserId, tenant: &TenantId) -> String {
    let (user, tenant) = (excerpt(user.as_str()), excerpt(tenant.as_str()));
    format!("User {user} is not a member of tenant {tenant}")
}

impl TokenLives {
    /// The lives a token created now gets in the tenant `tenant_id` (its record `tenant`) and,
    /// for a personal token, as the member whose record is `user` (`Some(None)`: no such user).
    pub fn of<D>(
        tenant_id: &TenantId,
        tenant: Option<&DirectoryRecord<D>>,
        user: Option<Option<&DirectoryRecord<D>>>,
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
    ///
    /// A token stored before tokens kept their lives holds none (every token made since holds
    /// its tenant's, and a personal token its membership's, whenever the directory has them):
    /// it works while its tenant lives and, for a personal token, while its user is a member
    /// there, as it did when it was made. Its tenant's or membership's end still ends it (their
    /// cascades delete it too).
    pub fn check<D>(
        &self,
        tenant_id: &TenantId,
        tenant: Option<&DirectoryRecord<D>>,
        user: Option<Option<&DirectoryRecord<D>>>,
    ) -> Result<(), Absent> {
        let made_before_lives = self.tenant.is_none() && self.membership.is_none();
        let tenant = tenant
            .filter(|t| t.is_live() && (t.life == self.tenant || made_before_lives))
            .ok_or(Absent::Tenant)?;
        let Some(user) = user else {
            return Ok(());
        };
        let stamp = user.and_then(|u| u.membership_in(tenant_id, tenant));
        match (stamp, &self.membership) {
            (Some(stamp), Some(life)) if &stamp.life == life => Ok(()),
            (Some(_), None) if made_before_lives => Ok(()),
            _ => Err(Absent::Membership),
        }
    }
}

/// The highest `version` an event may carry: 2^53 - 1, the largest integer every JSON parser
/// reads exactly. So no event can put an entity out of reach of every later one by a version
/// no producer could pass; the API, which stamps the next version, still can.
pub const MAX_VERSION: u64 = (1 << 53) - 1;

/// What a write from an event does to the record it meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Newer than the record (or the API's): written.
    Write,
    /// The version the record already holds, with the same content: a redelivery. Nothing is
    /// written, but what follows the write (a cascade) runs again, so a retry finishes it.
    Repeat,
    /// Older than the record: a newer state stands; acknowledged, nothing written.
    Superseded,
}

/// Two events of one version that say different things: refused, so that neither undoes the
/// other on a redelivery.
#[derive(Debug)]
pub struct VersionClash(pub u64);

/// A directory record as stored: the document (`None` on a tombstone), the version of the
/// write that last changed it, its life while it is live and, for a user, each membership's
/// stamp. The document is as stored (JSON) by default; the store port carries it typed
/// (see [`super::document`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectoryRecord<D = Value> {
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub doc: Option<D>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<Life>,
    /// Keyed by tenant id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, MemberStamp>,
    /// A tombstone of an id that never held anything (an event deleted it before any upsert):
    /// it keeps its version, so an older upsert stays refused, and blocks nothing else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vacant: bool,
    /// When the live record came into being (in its current life) and when it was last
    /// written; see [`DirectoryRecord::stamped`]. Absent on records written before these were
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Timestamp>,
}

fn none<D>() -> Option<D> {
    None
}

/// The stored revision of a directory record, whether the record was live in it, and the key
/// it claimed (a role's or permission's); a write names the one it read, so that a store knows
/// what the write changes: its count of live records, the key claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub number: u64,
    pub live: bool,
    pub claim: Option<KeyClaim>,
}

impl<D> DirectoryRecord<D> {
    /// The same record with `f` of its document.
    pub fn map_doc<E, X>(self, f: impl FnOnce(D) -> Result<E, X>) -> Result<DirectoryRecord<E>, X> {
        Ok(DirectoryRecord {
            doc: self.doc.map(f).transpose()?,
            version: self.version,
            life: self.life,
            members: self.members,
            vacant: self.vacant,
            created: self.created,
            updated: self.updated,
        })
    }

    /// This record as written at `at` over `before`: written then, and created then unless
    /// `before` is the same life of it (a tombstone keeps no creation time).
    pub fn stamped(mut self, before: Option<&Self>, at: Timestamp) -> Self {
        self.updated = Some(at);
        self.created = match before {
            _ if !self.is_live() => None,
            Some(b) if b.is_live() && b.life == self.life => b.created,
            _ => Some(at),
        };
        self
    }

    pub fn is_live(&self) -> bool {
        self.doc.is_some()
    }

    /// The life of a live record; `None` for a tombstone.
    pub fn current_life(&self) -> Option<&Life> {
        self.life.as_ref().filter(|_| self.is_live())
    }

    /// Whether this tombstone is of something that existed (so its id stays retired, for a
    /// role or permission). A live record is not a tombstone.
    pub fn is_retired(&self) -> bool {
        !self.is_live() && !self.vacant
    }

    /// What a write from `origin` that leaves `doc` (`None`: a delete) does to `stored`.
    /// The API's writes always apply (and stamp the next version); an event's apply only when
    /// strictly newer than the stored version; an equal version is a redelivery when it says
    /// the same, else a clash.
    pub fn verdict(
        stored: Option<&Self>,
        doc: Option<&D>,
        origin: Origin,
    ) -> Result<Verdict, VersionClash>
    where
        D: PartialEq,
    {
        let (Origin::Event { version }, Some(record)) = (origin, stored) else {
            return Ok(Verdict::Write);
        };
        let held = record.version.unwrap_or(0);
        Ok(match version.cmp(&held) {
            std::cmp::Ordering::Greater => Verdict::Write,
            std::cmp::Ordering::Less => Verdict::Superseded,
            std::cmp::Ordering::Equal if record.doc.as_ref() == doc => Verdict::Repeat,
            std::cmp::Ordering::Equal => return Err(VersionClash(version)),
        })
    }

    /// The version a write from `origin` over `stored` leaves: the event's, or for the API
    /// the one after the stored one, so an event older than the API's write is refused.
    fn next_version(stored: Option<&Self>, origin: Origin) -> u64 {
        origin.version().unwrap_or_else(|| {
            stored
                .and_then(|r| r.version)
                .map_or(1, |v| v.saturating_add(1))
        })
    }

    /// The record after `doc` is written over `stored`: a live record keeps its life, a
    /// tombstone's successor gets a new one, and a first creation (or one over a vacant
    /// tombstone) gets [`Life::first`].
    pub fn upserted(stored: Option<&Self>, doc: D, origin: Origin) -> Self {
        let life = match stored {
            None => Life::first(),
            Some(record) if record.vacant => Life::first(),
            Some(record) => match (&record.life, record.is_live()) {
                (Some(life), true) => life.clone(),
                _ => Life::generate(),
            },
        };
        Self {
            doc: Some(doc),
            version: Some(Self::next_version(stored, origin)),
            life: Some(life),
            members: stored.map(|r| r.members.clone()).unwrap_or_default(),
            vacant: false,
            created: stored.and_then(|r| r.created),
            updated: stored.and_then(|r| r.updated),
        }
    }

    /// The tombstone a delete from `origin` leaves over `stored`: no document, no life, no
    /// memberships, and the version, so that a late older event cannot bring the record back,
    /// whether the API or an event deleted it.
    pub fn deleted(stored: Option<&Self>, origin: Origin) -> Self {
        Self {
            doc: None,
            version: Some(Self::next_version(stored, origin)),
            life: None,
            members: BTreeMap::new(),
            vacant: stored.is_none_or(|r| r.vacant),
            created: None,
            updated: stored.and_then(|r| r.updated),
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

    /// The tenants of the user's void memberships: those whose stamp names a life of the
    /// tenant other than the one its record (`tenant_record`) gives it now, because its deletion,
    /// or its creation again, came after the membership began. Such a membership is one the
    /// tenant's cascade did not reach (it raced the deletion, or the member index lagged).
    pub fn void_members<'r>(
        &self,
        tenant_record: impl Fn(&str) -> Option<&'r Self>,
    ) -> Vec<TenantId>
    where
        D: 'r,
    {
        self.members
            .iter()
            .filter(|(tenant, stamp)| stamp.tenant != Self::tenant_life(tenant_record(tenant)))
            .filter_map(|(tenant, _)| TenantId::parse(tenant).ok())
            .collect()
    }

    /// The membership in `tenant`, when it is one of the tenant's current life (`tenant` being
    /// that tenant's record).
    pub fn membership_in(&self, tenant_id: &TenantId, tenant: &Self) -> Option<&MemberStamp> {
        let stamp = self.members.get(tenant_id.as_str())?;
        let current = tenant.current_life()?;
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
        let tombstone = DirectoryRecord::deleted(Some(&updated), API);
        assert_eq!(
            (tombstone.doc.as_ref(), tombstone.life.as_ref()),
            (None, None)
        );
        let again = DirectoryRecord::upserted(Some(&tombstone), json!({}), API);
        assert!(again.life.is_some() && again.life != first.life);
    }

    #[test]
    fn only_a_strictly_newer_event_writes_and_an_equal_one_must_say_the_same() {
        let doc = json!({"name": "a"});
        let live = DirectoryRecord::upserted(None, doc.clone(), event(5));
        let verdict = |d: Option<&Value>, o| DirectoryRecord::verdict(Some(&live), d, o);
        assert_eq!(verdict(Some(&doc), event(6)).unwrap(), Verdict::Write);
        assert_eq!(verdict(Some(&doc), event(4)).unwrap(), Verdict::Superseded);
        assert_eq!(verdict(Some(&doc), event(5)).unwrap(), Verdict::Repeat);
        assert!(verdict(Some(&json!({"name": "b"})), event(5)).is_err());
        assert!(
            verdict(None, event(5)).is_err(),
            "a delete of the same version"
        );
        assert_eq!(verdict(None, API).unwrap(), Verdict::Write);
    }

    #[test]
    fn the_api_stamps_the_next_version_so_older_events_stay_refused() {
        let created = DirectoryRecord::upserted(None, json!({}), API);
        assert_eq!(created.version, Some(1));
        let deleted = DirectoryRecord::deleted(Some(&created), API);
        assert_eq!(deleted.version, Some(2));
        let late = DirectoryRecord::verdict(Some(&deleted), Some(&json!({})), event(1));
        assert_eq!(late.unwrap(), Verdict::Superseded);
        let redelivered = DirectoryRecord::verdict(Some(&deleted), None, event(2));
        assert_eq!(redelivered.unwrap(), Verdict::Repeat);
    }

    #[test]
    fn a_delete_of_what_never_existed_blocks_nothing_newer() {
        let vacant = DirectoryRecord::deleted(None, event(3));
        assert!(vacant.vacant && !vacant.is_retired());
        let retired = DirectoryRecord::deleted(Some(&vacant), event(4));
        assert!(retired.vacant, "still nothing ever lived there");
        let live = DirectoryRecord::upserted(Some(&vacant), json!({}), event(4));
        assert_eq!(live.life, Some(Life::first()));
        assert!(DirectoryRecord::deleted(Some(&live), API).is_retired());
    }

    #[test]
    fn a_membership_keeps_its_life_only_while_its_tenant_does() {
        let tenant = DirectoryRecord::upserted(None, json!({}), API);
        let lives = [(acme(), DirectoryRecord::tenant_life(Some(&tenant)))];
        let user = DirectoryRecord::upserted(None, json!({}), API).with_members(&lives);
        let stamp = user.membership_in(&acme(), &tenant).unwrap().clone();
        let same = user.clone().with_members(&lives);
        assert_eq!(same.membership_in(&acme(), &tenant), Some(&stamp));

        let gone = DirectoryRecord::deleted(Some(&tenant), API);
        let reborn = DirectoryRecord::upserted(Some(&gone), json!({}), API);
        assert_eq!(
            user.membership_in(&acme(), &reborn),
            None,
            "a new tenant, no member"
        );
        let rejoined = user.with_members(&[(acme(), reborn.life.clone())]);
        let new_stamp = rejoined.membership_in(&acme(), &reborn).unwrap();
        assert_ne!(new_stamp.life, stamp.life, "old tokens stay dead");
    }

    /// A token stored before tokens kept their lives (none recorded) works while its tenant
    /// lives and its user is a member there, and ends with either, as it did when it was made.
    #[test]
    fn a_token_from_before_lives_works_while_its_tenant_and_membership_do() {
        let tenant = DirectoryRecord::upserted(None, json!({}), API);
        let lives = [(acme(), DirectoryRecord::tenant_life(Some(&tenant)))];
        let member = DirectoryRecord::upserted(None, json!({}), API).with_members(&lives);
        let stranger = DirectoryRecord::upserted(None, json!({}), API);
        let legacy = TokenLives::default();
        assert_eq!(legacy.check(&acme(), Some(&tenant), None), Ok(()));
        assert_eq!(
            legacy.check(&acme(), Some(&tenant), Some(Some(&member))),
            Ok(())
        );
        let not_member = legacy.check(&acme(), Some(&tenant), Some(Some(&stranger)));
        assert_eq!(not_member, Err(Absent::Membership));
        let gone = DirectoryRecord::deleted(Some(&tenant), API);
        assert_eq!(
            legacy.check(&acme(), Some(&gone), None),
            Err(Absent::Tenant)
        );
        // A token made now holds its lives, and a new life of its tenant ends it.
        let made = TokenLives::of(&acme(), Some(&tenant), None).unwrap();
        let reborn = DirectoryRecord::upserted(Some(&gone), json!({}), API);
        assert_eq!(
            made.check(&acme(), Some(&reborn), None),
            Err(Absent::Tenant)
        );
    }

    #[test]
    fn a_membership_recorded_before_its_tenant_exists_belongs_to_its_first_life() {
        let early = [(acme(), DirectoryRecord::<Value>::tenant_life(None))];
        let user = DirectoryRecord::upserted(None, json!({}), event(1)).with_members(&early);
        let tenant = DirectoryRecord::upserted(None, json!({}), event(1));
        assert!(user.membership_in(&acme(), &tenant).is_some());
        let deleted = DirectoryRecord::deleted(Some(&tenant), API);
        let void = [(acme(), DirectoryRecord::tenant_life(Some(&deleted)))];
        let late = user.with_members(&void);
        let reborn = DirectoryRecord::upserted(Some(&deleted), json!({}), API);
        assert!(late.membership_in(&acme(), &reborn).is_none());
    }

    #[test]
    fn a_record_is_created_once_per_life_and_updated_by_every_write() {
        let at = Timestamp::from_millis;
        let write = |before: Option<&DirectoryRecord>, doc: Option<Value>, ms: i64| match doc {
            Some(doc) => DirectoryRecord::upserted(before, doc, API).stamped(before, at(ms)),
            None => DirectoryRecord::deleted(before, API).stamped(before, at(ms)),
        };
        let first = write(None, Some(json!({})), 10);
        assert_eq!((first.created, first.updated), (Some(at(10)), Some(at(10))));
        let changed = write(Some(&first), Some(json!({"n": 1})), 20);
        assert_eq!(
            (changed.created, changed.updated),
            (Some(at(10)), Some(at(20)))
        );
        let gone = write(Some(&changed), None, 30);
        assert_eq!((gone.created, gone.updated), (None, Some(at(30))));
        let again = write(Some(&gone), Some(json!({})), 40);
        assert_eq!((again.created, again.updated), (Some(at(40)), Some(at(40))));
        let older = DirectoryRecord {
            created: None,
            ..first.clone()
        };
        let kept = write(Some(&older), Some(json!({"n": 2})), 50);
        assert_eq!(
            kept.created, None,
            "a record from before stamps learns no false creation"
        );
    }
}
