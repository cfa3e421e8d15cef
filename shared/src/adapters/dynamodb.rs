//! Production store: one DynamoDB table, keys `pk`/`sk`, TTL attribute `ttl`.
//!
//! | record        | pk                 | sk                 |
//! |---------------|--------------------|--------------------|
//! | vendor        | `VENDOR`           | `<clientId>`       |
//! | API token     | `TOKEN#<clientId>` | `TOKEN`            |
//! | refresh token | `TOKEN#<clientId>` | `REFRESH#<sha256>` |
//!
//! Reads on the credential path are strongly consistent, so a deleted token stops at once.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{RefreshItem, TokenRecord, VendorRecord, corrupt, oldest_beyond};
use crate::domain::{ApiToken, ClientId, RefreshDigest, RefreshRecord, VendorCredential};
use crate::error::{Error, Result};
use crate::ports::{RefreshStore, TokenStore, VendorStore};

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
        let item = to_item(
            token_pk(&token.client_id),
            "TOKEN".into(),
            &TokenRecord::from(token),
        )?;
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
