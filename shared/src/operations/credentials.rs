//! Credentials for JWTs: the exchange of an API token's clientId and secret, the refresh, and
//! the claims a JWT carries (resolved from the directory at the time of issue).

use std::net::IpAddr;
use std::sync::Arc;

use crate::adapters::oidc::{Issuers, Presented, Verified};
use crate::config::Settings;
use crate::domain::TokenOwner;
use crate::domain::audit::{Action, Actor, Attribution, AuditEvent, Severity, Target};
use crate::domain::directory::{EntityKind, Grants, Permission, Role, User};
use crate::domain::federation::{LEEWAY_SECONDS, TrustPolicy};
use crate::domain::jwt::{self, AccessClaims};
use crate::domain::portal::TokenKind;
use crate::domain::revocation::RevocationList;
use crate::domain::rules::excerpt;
use crate::domain::{
    ApiToken, ClientId, GrantId, LiveSecret, RefreshKey, RefreshToken, SecretKind, SecretState,
    Timestamp,
};
use crate::error::{Error, Result};
use crate::metrics::{self, Refresh, Refused};
use crate::ports::{
    AuditStore, Clock, DirectoryStore, RateStore, RefreshStore, RevocationStore, Signer, Spend,
    TokenStore,
};

use super::{Bcrypt, Owners, TokenRateLimit, issue_time, parse_credentials, sign};
use crate::domain::usage::MinuteUsage;
use crate::machinery::remembered::Tag;
use crate::machinery::usage::used_event;
use crate::machinery::{Party, PublishedList, ReadPlans, Reads, Refusal, SignedList, Usage};

pub struct Credentials<'a> {
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) revocations: &'a dyn RevocationStore,
    pub(crate) refresh: &'a dyn RefreshStore,
    pub(crate) rates: &'a dyn RateStore,
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) bcrypt: &'a Bcrypt,
    pub(crate) rate_limit: &'a TokenRateLimit,
    pub(crate) refresh_keys: &'a RefreshKeys,
    pub(crate) read_plans: &'a ReadPlans,
    pub(crate) published: &'a PublishedList,
    pub(crate) settings: &'a Settings,
    pub(crate) audits: &'a dyn AuditStore,
    pub(crate) usage: &'a Usage,
    pub(crate) issuers: &'a Issuers,
    /// The `iss` of the JWTs issued and checked.
    pub(crate) issuer: &'a str,
    /// Where the request came from, checked against a token's allowed addresses.
    pub(crate) client: Option<IpAddr>,
}

/// What a client-credentials grant answers: an access token, no refresh token.
#[derive(Debug)]
pub struct Granted {
    pub access_token: String,
    pub expires_in: i64,
    /// The scope granted, when one was asked for.
    pub scope: Option<String>,
}

impl Granted {
    /// The answer for `signed`, issued under `scope` if one was asked for.
    fn of(signed: Signed, scope: Option<Scope>) -> Self {
        Self {
            access_token: signed.jwt,
            expires_in: signed.expires_at.seconds() - signed.now.seconds(),
            scope: scope.map(|s| s.0.join(" ")),
        }
    }
}

/// The keys refresh tokens are made and checked with, each derived on first need (one
/// signature of [`RefreshKey::SEED`]), then kept: the signer's, and during a signing-key
/// rotation the retired signer's.
#[derive(Default)]
pub(crate) struct RefreshKeys {
    current: tokio::sync::OnceCell<RefreshKey>,
    retired: tokio::sync::OnceCell<RefreshKey>,
}

async fn refresh_key_of(signer: &dyn Signer) -> Result<RefreshKey> {
    let signature = signer.sign(RefreshKey::SEED).await?;
    Ok(RefreshKey::from_signature(&signature))
}

/// A signed JWT, its number among its token's JWTs, and when it was made and ends.
struct Signed {
    jwt: String,
    serial: u64,
    now: Timestamp,
    expires_at: Timestamp,
}

/// Neither a JWT nor a refresh token outlives its API token, nor the secret it was issued with.
fn until(token: &ApiToken, secret: LiveSecret, now: Timestamp, ttl: i64) -> Timestamp {
    [token.expires_at, secret.until]
        .into_iter()
        .flatten()
        .fold(now.plus_seconds(ttl), Timestamp::min)
}

/// Permission keys a client asks its JWT to be narrowed to (RFC 6749 section 3.3).
struct Scope(Vec<String>);

