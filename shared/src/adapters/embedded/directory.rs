//! Directory records under their revision, and the index of each tenant's members.

use async_trait::async_trait;
use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::*;

pub(super) fn entity_key(kind: EntityKind, id: &str) -> String {
    format!("{}/{id}", kind_name(kind))
}

/// A directory record as the embedded store keeps it: the record and its revision.
#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    #[serde(flatten)]
    pub record: DirectoryRecord,
    #[serde(default)]
    pub rev: u64,
}

impl Stored {
    /// The revision of the record, and whether it is live: what a write checks it read.
    fn read_at(&self) -> (u64, bool) {
        (self.rev, self.record.is_live())
    }
}

/// The table listing the live records of `kind`, if its records are listed.
fn listing(kind: EntityKind) -> Option<TableDefinition<'static, &'static str, &'static [u8]>> {
    match kind {
        EntityKind::Tenant => Some(LISTED_TENANTS),
        EntityKind::User => Some(LISTED_USERS),
        _ => None,
    }
}

/// The scopes holding a key (`None`: the vendor's), as the claims table keeps them.
type Holders = Vec<Option<TenantId>>;

/// Where the key `key` of the claims table is held.
fn holders(
    claims: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Holders, redb::Error> {
    claims
        .get(key)?
        .map_or(Ok(Vec::new()), |bytes| read_json("claim", bytes.value()))
}

fn claim_key(claim: &KeyClaim) -> String {
    format!("{}/{}", kind_name(claim.kind), claim.key.as_str())
}

/// Lets go of `old` and takes `new` (when they differ), inside the write transaction: the
/// 409 message when `new` does not fit beside the claims held.
fn reclaim(
    txn: &WriteTransaction,
    old: Option<&KeyClaim>,
    new: Option<&KeyClaim>,
) -> Result<Result<(), String>, redb::Error> {
    if old == new {
        return Ok(Ok(()));
    }
    let mut claims = txn.open_table(CLAIMS)?;
    if let Some(old) = old {
        let key = claim_key(old);
        let mut held = holders(&claims, &key)?;
        held.retain(|scope| scope != &old.tenant);
        match held.is_empty() {
            true => claims.remove(key.as_str())?,
            false => claims.insert(key.as_str(), write_json(&held)?.as_slice())?,
        };
    }
    if let Some(new) = new {
        let key = claim_key(new);
        let mut held = holders(&claims, &key)?;
        if !new.fits_beside(&held) {
            return Ok(Err(new.taken()));
        }
        held.push(new.tenant.clone());
        claims.insert(key.as_str(), write_json(&held)?.as_slice())?;
    }
    Ok(Ok(()))
}

/// Whether the database has `table` (a file from before it has not).
pub(super) fn has_table(
    txn: &WriteTransaction,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
) -> Result<bool, redb::Error> {
    let name = table.name();
    Ok(txn.list_tables()?.any(|table| table.name() == name))
}

/// Claims the keys of every live role and permission of a database written before key claims,
/// once (of two that shared a key before, the first keeps it).
pub(super) fn fill_claims(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let directory = txn.open_table(DIRECTORY)?;
    for kind in [EntityKind::Permission, EntityKind::Role] {
        for (_, stored) in live_records(&directory, kind)? {
            let record =
                typed_record(kind, stored).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            let _first_keeps_it = reclaim(txn, None, record.key_claim().as_ref())?;
        }
    }
    Ok(())
}

/// Lists every live tenant and user of a database written before the listing tables, once.
pub(super) fn fill_listings(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let directory = txn.open_table(DIRECTORY)?;
    for kind in [EntityKind::Tenant, EntityKind::User] {
        let Some(definition) = listing(kind) else {
            continue;
        };
        let mut listed = txn.open_table(definition)?;
        for (id, _) in live_records(&directory, kind)? {
            listed.insert(id.as_str(), [].as_slice())?;
        }
    }
    Ok(())
}

/// The live records of `kind` in the directory table, with their ids, by id.
fn live_records(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    kind: EntityKind,
) -> Result<Vec<(String, DirectoryRecord)>, redb::Error> {
    let prefix = format!("{}/", kind_name(kind));
    let mut live = Vec::new();
    for key in keys_under(table, kind_name(kind))? {
        if let Some(stored) = read_record(table, &key)?.filter(|s| s.record.is_live()) {
            live.push((key[prefix.len()..].to_owned(), stored.record));
        }
    }
    Ok(live)
}

/// The record under `key`, read inside a transaction.
pub(super) fn read_record(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Stored>, redb::Error> {
    table
        .get(key)?
        .map(|bytes| read_json::<Stored>("directory", bytes.value()))
        .transpose()
}

/// The stored `records` of `keys`, in their order, their documents read by their kinds.
pub(super) fn typed_records(
    keys: &[(EntityKind, String)],
    records: Vec<Option<DirectoryRecord>>,
) -> Result<Vec<Option<TypedRecord>>> {
    keys.iter()
        .zip(records)
        .map(|((kind, _), record)| record.map(|r| typed_record(*kind, r)).transpose())
        .collect()
}

#[async_trait]
impl DirectoryStore for EmbeddedStore {
    async fn record(&self, kind: EntityKind, id: &str) -> Result<Option<(TypedRecord, Revision)>> {
        let key = entity_key(kind, id);
        let stored = self.read_now(move |db| {
            let txn = db.begin_read()?;
            read_record(&txn.open_table(DIRECTORY)?, &key)
        })?;
        stored
            .map(|s| {
                let record = typed_record(kind, s.record)?;
                let revision = Revision {
                    number: s.rev,
                    live: record.is_live(),
                    claim: record.key_claim(),
                };
                Ok((record, revision))
            })
            .transpose()
    }

    async fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<TypedRecord>>> {
        let names: Vec<String> = keys
            .iter()
            .map(|(kind, id)| entity_key(*kind, id))
            .collect();
        let records: Vec<Option<DirectoryRecord>> = self.read_now(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DIRECTORY)?;
            names
                .iter()
                .map(|key| Ok(read_record(&table, key)?.map(|s| s.record)))
                .collect()
        })?;
        typed_records(keys, records)
    }

    async fn swap(
        &self,
        kind: EntityKind,
        id: &str,
        record: &TypedRecord,
        read: Option<Revision>,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let key = entity_key(kind, id);
        let id = id.to_owned();
        let event = event.cloned();
        let claim = record.key_claim();
        let record = stored_record(record)?;
        let outcome = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut table = txn.open_table(DIRECTORY)?;
                    let current = read_record(&table, &key)?.map(|s| s.read_at());
                    if current != read.as_ref().map(|r| (r.number, r.live)) {
                        return Ok(Ok(false));
                    }
                    let old = read.as_ref().and_then(|r| r.claim.as_ref());
                    if let Err(taken) = reclaim(&txn, old, claim.as_ref())? {
                        return Ok(Err(taken)); // dropped uncommitted: nothing is written
                    }
                    if let Some(definition) = listing(kind) {
                        let mut listed = txn.open_table(definition)?;
                        if record.is_live() {
                            listed.insert(id.as_str(), [].as_slice())?;
                        } else {
                            listed.remove(id.as_str())?;
                        }
                    }
                    let rev = read.map_or(1, |r| r.number + 1);
                    table.insert(
                        key.as_str(),
                        write_json(&Stored { record, rev })?.as_slice(),
                    )?;
                }
                if let Some(event) = &event {
                    db.record_audit(&txn, event)?;
                }
                txn.commit()?;
                Ok(Ok(true))
            })
            .await?;
        outcome.map_err(Error::Conflict)
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<TypedRecord>> {
        let records: Vec<DirectoryRecord> = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let live = live_records(&txn.open_table(DIRECTORY)?, kind)?;
                Ok(live.into_iter().map(|(_, record)| record).collect())
            })
            .await?;
        records
            .into_iter()
            .map(|record| typed_record(kind, record))
            .collect()
    }

    async fn listed(&self, kind: EntityKind, skip: u64, limit: usize) -> Result<Listed> {
        let Some(definition) = listing(kind) else {
            return Err(Error::internal("only tenants and users are listed"));
        };
        self.run(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(definition)?;
            let mut ids = Vec::new();
            let skip = usize::try_from(skip).unwrap_or(usize::MAX);
            for entry in table.iter()?.skip(skip).take(limit) {
                ids.push(entry?.0.value().to_owned());
            }
            Ok(Listed {
                ids,
                total: table.len()?,
            })
        })
        .await
    }

    async fn index_members(
        &self,
        user: &UserId,
        joined: &[TenantId],
        left: &[TenantId],
    ) -> Result<()> {
        let key = |tenant: &TenantId| format!("{tenant}/{user}");
        let joined: Vec<String> = joined.iter().map(key).collect();
        let left: Vec<String> = left.iter().map(key).collect();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut members = txn.open_table(TENANT_MEMBERS)?;
                for key in &left {
                    members.remove(key.as_str())?;
                }
                for key in &joined {
                    members.insert(key.as_str(), [].as_slice())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn members_of(&self, tenant: &TenantId) -> Result<Vec<UserId>> {
        let tenant = tenant.clone();
        let keys = self
            .run(move |db| {
                let txn = db.begin_read()?;
                keys_under(&txn.open_table(TENANT_MEMBERS)?, tenant.as_str())
            })
            .await?;
        Ok(keys
            .iter()
            .filter_map(|key| key.rsplit('/').next())
            .filter_map(|id| UserId::parse(id).ok())
            .collect())
    }
}
