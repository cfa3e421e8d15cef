//! Directory documents, memberships, versions and tombstones.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

use super::*;

fn entity_key(kind: EntityKind, id: &str) -> String {
    format!("{}/{id}", kind_name(kind))
}

#[async_trait]
impl DirectoryStore for EmbeddedStore {
    async fn put_entity(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
        origin: Origin,
    ) -> Result<bool> {
        let key = entity_key(kind, id);
        let doc = doc.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = put_entity_in(&txn, &key, doc, origin.version())?.is_some();
            txn.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<Value>> {
        let record: Option<EntityRecord> = self
            .get(DIRECTORY, "directory", entity_key(kind, id))
            .await?;
        Ok(record.and_then(|r| r.doc))
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Value>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DIRECTORY)?;
            let mut docs = Vec::new();
            for key in keys_under(&table, kind_name(kind))? {
                if let Some(bytes) = table.get(key.as_str())? {
                    docs.extend(read_json::<EntityRecord>("directory", bytes.value())?.doc);
                }
            }
            Ok(docs)
        })
        .await
    }

    async fn delete_entity(&self, kind: EntityKind, id: &str, origin: Origin) -> Result<bool> {
        let key = entity_key(kind, id);
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = delete_entity_in(&txn, &key, origin.version())?;
            txn.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn put_user(&self, user: &User, origin: Origin) -> Result<bool> {
        let key = entity_key(EntityKind::User, user.id.as_str());
        let user = user.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let doc =
                serde_json::to_value(&user).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            let Some(old) = put_entity_in(&txn, &key, doc, origin.version())? else {
                return Ok(false);
            };
            let old: Option<User> = old
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            let mut members = txn.open_table(TENANT_MEMBERS)?;
            for membership in old.iter().flat_map(|u| &u.tenants) {
                members.remove(format!("{}/{}", membership.tenant_id, user.id).as_str())?;
            }
            for membership in &user.tenants {
                members.insert(
                    format!("{}/{}", membership.tenant_id, user.id).as_str(),
                    [].as_slice(),
                )?;
            }
            drop(members);
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    async fn delete_user(&self, id: &UserId, origin: Origin) -> Result<bool> {
        let key = entity_key(EntityKind::User, id.as_str());
        let old = self.user(id).await?;
        let user_id = id.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = delete_entity_in(&txn, &key, origin.version())?;
            if applied {
                let mut members = txn.open_table(TENANT_MEMBERS)?;
                for membership in old.iter().flat_map(|u| &u.tenants) {
                    members.remove(format!("{}/{user_id}", membership.tenant_id).as_str())?;
                }
            }
            txn.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn remove_members(&self, tenant: &TenantId) -> Result<()> {
        let tenant = tenant.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut members = txn.open_table(TENANT_MEMBERS)?;
                let mut directory = txn.open_table(DIRECTORY)?;
                for key in keys_under(&members, tenant.as_str())? {
                    members.remove(key.as_str())?;
                    let user_id = key.rsplit('/').next().unwrap_or_default();
                    let user_key = entity_key(EntityKind::User, user_id);
                    let stored = directory
                        .get(user_key.as_str())?
                        .map(|v| v.value().to_vec());
                    let Some(mut record) = stored
                        .map(|b| read_json::<EntityRecord>("directory", &b))
                        .transpose()?
                    else {
                        continue;
                    };
                    if let Some(doc) = record.doc.take() {
                        // Through the typed user, as the DynamoDB store does.
                        let mut user: User = serde_json::from_value(doc).map_err(|e| {
                            redb::Error::Corrupted(format!("stored user record is unreadable: {e}"))
                        })?;
                        user.tenants.retain(|m| m.tenant_id != tenant);
                        record.doc = Some(
                            serde_json::to_value(&user)
                                .map_err(|e| redb::Error::Corrupted(e.to_string()))?,
                        );
                    }
                    directory.insert(user_key.as_str(), write_json(&record)?.as_slice())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }
}

/// Writes a directory document unless the stored one is newer. `None` when stale, else the
/// document it replaced (if any).
fn put_entity_in(
    txn: &redb::WriteTransaction,
    key: &str,
    doc: Value,
    version: Option<u64>,
) -> Result<Option<Option<Value>>, redb::Error> {
    let mut table = txn.open_table(DIRECTORY)?;
    let stored = table.get(key)?.map(|v| v.value().to_vec());
    let stored = stored
        .map(|b| read_json::<EntityRecord>("directory", &b))
        .transpose()?;
    let stored_version = stored.as_ref().and_then(|r| r.version);
    if is_stale(stored_version, version) {
        return Ok(None);
    }
    let record = EntityRecord {
        doc: Some(doc),
        version: version.or(stored_version),
    };
    table.insert(key, write_json(&record)?.as_slice())?;
    Ok(Some(stored.and_then(|r| r.doc)))
}

/// Deletes a directory document, or tombstones it when the delete carries a version.
fn delete_entity_in(
    txn: &redb::WriteTransaction,
    key: &str,
    version: Option<u64>,
) -> Result<bool, redb::Error> {
    let mut table = txn.open_table(DIRECTORY)?;
    let stored = table.get(key)?.map(|v| v.value().to_vec());
    let stored_version = stored
        .map(|b| read_json::<EntityRecord>("directory", &b))
        .transpose()?
        .and_then(|r| r.version);
    if is_stale(stored_version, version) {
        return Ok(false);
    }
    match version {
        Some(version) => {
            let tombstone = EntityRecord {
                doc: None,
                version: Some(version),
            };
            table.insert(key, write_json(&tombstone)?.as_slice())?;
        }
        None => {
            table.remove(key)?;
        }
    }
    Ok(true)
}
