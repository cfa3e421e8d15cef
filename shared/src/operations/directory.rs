//! The directory: permissions, roles, tenants and users with their memberships, written by
//! the API and by provisioning events alike.
//!
//! Every write reads the record, makes its successor by the rules in [`crate::domain::lives`]
//! and writes it back only if nobody wrote it in between, retrying otherwise; so no update is
//! lost and nothing deleted is written back. The API and events write through the same
//! changes ([`TenantChange`], [`UserChange`], ...), so an event means what the API's `PUT`
//! means; an event writes only when strictly newer than the stored version.
//!
//! Deleting a tenant or a user, or ending a membership, voids their tokens at once through the
//! lives the tokens record. The cascade that follows ([`Directory::tidy`]) retires exactly the
//! tokens that no longer work (revokes their JWTs, deletes them), whatever wrote the change. It
//! runs after every delete, repeated or not, and after every write of a user, even one that
//! changed nothing: so a redelivered event or a repeated `DELETE` finishes what a failure cut
//! short, and a cascade racing a re-creation never ends a token that works.

use crate::domain::branding::Branding;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::domain::audit::{Attribution, AuditEvent, Severity, Target};
use crate::domain::configuration::{TOKEN_SETTINGS_ID, TokenSettings};
use crate::domain::directory::{
    EntityKind, Membership, Origin, Permission, PermissionChange, Role, RoleChange, Tenant,
    TenantChange, User, UserChange,
};
use crate::domain::document::{Document, Record, Stamped, WrongKind};
use crate::domain::lives::{DirectoryRecord, Life, Revision, Verdict, VersionClash, not_a_member};
use crate::domain::rules::excerpt;
use crate::domain::{ApiToken, GrantId, TenantId, UserId};
use crate::error::{Error, Result};
use crate::machinery::Kept;
use crate::ports::{DirectoryStore, TokenStore};

use super::{Auditor, Retirement, check_permission_ids, check_role_ids, named_anew, tenant_life};

/// Conditional writes tried before a write gives up with a 409 the caller may retry.
const WRITE_ATTEMPTS: u32 = 8;

/// The longest the public page and configuration wait for the branding.
pub const BRANDING_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);
/// How long a process serves the branding it read without reading it again (its own changes
/// show at once; another process's within this).
pub const BRANDING_KEPT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Directory<'a> {
    pub(crate) directory: &'a dyn DirectoryStore,
    /// The branding as last read or written here, for [`BRANDING_KEPT`].
    pub(crate) branding: &'a Kept<Branding>,
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) retirement: Retirement<'a>,
    pub(crate) audit: Auditor<'a>,
}

/// How one read-and-conditional-write went.
enum Attempt {
    Written(Box<Changed>),
    /// The change left the record as it was (a newer version, or nothing to do).
    Left,
    /// Another write came in between.
    Lost,
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(5 << attempt.min(5))).await;
}

fn busy(kind: EntityKind, id: &str) -> Error {
    Error::Conflict(format!(
        "{} {id} is being changed by other requests; try again",
        kind_title(kind)
    ))
}

/// The one tenant whose membership a user's write changes (joined, left, or its roles), if
/// exactly one: the write is that tenant's event too.
fn only_tenant_changed(before: Option<&Record>, after: &Record) -> Option<TenantId> {
    let memberships = |record: Option<&Record>| match record.and_then(|r| r.doc.as_ref()) {
        Some(Document::User(user)) => user.tenants.clone(),
        _ => Vec::new(),
    };
    let (was, is) = (memberships(before), memberships(Some(after)));
    let changed = |of: &[Membership], other: &[Membership]| -> Vec<TenantId> {
        of.iter()
            .filter(|m| !other.contains(m))
            .map(|m| m.tenant_id.clone())
            .collect()
    };
    let mut tenants = changed(&was, &is);
    tenants.extend(changed(&is, &was));
    tenants.sort();
    tenants.dedup();
    match tenants.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Which part of a listing to read: page `page` (from 0) of `limit` records.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub page: u64,
    pub limit: usize,
}

impl Window {
    /// The whole listing.
    pub const ALL: Self = Self {
        page: 0,
        limit: usize::MAX,
    };

    /// How many records come before the page.
    fn skip(self) -> u64 {
        self.page.saturating_mul(self.limit as u64)
    }
}

/// A page of a listing, and how many records the whole listing holds.
pub struct Listing<T> {
    pub items: Vec<Stamped<T>>,
    pub total: u64,
}

/// Tenant records by id, as read for one read or write of users (`None`: none under the id).
type TenantRecords = HashMap<String, Option<Record>>;

/// A record as read and as written by one change.
struct Changed {
    before: Option<Record>,
    after: Record,
}

fn kind_title(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Permission => "Permission",
        EntityKind::Role => "Role",
        EntityKind::Tenant => "Tenant",
        EntityKind::User => "User",
        EntityKind::Configuration => "Configuration",
    }
}

/// Every live record of a kind, as `T` with its stamps.
pub(super) async fn stamped_all<T: TryFrom<Document, Error = WrongKind>>(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
) -> Result<Vec<Stamped<T>>> {
    let mut all = Vec::new();
    for record in directory.entities(kind).await? {
        all.extend(Stamped::of(&record)?);
    }
    Ok(all)
}

