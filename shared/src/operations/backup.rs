//! Backups and moves between stores (`m2m-admin export` and `import`): every record of one
//! store, as JSON lines of the shapes both stores share, loaded into either, idempotently (a
//! record already there is left as it is) and so resumably (run again after a failure, an
//! import takes up what is missing).

use crate::adapters::Exported;
use crate::adapters::records::{kind_named, stored_record, typed_record};
use crate::domain::audit::{Severity, Target};
use crate::domain::directory::EntityKind;
use crate::domain::federation::LocalIssuers;
use crate::domain::revocation::Revocation;
use crate::domain::usage::{Day, DayUsage};
use crate::domain::{ApiToken, TenantId, Timestamp, UserId, VendorCredential};
use crate::error::{Error, Result};
use crate::ports::{
    AuditStore, DirectoryStore, ExportStore, RateStore, RefreshStore, RevocationStore, TokenStore,
    VendorStore,
};

use super::Auditor;

/// The first line of an export: what it is, and the record format of its lines.
pub const EXPORT_FORMAT: &str = "m2m-auth-export";
/// The version of the export's own layout (a header line, then one record per line).
/// Version 2 carries tokens' day counts and taken workload tokens; 1 did not (and reads as 2).
pub const EXPORT_VERSION: u64 = 2;

/// Records read from the store per page of an export.
pub const EXPORT_PAGE: usize = 500;

pub struct Backup<'a> {
    pub(crate) exports: &'a dyn ExportStore,
    pub(crate) vendors: &'a dyn VendorStore,
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) revocations: &'a dyn RevocationStore,
    pub(crate) refresh: &'a dyn RefreshStore,
    pub(crate) rates: &'a dyn RateStore,
    pub(crate) audits: &'a dyn AuditStore,
    pub(crate) audit: Auditor<'a>,
    pub(crate) local_issuers: &'a LocalIssuers,
}

/// Which of an export's lines an import pass loads: what a record needs is loaded in an
/// earlier pass (a token needs its tenant's and member's records; a spent refresh token and a
/// day's counts their token), whatever order the store exported them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Directory,
    Tokens,
    Rest,
}

impl Pass {
    pub const ALL: [Self; 3] = [Self::Directory, Self::Tokens, Self::Rest];

    /// Whether `record` is loaded in this pass.
    pub fn takes(self, record: &Exported) -> bool {
        let pass = match record {
            Exported::Vendor { .. } | Exported::Directory { .. } => Self::Directory,
            Exported::Token { .. } => Self::Tokens,
            _ => Self::Rest,
        };
        pass == self
    }
}

/// Refuses a record no store of the service could hold: a directory record of an unknown
/// kind or whose document does not read as its kind, a token the API could not have written
/// (see [`crate::adapters::records::TokenRecord::check`]). Run on every line before an import
/// writes anything.
pub fn check(record: &Exported, local: &LocalIssuers) -> Result<()> {
    match record {
        Exported::Directory { entity, record, .. } => {
            typed_record(entity_kind(entity)?, record.clone())
                .map_err(|_| Error::bad_request(format!("a {entity} whose document is not one")))?;
        }
        Exported::Token { record } => record.check(local)?,
        // Days since 1970 up to the year 9999; marks as the exchange makes them (a digest).
        Exported::Usage { day, .. } if !(0..=2_932_896).contains(day) => {
            return Err(Error::bad_request(format!(
                "a usage day out of range: {day}"
            )));
        }
        Exported::SpentWorkload { mark, until }
            if mark.is_empty() || mark.len() > 256 || *until < 0 =>
        {
            return Err(Error::bad_request("a workload token mark that is not one"));
        }
        _ => {}
    }
    Ok(())
}

/// The kind of directory record an export's `entity` names.
fn entity_kind(entity: &str) -> Result<EntityKind> {
    kind_named(entity).ok_or_else(|| Error::bad_request(format!("unknown entity {entity:?}")))
}

