//! API token records and their tenant and user indexes.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::directory::{entity_key, read_record, typed_records};
use super::*;
use crate::domain::lives::Absent;

/// Index entries that make a token findable by tenant and by user.
pub(super) fn token_index_keys(token: &TokenRecord) -> (String, Option<String>) {
    let client_id = token.client_id();
    (
        format!("{}/{client_id}", token.tenant_id()),
        token.user_id().map(|user| format!("{user}/{client_id}")),
    )
}

/// The token record under `key` in `table` (the tokens table, in any transaction).
pub(super) fn stored_token(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<TokenRecord>, redb::Error> {
    table
        .get(key)?
        .map(|v| read_json("token", v.value()))
        .transpose()
}

/// Deletes one token, its index entries and its spent refresh tokens inside `txn`.
pub(super) fn delete_token_in(
    txn: &redb::WriteTransaction,
    client_id: &ClientId,
) -> Result<(), redb::Error> {
    let key = client_id.to_string();
    let removed = txn
        .open_table(TOKENS)?
        .remove(key.as_str())?
        .map(|v| v.value().to_vec());
    if let Some(bytes) = removed {
        let record: TokenRecord = read_json("token", &bytes)?;
        let (tenant_key, user_key) = token_index_keys(&record);
        txn.open_table(TENANT_TOKENS)?.remove(tenant_key.as_str())?;
        if let Some(user_key) = user_key {
            txn.open_table(USER_TOKENS)?.remove(user_key.as_str())?;
        }
    }
    for table in [REFRESH, USAGE] {
        let mut table = txn.open_table(table)?;
        for key in keys_under(&table, &key)? {
            table.remove(key.as_str())?;
        }
    }
    Ok(())
}

/// What is missing when the token's tenant or membership no longer has the life the token
/// records, read in the writing transaction so that no delete can come in between.
fn absent_owner(
    txn: &redb::WriteTransaction,
    token: &ApiToken,
) -> Result<Option<Absent>, redb::Error> {
    let directory = txn.open_table(DIRECTORY)?;
    let read = |kind, id: &str| -> Result<Option<DirectoryRecord>, redb::Error> {
        Ok(read_record(&directory, &entity_key(kind, id))?.map(|s| s.record))
    };
    let tenant = read(EntityKind::Tenant, token.tenant_id.as_str())?;
    let user = token
        .user_id()
        .map(|user| read(EntityKind::User, user.as_str()))
        .transpose()?;
    let user = user.as_ref().map(Option::as_ref);
    Ok(token
        .lives
        .check(&token.tenant_id, tenant.as_ref(), user)
        .err())
}

#[async_trait]
impl TokenStore for EmbeddedStore {
    async fn put_new(&self, token: &ApiToken, event: &AuditEvent) -> Result<()> {
        let key = token.client_id.to_string();
        let record = TokenRecord::from(token);
        let value = to_json(&record)?;
        let (written, event) = (token.clone(), event.clone());
        let outcome = self
            .run(move |db| {
                let txn = db.begin_write()?;
                if let Some(absent) = absent_owner(&txn, &written)? {
                    return Ok(Err(absent));
                }
                {
                    let mut table = txn.open_table(TOKENS)?;
                    if table.get(key.as_str())?.is_some() {
                        return Ok(Ok(false));
                    }
                    table.insert(key.as_str(), value.as_slice())?;
                }
                let (tenant_key, user_key) = token_index_keys(&record);
                txn.open_table(TENANT_TOKENS)?
                    .insert(tenant_key.as_str(), [].as_slice())?;
                if let Some(user_key) = user_key {
                    txn.open_table(USER_TOKENS)?
                        .insert(user_key.as_str(), [].as_slice())?;
                }
                db.record_audit(&txn, &event)?;
                txn.commit()?;
                Ok(Ok(true))
            })
            .await?;
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Conflict("a token with this clientId exists".into())),
            Err(absent) => Err(Error::NotFound(
                absent.message(&token.tenant_id, token.user_id()),
            )),
        }
    }

    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>> {
        let record: Option<TokenRecord> = self.get(TOKENS, "token", client_id.to_string()).await?;
        Ok(record.map(Into::into))
    }

    async fn token_with(
        &self,
        client_id: &ClientId,
        keys: &[(EntityKind, String)],
    ) -> Result<(Option<ApiToken>, Vec<Option<TypedRecord>>)> {
        let key = client_id.to_string();
        let (token, records) = self.read_now(|db| {
            let txn = db.begin_read()?;
            let token = stored_token(&txn.open_table(TOKENS)?, &key)?;
            if keys.is_empty() {
                return Ok((token, Vec::new()));
            }
            let directory = txn.open_table(DIRECTORY)?;
            let records = keys
                .iter()
                .map(|(kind, id)| read_record(&directory, &entity_key(*kind, id)))
                .collect::<Result<Vec<_>, redb::Error>>()?;
            Ok((token, records))
        })?;
        let records = records.into_iter().map(|s| s.map(|s| s.record)).collect();
        Ok((token.map(Into::into), typed_records(keys, records)?))
    }

    async fn replace(&self, token: &ApiToken, event: &AuditEvent) -> Result<()> {
        let key = token.client_id.to_string();
        let record = TokenRecord::from(token);
        let event = event.clone();
        let replaced = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut table = txn.open_table(TOKENS)?;
                    let Some(stored) = stored_token(&table, &key)? else {
                        return Ok(false);
                    };
                    let value = write_json(&record.with_uses_and_secrets_of(&stored))?;
                    table.insert(key.as_str(), value.as_slice())?;
                }
                db.record_audit(&txn, &event)?;
                txn.commit()?;
                Ok(true)
            })
            .await?;
        replaced
            .then_some(())
            .ok_or_else(|| Error::NotFound("Token not found".into()))
    }

    async fn swap_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let change = (secret_fields(to), event);
        self.swap_secret_fields(TOKENS, client_id.to_string(), from, change)
            .await
    }

    async fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>> {
        self.indexed_tokens(TENANT_TOKENS, tenant.to_string()).await
    }

    async fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>> {
        self.indexed_tokens(USER_TOKENS, user.to_string()).await
    }

    async fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()> {
        let ids = client_ids.to_vec();
        self.run(move |db| {
            let txn = db.begin_write()?;
            for id in &ids {
                delete_token_in(&txn, id)?;
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn delete_token(&self, client_id: &ClientId, event: &AuditEvent) -> Result<bool> {
        let (id, event) = (*client_id, event.clone());
        self.run(move |db| {
            let txn = db.begin_write()?;
            if txn
                .open_table(TOKENS)?
                .get(id.to_string().as_str())?
                .is_none()
            {
                return Ok(false); // dropped uncommitted: nothing deleted
            }
            delete_token_in(&txn, &id)?;
            db.record_audit(&txn, &event)?;
            txn.commit()?;
            Ok(true)
        })
        .await
    }
}

impl EmbeddedStore {
    async fn indexed_tokens(
        &self,
        index: TableDefinition<'static, &'static str, &'static [u8]>,
        owner: String,
    ) -> Result<Vec<ApiToken>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let tokens = txn.open_table(TOKENS)?;
            let mut found = Vec::new();
            for key in keys_under(&txn.open_table(index)?, &owner)? {
                let client_id = key.rsplit('/').next().unwrap_or_default();
                found.extend(stored_token(&tokens, client_id)?.map(ApiToken::from));
            }
            Ok(found)
        })
        .await
    }
}
