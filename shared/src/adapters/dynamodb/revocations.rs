//! Revoked JWTs: one partition `REVOKED`, an item per token (`sk` its clientId) holding the
//! second before which its JWTs are void; DynamoDB's TTL removes it once none can live.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::revocation::Revocation;
use crate::ports::RevocationStore;

const PARTITION: &str = "REVOKED";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevocationItem {
    sub: ClientId,
    before: i64,
    /// Absent on revocations made before any took effect later: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<i64>,
    until: i64,
    /// DynamoDB's TTL attribute (unix seconds).
    ttl: i64,
}

impl From<RevocationItem> for Revocation {
    fn from(item: RevocationItem) -> Self {
        Self {
            sub: item.sub,
            before: Timestamp::from_millis(item.before),
            from: Timestamp::from_millis(item.from.unwrap_or(item.before)),
            until: Timestamp::from_millis(item.until),
        }
    }
}

#[async_trait]
impl RevocationStore for DynamoStore {
    async fn revoke(&self, revocations: &[Revocation]) -> Result<()> {
        let requests = revocations
            .iter()
            .map(|r| {
                let item = RevocationItem {
                    sub: r.sub,
                    before: r.before.millis(),
                    from: r.is_later().then(|| r.from.millis()),
                    until: r.until.millis(),
                    ttl: r.until.seconds(),
                };
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(to_item(PARTITION.into(), sort_key(r), &item)?))
                    .build()
                    .map_err(Error::internal)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_>>()?;
        self.batch_write(requests).await
    }

    async fn revocations(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(PARTITION))
            .consistent_read(true);
        holding(self.all_items(query).await?, now)
    }

    async fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>> {
        // Its revocation at once (`sk` the clientId) and the later one beside it, in one read.
        let keys = [sub.to_string(), format!("{sub}{LATER}")].map(|sk| key(PARTITION.into(), sk));
        let items = self.fetch(&keys).await?.into_values();
        Ok(holding(items, now)?.into_iter().next())
    }
}

/// The revocations among `items` that hold at `now`, one per token.
fn holding(items: impl IntoIterator<Item = Item>, now: Timestamp) -> Result<Vec<Revocation>> {
    let revocations = items
        .into_iter()
        .map(|item| from_item::<RevocationItem>("revocation", item).map(Revocation::from))
        .collect::<Result<Vec<_>>>()?;
    Ok(Revocation::holding(revocations, now))
}

const LATER: &str = "#later";

/// A token's revocation that holds at once is keyed by its clientId, the one that holds later
/// beside it, so that neither replaces the other.
fn sort_key(revocation: &Revocation) -> String {
    match revocation.is_later() {
        true => format!("{}{LATER}", revocation.sub),
        false => revocation.sub.to_string(),
    }
}
