//! The local default's store: redb, an embedded, crash-safe (copy-on-write, fsync on commit)
//! key-value database in one file. Every write is one transaction.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::Value;

use super::records::{
    EntityRecord, RefreshItem, TokenRecord, VendorRecord, corrupt, is_stale, kind_name,
    oldest_beyond,
};
use crate::domain::directory::{EntityKind, User, Version};
use crate::domain::{
    ApiToken, ClientId, RefreshDigest, RefreshRecord, TenantId, Timestamp, UserId, VendorCredential,
};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, RefreshStore, TokenStore, VendorStore};

const VENDORS: TableDefinition<&str, &[u8]> = TableDefinition::new("vendors");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Keyed `<clientId>/<digest>`, so one token's refresh tokens are one key range.
const REFRESH: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_tokens");
/// Directory documents keyed `<KIND>/<id>`; users hold their memberships.
const DIRECTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("directory");
/// Indexes, keyed `<owner>/<member>` with empty values, for listing and cascades.
const TENANT_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenant_tokens");
const USER_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_tokens");
const TENANT_MEMBERS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenant_members");
const ALL_TABLES: [TableDefinition<&str, &[u8]>; 7] = [
    VENDORS,
    TOKENS,
    REFRESH,
    DIRECTORY,
    TENANT_TOKENS,
    USER_TOKENS,
    TENANT_MEMBERS,
];

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens (or creates) the database file, creating every table so reads never miss one.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(|e| {
            Error::internal(format!("cannot open database {}: {e}", path.display()))
        })?;
        let txn = db.begin_write().map_err(db_error)?;
        for table in ALL_TABLES {
            txn.open_table(table).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking database work on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(Error::internal)?
            .map_err(db_error)
    }

    async fn get<R: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
    ) -> Result<Option<R>> {
        let bytes = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(table)?;
                Ok(table.get(key.as_str())?.map(|v| v.value().to_vec()))
            })
            .await?;
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(|e| corrupt(table.name(), e)))
            .transpose()
    }
}

fn db_error(e: impl Into<redb::Error>) -> Error {
    Error::internal(format!("embedded database: {}", e.into()))
}

fn to_json(record: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(Error::internal)
}

fn refresh_key(client_id: &ClientId, digest: &RefreshDigest) -> String {
    format!("{client_id}/{}", digest.0)
}

fn entity_key(kind: EntityKind, id: &str) -> String {
    format!("{}/{id}", kind_name(kind))
}

