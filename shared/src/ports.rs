//! The narrow interfaces the operations need; adapters implement them for DynamoDB + KMS and
//! for the embedded local default.

use async_trait::async_trait;

use serde_json::Value;

use crate::domain::directory::EntityKind;
use crate::domain::lives::{DirectoryRecord, Revision};
use crate::domain::portal::{Handoff, HandoffDigest};
use crate::domain::{
    ApiToken, ClientId, PublicKey, RefreshDigest, RefreshRecord, TenantId, Timestamp, UserId,
    VendorCredential,
};
use crate::error::Result;

/// Vendor credentials for `POST /auth/vendor`.
#[async_trait]
pub trait VendorStore: Send + Sync {
    async fn vendor(&self, client_id: &ClientId) -> Result<Option<VendorCredential>>;
    /// Creates or replaces the credential with this clientId.
    async fn put_vendor(&self, credential: &VendorCredential) -> Result<()>;
    /// Whether any vendor credential exists (decides first-start bootstrap).
    async fn has_vendor(&self) -> Result<bool>;
}

/// API token records, read by primary key with strong consistency.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token, in one write with the check that its tenant (and, for a personal
    /// token, its membership) still have the lives the token records: `Error::NotFound` if
    /// not, so that a token is never created into a tenant whose deletion has answered.
    /// `Error::Conflict` if the clientId is taken (never overwrites).
    async fn put_new(&self, token: &ApiToken) -> Result<()>;
    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>>;
    /// Replaces an existing token's record; `Error::NotFound` if it is gone.
    async fn replace(&self, token: &ApiToken) -> Result<()>;
    /// Records a use, unless one was recorded in the minute before `at`.
    async fn touch(&self, client_id: &ClientId, at: Timestamp) -> Result<()>;
    /// Every token of the tenant (tenant tokens and its members' personal tokens), all pages.
    async fn tokens_in_tenant(&self, tenant: &TenantId) -> Result<Vec<ApiToken>>;
    /// Every personal token of the user, in every tenant, all pages.
    async fn tokens_of_user(&self, user: &UserId) -> Result<Vec<ApiToken>>;
    /// Deletes tokens and their refresh tokens, retrying until none is left; deleting a token
    /// that is already gone is not an error.
    async fn delete_tokens(&self, client_ids: &[ClientId]) -> Result<()>;
}

/// Directory records (permissions, roles, tenants, users), each changed only by a conditional
/// write of what was read (see [`crate::domain::lives`]), and an index of each tenant's members.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// One record and its revision, read with strong consistency.
    async fn record(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<(DirectoryRecord, Revision)>>;
    /// Several records in one round trip, in the order asked; strongly consistent.
    async fn records(&self, keys: &[(EntityKind, String)]) -> Result<Vec<Option<DirectoryRecord>>>;
    /// Writes `record` if the stored revision is still `read` (`None`: there was no record).
    /// `false`, and no change, when another write came in between.
    async fn swap(
        &self,
        kind: EntityKind,
        id: &str,
        record: &DirectoryRecord,
        read: Option<Revision>,
    ) -> Result<bool>;
    /// Every live document of a kind (permissions and roles: the directory is small).
    async fn entities(&self, kind: EntityKind) -> Result<Vec<Value>>;
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

/// Single-use refresh tokens, kept under their API token.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Stores `record` under `client_id`, then drops the oldest so at most `keep` stay live.
    async fn put_refresh(
        &self,
        client_id: &ClientId,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<()>;
    /// The record of a live refresh token, read consistently.
    async fn refresh_token(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>>;
    /// Removes the refresh token `used` and stores `record` in its place, atomically, then
    /// drops the oldest beyond `keep`. False, with nothing written, if `used` is gone: of two
    /// concurrent uses one wins, and a use that fails before this write spends nothing.
    async fn replace_refresh(
        &self,
        client_id: &ClientId,
        used: &RefreshDigest,
        record: &RefreshRecord,
        keep: usize,
    ) -> Result<bool>;
}

/// How many JWTs each API token was issued in each minute, shared by every process.
#[async_trait]
pub trait RateStore: Send + Sync {
    /// Adds `want` to `client_id`'s uses in `window` if the count stays within `limit`, else
    /// one if that does, atomically; returns what was added (0: the window is full).
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32>;
}

/// Single-use portal hand-offs.
#[async_trait]
pub trait HandoffStore: Send + Sync {
    async fn put_handoff(&self, handoff: &Handoff) -> Result<()>;
    /// Removes and returns the hand-off, atomically: of two concurrent swaps, one wins.
    async fn take_handoff(&self, digest: &HandoffDigest) -> Result<Option<Handoff>>;
}

/// Everything the endpoints store; both adapters implement all of it.
pub trait Store:
    VendorStore + TokenStore + RefreshStore + RateStore + DirectoryStore + HandoffStore
{
}
impl<T: VendorStore + TokenStore + RefreshStore + RateStore + DirectoryStore + HandoffStore> Store
    for T
{
}

/// RS256 signatures by a key whose private half this process may never see (KMS).
#[async_trait]
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
