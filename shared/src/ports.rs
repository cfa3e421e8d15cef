//! The narrow interfaces the operations need; adapters implement them for DynamoDB + KMS and
//! for the embedded local default.

use crate::domain::usage::{Day, DayUsage, MinuteUsage};
use async_trait::async_trait;

use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::domain::directory::EntityKind;
use crate::domain::document::Record;
use crate::domain::lives::Revision;
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::revocation::Revocation;
use crate::domain::{
    ApiToken, ClientId, PublicKey, SecretHash, SecretState, TenantId, Timestamp, UserId,
    VendorCredential,
};
use crate::error::Result;

/// Vendor credentials: what `POST /auth/vendor` checks and every vendor-only route confirms.
#[async_trait]
pub trait VendorStore: Send + Sync {
    /// One credential, read with strong consistency.
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>>;
    /// Every credential (a vendor holds a few).
    async fn vendors(&self) -> Result<Vec<VendorCredential>>;
    /// Creates or replaces the credential with this clientId, and records `event` in the same
    /// write.
    async fn put_vendor(&self, credential: &VendorCredential, event: &AuditEvent) -> Result<()>;
    /// Whether any vendor credential exists (decides first-start bootstrap).
    async fn has_vendor(&self) -> Result<bool>;
    /// Makes `to` the credential's secrets if its current secret's hash is still `from` (a
    /// rehash or a rotation), as [`TokenStore::swap_secret`]; `false`, and no change, when it is
    /// gone or its secret changed meanwhile. `event` (a rotation's; a rehash has none) is
    /// recorded in the same write.
    async fn swap_vendor_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool>;
    /// Records `at` as the credential's last use; nothing when it is gone (never re-creates it).
    async fn touch_vendor(&self, client_id: &ClientId, at: Timestamp) -> Result<()>;
    /// Deletes the credential if it exists and, in the same write, `survivor` still does: so
    /// that of two revocations at once, the last credential is never the one deleted. `false`,
    /// and no change (no event), otherwise. `event` is recorded in the same write.
    async fn delete_vendor(
        &self,
        client_id: &ClientId,
        survivor: &ClientId,
        event: &AuditEvent,
    ) -> Result<bool>;
}

/// API token records, read by primary key with strong consistency.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token, in one write with the check that its tenant (and, for a personal
    /// token, its membership) still have the lives the token records: `Error::NotFound` if
    /// not, so that a token is never created into a tenant whose deletion has answered.
    /// `Error::Conflict` if the clientId is taken (never overwrites). `event` is recorded in
    /// the same write.
    async fn put_new(&self, token: &ApiToken, event: &AuditEvent) -> Result<()>;
    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>>;
    /// The token and, in the same round trip, the directory records `keys`, in their order
    /// (as [`DirectoryStore::records`]); all strongly consistent. What an exchange reads.
    async fn token_with(
        &self,
        client_id: &ClientId,
        keys: &[(EntityKind, String)],
    ) -> Result<(Option<ApiToken>, Vec<Option<Record>>)>;
    /// Replaces an existing token's record, recording `event` in the same write;
    /// `Error::NotFound` (and no event) if it is gone.
    async fn replace(&self, token: &ApiToken, event: &AuditEvent) -> Result<()>;
    /// Makes `to` the token's secrets if its current secret's hash is still `from` (a rehash
    /// or a rotation); `false`, and no change, when the token is gone or its secret changed
    /// meanwhile. Nothing else of the record changes, and nothing else changes its secrets.
    /// `event` (a rotation's; a rehash has none) is recorded in the same write.
    async fn swap_secret(
        &self,
        client_id: &ClientId,
        from: &SecretHash,
        to: &SecretState,
        event: Option<&AuditEvent>,
    ) -> Result<bool>;
    /// Every token of the tenant (tenant tokens and its members' personal tokens), all pages.
    async fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>>;
    /// Every personal token of the user, in every tenant, all pages.
    async fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>>;
    /// Deletes tokens and their refresh tokens, retrying until none is left; deleting a token
    /// that is already gone is not an error.
    async fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()>;
    /// Deletes one token, recording `event` in the same write, then its refresh tokens:
    /// `false`, and no event, when it was already gone.
    async fn delete_token(&self, client_id: &ClientId, event: &AuditEvent) -> Result<bool>;
}

