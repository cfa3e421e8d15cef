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
struct RevocationItem {
    sub: ClientId,
    before: i64,
    until: i64,
    /// DynamoDB's TTL attribute (unix seconds).
    ttl: i64,
}

impl From<RevocationItem> for Revocation {
    fn from(item: RevocationItem) -> Self {
        Self {
            sub: item.sub,
            before: Timestamp::from_millis(item.before),
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
                    until: r.until.millis(),
                    ttl: r.until.seconds(),
                };
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(to_item(PARTITION.into(), r.sub.to_string(), &item)?))
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
        let items = self.all_items(query).await?;
        let mut kept = Vec::new();
        for item in items {
            let revocation: Revocation = from_item::<RevocationItem>("revocation", item)?.into();
            if revocation.until > now {
                kept.push(revocation);
            }
        }
        Ok(kept)
    }

    async fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>> {
        let item: Option<RevocationItem> = self
            .get("revocation", key(PARTITION.into(), sub.to_string()))
            .await?;
        Ok(item.map(Revocation::from).filter(|r| r.until > now))
    }
}