/// Every live document of a kind, as `T`.
pub(super) async fn all<T: TryFrom<Document, Error = WrongKind>>(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
) -> Result<Vec<T>> {
    let all = stamped_all(directory, kind).await?;
    Ok(all.into_iter().map(|s| s.doc).collect())
}

/// An event whose version the record holds already, saying something else: refused (to the
/// dead-letter queue), so that neither undoes the other on a redelivery.
fn clash(kind: EntityKind, id: &str) -> impl Fn(VersionClash) -> Error {
    move |VersionClash(version)| {
        Error::Conflict(format!(
            "{} {}: version {version} was already applied with other content",
            kind_title(kind),
            excerpt(id)
        ))
    }
}

/// The successor of `stored` when `doc` is written from `origin`; `None` when the write must
/// yield to a newer version or repeats the stored one.
fn upsert(
    kind: EntityKind,
    id: &str,
    stored: Option<&Record>,
    doc: Document,
    origin: Origin,
) -> Result<Option<Record>> {
    let verdict = DirectoryRecord::verdict(stored, Some(&doc), origin).map_err(clash(kind, id))?;
    Ok((verdict == Verdict::Write).then(|| DirectoryRecord::upserted(stored, doc, origin)))
}

/// The tombstone a delete from `origin` leaves; `None` when it must yield to a newer version,
/// repeats the stored one, or when the API deletes what is not there (an event's delete leaves
/// its version even then, so that an older upsert arriving later is refused).
fn tombstone(
    kind: EntityKind,
    id: &str,
    stored: Option<&Record>,
    origin: Origin,
) -> Result<Option<Record>> {
    if origin == Origin::Api && !stored.is_some_and(DirectoryRecord::is_live) {
        return Ok(None);
    }
    let verdict = DirectoryRecord::verdict(stored, None, origin).map_err(clash(kind, id))?;
    Ok((verdict == Verdict::Write).then(|| DirectoryRecord::deleted(stored, origin)))
}

/// The document of a live record, as `T`.
/// The tenants a user's record holds a membership in (none for a tombstone, which keeps no
/// memberships).
fn member_tenants(record: Option<&Record>) -> Vec<TenantId> {
    record
        .map(|r| r.members.keys())
        .into_iter()
        .flatten()
        .filter_map(|id| TenantId::parse(id).ok())
        .collect()
}

/// `new`, when nothing lives under its id (the API's create); 409 otherwise, so that a repeated
/// or mistaken create never replaces what every JWT carrying the id is made of.
fn created<T: Clone>(stored: Option<T>, new: &T, kind: EntityKind, id: &str) -> Result<T> {
    match stored {
        Some(_) => Err(Error::Conflict(format!(
            "{} {} exists",
            kind_title(kind),
            excerpt(id)
        ))),
        None => Ok(new.clone()),
    }
}

/// The document of a live record with its stamps, as `T`.
fn stamped_of<T: TryFrom<Document, Error = WrongKind>>(
    record: Option<&Record>,
) -> Result<Option<Stamped<T>>> {
    Ok(record.map(Stamped::of).transpose()?.flatten())
}

fn doc_of<T: TryFrom<Document, Error = WrongKind>>(stored: Option<&Record>) -> Result<Option<T>> {
    Ok(stored
        .and_then(|r| r.doc.clone())
        .map(T::try_from)
        .transpose()?)
}

/// The live user `record` without its membership in `tenant`; `None` when it has none.
fn without_member(record: &Record, tenant: &TenantId) -> Result<Option<Record>> {
    let Some(mut doc) = doc_of::<User>(Some(record))? else {
        return Err(Error::internal("a live user record without a document"));
    };
    let listed = doc.tenants.iter().any(|m| &m.tenant_id == tenant);
    if !listed && !record.members.contains_key(tenant.as_str()) {
        return Ok(None);
    }
    doc.tenants.retain(|m| &m.tenant_id != tenant);
    let mut after = record.clone();
    after.doc = Some(doc.into());
    after.members.remove(tenant.as_str());
    Ok(Some(after))
}

