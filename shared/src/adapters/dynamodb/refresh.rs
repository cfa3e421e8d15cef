//! Spent refresh tokens, in their API token's partition (`REFRESH#<number>`), removed by TTL
//! when the refresh token would have expired, and with the token.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ConditionCheck;

use super::*;

#[async_trait]
impl RefreshStore for DynamoStore {
    async fn spend_refresh(
        &self,
        client_id: &ClientId,
        serial: u64,
        until: Timestamp,
    ) -> Result<bool> {
        let token_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), "TOKEN".into())))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        let mut mark = refresh_mark(client_id, serial);
        mark.insert("ttl".into(), AttributeValue::N(until.seconds().to_string()));
        stamp(&mut mark);
        let spend = Put::builder()
            .table_name(&self.table)
            .set_item(Some(mark))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        let written = self
            .client
            .transact_write_items()
            // The SDK retries an attempt whose answer was lost; with this token DynamoDB
            // answers the retry as it did the first, instead of "already spent". Unique to this
            // call, so that another use of the same refresh token is not taken for a retry.
            .client_request_token(idempotency_token(&uuid::Uuid::new_v4().to_string()))
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(token_exists)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(spend).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if !failed_conditions(&e).is_empty() => Ok(false),
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn unspend_refresh(&self, client_id: &ClientId, serial: u64) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(refresh_mark(client_id, serial)))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }
}

/// The key of refresh token number `serial`'s spent mark, in its API token's partition.
fn refresh_mark(client_id: &ClientId, serial: u64) -> Item {
    key(token_pk(client_id), format!("REFRESH#{serial:016x}"))
}
