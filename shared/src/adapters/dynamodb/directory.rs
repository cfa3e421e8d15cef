//! Directory records under their revision (`rev`), and membership items that index each
//! tenant's members (`gsi1`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, PutRequest, Update};

use super::*;

pub(super) fn entity_key(kind: EntityKind, id: &str) -> Item {
    match kind {
        EntityKind::Permission | EntityKind::Role | EntityKind::Configuration => {
            key(kind_name(kind).into(), id.into())
        }
        EntityKind::Tenant | EntityKind::User => {
            key(format!("{}#{id}", kind_name(kind)), kind_name(kind).into())
        }
    }
}

/// Tenants and users each live in a partition of their own, so they are listed through `gsi3`
/// (keys only), where every live one is indexed under this key (a tombstone is not), and
/// counted in [`COUNT_SHARDS`] items under `COUNT#<key>`.
fn listing_key(kind: EntityKind) -> Option<String> {
    matches!(kind, EntityKind::Tenant | EntityKind::User).then(|| format!("{}S", kind_name(kind)))
}

/// How many items share the count of live tenants (or users): a write changes one, chosen by
/// its id, so concurrent creates seldom meet on one item; a listing sums them all.
const COUNT_SHARDS: u32 = 16;

fn count_key(listing: &str, shard: u32) -> Item {
    key(format!("COUNT#{listing}"), shard.to_string())
}

/// The count item a write of the record `id` changes.
fn count_shard(listing: &str, id: &str) -> Item {
    count_key(listing, shard_of(id, COUNT_SHARDS))
}

/// The item holding where a role's or permission's key is held: `holders`, a string set of
/// scopes (`*` for the vendor's, else tenant ids; `*` is no tenant id).
fn claim_key(claim: &KeyClaim) -> Item {
    key(
        format!("KEY#{}", kind_name(claim.kind)),
        claim.key.as_str().to_owned(),
    )
}

fn scope(claim: &KeyClaim) -> AttributeValue {
    let scope = claim.tenant.as_ref().map_or("*", TenantId::as_str);
    AttributeValue::Ss(vec![scope.to_owned()])
}

impl DynamoStore {
    /// The count of live tenants (or users) by one up or down, in the shard `id` falls in.
    fn count_change(&self, listing: &str, id: &str, up: bool) -> Result<Update> {
        let delta = if up { "1" } else { "-1" };
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_shard(listing, id)))
            .update_expression("ADD n :delta")
            .expression_attribute_values(":delta", AttributeValue::N(delta.into()))
            .build()
            .map_err(Error::internal)
    }

    /// What changes with a record, in the same transaction: the count of live tenants (or
    /// users) when the record becomes live or stops being; the key a role or permission holds,
    /// when it changes. With the position the claim of a key takes in the transaction.
    fn alongside(
        &self,
        id: &str,
        listing: Option<String>,
        (read, live, claim): (Option<&Revision>, bool, Option<&KeyClaim>),
    ) -> Result<(Vec<Update>, Option<usize>)> {
        let mut with = Vec::new();
        let was_live = read.is_some_and(|r| r.live);
        if let Some(listing) = listing.filter(|_| was_live != live) {
            with.push(self.count_change(&listing, id, live)?);
        }
        let old = read.and_then(|r| r.claim.as_ref());
        let mut taking = None;
        if old != claim {
            with.extend(old.map(|old| self.let_go(old)).transpose()?);
            if let Some(new) = claim {
                taking = Some(with.len() + 1);
                with.push(self.claim(new)?);
            }
        }
        Ok((with, taking))
    }

    /// `claim` let go of (nothing when it is not held).
    fn let_go(&self, claim: &KeyClaim) -> Result<Update> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(claim_key(claim)))
            .update_expression("DELETE holders :scope")
            .expression_attribute_values(":scope", scope(claim))
            .build()
            .map_err(Error::internal)
    }

    /// `claim` taken, on the condition that it fits beside the claims held (see
    /// [`KeyClaim::fits_beside`]).
    fn claim(&self, claim: &KeyClaim) -> Result<Update> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(claim_key(claim)))
            .update_expression("ADD holders :scope")
            .expression_attribute_values(":scope", scope(claim));
        let update = match &claim.tenant {
            None => update.condition_expression("attribute_not_exists(holders)"),
            Some(tenant) => update
                .condition_expression(
                    "attribute_not_exists(holders) OR \
                     (NOT contains(holders, :vendor) AND NOT contains(holders, :tenant))",
                )
                .expression_attribute_values(":vendor", s("*"))
                .expression_attribute_values(":tenant", s(tenant.as_str())),
        };
        update.build().map_err(Error::internal)
    }
}

