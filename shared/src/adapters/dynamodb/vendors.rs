//! Vendor credentials.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl VendorStore for DynamoStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let key = key("VENDOR".into(), client_id.to_string());
        let record: Option<VendorRecord> = self.get("vendor", key).await?;
        Ok(record.map(Into::into))
    }

    async fn put_vendor(&self, credential: &VendorCredential) -> Result<()> {
        let item = to_item(
            "VENDOR".into(),
            credential.client_id.to_string(),
            &VendorRecord::from(credential),
        )?;
        self.put(item).await
    }

    async fn has_vendor(&self) -> Result<bool> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("VENDOR"))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(out.count > 0)
    }

    async fn rehash_vendor(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretHash,
    ) -> Result<()> {
        let key = key("VENDOR".into(), client_id.to_string());
        self.swap_secret_fields(key, from, hash_fields(to))
            .await
            .map(|_| ())
    }
}
