//! Production store: one DynamoDB table, keys `pk`/`sk`, TTL attribute `ttl`.
//!
//! | record        | pk                 | sk                 |
//! |---------------|--------------------|--------------------|
//! | vendor        | `VENDOR`           | `<clientId>`       |
//! | API token     | `TOKEN#<clientId>` | `TOKEN`            |
//! | refresh token | `TOKEN#<clientId>` | `REFRESH#<sha256>` |
//! | permission    | `PERMISSION`       | `<id>`             |
//! | role          | `ROLE`             | `<id>`             |
//! | tenant        | `TENANT#<id>`      | `TENANT`           |
//! | user          | `USER#<id>`        | `USER`             |
//! | membership    | `USER#<userId>`    | `MEMBER#<tenantId>`|
//!
//! Index `gsi1` (`gsi1pk`, `gsi1sk`) finds a tenant's tokens (`TENANT#<id>`, `TOKEN#<clientId>`)
//! and members (`TENANT#<id>`, `MEMBER#<userId>`); index `gsi2` (`gsi2pk`, `gsi2sk`) finds a
//! user's personal tokens in every tenant (`USER#<id>`, `TOKEN#<clientId>`).
//!
//! Reads on the credential path are strongly consistent, so a deleted token stops at once.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::records::{
    EntityRecord, RefreshItem, TokenRecord, VendorRecord, corrupt, kind_name, oldest_beyond,
};
use crate::domain::directory::{EntityKind, User, Version};
use crate::domain::{
    ApiToken, ClientId, RefreshDigest, RefreshRecord, TenantId, Timestamp, UserId, VendorCredential,
};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, RefreshStore, TokenStore, VendorStore};

type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem's limit.
const BATCH: usize = 25;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn token_pk(client_id: &ClientId) -> String {
    format!("TOKEN#{client_id}")
}

fn refresh_sk(digest: &RefreshDigest) -> String {
    format!("REFRESH#{}", digest.0)
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn to_item(pk: String, sk: String, record: &impl Serialize) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(Error::internal)?;
    item.extend(key(pk, sk));
    Ok(item)
}

fn from_item<R: DeserializeOwned>(what: &str, item: Item) -> Result<R> {
    serde_dynamo::from_item(item).map_err(|e| corrupt(what, e))
}

fn dynamo_error<E, R>(e: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::internal(format!("DynamoDB: {}", DisplayErrorContext(e)))
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// A transaction cancelled because one of its conditions failed.
fn is_cancelled_by_condition<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().is_some_and(|e| {
        e.code() == Some("TransactionCanceledException")
            && e.message()
                .is_some_and(|m| m.contains("ConditionalCheckFailed"))
    })
}

fn entity_key(kind: EntityKind, id: &str) -> Item {
    match kind {
        EntityKind::Permission | EntityKind::Role => key(kind_name(kind).into(), id.into()),
        EntityKind::Tenant | EntityKind::User => {
            key(format!("{}#{id}", kind_name(kind)), kind_name(kind).into())
        }
    }
}

fn membership_key(user: &UserId, tenant: &TenantId) -> Item {
    key(format!("USER#{user}"), format!("MEMBER#{tenant}"))
}

/// The token's item: its record plus the index keys that list it by tenant and by user.
fn token_item(token: &ApiToken) -> Result<Item> {
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

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get<R: DeserializeOwned>(&self, what: &str, key: Item) -> Result<Option<R>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        out.item.map(|item| from_item(what, item)).transpose()
    }

    /// Creates or replaces an item.
    async fn put(&self, item: Item) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    /// Deletes `keys` in batches, retrying what DynamoDB leaves unprocessed until none is left.
    async fn delete_all(&self, keys: Vec<Item>) -> Result<()> {
        for chunk in keys.chunks(BATCH) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map_err(Error::internal)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_>>()?;
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    let backoff = 20u64 << attempt.min(6);
                    tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                }
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(dynamo_error)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut items| items.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

#[async_trait]
impl VendorStore for DynamoStore {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>> {
        let key = key("VENDOR".into(), client_id.to_string());
        let record: Option<VendorRecord> = self.get("vendor", key).await?;
        Ok(record.map(Into::into))
    }

    async fn put_vendor(&self, credential: &VendorCredential) -> Result<()> {
        let item = to_item(
            "VENDOR".into(),
            credential.client_id.to_string(),
            &VendorRecord::from(credential),
        )?;
        self.put(item).await
    }