/// The keys under `prefix/` in an index or keyed table.
fn keys_under(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<Vec<String>, redb::Error> {
    let start = format!("{prefix}/");
    let end = format!("{prefix}0");
    let mut keys = Vec::new();
    for entry in table.range(start.as_str()..end.as_str())? {
        keys.push(entry?.0.value().to_owned());
    }
    Ok(keys)
}

fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, redb::Error> {
    serde_json::from_slice(bytes).map_err(|e| redb::Error::Corrupted(format!("stored record: {e}")))
}

fn write_json(value: &impl Serialize) -> Result<Vec<u8>, redb::Error> {
    serde_json::to_vec(value).map_err(|e| redb::Error::Corrupted(format!("record: {e}")))
}

/// Index entries that make a token findable by tenant and by user.
fn token_index_keys(token: &TokenRecord) -> (String, Option<String>) {
    let client_id = token.client_id();
    (
        format!("{}/{client_id}", token.tenant_id()),
        token.user_id().map(|user| format!("{user}/{client_id}")),
    )
}

/// Deletes one token, its index entries and its refresh tokens inside `txn`.
fn delete_token_in(txn: &redb::WriteTransaction, client_id: &ClientId) -> Result<(), redb::Error> {
    let key = client_id.to_string();
    let removed = txn
        .open_table(TOKENS)?
        .remove(key.as_str())?
        .map(|v| v.value().to_vec());
    if let Some(bytes) = removed {
        let record: TokenRecord = read_json(&bytes)?;
        let (tenant_key, user_key) = token_index_keys(&record);
        txn.open_table(TENANT_TOKENS)?.remove(tenant_key.as_str())?;
        if let Some(user_key) = user_key {
            txn.open_table(USER_TOKENS)?.remove(user_key.as_str())?;
        }
    }
    let mut refresh = txn.open_table(REFRESH)?;
    for key in keys_under(&refresh, &key)? {
        refresh.remove(key.as_str())?;
    }
    Ok(())
}

#[async_trait]
impl VendorStore for EmbeddedStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let record: Option<VendorRecord> = self.get(VENDORS, client_id.to_string()).await?;
        Ok(record.map(Into::into))
    }

    async fn put_vendor(&self, credential: &VendorCredential) -> Result<()> {
        let key = credential.client_id.to_string();
        let value = to_json(&VendorRecord::from(credential))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(VENDORS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn has_vendor(&self) -> Result<bool> {
        self.run(|db| Ok(!db.begin_read()?.open_table(VENDORS)?.is_empty()?))
            .await
    }
}

#[async_trait]
impl TokenStore for EmbeddedStore {
    async fn put_new(&self, token: &ApiToken) -> Result<()> {
        let key = token.client_id.to_string();
        let record = TokenRecord::from(token);
        let value = to_json(&record)?;
        let inserted = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut table = txn.open_table(TOKENS)?;
                    if table.get(key.as_str())?.is_some() {
                        return Ok(false);
                    }
                    table.insert(key.as_str(), value.as_slice())?;
                }
                let (tenant_key, user_key) = token_index_keys(&record);
                txn.open_table(TENANT_TOKENS)?
                    .insert(tenant_key.as_str(), [].as_slice())?;
                if let Some(user_key) = user_key {
                    txn.open_table(USER_TOKENS)?
                        .insert(user_key.as_str(), [].as_slice())?;
                }
                txn.commit()?;
                Ok(true)
            })
            .await?;
        if inserted {
            Ok(())
        } else {
            Err(Error::Conflict("a token with this clientId exists".into()))
        }
    }

    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>> {
        let record: Option<TokenRecord> = self.get(TOKENS, client_id.to_string()).await?;
        Ok(record.map(Into::into))
    }

    async fn replace(&self, token: &ApiToken) -> Result<()> {
        let key = token.client_id.to_string();
        let value = to_json(&TokenRecord::from(token))?;
        let replaced = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut table = txn.open_table(TOKENS)?;
                    if table.get(key.as_str())?.is_none() {
                        return Ok(false);
                    }
                    table.insert(key.as_str(), value.as_slice())?;
                }
                txn.commit()?;
                Ok(true)
            })
            .await?;
        replaced
            .then_some(())
            .ok_or_else(|| Error::NotFound("Token not found".into()))
    }

    async fn touch(&self, client_id: &ClientId, at: Timestamp) -> Result<()> {
        let key = client_id.to_string();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TOKENS)?;
                let stored = table.get(key.as_str())?.map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut token = ApiToken::from(read_json::<TokenRecord>(&bytes)?);
                    if token.use_is_news(at) {
                        token.last_used_at = Some(at);
                        table.insert(
                            key.as_str(),
                            write_json(&TokenRecord::from(&token))?.as_slice(),
                        )?;
                    }
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>> {
        self.indexed_tokens(TENANT_TOKENS, tenant.to_string()).await
    }

    async fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>> {
        self.indexed_tokens(USER_TOKENS, user.to_string()).await
    }

    async fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()> {
        let ids = client_ids.to_vec();
        self.run(move |db| {
            let txn = db.begin_write()?;
            for id in &ids {
                delete_token_in(&txn, id)?;
            }
            Ok(txn.commit()?)
        })
        .await
    }
}

impl EmbeddedStore {
    async fn indexed_tokens(
        &self,
        index: TableDefinition<'static, &'static str, &'static [u8]>,
        owner: String,
    ) -> Result<Vec<ApiToken>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let tokens = txn.open_table(TOKENS)?;
            let mut found = Vec::new();
            for key in keys_under(&txn.open_table(index)?, &owner)? {
                let client_id = key.rsplit('/').next().unwrap_or_default();
                if let Some(bytes) = tokens.get(client_id)? {
                    found.push(ApiToken::from(read_json::<TokenRecord>(bytes.value())?));
                }
            }
            Ok(found)
        })
        .await
    }
}

