//! Every record, a page at a time (see [`ExportStore`]): one `Scan` page of the table, each
//! item that holds a record turned into its exported shape, the rest (indexes, rate counts, key
//! claims, audit copies other than the vendor-wide one, hand-offs, the wrapped signing key)
//! left out, for an import makes them again. The cursor is the scan's last key.

use async_trait::async_trait;

use super::*;
use crate::adapters::records::{Exported, kind_named};
use crate::domain::revocation::Revocation;
use crate::ports::ExportStore;

/// The record `item` holds, as exported; `None` for an item derived from records.
fn exported(item: Item) -> Result<Option<Exported>> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
        return Ok(None);
    };
    let (head, rest) = pk.split_once('#').unwrap_or((pk.as_str(), ""));
    let directory = |kind: &str, id: String| -> Result<Option<Exported>> {
        check_format("directory", &item)?;
        let record = serde_dynamo::from_item(item.clone()).map_err(|e| corrupt("directory", e))?;
        Ok(Some(Exported::Directory {
            entity: kind.to_owned(),
            id,
            record,
        }))
    };
    match (head, sk.as_str()) {
        ("VENDOR", _) => Ok(Some(Exported::Vendor {
            record: from_item("vendor", item)?,
        })),
        ("TOKEN", "TOKEN") => Ok(Some(Exported::Token {
            record: Box::new(from_item("token", item)?),
        })),
        ("TOKEN", mark) => in_token(rest, mark, &item).map(Some),
        ("WORKLOAD", _) => {
            let until = ttl_of(&item).ok_or_else(|| corrupt("workload token", &pk))?;
            Ok(Some(Exported::SpentWorkload {
                mark: rest.to_owned(),
                until: until * 1000,
            }))
        }
        ("PERMISSION" | "ROLE" | "CONFIGURATION", id) if rest.is_empty() => {
            directory(head, id.to_owned())
        }
        ("TENANT" | "USER", kind) if kind == head && kind_named(kind).is_some() => {
            directory(head, rest.to_owned())
        }
        ("REVOKED", _) => {
            let item: revocations::RevocationItem = from_item("revocation", item)?;
            Ok(Some(Exported::revocation(&Revocation::from(item))))
        }
        ("AUDIT", _) if pk.starts_with(crate::audit_stream::STREAMED_PREFIX) => {
            check_format("audit event", &item)?;
            let json = text("event").unwrap_or_default();
            let event = serde_json::from_str(&json).map_err(|e| corrupt("audit event", e))?;
            Ok(Some(Exported::Audit { event }))
        }
        _ => Ok(None),
    }
}

/// An item of a token's partition, `sk` `mark`: a day's counts, or a refresh token spent.
fn in_token(owner: &str, mark: &str, item: &Item) -> Result<Exported> {
    let client_id = ClientId::parse(owner).map_err(|_| corrupt("token item", owner))?;
    if mark.starts_with("USAGE#") {
        let usage = rates::day_usage(item)?;
        return Ok(Exported::Usage {
            client_id,
            day: usage.day.0,
            counts: usage.counts,
        });
    }
    let serial = mark
        .strip_prefix("REFRESH#")
        .map(|s| u64::from_str_radix(s, 16));
    match (serial, ttl_of(item)) {
        (Some(Ok(serial)), Some(ttl)) => Ok(Exported::SpentRefresh {
            client_id,
            serial,
            until: ttl * 1000,
        }),
        _ => Err(corrupt("refresh", format!("item {owner} {mark}"))),
    }
}

/// An item's `ttl` (seconds since the epoch).
fn ttl_of(item: &Item) -> Option<i64> {
    item.get("ttl")?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl ExportStore for DynamoStore {
    async fn export_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Exported>, Option<String>)> {
        let start = match cursor {
            None => None,
            Some(cursor) => {
                let key: HashMap<String, String> = serde_json::from_str(&cursor)
                    .map_err(|_| Error::bad_request("not an export cursor"))?;
                Some(key.into_iter().map(|(k, v)| (k, s(v))).collect())
            }
        };
        let scanned = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(dynamo_error)?;
        let mut page = Vec::new();
        for item in scanned.items.unwrap_or_default() {
            page.extend(exported(item)?);
        }
        let next = scanned.last_evaluated_key.map(|key| {
            let key: HashMap<&String, &str> = key
                .iter()
                .filter_map(|(k, v)| Some((k, v.as_s().ok()?.as_str())))
                .collect();
            serde_json::to_string(&key).unwrap_or_default()
        });
        Ok((page, next))
    }
}