/// Directory records (permissions, roles, tenants, users), each changed only by a conditional
/// write of what was read (see [`crate::domain::lives`]), and an index of each tenant's members.
/// Records cross it typed ([`Record`]); a stored document that does not read as the kind of its
/// record is an internal error, as any unreadable record.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// One record and its revision, read with strong consistency.
    async fn record(&self, kind: EntityKind, id: &str) -> Result<Option<(Record, Revision)>>;
    /// Several records in one round trip, in the order asked; strongly consistent.
    async fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<Record>>>;
    /// Writes `record` if the stored revision is still `read` (`None`: there was no record).
    /// `false`, and no change, when another write came in between. A role's or permission's
    /// key is claimed in the same atomic write (and the claim `read` names let go): 409, and no
    /// change, when another holds it where the claim does not fit (see [`crate::domain::directory::KeyClaim`]).
    /// `event`, if any, is recorded in the same write.
    async fn swap(
        &self,
        kind: EntityKind,
        id: &str,
        record: &Record,
        read: Option<Revision>,
        event: Option<&AuditEvent>,
    ) -> Result<bool>;
    /// Every live role, permission or configuration record of a kind, read consistently
    /// (tenants and users are read a page at a time, through [`Self::listed`]).
    async fn entities(&self, kind: EntityKind) -> Result<Vec<Record>>;
    /// The ids of live tenants or users in id order, `skip` passed over and at most `limit`,
    /// with how many live ones there are. Reads keys and a count, never records, so the cost
    /// follows `skip + limit`, not the directory (the index may lag a write by a moment on
    /// DynamoDB).
    async fn listed(&self, kind: EntityKind, skip: u64, limit: usize) -> Result<Listed>;
    /// Notes that `user` joined and left tenants. An index for the cascades, not the truth:
    /// an entry it misses leaves a membership that its stamp already makes void.
    async fn index_members(
        &self,
        user: &UserId,
        joined: &[TenantId],
        left: &[TenantId],
    ) -> Result<()>;
    /// The users the index lists as members of `tenant`.
    async fn members_of(&self, tenant: &TenantId) -> Result<Vec<UserId>>;
}

/// A window of [`DirectoryStore::listed`]: ids in order, and how many live records there are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub ids: Vec<String>,
    pub total: u64,
}

/// Refresh tokens spent. A refresh token carries all else (see [`crate::domain::RefreshToken`]),
/// so none is stored when issued.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Marks refresh token number `serial` of `client_id` spent, kept until `until`: true if
    /// it was not spent before and its API token still exists; false, with nothing written,
    /// otherwise. Of two concurrent spends, one wins.
    async fn spend_refresh(
        &self,
        client_id: &ClientId,
        serial: u64,
        until: Timestamp,
    ) -> Result<bool>;

    /// Removes the spent mark of refresh token number `serial` of `client_id`, for a refresh
    /// that spent it and then made no successor; nothing when there is none.
    async fn unspend_refresh(&self, client_id: &ClientId, serial: u64) -> Result<()>;

    /// Marks the workload token `mark` used (see [`crate::adapters::oidc::Verified::mark`]),
    /// kept until `until`, if `client_id` still carries the trust policy `policy` (its place in
    /// the token's list as read, and its id) that admitted it. Of two concurrent uses of one
    /// workload token, one wins; a policy removed, or a token deleted, before this commits
    /// leaves nothing written.
    async fn spend_workload_token(
        &self,
        client_id: &ClientId,
        policy: (usize, &str),
        mark: &str,
        until: Timestamp,
    ) -> Result<Spend>;

    /// Removes the mark of a workload token whose exchange then issued nothing.
    async fn unspend_workload_token(&self, mark: &str) -> Result<()>;

    /// Carries over a workload token's mark (an import), kept until `until`: true if it was
    /// not there.
    async fn import_workload_mark(&self, mark: &str, until: Timestamp) -> Result<bool>;
}

/// What came of [`RefreshStore::spend_workload_token`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Marked used now.
    Spent,
    /// Used before: nothing written.
    Replayed,
    /// The token or the policy is gone: nothing written.
    Unadmitted,
}

/// Uses reserved for an API token: `granted` JWTs numbered `last_serial - granted + 1` up to
/// `last_serial`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    pub granted: u32,
    pub last_serial: u64,
}

