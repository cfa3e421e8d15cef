//! Spent refresh tokens, keyed `<clientId>/<number>` so one token's are one key range, each
//! holding when it may go (unix milliseconds).

use async_trait::async_trait;
use redb::ReadableTable;

use super::tokens::stored_token;
use super::*;
use crate::domain::token::MAX_REFRESH_TOKENS;

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

/// The key of refresh token number `serial`'s spent mark.
fn refresh_mark(client_id: &ClientId, serial: u64) -> String {
    format!("{client_id}/{serial:016x}")
}
