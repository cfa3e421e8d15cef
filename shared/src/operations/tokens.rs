//! API tokens as their owners manage them: create (the secret shown once), list, change,
//! delete.

use crate::domain::audit::{Actor, Attribution, Severity};
use crate::domain::federation::TrustPolicy;
use crate::domain::network::AllowedIps;
use crate::domain::portal::{PortalUser, TokenKind};
use crate::domain::token::DEFAULT_GRACE_MINUTES;
use crate::domain::usage::{DAYS_SHOWN, Day, DayUsage, last_days};
use crate::domain::{
    ApiToken, ClientId, GrantId, Metadata, Secret, SecretFormat, SecretKind, SecretState, TenantId,
    TokenOwner, UserId,
};
use crate::error::{Error, Result};
use crate::ports::{Clock, DirectoryStore, RateStore, TokenStore};

use super::{
    Auditor, Bcrypt, Created, Owners, Retirement, check_permission_ids, check_role_ids, named_anew,
    tenant_life,
};
use crate::machinery::Party;

/// How many tokens' usage [`ApiTokens::usage_of_all`] reads at once.
const USAGE_READS_AT_ONCE: usize = 8;

pub struct ApiTokens<'a> {
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) rates: &'a dyn RateStore,
    pub(crate) retirement: Retirement<'a>,
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) bcrypt: &'a Bcrypt,
    pub(crate) secret_format: SecretFormat,
    pub(crate) audit: Auditor<'a>,
}

/// A request to create an API token, already validated; whose it is comes from its [`Manager`].
#[derive(Debug)]
pub struct NewToken {
    pub created_by_user_id: Option<UserId>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub role_ids: Vec<GrantId>,
    pub permission_ids: Vec<GrantId>,
    pub expires_in_minutes: Option<u32>,
    pub allowed_ips: AllowedIps,
    pub trust_policies: Vec<TrustPolicy>,
}

/// Changes to a token; absent fields stay as they are. Only a tenant token's roles and
/// permissions are its own to change.
#[derive(Debug, Default)]
pub struct TokenPatch {
    pub description: Option<String>,
    pub metadata: Option<Metadata>,
    pub role_ids: Option<Vec<GrantId>>,
    pub permission_ids: Option<Vec<GrantId>>,
    pub allowed_ips: Option<AllowedIps>,
    pub trust_policies: Option<Vec<TrustPolicy>>,
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
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Self::Tenant(tenant_id) | Self::User { tenant_id, .. } => tenant_id,
        }
    }

    fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::Tenant(_) => None,
            Self::User { user_id, .. } => Some(user_id),
        }
    }

    /// Whom a token made for this owner acts for.
    fn token_owner(&self) -> TokenOwner {
        self.user_id()
            .map_or(TokenOwner::Tenant, |user| TokenOwner::User(user.clone()))
    }

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

/// Who acts on tokens, and for whom: the vendor for an owner (a tenant, or a user in a tenant),
/// or a portal session's user for their tenant or themselves. Every action on a token goes
/// through [`Manager::may_manage`]: the one rule for sessions.
#[derive(Clone, Debug)]
pub struct Manager {
    owner: Owner,
    /// Set when a portal session acts: its user, as the directory has them now.
    session: Option<PortalUser>,
}

impl Manager {
    /// The vendor, acting for `owner`.
    pub fn vendor(owner: Owner) -> Self {
        Self {
            owner,
            session: None,
        }
    }

