//! The stored shape of each record, shared by both stores (JSON in the embedded one, a DynamoDB
//! item through serde_dynamo). Domain types stay free of storage concerns.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::directory::EntityKind;
use crate::domain::document::Record;
use crate::domain::federation::{LocalIssuers, MAX_TRUST_POLICIES, TrustPolicy};
use crate::domain::lives::{DirectoryRecord, Life, TokenLives};
use crate::domain::network::{AllowedIps, IpRange};
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::secret::QuickCheck;
use crate::domain::token::DEFAULT_VENDOR_NAME;
use crate::domain::{
    ApiToken, ClientId, GrantId, Metadata, PreviousSecret, SecretHash, SecretState, TenantId,
    Timestamp, TokenOwner, UserId, VendorCredential,
};
use crate::error::Error;

/// The format of the records this release writes: every record of both stores holds it (as
/// [`FORMAT_FIELD`]), set on each write, so a record is in the format of the last release that
/// wrote it. This release reads every earlier format (a record without it is format 0, written
/// before records were versioned: the same shapes, older fields optional) and refuses a later
/// one, so that going back to an earlier release never misreads what a newer one wrote. A
/// change of a record's shape raises it, and keeps reading what the earlier formats hold
/// (`tests/api/upgrades.rs` holds each release's data to that).
pub const RECORD_FORMAT: u64 = 1;

/// The attribute (DynamoDB) or field (embedded JSON) holding a record's format.
pub const FORMAT_FIELD: &str = "v";

/// Why this release cannot read a record of `format` (`None`: format 0), if it cannot: one
/// written by a later release.
pub fn unreadable_format(what: &str, format: Option<u64>) -> Option<String> {
    format.filter(|f| *f > RECORD_FORMAT).map(|format| {
        format!(
            "stored {what} record has format {format}, written by a later release than this \
             one (which reads formats up to {RECORD_FORMAT}): run that release or a later one"
        )
    })
}

/// Refuses a record of a format later than this release's, as [`unreadable_format`] says.
pub fn readable_format(what: &str, format: Option<u64>) -> Result<(), Error> {
    unreadable_format(what, format).map_or(Ok(()), |why| Err(Error::internal(why)))
}

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
    /// The vendor credential (its clientId) whose token made it, when no user did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by_vendor: Option<String>,
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
    #[serde(flatten)]
    secret: SecretRecord,
    /// Where it may be used from, as `a.b.c.d/n` or IPv6 ranges; absent: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_ips: Vec<String>,
    /// The workloads that may exchange their platform's token for its JWTs; absent: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    trust_policies: Vec<TrustPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_life: Option<Life>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member_life: Option<Life>,
    /// JWTs reserved for it ever, the number the next one counts from (see
    /// [`crate::ports::RateStore`]); written only by reservations.
    #[serde(default, skip_serializing_if = "is_zero")]
    issued: u64,
    /// The minute of the clock `window_uses` counts uses in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    use_window: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_uses: Option<u32>,
}

/// A credential's secrets as stored, in API-token and vendor records alike (the attributes
/// [`secret_fields`] names).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    secret_hash: String,
    /// The secret's quick check (absent on records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_check: Option<String>,
    /// After a rotation: the previous secret's hash and check, and until when it works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_at: Option<i64>,
    /// The current secret's generation (absent: 0, as on records made before it was kept).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    secret_generation: u32,
}

impl From<&SecretState> for SecretRecord {
    fn from(state: &SecretState) -> Self {
        let previous = state.previous.as_ref();
        Self {
            secret_hash: state.hash.as_stored().to_owned(),
            secret_check: state.hash.check().map(QuickCheck::as_stored),
            previous_secret_hash: previous.map(|p| p.hash.as_stored().to_owned()),
            previous_secret_check: previous.and_then(|p| p.hash.check().map(QuickCheck::as_stored)),
            previous_secret_until: previous.map(|p| p.until.millis()),
            rotated_at: state.rotated_at.map(Timestamp::millis),
            secret_generation: state.generation,
        }
    }
}

