//! Spent refresh tokens, in their API token's partition (`REFRESH#<number>`), removed by TTL
//! when the refresh token would have expired, and with the token.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ConditionCheck;

use crate::ports::Spend;

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
        let spent = self.spend(token_exists, refresh_mark(client_id, serial), until);
        Ok(spent.await? == Spend::Spent)
    }

    async fn spend_workload_token(
        &self,
        client_id: &ClientId,
        (at, id): (usize, &str),
        mark: &str,
        until: Timestamp,
    ) -> Result<Spend> {
        // The policy that admitted the token, still at its place in the token's list.
        let admitted = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), "TOKEN".into())))
            .condition_expression(format!("#policies[{at}].#id = :id"))
            .expression_attribute_names("#policies", "trustPolicies")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(id))
            .build()
            .map_err(Error::internal)?;
        self.spend(admitted, workload_mark(mark), until).await
    }

    async fn unspend_workload_token(&self, mark: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(workload_mark(mark)))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    async fn import_workload_mark(&self, mark: &str, until: Timestamp) -> Result<bool> {
        let mut item = workload_mark(mark);
        item.insert("ttl".into(), AttributeValue::N(until.seconds().to_string()));
        stamp(&mut item);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
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

impl DynamoStore {
    /// Puts `mark` (kept until `until`, then removed by TTL) if it is not there, in one
    /// transaction with `check`: `Replayed` when the mark was there, `Unadmitted` when the check
    /// failed, nothing written either way.
    async fn spend(
        &self,
        check: ConditionCheck,
        mut mark: Item,
        until: Timestamp,
    ) -> Result<Spend> {
        mark.insert("ttl".into(), AttributeValue::N(until.seconds().to_string()));
        stamp(&mut mark);
        let spend = put_if_absent(&self.table, mark)?;
        let written = self
            .client
            .transact_write_items()
            // The SDK retries an attempt whose answer was lost; with this token DynamoDB
            // answers the retry as it did the first, instead of "already spent". Unique to this
            // call, so that another use of the same mark is not taken for a retry.
            .client_request_token(idempotency_token(&uuid::Uuid::new_v4().to_string()))
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(spend).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(Spend::Spent),
            Err(e) => match failed_conditions(&e).as_slice() {
                [] => Err(dynamo_error(e)),
                [1] => Ok(Spend::Replayed),
                _ => Ok(Spend::Unadmitted),
            },
        }
    }
}

/// The key of a used workload token's mark: a partition of its own, gone by TTL when the
/// workload token expires.
fn workload_mark(mark: &str) -> Item {
    key(format!("WORKLOAD#{mark}"), "WORKLOAD".into())
}

/// The key of refresh token number `serial`'s spent mark, in its API token's partition.
fn refresh_mark(client_id: &ClientId, serial: u64) -> Item {
    key(token_pk(client_id), format!("REFRESH#{serial:016x}"))
}
