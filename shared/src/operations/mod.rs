//! The use cases, one method each: what a handler calls after parsing its request.

mod directory;

use crate::app::App;
use crate::domain::directory::{EntityKind, Grants};
use crate::domain::jwt::{self, AccessClaims, TokenType, VendorClaims};
use crate::domain::{
    ApiToken, ClientId, GrantId, Metadata, RefreshRecord, RefreshToken, Secret, SecretKind,
    TenantId, Timestamp, TokenOwner, UserId, VendorCredential,
};
use crate::error::{Error, Result};

/// At most this many live refresh tokens per API token; issuing one more drops the oldest.
pub const MAX_REFRESH_TOKENS: usize = 100;

/// A request to create an API token, already validated.
#[derive(Debug)]
pub struct NewToken {
    pub tenant_id: TenantId,
    pub owner: TokenOwner,
    pub created_by_user_id: Option<UserId>,
    pub description: String,
    pub metadata: Metadata,
    pub role_ids: Vec<GrantId>,
    pub permission_ids: Vec<GrantId>,
    pub expires_in_minutes: Option<u32>,
}

/// A freshly created credential: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct Created<T> {
    pub record: T,
    pub secret: Secret,
}

/// A signed access token and the refresh token that renews it.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub expires_at: Timestamp,
}

