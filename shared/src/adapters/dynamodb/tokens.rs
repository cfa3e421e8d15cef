//! API token records, listed by tenant (`gsi1`) and by user (`gsi2`).

use async_trait::async_trait;

use aws_sdk_dynamodb::types::ConditionCheck;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;

use super::audits::first_holds;
use super::directory::{entity_key, key_of, records_at};
use super::*;
use crate::domain::lives::Absent;

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

/// Attributes of a token item that a replacement keeps: what only reservations write (see
/// [`crate::ports::RateStore`]) and what only [`TokenStore::swap_secret`] writes.
const KEPT_ATTRIBUTES: [&str; 10] = [
    "issued",
    "useWindow",
    "windowUses",
    "lastUsedAt",
    "secretHash",
    "secretCheck",
    "previousSecretHash",
    "previousSecretCheck",
    "previousSecretUntil",
    "rotatedAt",
];
/// Attributes a token item may lack; a replacement without one removes it.
const OPTIONAL_ATTRIBUTES: [&str; 9] = [
    "allowedIps",
    "trustPolicies",
    "createdByUserId",
    "createdByVendor",
    "description",
    "expiresAt",
    "ttl",
    "tenantLife",
    "memberLife",
];

/// An update that makes the stored item `item`, but for its key, use counts and secrets.
fn set_record(update: UpdateBuilder, item: Item) -> UpdateBuilder {
    let mut sets = Vec::new();
    let mut update = update;
    let kept = ["pk", "sk"].iter().chain(&KEPT_ATTRIBUTES);
    let kept: Vec<&str> = kept.copied().collect();
    let removed: Vec<&str> = OPTIONAL_ATTRIBUTES
        .into_iter()
        .filter(|name| !item.contains_key(*name))
        .collect();
    for (n, (name, value)) in item
        .into_iter()
        .filter(|(name, _)| !kept.contains(&name.as_str()))
        .enumerate()
    {
        sets.push(format!("#a{n} = :a{n}"));
        update = update
            .expression_attribute_names(format!("#a{n}"), name)
            .expression_attribute_values(format!(":a{n}"), value);
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !removed.is_empty() {
        for (n, name) in removed.iter().enumerate() {
            update = update.expression_attribute_names(format!("#r{n}"), *name);
        }
        let names: Vec<String> = (0..removed.len()).map(|n| format!("#r{n}")).collect();
        expression.push_str(&format!(" REMOVE {}", names.join(", ")));
    }
    update.update_expression(expression)
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn put_new(&self, token: &ApiToken, event: &AuditEvent) -> Result<()> {
        let put = put_if_absent(&self.table, token_item(token)?)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.push(self.tenant_life_check(token)?);
        items.extend(self.membership_life_check(token)?);
        items.extend(self.audit_items(event)?);
        // A retried attempt whose answer was lost succeeds as the first did, rather than
        // finding its own token and answering 409.
        let request = idempotency_token(&token.client_id.to_string());
        let written = self.transact(items, Some(request)).await;
        let Err(e) = written else {
            return Ok(());
        };
        let failed = failed_conditions(&e);
        let user = token.user_id();
        match failed.as_slice() {
            [] => Err(dynamo_error(e)),
            [0, ..] => Err(Error::Conflict("a token with this clientId exists".into())),
            [1, ..] => Err(Error::NotFound(
                Absent::Tenant.message(&token.tenant_id, user),
            )),
            _ => Err(Error::NotFound(
                Absent::Membership.message(&token.tenant_id, user),
            )),
        }
    }

    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>> {
        let key = key(token_pk(client_id), "TOKEN".into());
        let record: Option<TokenRecord> = self.get("token", key).await?;
        Ok(record.map(Into::into))
    }

    async fn token_with(
        &self,
        client_id: &ClientId,
        keys: &[(EntityKind, String)],
    ) -> Result<(Option<ApiToken>, Vec<Option<Record>>)> {
        if keys.is_empty() {
            return Ok((self.token(client_id).await?, Vec::new()));
        }
        let kinds = keys.iter().map(|(kind, _)| *kind);
        let token_key = key(token_pk(client_id), "TOKEN".into());
        let keys: Vec<Item> = std::iter::once(token_key)
            .chain(keys.iter().map(|(kind, id)| entity_key(*kind, id)))
            .collect();
        let mut found = self.fetch(&keys).await?;
        let token: Option<TokenRecord> = found
            .remove(&key_of(&keys[0]))
            .map(|item| from_item("token", item))
            .transpose()?;
        Ok((
            token.map(Into::into),
            records_at(&found, kinds, &keys[1..])?,
        ))
    }

    async fn replace(&self, token: &ApiToken, event: &AuditEvent) -> Result<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(&token.client_id), "TOKEN".into())));
        let update = set_record(update, token_item(token)?)
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.audit_items(event)?);
        match first_holds(self.transact(items, None).await)? {
            true => Ok(()),
            false => Err(Error::NotFound("Token not found".into())),
        }
    }

    async fn swap_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let key = key(token_pk(client_id), "TOKEN".into());
        self.swap_secret_fields(key, from, (secret_fields(to), event))
            .await
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

    async fn delete_token(&self, client_id: &ClientId, event: &AuditEvent) -> Result<bool> {
        let token = key(token_pk(client_id), "TOKEN".into());
        let deleted = self.delete_recorded(token, event).await?;
        // Its spent refresh tokens, left by the token's deletion (or by an earlier one's).
        self.delete_tokens(std::slice::from_ref(client_id)).await?;
        Ok(deleted)
    }
}

impl DynamoStore {
    /// The condition that the token's tenant still has the life the token records.
    fn tenant_life_check(&self, token: &ApiToken) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(entity_key(
                EntityKind::Tenant,
                token.tenant_id.as_str(),
            )))
            .expression_attribute_names("#life", "life");
        let check = match &token.lives.tenant {
            Some(life) => check
                .condition_expression("attribute_exists(doc) AND #life = :life")
                .expression_attribute_values(":life", s(life.as_str())),
            None => {
                check.condition_expression("attribute_exists(doc) AND attribute_not_exists(#life)")
            }
        };
        let check = check.build().map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// For a personal token, the condition that its membership still has the life it records.
    fn membership_life_check(&self, token: &ApiToken) -> Result<Option<TransactWriteItem>> {
        let Some(user) = token.user_id() else {
            return Ok(None);
        };
        let life = token.lives.membership.as_ref().map_or("", |l| l.as_str());
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(entity_key(EntityKind::User, user.as_str())))
            .condition_expression("attribute_exists(doc) AND #members.#tenant.#life = :life")
            .expression_attribute_names("#members", "members")
            .expression_attribute_names("#tenant", token.tenant_id.as_str())
            .expression_attribute_names("#life", "life")
            .expression_attribute_values(":life", s(life))
            .build()
            .map_err(Error::internal)?;
        Ok(Some(
            TransactWriteItem::builder().condition_check(check).build(),
        ))
    }

    async fn tokens_from(&self, query: QueryFluentBuilder) -> Result<Vec<ApiToken>> {
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| from_item::<TokenRecord>("token", item).map(ApiToken::from))
            .collect()
    }
}
