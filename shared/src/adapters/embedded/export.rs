//! Every record, a page at a time (see [`ExportStore`]): the vendors, the directory (with its
//! tombstones), the tokens, the revocations, the spent refresh tokens, the audit events, the
//! tokens' day counts and the workload tokens taken, each table in key order. The cursor names the table and the last key exported.

use async_trait::async_trait;
use redb::ReadableDatabase;

use super::*;
use crate::adapters::records::{Exported, kind_named};
use crate::ports::ExportStore;

/// The tables exported, in order; the rest is derived from them.
const EXPORTED: [TableDefinition<&str, &[u8]>; 8] = [
    VENDORS,
    DIRECTORY,
    TOKENS,
    REVOCATIONS,
    REFRESH,
    audits::AUDITS,
    USAGE,
    WORKLOAD_TOKENS,
];

/// The record stored at `key` of table `table` (an index of [`EXPORTED`]) as exported.
fn exported(table: usize, key: &str, bytes: &[u8]) -> Result<Exported, redb::Error> {
    let bad_key = || redb::Error::Corrupted(format!("unexpected key {key:?}"));
    let client_id = |text: &str| ClientId::parse(text).map_err(|_| bad_key());
    Ok(match table {
        0 => Exported::Vendor {
            record: read_json("vendor", bytes)?,
        },
        1 => {
            let (kind, id) = key.split_once('/').ok_or_else(bad_key)?;
            kind_named(kind).ok_or_else(bad_key)?;
            let stored: directory::Stored = read_json("directory", bytes)?;
            Exported::Directory {
                entity: kind.to_owned(),
                id: id.to_owned(),
                record: stored.record,
            }
        }
        2 => Exported::Token {
            record: Box::new(read_json("token", bytes)?),
        },
        3 => {
            let sub = client_id(key.split('/').next().unwrap_or_default())?;
            let stored: revocations::Stored = read_json("revocation", bytes)?;
            Exported::revocation(&revocations::revocation(sub, &stored))
        }
        4 => {
            let (owner, serial) = key.split_once('/').ok_or_else(bad_key)?;
            let serial = u64::from_str_radix(serial, 16).map_err(|_| bad_key())?;
            let until: [u8; 8] = bytes.try_into().map_err(|_| bad_key())?;
            Exported::SpentRefresh {
                client_id: client_id(owner)?,
                serial,
                until: i64::from_be_bytes(until),
            }
        }
        5 => Exported::Audit {
            event: read_json("audit event", bytes)?,
        },
        6 => {
            let (owner, day) = key.split_once('/').ok_or_else(bad_key)?;
            Exported::Usage {
                client_id: client_id(owner)?,
                day: i64::from_str_radix(day, 16).map_err(|_| bad_key())?,
                counts: read_json("usage", bytes)?,
            }
        }
        _ => {
            let until: [u8; 8] = bytes.try_into().map_err(|_| bad_key())?;
            Exported::SpentWorkload {
                mark: key.to_owned(),
                until: i64::from_be_bytes(until),
            }
        }
    })
}

/// A cursor: the table's index, and the last key exported from it.
fn parse_cursor(cursor: Option<&str>) -> Result<(usize, Option<String>), redb::Error> {
    let Some(cursor) = cursor else {
        return Ok((0, None));
    };
    let bad = || redb::Error::Corrupted(format!("not an export cursor: {cursor:?}"));
    let (table, key) = cursor.split_once(':').ok_or_else(bad)?;
    Ok((table.parse().map_err(|_| bad())?, Some(key.to_owned())))
}

#[async_trait]
impl ExportStore for EmbeddedStore {
    async fn export_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Exported>, Option<String>)> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let (mut table, mut after) = parse_cursor(cursor.as_deref())?;
            let mut page = Vec::new();
            while let Some(definition) = EXPORTED.get(table) {
                let records = txn.open_table(*definition)?;
                let range = match &after {
                    Some(key) => records.range::<&str>((
                        std::ops::Bound::Excluded(key.as_str()),
                        std::ops::Bound::Unbounded,
                    ))?,
                    None => records.range::<&str>(..)?,
                };
                for entry in range {
                    let (key, value) = entry?;
                    let key = key.value().to_owned();
                    page.push(exported(table, &key, value.value())?);
                    if page.len() >= limit {
                        return Ok((page, Some(format!("{table}:{key}"))));
                    }
                }
                (table, after) = (table + 1, None);
            }
            Ok((page, None))
        })
        .await
    }
}
