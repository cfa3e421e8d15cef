//! Production store: one DynamoDB table, keys `pk`/`sk`, TTL attribute `ttl`.
//!
//! | record        | pk                 | sk                 |
//! |---------------|--------------------|--------------------|
//! | vendor        | `VENDOR`           | `<clientId>`       |
//! | API token     | `TOKEN#<clientId>` | `TOKEN`            |
//! | spent refresh | `TOKEN#<clientId>` | `REFRESH#<number>` |
//! | permission    | `PERMISSION`       | `<id>`             |
//! | role          | `ROLE`             | `<id>`             |
//! | tenant        | `TENANT#<id>`      | `TENANT`           |
//! | user          | `USER#<id>`        | `USER`             |
//! | membership    | `USER#<userId>`    | `MEMBER#<tenantId>`|
//! | hand-off      | `HANDOFF#<sha256>` | `HANDOFF`          |
//! | revoked JWTs  | `REVOKED`          | `<clientId>`       |
//! | audit event   | `AUDIT#<scope>#<day>` | `<event id>`    |
//! | audit count   | `AUDITCOUNT#<scope>` | `<day>#<shard 0..7>` |
//! | live count    | `COUNT#TENANTS` or `COUNT#USERS` | `<shard 0..15>` |
//!
//! The token item also counts its uses (`useWindow`, `windowUses`, `issued`, `lastUsedAt`),
//! written only by reservations (see [`crate::ports::RateStore`]).
//!
//! Directory records carry a revision `rev`; each write is conditional on the one it read.
//! A user's membership stamps live in the user item (`members`); the membership items are an
//! index of each tenant's members, for the cascades.
//!
//! Index `gsi1` (`gsi1pk`, `gsi1sk`) finds a tenant's tokens (`TENANT#<id>`, `TOKEN#<clientId>`)
//! and members (`TENANT#<id>`, `MEMBER#<userId>`); index `gsi2` (`gsi2pk`, `gsi2sk`) finds a
//! user's personal tokens in every tenant (`USER#<id>`, `TOKEN#<clientId>`); index `gsi3`
//! (keys only) lists every live tenant and user (`TENANTS` or `USERS`, `<id>`), page by page.
//!
//! Reads on the credential path are strongly consistent, so a deleted token stops at once.

mod audits;
mod directory;
mod export;
mod handoffs;
mod rates;
mod refresh;
mod revocations;
mod tokens;
mod vendors;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::records::{
    FORMAT_FIELD, HandoffItem, RECORD_FORMAT, SecretFields, TokenRecord, VendorRecord, corrupt,
    kind_name, readable_format, secret_fields, stored_record, typed_record,
};
use crate::domain::audit::AuditEvent;
use crate::domain::directory::{EntityKind, KeyClaim};
use crate::domain::document::Record;
use crate::domain::lives::{DirectoryRecord, Revision};
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::{
    ApiToken, ClientId, SecretHash, SecretState, TenantId, Timestamp, UserId, VendorCredential,
};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, HandoffStore, Listed, RefreshStore, TokenStore, VendorStore};

pub(super) type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem's limit.
const BATCH: usize = 25;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

pub(super) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

/// The partition of an API token and its refresh tokens.
pub(super) fn token_pk(client_id: &ClientId) -> String {
    format!("TOKEN#{client_id}")
}

/// A JSON text or number as a DynamoDB attribute (what secret fields hold).
fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(text) => s(text.clone()),
        other => s(other.to_string()),
    }
}

/// Which of `shards` count items a write keyed `id` changes: FNV-1a of the id, stable in
/// every process, so concurrent writes of different ids seldom meet on one item.
pub(super) fn shard_of(id: &str, shards: u32) -> u32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % shards
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn to_item(pk: String, sk: String, record: &impl Serialize) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(Error::internal)?;
    item.extend(key(pk, sk));
    stamp(&mut item);
    Ok(item)
}

/// Marks `item` as written in this release's record format (see [`RECORD_FORMAT`]).
pub(super) fn stamp(item: &mut Item) {
    let format = AttributeValue::N(RECORD_FORMAT.to_string());
    item.insert(FORMAT_FIELD.to_owned(), format);
}