impl Directory<'_> {
    /// Who acts, as the audit trail records it.
    #[must_use]
    pub fn by(mut self, by: Attribution) -> Self {
        self.audit.by = by;
        self
    }

    /// Reads the record, lets `change` make its successor (`None`: leave it as it is), and
    /// writes it back only if nobody wrote it in between; on a conflict, reads again.
    async fn change(
        &self,
        kind: EntityKind,
        id: &str,
        change: impl Fn(Option<&Record>) -> Result<Option<Record>>,
    ) -> Result<Option<Changed>> {
        for attempt in 0..WRITE_ATTEMPTS {
            match self.change_once(kind, id, &change).await? {
                Attempt::Written(changed) => return Ok(Some(*changed)),
                Attempt::Left => return Ok(None),
                Attempt::Lost => backoff(attempt).await,
            }
        }
        Err(busy(kind, id))
    }

    /// The record, if any, and the revision a conditional write of it must name.
    async fn read(&self, kind: EntityKind, id: &str) -> Result<(Option<Record>, Option<Revision>)> {
        Ok(match self.directory.record(kind, id).await? {
            Some((record, revision)) => (Some(record), Some(revision)),
            None => (None, None),
        })
    }

    /// One read and one conditional write.
    async fn change_once(
        &self,
        kind: EntityKind,
        id: &str,
        change: impl Fn(Option<&Record>) -> Result<Option<Record>>,
    ) -> Result<Attempt> {
        let (before, revision) = self.read(kind, id).await?;
        let Some(after) = change(before.as_ref())? else {
            return Ok(Attempt::Left);
        };
        Ok(
            match self.put(kind, id, before.as_ref(), after, revision).await? {
                Some(after) => Attempt::Written(Box::new(Changed { before, after })),
                None => Attempt::Lost,
            },
        )
    }

    /// Writes `after` over `before` (read at `revision`), stamped with the time of the write:
    /// the record as written, or `None` when another write came in between. A role's or
    /// permission's key is claimed in the same write (409 when it is held where it may not be
    /// shared).
    async fn put(
        &self,
        kind: EntityKind,
        id: &str,
        before: Option<&Record>,
        after: Record,
        revision: Option<Revision>,
    ) -> Result<Option<Record>> {
        // A write that changes nothing but its stamps (a repeated PUT) is no event.
        let same = before.is_some_and(|b| {
            (&b.doc, &b.life, &b.members) == (&after.doc, &after.life, &after.members)
        });
        let after = after.stamped(before, self.retirement.clock.now());
        let event = (!same).then(|| self.event(kind, id, before, &after));
        let written = (self.directory)
            .swap(kind, id, &after, revision, event.as_ref())
            .await?;
        Ok(written.then_some(after))
    }

    /// The event of writing `after` over `before`: a creation, a change or a deletion, in the
    /// log of the tenant concerned (a tenant's own, a tenant's role's).
    fn event(
        &self,
        kind: EntityKind,
        id: &str,
        before: Option<&Record>,
        after: &Record,
    ) -> AuditEvent {
        let was_live = before.is_some_and(DirectoryRecord::is_live);
        let (verb, severity) = match (was_live, after.is_live()) {
            // The vendor's settings always exist (their defaults until first written).
            _ if kind == EntityKind::Configuration => ("changed", Severity::High),
            (false, true) => ("created", Severity::Info),
            (true, false) | (false, false) => ("deleted", Severity::Medium),
            (true, true) => ("changed", Severity::Medium),
        };
        let doc = after.doc.as_ref().or(before.and_then(|b| b.doc.as_ref()));
        let tenant = match (kind, doc) {
            (EntityKind::Tenant, _) => TenantId::parse(id).ok(),
            (EntityKind::Role, Some(Document::Role(role))) => role.tenant_id.clone(),
            (EntityKind::User, _) => only_tenant_changed(before, after),
            _ => None,
        };
        let noun = match kind {
            EntityKind::Permission => "permission",
            EntityKind::Role => "role",
            EntityKind::Tenant => "tenant",
            EntityKind::User => "user",
            EntityKind::Configuration => "configuration",
        };
        let target = Target::new(noun, id);
        (self.audit).event(&format!("{noun}.{verb}"), severity, target, tenant)
    }

    /// The document of the live `kind` record `id`, as `T`.
    async fn stored<T: TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<T>> {
        let (record, _) = self.read(kind, id).await?;
        doc_of(record.as_ref())
    }

    /// The vendor's API-token settings (the defaults until changed).
    pub async fn token_settings(&self) -> Result<TokenSettings> {
        let settings = self.stored(EntityKind::Configuration, TOKEN_SETTINGS_ID);
        Ok(settings.await?.unwrap_or_default())
    }

    /// The portal's branding, for what anyone reads (the page, the public configuration): as
    /// kept for [`BRANDING_KEPT`], else read within [`BRANDING_BUDGET`], and the page's own
    /// look when the store cannot answer in time, so that those keep working without it (they
    /// need no store otherwise).
    pub async fn branding(&self) -> Branding {
        if let Some(kept) = self.branding.fresh() {
            return kept;
        }
        match tokio::time::timeout(BRANDING_BUDGET, self.token_settings()).await {
            Ok(Ok(settings)) => {
                self.branding.keep(settings.branding.clone());
                settings.branding
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the branding could not be read: shown without it");
                Branding::default()
            }
            Err(_) => {
                tracing::warn!("the branding was not read in time: shown without it");
                Branding::default()
            }
        }
    }

    /// Applies `change` to the settings as read inside one conditional write.
    pub async fn change_token_settings(
        &self,
        change: impl Fn(TokenSettings) -> Result<TokenSettings>,
    ) -> Result<TokenSettings> {
        let (kind, id) = (EntityKind::Configuration, TOKEN_SETTINGS_ID);
        let changed = self
            .change(kind, id, |stored| {
                let current = doc_of(stored)?.unwrap_or_default();
                let doc = Document::from(change(current)?);
                Ok(Some(DirectoryRecord::upserted(stored, doc, Origin::Api)))
            })
            .await?;
        let settings: TokenSettings = match changed.and_then(|c| c.after.doc) {
            Some(doc) => doc.try_into()?,
            None => self.token_settings().await?,
        };
        self.branding.keep(settings.branding.clone());
        Ok(settings)
    }

    pub async fn permissions(&self) -> Result<Vec<Stamped<Permission>>> {
        stamped_all(self.directory, EntityKind::Permission).await
    }

    pub async fn roles(&self) -> Result<Vec<Stamped<Role>>> {
        stamped_all(self.directory, EntityKind::Role).await
    }

    /// The live roles of `role_ids` and the live permissions they hold, read by id (two
    /// batches): what a user's view names, at a cost that follows the user, not the directory.
    pub async fn held_grants(
        &self,
        role_ids: &[&GrantId],
    ) -> Result<(Vec<Stamped<Role>>, Vec<Stamped<Permission>>)> {
        let mut ids: Vec<String> = role_ids.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        let roles = self.live::<Role>(EntityKind::Role, &ids, |_| true).await?;
        let mut ids: Vec<String> = roles
            .iter()
            .flat_map(|r| r.permission_ids.iter().map(ToString::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        let permissions = self.live(EntityKind::Permission, &ids, |_| true).await?;
        Ok((roles, permissions))
    }

    /// The user, if they exist (without void memberships).
    pub async fn user(&self, id: &UserId) -> Result<Option<Stamped<User>>> {
        let (record, _) = self.read(EntityKind::User, id.as_str()).await?;
        let tenants = &mut TenantRecords::new();
        let record = self.pruned(record.into_iter().collect(), tenants).await?;
        stamped_of(record.first())
    }

    /// User `records` without their void memberships (see [`DirectoryRecord::void_members`]),
    /// their tenants read in one batch (those not in `tenants` already, which keeps them).
    async fn pruned(
        &self,
        records: Vec<Record>,
        tenants: &mut TenantRecords,
    ) -> Result<Vec<Record>> {
        let ids = records.iter().flat_map(|r| r.members.keys().cloned());
        self.read_tenants(ids, tenants).await?;
        let tenant = |id: &str| tenants.get(id).and_then(Option::as_ref);
        let mut pruned = Vec::with_capacity(records.len());
        for mut record in records {
            for void in record.void_members(tenant) {
                if let Some(without) = without_member(&record, &void)? {
                    record = without;
                }
            }
            pruned.push(record);
        }
        Ok(pruned)
    }

    /// Reads the tenant records of `ids` that `read` does not hold yet, in one batch, into it.
    async fn read_tenants(
        &self,
        ids: impl IntoIterator<Item = String>,
        read: &mut TenantRecords,
    ) -> Result<()> {
        let mut missing: Vec<String> = ids
            .into_iter()
            .filter(|id| !read.contains_key(id))
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<(EntityKind, String)> = missing
            .iter()
            .map(|id| (EntityKind::Tenant, id.clone()))
            .collect();
        let found = self.directory.records(&keys).await?;
        read.extend(missing.into_iter().zip(found));
        Ok(())
    }

    /// Every tenant, by id.
    pub async fn tenants(&self) -> Result<Vec<Stamped<Tenant>>> {
        let all = self.page(EntityKind::Tenant, Window::ALL).await?;
        Ok(all.items)
    }

    /// A page of the tenants (`Tenant`) or users (`User`) by id: read from the listing's keys
    /// and the page's own records, so the cost follows the page, not the directory.
    pub async fn page<T: TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        window: Window,
    ) -> Result<Listing<T>> {
        let listed = self
            .directory
            .listed(kind, window.skip(), window.limit)
            .await?;
        let items = self.live(kind, &listed.ids, |_| true).await?;
        Ok(Listing {
            items,
            total: listed.total,
        })
    }

    /// A page of a tenant's members by id: found through the member index (so the cost follows
    /// the tenant's members, not the directory), each page's users read and kept only while a
    /// member.
    pub async fn members(&self, tenant: &TenantId, window: Window) -> Result<Listing<User>> {
        let mut ids: Vec<String> = self
            .directory
            .members_of(tenant)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        let skip = usize::try_from(window.skip()).unwrap_or(usize::MAX);
        let page: Vec<String> = ids.iter().skip(skip).take(window.limit).cloned().collect();
        let member = |user: &Stamped<User>| user.roles_in(tenant).is_some();
        let items = self.live(EntityKind::User, &page, member).await?;
        // The index may still list users whose membership ended (the index follows a write by
        // a moment) or is void: those found on the page are not counted.
        let stale = page.len() - items.len();
        Ok(Listing {
            items,
            total: (ids.len() - stale) as u64,
        })
    }

    /// The live records of `ids`, in their order, that `keep` keeps (users without their void
    /// memberships).
    async fn live<T: TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        ids: &[String],
        keep: impl Fn(&Stamped<T>) -> bool,
    ) -> Result<Vec<Stamped<T>>> {
        let keys: Vec<(EntityKind, String)> = ids.iter().map(|id| (kind, id.clone())).collect();
        let mut records: Vec<Record> = self
            .directory
            .records(&keys)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if kind == EntityKind::User {
            records = self.pruned(records, &mut TenantRecords::new()).await?;
        }
        let mut live = Vec::with_capacity(records.len());
        for record in &records {
            live.extend(Stamped::<T>::of(record)?.filter(&keep));
        }
        Ok(live)
    }

    /// The live `kind` record `id` with its stamps.
    pub async fn stamped<T: TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<Stamped<T>>> {
        let (record, _) = self.read(kind, id).await?;
        stamped_of(record.as_ref())
    }

    pub async fn role(&self, id: &str) -> Result<Role> {
        let role = self.stored(EntityKind::Role, id).await?;
        role.ok_or_else(|| Error::not_found("Role", id))
    }

    /// Creates a permission (the API's create); an id in use, or a key held by another
    /// permission, is a conflict.
    pub async fn put_permission(
        &self,
        permission: &Permission,
        origin: Origin,
    ) -> Result<Option<Stamped<Permission>>> {
        let id = permission.id.as_str();
        self.put_grant(
            EntityKind::Permission,
            id,
            |stored: Option<Permission>| created(stored, permission, EntityKind::Permission, id),
            origin,
        )
        .await
    }

    /// Changes a permission by `change` (creating it if need be), as a `permission.upserted`
    /// event does.
    pub async fn upsert_permission(
        &self,
        id: &str,
        change: &PermissionChange,
        origin: Origin,
    ) -> Result<bool> {
        let make = |stored: Option<Permission>| Ok(change.apply(id, stored)?);
        let written = self.put_grant(EntityKind::Permission, id, make, origin);
        Ok(written.await?.is_some())
    }

    /// Creates a role (the API's create); every permission id must exist (404), and the id and
    /// the key be free (409).
    pub async fn put_role(&self, role: &Role, origin: Origin) -> Result<Option<Stamped<Role>>> {
        self.check_role(role, None).await?;
        let id = role.id.as_str();
        let written = self
            .put_grant(
                EntityKind::Role,
                id,
                |stored: Option<Role>| created(stored, role, EntityKind::Role, id),
                origin,
            )
            .await?;
        // A tenant's role whose tenant was deleted while it was written: the deletion's cascade
        // may have looked before it landed, so it is deleted here (one of the two sees it).
        if let Some(tenant) = &role.tenant_id {
            let life = tenant_life(self.directory, tenant).await?;
            if life != role.tenant_life {
                self.delete_grant(EntityKind::Role, id, Origin::Api).await?;
                return Err(Error::not_found("Tenant", tenant.as_str()));
            }
        }
        Ok(written)
    }

    /// Changes a role by `change` (creating it if need be), as a `role.upserted` event does.
    pub async fn upsert_role(&self, id: &str, change: &RoleChange, origin: Origin) -> Result<bool> {
        let make = |stored: Option<Role>| Ok(change.apply(id, stored)?);
        let stored: Option<Role> = self.stored(EntityKind::Role, id).await?;
        self.check_role(&make(stored.clone())?, stored.as_ref())
            .await?;
        let written = self.put_grant(EntityKind::Role, id, make, origin).await?;
        Ok(written.is_some())
    }

    /// Changes a role by `patch`, applied to the role as stored when the write lands (so two
    /// patches of different fields both hold).
    pub async fn patch_role(
        &self,
        id: &str,
        patch: impl Fn(Role) -> Result<Role>,
    ) -> Result<Stamped<Role>> {
        let stored = self.role(id).await?;
        self.check_role(&patch(stored.clone())?, Some(&stored))
            .await?;
        self.patch(EntityKind::Role, id, patch).await
    }

    /// Changes a permission by `patch`, as [`Self::patch_role`] does a role.
    pub async fn patch_permission(
        &self,
        id: &str,
        patch: impl Fn(Permission) -> Result<Permission>,
    ) -> Result<Stamped<Permission>> {
        self.patch(EntityKind::Permission, id, patch).await
    }

    /// Changes a tenant by `patch`, applied to the tenant as stored when the write lands; 404
    /// when there is none.
    pub async fn patch_tenant(
        &self,
        id: &TenantId,
        patch: impl Fn(Tenant) -> Result<Tenant>,
    ) -> Result<Stamped<Tenant>> {
        self.patch(EntityKind::Tenant, id.as_str(), patch).await
    }

    /// Writes `patch` of the live `kind` record `id` as it is stored when the write lands;
    /// 404 when there is none.
    async fn patch<T: Into<Document> + TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        id: &str,
        patch: impl Fn(T) -> Result<T>,
    ) -> Result<Stamped<T>> {
        let missing = || Error::not_found(kind_title(kind), id);
        let changed = self
            .change(kind, id, |stored| {
                let doc = doc_of(stored)?.ok_or_else(missing)?;
                upsert(kind, id, stored, patch(doc)?.into(), Origin::Api)
            })
            .await?;
        stamped_of(changed.as_ref().map(|c| &c.after))?.ok_or_else(missing)
    }

    /// The permissions a role names anew (beside those of the role as `stored`) exist (404).
    /// One deleted since it was named stays, granting nothing, so that a later change of the
    /// role is not refused for it. (Its key is checked as it is written.)
    async fn check_role(&self, role: &Role, stored: Option<&Role>) -> Result<()> {
        let held = stored.map_or(&[][..], |r| r.permission_ids.as_slice());
        check_permission_ids(self.directory, &named_anew(&role.permission_ids, held)).await
    }

    /// The roles listed for `tenant` (the vendor's and the tenant's own, of its current life),
    /// or, for `None`, the vendor's.
    pub async fn roles_for(&self, tenant: Option<&TenantId>) -> Result<Vec<Stamped<Role>>> {
        let roles = self.roles().await?;
        let Some(tenant) = tenant else {
            return Ok(roles.into_iter().filter(|r| r.listed_for(None)).collect());
        };
        let life = tenant_life(self.directory, tenant).await?;
        Ok(roles
            .into_iter()
            .filter(|r| r.listed_for(Some((tenant, life.as_ref()))))
            .collect())
    }

    /// The role `id` as a write naming `tenant` may change it: with a tenant, only that tenant's
    /// own role (404 for any other, the vendor's included); without, any role.
    pub async fn role_of(&self, id: &str, tenant: Option<&TenantId>) -> Result<Role> {
        let role = self.role(id).await?;
        let Some(tenant) = tenant else {
            return Ok(role);
        };
        let life = tenant_life(self.directory, tenant).await?;
        if role.tenant_id.is_some() && role.applies_in(tenant, life.as_ref()) {
            Ok(role)
        } else {
            Err(Error::not_found("Role", id))
        }
    }

    /// `role`, made the role of `tenant` in the tenant's current life; 404 while the tenant
    /// does not live.
    pub async fn owned_by(&self, role: Role, tenant: &TenantId) -> Result<Role> {
        let life = tenant_life(self.directory, tenant).await?;
        let life = life.ok_or_else(|| Error::not_found("Tenant", tenant.as_str()))?;
        Ok(Role {
            tenant_id: Some(tenant.clone()),
            tenant_life: Some(life),
            ..role
        })
    }

    /// Writes the role or permission `make` derives from the stored one. The id of a deleted
    /// role or permission is never used again: tokens and roles may still name it, and must not
    /// come to hold whatever would be created under it. The API answers 409; an event for it
    /// is skipped. (An id an event deleted before it ever existed is not retired.)
    async fn put_grant<T: Into<Document> + TryFrom<Document, Error = WrongKind>>(
        &self,
        kind: EntityKind,
        id: &str,
        make: impl Fn(Option<T>) -> Result<T>,
        origin: Origin,
    ) -> Result<Option<Stamped<T>>> {
        let changed = self
            .change(kind, id, |stored| match stored {
                Some(record) if record.is_retired() => match origin {
                    Origin::Api => Err(Error::Conflict(format!(
                        "{} {} was deleted; its id cannot be used again",
                        kind_title(kind),
                        excerpt(id)
                    ))),
                    Origin::Event { .. } => Ok(None),
                },
                _ => upsert(kind, id, stored, make(doc_of(stored)?)?.into(), origin),
            })
            .await?;
        stamped_of(changed.as_ref().map(|c| &c.after))
    }

    /// Deletes a permission or role; it vanishes from every JWT issued afterwards, and its id
    /// is never used again.
    pub async fn delete_grant(&self, kind: EntityKind, id: &str, origin: Origin) -> Result<bool> {
        let changed = self
            .change(kind, id, |stored| match (stored, origin) {
                (Some(record), Origin::Api) if record.is_live() => {
                    Ok(Some(DirectoryRecord::deleted(stored, origin)))
                }
                (_, Origin::Api) => Err(Error::not_found(kind_title(kind), id)),
                (_, Origin::Event { .. }) => tombstone(kind, id, stored, origin),
            })
            .await?;
        Ok(changed.is_some())
    }

    /// The tenant, if it exists.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Stamped<Tenant>>> {
        self.stamped(EntityKind::Tenant, id.as_str()).await
    }

    /// Changes a tenant by `change`, creating it if need be (the API's `PUT` and create, and a
    /// `tenant.upserted` event); the tenant as written, `None` when nothing was (an event not
    /// newer than the stored version).
    pub async fn upsert_tenant(
        &self,
        id: &TenantId,
        change: &TenantChange,
        origin: Origin,
    ) -> Result<Option<Stamped<Tenant>>> {
        let (kind, key) = (EntityKind::Tenant, id.as_str());
        let changed = self
            .change(kind, key, |stored| {
                let tenant = change.apply(key, doc_of(stored)?)?;
                upsert(kind, key, stored, tenant.into(), origin)
            })
            .await?;
        stamped_of(changed.as_ref().map(|c| &c.after))
    }

    /// Creates the tenant by `change` (Frontegg's create); 409 while one lives under the id.
    pub async fn create_tenant(
        &self,
        id: &TenantId,
        change: &TenantChange,
    ) -> Result<Stamped<Tenant>> {
        let (kind, key) = (EntityKind::Tenant, id.as_str());
        let changed = self
            .change(kind, key, |stored| {
                if stored.is_some_and(DirectoryRecord::is_live) {
                    return Err(Error::Conflict(format!("Tenant {} exists", excerpt(key))));
                }
                upsert(
                    kind,
                    key,
                    stored,
                    change.apply(key, None)?.into(),
                    Origin::Api,
                )
            })
            .await?;
        let tenant = stamped_of(changed.as_ref().map(|c| &c.after))?;
        tenant.ok_or_else(|| busy(kind, key))
    }

    /// Deletes the tenant: from the moment it is written, none of its tokens works. Then retires
    /// its tokens (tenant tokens and members' personal tokens, with their refresh tokens) and
    /// ends its memberships. Runs the cascade whether or not this call wrote the tombstone, so
    /// a repeat finishes what an interruption left; `false` when nothing was written.
    pub async fn delete_tenant(&self, id: &TenantId, origin: Origin) -> Result<bool> {
        let deleted = self
            .change(EntityKind::Tenant, id.as_str(), |stored| {
                tombstone(EntityKind::Tenant, id.as_str(), stored, origin)
            })
            .await?;
        let tokens = self.tokens.tokens_in_tenant(id).await?;
        self.tidy(tokens).await?;
        let (tenant, _) = self.read(EntityKind::Tenant, id.as_str()).await?;
        for user in self.directory.members_of(id).await? {
            self.leave(&user, id, tenant.as_ref()).await?;
        }
        // The tenant's roles end with the life they were made in (no JWT carries them from
        // the tombstone on); deleting them frees their keys. One made while this ran is void.
        let life = tenant.as_ref().and_then(DirectoryRecord::current_life);
        for role in self.roles().await? {
            if role.tenant_id.as_ref() == Some(id) && !role.applies_in(id, life) {
                self.delete_grant(EntityKind::Role, role.id.as_str(), Origin::Api)
                    .await
                    .or_else(|e| match e {
                        Error::NotFound(_) => Ok(false),
                        e => Err(e),
                    })?;
            }
        }
        Ok(deleted.is_some())
    }

    /// Ends `user`'s membership in `tenant` (whose record is `record`) unless it is one of the
    /// tenant's current life: a membership of a deleted tenant, or of an earlier life of a
    /// tenant created since under the same id.
    async fn leave(&self, user: &UserId, tenant: &TenantId, record: Option<&Record>) -> Result<()> {
        let current =
            |stored: &Record| record.is_some_and(|t| stored.membership_in(tenant, t).is_some());
        let stays = AtomicBool::new(false);
        self.change(EntityKind::User, user.as_str(), |stored| {
            let live = stored.filter(|s| s.is_live());
            stays.store(live.is_some_and(current), Ordering::Relaxed);
            match live {
                Some(stored) if !current(stored) => without_member(stored, tenant),
                _ => Ok(None),
            }
        })
        .await?;
        if stays.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.directory
            .index_members(user, &[], std::slice::from_ref(tenant))
            .await
    }

    /// Retires those of `tokens` that no longer work: whose tenant, or for a personal token
    /// whose membership, is no longer the one it was created in (the check every exchange
    /// makes). All a cascade does, so running it again, or while tokens are created anew under
    /// the same ids, never ends a token that works. The records are read after the tokens were
    /// listed, so a token listed is judged by what is current.
    async fn tidy(&self, tokens: Vec<ApiToken>) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<(EntityKind, String)> = Vec::new();
        for token in &tokens {
            let tenant = (EntityKind::Tenant, token.tenant_id.as_str().to_owned());
            let user = token
                .user_id()
                .map(|u| (EntityKind::User, u.as_str().to_owned()));
            for key in std::iter::once(tenant).chain(user) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let records = self.directory.records(&keys).await?;
        let record = |kind: EntityKind, id: &str| {
            keys.iter()
                .position(|(k, i)| *k == kind && i == id)
                .and_then(|at| records[at].as_ref())
        };
        let void: Vec<ApiToken> = tokens
            .into_iter()
            .filter(|token| {
                let tenant = record(EntityKind::Tenant, token.tenant_id.as_str());
                let user = token
                    .user_id()
                    .map(|u| record(EntityKind::User, u.as_str()));
                token.lives.check(&token.tenant_id, tenant, user).is_err()
            })
            .collect();
        let event = |token: &ApiToken| {
            let mut event = self
                .audit
                .token_event("apiToken.deleted", Severity::Medium, token);
            event.description =
                format!("{}, ended with its tenant or membership", event.description);
            event
        };
        self.retirement.retire(&void, event).await
    }

    /// Changes a user (creating them if need be) by `change`, applied to the user as stored
    /// when the write lands (the API's partial `PUT` and a `user.upserted` event): fields the
    /// change leaves out stay. Unknown role ids are refused (400), and through the API so are
    /// tenants that do not exist (404). A membership the write ends or begins anew takes its
    /// personal tokens with it. The user as written, `None` when nothing was (an event not
    /// newer than the stored version).
    pub async fn upsert_user(
        &self,
        id: &UserId,
        change: &UserChange,
        origin: Origin,
    ) -> Result<Option<Stamped<User>>> {
        self.write_user(id, origin, |stored| {
            Ok(change.apply(id.as_str(), doc_of::<User>(stored)?.as_ref())?)
        })
        .await
    }

    /// Changes a user (creating them if need be) by `patch`, applied to the user as stored when
    /// the write lands.
    pub async fn patch_user(
        &self,
        id: &UserId,
        patch: impl Fn(Option<User>) -> Result<User>,
    ) -> Result<Stamped<User>> {
        let user = self
            .write_user(id, Origin::Api, |stored| patch(doc_of(stored)?))
            .await?;
        user.ok_or_else(|| busy(EntityKind::User, id.as_str()))
    }

    /// Writes the user `make` derives from the stored record, by a conditional write retried on
    /// conflict (nothing when the event is older than the stored version, or repeats it). Then
    /// brings the member index up to date and retires the personal tokens that no longer work,
    /// written or not, so a repeat finishes what an interruption left.
    async fn write_user(
        &self,
        id: &UserId,
        origin: Origin,
        make: impl Fn(Option<&Record>) -> Result<User>,
    ) -> Result<Option<Stamped<User>>> {
        let (kind, key) = (EntityKind::User, id.as_str());
        let mut outcome = None;
        for attempt in 0..WRITE_ATTEMPTS {
            let (before, revision) = self.read(kind, key).await?;
            // A void membership is not carried into the user the write makes: only a change
            // naming its tenant again begins a membership there anew.
            // The tenants are read once an attempt, for both.
            let tenants = &mut TenantRecords::new();
            let current = self.pruned(before.clone().into_iter().collect(), tenants);
            let current = current.await?;
            let user = make(current.first())?;
            // Read on every attempt: a tenant deleted meanwhile is then refused (API) or
            // recorded as deleted (events), never joined with the life it had.
            let lives = self.tenant_lives(&user, origin, tenants).await?;
            // Only the roles a membership names anew are checked: one deleted since it was
            // given stays, granting nothing, so that a later change of the user is not
            // refused for it.
            let held = doc_of::<User>(current.first())?;
            for (membership, (tenant, life)) in user.tenants.iter().zip(&lives) {
                let had = held
                    .as_ref()
                    .and_then(|u| u.roles_in(tenant))
                    .unwrap_or(&[]);
                let ids = named_anew(&membership.role_ids, had);
                check_role_ids(self.directory, tenant, life.as_ref(), &ids).await?;
            }
            let Some(after) = upsert(kind, key, before.as_ref(), user.into(), origin)? else {
                outcome = Some((None, before));
                break;
            };
            let after = after.with_members(&lives);
            if let Some(after) = self
                .put(kind, key, before.as_ref(), after, revision)
                .await?
            {
                outcome = Some((Some(Changed { before, after }), None));
                break;
            }
            backoff(attempt).await;
        }
        let (changed, stored) = outcome.ok_or_else(|| busy(kind, key))?;
        match &changed {
            Some(changed) => self.index_change(id, changed).await?,
            None => self.index_members_of(id, stored.as_ref()).await?,
        }
        self.tidy(self.tokens.tokens_of_user(id).await?).await?;
        stamped_of(changed.as_ref().map(|c| &c.after))
    }

    /// Indexes the memberships of `record` (as stored; again, after an interrupted write).
    async fn index_members_of(&self, user: &UserId, record: Option<&Record>) -> Result<()> {
        let members = member_tenants(record);
        if members.is_empty() {
            return Ok(());
        }
        self.directory.index_members(user, &members, &[]).await
    }

    /// Removes the user from one tenant, with their personal tokens there, as Frontegg's
    /// `DELETE` of a user with `frontegg-tenant-id` does; the user and their other memberships
    /// stay. 404 when there is no such user or membership, once the tokens of a membership
    /// that ended are retired (so a repeat finishes an interrupted removal).
    pub async fn remove_member(&self, user: &UserId, tenant: &TenantId) -> Result<()> {
        let changed = self
            .change(EntityKind::User, user.as_str(), |stored| {
                let record = stored
                    .filter(|r| r.is_live())
                    .ok_or_else(|| Error::not_found("User", user.as_str()))?;
                without_member(record, tenant)?
                    .map(Some)
                    .ok_or_else(|| Error::NotFound(not_a_member(user, tenant)))
            })
            .await;
        if let Ok(Some(changed)) = &changed {
            self.index_change(user, changed).await?;
        }
        if matches!(changed, Ok(_) | Err(Error::NotFound(_))) {
            let tokens = self.tokens.tokens_of_user(user).await?;
            let there = tokens.into_iter().filter(|t| &t.tenant_id == tenant);
            self.tidy(there.collect()).await?;
        }
        changed.map(|_| ())
    }

    /// Each of the user's tenants with its life as a membership begun now records it. Through
    /// the API a tenant must exist; an event may name one whose own event is yet to come.
    async fn tenant_lives(
        &self,
        user: &User,
        origin: Origin,
        tenants: &mut TenantRecords,
    ) -> Result<Vec<(TenantId, Option<Life>)>> {
        let ids = user.tenants.iter().map(|m| m.tenant_id.to_string());
        self.read_tenants(ids, tenants).await?;
        let mut lives = Vec::with_capacity(user.tenants.len());
        for membership in &user.tenants {
            let record = tenants
                .get(membership.tenant_id.as_str())
                .and_then(Option::as_ref);
            let live = record.is_some_and(DirectoryRecord::is_live);
            if origin == Origin::Api && !live {
                return Err(Error::not_found("Tenant", membership.tenant_id.as_str()));
            }
            let life = DirectoryRecord::tenant_life(record);
            lives.push((membership.tenant_id.clone(), life));
        }
        Ok(lives)
    }

    /// Brings the index of members up to date with a change of a user's record.
    async fn index_change(&self, user: &UserId, changed: &Changed) -> Result<()> {
        let before = member_tenants(changed.before.as_ref());
        let after = member_tenants(Some(&changed.after));
        let joined: Vec<_> = after
            .iter()
            .filter(|t| !before.contains(t))
            .cloned()
            .collect();
        let left: Vec<_> = before
            .iter()
            .filter(|t| !after.contains(t))
            .cloned()
            .collect();
        self.directory.index_members(user, &joined, &left).await
    }

    /// Deletes the user: from the moment it is written, none of their personal tokens works.
    /// Then retires those tokens in every tenant, whether or not this call wrote the tombstone,
    /// so a repeat finishes what an interruption left; `false` when nothing was written.
    pub async fn delete_user(&self, id: &UserId, origin: Origin) -> Result<bool> {
        let changed = self
            .change(EntityKind::User, id.as_str(), |stored| {
                tombstone(EntityKind::User, id.as_str(), stored, origin)
            })
            .await?;
        if let Some(changed) = &changed {
            self.index_change(id, changed).await?;
        }
        self.tidy(self.tokens.tokens_of_user(id).await?).await?;
        Ok(changed.is_some())
    }
}