impl App {
    /// `POST /auth/vendor`: vendor credentials for a vendor token.
    pub async fn authenticate_vendor(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<(String, i64)> {
        let (client_id, secret) = parse_credentials(client_id, secret, &[SecretKind::Vendor])?;
        let vendor = self.vendors.vendor(&client_id).await?;
        if !self
            .secret_matches(&secret, vendor.as_ref().map(|v| &v.secret_hash))
            .await?
        {
            return Err(Error::Unauthorized);
        }
        let now = self.now();
        let ttl = self.settings.vendor_token_ttl_seconds;
        let claims = VendorClaims {
            token_type: TokenType::Vendor,
            vendor_id: client_id.to_string(),
            iss: self.settings.issuer.clone(),
            iat: now.seconds(),
            exp: now.plus_seconds(ttl).seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        Ok((self.sign(&claims).await?, ttl))
    }

    /// Signs `claims` as an RS256 JWT with the signer's key; the header names its `kid`.
    async fn sign(&self, claims: &impl serde::Serialize) -> Result<String> {
        let input =
            jwt::signing_input(self.signer.public_key().kid(), claims).map_err(Error::internal)?;
        let signature = self.signer.sign(input.as_bytes()).await?;
        Ok(jwt::compact(&input, &signature))
    }

    /// Checks a vendor token; API-token JWTs and anything else are refused alike.
    pub fn verify_vendor_token(&self, token: &str) -> Result<VendorClaims> {
        jwt::verify(
            token,
            self.signer.public_key(),
            &self.settings.issuer,
            None,
            self.now(),
        )
        .map_err(Error::from)
    }

    /// Checks an API-token JWT as a vendor's API would; vendor tokens are refused.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims> {
        jwt::verify(
            token,
            self.signer.public_key(),
            &self.settings.issuer,
            Some(&self.settings.audience),
            self.now(),
        )
        .map_err(Error::from)
    }

    /// Whether any vendor credential exists (decides the local server's first-start bootstrap).
    pub async fn has_vendor(&self) -> Result<bool> {
        self.vendors.has_vendor().await
    }

    /// Creates a vendor credential and returns its secret, which is not kept.
    pub async fn create_vendor(&self) -> Result<Created<VendorCredential>> {
        let client_id = ClientId::generate();
        let secret = Secret::generate(SecretKind::Vendor);
        let record = self.ensure_vendor(client_id, &secret).await?;
        Ok(Created { record, secret })
    }

    /// Makes `client_id` + `secret` a valid vendor credential, keeping an existing record whose
    /// hash already matches (so a restart does not rehash).
    pub async fn ensure_vendor(
        &self,
        client_id: ClientId,
        secret: &Secret,
    ) -> Result<VendorCredential> {
        if let Some(existing) = self.vendors.vendor(&client_id).await?
            && secret.matches(&existing.secret_hash).await?
        {
            return Ok(existing);
        }
        let record = VendorCredential {
            client_id,
            secret_hash: secret.hash(self.settings.bcrypt_cost).await?,
            created_at: self.now(),
        };
        self.vendors.put_vendor(&record).await?;
        Ok(record)
    }

    /// Creates a tenant or personal API token; the secret is returned once and stored hashed.
    /// A personal token needs its user to be a member of the tenant (404); a tenant token's
    /// role and permission ids must exist (400).
    pub async fn create_token(&self, new: NewToken) -> Result<Created<ApiToken>> {
        let kind = match &new.owner {
            TokenOwner::Tenant => {
                self.check_ids_exist(EntityKind::Role, &new.role_ids)
                    .await?;
                self.check_ids_exist(EntityKind::Permission, &new.permission_ids)
                    .await?;
                SecretKind::TenantToken
            }
            TokenOwner::User(user) => {
                let member = self.directory.user(user).await?;
                if member
                    .as_ref()
                    .and_then(|u| u.roles_in(&new.tenant_id))
                    .is_none()
                {
                    return Err(Error::NotFound(format!(
                        "User {user} is not a member of tenant {}",
                        new.tenant_id
                    )));
                }
                SecretKind::UserToken
            }
        };
        let secret = Secret::generate(kind);
        let now = self.now();
        let record = ApiToken {
            client_id: ClientId::generate(),
            tenant_id: new.tenant_id,
            owner: new.owner,
            created_by_user_id: new.created_by_user_id,
            description: new.description,
            metadata: new.metadata,
            role_ids: new.role_ids,
            permission_ids: new.permission_ids,
            created_at: now,
            expires_at: new
                .expires_in_minutes
                .map(|minutes| now.plus_seconds(i64::from(minutes) * 60)),
            last_used_at: None,
            secret_hash: secret.hash(self.settings.bcrypt_cost).await?,
        };
        self.tokens.put_new(&record).await?;
        Ok(Created { record, secret })
    }

    /// `POST /identity/resources/auth/v{1,2}/api-token`: credentials for an access token.
    /// Unknown clientId, wrong secret and an expired token are one and the same 401.
    pub async fn exchange(&self, client_id: &str, secret: &str) -> Result<Issued> {
        let token_kinds = [SecretKind::TenantToken, SecretKind::UserToken];
        let (client_id, secret) = parse_credentials(client_id, secret, &token_kinds)?;
        let token = self.tokens.token(&client_id).await?;
        let matched = self
            .secret_matches(&secret, token.as_ref().map(|t| &t.secret_hash))
            .await?;
        match token {
            Some(token) if matched && !token.is_expired(self.now()) => self.issue(&token).await,
            _ => Err(Error::Unauthorized),
        }
    }

    /// `POST .../api-token/token/refresh`: a refresh token, used once, for a new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued> {
        let presented = RefreshToken::parse(refresh_token).ok_or(Error::Unauthorized)?;
        let client_id = presented.client_id();
        let now = self.now();
        self.refresh
            .take_refresh(&client_id, &presented.digest())
            .await?
            .filter(|record| record.expires_at > now)
            .ok_or(Error::Unauthorized)?;
        let token = self
            .tokens
            .token(&client_id)
            .await?
            .filter(|token| !token.is_expired(now))
            .ok_or(Error::Unauthorized)?;
        self.issue(&token).await
    }

    async fn issue(&self, token: &ApiToken) -> Result<Issued> {
        let (grants, email) = self
            .current_grants(token)
            .await?
            .ok_or(Error::Unauthorized)?;
        let now = self.now();
        if token.use_is_news(now) {
            self.tokens.touch(&token.client_id, now).await?;
        }
        let ttl = self.settings.access_token_ttl_seconds;
        let expires_at = now.plus_seconds(ttl);
        let claims = self.access_claims(token, grants, email, now, expires_at);
        let access_token = self.sign(&claims).await?;
        let refresh_token = RefreshToken::generate(token.client_id);
        let record = RefreshRecord {
            digest: refresh_token.digest(),
            issued_at: now,
            expires_at: now.plus_seconds(self.settings.refresh_token_ttl_seconds),
        };
        self.refresh
            .put_refresh(&token.client_id, &record, MAX_REFRESH_TOKENS)
            .await?;
        Ok(Issued {
            access_token,
            refresh_token,
            expires_in: ttl,
            expires_at,
        })
    }