impl Scope {
    /// `None` when no scope (or an empty one) was asked for.
    fn parse(scope: Option<&str>) -> Result<Option<Self>> {
        let mut keys: Vec<String> = scope
            .unwrap_or_default()
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        let valid = |k: &String| {
            k.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        };
        if let Some(bad) = keys.iter().find(|k| !valid(k)) {
            let bad = excerpt(bad);
            return Err(Error::InvalidScope(format!("{bad:?} is not a scope token")));
        }
        keys.sort();
        keys.dedup();
        Ok((!keys.is_empty()).then_some(Self(keys)))
    }

    /// The held permissions narrowed to this scope; asking for one not held is refused.
    fn narrow(&self, held: &[String]) -> Result<Vec<String>> {
        match self.0.iter().find(|k| !held.contains(k)) {
            Some(missing) => Err(Error::InvalidScope(format!(
                "{} is not granted to this token",
                excerpt(missing)
            ))),
            None => Ok(self.0.clone()),
        }
    }
}

/// A signed access token and the refresh token that renews it.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub expires_at: Timestamp,
}

impl<'a> Credentials<'a> {
    /// The same, for a request from `client` (its address, when known): a token with allowed
    /// addresses works only from within them.
    #[must_use]
    pub fn from_address(self, client: Option<IpAddr>) -> Self {
        Self { client, ..self }
    }

    /// `POST /identity/resources/auth/v{1,2}/api-token`: credentials for an access token.
    /// Unknown clientId, wrong secret and an expired token are one and the same 401.
    pub async fn exchange(&self, client_id: &str, secret: &str) -> Result<Issued> {
        let (token, used, mut reads, plan) = self.authenticate(client_id, secret).await?;
        let issued = self.issue(&token, used, &mut reads).await?;
        self.read_plans.keep(plan, reads);
        metrics::jwt_issued(token.owner.token_type(), "exchange");
        Ok(issued)
    }