/// The condition that the stored revision is still `read`, with its values.
fn unchanged_since(read: Option<&Revision>) -> (&'static str, Option<(String, AttributeValue)>) {
    match read {
        None => ("attribute_not_exists(pk)", None),
        Some(Revision { number: 0, .. }) => {
            ("attribute_exists(pk) AND attribute_not_exists(rev)", None)
        }
        Some(Revision { number, .. }) => (
            "rev = :rev",
            Some((":rev".to_owned(), AttributeValue::N(number.to_string()))),
        ),
    }
}

/// Whether a transaction was cancelled because a condition failed or another transaction held
/// one of its items: each means that another write came in between.
fn lost_to_another_write<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    if !failed_conditions(e).is_empty() {
        return true;
    }
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        e.as_service_error()
    else {
        return false;
    };
    let conflict = |code: Option<&str>| code == Some("TransactionConflict");
    cancelled
        .cancellation_reasons()
        .iter()
        .any(|reason| conflict(reason.code()))
        || cancelled
            .message()
            .is_some_and(|m| m.contains("TransactionConflict"))
}

fn membership_key(user: &UserId, tenant: &TenantId) -> Item {
    key(format!("USER#{user}"), format!("MEMBER#{tenant}"))
}

/// The `kind` record in an item and its revision (0 for an item written before revisions).
fn record_from(kind: EntityKind, mut item: Item) -> Result<(Record, Revision)> {
    let rev = item
        .remove("rev")
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let record: DirectoryRecord = from_item("directory", item)?;
    let record = typed_record(kind, record)?;
    let revision = Revision {
        number: rev,
        live: record.is_live(),
        claim: record.key_claim(),
    };
    Ok((record, revision))
}

/// The records of `kinds` at `keys` among the items `found`, in the order of `keys`.
pub(super) fn records_at(
    found: &HashMap<(String, String), Item>,
    kinds: impl IntoIterator<Item = EntityKind>,
    keys: &[Item],
) -> Result<Vec<Option<Record>>> {
    kinds
        .into_iter()
        .zip(keys)
        .map(|(kind, key)| {
            let item = found.get(&key_of(key)).cloned();
            let record = item.map(|item| record_from(kind, item)).transpose()?;
            Ok(record.map(|(record, _)| record))
        })
        .collect()
}

pub(super) fn key_of(item: &Item) -> (String, String) {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (text("pk"), text("sk"))
}

