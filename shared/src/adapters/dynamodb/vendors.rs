//! Vendor credentials: one partition `VENDOR`, an item per credential (`sk` its clientId).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete};

use super::*;

const PARTITION: &str = "VENDOR";

fn vendor_key(client_id: &ClientId) -> Item {
    key(PARTITION.into(), client_id.to_string())
}

#[async_trait]
impl VendorStore for DynamoStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let record: Option<VendorRecord> = self.get("vendor", vendor_key(client_id)).await?;
        Ok(record.map(Into::into))
    }

    async fn vendors(&self) -> Result<Vec<VendorCredential>> {
        let query = self.partition_query(PARTITION).consistent_read(true);
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| Ok(from_item::<VendorRecord>("vendor", item)?.into()))
            .collect()
    }

    async fn put_vendor(&self, credential: &VendorCredential, event: &AuditEvent) -> Result<()> {
        let item = to_item(
            PARTITION.into(),
            credential.client_id.to_string(),
            &VendorRecord::from(credential),
        )?;
        self.put_recorded(item, event).await
    }

    async fn has_vendor(&self) -> Result<bool> {
        let out = self
            .partition_query(PARTITION)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(out.count > 0)
    }

    async fn swap_vendor_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let change = (secret_fields(to), event);
        self.swap_secret_fields(vendor_key(client_id), from, change)
            .await
    }

    async fn touch_vendor(&self, client_id: &ClientId, at: Timestamp) -> Result<()> {
        let touched = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(vendor_key(client_id)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET lastUsedAt = :at")
            .expression_attribute_values(":at", AttributeValue::N(at.millis().to_string()))
            .send()
            .await;
        match touched {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()), // revoked meanwhile: stays revoked
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn delete_vendor(
        &self,
        client_id: &ClientId,
        survivor: &ClientId,
        event: &AuditEvent,
    ) -> Result<bool> {
        let exists = "attribute_exists(pk)";
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(vendor_key(client_id)))
            .condition_expression(exists)
            .build()
            .map_err(Error::internal)?;
        let survives = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(vendor_key(survivor)))
            .condition_expression(exists)
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder()
                .condition_check(survives)
                .build(),
        ];
        items.extend(self.audit_items(event)?);
        let deleted = self.transact(items, None).await;
        match deleted {
            Ok(_) => Ok(true),
            // A condition failed, or a concurrent revocation conflicted: the caller reads again.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    matches!(s, TransactWriteItemsError::TransactionCanceledException(_))
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamo_error(e)),
        }
    }
}

impl DynamoStore {
    /// A query of one partition of the table.
    fn partition_query(&self, pk: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
    }
}
