//! Audit events, written in the transaction of the change they record: a copy under each of
//! the event's scopes and day (`AUDIT#<scope>#<day>`, sk the event id, which sorts by time),
//! and a count per scope and day in [`COUNT_SHARDS`] items (`AUDITCOUNT#<scope>`, sk
//! `<day>#<shard>`). Every item carries the day's TTL. A page reads the scope's counts (one
//! query, bounded by the retention, not by the log), then only the days it shows.

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::types::{Delete, Update};

use super::*;
use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery, DayRead, PagePlan, Scope};
use crate::ports::AuditStore;

/// Items sharing one scope's count of a day, so that concurrent events seldom meet on one.
const COUNT_SHARDS: u32 = 8;

/// Attempts of a transaction that other transactions holding its items cancelled.
const CONFLICT_ATTEMPTS: u32 = 4;

fn copies_pk(scope: &Scope, day: &str) -> String {
    format!("AUDIT#{}#{day}", scope.key())
}

fn counts_pk(scope: &Scope) -> String {
    format!("AUDITCOUNT#{}", scope.key())
}

/// The shard of an event's counts.
fn shard(id: &str) -> u32 {
    shard_of(id, COUNT_SHARDS)
}

fn ttl(at: Timestamp) -> AttributeValue {
    AttributeValue::N(at.seconds().to_string())
}

impl DynamoStore {
    /// The items that record `event`: its copies and its counts.
    pub(super) fn audit_items(&self, event: &AuditEvent) -> Result<Vec<TransactWriteItem>> {
        let day = event.day();
        let json = serde_json::to_string(event).map_err(Error::internal)?;
        let mut items = Vec::new();
        for scope in event.scopes() {
            let mut item = key(copies_pk(&scope, &day), event.id.clone());
            item.insert("event".into(), s(json.clone()));
            item.insert("ttl".into(), ttl(event.keep_until));
            stamp(&mut item);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
            let count = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(
                    counts_pk(&scope),
                    format!("{day}#{}", shard(&event.id)),
                )))
                .update_expression("ADD n :one SET #ttl = :ttl")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":ttl", ttl(event.keep_until))
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().update(count).build());
        }
        Ok(items)
    }

    /// The items of `event`, if any (see [`Self::audit_items`]).
    pub(super) fn audited(&self, event: Option<&AuditEvent>) -> Result<Vec<TransactWriteItem>> {
        event.map_or(Ok(Vec::new()), |event| self.audit_items(event))
    }

    /// Writes `items` in one transaction; one cancelled only because other transactions held
    /// some of its items (an event's counts) is tried again. Changes put their event's items
    /// last, so that a failed condition's position is the same with or without an event.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        request_token: Option<String>,
    ) -> std::result::Result<(), SdkError<TransactWriteItemsError, HttpResponse>> {
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_client_request_token(request_token.clone())
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match sent {
                Err(e) if attempt + 1 < CONFLICT_ATTEMPTS && only_held_by_others(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Creates or replaces `item`, with `event`, in one transaction.
    pub(super) async fn put_recorded(&self, item: Item, event: &AuditEvent) -> Result<()> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(self.audit_items(event)?);
        self.transact(items, None).await.map_err(dynamo_error)
    }

    /// Deletes the item at `key` if it exists, with `event`, in one transaction: `false`, and
    /// no event, when it was gone.
    pub(super) async fn delete_recorded(&self, key: Item, event: &AuditEvent) -> Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        items.extend(self.audit_items(event)?);
        first_holds(self.transact(items, None).await)
    }

    /// The counts of `scope`'s days still kept at `now`.
    async fn day_counts(&self, scope: &Scope, now: Timestamp) -> Result<Vec<(String, u64)>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(counts_pk(scope)))
            .consistent_read(true);
        let number = |item: &Item, name: &str| -> i64 {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let mut days: HashMap<String, u64> = HashMap::new();
        for item in self.all_items(query).await? {
            if number(&item, "ttl") <= now.seconds() {
                continue; // no longer kept, not yet deleted by TTL
            }
            let (_, sk) = super::directory::key_of(&item);
            let day = sk.split('#').next().unwrap_or_default().to_owned();
            *days.entry(day).or_default() += u64::try_from(number(&item, "n")).unwrap_or(0);
        }
        Ok(days.into_iter().collect())
    }

    /// The events a page shows of one day.
    async fn day_events(
        &self,
        scope: &Scope,
        read: &DayRead,
        oldest_first: bool,
    ) -> Result<Vec<AuditEvent>> {
        let wanted = usize::try_from(read.skip)
            .unwrap_or(usize::MAX)
            .saturating_add(read.take);
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < wanted {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(copies_pk(scope, &read.day)))
                .scan_index_forward(oldest_first)
                .consistent_read(true)
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo_error)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let skip = usize::try_from(read.skip).unwrap_or(usize::MAX);
        items
            .into_iter()
            .skip(skip)
            .take(read.take)
            .map(|item| {
                check_format("audit event", &item)?;
                let json = item.get("event").and_then(|v| v.as_s().ok());
                let json = json.map_or("", String::as_str);
                serde_json::from_str(json).map_err(|e| corrupt("audit event", e))
            })
            .collect()
    }
}

/// A transaction's outcome as whether its first item's condition held: `false` when it failed.
pub(super) fn first_holds(
    sent: std::result::Result<(), SdkError<TransactWriteItemsError, HttpResponse>>,
) -> Result<bool> {
    match sent {
        Ok(()) => Ok(true),
        Err(e) if failed_conditions(&e).first() == Some(&0) => Ok(false),
        Err(e) => Err(dynamo_error(e)),
    }
}

/// Whether a transaction was cancelled only because other transactions held its items.
fn only_held_by_others<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        e.as_service_error()
    else {
        return false;
    };
    let reasons = cancelled.cancellation_reasons();
    let conflict = |code: Option<&str>| code == Some("TransactionConflict");
    let harmless = |code: Option<&str>| matches!(code, None | Some("None")) || conflict(code);
    if reasons.is_empty() {
        let message = cancelled.message().unwrap_or_default();
        return message.contains("TransactionConflict") && !message.contains("ConditionalCheck");
    }
    reasons.iter().any(|r| conflict(r.code())) && reasons.iter().all(|r| harmless(r.code()))
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        self.transact(self.audit_items(event)?, None)
            .await
            .map_err(dynamo_error)
    }

    async fn import_event(&self, event: &AuditEvent) -> Result<bool> {
        let mut items = self.audit_items(event)?;
        // Conditional on its first copy, as every copy is written with the others.
        if let Some(put) = items.first_mut().and_then(|item| item.put.as_mut()) {
            put.condition_expression = Some("attribute_not_exists(pk)".into());
        }
        first_holds(self.transact(items, None).await)
    }

    async fn audits(&self, query: &AuditQuery, now: Timestamp) -> Result<AuditPage> {
        let counts = self.day_counts(&query.scope, now).await?;
        let plan = PagePlan::new(counts, query);
        let mut events = Vec::new();
        for read in &plan.days {
            events.extend(
                self.day_events(&query.scope, read, query.oldest_first)
                    .await?,
            );
        }
        Ok(AuditPage {
            events,
            total: plan.total,
        })
    }
}
