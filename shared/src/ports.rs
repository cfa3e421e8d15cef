//! The narrow interfaces the operations need; adapters implement them for DynamoDB + KMS and
//! for the embedded local default.

use async_trait::async_trait;

use crate::domain::{
    ApiToken, ClientId, PublicKey, RefreshDigest, RefreshRecord, Timestamp, VendorCredential,
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
    /// Stores a new token; `Error::Conflict` if the clientId is taken (never overwrites).
    async fn put_new(&self, token: &ApiToken) -> Result<()>;
    async fn token(&self, client_id: &ClientId) -> Result<Option<ApiToken>>;
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
    /// Removes and returns the record, atomically: of two concurrent uses, one wins.
    async fn take_refresh(
        &self,
        client_id: &ClientId,
        digest: &RefreshDigest,
    ) -> Result<Option<RefreshRecord>>;
}

/// Everything the endpoints store; both adapters implement all of it.
pub trait Store: VendorStore + TokenStore + RefreshStore {}
impl<T: VendorStore + TokenStore + RefreshStore> Store for T {}

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