impl Backup<'_> {
    /// A page of the store's records from `cursor` on, and the next page's cursor.
    pub async fn export_page(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<Exported>, Option<String>)> {
        self.exports.export_page(cursor, EXPORT_PAGE).await
    }

    /// Loads `record` unless it is here already: whether it wrote it. A vendor credential or a
    /// token whose clientId is taken is left as it is; a directory record is written over one
    /// that differs (the export is what is carried over); an imported credential is recorded
    /// in the trail (`vendorCredential.imported`, `apiToken.imported`).
    pub async fn import(&self, record: Exported) -> Result<bool> {
        check(&record, self.local_issuers)?;
        match record {
            Exported::Vendor { record } => self.import_vendor(record.into()).await,
            Exported::Directory { entity, id, record } => {
                self.import_directory(&entity, &id, record).await
            }
            Exported::Token { record } => self.import_token((*record).into()).await,
            Exported::Revocation {
                sub,
                before,
                from,
                until,
            } => {
                let at = Timestamp::from_millis;
                let revocation = Revocation {
                    sub,
                    before: at(before),
                    from: at(from),
                    until: at(until),
                };
                self.revocations.revoke(&[revocation]).await?;
                Ok(true)
            }
            Exported::SpentRefresh {
                client_id,
                serial,
                until,
            } => {
                let until = Timestamp::from_millis(until);
                self.refresh.spend_refresh(&client_id, serial, until).await
            }
            Exported::Audit { event } => self.audits.import_event(&event).await,
            Exported::Usage {
                client_id,
                day,
                counts,
            } => {
                let day = Day(day);
                let usage = DayUsage { day, counts };
                self.rates.import_usage(&client_id, usage).await
            }
            Exported::SpentWorkload { mark, until } => {
                let until = Timestamp::from_millis(until);
                self.refresh.import_workload_mark(&mark, until).await
            }
        }
    }

    /// A vendor credential, unless one of its clientId is there.
    async fn import_vendor(&self, vendor: VendorCredential) -> Result<bool> {
        if self.vendors.vendor(&vendor.client_id).await?.is_some() {
            return Ok(false);
        }
        let target = Target::new("vendorCredential", vendor.client_id);
        let event = self.imported("vendorCredential", target, None);
        self.vendors.put_vendor(&vendor, &event).await?;
        Ok(true)
    }

    /// A token, unless one of its clientId is there.
    async fn import_token(&self, token: ApiToken) -> Result<bool> {
        if self.tokens.token(&token.client_id).await?.is_some() {
            return Ok(false);
        }
        let target = Target::new("apiToken", token.client_id);
        let event = self.imported("apiToken", target, Some(token.tenant_id.clone()));
        self.tokens.put_new(&token, &event).await?;
        Ok(true)
    }

    /// A directory record (a tombstone too), and a user's memberships in the index.
    async fn import_directory(
        &self,
        entity: &str,
        id: &str,
        record: crate::domain::lives::DirectoryRecord,
    ) -> Result<bool> {
        let kind = entity_kind(entity)?;
        let members: Vec<String> = record.members.keys().cloned().collect();
        let typed = typed_record(kind, record.clone())?;
        let read = match self.directory.record(kind, id).await? {
            Some((stored, _)) if stored_record(&stored)? == record => return Ok(false),
            Some((_, revision)) => Some(revision),
            None => None,
        };
        if !self.directory.swap(kind, id, &typed, read, None).await? {
            return Err(Error::Conflict(format!("{entity} {id} changed meanwhile")));
        }
        if kind == EntityKind::User {
            let user =
                UserId::parse(id).map_err(|_| Error::bad_request(format!("user id {id:?}")))?;
            let joined: Vec<TenantId> = (members.iter())
                .filter_map(|t| TenantId::parse(t).ok())
                .collect();
            self.directory.index_members(&user, &joined, &[]).await?;
        }
        Ok(true)
    }

    fn imported(
        &self,
        what: &str,
        target: Target,
        tenant_id: Option<TenantId>,
    ) -> crate::domain::audit::AuditEvent {
        let name = format!("{what}.imported");
        let mut event = self.audit.event(&name, Severity::Medium, target, tenant_id);
        event.description = format!("{}: carried over from an export", event.description);
        event
    }
}