    async fn has_vendor(&self) -> Result<bool> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("VENDOR"))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(out.count > 0)
    }
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
    fn index_query(&self, index: &str, attribute: &str, value: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{attribute} = :pk"))
            .expression_attribute_values(":pk", s(value))
    }

    /// Every item a query yields, across all its pages.
    async fn all_items(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
        let pages = query
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        pages
            .into_iter()
            .map(|item| item.map_err(dynamo_error))
            .collect()
    }

    async fn tokens_from(&self, query: QueryFluentBuilder) -> Result<Vec<ApiToken>> {
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| from_item::<TokenRecord>("token", item).map(ApiToken::from))
            .collect()
    }

    /// Writes `items` in one transaction; `Ok(false)` when a condition refused it.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool> {
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if is_cancelled_by_condition(&e) => Ok(false),
            Err(e) => Err(dynamo_error(e)),
        }
    }

    /// Sets a directory document (or, with `doc` None, tombstones it) unless the stored
    /// version is newer than `version`.
    fn entity_write(
        &self,
        key: Item,
        doc: Option<&Value>,
        version: Version,
    ) -> Result<TransactWriteItem> {
        let mut update = Update::builder().table_name(&self.table).set_key(Some(key));
        let mut sets = Vec::new();
        if let Some(doc) = doc {
            let doc = serde_dynamo::to_attribute_value(doc).map_err(Error::internal)?;
            update = update.expression_attribute_values(":doc", doc);
            sets.push("doc = :doc");
        }
        if let Some(version) = version {
            update = update
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                .condition_expression("attribute_not_exists(version) OR version <= :v");
            sets.push("version = :v");
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if doc.is_none() {
            expression = format!(
                "REMOVE doc {}",
                if sets.is_empty() {
                    String::new()
                } else {
                    expression
                }
            );
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn delete_item(&self, key: Item) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn membership_put(
        &self,
        user: &UserId,
        membership: &crate::domain::directory::Membership,
    ) -> Result<TransactWriteItem> {
        let mut item = membership_key(user, &membership.tenant_id);
        item.insert(
            "gsi1pk".into(),
            s(format!("TENANT#{}", membership.tenant_id)),
        );
        item.insert("gsi1sk".into(), s(format!("MEMBER#{user}")));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes or tombstones a user and sets their membership items to `tenants`.
    async fn write_user(
        &self,
        id: &UserId,
        doc: Option<&Value>,
        tenants: &[crate::domain::directory::Membership],
        version: Version,
    ) -> Result<bool> {
        let old = self.user(id).await?;
        let key = entity_key(EntityKind::User, id.as_str());
        let mut items = vec![match (doc, version) {
            (None, None) => self.delete_item(key)?,
            _ => self.entity_write(key, doc, version)?,
        }];
        for membership in old.iter().flat_map(|u| &u.tenants) {
            if !tenants.iter().any(|m| m.tenant_id == membership.tenant_id) {
                items.push(self.delete_item(membership_key(id, &membership.tenant_id))?);
            }
        }
        for membership in tenants {
            items.push(self.membership_put(id, membership)?);
        }
        self.transact(items).await
    }
}

#[async_trait]
impl DirectoryStore for DynamoStore {
    async fn put_entity(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
        version: Version,
    ) -> Result<bool> {
        let write = self.entity_write(entity_key(kind, id), Some(doc), version)?;
        self.transact(vec![write]).await
    }

    async fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<Value>> {
        let record: Option<EntityRecord> = self.get("directory", entity_key(kind, id)).await?;
        Ok(record.and_then(|r| r.doc))
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Value>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(kind_name(kind)))
            .consistent_read(true);
        let mut docs = Vec::new();
        for item in self.all_items(query).await? {
            docs.extend(from_item::<EntityRecord>("directory", item)?.doc);
        }
        Ok(docs)
    }

    async fn delete_entity(&self, kind: EntityKind, id: &str, version: Version) -> Result<bool> {
        let key = entity_key(kind, id);
        let write = match version {
            None => self.delete_item(key)?,
            Some(_) => self.entity_write(key, None, version)?,
        };
        self.transact(vec![write]).await
    }

    async fn put_user(&self, user: &User, version: Version) -> Result<bool> {
        let doc = serde_json::to_value(user).map_err(Error::internal)?;
        self.write_user(&user.id, Some(&doc), &user.tenants, version)
            .await
    }

    async fn delete_user(&self, id: &UserId, version: Version) -> Result<bool> {
        self.write_user(id, None, &[], version).await
    }

    async fn remove_members(&self, tenant: &TenantId) -> Result<()> {
        let query = self
            .index_query("gsi1", "gsi1pk", format!("TENANT#{tenant}"))
            .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :member)")
            .expression_attribute_values(":member", s("MEMBER#"));
        for item in self.all_items(query).await? {
            let Some(user) = item
                .get("gsi1sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix("MEMBER#"))
                .and_then(|id| UserId::parse(id).ok())
            else {
                continue;
            };
            if let Some(mut doc) = self.user(&user).await? {
                doc.tenants.retain(|m| &m.tenant_id != tenant);
                let value = serde_json::to_value(&doc).map_err(Error::internal)?;
                self.write_user(&user, Some(&value), &doc.tenants, None)
                    .await?;
            } else {
                self.transact(vec![self.delete_item(membership_key(&user, tenant))?])
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RefreshStore for DynamoStore {
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()> {
        let pk = token_pk(client_id);
        let item = to_item(
            pk.clone(),
            refresh_sk(&record.digest),
            &RefreshItem::from(record),
        )?;
        self.put(item).await?;

        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :refresh)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":refresh", s("REFRESH#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut live = Vec::with_capacity(pages.len());
        for item in pages {
            let item: RefreshItem = from_item("refresh token", item.map_err(dynamo_error)?)?;
            live.push(RefreshRecord::from(item));
        }
        let dropped = oldest_beyond(live, keep)
            .iter()
            .map(|old| key(pk.clone(), refresh_sk(&old.digest)))
            .collect();
        self.delete_all(dropped).await
    }

    async fn take_refresh(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), refresh_sk(digest))))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match deleted {
            Ok(out) => out
                .attributes
                .map(|item| from_item::<RefreshItem>("refresh token", item).map(Into::into))
                .transpose(),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(dynamo_error(e)),
        }
    }
}