/// How many JWTs each API token was issued in each minute, shared by every process, kept on
/// the token's record with its count of JWTs ever issued and when it was last used.
#[async_trait]
pub trait RateStore: Send + Sync {
    /// In one write to the token's record: adds `want` uses to the count of `window` if it
    /// stays within `limit`, else one if that does; advances the token's count of issued JWTs
    /// (its `issued`) by as many; and, on the first reservation of the minute, records `at` as
    /// its last use (so at most once a minute). `granted: 0`, and nothing written, when the
    /// window is full; `None` when the token is gone. `window.new_window` says which case the
    /// caller expects (its first reservation in the minute), so that it costs one request.
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: UseWindow,
        want: u32,
        limit: u32,
        at: Timestamp,
    ) -> Result<Option<Reserved>>;

    /// Adds a minute's counts to its day's (kept until [`Day::kept_until`]), if the token
    /// still exists: a token deleted meanwhile gets no record.
    async fn add_usage(&self, usage: &MinuteUsage) -> Result<()>;

    /// The token's kept days from `from` on, oldest first.
    async fn usage_since(&self, client_id: &ClientId, from: Day) -> Result<Vec<DayUsage>>;

    /// Carries over a token's counts of a day (an import): written unless that day has counts
    /// already (so an import run again adds nothing) or the token is gone; true if written.
    async fn import_usage(&self, client_id: &ClientId, usage: DayUsage) -> Result<bool>;
}

/// A minute of the clock, and whether the caller reserved in it before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UseWindow {
    pub minute: i64,
    pub new_window: bool,
}

/// Single-use portal hand-offs.
#[async_trait]
pub trait HandoffStore: Send + Sync {
    /// Stores the hand-off and records `event` in the same write.
    async fn put_handoff(&self, handoff: &Handoff, event: &AuditEvent) -> Result<()>;
    async fn handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>>;
    /// Removes the hand-off if it is still there, recording `event` in the same write: of two
    /// concurrent swaps, one wins (`true`) and one event is recorded.
    async fn take_handoff(&self, digest: &HandoffDigest, event: &AuditEvent) -> Result<bool>;
}

/// Audit events (see [`crate::domain::audit`]). A change's event is written by the change's own
/// write, through the other ports; this port writes an event that is itself the change, and
/// reads them, each event under each of its scopes with a count per scope and day.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records an event alone (a vendor's own, a refusal).
    async fn record_event(&self, event: &AuditEvent) -> Result<()>;
    /// Records an event carried over from elsewhere (an import) unless one of its id is here
    /// already: `false` then, and nothing changes, so an import can run again.
    async fn import_event(&self, event: &AuditEvent) -> Result<bool>;
    /// A page of the events of `query`'s scope still kept at `now`, and how many there are:
    /// the cost follows the page, not the log.
    async fn audits(&self, query: &AuditQuery, now: Timestamp) -> Result<AuditPage>;
}

/// Revoked JWTs (see [`crate::domain::revocation`]).
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records the revocations; a later one for the same token replaces an earlier one.
    async fn revoke(&self, revocations: &[Revocation]) -> Result<()>;
    /// Every revocation still kept at `now`.
    async fn revocations(&self, now: Timestamp) -> Result<Vec<Revocation>>;
    /// The revocation of `sub` still kept at `now`, if any.
    async fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>>;
}

/// Everything the endpoints store; both adapters implement all of it.
/// Every record a store holds, a page at a time, as `m2m-admin export` writes them.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// About `limit` records from `cursor` on (`None`: the first), in the store's own order,
    /// and the cursor of the next page (`None`: that was the last).
    async fn export_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<crate::adapters::Exported>, Option<String>)>;
}

pub trait Store:
    VendorStore
    + TokenStore
    + RefreshStore
    + RateStore
    + DirectoryStore
    + HandoffStore
    + RevocationStore
    + AuditStore
    + ExportStore
{
}
impl<T> Store for T where
    T: VendorStore
        + TokenStore
        + RefreshStore
        + RateStore
        + DirectoryStore
        + HandoffStore
        + RevocationStore
        + AuditStore
        + ExportStore
{
}

/// RS256 signatures: by KMS (the private key never leaves it), by a key wrapped under KMS, or by
/// the local default's key.
#[async_trait]
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    /// Keys no longer signing whose JWTs still verify, published beside the signing key.
    fn also_published(&self) -> &[PublicKey] {
        &[]
    }
    /// The signer this one replaced, during a key rotation: its JWTs still verify (it is among
    /// [`Signer::also_published`]) and its refresh tokens still refresh.
    fn retired(&self) -> Option<&dyn Signer> {
        None
    }
    /// Every key whose JWTs verify, the signing key first: what the JWKS lists.
    fn published(&self) -> Vec<&PublicKey> {
        std::iter::once(self.public_key())
            .chain(self.also_published())
            .collect()
    }
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// Whether the signer answers now, without signing: its key service still serves the key
    /// (a key in memory always answers).
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
