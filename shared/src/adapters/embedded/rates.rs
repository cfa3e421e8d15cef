//! Uses of each API token per minute, on the token's record (see [`RateStore`]).

use async_trait::async_trait;

use super::tokens::stored_token;
use super::*;
use crate::domain::usage::{Counts, DAYS_KEPT, Day, DayUsage, MinuteUsage};
use crate::ports::{RateStore, Reserved, UseWindow};

#[async_trait]
impl RateStore for EmbeddedStore {
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: UseWindow,
        want: u32,
        limit: u32,
        at: Timestamp,
    ) -> Result<Option<Reserved>> {
        let key = client_id.to_string();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let mut table = txn.open_table(TOKENS)?;
            let Some(mut record) = stored_token(&table, &key)? else {
                return Ok(None);
            };
            let (granted, last_serial) = record.reserve(window.minute, (want, limit), at);
            // A refusal writes nothing: its transaction is dropped uncommitted, with no sync.
            if granted > 0 {
                table.insert(key.as_str(), write_json(&record)?.as_slice())?;
                drop(table);
                txn.commit()?;
            }
            Ok(Some(Reserved {
                granted,
                last_serial,
            }))
        })
        .await
    }

    async fn add_usage(&self, usage: &MinuteUsage) -> Result<()> {
        let owner = usage.client_id.to_string();
        let day = Day::of(usage.minute);
        let counts = usage.counts;
        self.run(move |db| {
            let txn = db.begin_write()?;
            // Read in the writing transaction: a token deleted first gets no record.
            if stored_token(&txn.open_table(TOKENS)?, &owner)?.is_none() {
                return Ok(());
            }
            {
                let mut table = txn.open_table(USAGE)?;
                let key = usage_key(&owner, day);
                let mut kept: Counts = match table.get(key.as_str())? {
                    Some(bytes) => read_json("usage", bytes.value())?,
                    None => Counts::default(),
                };
                kept.add(&counts);
                table.insert(key.as_str(), write_json(&kept)?.as_slice())?;
                // Days past keeping go: at most DAYS_KEPT records per token.
                let oldest = usage_key(&owner, Day(day.0 - DAYS_KEPT + 1));
                for old in keys_under(&table, &owner)? {
                    if old < oldest {
                        table.remove(old.as_str())?;
                    }
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn usage_since(&self, client_id: &ClientId, from: Day) -> Result<Vec<DayUsage>> {
        let owner = client_id.to_string();
        self.read_now(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(USAGE)?;
            let (start, end) = (usage_key(&owner, from), format!("{owner}0"));
            let mut days = Vec::new();
            for entry in table.range(start.as_str()..end.as_str())? {
                let (key, value) = entry?;
                let day = key.value().rsplit('/').next().unwrap_or_default();
                let day = i64::from_str_radix(day, 16).unwrap_or_default();
                let counts = read_json("usage", value.value())?;
                days.push(DayUsage {
                    day: Day(day),
                    counts,
                });
            }
            Ok(days)
        })
    }

    async fn import_usage(&self, client_id: &ClientId, usage: DayUsage) -> Result<bool> {
        let owner = client_id.to_string();
        self.run(move |db| {
            let txn = db.begin_write()?;
            if stored_token(&txn.open_table(TOKENS)?, &owner)?.is_none() {
                return Ok(false);
            }
            {
                let mut table = txn.open_table(USAGE)?;
                let key = usage_key(&owner, usage.day);
                if table.get(key.as_str())?.is_some() {
                    return Ok(false);
                }
                table.insert(key.as_str(), write_json(&usage.counts)?.as_slice())?;
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}

/// The key of a token's counts of `day`.
fn usage_key(owner: &str, day: Day) -> String {
    format!("{owner}/{:08x}", day.0.max(0))
}
