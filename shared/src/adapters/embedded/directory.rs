//! Directory records under their revision, and the index of each tenant's members.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
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
            .map(|s| Ok((typed_record(kind, s.record)?, Revision(s.rev))))
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
    ) -> Result<bool> {
        let key = entity_key(kind, id);
        let record = stored_record(record)?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(DIRECTORY)?;
                let current = read_record(&table, &key)?.map(|s| Revision(s.rev));
                if current != read {
                    return Ok(false);
                }
                let rev = read.map_or(1, |Revision(n)| n + 1);
                table.insert(
                    key.as_str(),
                    write_json(&Stored { record, rev })?.as_slice(),
                )?;
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<TypedRecord>> {
        let records: Vec<DirectoryRecord> = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(DIRECTORY)?;
                let mut records = Vec::new();
                for key in keys_under(&table, kind_name(kind))? {
                    let stored = read_record(&table, &key)?.map(|s| s.record);
                    records.extend(stored.filter(DirectoryRecord::is_live));
                }
                Ok(records)
            })
            .await?;
        records
            .into_iter()
            .map(|record| typed_record(kind, record))
            .collect()
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
