//! The use cases, grouped by what they touch. Each group is a small struct that [`App`] builds
//! from the ports that group uses and nothing else, so a signature says what an operation can
//! reach: `app.api_tokens().create(..)` cannot sign, `app.credentials().exchange(..)` cannot
//! write the directory.
//!
//! [`App`]: crate::App

mod audits;
mod backup;
mod credentials;
mod directory;
mod health;
mod portal;
mod tokens;
mod vendors;

pub use audits::Audits;
pub use backup::{Backup, EXPORT_FORMAT, EXPORT_VERSION, Pass, check as check_exported};
pub use credentials::{Credentials, Granted, Issued};
pub(crate) use credentials::{RefreshKeys, record_minute};
pub use directory::{BRANDING_KEPT, Directory, Listing, Window};
pub use health::{Answer, Health, KeptReadiness, READY_BUDGET, Readiness};
pub use portal::{Portal, Session};
pub use tokens::{ApiTokens, Manager, NewToken, Owner, TOKEN, TokenPatch};
pub use vendors::{CREDENTIAL, Vendors};

pub use crate::machinery::SignedList;
pub(crate) use crate::machinery::{Bcrypt, PublishedList, ReadPlans, TokenRateLimit};

use crate::domain::audit::{Action, Attribution, AuditEvent, Severity, Target};
use crate::domain::configuration::{TOKEN_SETTINGS_ID, TokenSettings};
use crate::domain::directory::{EntityKind, Role, User};
use crate::domain::document::{Document, Record, WrongKind};
use crate::domain::lives::{Absent, DirectoryRecord, Life, TokenLives};
use crate::domain::portal::TokenKind;
use crate::domain::revocation::Revocation;
use crate::domain::{
    ApiToken, ClientId, GrantId, LiveSecret, Secret, SecretKind, SecretState, TenantId, Timestamp,
    UserId,
};
use crate::domain::{jwt, rules};
use crate::error::{Error, Result};
use crate::ports::{Clock, DirectoryStore, RevocationStore, Signer, TokenStore};

use crate::machinery::{Reads, keys_of, live_docs};

/// A freshly created credential: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct Created<T> {
    pub record: T,
    pub secret: Secret,
}

/// How the operations record what they change: who acts (the service itself until
/// [`Auditor::by`] says otherwise), the clock, and how long events are kept.
#[derive(Clone)]
pub(crate) struct Auditor<'a> {
    pub(crate) by: Attribution,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) retention_days: u32,
}

impl Auditor<'_> {
    /// The event of `name` done to `target` (in `tenant_id`'s log too, if any), now.
    pub(crate) fn event(
        &self,
        name: &str,
        severity: Severity,
        target: Target,
        tenant_id: Option<TenantId>,
    ) -> AuditEvent {
        let action = Action {
            name,
            severity,
            target,
            tenant_id,
        };
        AuditEvent::of(action, &self.by, self.clock.now(), self.retention_days)
    }

    /// The event of `name` done to an API token.
    pub(crate) fn token_event(
        &self,
        name: &str,
        severity: Severity,
        token: &ApiToken,
    ) -> AuditEvent {
        let target = Target::new("apiToken", token.client_id);
        self.event(name, severity, target, Some(token.tenant_id.clone()))
    }
}

/// Tokens a cascade deletes at once.
const DELETIONS_AT_ONCE: usize = 16;

/// Ending tokens: deleting them and voiding the JWTs already issued from them. The
/// revocations are written first, so a failure in between leaves a token that still works
/// (its newer JWTs included), never a token gone whose JWTs still do. Only tokens whose JWTs
/// could still be unexpired are revoked (see [`Revocation::of_retired`]), judged by the
/// records as read: a cascade reads them after its tombstone stopped new JWTs.
pub(crate) struct Retirement<'a> {
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) revocations: &'a dyn RevocationStore,
    pub(crate) published: &'a PublishedList,
    pub(crate) clock: &'a dyn Clock,
    /// How long an access token lives, so how long a revocation must be kept.
    pub(crate) access_ttl_seconds: i64,
}

