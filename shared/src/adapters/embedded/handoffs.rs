//! Portal hand-offs, keyed by digest; the swap removes the one it uses.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl HandoffStore for EmbeddedStore {
    async fn put_handoff(&self, handoff: &Handoff) -> Result<()> {
        let key = handoff.digest.0.clone();
        let value = to_json(&HandoffItem::from(handoff))?;
        self.run(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(HANDOFFS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn take_handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>> {
        let item: Option<HandoffItem> = self.take(HANDOFFS, "hand-off", digest.0.clone()).await?;
        Ok(item.map(Into::into))
    }
}
