//! Uses of each API token per minute, one item per token and minute in the token's partition,
//! removed by TTL a minute after the window ends (and with the token).

use async_trait::async_trait;

use super::*;
use crate::ports::RateStore;

#[async_trait]
impl RateStore for DynamoStore {
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32> {
        let expires = (window + 2) * 60;
        let tries: &[u32] = if want > 1 { &[want, 1] } else { &[1] };
        for &n in tries {
            if n > limit {
                continue;
            }
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(token_pk(client_id), format!("RATE#{window}"))))
                .update_expression("ADD uses :n SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(uses) OR uses <= :room")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
                .expression_attribute_values(":room", AttributeValue::N((limit - n).to_string()))
                .expression_attribute_values(":ttl", AttributeValue::N(expires.to_string()))
                .send()
                .await;
            match added {
                Ok(_) => return Ok(n),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(dynamo_error(e)),
            }
        }
        Ok(0)
    }
}