/// Refuses an item written in a later release's format.
pub(super) fn check_format(what: &str, item: &Item) -> Result<()> {
    let format = item
        .get(FORMAT_FIELD)
        .and_then(|v| v.as_n().ok()?.parse().ok());
    readable_format(what, format)
}

pub(super) fn from_item<R: DeserializeOwned>(what: &str, item: Item) -> Result<R> {
    check_format(what, &item)?;
    serde_dynamo::from_item(item).map_err(|e| corrupt(what, e))
}

pub(super) fn dynamo_error<E, R>(e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    super::aws::call_failed(crate::error::Dependency::DynamoDb, e)
}

/// A `ClientRequestToken` for a transaction (at most 36 characters): DynamoDB answers a retry
/// with the same token within ten minutes as it answered the first attempt.
pub(super) fn idempotency_token(unique: &str) -> String {
    unique.chars().take(36).collect()
}

/// A transaction's write of `item`, if its key holds nothing.
pub(super) fn put_if_absent(table: &str, item: Item) -> Result<Put> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(Error::internal)
}

pub(super) fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// The positions of the transaction's items whose condition failed (empty: it failed otherwise).
pub(super) fn failed_conditions<R>(e: &SdkError<TransactWriteItemsError, R>) -> Vec<usize> {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        e.as_service_error()
    else {
        return Vec::new();
    };
    let failed = |code: Option<&str>| code == Some("ConditionalCheckFailed");
    let reasons = cancelled.cancellation_reasons();
    if !reasons.is_empty() {
        return (0..reasons.len())
            .filter(|&i| failed(reasons[i].code()))
            .collect();
    }
    // Without structured reasons, the message lists them in order: "[None, ConditionalCheckFailed]".
    let message = cancelled.message().unwrap_or_default();
    let listed = message
        .rsplit_once('[')
        .map_or("", |(_, rest)| rest.trim_end_matches(']'));
    listed
        .split(',')
        .enumerate()
        .filter(|(_, code)| failed(Some(code.trim())))
        .map(|(i, _)| i)
        .collect()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub(super) async fn get<R: DeserializeOwned>(
        &self,
        what: &str,
        key: Item,
    ) -> Result<Option<R>> {
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

    /// Writes `fields` (set, or removed when `None`) if the item's secret hash is still
    /// `from`, with `event` if any, in one transaction; `false`, and no change, when the item
    /// changed or is gone.
    pub(super) async fn swap_secret_fields(
        &self,
        key: Item,
        from: &SecretHash,
        (fields, event): (SecretFields, Option<&AuditEvent>),
    ) -> Result<bool> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#read = :from")
            .expression_attribute_names("#read", "secretHash")
            .expression_attribute_values(":from", s(from.as_stored()));
        let (mut sets, mut removes) = (Vec::new(), Vec::new());
        for (n, (name, value)) in fields.into_iter().enumerate() {
            update = update.expression_attribute_names(format!("#f{n}"), name);
            let name = format!("#f{n}");
            match value {
                Some(value) => {
                    sets.push(format!("{name} = :f{n}"));
                    update =
                        update.expression_attribute_values(format!(":f{n}"), attribute(&value));
                }
                None => removes.push(name),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.audited(event)?);
        audits::first_holds(self.transact(items, None).await)
    }

    /// Deletes `keys` in batches, retrying what DynamoDB leaves unprocessed until none is left.
    pub(super) async fn delete_all(&self, keys: Vec<Item>) -> Result<()> {
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(Error::internal)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_>>()?;
        self.batch_write(requests).await
    }

    /// Writes `requests` in batches, retrying what DynamoDB leaves unprocessed until none is left.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        for chunk in requests.chunks(BATCH) {
            let mut pending = chunk.to_vec();
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

impl DynamoStore {
    pub(super) fn index_query(
        &self,
        index: &str,
        attribute: &str,
        value: String,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{attribute} = :pk"))
            .expression_attribute_values(":pk", s(value))
    }

    /// Every item a query yields, across all its pages.
    pub(super) async fn all_items(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
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
}
