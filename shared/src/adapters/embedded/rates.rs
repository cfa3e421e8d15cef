//! Uses of each API token per minute, on the token's record (see [`RateStore`]).

use async_trait::async_trait;

use super::tokens::stored_token;
use super::*;
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
}