impl Retirement<'_> {
    /// Voids the JWTs issued so far from `tokens`. A record saying that none needs voiding is
    /// read again (consistently) first: a cascade lists tokens through an index, which may not
    /// show a use of the last second yet.
    pub(crate) async fn revoke(&self, tokens: &[ApiToken]) -> Result<()> {
        let now = self.clock.now();
        let mut revoked = Vec::new();
        for token in tokens {
            let revocation = match self.revocation_of(token, now) {
                Some(revocation) => Some(revocation),
                None => self
                    .tokens
                    .token(&token.client_id)
                    .await?
                    .and_then(|stored| self.revocation_of(&stored, now)),
            };
            revoked.extend(revocation);
        }
        if revoked.is_empty() {
            return Ok(());
        }
        self.revocations.revoke(&revoked).await?;
        self.published.note_written();
        Ok(())
    }

    /// Voids, from `from` on, the JWTs issued so far from `token`: those of a secret rotated
    /// out with a grace, void once it ends. Nothing when none can still be unexpired by then.
    pub(crate) async fn revoke_later(&self, token: &ApiToken, from: Timestamp) -> Result<()> {
        let now = self.clock.now();
        let later = Revocation::later(token.client_id, now, from, self.access_ttl_seconds);
        self.write_if_needed(token, later, now).await
    }

    /// Voids at once the JWTs of `token` issued up to `before` (an older secret's, ended by a
    /// rotation during its grace: all it issued before it was rotated out).
    pub(crate) async fn revoke_issued_before(
        &self,
        token: &ApiToken,
        before: Timestamp,
    ) -> Result<()> {
        let revocation = Revocation::at(token.client_id, before, self.access_ttl_seconds);
        self.write_if_needed(token, Some(revocation), self.clock.now())
            .await
    }

    /// Writes `revocation` if `token` may have a JWT out that it voids.
    async fn write_if_needed(
        &self,
        token: &ApiToken,
        revocation: Option<Revocation>,
        now: Timestamp,
    ) -> Result<()> {
        let needed =
            revocation.filter(|r| r.until > now && self.revocation_of(token, now).is_some());
        if let Some(revocation) = needed {
            self.revocations.revoke(&[revocation]).await?;
            self.published.note_written();
        }
        Ok(())
    }

    fn revocation_of(&self, token: &ApiToken, now: Timestamp) -> Option<Revocation> {
        let ttl = self.access_ttl_seconds;
        Revocation::of_retired(token.client_id, token.last_used_at, now, ttl)
    }

    /// Voids the JWTs of `token`, then deletes it and its refresh tokens, with `event`: `false`,
    /// and no event, when it was already gone.
    pub(crate) async fn retire_one(&self, token: &ApiToken, event: &AuditEvent) -> Result<bool> {
        self.revoke(std::slice::from_ref(token)).await?;
        self.tokens.delete_token(&token.client_id, event).await
    }

    /// Voids the JWTs of `tokens`, then deletes each and its refresh tokens with its `event`
    /// (a few at once); one already gone is passed over, with no event.
    pub(crate) async fn retire(
        &self,
        tokens: &[ApiToken],
        event: impl Fn(&ApiToken) -> AuditEvent,
    ) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.revoke(tokens).await?;
        for chunk in tokens.chunks(DELETIONS_AT_ONCE) {
            let events: Vec<AuditEvent> = chunk.iter().map(&event).collect();
            let deletions = (chunk.iter().zip(&events))
                .map(|(token, event)| self.tokens.delete_token(&token.client_id, event));
            futures::future::try_join_all(deletions).await?;
        }
        Ok(())
    }
}

