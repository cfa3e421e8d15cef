//! Portal hand-offs, keyed by digest; the swap removes the one it uses.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl HandoffStore for EmbeddedStore {
    async fn put_handoff(&self, handoff: &Handoff, event: &AuditEvent) -> Result<()> {
        let key = handoff.digest.0.clone();
        let value = to_json(&HandoffItem::from(handoff))?;
        let event = event.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(HANDOFFS)?
                .insert(key.as_str(), value.as_slice())?;
            db.record_audit(&txn, &event)?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>> {
        let item: Option<HandoffItem> = self.get(HANDOFFS, "hand-off", digest.0.clone()).await?;
        Ok(item.map(Handoff::from))
    }

    async fn take_handoff(&self, digest: &HandoffDigest, event: &AuditEvent) -> Result<bool> {
        let (key, event) = (digest.0.clone(), event.clone());
        self.run(move |db| {
            let txn = db.begin_write()?;
            if txn.open_table(HANDOFFS)?.remove(key.as_str())?.is_none() {
                return Ok(false); // taken meanwhile; dropped uncommitted
            }
            db.record_audit(&txn, &event)?;
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}
