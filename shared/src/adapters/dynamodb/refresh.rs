//! Single-use refresh tokens, kept in their API token's partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Delete;

use super::*;

pub(super) fn refresh_sk(digest: &RefreshDigest) -> String {
    format!("REFRESH#{}", digest.0)
}

impl DynamoStore {
    fn refresh_item(&self, client_id: &ClientId, record: &RefreshRecord) -> Result<Item> {
        to_item(
            token_pk(client_id),
            refresh_sk(&record.digest),
            &RefreshItem::from(record),
        )
    }

    /// Drops the oldest refresh tokens beyond `keep`. A clean-up after the write that decided:
    /// if it fails, the next one does it, so it is logged and not reported.
    async fn prune_refresh(&self, client_id: &ClientId, keep: usize) {
        if let Err(e) = self.try_prune_refresh(client_id, keep).await {
            tracing::warn!(error = ?e, "refresh tokens not pruned; the next write will");
        }
    }

    async fn try_prune_refresh(&self, client_id: &ClientId, keep: usize) -> Result<()> {
        let pk = token_pk(client_id);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :refresh)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":refresh", s("REFRESH#"))
            .consistent_read(true);
        let mut live = Vec::new();
        for item in self.all_items(query).await? {
            let item: RefreshItem = from_item("refresh token", item)?;
            live.push(RefreshRecord::from(item));
        }
        let dropped = oldest_beyond(live, keep)
            .iter()
            .map(|old| key(pk.clone(), refresh_sk(&old.digest)))
            .collect();
        self.delete_all(dropped).await
    }
}

#[async_trait]
impl RefreshStore for DynamoStore {
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()> {
        self.put(self.refresh_item(client_id, record)?).await?;
        self.prune_refresh(client_id, keep).await;
        Ok(())
    }

    async fn refresh_token(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>> {
        let key = key(token_pk(client_id), refresh_sk(digest));
        let item: Option<RefreshItem> = self.get("refresh token", key).await?;
        Ok(item.map(Into::into))
    }

    async fn replace_refresh(
        &self,
        client_id: &ClientId,
        used: &RefreshDigest,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), refresh_sk(used))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.refresh_item(client_id, record)?))
            .build()
            .map_err(Error::internal)?;
        let written = self
            .client
            .transact_write_items()
            // The SDK retries an attempt whose answer was lost; with this token DynamoDB
            // answers the retry as it did the first, instead of "already used".
            .client_request_token(idempotency_token(&record.digest.0))
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match written {
            Ok(_) => {}
            Err(e) if !failed_conditions(&e).is_empty() => return Ok(false),
            Err(e) => return Err(dynamo_error(e)),
        }
        self.prune_refresh(client_id, keep).await;
        Ok(true)
    }
}