/// When to issue a JWT from `secret` (one of `state`'s): now, but never in the second its
/// secret was made by a rotation. A rotation revokes the JWTs issued up to and including its
/// second (at once, or when the grace ends), so the new secret's first JWT waits for the next
/// second: a second at most; not when another instance's clock is further ahead.
async fn issue_time(clock: &dyn Clock, state: &SecretState, secret: LiveSecret) -> Timestamp {
    let now = clock.now();
    let Some(rotated_at) = state.rotated_at.filter(|_| secret.until.is_none()) else {
        return now;
    };
    let first = Timestamp::from_millis((rotated_at.seconds() + 1) * 1000);
    let wait = first.millis() - now.millis();
    if wait <= 0 || wait > 1000 {
        return now;
    }
    tokio::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs())).await;
    clock.now().max(first)
}

/// Signs `claims` as an RS256 JWT with the signer's key; the header names its `kid`.
async fn sign(signer: &dyn Signer, claims: &impl serde::Serialize) -> Result<String> {
    let input = jwt::signing_input(signer.public_key().kid(), claims).map_err(Error::internal)?;
    let signing = signer.sign(input.as_bytes());
    let signature = crate::metrics::timed(crate::metrics::SIGNING_SECONDS, signing).await?;
    Ok(jwt::compact(&input, &signature))
}

/// Refuses malformed credentials before any store read or bcrypt work.
fn parse_credentials(
    client_id: &str,
    secret: &str,
    kinds: &[SecretKind],
) -> Result<(ClientId, Secret)> {
    let client_id = ClientId::parse(client_id).ok();
    let secret = Secret::parse(secret)
        .ok()
        .filter(|s| kinds.iter().any(|kind| s.may_be(*kind)));
    client_id.zip(secret).ok_or_else(|| {
        crate::metrics::refused(crate::metrics::Refused::Credentials);
        Error::Unauthorized
    })
}

/// A tenant's record and, when a user is concerned, that user's: what a token's lives are
/// checked against; and the vendor's token settings, read in the same round trip.
struct Owners {
    tenant_id: TenantId,
    tenant: Option<Record>,
    /// `None` for a tenant token; `Some(None)` when the user does not exist.
    user: Option<Option<Record>>,
    settings: Option<Record>,
}

impl Owners {
    /// The records in one round trip.
    async fn read(
        directory: &dyn DirectoryStore,
        tenant_id: &TenantId,
        user: Option<&UserId>,
    ) -> Result<Self> {
        let nothing_more: (EntityKind, &[GrantId]) = (EntityKind::Role, &[]);
        let reads = &mut Reads::new(directory);
        let (owners, _): (Self, Vec<Role>) =
            Self::read_with(reads, tenant_id, user, nothing_more).await?;
        Ok(owners)
    }

    /// The records and, in the same round trip, the live documents of the `kind` records
    /// `ids`, in their order (the deleted and the missing left out).
    async fn read_with<T: TryFrom<Document, Error = WrongKind>>(
        reads: &mut Reads<'_>,
        tenant_id: &TenantId,
        user: Option<&UserId>,
        (kind, ids): (EntityKind, &[GrantId]),
    ) -> Result<(Self, Vec<T>)> {
        let mut keys = vec![
            (EntityKind::Configuration, TOKEN_SETTINGS_ID.to_owned()),
            (EntityKind::Tenant, tenant_id.as_str().to_owned()),
        ];
        keys.extend(user.map(|u| (EntityKind::User, u.as_str().to_owned())));
        keys.extend(keys_of(kind, ids));
        let mut records = reads.records(&keys).await?.into_iter();
        let settings = records.next().flatten();
        let tenant = records.next().flatten();
        let owners = Self {
            tenant_id: tenant_id.clone(),
            tenant,
            user: user.map(|_| records.next().flatten()),
            settings,
        };
        Ok((owners, live_docs(records)?))
    }

    /// The vendor's API-token settings (the defaults until the vendor changes them).
    fn settings(&self) -> Result<TokenSettings> {
        let doc = self.settings.as_ref().and_then(|r| r.doc.clone());
        Ok(doc
            .map(TokenSettings::try_from)
            .transpose()?
            .unwrap_or_default())
    }

