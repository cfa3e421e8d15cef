//! Uses of each API token per minute, on the token's record (see [`RateStore`]).

use async_trait::async_trait;

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
            let reserved = {
                let mut table = txn.open_table(TOKENS)?;
                let stored = table.get(key.as_str())?.map(|v| v.value().to_vec());
                let Some(bytes) = stored else {
                    return Ok(None);
                };
                let mut record: TokenRecord = read_json("token", &bytes)?;
                let (granted, last_serial) = record.reserve(window.minute, (want, limit), at);
                if granted > 0 {
                    table.insert(key.as_str(), write_json(&record)?.as_slice())?;
                }
                Reserved {
                    granted,
                    last_serial,
                }
            };
            txn.commit()?;
            Ok(Some(reserved))
        })
        .await
    }
}