    /// `POST /oauth/token` (RFC 6749 section 4.4): the same JWT as the exchange, without a
    /// refresh token (section 4.4.3). `scope`, space-separated permission keys, narrows the
    /// JWT's `permissions` to those; one the token does not hold is `Error::InvalidScope`.
    pub async fn grant(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> Result<Granted> {
        let scope = Scope::parse(scope)?;
        let (token, used, mut reads, plan) = self.authenticate(client_id, secret).await?;
        let signed = self
            .sign_for(&token, used, scope.as_ref(), &mut reads)
            .await?;
        self.read_plans.keep(plan, reads);
        metrics::jwt_issued(token.owner.token_type(), "oauthToken");
        Ok(Granted::of(signed, scope))
    }

    /// `POST /oauth/token` with a workload's token (RFC 8693's token exchange, RFC 7523's JWT
    /// bearer grant): the JWT the secret of `client_id` would get, with no secret, when one of
    /// the token's trust policies admits `assertion` (see [`crate::domain::federation`]). The
    /// token must still work from this address, as for its secret; the workload's token is
    /// verified with its issuer's keys ([`Issuers`]) and taken once. A policy removed, or the
    /// token deleted, before the use is recorded issues nothing.
    pub async fn federate(
        &self,
        client_id: &str,
        assertion: &str,
        scope: Option<&str>,
    ) -> Result<Granted> {
        let scope = Scope::parse(scope)?;
        let presented = Presented::parse(assertion)?;
        let client_id = ClientId::parse(client_id).map_err(|_| Error::Unauthorized)?;
        let plan = self.read_plans.of_refresh(&client_id);
        let (token, mut reads) = self.token_and_plan(&client_id, &plan).await?;
        let now = self.clock.now();
        let Some(token) = token else {
            metrics::refused(Refused::Credentials);
            return Err(Error::Unauthorized);
        };
        if !self.may_use(&token, now) {
            self.refused(&token, true, now).await;
            return Err(Error::Unauthorized);
        }
        let trusted: Vec<(usize, &TrustPolicy)> = (token.trust_policies.iter().enumerate())
            .filter(|(_, p)| p.issuer == presented.issuer)
            .collect();
        if trusted.is_empty() {
            metrics::refused(Refused::Credentials);
            return Err(Error::InvalidGrant(format!(
                "This API token trusts no workload of issuer {}",
                excerpt(&presented.issuer)
            )));
        }
        let verified = self.issuers.verify(&presented, now).await?;
        self.spend(&client_id, &trusted, &verified).await?;
        let secret = LiveSecret {
            generation: token.secret.generation,
            until: None,
        };
        let signed = match self
            .sign_for(&token, secret, scope.as_ref(), &mut reads)
            .await
        {
            Ok(signed) => signed,
            Err(error) => {
                // Nothing was issued (a limit, a dependency down): the workload may try again.
                if let Err(e) = self.refresh.unspend_workload_token(&verified.mark).await {
                    tracing::warn!(error = %e, "a workload token's use could not be given back");
                }
                return Err(error);
            }
        };
        self.read_plans.keep(plan, reads);
        metrics::jwt_issued(token.owner.token_type(), "federated");
        Ok(Granted::of(signed, scope))
    }

    /// Takes the workload's `verified` token once, under the first of the `trusted` policies
    /// (those of its issuer, with their places in the token's list) that admits it; each
    /// refusal names what did not hold.
    async fn spend(
        &self,
        client_id: &ClientId,
        trusted: &[(usize, &TrustPolicy)],
        verified: &Verified,
    ) -> Result<()> {
        // Each policy's verdict, once: the first that admits, else every one's reason.
        let mut mismatches = Vec::new();
        let mut admitting = None;
        for &(at, policy) in trusted {
            match policy.mismatch(&verified.claims) {
                None => {
                    admitting = Some((at, policy));
                    break;
                }
                // Policies by their place in the token's list: their ids (which follow from
                // their contents) are for those who manage the token.
                Some(why) => mismatches.push(format!("policy {}: {why}", at + 1)),
            }
        }
        let Some((at, policy)) = admitting else {
            metrics::refused(Refused::Credentials);
            return Err(Error::InvalidGrant(format!(
                "No trust policy of this API token admits the token: {}",
                mismatches.join("; ")
            )));
        };
        let until = Timestamp::from_millis((verified.expires_at + LEEWAY_SECONDS) * 1000);
        let spent =
            self.refresh
                .spend_workload_token(client_id, (at, &policy.id), &verified.mark, until);
        match spent.await? {
            Spend::Spent => Ok(()),
            Spend::Replayed => {
                metrics::refused(Refused::Credentials);
                Err(Error::InvalidGrant(
                    "The token was used before; each is taken once".into(),
                ))
            }
            Spend::Unadmitted => Err(Error::InvalidGrant(
                "The trust policy that admitted the token was removed meanwhile".into(),
            )),
        }
    }

    /// The token these credentials name, if they are right and it has not expired: the
    /// secret is its current one or, after a rotation, the previous one during its grace
    /// (which one, the second value). With it, the directory records read ahead for its JWT,
    /// and where to keep what they were.
    async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<(ApiToken, LiveSecret, Reads<'a>, Tag)> {
        let token_kinds = [SecretKind::TenantToken, SecretKind::UserToken];
        let (client_id, secret) = parse_credentials(client_id, secret, &token_kinds)?;
        let plan = self.read_plans.of_credentials(&client_id, &secret);
        let (token, reads) = self.token_and_plan(&client_id, &plan).await?;
        let now = self.clock.now();
        let state = token.as_ref().map(|t| &t.secret);
        let party = token.as_ref().map_or(Party::Client(client_id), |token| {
            Party::Tenant(token.tenant_id.clone())
        });
        let used = self
            .bcrypt
            .live_secret((&secret, &party), state, now)
            .await?;
        let (token, used) = match (token, used) {
            (Some(token), Some(used)) if self.may_use(&token, now) => (token, used),
            (Some(token), used) => {
                self.refused(&token, used.is_some(), now).await;
                return Err(Error::Unauthorized);
            }
            (None, _) => {
                metrics::refused(Refused::Credentials);
                return Err(Error::Unauthorized);
            }
        };
        if used.until.is_none() {
            let swap = async |to: &SecretState| {
                let from = &token.secret.hash;
                self.tokens.swap_secret(&client_id, from, to, None).await
            };
            let tenant = Party::Tenant(token.tenant_id.clone());
            self.bcrypt
                .upgrade_state((&secret, &tenant), &token.secret, swap)
                .await;
        }
        Ok((token, used, reads, plan))
    }

    /// The token's record and, in the same round trip, the directory records `plan` names.
    async fn token_and_plan(
        &self,
        client_id: &ClientId,
        plan: &Tag,
    ) -> Result<(Option<ApiToken>, Reads<'a>)> {
        let keys = self.read_plans.plan(plan);
        let (token, records) = self.tokens.token_with(client_id, &keys).await?;
        Ok((token, Reads::ahead(self.directory, &keys, records)))
    }

    /// `POST .../api-token/token/refresh`: a refresh token, used once, for a new pair. It
    /// works while it has not expired, its API token exists and has not expired, the secret its
    /// chain began with still works, and it is among the newest hundred of that token's refresh
    /// tokens. A forged, expired, ended or spent one is refused before anything is counted,
    /// reserved or signed: it is spent first, and given back if no successor could be made.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued> {
        let refused = || {
            metrics::refresh(Refresh::Refused);
            Error::Unauthorized
        };
        let presented = self
            .parse_refresh(refresh_token)
            .await?
            .ok_or_else(refused)?;
        let client_id = presented.client_id();
        let now = self.clock.now();
        let plan = self.read_plans.of_refresh(&client_id);
        let (token, mut reads) = self.token_and_plan(&client_id, &plan).await?;
        let token = token.ok_or_else(refused)?;
        let live = token.secret.live(presented.generation(), now);
        let Some(secret) = live.filter(|_| self.may_use(&token, now)) else {
            self.refused(&token, live.is_some(), now).await;
            return Err(refused());
        };
        let until = self.refresh_expiry(&token, secret, presented.issued_at());
        let serial = presented.serial();
        let unissued = self
            .rate_limit
            .unissued_above(&client_id, serial, token.issued);
        if until <= now || !token.holds_refresh(serial, unissued) {
            return Err(refused());
        }
        if !self
            .refresh
            .spend_refresh(&client_id, serial, until)
            .await?
        {
            // Spent before, or at the same moment by another.
            metrics::refresh(Refresh::Replayed);
            return Err(Error::Unauthorized);
        }
        match self.issue(&token, secret, &mut reads).await {
            Ok(issued) => {
                self.read_plans.keep(plan, reads);
                metrics::refresh(Refresh::Renewed);
                metrics::jwt_issued(token.owner.token_type(), "refresh");
                Ok(issued)
            }
            Err(error) => {
                metrics::refresh(Refresh::Failed);
                // No successor was made (a limit, a dependency down): the refresh token stays
                // usable. Should giving it back fail too, the client exchanges its secret again.
                if let Err(unspent) = self.refresh.unspend_refresh(&client_id, serial).await {
                    tracing::warn!(error = %unspent, "a refresh token could not be given back");
                }
                Err(error)
            }
        }
    }

