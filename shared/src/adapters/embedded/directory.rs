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

#[async_trait]
impl DirectoryStore for EmbeddedStore {
    async fn record(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<(DirectoryRecord, Revision)>> {
        let key = entity_key(kind, id);
        let stored = self.read_now(move |db| {
            let txn = db.begin_read()?;
            read_record(&txn.open_table(DIRECTORY)?, &key)
        })?;
        Ok(stored.map(|s| (s.record, Revision(s.rev))))
    }

    async fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<DirectoryRecord>>> {
        let keys: Vec<String> = keys
            .iter()
            .map(|(kind, id)| entity_key(*kind, id))
            .collect();
        self.read_now(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DIRECTORY)?;
            keys.iter()
                .map(|key| Ok(read_record(&table, key)?.map(|s| s.record)))
                .collect()
        })
    }

    async fn swap(
        &self,
        kind: EntityKind,
        id: &str,
        record: &DirectoryRecord,
        read: Option<Revision>,
    ) -> Result<bool> {
        let key = entity_key(kind, id);
        let record = record.clone();
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

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Value>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DIRECTORY)?;
            let mut docs = Vec::new();
            for key in keys_under(&table, kind_name(kind))? {
                docs.extend(read_record(&table, &key)?.and_then(|s| s.record.doc));
            }
            Ok(docs)
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
