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

use super::records::{RefreshItem, TokenRecord, VendorRecord, corrupt, oldest_beyond};
use crate::domain::{ApiToken, ClientId, RefreshDigest, RefreshRecord, VendorCredential};
use crate::error::{Error, Result};
use crate::ports::{RefreshStore, TokenStore, VendorStore};

const VENDORS: TableDefinition<&str, &[u8]> = TableDefinition::new("vendors");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Keyed `<clientId>/<digest>`, so one token's refresh tokens are one key range.
const REFRESH: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_tokens");

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
        for table in [VENDORS, TOKENS, REFRESH] {
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
        let value = to_json(&TokenRecord::from(token))?;
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
