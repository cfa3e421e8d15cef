//! Portal hand-offs: one item each, removed by the swap that uses it, else by TTL.

use async_trait::async_trait;

use super::*;

fn handoff_key(digest: &HandoffDigest) -> Item {
    key(format!("HANDOFF#{}", digest.0), "HANDOFF".into())
}

#[async_trait]
impl HandoffStore for DynamoStore {
    async fn put_handoff(&self, handoff: &Handoff, event: &AuditEvent) -> Result<()> {
        let pk = format!("HANDOFF#{}", handoff.digest.0);
        let item = to_item(pk, "HANDOFF".into(), &HandoffItem::from(handoff))?;
        self.put_recorded(item, event).await
    }

    async fn handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>> {
        let item: Option<HandoffItem> = self.get("hand-off", handoff_key(digest)).await?;
        Ok(item.map(Handoff::from))
    }

    async fn take_handoff(&self, digest: &HandoffDigest, event: &AuditEvent) -> Result<bool> {
        self.delete_recorded(handoff_key(digest), event).await
    }
}
