//! Credentials as stored: API tokens (tenant and personal), vendor credentials, refresh tokens.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::ids::{ClientId, GrantId, TenantId, UserId};
use super::lives::TokenLives;
use super::secret::{SecretHash, random_base62};
use super::time::Timestamp;

/// Free-form JSON object the creator attaches; it travels into the JWT's `metadata` claim.
pub type Metadata = Map<String, Value>;

/// Whom an API token acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    /// An organisation's token (`tenantApiToken`).
    Tenant,
    /// A personal token of this user (`userApiToken`).
    User(UserId),
}

impl TokenOwner {
    /// The user a personal token acts as.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User(user) => Some(user),
            Self::Tenant => None,
        }
    }
}

/// An API token's record. The secret itself is never kept, only its hash.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub client_id: ClientId,
    pub tenant_id: TenantId,
    pub owner: TokenOwner,
    pub created_by_user_id: Option<UserId>,
    /// `None` when none was given.
    pub description: Option<String>,
    pub metadata: Metadata,
    pub role_ids: Vec<GrantId>,
    pub permission_ids: Vec<GrantId>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// The last successful exchange, recorded at most once a minute.
    pub last_used_at: Option<Timestamp>,
    pub secret_hash: SecretHash,
    /// The lives of the tenant and membership it was created in; it works only in them.
    pub lives: TokenLives,
}

/// `lastUsedAt` is written at most this often per token, so no token is a hot item.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

impl ApiToken {
    pub fn user_id(&self) -> Option<&UserId> {
        self.owner.user()
    }

    /// Whether a use at `now` should be recorded.
    pub fn use_is_news(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now.millis() - at.millis() >= LAST_USED_RESOLUTION_SECONDS * 1000)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A vendor's (environment's) credential for the management API.
#[derive(Clone, Debug)]
pub struct VendorCredential {
    pub client_id: ClientId,
    pub secret_hash: SecretHash,
    pub created_at: Timestamp,
}

/// A single-use refresh token: `m2mr_` + the API token's clientId (32 hex) + 43 base62 characters.
/// It names its API token so the store finds it under that token; only its SHA-256 is stored
/// (it carries 256 random bits, so a fast hash is enough).
pub struct RefreshToken {
    client_id: ClientId,
    text: String,
}

const REFRESH_PREFIX: &str = "m2mr_";
const REFRESH_LEN: usize = REFRESH_PREFIX.len() + 32 + 43;

impl RefreshToken {
    pub fn generate(client_id: ClientId) -> Self {
        let text = format!(
            "{REFRESH_PREFIX}{}{}",
            client_id.as_uuid().simple(),
            random_base62(43)
        );
        Self { client_id, text }
    }

    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != REFRESH_LEN || !text.is_ascii() || !text.starts_with(REFRESH_PREFIX) {
            return None;
        }
        let (id, random) = text[REFRESH_PREFIX.len()..].split_at(32);
        if !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let client_id = ClientId::parse(id)?;
        Some(Self {
            client_id,
            text: text.to_owned(),
        })
    }

    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The stored form: hex SHA-256.
    pub fn digest(&self) -> RefreshDigest {
        RefreshDigest(
            Sha256::digest(self.text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RefreshToken({}, [REDACTED])", self.client_id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefreshDigest(pub String);

/// A live refresh token as stored under its API token.
#[derive(Clone, Debug)]
pub struct RefreshRecord {
    pub digest: RefreshDigest,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_api_token() {
        let id = ClientId::generate();
        let token = RefreshToken::generate(id);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.client_id(), id);
        assert_eq!(parsed.digest(), token.digest());
        assert!(RefreshToken::parse(&token.expose()[1..]).is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJSUzI1NiJ9.e30.sig").is_none());
    }
}
