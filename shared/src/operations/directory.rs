//! The directory: permissions, roles, tenants and users with their memberships, written by
//! the API and by provisioning events alike.
//!
//! Every write reads the record, makes its successor by the rules in [`crate::domain::lives`]
//! and writes it back only if nobody wrote it in between, retrying otherwise; so no update is
//! lost and nothing deleted is written back. Deleting a tenant or a user, or ending a
//! membership, voids their tokens at once through the lives the tokens record; the cascades
//! that follow only delete what no longer works, and are safe to run again.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::configuration::{TOKEN_SETTINGS_ID, TokenSettings};
use crate::domain::directory::{EntityKind, Origin, Permission, Role, Tenant, User};
use crate::domain::lives::{DirectoryRecord, Life, Revision};
use crate::domain::rules::excerpt;
use crate::domain::{ApiToken, GrantId, TenantId, UserId};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, TokenStore};

use super::{Retirement, check_ids_exist};

/// Conditional writes tried before a write gives up with a 409 the caller may retry.
const WRITE_ATTEMPTS: u32 = 8;

pub struct Directory<'a> {
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) retirement: Retirement<'a>,
}

/// How one read-and-conditional-write went.
enum Attempt {
    Written(Changed),
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

/// A record as read and as written by one change.
struct Changed {
    before: Option<DirectoryRecord>,
    after: DirectoryRecord,
}

fn to_doc(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(Error::internal)
}

pub(super) fn from_doc<T: DeserializeOwned>(doc: serde_json::Value) -> Result<T> {
    serde_json::from_value(doc).map_err(|e| Error::internal(format!("stored document: {e}")))
}

fn not_found(what: &str, id: &str) -> Error {
    Error::NotFound(format!("{what} {} not found", excerpt(id)))
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

/// Every live document of a kind, read as `T`.
pub(super) async fn all<T: DeserializeOwned>(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
) -> Result<Vec<T>> {
    directory
        .entities(kind)
        .await?
        .into_iter()
        .map(from_doc)
        .collect()
}

/// The store keys of the `kind` records `ids`.
pub(super) fn keys_of(kind: EntityKind, ids: &[GrantId]) -> Vec<(EntityKind, String)> {
    ids.iter()
        .map(|id| (kind, id.as_str().to_owned()))
        .collect()
}

/// The documents of the live records among `records`, as `T`, in their order.
pub(super) fn live_docs<T: DeserializeOwned>(
    records: impl IntoIterator<Item = Option<DirectoryRecord>>,
) -> Result<Vec<T>> {
    records
        .into_iter()
        .filter_map(|record| record.and_then(|r| r.doc))
        .map(from_doc)
        .collect()
}

/// The successor of `stored` when `doc` is written from `origin`; `None` when the write must
/// yield to a newer version.
fn upsert(
    stored: Option<&DirectoryRecord>,
    doc: serde_json::Value,
    origin: Origin,
) -> Option<DirectoryRecord> {
    if stored.is_some_and(|r| r.refuses(origin)) {
        return None;
    }
    Some(DirectoryRecord::upserted(stored, doc, origin))
}

/// The tombstone a delete from `origin` leaves; `None` when it must yield to a newer version,
/// or when the API deletes what never existed (an event's delete leaves its version even then,
/// so that an older upsert arriving later is refused).
fn tombstone(stored: Option<&DirectoryRecord>, origin: Origin) -> Option<DirectoryRecord> {
    match (stored, origin) {
        (Some(record), _) if record.refuses(origin) => None,
        (Some(record), _) => Some(record.deleted(origin)),
        (None, Origin::Api) => None,
        (None, Origin::Event { .. }) => Some(DirectoryRecord::default().deleted(origin)),
    }
}

/// The live user `record` without its membership in `tenant`; `None` when it has none.
fn without_member(record: &DirectoryRecord, tenant: &TenantId) -> Result<Option<DirectoryRecord>> {
    let mut doc: User = from_doc(record.doc.clone().unwrap_or_default())?;
    let listed = doc.tenants.iter().any(|m| &m.tenant_id == tenant);
    if !listed && !record.members.contains_key(tenant.as_str()) {
        return Ok(None);
    }
    doc.tenants.retain(|m| &m.tenant_id != tenant);
    let mut after = record.clone();
    after.doc = Some(to_doc(&doc)?);
    after.members.remove(tenant.as_str());
    Ok(Some(after))
}

impl Directory<'_> {
    /// Reads the record, lets `change` make its successor (`None`: leave it as it is), and
    /// writes it back only if nobody wrote it in between; on a conflict, reads again.
    async fn change(
        &self,
        kind: EntityKind,
        id: &str,
        change: impl Fn(Option<&DirectoryRecord>) -> Result<Option<DirectoryRecord>>,
    ) -> Result<Option<Changed>> {
        for attempt in 0..WRITE_ATTEMPTS {
            match self.change_once(kind, id, &change).await? {
                Attempt::Written(changed) => return Ok(Some(changed)),
                Attempt::Left => return Ok(None),
                Attempt::Lost => backoff(attempt).await,
            }
        }
        Err(busy(kind, id))
    }

    /// The record, if any, and the revision a conditional write of it must name.
    async fn read(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<(Option<DirectoryRecord>, Option<Revision>)> {
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
        change: impl Fn(Option<&DirectoryRecord>) -> Result<Option<DirectoryRecord>>,
    ) -> Result<Attempt> {
        let (before, revision) = self.read(kind, id).await?;
        let Some(after) = change(before.as_ref())? else {
            return Ok(Attempt::Left);
        };
        Ok(if self.directory.swap(kind, id, &after, revision).await? {
            Attempt::Written(Changed { before, after })
        } else {
            Attempt::Lost
        })
    }

    /// The vendor's API-token settings (the defaults until changed).
    pub async fn token_settings(&self) -> Result<TokenSettings> {
        let record = self
            .directory
            .record(EntityKind::Configuration, TOKEN_SETTINGS_ID)
            .await?;
        record
            .and_then(|(record, _)| record.doc)
            .map_or_else(|| Ok(TokenSettings::default()), from_doc)
    }

    /// Applies `change` to the settings as read inside one conditional write.
    pub async fn change_token_settings(
        &self,
        change: impl Fn(TokenSettings) -> Result<TokenSettings>,
    ) -> Result<TokenSettings> {
        let (kind, id) = (EntityKind::Configuration, TOKEN_SETTINGS_ID);
        let changed = self
            .change(kind, id, |stored| {
                let doc = stored.and_then(|r| r.doc.clone());
                let current = doc.map_or_else(|| Ok(TokenSettings::default()), from_doc)?;
                let doc = to_doc(&change(current)?)?;
                Ok(Some(DirectoryRecord::upserted(stored, doc, Origin::Api)))
            })
            .await?;
        match changed.and_then(|c| c.after.doc) {
            Some(doc) => from_doc(doc),
            None => self.token_settings().await,
        }
    }

    pub async fn permissions(&self) -> Result<Vec<Permission>> {
        all(self.directory, EntityKind::Permission).await
    }

    pub async fn roles(&self) -> Result<Vec<Role>> {
        all(self.directory, EntityKind::Role).await
    }

    pub async fn role(&self, id: &str) -> Result<Role> {
        let record = self.directory.record(EntityKind::Role, id).await?;
        let doc = record.and_then(|(r, _)| r.doc);
        from_doc(doc.ok_or_else(|| not_found("Role", id))?)
    }

    /// Creates or replaces a permission; a key held by another permission is a conflict.
    pub async fn put_permission(&self, permission: &Permission, origin: Origin) -> Result<bool> {
        let taken = self.permissions().await?;
        if taken
            .iter()
            .any(|p| p.key == permission.key && p.id != permission.id)
        {
            return Err(Error::Conflict(format!(
                "A permission with key {} exists",
                permission.key
            )));
        }
        let doc = to_doc(permission)?;
        self.put_grant(EntityKind::Permission, permission.id.as_str(), doc, origin)
            .await
    }

    /// Creates or replaces a role; every permission id must exist (400) and the key be free (409).
    pub async fn put_role(&self, role: &Role, origin: Origin) -> Result<bool> {
        self.check_role(role).await?;
        let doc = to_doc(role)?;
        self.put_grant(EntityKind::Role, role.id.as_str(), doc, origin)
            .await
    }

    /// Changes a role by `patch`, applied to the role as stored when the write lands (so two
    /// patches of different fields both hold).
    pub async fn patch_role(&self, id: &str, patch: impl Fn(Role) -> Result<Role>) -> Result<Role> {
        self.check_role(&patch(self.role(id).await?)?).await?;
        let changed = self
            .change(EntityKind::Role, id, |stored| {
                let doc = stored.and_then(|r| r.doc.clone());
                let role = patch(from_doc(doc.ok_or_else(|| not_found("Role", id))?)?)?;
                Ok(upsert(stored, to_doc(&role)?, Origin::Api))
            })
            .await?;
        let doc = changed.and_then(|c| c.after.doc);
        from_doc(doc.ok_or_else(|| not_found("Role", id))?)
    }

    /// A role's key is free (409) and its permissions exist (400).
    async fn check_role(&self, role: &Role) -> Result<()> {
        let taken = self.roles().await?;
        if taken.iter().any(|r| r.key == role.key && r.id != role.id) {
            return Err(Error::Conflict(format!(
                "A role with key {} exists",
                role.key
            )));
        }
        check_ids_exist(self.directory, EntityKind::Permission, &role.permission_ids).await
    }

    /// The id of a deleted role or permission is never used again: tokens and roles may still
    /// name it, and must not come to hold whatever would be created under it. The API answers
    /// 409; an event for it is skipped.
    async fn put_grant(
        &self,
        kind: EntityKind,
        id: &str,
        doc: serde_json::Value,
        origin: Origin,
    ) -> Result<bool> {
        let changed = self
            .change(kind, id, |stored| match stored {
                Some(record) if !record.is_live() => match origin {
                    Origin::Api => Err(Error::Conflict(format!(
                        "{} {id} was deleted; its id cannot be used again",
                        kind_title(kind)
                    ))),
                    Origin::Event { .. } => Ok(None),
                },
                _ => Ok(upsert(stored, doc.clone(), origin)),
            })
            .await?;
        Ok(changed.is_some())
    }

    /// Deletes a permission or role; it vanishes from every JWT issued afterwards, and its id
    /// is never used again.
    pub async fn delete_grant(&self, kind: EntityKind, id: &str, origin: Origin) -> Result<bool> {
        let changed = self
            .change(kind, id, |stored| match (stored, origin) {
                (Some(record), Origin::Api) if record.is_live() => Ok(Some(record.deleted(origin))),
                (_, Origin::Api) => Err(not_found(kind_title(kind), id)),
                (_, Origin::Event { .. }) => Ok(tombstone(stored, origin)),
            })
            .await?;
        Ok(changed.is_some())
    }

    /// The tenant, if it exists.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let record = self
            .directory
            .record(EntityKind::Tenant, id.as_str())
            .await?;
        record.and_then(|(r, _)| r.doc).map(from_doc).transpose()
    }

    pub async fn put_tenant(&self, tenant: &Tenant, origin: Origin) -> Result<bool> {
        let doc = to_doc(tenant)?;
        let changed = self
            .change(EntityKind::Tenant, tenant.id.as_str(), |stored| {
                Ok(upsert(stored, doc.clone(), origin))
            })
            .await?;
        Ok(changed.is_some())
    }

    /// Deletes the tenant: from the moment it is written, none of its tokens works. Then deletes
    /// its tokens (tenant tokens and members' personal tokens, with their refresh tokens) and
    /// ends its memberships. Safe to run again after an interruption.
    pub async fn delete_tenant(&self, id: &TenantId, origin: Origin) -> Result<bool> {
        let deleted = self
            .change(EntityKind::Tenant, id.as_str(), |stored| {
                Ok(tombstone(stored, origin))
            })
            .await?;
        if deleted.is_none() {
            return Ok(false);
        }
        let tokens = self.tokens.tokens_in_tenant(id).await?;
        self.retirement.retire(&tokens).await?;
        for user in self.directory.members_of(id).await? {
            self.leave(&user, id).await?;
        }
        Ok(true)
    }

    /// Ends `user`'s membership in the deleted tenant `tenant` (a membership of a tenant
    /// created since under the same id is void already, and is ended too).
    async fn leave(&self, user: &UserId, tenant: &TenantId) -> Result<()> {
        self.change(EntityKind::User, user.as_str(), |stored| match stored {
            Some(record) if record.is_live() => without_member(record, tenant),
            _ => Ok(None),
        })
        .await?;
        self.directory
            .index_members(user, &[], std::slice::from_ref(tenant))
            .await
    }

    /// Creates or replaces a user with their roles per tenant; unknown role ids are refused
    /// (400), and through the API so are tenants that do not exist (404). A membership the
    /// write ends or begins anew takes its personal tokens with it.
    pub async fn put_user(&self, user: &User, origin: Origin) -> Result<bool> {
        let written = self
            .write_user(&user.id, origin, |_| Ok(user.clone()))
            .await?;
        Ok(written.is_some())
    }

    /// Changes a user (creating them if need be) by `patch`, applied to the user as stored when
    /// the write lands, as Frontegg's `PUT` of a user does: fields the patch leaves alone stay.
    pub async fn patch_user(
        &self,
        id: &UserId,
        patch: impl Fn(Option<User>) -> Result<User>,
    ) -> Result<User> {
        let written = self
            .write_user(id, Origin::Api, |stored| {
                let doc = stored.and_then(|r| r.doc.clone());
                patch(doc.map(from_doc).transpose()?)
            })
            .await?;
        written.ok_or_else(|| busy(EntityKind::User, id.as_str()))
    }

    /// Writes the user `make` derives from the stored record, by a conditional write retried on
    /// conflict; `None` when a newer version stands. Then brings the member index up to date
    /// and deletes the personal tokens of memberships that ended or began anew.
    async fn write_user(
        &self,
        id: &UserId,
        origin: Origin,
        make: impl Fn(Option<&DirectoryRecord>) -> Result<User>,
    ) -> Result<Option<User>> {
        let mut written = None;
        for attempt in 0..WRITE_ATTEMPTS {
            let (before, revision) = self.read(EntityKind::User, id.as_str()).await?;
            let user = make(before.as_ref())?;
            let role_ids: Vec<GrantId> = user
                .tenants
                .iter()
                .flat_map(|m| m.role_ids.clone())
                .collect();
            check_ids_exist(self.directory, EntityKind::Role, &role_ids).await?;
            // Read on every attempt: a tenant deleted meanwhile is then refused (API) or
            // recorded as deleted (events), never joined with the life it had.
            let lives = self.tenant_lives(&user, origin).await?;
            let Some(after) = upsert(before.as_ref(), to_doc(&user)?, origin) else {
                return Ok(None);
            };
            let after = after.with_members(&lives);
            if self
                .directory
                .swap(EntityKind::User, id.as_str(), &after, revision)
                .await?
            {
                written = Some((Changed { before, after }, user));
                break;
            }
            backoff(attempt).await;
        }
        let (changed, user) = written.ok_or_else(|| busy(EntityKind::User, id.as_str()))?;
        self.index_change(id, &changed).await?;
        let tokens = self.tokens.tokens_of_user(id).await?;
        let void: Vec<ApiToken> = tokens
            .into_iter()
            .filter(|t| {
                let stamp = changed.after.members.get(t.tenant_id.as_str());
                stamp.map(|s| &s.life) != t.lives.membership.as_ref()
            })
            .collect();
        self.retirement.retire(&void).await?;
        Ok(Some(user))
    }

    /// Removes the user from one tenant, with their personal tokens there, as Frontegg's
    /// `DELETE` of a user with `frontegg-tenant-id` does; the user and their other memberships
    /// stay. 404 when there is no such user or membership.
    pub async fn remove_member(&self, user: &UserId, tenant: &TenantId) -> Result<()> {
        let changed = self
            .change(EntityKind::User, user.as_str(), |stored| {
                let record = stored
                    .filter(|r| r.is_live())
                    .ok_or_else(|| not_found("User", user.as_str()))?;
                without_member(record, tenant)?.map(Some).ok_or_else(|| {
                    Error::NotFound(format!("User {user} is not a member of tenant {tenant}"))
                })
            })
            .await?;
        if let Some(changed) = changed {
            self.index_change(user, &changed).await?;
        }
        let tokens = self.tokens.tokens_of_user(user).await?;
        let there: Vec<ApiToken> = tokens
            .into_iter()
            .filter(|t| &t.tenant_id == tenant)
            .collect();
        self.retirement.retire(&there).await
    }

    /// Each of the user's tenants with its life as a membership begun now records it. Through
    /// the API a tenant must exist; an event may name one whose own event is yet to come.
    async fn tenant_lives(
        &self,
        user: &User,
        origin: Origin,
    ) -> Result<Vec<(TenantId, Option<Life>)>> {
        let keys: Vec<_> = user
            .tenants
            .iter()
            .map(|m| (EntityKind::Tenant, m.tenant_id.as_str().to_owned()))
            .collect();
        let records = self.directory.records(&keys).await?;
        let mut lives = Vec::with_capacity(records.len());
        for (membership, record) in user.tenants.iter().zip(&records) {
            let live = record.as_ref().is_some_and(DirectoryRecord::is_live);
            if origin == Origin::Api && !live {
                return Err(not_found("Tenant", membership.tenant_id.as_str()));
            }
            let life = DirectoryRecord::tenant_life(record.as_ref());
            lives.push((membership.tenant_id.clone(), life));
        }
        Ok(lives)
    }

    /// Brings the index of members up to date with a change of a user's record.
    async fn index_change(&self, user: &UserId, changed: &Changed) -> Result<()> {
        let tenants = |record: Option<&DirectoryRecord>| -> Vec<TenantId> {
            record
                .map(|r| r.members.keys())
                .into_iter()
                .flatten()
                .filter_map(|id| TenantId::parse(id).ok())
                .collect()
        };
        let before = tenants(changed.before.as_ref());
        let after = tenants(Some(&changed.after));
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
    /// Then deletes those tokens in every tenant. Safe to run again.
    pub async fn delete_user(&self, id: &UserId, origin: Origin) -> Result<bool> {
        let changed = self
            .change(EntityKind::User, id.as_str(), |stored| {
                Ok(tombstone(stored, origin))
            })
            .await?;
        let Some(changed) = changed else {
            return Ok(false);
        };
        self.index_change(id, &changed).await?;
        let tokens = self.tokens.tokens_of_user(id).await?;
        self.retirement.retire(&tokens).await?;
        Ok(true)
    }
}
