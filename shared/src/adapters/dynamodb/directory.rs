//! Directory records under their revision (`rev`), and membership items that index each
//! tenant's members (`gsi1`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest};

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

/// Tenants and users each live in a partition of their own, so they are listed through `gsi2`,
/// where every live one is indexed under this key (a tombstone is not).
fn listing_key(kind: EntityKind) -> Option<String> {
    matches!(kind, EntityKind::Tenant | EntityKind::User).then(|| format!("{}S", kind_name(kind)))
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
    Ok((typed_record(kind, record)?, Revision(rev)))
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
    ) -> Result<bool> {
        let record = stored_record(record)?;
        let mut item: Item = serde_dynamo::to_item(&record).map_err(Error::internal)?;
        item.extend(entity_key(kind, id));
        if let Some(listing) = listing_key(kind).filter(|_| record.doc.is_some()) {
            item.insert("gsi2pk".into(), s(listing));
            item.insert("gsi2sk".into(), s(id));
        }
        let next = read.map_or(1, |Revision(n)| n + 1);
        item.insert("rev".into(), AttributeValue::N(next.to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(Revision(0)) => {
                put.condition_expression("attribute_exists(pk) AND attribute_not_exists(rev)")
            }
            Some(Revision(n)) => put
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(n.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(dynamo_error(e)),
        }
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Record>> {
        let query = match listing_key(kind) {
            Some(listing) => self.index_query("gsi2", "gsi2pk", listing),
            None => self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(kind_name(kind)))
                .consistent_read(true),
        };
        let mut records = Vec::new();
        for item in self.all_items(query).await? {
            let (record, _) = record_from(kind, item)?;
            if record.is_live() {
                records.push(record);
            }
        }
        Ok(records)
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
