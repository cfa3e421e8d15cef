//! Portal hand-offs: one item each, removed by the swap that uses it, else by TTL.

use async_trait::async_trait;

use super::*;

fn handoff_key(digest: &HandoffDigest) -> Item {
    key(format!("HANDOFF#{}", digest.0), "HANDOFF".into())
}

#[async_trait]
impl HandoffStore for DynamoStore {
    async fn put_handoff(&self, handoff: &Handoff) -> Result<()> {
        let pk = format!("HANDOFF#{}", handoff.digest.0);
        self.put(to_item(pk, "HANDOFF".into(), &HandoffItem::from(handoff))?)
            .await
    }

    async fn take_handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(handoff_key(digest)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match deleted {
            Ok(out) => out
                .attributes
                .map(|item| from_item::<HandoffItem>("hand-off", item).map(Into::into))
                .transpose(),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(dynamo_error(e)),
        }
    }
}
