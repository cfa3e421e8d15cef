//! The local default's store: redb, an embedded, crash-safe (copy-on-write, fsync on commit)
//! key-value database in one file. Every write is one transaction. One file per port:
//! `vendors`, `tokens`, `refresh`, `directory`, `handoffs`, as in the DynamoDB store.

mod audits;
mod directory;
mod export;
mod handoffs;
mod rates;
mod refresh;
mod revocations;
mod tokens;
mod vendors;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::Value;

use super::records::{
    FORMAT_FIELD, HandoffItem, RECORD_FORMAT, SecretFields, TokenRecord, VendorRecord, corrupt,
    kind_name, readable_format, secret_fields, stored_record, typed_record, unreadable_format,
};
use crate::domain::audit::AuditEvent;
use crate::domain::directory::{EntityKind, KeyClaim};
use crate::domain::document::Record as TypedRecord;
use crate::domain::lives::{DirectoryRecord, Revision};
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::{
    ApiToken, ClientId, SecretHash, SecretState, TenantId, Timestamp, UserId, VendorCredential,
};
use crate::error::{Error, Result};
use crate::ports::{
    DirectoryStore, HandoffStore, Listed, RefreshStore, Spend, TokenStore, VendorStore,
};
pub(super) const VENDORS: TableDefinition<&str, &[u8]> = TableDefinition::new("vendors");
pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Spent refresh tokens keyed `<clientId>/<number>`, so one token's are one key range.
pub(super) const REFRESH: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_tokens");
/// Directory records keyed `<KIND>/<id>`, with their revisions; users hold their memberships.
pub(super) const DIRECTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("directory");
/// Indexes, keyed `<owner>/<member>` with empty values, for listing and cascades.
pub(super) const TENANT_TOKENS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("tenant_tokens");
pub(super) const USER_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_tokens");
pub(super) const TENANT_MEMBERS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("tenant_members");
/// Portal hand-offs keyed by digest.
pub(super) const HANDOFFS: TableDefinition<&str, &[u8]> = TableDefinition::new("handoffs");
/// Revoked JWTs keyed by clientId.
pub(super) const REVOCATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("revocations");
/// The ids of live tenants and of live users (empty values), kept by every directory write:
/// listings page through them, and their lengths count the live records.
pub(super) const LISTED_TENANTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("listed_tenants");
pub(super) const LISTED_USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("listed_users");
/// The keys of roles and permissions (`<kind>/<key>`) and where they are held: a JSON array of
/// scopes, `null` for the vendor's, else a tenant id. See [`KeyClaim`].
pub(super) const CLAIMS: TableDefinition<&str, &[u8]> = TableDefinition::new("key_claims");
/// Workload tokens used (see [`RefreshStore::spend_workload_token`]), keyed by their mark, each
/// holding when it may go (unix milliseconds, big-endian); and the same marks keyed
/// `<when, 16 hex digits>/<mark>`, so the oldest are found first and swept.
pub(super) const WORKLOAD_TOKENS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("workload_tokens");
pub(super) const WORKLOAD_EXPIRY: TableDefinition<&str, &[u8]> =
    TableDefinition::new("workload_expiry");
/// Each token's counts per day, keyed `<clientId>/<day, 8 hex digits>` (JSON [`Counts`]).
pub(super) const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
pub(super) const ALL_TABLES: [TableDefinition<&str, &[u8]>; 19] = [
    audits::AUDITS,
    audits::AUDIT_OUTBOX,
    audits::AUDIT_INDEX,
    audits::AUDIT_COUNTS,
    HANDOFFS,
    REVOCATIONS,
    VENDORS,
    TOKENS,
    REFRESH,
    WORKLOAD_TOKENS,
    WORKLOAD_EXPIRY,
    USAGE,
    DIRECTORY,
    TENANT_TOKENS,
    USER_TOKENS,
    TENANT_MEMBERS,
    LISTED_TENANTS,
    LISTED_USERS,
    CLAIMS,
];

/// The page cache's bound.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Db>,
}

/// The database, whether the audit events written to it are also queued for the SIEM
/// stream (see [`EmbeddedStore::open_streaming_audits`]), and the stream's file once it flows.
pub(super) struct Db {
    redb: Database,
    streams_audits: bool,
    stream_file: std::sync::Mutex<Option<std::fs::File>>,
}

