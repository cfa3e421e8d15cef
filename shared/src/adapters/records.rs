//! The stored shape of each record, shared by both stores (JSON in the embedded one, a DynamoDB
//! item through serde_dynamo). Domain types stay free of storage concerns.

use serde::{Deserialize, Serialize};

use crate::domain::directory::EntityKind;
use crate::domain::lives::{Life, TokenLives};
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::secret::QuickCheck;
use crate::domain::{
    ApiToken, ClientId, GrantId, Metadata, RefreshDigest, RefreshRecord, SecretHash, TenantId,
    Timestamp, TokenOwner, UserId, VendorCredential,
};
use crate::error::Error;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    client_id: ClientId,
    tenant_id: TenantId,
    /// Set on personal tokens only: the user the token acts as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by_user_id: Option<UserId>,
    /// Absent when none was given (records written before it could be absent hold a text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    metadata: Metadata,
    role_ids: Vec<GrantId>,
    permission_ids: Vec<GrantId>,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// DynamoDB's TTL attribute (unix seconds); expired tokens are also refused on read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    secret_hash: String,
    /// The secret's quick check (absent on records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_life: Option<Life>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member_life: Option<Life>,
}

impl TokenRecord {
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    pub fn user_id(&self) -> Option<&UserId> {
        self.user_id.as_ref()
    }
}

impl From<&ApiToken> for TokenRecord {
    fn from(token: &ApiToken) -> Self {
        Self {
            client_id: token.client_id,
            tenant_id: token.tenant_id.clone(),
            user_id: match &token.owner {
                TokenOwner::User(user) => Some(user.clone()),
                TokenOwner::Tenant => None,
            },
            created_by_user_id: token.created_by_user_id.clone(),
            description: token.description.clone(),
            metadata: token.metadata.clone(),
            role_ids: token.role_ids.clone(),
            permission_ids: token.permission_ids.clone(),
            created_at: token.created_at.millis(),
            expires_at: token.expires_at.map(Timestamp::millis),
            ttl: token.expires_at.map(Timestamp::seconds),
            last_used_at: token.last_used_at.map(Timestamp::millis),
            secret_hash: token.secret_hash.as_stored().to_owned(),
            secret_check: token.secret_hash.check().map(QuickCheck::as_stored),
            tenant_life: token.lives.tenant.clone(),
            member_life: token.lives.membership.clone(),
        }
    }
}

impl From<TokenRecord> for ApiToken {
    fn from(record: TokenRecord) -> Self {
        Self {
            client_id: record.client_id,
            tenant_id: record.tenant_id,
            owner: record.user_id.map_or(TokenOwner::Tenant, TokenOwner::User),
            created_by_user_id: record.created_by_user_id,
            description: record.description,
            metadata: record.metadata,
            role_ids: record.role_ids,
            permission_ids: record.permission_ids,
            created_at: Timestamp::from_millis(record.created_at),
            expires_at: record.expires_at.map(Timestamp::from_millis),
            last_used_at: record.last_used_at.map(Timestamp::from_millis),
            secret_hash: SecretHash::from_stored(
                record.secret_hash,
                record.secret_check.as_deref(),
            ),
            lives: TokenLives {
                tenant: record.tenant_life,
                membership: record.member_life,
            },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorRecord {
    client_id: ClientId,
    secret_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_check: Option<String>,
    created_at: i64,
}

impl From<&VendorCredential> for VendorRecord {
    fn from(vendor: &VendorCredential) -> Self {
        Self {
            client_id: vendor.client_id,
            secret_hash: vendor.secret_hash.as_stored().to_owned(),
            secret_check: vendor.secret_hash.check().map(QuickCheck::as_stored),
            created_at: vendor.created_at.millis(),
        }
    }
}

impl From<VendorRecord> for VendorCredential {
    fn from(record: VendorRecord) -> Self {
        Self {
            client_id: record.client_id,
            secret_hash: SecretHash::from_stored(
                record.secret_hash,
                record.secret_check.as_deref(),
            ),
            created_at: Timestamp::from_millis(record.created_at),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshItem {
    digest: String,
    issued_at: i64,
    expires_at: i64,
    ttl: i64,
}

impl From<&RefreshRecord> for RefreshItem {
    fn from(record: &RefreshRecord) -> Self {
        Self {
            digest: record.digest.0.clone(),
            issued_at: record.issued_at.millis(),
            expires_at: record.expires_at.millis(),
            ttl: record.expires_at.seconds(),
        }
    }
}

impl From<RefreshItem> for RefreshRecord {
    fn from(item: RefreshItem) -> Self {
        Self {
            digest: RefreshDigest(item.digest),
            issued_at: Timestamp::from_millis(item.issued_at),
            expires_at: Timestamp::from_millis(item.expires_at),
        }
    }
}

/// Which of `records` to drop so that the newest `keep` stay.
pub fn oldest_beyond(mut records: Vec<RefreshRecord>, keep: usize) -> Vec<RefreshRecord> {
    records.sort_by(|a, b| {
        b.issued_at
            .cmp(&a.issued_at)
            .then_with(|| b.digest.0.cmp(&a.digest.0))
    });
    records.split_off(keep.min(records.len()))
}

pub fn corrupt(what: &str, cause: impl std::fmt::Display) -> Error {
    Error::internal(format!("stored {what} record is unreadable: {cause}"))
}

pub fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Permission => "PERMISSION",
        EntityKind::Role => "ROLE",
        EntityKind::Tenant => "TENANT",
        EntityKind::User => "USER",
        EntityKind::Configuration => "CONFIGURATION",
    }
}

/// A portal hand-off as stored, with its TTL.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffItem {
    digest: String,
    tenant_id: TenantId,
    user_id: UserId,
    expires_at: i64,
    ttl: i64,
}

impl From<&Handoff> for HandoffItem {
    fn from(handoff: &Handoff) -> Self {
        Self {
            digest: handoff.digest.0.clone(),
            tenant_id: handoff.tenant_id.clone(),
            user_id: handoff.user_id.clone(),
            expires_at: handoff.expires_at.millis(),
            ttl: handoff.expires_at.seconds(),
        }
    }
}

impl From<HandoffItem> for Handoff {
    fn from(item: HandoffItem) -> Self {
        Self {
            digest: HandoffDigest(item.digest),
            tenant_id: item.tenant_id,
            user_id: item.user_id,
            expires_at: Timestamp::from_millis(item.expires_at),
        }
    }
}