#[async_trait]
impl DirectoryStore for DynamoStore {
    async fn record(&self, kind: EntityKind, id: &str) -> Result<Option<(Record, Revision)>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(entity_key(kind, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        out.item.map(|item| record_from(kind, item)).transpose()
    }

    async fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<Record>>> {
        let kinds = keys.iter().map(|(kind, _)| *kind);
        let items: Vec<Item> = keys
            .iter()
            .map(|(kind, id)| entity_key(*kind, id))
            .collect();
        let found = self.fetch(&items).await?;
        records_at(&found, kinds, &items)
    }

    async fn swap(
        &self,
        kind: EntityKind,
        id: &str,
        record: &Record,
        read: Option<Revision>,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let claim = record.key_claim();
        let record = stored_record(record)?;
        let mut item: Item = serde_dynamo::to_item(&record).map_err(Error::internal)?;
        item.extend(entity_key(kind, id));
        let listing = listing_key(kind);
        if let Some(listing) = listing.clone().filter(|_| record.is_live()) {
            item.insert("gsi3pk".into(), s(listing));
            item.insert("gsi3sk".into(), s(id));
        }
        let next = read.as_ref().map_or(1, |r| r.number + 1);
        item.insert("rev".into(), AttributeValue::N(next.to_string()));
        stamp(&mut item);
        let (condition, value) = unchanged_since(read.as_ref());
        let changes = (read.as_ref(), record.is_live(), claim.as_ref());
        let (with, taking) = self.alongside(id, listing, changes)?;
        if with.is_empty() && event.is_none() {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition);
            let put = match value {
                Some((name, value)) => put.expression_attribute_values(name, value),
                None => put,
            };
            return match put.send().await {
                Ok(_) => Ok(true),
                Err(e) if is_condition_failure(&e) => Ok(false),
                Err(e) => Err(dynamo_error(e)),
            };
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(value.map(|v| HashMap::from([v])))
            .build()
            .map_err(Error::internal)?;
        let items = std::iter::once(TransactWriteItem::builder().put(put).build()).chain(
            with.into_iter()
                .map(|u| TransactWriteItem::builder().update(u).build()),
        );
        let items = items.chain(self.audited(event)?).collect();
        let written = self.transact(items, None).await;
        let Err(e) = written else {
            return Ok(true);
        };
        let failed = failed_conditions(&e);
        match (failed.first(), &claim) {
            (Some(0), _) => Ok(false),
            (Some(at), Some(new)) if Some(*at) == taking => Err(Error::Conflict(new.taken())),
            _ if lost_to_another_write(&e) => Ok(false),
            _ => Err(dynamo_error(e)),
        }
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Record>> {
        if listing_key(kind).is_some() {
            return Err(Error::internal(
                "tenants and users are read through their listing",
            ));
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(kind_name(kind)))
            .consistent_read(true);
        let mut records = Vec::new();
        for item in self.all_items(query).await? {
            let (record, _) = record_from(kind, item)?;
            if record.is_live() {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn listed(&self, kind: EntityKind, skip: u64, limit: usize) -> Result<Listed> {
        let Some(listing) = listing_key(kind) else {
            return Err(Error::internal("only tenants and users are listed"));
        };
        let wanted = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .saturating_add(limit);
        let query = self
            .index_query("gsi3", "gsi3pk", listing.clone())
            .limit(i32::try_from(wanted).unwrap_or(i32::MAX));
        let mut keys = query.into_paginator().items().send();
        let mut ids = Vec::new();
        let mut seen = 0usize;
        while seen < wanted {
            let Some(item) = keys.next().await else {
                break;
            };
            let item = item.map_err(dynamo_error)?;
            seen += 1;
            if seen as u64 > skip {
                ids.extend(item.get("gsi3sk").and_then(|v| v.as_s().ok()).cloned());
            }
        }
        let shards: Vec<Item> = (0..COUNT_SHARDS).map(|n| count_key(&listing, n)).collect();
        let counted: i64 = self
            .fetch(&shards)
            .await?
            .values()
            .filter_map(|item| item.get("n")?.as_n().ok()?.parse::<i64>().ok())
            .sum();
        Ok(Listed {
            ids,
            total: u64::try_from(counted).unwrap_or(0),
        })
    }

    async fn index_members(
        &self,
        user: &UserId,
        joined: &[TenantId],
        left: &[TenantId],
    ) -> Result<()> {
        let mut requests = Vec::with_capacity(joined.len() + left.len());
        for tenant in joined {
            let mut item = membership_key(user, tenant);
            item.insert("gsi1pk".into(), s(format!("TENANT#{tenant}")));
            item.insert("gsi1sk".into(), s(format!("MEMBER#{user}")));
            stamp(&mut item);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(Error::internal)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for tenant in left {
            let delete = DeleteRequest::builder()
                .set_key(Some(membership_key(user, tenant)))
                .build()
                .map_err(Error::internal)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(requests).await
    }

    async fn members_of(&self, tenant: &TenantId) -> Result<Vec<UserId>> {
        let query = self
            .index_query("gsi1", "gsi1pk", format!("TENANT#{tenant}"))
            .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :member)")
            .expression_attribute_values(":member", s("MEMBER#"));
        Ok(self
            .all_items(query)
            .await?
            .iter()
            .filter_map(|item| {
                item.get("gsi1sk")?
                    .as_s()
                    .ok()?
                    .strip_prefix("MEMBER#")
                    .map(str::to_owned)
            })
            .filter_map(|id| UserId::parse(&id).ok())
            .collect())
    }
}

impl DynamoStore {
    /// The items of `keys` that exist, by key, in batches of a hundred (consistent reads).
    pub(super) async fn fetch(&self, keys: &[Item]) -> Result<HashMap<(String, String), Item>> {
        let mut seen = HashSet::new();
        let unique: Vec<Item> = keys
            .iter()
            .filter(|key| seen.insert(key_of(key)))
            .cloned()
            .collect();
        let mut found = HashMap::new();
        for chunk in unique.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                found.insert(key_of(&item), item);
            }
        }
        Ok(found)
    }

    /// Reads `keys` (at most 100, no repeats) with strong consistency, asking again for what
    /// DynamoDB leaves unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(Error::internal)?;
        let mut items = Vec::new();
        for attempt in 0u32.. {
            if attempt > 0 {
                let backoff = 20u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(dynamo_error)?;
            items.extend(
                out.responses
                    .as_mut()
                    .and_then(|r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => break,
            }
        }
        Ok(items)
    }
}
