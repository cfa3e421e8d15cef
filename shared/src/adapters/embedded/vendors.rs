//! Vendor credentials.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;

#[async_trait]
impl VendorStore for EmbeddedStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let record: Option<VendorRecord> =
            self.get(VENDORS, "vendor", client_id.to_string()).await?;
        Ok(record.map(Into::into))
    }

    async fn put_vendor(&self, credential: &VendorCredential) -> Result<()> {
        let key = credential.client_id.to_string();
        let value = to_json(&VendorRecord::from(credential))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(VENDORS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn has_vendor(&self) -> Result<bool> {
        self.run(|db| Ok(!db.begin_read()?.open_table(VENDORS)?.is_empty()?))
            .await
    }

    async fn rehash_vendor(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretHash,
    ) -> Result<()> {
        let fields = hash_fields(to);
        let key = client_id.to_string();
        self.swap_secret_fields(VENDORS, key, from, fields)
            .await
            .map(|_| ())
    }
}
