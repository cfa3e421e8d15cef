//! Vendor credentials keyed by clientId.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::*;

#[async_trait]
impl VendorStore for EmbeddedStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let record: Option<VendorRecord> =
            self.get(VENDORS, "vendor", client_id.to_string()).await?;
        Ok(record.map(Into::into))
    }

    async fn vendors(&self) -> Result<Vec<VendorCredential>> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let mut all = Vec::new();
            for entry in txn.open_table(VENDORS)?.iter()? {
                let record: VendorRecord = read_json("vendor", entry?.1.value())?;
                all.push(record.into());
            }
            Ok(all)
        })
        .await
    }

    async fn put_vendor(&self, credential: &VendorCredential, event: &AuditEvent) -> Result<()> {
        let key = credential.client_id.to_string();
        let value = to_json(&VendorRecord::from(credential))?;
        let event = event.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(VENDORS)?
                .insert(key.as_str(), value.as_slice())?;
            db.record_audit(&txn, &event)?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn has_vendor(&self) -> Result<bool> {
        self.run(|db| Ok(!db.begin_read()?.open_table(VENDORS)?.is_empty()?))
            .await
    }

    async fn swap_vendor_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let change = (secret_fields(to), event);
        self.swap_secret_fields(VENDORS, client_id.to_string(), from, change)
            .await
    }

    async fn touch_vendor(&self, client_id: &ClientId, at: Timestamp) -> Result<()> {
        let fields = vec![("lastUsedAt", Some(at.millis().into()))];
        self.patch_record(VENDORS, client_id.to_string(), |_| true, (fields, None))
            .await
            .map(|_| ())
    }

    async fn delete_vendor(
        &self,
        client_id: &ClientId,
        survivor: &ClientId,
        event: &AuditEvent,
    ) -> Result<bool> {
        let (key, survivor) = (client_id.to_string(), survivor.to_string());
        let event = event.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(VENDORS)?;
                if table.get(survivor.as_str())?.is_none() || table.remove(key.as_str())?.is_none()
                {
                    return Ok(false); // dropped uncommitted: nothing deleted
                }
            }
            db.record_audit(&txn, &event)?;
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}
