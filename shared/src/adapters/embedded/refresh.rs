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
        let item: Option<RefreshItem> = self.take(REFRESH, "refresh token", key).await?;
        Ok(item.map(Into::into))
    }
}
