//! Credentials for JWTs: the exchange of an API token's clientId and secret, the refresh, and
//! the claims a JWT carries (resolved from the directory at the time of issue).

use std::collections::HashMap;

use crate::config::Settings;
use crate::domain::TokenOwner;
use crate::domain::directory::{EntityKind, Grants, Permission, Role, User};
use crate::domain::jwt::{self, AccessClaims, TokenType};
use crate::domain::{ApiToken, GrantId, RefreshRecord, RefreshToken, SecretKind, Timestamp};
use crate::error::{Error, Result};
use crate::ports::{Clock, DirectoryStore, RefreshStore, Signer, TokenStore};

use super::directory::all;
use super::{Bcrypt, MAX_REFRESH_TOKENS, Owners, parse_credentials, sign};

pub struct Credentials<'a> {
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) refresh: &'a dyn RefreshStore,
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) bcrypt: &'a Bcrypt,
    pub(crate) settings: &'a Settings,
}

/// A signed access token and the refresh token that renews it.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub expires_at: Timestamp,
}

impl Credentials<'_> {
    /// `POST /identity/resources/auth/v{1,2}/api-token`: credentials for an access token.
    /// Unknown clientId, wrong secret and an expired token are one and the same 401.
    pub async fn exchange(&self, client_id: &str, secret: &str) -> Result<Issued> {
        let token_kinds = [SecretKind::TenantToken, SecretKind::UserToken];
        let (client_id, secret) = parse_credentials(client_id, secret, &token_kinds)?;
        let token = self.tokens.token(&client_id).await?;
        let matched = self
            .bcrypt
            .matches(&secret, token.as_ref().map(|t| &t.secret_hash))
            .await?;
        match token {
            Some(token) if matched && !token.is_expired(self.clock.now()) => {
                self.issue(&token).await
            }
            _ => Err(Error::Unauthorized),
        }
    }

    /// `POST .../api-token/token/refresh`: a refresh token, used once, for a new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued> {
        let presented = RefreshToken::parse(refresh_token).ok_or(Error::Unauthorized)?;
        let client_id = presented.client_id();
        let now = self.clock.now();
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

    /// Checks an API-token JWT as a vendor's API would; vendor tokens are refused.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims> {
        let settings = self.settings;
        let (key, now) = (self.signer.public_key(), self.clock.now());
        jwt::verify(token, key, &settings.issuer, Some(&settings.audience), now)
            .map_err(Error::from)
    }

    /// Signs a JWT for a token whose tenant and membership are still the ones it was created
    /// in, read in one round trip beside the roles and permissions.
    async fn issue(&self, token: &ApiToken) -> Result<Issued> {
        let (owners, roles, permissions) = tokio::try_join!(
            Owners::read(self.directory, &token.tenant_id, token.user_id()),
            all::<Role>(self.directory, EntityKind::Role),
            all::<Permission>(self.directory, EntityKind::Permission),
        )?;
        if !owners.are_current(&token.lives) {
            return Err(Error::Unauthorized);
        }
        let (grants, email) =
            grants_of(token, owners.user()?, roles, permissions).ok_or(Error::Unauthorized)?;
        let now = self.clock.now();
        if token.use_is_news(now) {
            self.tokens.touch(&token.client_id, now).await?;
        }
        // Neither the JWT nor its refresh token outlives the API token.
        let until = |ttl: i64| {
            token
                .expires_at
                .map_or(now.plus_seconds(ttl), |end| end.min(now.plus_seconds(ttl)))
        };
        let expires_at = until(self.settings.access_token_ttl_seconds);
        let claims = self.access_claims(token, grants, email, now, expires_at);
        let access_token = sign(self.signer, &claims).await?;
        let refresh_token = RefreshToken::generate(token.client_id);
        let record = RefreshRecord {
            digest: refresh_token.digest(),
            issued_at: now,
            expires_at: until(self.settings.refresh_token_ttl_seconds),
        };
        self.refresh
            .put_refresh(&token.client_id, &record, MAX_REFRESH_TOKENS)
            .await?;
        Ok(Issued {
            access_token,
            refresh_token,
            expires_in: expires_at.seconds() - now.seconds(),
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

/// The roles and permissions a token's JWT carries now (keys, from the current directory), and
/// the user's email for personal tokens. `None` when a personal token's user holds no
/// membership in its tenant.
fn grants_of(
    token: &ApiToken,
    user: Option<User>,
    roles: Vec<Role>,
    permissions: Vec<Permission>,
) -> Option<(Grants, Option<String>)> {
    let (role_ids, direct, email) = match &token.owner {
        TokenOwner::Tenant => (token.role_ids.clone(), token.permission_ids.clone(), None),
        TokenOwner::User(_) => {
            let user = user?;
            let roles = user.roles_in(&token.tenant_id)?.to_vec();
            (roles, Vec::new(), user.email)
        }
    };
    let roles: HashMap<GrantId, Role> = roles.into_iter().map(|r| (r.id.clone(), r)).collect();
    let permissions: HashMap<GrantId, Permission> =
        permissions.into_iter().map(|p| (p.id.clone(), p)).collect();
    let held: Vec<&Role> = role_ids.iter().filter_map(|id| roles.get(id)).collect();
    let mut permission_keys: Vec<String> = held
        .iter()
        .flat_map(|role| &role.permission_ids)
        .chain(&direct)
        .filter_map(|id| permissions.get(id).map(|p| p.key.to_string()))
        .collect();
    permission_keys.sort();
    permission_keys.dedup();
    let grants = Grants {
        roles: held.iter().map(|r| r.key.to_string()).collect(),
        permissions: permission_keys,
    };
    Some((grants, email))
}
