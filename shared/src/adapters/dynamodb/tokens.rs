//! API token records, listed by tenant (`gsi1`) and by user (`gsi2`).

use async_trait::async_trait;

use super::*;

/// The token's item: its record plus the index keys that list it by tenant and by user.
pub(super) fn token_item(token: &ApiToken) -> Result<Item> {
    let mut item = to_item(
        token_pk(&token.client_id),
        "TOKEN".into(),
        &TokenRecord::from(token),
    )?;
    item.insert("gsi1pk".into(), s(format!("TENANT#{}", token.tenant_id)));
    item.insert("gsi1sk".into(), s(format!("TOKEN#{}", token.client_id)));
    if let Some(user) = token.user_id() {
        item.insert("gsi2pk".into(), s(format!("USER#{user}")));
        item.insert("gsi2sk".into(), s(format!("TOKEN#{}", token.client_id)));
    }
    Ok(item)
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn put_new(&self, token: &ApiToken) -> Result<()> {
        let item = token_item(token)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => {
                Err(Error::Conflict("a token with this clientId exists".into()))
            }
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>> {
        let key = key(token_pk(client_id), "TOKEN".into());
        let record: Option<TokenRecord> = self.get("token", key).await?;
        Ok(record.map(Into::into))
    }

    async fn replace(&self, token: &ApiToken) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(token_item(token)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(Error::NotFound("Token not found".into())),
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn touch(&self, client_id: &ClientId, at: Timestamp) -> Result<()> {
        let resolution = crate::domain::token::LAST_USED_RESOLUTION_SECONDS;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), "TOKEN".into())))
            .update_expression("SET lastUsedAt = :at")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt <= :before)",
            )
            .expression_attribute_values(":at", AttributeValue::N(at.millis().to_string()))
            .expression_attribute_values(
                ":before",
                AttributeValue::N((at.millis() - resolution * 1000).to_string()),
            )
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>> {
        let query = self
            .index_query("gsi1", "gsi1pk", format!("TENANT#{tenant}"))
            .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :token)")
            .expression_attribute_values(":token", s("TOKEN#"));
        self.tokens_from(query).await
    }

    async fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>> {
        let query = self.index_query("gsi2", "gsi2pk", format!("USER#{user}"));
        self.tokens_from(query).await
    }

    async fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()> {
        let mut keys = Vec::new();
        for client_id in client_ids {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(token_pk(client_id)))
                .projection_expression("pk, sk")
                .consistent_read(true);
            for item in self.all_items(query).await? {
                keys.push(item);
            }
        }
        self.delete_all(keys).await
    }
}

impl DynamoStore {
    async fn tokens_from(&self, query: QueryFluentBuilder) -> Result<Vec<ApiToken>> {
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| from_item::<TokenRecord>("token", item).map(ApiToken::from))
            .collect()
    }
}