    fn access_claims(
        &self,
        token: &ApiToken,
        grants: Grants,
        email: Option<String>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> AccessClaims {
        let (token_type, user_id) = match &token.owner {
            TokenOwner::Tenant => (TokenType::TenantApiToken, None),
            TokenOwner::User(user) => (TokenType::UserApiToken, Some(user.to_string())),
        };
        AccessClaims {
            sub: token.client_id.to_string(),
            tenant_id: token.tenant_id.to_string(),
            roles: grants.roles,
            permissions: grants.permissions,
            metadata: token.metadata.clone(),
            created_by_user_id: token.created_by_user_id.as_ref().map(ToString::to_string),
            token_type,
            application_id: self.settings.application_id.clone(),
            user_id,
            email,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now.seconds(),
            exp: expires_at.seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Changes to a tenant token; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct TokenPatch {
    pub description: Option<String>,
    pub metadata: Option<Metadata>,
    pub role_ids: Option<Vec<GrantId>>,
    pub permission_ids: Option<Vec<GrantId>>,
}

/// Whose tokens a management call reaches: a tenant's tenant tokens, or one user's personal
/// tokens in one tenant. Another owner's token is answered like a missing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Tenant(TenantId),
    User {
        tenant_id: TenantId,
        user_id: UserId,
    },
}

impl Owner {
    fn owns(&self, token: &ApiToken) -> bool {
        match (self, &token.owner) {
            (Self::Tenant(tenant), TokenOwner::Tenant) => &token.tenant_id == tenant,
            (Self::User { tenant_id, user_id }, TokenOwner::User(owner)) => {
                &token.tenant_id == tenant_id && owner == user_id
            }
            _ => false,
        }
    }
}

impl App {
    /// The caller's tokens: a tenant's tenant tokens, or a user's personal tokens in a tenant.
    pub async fn list_tokens(&self, owner: &Owner) -> Result<Vec<ApiToken>> {
        let mut tokens = match owner {
            Owner::User { user_id, .. } => self.tokens.tokens_of_user(user_id).await?,
            Owner::Tenant(tenant) => self.tokens.tokens_in_tenant(tenant).await?,
        };
        tokens.retain(|t| owner.owns(t));
        tokens.sort_by_key(|t| t.created_at);
        Ok(tokens)
    }

    async fn owned_token(&self, owner: &Owner, client_id: &str) -> Result<ApiToken> {
        let missing = || Error::NotFound(format!("Token {client_id} not found"));
        let id = ClientId::parse(client_id).ok_or_else(missing)?;
        self.tokens
            .token(&id)
            .await?
            .filter(|t| owner.owns(t))
            .ok_or_else(missing)
    }

    /// Deletes one of the caller's tokens and its refresh tokens; exchange and refresh stop at once.
    pub async fn delete_token(&self, owner: &Owner, client_id: &str) -> Result<()> {
        let token = self.owned_token(owner, client_id).await?;
        self.tokens.delete_tokens(&[token.client_id]).await
    }

    /// Changes a tenant token's description, metadata, roles or permissions.
    pub async fn patch_token(
        &self,
        owner: &Owner,
        client_id: &str,
        patch: TokenPatch,
    ) -> Result<ApiToken> {
        let mut token = self.owned_token(owner, client_id).await?;
        if let Some(role_ids) = patch.role_ids {
            self.check_ids_exist(EntityKind::Role, &role_ids).await?;
            token.role_ids = role_ids;
        }
        if let Some(permission_ids) = patch.permission_ids {
            self.check_ids_exist(EntityKind::Permission, &permission_ids)
                .await?;
            token.permission_ids = permission_ids;
        }
        if let Some(description) = patch.description {
            token.description = description;
        }
        if let Some(metadata) = patch.metadata {
            token.metadata = metadata;
        }
        self.tokens.replace(&token).await?;
        Ok(token)
    }
}

/// Refuses malformed credentials before any store read or bcrypt work.
fn parse_credentials(
    client_id: &str,
    secret: &str,
    kinds: &[SecretKind],
) -> Result<(ClientId, Secret)> {
    let client_id = ClientId::parse(client_id).ok_or(Error::Unauthorized)?;
    let secret = Secret::parse(secret)
        .ok()
        .filter(|s| kinds.contains(&s.kind()))
        .ok_or(Error::Unauthorized)?;
    Ok((client_id, secret))
}