#[async_trait]
impl DirectoryStore for EmbeddedStore {
    async fn put_entity(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
        version: Version,
    ) -> Result<bool> {
        let key = entity_key(kind, id);
        let doc = doc.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = put_entity_in(&txn, &key, doc, version)?.is_some();
            txn.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<Value>> {
        let record: Option<EntityRecord> = self.get(DIRECTORY, entity_key(kind, id)).await?;
        Ok(record.and_then(|r| r.doc))
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Value>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DIRECTORY)?;
            let mut docs = Vec::new();
            for key in keys_under(&table, kind_name(kind))? {
                if let Some(bytes) = table.get(key.as_str())? {
                    docs.extend(read_json::<EntityRecord>(bytes.value())?.doc);
                }
            }
            Ok(docs)
        })
        .await
    }

    async fn delete_entity(&self, kind: EntityKind, id: &str, version: Version) -> Result<bool> {
        let key = entity_key(kind, id);
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = delete_entity_in(&txn, &key, version)?;
            txn.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn put_user(&self, user: &User, version: Version) -> Result<bool> {
        let key = entity_key(EntityKind::User, user.id.as_str());
        let user = user.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let doc =
                serde_json::to_value(&user).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            let Some(old) = put_entity_in(&txn, &key, doc, version)? else {
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

    async fn delete_user(&self, id: &UserId, version: Version) -> Result<bool> {
        let key = entity_key(EntityKind::User, id.as_str());
        let old = self.user(id).await?;
        let user_id = id.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let applied = delete_entity_in(&txn, &key, version)?;
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
                    let Some(mut record) =
                        stored.map(|b| read_json::<EntityRecord>(&b)).transpose()?
                    else {
                        continue;
                    };
                    if let Some(Value::Object(doc)) = record.doc.as_mut()
                        && let Some(Value::Array(tenants)) = doc.get_mut("tenants")
                    {
                        tenants.retain(|m| m["tenantId"] != tenant.as_str());
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
    version: Version,
) -> Result<Option<Option<Value>>, redb::Error> {
    let mut table = txn.open_table(DIRECTORY)?;
    let stored = table.get(key)?.map(|v| v.value().to_vec());
    let stored = stored.map(|b| read_json::<EntityRecord>(&b)).transpose()?;
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
    version: Version,
) -> Result<bool, redb::Error> {
    let mut table = txn.open_table(DIRECTORY)?;
    let stored = table.get(key)?.map(|v| v.value().to_vec());
    let stored_version = stored
        .map(|b| read_json::<EntityRecord>(&b))
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

#[async_trait]
impl RefreshStore for EmbeddedStore {
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()> {
        let prefix = format!("{client_id}/");
        let key = refresh_key(client_id, &record.digest);
        let value = to_json(&RefreshItem::from(record))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(REFRESH)?;
                table.insert(key.as_str(), value.as_slice())?;
                let mut live = Vec::new();
                // '0' is the character after '/', so this range is exactly the prefix.
                let end = format!("{}0", prefix.trim_end_matches('/'));
                for entry in table.range(prefix.as_str()..end.as_str())? {
                    let (_, value) = entry?;
                    if let Ok(item) = serde_json::from_slice::<RefreshItem>(value.value()) {
                        live.push(RefreshRecord::from(item));
                    }
                }
                for dropped in oldest_beyond(live, keep) {
                    table.remove(format!("{prefix}{}", dropped.digest.0).as_str())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn take_refresh(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>> {
        let key = refresh_key(client_id, digest);
        let bytes = self
            .run(move |db| {
                let txn = db.begin_write()?;
                let removed = txn
                    .open_table(REFRESH)?
                    .remove(key.as_str())?
                    .map(|v| v.value().to_vec());
                txn.commit()?;
                Ok(removed)
            })
            .await?;
        bytes
            .map(|b| {
                serde_json::from_slice::<RefreshItem>(&b)
                    .map(Into::into)
                    .map_err(|e| corrupt("refresh token", e))
            })
            .transpose()
    }
}
