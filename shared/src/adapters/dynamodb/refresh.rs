//! Single-use refresh tokens, kept in their API token's partition.

use async_trait::async_trait;

use super::*;

pub(super) fn refresh_sk(digest: &RefreshDigest) -> String {
    format!("REFRESH#{}", digest.0)
}

#[async_trait]
impl RefreshStore for DynamoStore {
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()> {
        let pk = token_pk(client_id);
        let item = to_item(
            pk.clone(),
            refresh_sk(&record.digest),
            &RefreshItem::from(record),
        )?;
        self.put(item).await?;

        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :refresh)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":refresh", s("REFRESH#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut live = Vec::with_capacity(pages.len());
        for item in pages {
            let item: RefreshItem = from_item("refresh token", item.map_err(dynamo_error)?)?;
            live.push(RefreshRecord::from(item));
        }
        let dropped = oldest_beyond(live, keep)
            .iter()
            .map(|old| key(pk.clone(), refresh_sk(&old.digest)))
            .collect();
        self.delete_all(dropped).await
    }

    async fn take_refresh(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>> {
        let key = key(token_pk(client_id), refresh_sk(digest));
        let item: Option<RefreshItem> = self.take("refresh token", key).await?;
        Ok(item.map(Into::into))
    }
}
