//! Spent refresh tokens, keyed `<clientId>/<number>` so one token's are one key range, each
//! holding when it may go (unix milliseconds).

use async_trait::async_trait;
use redb::ReadableTable;

use super::tokens::stored_token;
use super::*;
use crate::domain::token::MAX_REFRESH_TOKENS;
use crate::ports::Clock;

#[async_trait]
impl RefreshStore for EmbeddedStore {
    async fn spend_refresh(
        &self,
        client_id: &ClientId,
        serial: u64,
        until: Timestamp,
    ) -> Result<bool> {
        let owner = client_id.to_string();
        let key = refresh_mark(client_id, serial);
        self.run(move |db| {
            let txn = db.begin_write()?;
            // Read in the writing transaction: a token deleted before this commits leaves
            // nothing to spend, and no mark behind.
            let Some(token) = stored_token(&txn.open_table(TOKENS)?, &owner)? else {
                return Ok(false);
            };
            let token = ApiToken::from(token);
            {
                let mut spent = txn.open_table(REFRESH)?;
                if spent.get(key.as_str())?.is_some() {
                    return Ok(false); // dropping the transaction writes nothing
                }
                spent.insert(key.as_str(), until.millis().to_be_bytes().as_slice())?;
                // Marks of numbers older than the newest hundred are of no use: those refresh
                // tokens are refused anyway.
                for old in keys_under(&spent, &owner)? {
                    let number = old.rsplit('/').next().unwrap_or_default();
                    let number = u64::from_str_radix(number, 16).unwrap_or(0);
                    if number + MAX_REFRESH_TOKENS <= token.issued {
                        spent.remove(old.as_str())?;
                    }
                }
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    async fn spend_workload_token(
        &self,
        client_id: &ClientId,
        (at, id): (usize, &str),
        mark: &str,
        until: Timestamp,
    ) -> Result<Spend> {
        let (owner, id, mark) = (client_id.to_string(), id.to_owned(), mark.to_owned());
        let now = crate::adapters::clock::SystemClock.now();
        self.run(move |db| {
            let txn = db.begin_write()?;
            // Read in the writing transaction: a policy removed or a token deleted before this
            // commits leaves no mark, and no exchange.
            let token = stored_token(&txn.open_table(TOKENS)?, &owner)?.map(ApiToken::from);
            let admitted =
                token.is_some_and(|t| t.trust_policies.get(at).is_some_and(|p| p.id == id));
            if !admitted {
                return Ok(Spend::Unadmitted);
            }
            {
                let mut marks = txn.open_table(WORKLOAD_TOKENS)?;
                if marks.get(mark.as_str())?.is_some() {
                    return Ok(Spend::Replayed);
                }
                let mut expiry = txn.open_table(WORKLOAD_EXPIRY)?;
                let swept_before = expiry_key(now, "");
                let gone: Vec<String> = expiry
                    .range(..swept_before.as_str())?
                    .take(SWEPT_PER_SPEND)
                    .map(|entry| entry.map(|(key, _)| key.value().to_owned()))
                    .collect::<Result<_, _>>()?;
                for key in gone {
                    expiry.remove(key.as_str())?;
                    if let Some((_, old)) = key.split_once('/') {
                        marks.remove(old)?;
                    }
                }
                marks.insert(mark.as_str(), until.millis().to_be_bytes().as_slice())?;
                expiry.insert(expiry_key(until, &mark).as_str(), [].as_slice())?;
            }
            txn.commit()?;
            Ok(Spend::Spent)
        })
        .await
    }

    async fn unspend_workload_token(&self, mark: &str) -> Result<()> {
        let mark = mark.to_owned();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut marks = txn.open_table(WORKLOAD_TOKENS)?;
                let until = marks.remove(mark.as_str())?.map(|kept| {
                    let bytes: [u8; 8] = kept.value().try_into().unwrap_or_default();
                    Timestamp::from_millis(i64::from_be_bytes(bytes))
                });
                if let Some(until) = until {
                    txn.open_table(WORKLOAD_EXPIRY)?
                        .remove(expiry_key(until, &mark).as_str())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn import_workload_mark(&self, mark: &str, until: Timestamp) -> Result<bool> {
        let mark = mark.to_owned();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut marks = txn.open_table(WORKLOAD_TOKENS)?;
                if marks.get(mark.as_str())?.is_some() {
                    return Ok(false);
                }
                marks.insert(mark.as_str(), until.millis().to_be_bytes().as_slice())?;
                txn.open_table(WORKLOAD_EXPIRY)?
                    .insert(expiry_key(until, &mark).as_str(), [].as_slice())?;
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    async fn unspend_refresh(&self, client_id: &ClientId, serial: u64) -> Result<()> {
        let key = refresh_mark(client_id, serial);
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(REFRESH)?.remove(key.as_str())?;
            Ok(txn.commit()?)
        })
        .await
    }
}

/// How many marks past their time one spend removes: the sweep keeps pace with the spends.
const SWEPT_PER_SPEND: usize = 16;

/// A mark's key in [`WORKLOAD_EXPIRY`]: when it may go, then the mark.
fn expiry_key(until: Timestamp, mark: &str) -> String {
    format!("{:016x}/{mark}", until.millis().max(0))
}

/// The key of refresh token number `serial`'s spent mark.
fn refresh_mark(client_id: &ClientId, serial: u64) -> String {
    format!("{client_id}/{serial:016x}")
}