impl From<SecretRecord> for SecretState {
    fn from(record: SecretRecord) -> Self {
        Self {
            hash: SecretHash::from_stored(record.secret_hash, record.secret_check.as_deref()),
            previous: record
                .previous_secret_hash
                .zip(record.previous_secret_until)
                .map(|(hash, until)| PreviousSecret {
                    hash: SecretHash::from_stored(hash, record.previous_secret_check.as_deref()),
                    until: Timestamp::from_millis(until),
                }),
            rotated_at: record.rotated_at.map(Timestamp::from_millis),
            generation: record.secret_generation,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl TokenRecord {
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// Reserves `want` uses in `minute` if they fit within `limit`, else one if it does, as
    /// [`crate::ports::RateStore::reserve_uses`] says; returns how many, and the count of JWTs
    /// issued after. The first reservation of a minute records the last use.
    pub fn reserve(&mut self, minute: i64, (want, limit): (u32, u32), at: Timestamp) -> (u32, u64) {
        let used = match self.use_window {
            Some(stored) if stored >= minute => self.window_uses.unwrap_or(0),
            _ => 0,
        };
        let room = limit.saturating_sub(used);
        let granted = if want <= room { want } else { room.min(1) };
        if granted > 0 {
            if self.use_window.is_none_or(|stored| stored < minute) {
                // The first use of the minute is its last use, to the minute.
                self.use_window = Some(minute);
                self.last_used_at = Some(at.millis());
            }
            self.window_uses = Some(used.saturating_add(granted));
            self.issued = self.issued.saturating_add(u64::from(granted));
        }
        (granted, self.issued)
    }

    /// This record with the use counts and last use of `stored`, which only reservations
    /// write, and its secrets, which only rotations and rehashes write.
    pub fn with_uses_and_secrets_of(self, stored: &Self) -> Self {
        Self {
            last_used_at: stored.last_used_at,
            issued: stored.issued,
            use_window: stored.use_window,
            window_uses: stored.window_uses,
            secret: stored.secret.clone(),
            ..self
        }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// Refuses a record the API could not have written (one carried in by an import): an
    /// allowed address that does not parse (which would otherwise be dropped, and with all
    /// dropped the token would work from anywhere), a description or metadata beyond the
    /// API's rules, a grant named twice, or counts no JSON reader takes exactly.
    pub fn check(&self, local: &LocalIssuers) -> Result<(), crate::domain::rules::Invalid> {
        use crate::domain::rules::{self, Invalid};
        let client_id = self.client_id;
        let named = |why: String| Invalid(format!("token {client_id}: {why}"));
        if let Some(bad) = (self.allowed_ips.iter()).find(|r| IpRange::parse(r).is_none()) {
            let why = format!("allowedIps holds {bad:?}, no IP address or CIDR range");
            return Err(named(why));
        }
        if !self.allowed_ips.is_empty() {
            let listed = serde_json::Value::from(self.allowed_ips.clone());
            rules::allowed_ips(&listed).map_err(|e| named(e.0))?;
        }
        if self.trust_policies.len() > MAX_TRUST_POLICIES {
            return Err(named(format!(
                "more than {MAX_TRUST_POLICIES} trust policies"
            )));
        }
        for policy in &self.trust_policies {
            policy.check(local).map_err(|e| named(e.0))?;
        }
        if let Some(description) = &self.description {
            rules::description(description.clone()).map_err(|e| named(e.0))?;
        }
        rules::metadata(self.metadata.clone()).map_err(|e| named(e.0))?;
        for ids in [&self.role_ids, &self.permission_ids] {
            let unique: std::collections::BTreeSet<_> = ids.iter().collect();
            if unique.len() != ids.len() {
                return Err(named("a role or permission is named twice".into()));
            }
        }
        if self.issued > crate::domain::lives::MAX_VERSION {
            let why = format!("issued is {}, beyond 2^53 - 1", self.issued);
            return Err(named(why));
        }
        Ok(())
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
            created_by_vendor: token.created_by_vendor.clone(),
            description: token.description.clone(),
            metadata: token.metadata.clone(),
            role_ids: token.role_ids.clone(),
            permission_ids: token.permission_ids.clone(),
            created_at: token.created_at.millis(),
            expires_at: token.expires_at.map(Timestamp::millis),
            ttl: token.expires_at.map(Timestamp::seconds),
            last_used_at: token.last_used_at.map(Timestamp::millis),
            secret: SecretRecord::from(&token.secret),
            allowed_ips: token.allowed_ips.texts(),
            trust_policies: token.trust_policies.clone(),
            tenant_life: token.lives.tenant.clone(),
            member_life: token.lives.membership.clone(),
            issued: token.issued,
            use_window: None,
            window_uses: None,
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
            created_by_vendor: record.created_by_vendor,
            description: record.description,
            metadata: record.metadata,
            role_ids: record.role_ids,
            permission_ids: record.permission_ids,
            created_at: Timestamp::from_millis(record.created_at),
            expires_at: record.expires_at.map(Timestamp::from_millis),
            last_used_at: record.last_used_at.map(Timestamp::from_millis),
            issued: record.issued,
            secret: record.secret.into(),
            // Written only as ranges that parse; should one no longer, the token is held to
            // the others, and with none left it works from nowhere (never from anywhere).
            allowed_ips: {
                let ranges: Vec<IpRange> = record
                    .allowed_ips
                    .iter()
                    .filter_map(|r| IpRange::parse(r))
                    .collect();
                match ranges.is_empty() && !record.allowed_ips.is_empty() {
                    true => AllowedIps::nowhere(),
                    false => AllowedIps::new(ranges),
                }
            },
            trust_policies: record.trust_policies,
            lives: TokenLives {
                tenant: record.tenant_life,
                membership: record.member_life,
            },
        }
    }
}

/// A credential's secret attributes, as vendor and token records both name them: each with its
/// value, or `None` to remove it. Only rehashes and rotations write them, each conditional on
/// the hash it read.
pub type SecretFields = Vec<(&'static str, Option<Value>)>;

fn hash_fields(hash: &SecretHash) -> SecretFields {
    vec![
        ("secretHash", Some(hash.as_stored().into())),
        ("secretCheck", hash.check().map(|c| c.as_stored().into())),
    ]
}

pub fn secret_fields(state: &SecretState) -> SecretFields {
    let previous = state.previous.as_ref();
    let mut fields = hash_fields(&state.hash);
    fields.extend([
        (
            "previousSecretHash",
            previous.map(|p| p.hash.as_stored().into()),
        ),
        (
            "previousSecretCheck",
            previous
                .and_then(|p| p.hash.check())
                .map(|c| c.as_stored().into()),
        ),
        (
            "previousSecretUntil",
            previous.map(|p| p.until.millis().into()),
        ),
        ("rotatedAt", state.rotated_at.map(|t| t.millis().into())),
        (
            "secretGeneration",
            (state.generation != 0).then(|| state.generation.into()),
        ),
    ]);
    fields
}

/// A vendor credential as stored. Records made before credentials were named, used and
/// rotated hold only the clientId, the secret's hash and check, and when it was made.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorRecord {
    client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    #[serde(flatten)]
    secret: SecretRecord,
}

impl From<&VendorCredential> for VendorRecord {
    fn from(vendor: &VendorCredential) -> Self {
        Self {
            client_id: vendor.client_id,
            name: Some(vendor.name.clone()),
            created_at: vendor.created_at.millis(),
            last_used_at: vendor.last_used_at.map(Timestamp::millis),
            secret: SecretRecord::from(&vendor.secret),
        }
    }
}

impl From<VendorRecord> for VendorCredential {
    fn from(record: VendorRecord) -> Self {
        Self {
            client_id: record.client_id,
            name: record
                .name
                .unwrap_or_else(|| DEFAULT_VENDOR_NAME.to_owned()),
            created_at: Timestamp::from_millis(record.created_at),
            last_used_at: record.last_used_at.map(Timestamp::from_millis),
            secret: record.secret.into(),
        }
    }
}

/// One record as `m2m-admin export` writes it (a line of JSON, tagged by `kind`) and `import`
/// reads it: the stored shapes both stores share, so that an export of either imports into
/// either. What the stores derive from these (indexes, listings, counts, key claims) is not
/// exported: an import makes it again. Portal hand-offs (minutes long) are not exported.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Exported {
    Vendor {
        record: VendorRecord,
    },
    /// Live records and tombstones alike (a deleted id stays unusable where it was).
    #[serde(rename_all = "camelCase")]
    Directory {
        /// As [`kind_name`] names it.
        entity: String,
        id: String,
        record: DirectoryRecord<Value>,
    },
    Token {
        record: Box<TokenRecord>,
    },
    /// Milliseconds since the epoch.
    #[serde(rename_all = "camelCase")]
    Revocation {
        sub: ClientId,
        before: i64,
        from: i64,
        until: i64,
    },
    /// A refresh token used, which stays used.
    #[serde(rename_all = "camelCase")]
    SpentRefresh {
        client_id: ClientId,
        serial: u64,
        until: i64,
    },
    Audit {
        event: crate::domain::audit::AuditEvent,
    },
    /// A token's counts of a day (days since 1970-01-01, UTC), kept 90 days.
    #[serde(rename_all = "camelCase")]
    Usage {
        client_id: ClientId,
        day: i64,
        counts: crate::domain::usage::Counts,
    },
    /// A workload token taken (see [`crate::ports::RefreshStore::spend_workload_token`]), which
    /// stays taken until `until` (milliseconds since the epoch).
    SpentWorkload {
        mark: String,
        until: i64,
    },
}

impl Exported {
    pub fn revocation(revocation: &crate::domain::revocation::Revocation) -> Self {
        Self::Revocation {
            sub: revocation.sub,
            before: revocation.before.millis(),
            from: revocation.from.millis(),
            until: revocation.until.millis(),
        }
    }
}

pub fn corrupt(what: &str, cause: impl std::fmt::Display) -> Error {
    Error::internal(format!("stored {what} record is unreadable: {cause}"))
}

/// A stored directory record of `kind`, its document read as that kind: one that does not
/// read is unreadable, as a corrupt record.
pub fn typed_record(kind: EntityKind, record: DirectoryRecord<Value>) -> Result<Record, Error> {
    record
        .typed(kind)
        .map_err(|e| corrupt("directory", format!("{kind:?} document: {e}")))
}

/// A directory record as it is stored, its document as JSON.
pub fn stored_record(record: &Record) -> Result<DirectoryRecord<Value>, Error> {
    record.untyped().map_err(Error::internal)
}

/// Every kind of directory record.
pub const ENTITY_KINDS: [EntityKind; 5] = [
    EntityKind::Permission,
    EntityKind::Role,
    EntityKind::Tenant,
    EntityKind::User,
    EntityKind::Configuration,
];

/// The kind [`kind_name`] names `name`.
pub fn kind_named(name: &str) -> Option<EntityKind> {
    ENTITY_KINDS
        .into_iter()
        .find(|kind| kind_name(*kind) == name)
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
    /// Absent on hand-offs made before sessions carried lives: those open no session.
    #[serde(default)]
    lives: TokenLives,
    expires_at: i64,
    ttl: i64,
}

impl From<&Handoff> for HandoffItem {
    fn from(handoff: &Handoff) -> Self {
        Self {
            digest: handoff.digest.0.clone(),
            tenant_id: handoff.tenant_id.clone(),
            user_id: handoff.user_id.clone(),
            lives: handoff.lives.clone(),
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
            lives: item.lives,
            expires_at: Timestamp::from_millis(item.expires_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor record as every release before named credentials wrote it, in both stores'
    /// forms: it still loads, as a credential named "vendor" on its first secret.
    #[test]
    fn a_vendor_record_from_before_names_loads_as_the_default_credential() {
        let id = "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11";
        let json = serde_json::json!({
            "clientId": id,
            "secretHash": "$2b$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabc",
            "secretCheck": "beef",
            "createdAt": 1_704_067_200_000_i64,
        });
        let embedded: VendorRecord = serde_json::from_value(json.clone()).unwrap();
        let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&json).unwrap();
        item.insert(
            "pk".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("VENDOR".into()),
        );
        let dynamo: VendorRecord = serde_dynamo::from_item(item).unwrap();
        for record in [embedded, dynamo] {
            let vendor = VendorCredential::from(record);
            assert_eq!(vendor.client_id.to_string(), id);
            assert_eq!(vendor.name, "vendor");
            assert_eq!(vendor.last_used_at, None);
            assert_eq!(vendor.secret.generation, 0);
            assert_eq!(vendor.secret.previous, None);
            assert_eq!(
                vendor
                    .secret
                    .hash
                    .check()
                    .map(QuickCheck::as_stored)
                    .as_deref(),
                Some("beef")
            );
        }
    }

    /// A stored allow-list none of whose ranges reads any more lets no address in (never all),
    /// and the use counts saturate rather than overflow.
    #[test]
    fn an_unreadable_allow_list_admits_nobody_and_counts_saturate() {
        let json = serde_json::json!({
            "clientId": "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
            "tenantId": "acme",
            "metadata": {},
            "roleIds": [],
            "permissionIds": [],
            "createdAt": 1,
            "secretHash": "$2b$04$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyzab",
            "allowedIps": ["garbage"],
            "issued": u64::MAX,
        });
        let mut record: TokenRecord = serde_json::from_value(json).unwrap();
        assert!(
            record.check(&LocalIssuers::default()).is_err(),
            "an import refuses it"
        );
        let (granted, issued) = record.reserve(5, (1, 10), Timestamp::from_millis(300_000));
        assert_eq!((granted, issued), (1, u64::MAX));
        let token = ApiToken::from(record);
        let here = Some("127.0.0.1".parse().unwrap());
        assert!(!token.allowed_ips.permits(here));
        assert!(!token.allowed_ips.permits(Some("10.1.2.3".parse().unwrap())));
    }

    /// A rotated credential's secrets go through the shared attributes and come back the same.
    #[test]
    fn a_rotated_vendor_record_keeps_both_secrets() {
        let hash = |text: &str| SecretHash::from_stored(text.into(), None);
        let at = Timestamp::from_millis(1_800_000_000_000);
        let vendor = VendorCredential {
            client_id: ClientId::generate(),
            name: "ci".into(),
            created_at: at,
            last_used_at: Some(at),
            secret: SecretState::new(hash("a")).rotated(hash("b"), at, 5),
        };
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(VendorRecord::from(&vendor)).unwrap();
        let back =
            VendorCredential::from(serde_dynamo::from_item::<_, VendorRecord>(item).unwrap());
        assert_eq!(back.secret, vendor.secret);
        assert_eq!((back.name, back.last_used_at), ("ci".into(), Some(at)));
    }
}
