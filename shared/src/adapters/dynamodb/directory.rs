//! Directory documents, membership items, versions and tombstones.

use async_trait::async_trait;

use super::*;

pub(super) fn entity_key(kind: EntityKind, id: &str) -> Item {
    match kind {
        EntityKind::Permission | EntityKind::Role => key(kind_name(kind).into(), id.into()),
        EntityKind::Tenant | EntityKind::User => {
            key(format!("{}#{id}", kind_name(kind)), kind_name(kind).into())
        }
    }
}

pub(super) fn membership_key(user: &UserId, tenant: &TenantId) -> Item {
    key(format!("USER#{user}"), format!("MEMBER#{tenant}"))
}

#[async_trait]
impl DirectoryStore for DynamoStore {
    async fn put_entity(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
        origin: Origin,
    ) -> Result<bool> {
        let write = self.entity_write(entity_key(kind, id), Some(doc), origin.version())?;
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

    async fn delete_entity(&self, kind: EntityKind, id: &str, origin: Origin) -> Result<bool> {
        let key = entity_key(kind, id);
        let write = match origin {
            Origin::Api => self.delete_item(key)?,
            Origin::Event { .. } => self.entity_write(key, None, origin.version())?,
        };
        self.transact(vec![write]).await
    }

    async fn put_user(&self, user: &User, origin: Origin) -> Result<bool> {
        let doc = serde_json::to_value(user).map_err(Error::internal)?;
        self.write_user(&user.id, Some(&doc), &user.tenants, origin.version())
            .await
    }

    async fn delete_user(&self, id: &UserId, origin: Origin) -> Result<bool> {
        self.write_user(id, None, &[], origin.version()).await
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

impl DynamoStore {
    /// Sets a directory document (or, with `doc` None, tombstones it) unless the stored
    /// version is newer than `version`.
    fn entity_write(
        &self,
        key: Item,
        doc: Option<&Value>,
        version: Option<u64>,
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
        version: Option<u64>,
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