    /// 403 unless the settings let tokens of `kind` be created and exchanged.
    fn allow(&self, kind: TokenKind) -> Result<TokenSettings> {
        let settings = self.settings()?;
        settings
            .allows(kind)
            .map_err(|why| Error::Forbidden(why.to_owned()))?;
        Ok(settings)
    }

    /// The life of the tenant, while it lives.
    fn tenant_life(&self) -> Option<&Life> {
        self.tenant.as_ref().and_then(DirectoryRecord::current_life)
    }

    /// The lives a token created now would get.
    fn lives(&self) -> std::result::Result<TokenLives, Absent> {
        TokenLives::of(&self.tenant_id, self.tenant.as_ref(), self.user_record())
    }

    /// Whether a token created in `lives` still works.
    fn are_current(&self, lives: &TokenLives) -> bool {
        let (tenant, user) = (self.tenant.as_ref(), self.user_record());
        lives.check(&self.tenant_id, tenant, user).is_ok()
    }

    fn user_record(&self) -> Option<Option<&Record>> {
        self.user.as_ref().map(Option::as_ref)
    }

    /// The user's document, if the user exists.
    fn user(&self) -> Result<Option<User>> {
        let doc = self.user.clone().flatten().and_then(|r| r.doc);
        Ok(doc.map(User::try_from).transpose()?)
    }
}

/// The life of the tenant while it lives; `None` when it does not.
async fn tenant_life(directory: &dyn DirectoryStore, tenant: &TenantId) -> Result<Option<Life>> {
    let record = directory
        .record(EntityKind::Tenant, tenant.as_str())
        .await?;
    Ok(record.and_then(|(record, _)| record.current_life().cloned()))
}

/// The ids of `ids` not among `held`: what a change names anew, and so what it checks. An id
/// held before and deleted since stays where it is, granting nothing (deleted ids are never
/// used again), so that it does not block later changes.
fn named_anew(ids: &[GrantId], held: &[GrantId]) -> Vec<GrantId> {
    ids.iter()
        .filter(|id| !held.contains(id))
        .cloned()
        .collect()
}

/// Refuses ids that name no permission: 404 with the unknown ones.
async fn check_permission_ids(directory: &dyn DirectoryStore, ids: &[GrantId]) -> Result<()> {
    check_known(directory, EntityKind::Permission, ids, |_| true).await
}

/// Refuses ids that name no role that may be held in `tenant`, whose live record has `life`
/// (the vendor's roles, and the tenant's own): 404 with the unknown ones, another tenant's
/// roles among them.
async fn check_role_ids(
    directory: &dyn DirectoryStore,
    tenant: &TenantId,
    life: Option<&Life>,
    ids: &[GrantId],
) -> Result<()> {
    check_known(directory, EntityKind::Role, ids, |doc| match doc {
        Document::Role(role) => role.applies_in(tenant, life),
        _ => false,
    })
    .await
}

/// Refuses ids that name no live `kind` record that `keep` keeps.
async fn check_known(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
    ids: &[GrantId],
    keep: impl Fn(&Document) -> bool,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // Read by id (one batch): the cost follows the ids named, not the directory.
    let known: Vec<GrantId> = directory
        .records(&keys_of(kind, ids))
        .await?
        .into_iter()
        .flatten()
        .filter_map(|record| record.doc)
        .filter(|doc| keep(doc))
        .filter_map(|doc| match doc {
            Document::Permission(permission) => Some(permission.id),
            Document::Role(role) => Some(role.id),
            _ => None,
        })
        .collect();
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !known.contains(id))
        .map(GrantId::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let what = if kind == EntityKind::Role {
        "roleIds"
    } else {
        "permissionIds"
    };
    // 404: the request is well-formed; what it names does not exist.
    Err(Error::NotFound(format!(
        "Unknown {what}: {}",
        rules::excerpt(&unknown.join(", "))
    )))
}