    /// Notes why a use of `token` at `now` was refused (its secret was `right` or not): an
    /// expired token is deleted, with its event; else the refusal is counted (see [`Usage`]).
    async fn refused(&self, token: &ApiToken, right: bool, now: Timestamp) {
        if token.is_expired(now) {
            metrics::refused(Refused::Credentials);
            self.expired(token).await;
            return;
        }
        let why = if right {
            Refusal::AllowList
        } else {
            Refusal::Secret
        };
        self.counted(Err(why), token, now).await;
    }

    /// Deletes `token`, found expired on use, with its event (once: a second finds it gone).
    /// A failure only leaves it to be found again, or to DynamoDB's TTL.
    async fn expired(&self, token: &ApiToken) {
        let action = Action {
            name: "apiToken.expired",
            severity: Severity::Info,
            target: Target::new("apiToken", token.client_id),
            tenant_id: Some(token.tenant_id.clone()),
        };
        let by = Attribution::new(Actor::System, self.client, None);
        let now = self.clock.now();
        let event = AuditEvent::of(action, &by, now, self.settings.audit_retention_days);
        let deleted = self.tokens.delete_token(&token.client_id, &event).await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "an expired token could not be deleted");
        }
    }

    /// Counts a JWT issued from `token` (`Ok`) or a refusal (`Err`), writing the counts of
    /// an earlier minute if this is the token's first use in this one (see [`Usage`]).
    async fn counted(&self, outcome: Result<(), Refusal>, token: &ApiToken, now: Timestamp) {
        let past = match outcome {
            Ok(()) => self.usage.issued(token, now),
            Err(why) => {
                metrics::refused(why.into());
                self.usage.refused(token, why, now)
            }
        };
        if let Some(past) = past {
            let days = self.settings.audit_retention_days;
            record_minute((self.audits, self.rates), &past, now, days).await;
        }
    }

    /// Whether `token` may be used at `now` from this request's address: not expired, and
    /// from within its allowed addresses if it has any (otherwise the same 401 as a wrong secret).
    fn may_use(&self, token: &ApiToken, now: Timestamp) -> bool {
        !token.is_expired(now) && token.allowed_ips.permits(self.client)
    }

    /// When a refresh token of `token` from `secret`, issued at `issued_at`, expires.
    fn refresh_expiry(
        &self,
        token: &ApiToken,
        secret: LiveSecret,
        issued_at: Timestamp,
    ) -> Timestamp {
        until(
            token,
            secret,
            issued_at,
            self.settings.refresh_token_ttl_seconds,
        )
    }

    /// The key refresh tokens are made and checked with; one signature on first need.
    async fn refresh_key(&self) -> Result<&RefreshKey> {
        self.refresh_keys
            .current
            .get_or_try_init(|| refresh_key_of(self.signer))
            .await
    }

    /// `text` as a refresh token of ours: made under the current key, or, during a signing-key
    /// rotation, under the retired signer's (so a rotation ends no refresh token).
    async fn parse_refresh(&self, text: &str) -> Result<Option<RefreshToken>> {
        if let Some(token) = RefreshToken::parse(self.refresh_key().await?, text) {
            return Ok(Some(token));
        }
        let Some(retired) = self.signer.retired() else {
            return Ok(None);
        };
        let key = self
            .refresh_keys
            .retired
            .get_or_try_init(|| refresh_key_of(retired));
        Ok(RefreshToken::parse(key.await?, text))
    }

    /// Checks an API-token JWT as a vendor's API would; vendor tokens are refused.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims> {
        let (keys, now) = (self.signer.published(), self.clock.now());
        jwt::verify(
            token,
            &keys,
            self.issuer,
            Some(&self.settings.audience),
            now,
        )
        .map_err(Error::from)
    }

    /// `POST /oauth/introspect` (RFC 7662): the claims of `token` if it is active: a JWT of
    /// ours for this audience, unexpired, not revoked, and its API token still there, unexpired
    /// and in the lives it was created in (its tenant, and for a personal token the user's
    /// membership, still the ones it was made in: what the exchange checks). `None` for
    /// anything else, whatever the reason.
    pub async fn introspect(&self, token: &str) -> Result<Option<AccessClaims>> {
        let Ok(claims) = self.verify_access_token(token) else {
            return Ok(None);
        };
        let Ok(client_id) = ClientId::parse(&claims.sub) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let (revocation, api_token) = tokio::try_join!(
            self.revocations.revocation(&client_id, now),
            self.tokens.token(&client_id)
        )?;
        if revocation.is_some_and(|r| r.voids(claims.iat)) {
            return Ok(None);
        }
        let Some(api_token) = api_token.filter(|t| !t.is_expired(now)) else {
            return Ok(None);
        };
        let owners = Owners::read(self.directory, &api_token.tenant_id, api_token.user_id());
        let current = owners.await?.are_current(&api_token.lives);
        Ok(current.then_some(claims))
    }

    /// The revocations as the signed document verifiers poll: a JWT (RS256, the signing key's
    /// `kid`) whose payload is a [`RevocationList`]; read and signed at most once per
    /// [`crate::machinery::revocation_list`] interval.
    pub async fn revocation_list(&self) -> Result<Arc<SignedList>> {
        let read = async |now| {
            let revoked = self.revocations.revocations(now).await?;
            Ok(RevocationList::new(self.issuer, now, &revoked))
        };
        let sign = async |list: &RevocationList| sign(self.signer, list).await;
        self.published
            .serve(self.issuer, self.clock, read, sign)
            .await
    }

    /// A JWT and the refresh token that renews it, both from `secret`; nothing is stored.
    async fn issue(
        &self,
        token: &ApiToken,
        secret: LiveSecret,
        reads: &mut Reads<'_>,
    ) -> Result<Issued> {
        let signed = self.sign_for(token, secret, None, reads);
        let (signed, key) = tokio::try_join!(signed, self.refresh_key())?;
        let refresh_token = RefreshToken::issue(
            key,
            token.client_id,
            signed.serial,
            signed.now,
            secret.generation,
        );
        Ok(Issued {
            access_token: signed.jwt,
            refresh_token,
            expires_in: signed.expires_at.seconds() - signed.now.seconds(),
            expires_at: signed.expires_at,
        })
    }

    /// Signs a JWT for a token whose tenant and membership are still the ones it was created
    /// in. Reads what the token holds and nothing else: its owners (with, for a tenant token,
    /// its roles), then the roles a personal token's user holds, then the permissions of the
    /// roles held; so the cost follows the token, not the directory. Each step reads only what
    /// `reads` did not read ahead (see [`crate::machinery::reads`]). The use is counted first, and
    /// numbered (see [`TokenRateLimit`]).
    async fn sign_for(
        &self,
        token: &ApiToken,
        secret: LiveSecret,
        scope: Option<&Scope>,
        reads: &mut Reads<'_>,
    ) -> Result<Signed> {
        // Counted once the caller proved the credentials, before any work for the JWT.
        // Recorded as the token's last use, in the same write.
        let now = issue_time(self.clock, &token.secret, secret).await;
        let admitted = self.rate_limit.admit(self.rates, &token.client_id, now);
        let serial = match admitted.await {
            Err(Error::RateLimited(wait)) => {
                self.counted(Err(Refusal::RateLimit), token, now).await;
                return Err(Error::RateLimited(wait));
            }
            other => other?,
        };
        // A tenant token's roles are its own, read with its owners; a personal token's are its
        // user's in the tenant, read once the user is.
        let own_roles = match &token.owner {
            TokenOwner::Tenant => token.role_ids.as_slice(),
            TokenOwner::User(_) => &[],
        };
        let (owners, token_roles) = Owners::read_with::<Role>(
            reads,
            &token.tenant_id,
            token.user_id(),
            (EntityKind::Role, own_roles),
        )
        .await?;
        if !owners.are_current(&token.lives) {
            return Err(Error::Unauthorized);
        }
        if let Err(disabled) = owners.allow(TokenKind::from(&token.owner)) {
            self.counted(Err(Refusal::Disabled), token, now).await;
            return Err(disabled);
        }
        let (mut roles, user) = match &token.owner {
            TokenOwner::Tenant => (token_roles, None),
            TokenOwner::User(_) => {
                let user = owners.user()?.ok_or(Error::Unauthorized)?;
                let held = user.roles_in(&token.tenant_id).ok_or(Error::Unauthorized)?;
                (reads.live(EntityKind::Role, held).await?, Some(user))
            }
        };
        // Only the vendor's roles and the tenant's own, of its current life, count here.
        let life = owners.tenant_life();
        roles.retain(|role: &Role| role.applies_in(&token.tenant_id, life));
        let permission_ids: Vec<GrantId> = roles
            .iter()
            .flat_map(|role| &role.permission_ids)
            .chain(&token.permission_ids)
            .cloned()
            .collect();
        let permissions = reads.live(EntityKind::Permission, &permission_ids).await?;
        let mut grants = grants(&roles, &permissions);
        if let Some(scope) = scope {
            grants.permissions = scope.narrow(&grants.permissions)?;
        }
        let expires_at = until(token, secret, now, self.settings.access_token_ttl_seconds);
        let claims = self.access_claims(token, grants, user, now, expires_at);
        let jwt = sign(self.signer, &claims).await?;
        self.counted(Ok(()), token, now).await;
        Ok(Signed {
            jwt,
            serial,
            now,
            expires_at,
        })
    }

    fn access_claims(
        &self,
        token: &ApiToken,
        grants: Grants,
        user: Option<User>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> AccessClaims {
        let token_type = token.owner.token_type();
        let user_id = token.owner.user().map(ToString::to_string);
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
            email: user.as_ref().and_then(|u| u.email.clone()),
            user_metadata: user.map(|u| u.metadata),
            iss: self.issuer.to_owned(),
            aud: self.settings.audience.clone(),
            iat: now.seconds(),
            exp: expires_at.seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// The JWT's roles and permissions: the keys of the roles held and of the permissions read
/// (the roles' and the token's own), sorted and without repeats.
fn grants(roles: &[Role], permissions: &[Permission]) -> Grants {
    let mut permission_keys: Vec<String> = permissions.iter().map(|p| p.key.to_string()).collect();
    permission_keys.sort();
    permission_keys.dedup();
    Grants {
        roles: roles.iter().map(|r| r.key.to_string()).collect(),
        permissions: permission_keys,
    }
}

/// Writes a token's finished minute: its `apiToken.used` event, and its counts added to its
/// day's. A failure loses that minute's record, never the request.
pub(crate) async fn record_minute(
    (audits, rates): (&dyn AuditStore, &dyn RateStore),
    usage: &MinuteUsage,
    now: Timestamp,
    retention_days: u32,
) {
    let event = used_event(usage, now, retention_days);
    let (recorded, added) = tokio::join!(audits.record_event(&event), rates.add_usage(usage));
    for failed in [recorded.err(), added.err()].into_iter().flatten() {
        tracing::warn!(error = %failed, "a token's uses of a minute could not be recorded");
    }
}
