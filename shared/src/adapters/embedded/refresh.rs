//! Single-use refresh tokens, one key range per API token.

use async_trait::async_trait;
use redb::ReadableTable;

use super::*;

fn refresh_key(client_id: &ClientId, digest: &RefreshDigest) -> String {
    format!("{client_id}/{}", digest.0)
}

/// Drops the oldest of `client_id`'s refresh tokens beyond `keep`, inside the write `txn`.
fn prune(
    table: &mut redb::Table<'_, &str, &[u8]>,
    client_id: &ClientId,
    keep: usize,
) -> Result<(), redb::Error> {
    let prefix = format!("{client_id}/");
    // '0' is the character after '/', so this range is exactly the prefix.
    let end = format!("{client_id}0");
    let mut live = Vec::new();
    for entry in table.range(prefix.as_str()..end.as_str())? {
        let (_, value) = entry?;
        let item: RefreshItem = read_json("refresh token", value.value())?;
        live.push(RefreshRecord::from(item));
    }
    for dropped in oldest_beyond(live, keep) {
        table.remove(refresh_key(client_id, &dropped.digest).as_str())?;
    }
    Ok(())
}

#[async_trait]
impl RefreshStore for EmbeddedStore {
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()> {
        let client_id = *client_id;
        let key = refresh_key(&client_id, &record.digest);
        let value = to_json(&RefreshItem::from(record))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(REFRESH)?;
                table.insert(key.as_str(), value.as_slice())?;
                prune(&mut table, &client_id, keep)?;
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn refresh_token(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>> {
        let key = refresh_key(client_id, digest);
        let item: Option<RefreshItem> = self.get(REFRESH, "refresh token", key).await?;
        Ok(item.map(Into::into))
    }

    async fn replace_refresh(
        &self,
        client_id: &ClientId,
        used: &RefreshDigest,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<bool> {
        let client_id = *client_id;
        let used = refresh_key(&client_id, used);
        let key = refresh_key(&client_id, &record.digest);
        let value = to_json(&RefreshItem::from(record))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(REFRESH)?;
                if table.remove(used.as_str())?.is_none() {
                    return Ok(false); // dropping the transaction writes nothing
                }
                table.insert(key.as_str(), value.as_slice())?;
                prune(&mut table, &client_id, keep)?;
            }
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}