    /// A portal session's user, acting for `owner`.
    pub fn session(owner: Owner, user: PortalUser) -> Self {
        Self {
            owner,
            session: Some(user),
        }
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// A portal session may make, change, rotate or delete a token only if its user holds
    /// every role and permission the token holds (before and after the action): it never
    /// reaches, nor hands out, more than its user has (403). The vendor may do anything.
    fn may_manage(&self, role_ids: &[GrantId], permission_ids: &[GrantId]) -> Result<()> {
        match &self.session {
            Some(user) if !user.may_grant(role_ids, permission_ids) => Err(Error::Forbidden(
                "A token you manage can hold only roles and permissions that you hold".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl ApiTokens<'_> {
    /// Creates a tenant or personal API token for `manager`'s owner; the secret is returned
    /// once and stored hashed. The tenant must exist and a personal token's user be a member of
    /// it (404); a tenant token's role and permission ids must exist (400). The store writes the
    /// token only if the tenant and membership are still the ones read here, so a token never
    /// outlives a deletion that raced its creation.
    /// Who acts, as the audit trail records it.
    #[must_use]
    pub fn by(mut self, by: Attribution) -> Self {
        self.audit.by = by;
        self
    }

    pub async fn create(&self, new: NewToken, manager: &Manager) -> Result<Created<ApiToken>> {
        manager.may_manage(&new.role_ids, &new.permission_ids)?;
        let (tenant_id, owner) = (manager.owner.tenant_id(), manager.owner.token_owner());
        let owners = Owners::read(self.directory, tenant_id, owner.user()).await?;
        let lives = owners
            .lives()
            .map_err(|absent| Error::NotFound(absent.message(tenant_id, owner.user())))?;
        let settings = owners.allow(TokenKind::from(&owner))?;
        settings
            .check_expiry(new.expires_in_minutes)
            .map_err(Error::BadRequest)?;
        let kind = match &owner {
            TokenOwner::Tenant => {
                let life = owners.tenant_life();
                check_role_ids(self.directory, tenant_id, life, &new.role_ids).await?;
                check_permission_ids(self.directory, &new.permission_ids).await?;
                SecretKind::TenantToken
            }
            TokenOwner::User(_) => SecretKind::UserToken,
        };
        let secret = Secret::generate_for_token(kind, self.secret_format);
        let hash = self
            .bcrypt
            .hash(&secret, &Party::Tenant(tenant_id.clone()))
            .await?;
        let now = self.clock.now();
        let created_by_vendor = match &self.audit.by.actor {
            Actor::Vendor { id } if new.created_by_user_id.is_none() => Some(id.clone()),
            _ => None,
        };
        let record = ApiToken {
            client_id: ClientId::generate(),
            tenant_id: tenant_id.clone(),
            owner,
            created_by_user_id: new.created_by_user_id,
            created_by_vendor,
            description: new.description,
            metadata: new.metadata,
            role_ids: new.role_ids,
            permission_ids: new.permission_ids,
            created_at: now,
            expires_at: new
                .expires_in_minutes
                .map(|minutes| now.plus_seconds(i64::from(minutes) * 60)),
            last_used_at: None,
            issued: 0,
            secret: SecretState::new(hash),
            allowed_ips: new.allowed_ips,
            trust_policies: new.trust_policies,
            lives,
        };
        let event = self
            .audit
            .token_event("apiToken.created", Severity::Info, &record);
        self.tokens.put_new(&record, &event).await?;
        Ok(Created { record, secret })
    }

    /// The caller's tokens: a tenant's tenant tokens, or a user's personal tokens in a tenant.
    /// Only tokens that still work are listed (none, once the tenant or membership is gone).
    pub async fn list(&self, manager: &Manager) -> Result<Vec<ApiToken>> {
        let owner = &manager.owner;
        let (tenant, user) = match owner {
            Owner::User { tenant_id, user_id } => (tenant_id, Some(user_id)),
            Owner::Tenant(tenant_id) => (tenant_id, None),
        };
        let (mut tokens, owners) = tokio::try_join!(
            async {
                match user {
                    Some(user_id) => self.tokens.tokens_of_user(user_id).await,
                    None => self.tokens.tokens_in_tenant(tenant).await,
                }
            },
            Owners::read(self.directory, tenant, user)
        )?;
        tokens.retain(|t| owner.owns(t) && owners.are_current(&t.lives));
        tokens.sort_by_key(|t| t.created_at);
        Ok(tokens)
    }

    /// The token `client_id` if `manager` may act on it: its owner's (404 otherwise, as a
    /// missing one), and within a session's grants (403). Every action on a token starts here.
    async fn managed(&self, manager: &Manager, client_id: &ClientId) -> Result<ApiToken> {
        let token = self.owned(&manager.owner, client_id).await?;
        manager.may_manage(&token.role_ids, &token.permission_ids)?;
        Ok(token)
    }

    async fn owned(&self, owner: &Owner, client_id: &ClientId) -> Result<ApiToken> {
        self.tokens
            .token(client_id)
            .await?
            .filter(|t| owner.owns(t))
            .ok_or_else(|| not_found(client_id))
    }

    /// Deletes one of the caller's tokens and its refresh tokens; exchange and refresh stop at
    /// once, and the JWTs already issued from it are revoked.
    pub async fn delete(&self, manager: &Manager, client_id: &ClientId) -> Result<()> {
        let token = self.managed(manager, client_id).await?;
        let event = self
            .audit
            .token_event("apiToken.deleted", Severity::Medium, &token);
        self.retirement.retire_one(&token, &event).await?;
        Ok(())
    }

    /// Gives one of the caller's tokens a new secret, returned once; the current one keeps
    /// working for `grace_minutes` ([`DEFAULT_GRACE_MINUTES`] when not given; 0: it stops now;
    /// at most [`crate::domain::rules::grace_minutes`] allows). A previous secret still in its grace stops, so
    /// at most two are live. Of two rotations at once, one wins and the other answers 409; a
    /// token deleted meanwhile stays deleted (404). The vendor's switches apply as to a new
    /// token: no new secret while its kind is disabled (403), nor for a token that lives beyond
    /// `maxExpiresInMinutes` (403).
    pub async fn rotate(
        &self,
        manager: &Manager,
        client_id: &ClientId,
        grace_minutes: Option<u32>,
    ) -> Result<Created<ApiToken>> {
        let grace = grace_minutes.unwrap_or(DEFAULT_GRACE_MINUTES);
        let owner = &manager.owner;
        let (token, owners) = tokio::try_join!(
            self.managed(manager, client_id),
            Owners::read(self.directory, owner.tenant_id(), owner.user_id()),
        )?;
        let mut token = token;
        if !owners.are_current(&token.lives) {
            return Err(not_found(client_id));
        }
        owners
            .allow(TokenKind::from(&token.owner))?
            .check_renewal(token.expires_at, self.clock.now())
            .map_err(Error::Forbidden)?;
        let kind = match token.owner {
            TokenOwner::Tenant => SecretKind::TenantToken,
            TokenOwner::User(_) => SecretKind::UserToken,
        };
        let secret = Secret::generate_for_token(kind, self.secret_format);
        let party = Party::Tenant(token.tenant_id.clone());
        let hash = self.bcrypt.hash(&secret, &party).await?;
        let now = self.clock.now();
        let rotated = token.secret.rotated(hash, now, grace);
        let event = self
            .audit
            .token_event("apiToken.rotated", Severity::Medium, &token);
        if !self
            .tokens
            .swap_secret(&token.client_id, &token.secret.hash, &rotated, Some(&event))
            .await?
        {
            self.owned(&manager.owner, client_id).await?; // 404 if it is gone
            return Err(Error::Conflict(
                "The token's secret was rotated meanwhile; list it and try again".into(),
            ));
        }
        // The JWTs issued so far come from the secrets rotated out: void when they end, at once
        // with no grace, else at the grace's end. An older secret still in its grace ends now:
        // what it issued before its own rotation is void at once (what it issued in its grace
        // still ends with that grace, as it was issued to).
        match rotated.previous.as_ref().map(|p| p.until) {
            // Up to the rotation's own second, which the new secret's first JWT waits past
            // (not the second this write happens in, which may be a later one).
            None => self.retirement.revoke_issued_before(&token, now).await?,
            Some(grace_end) => {
                let older_rotated_out =
                    token.secret.previous_live(now).and(token.secret.rotated_at);
                if let Some(older_rotated_out) = older_rotated_out {
                    let retirement = &self.retirement;
                    retirement
                        .revoke_issued_before(&token, older_rotated_out)
                        .await?;
                }
                self.retirement.revoke_later(&token, grace_end).await?;
            }
        }
        token.secret = rotated;
        Ok(Created {
            record: token,
            secret,
        })
    }

    /// One of the caller's tokens and its use over the last [`DAYS_SHOWN`] days, today (UTC)
    /// included, oldest first: JWTs issued and refusals by reason per day, as each process
    /// wrote its finished minutes (the current minute's counts come later).
    pub async fn usage(
        &self,
        manager: &Manager,
        client_id: &ClientId,
    ) -> Result<(ApiToken, Vec<DayUsage>)> {
        // A read, as the listing's (which shows when each was last used): a session's grants
        // bound what it does to a token, not what it sees of the tokens it lists.
        let token = self.owned(&manager.owner, client_id).await?;
        self.used(token, Day::of(self.clock.now())).await
    }

    /// The use of each of the caller's tokens, as [`Self::usage`] tells one's, in the order of
    /// [`Self::list`]: a few tokens' days read at a time.
    pub async fn usage_of_all(&self, manager: &Manager) -> Result<Vec<(ApiToken, Vec<DayUsage>)>> {
        use futures::{StreamExt, TryStreamExt};
        let today = Day::of(self.clock.now());
        let tokens = self.list(manager).await?;
        futures::stream::iter(tokens)
            .map(|token| self.used(token, today))
            .buffered(USAGE_READS_AT_ONCE)
            .try_collect()
            .await
    }

    async fn used(&self, token: ApiToken, today: Day) -> Result<(ApiToken, Vec<DayUsage>)> {
        let from = Day(today.0 - DAYS_SHOWN + 1);
        let kept = self.rates.usage_since(&token.client_id, from).await?;
        Ok((token, last_days(today, &kept)))
    }

    /// Changes a token's description, metadata, allowed addresses or trust policies, or a tenant
    /// token's roles and permissions.
    pub async fn patch(
        &self,
        manager: &Manager,
        client_id: &ClientId,
        patch: TokenPatch,
    ) -> Result<ApiToken> {
        let mut token = self.managed(manager, client_id).await?;
        let patched = |t: &ApiToken| {
            let ips = t.allowed_ips.texts();
            (
                t.description.clone(),
                t.metadata.clone(),
                t.role_ids.clone(),
                t.permission_ids.clone(),
                ips,
                t.trust_policies.clone(),
            )
        };
        let own_grants = patch.role_ids.is_some() || patch.permission_ids.is_some();
        if own_grants && token.owner != TokenOwner::Tenant {
            return Err(Error::bad_request(
                "A personal token acts with its user's roles: roleIds and permissionIds are not its own",
            ));
        }
        let before = patched(&token);
        if let Some(role_ids) = patch.role_ids {
            let life = tenant_life(self.directory, &token.tenant_id).await?;
            let anew = named_anew(&role_ids, &token.role_ids);
            check_role_ids(self.directory, &token.tenant_id, life.as_ref(), &anew).await?;
            token.role_ids = role_ids;
        }
        if let Some(permission_ids) = patch.permission_ids {
            let anew = named_anew(&permission_ids, &token.permission_ids);
            check_permission_ids(self.directory, &anew).await?;
            token.permission_ids = permission_ids;
        }
        if let Some(description) = patch.description {
            token.description = Some(description);
        }
        if let Some(metadata) = patch.metadata {
            token.metadata = metadata;
        }
        if let Some(allowed_ips) = patch.allowed_ips {
            token.allowed_ips = allowed_ips;
        }
        if let Some(trust_policies) = patch.trust_policies {
            token.trust_policies = trust_policies;
        }
        manager.may_manage(&token.role_ids, &token.permission_ids)?;
        if patched(&token) == before {
            return Ok(token); // nothing to change: no write, no event
        }
        let event = self
            .audit
            .token_event("apiToken.changed", Severity::Medium, &token);
        self.tokens.replace(&token, &event).await?;
        Ok(token)
    }
}

/// Another owner's token, one that no longer works and a missing one are answered alike.
fn not_found(client_id: &ClientId) -> Error {
    Error::not_found(TOKEN, &client_id.to_string())
}

/// What a clientId names here, in a 404.
pub const TOKEN: &str = "Token";