impl std::ops::Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.redb
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database file, creating every table so reads never miss one.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, false)
    }

    /// As [`Self::open`], and every audit event is also queued, in the write that records it,
    /// for [`Self::stream_audits_to`].
    pub fn open_streaming_audits(path: &Path) -> Result<Self> {
        Self::open_as(path, true)
    }

    fn open_as(path: &Path, streams_audits: bool) -> Result<Self> {
        // redb caches up to 1 GiB of pages by default; the local default's data is far smaller,
        // and a bounded cache keeps the server's memory flat as tokens churn.
        // A file not closed cleanly (the process killed or crashed) is checked on opening; said
        // once, since it takes a while on a large store and should not happen on a stop.
        let told = std::cell::Cell::new(false);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_repair_callback(move |_| {
                if !told.replace(true) {
                    tracing::warn!(
                        "the store was not closed cleanly (the process was killed or crashed); \
                         checking it before serving"
                    );
                }
            })
            .create(path)
            .map_err(|e| {
                Error::internal(format!("cannot open database {}: {e}", path.display()))
            })?;
        let txn = db.begin_write().map_err(db_error)?;
        let listed = directory::has_table(&txn, LISTED_TENANTS).map_err(db_error)?;
        let claimed = directory::has_table(&txn, CLAIMS).map_err(db_error)?;
        for table in ALL_TABLES {
            txn.open_table(table).map_err(db_error)?;
        }
        if !listed {
            directory::fill_listings(&txn).map_err(db_error)?;
        }
        if !claimed {
            directory::fill_claims(&txn).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        let db = Db {
            redb: db,
            streams_audits,
            stream_file: std::sync::Mutex::default(),
        };
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking database work on the blocking pool.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(Error::internal)?
            .map_err(db_error)
    }

    /// Runs a point read in place: a read transaction over a few keys of a small, cached
    /// database takes microseconds, less than a hop to the blocking pool and back.
    pub(super) fn read_now<T>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, redb::Error>,
    ) -> Result<T> {
        work(&self.db).map_err(db_error)
    }

    pub(super) async fn get<R: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        what: &'static str,
        key: String,
    ) -> Result<Option<R>> {
        let bytes = self.read_now(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(table)?;
            Ok(table.get(key.as_str())?.map(|v| v.value().to_vec()))
        })?;
        decode(what, bytes)
    }
}

/// A record read or taken, as `R`; an unreadable one is reported, not skipped.
fn decode<R: DeserializeOwned>(what: &str, bytes: Option<Vec<u8>>) -> Result<Option<R>> {
    bytes
        .map(|b| {
            readable_format(what, format_of(&b))?;
            serde_json::from_slice(&b).map_err(|e| corrupt(what, e))
        })
        .transpose()
}

/// The format a stored JSON record says it has (see [`RECORD_FORMAT`]); `None` for format 0,
/// and for values that are no record (an index's, a list).
fn format_of(bytes: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Format {
        v: Option<u64>,
    }
    serde_json::from_slice::<Format>(bytes).ok()?.v
}

/// `record`'s JSON, stamped with this release's format when it is an object.
fn stamped_json(record: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(record)?;
    if let Value::Object(fields) = &mut value {
        fields.insert(FORMAT_FIELD.to_owned(), RECORD_FORMAT.into());
    }
    serde_json::to_vec(&value)
}

pub(super) fn db_error(e: impl Into<redb::Error>) -> Error {
    Error::internal(format!("embedded database: {}", e.into()))
}

impl EmbeddedStore {
    /// Writes `fields` (set, or removed when `None`) into the record if its `secretHash` is
    /// still `from`; `false`, and no change, when the record changed or is gone.
    pub(super) async fn swap_secret_fields(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
        from: &SecretHash,
        (fields, event): (SecretFields, Option<&AuditEvent>),
    ) -> Result<bool> {
        let from = Value::from(from.as_stored());
        let holds = move |record: &Record| record.get("secretHash") == Some(&from);
        self.patch_record(table, key, holds, (fields, event.cloned()))
            .await
    }

    /// Writes `fields` (set, or removed when `None`) into the record if it exists and `holds`
    /// of it, with `event` if any, in one transaction; `false`, and no change, otherwise
    /// (nothing is created).
    pub(super) async fn patch_record(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
        holds: impl FnOnce(&Record) -> bool + Send + 'static,
        (fields, event): (SecretFields, Option<AuditEvent>),
    ) -> Result<bool> {
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut records = txn.open_table(table)?;
                let stored = records.get(key.as_str())?.map(|v| v.value().to_vec());
                let Some(mut record) = stored
                    .map(|bytes| read_json::<Record>("credential", &bytes))
                    .transpose()?
                    .filter(holds)
                else {
                    return Ok(false); // dropped uncommitted: nothing to write
                };
                for (name, value) in fields {
                    match value {
                        Some(value) => record.insert(name.to_owned(), value),
                        None => record.remove(name),
                    };
                }
                records.insert(key.as_str(), write_json(&record)?.as_slice())?;
            }
            if let Some(event) = &event {
                db.record_audit(&txn, event)?;
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}

/// A stored record as the JSON object it is.
pub(super) type Record = serde_json::Map<String, Value>;

pub(super) fn to_json(record: &impl Serialize) -> Result<Vec<u8>> {
    stamped_json(record).map_err(Error::internal)
}

/// The keys under `prefix/` in an index or keyed table.
pub(super) fn keys_under(
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

/// Reads a stored record; an unreadable one is reported as `stored <what> record is unreadable`,
/// as the DynamoDB store reports it.
pub(super) fn read_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, redb::Error> {
    if let Some(why) = unreadable_format(what, format_of(bytes)) {
        return Err(redb::Error::Corrupted(why));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| redb::Error::Corrupted(format!("stored {what} record is unreadable: {e}")))
}

pub(super) fn write_json(value: &impl Serialize) -> Result<Vec<u8>, redb::Error> {
    stamped_json(value).map_err(|e| redb::Error::Corrupted(format!("record: {e}")))
}
