//! Single-use refresh tokens, one key range per API token.

use async_trait::async_trait;
use redb::ReadableTable;

use super::*;

fn refresh_key(client_id: &ClientId, digest: &RefreshDigest) -> String {
    format!("{client_id}/{}", digest.0)
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
                    let item: RefreshItem = read_json("refresh token", value.value())?;
                    live.push(RefreshRecord::from(item));
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
