//! The self-service portal: hand-offs opened by the vendor's backend, swapped for sessions, and
//! the session's user as the directory has them on each request.

use std::collections::HashMap;

use crate::domain::audit::{Actor, Attribution, AuditEvent, Severity, Target};
use crate::domain::directory::{EntityKind, Permission, Role};
use crate::domain::jwt::{self, PortalClaims, TokenType};
use crate::domain::portal::{
    HANDOFF_TTL_SECONDS, Handoff, HandoffToken, PORTAL_AUDIENCE, PortalUser, SESSION_TTL_SECONDS,
};
use crate::domain::{TenantId, UserId};
use crate::error::{Error, Result};
use crate::ports::{Clock, DirectoryStore, HandoffStore, Signer};

use super::directory::all;
use super::{Auditor, Owners, sign};

pub struct Portal<'a> {
    pub(crate) handoffs: &'a dyn HandoffStore,
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) audit: Auditor<'a>,
}

/// A session JWT and its lifetime in seconds.
#[derive(Debug)]
pub struct Session {
    pub access_token: String,
    pub expires_in: i64,
}

impl Portal<'_> {
    /// Who acts, as the audit trail records it.
    #[must_use]
    pub fn by(mut self, by: Attribution) -> Self {
        self.audit.by = by;
        self
    }

    /// The event of `name` done to `user_id`'s sessions in `tenant_id`.
    fn session_event(&self, name: &str, user_id: &UserId, tenant_id: &TenantId) -> AuditEvent {
        let target = Target::new("portalSession", user_id);
        let tenant = Some(tenant_id.clone());
        self.audit.event(name, Severity::Info, target, tenant)
    }

    /// `POST /portal/v1/sessions`: a hand-off for `user` in `tenant`, who must be a member of
    /// it (404 otherwise), and its lifetime in seconds.
    pub async fn open(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<(HandoffToken, i64)> {
        let owners = Owners::read(self.directory, tenant_id, Some(user_id)).await?;
        let lives = owners
            .lives()
            .map_err(|absent| Error::NotFound(absent.message(tenant_id, Some(user_id))))?;
        let token = HandoffToken::generate();
        let handoff = Handoff {
            digest: token.digest(),
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            lives,
            expires_at: self.clock.now().plus_seconds(HANDOFF_TTL_SECONDS),
        };
        let event = self.session_event("portalSession.handoffIssued", user_id, tenant_id);
        self.handoffs.put_handoff(&handoff, &event).await?;
        Ok((token, HANDOFF_TTL_SECONDS))
    }

    /// `POST /portal/v1/sessions/handoff`: a hand-off, used once and in time, for a session from
    /// `issuer`. A reused, expired or unknown hand-off is `Unauthorized`.
    pub async fn swap(&self, handoff: &str, issuer: &str) -> Result<Session> {
        let token = HandoffToken::parse(handoff).ok_or(Error::Unauthorized)?;
        let now = self.clock.now();
        let digest = token.digest();
        let handoff = (self.handoffs.handoff(&digest).await?)
            .filter(|handoff| handoff.expires_at > now)
            .ok_or(Error::Unauthorized)?;
        // A hand-off is of the lives it was made in: the session it would open could do
        // nothing once they ended, and must not be made at all. It is used up either way.
        let owners = Owners::read(self.directory, &handoff.tenant_id, Some(&handoff.user_id));
        let current = owners.await?.are_current(&handoff.lives);
        let (user_id, tenant_id) = (&handoff.user_id, &handoff.tenant_id);
        // Whoever holds the hand-off acts as its user.
        let mut audit = self.audit.clone();
        audit.by.actor = Actor::User {
            id: user_id.clone(),
            tenant_id: tenant_id.clone(),
        };
        let target = Target::new("portalSession", user_id);
        let event = audit.event(
            "portalSession.opened",
            Severity::Info,
            target,
            Some(tenant_id.clone()),
        );
        let event = if current { event } else { event.refused() };
        if !self.handoffs.take_handoff(&digest, &event).await? || !current {
            return Err(Error::Unauthorized);
        }
        let claims = PortalClaims {
            token_type: TokenType::PortalSession,
            sub: handoff.user_id.to_string(),
            tenant_id: handoff.tenant_id.to_string(),
            lives: handoff.lives,
            iss: issuer.to_owned(),
            aud: PORTAL_AUDIENCE.to_owned(),
            iat: now.seconds(),
            exp: now.plus_seconds(SESSION_TTL_SECONDS).seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        Ok(Session {
            access_token: sign(self.signer, &claims).await?,
            expires_in: SESSION_TTL_SECONDS,
        })
    }

    /// The session's user with their roles and permissions in its tenant now. A session whose
    /// tenant or membership is no longer the one it was opened in (the user left, or the tenant
    /// or user was deleted, even if made again under the same id) is `Unauthorized`.
    pub async fn user(&self, session: &str, issuer: &str) -> Result<PortalUser> {
        let keys = self.signer.published();
        let claims: PortalClaims = jwt::verify(
            session,
            &keys,
            issuer,
            Some(PORTAL_AUDIENCE),
            self.clock.now(),
        )?;
        let tenant_id = TenantId::parse(&claims.tenant_id).map_err(|_| Error::Unauthorized)?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| Error::Unauthorized)?;
        let (owners, roles, permissions) = tokio::try_join!(
            Owners::read(self.directory, &tenant_id, Some(&user_id)),
            all::<Role>(self.directory, EntityKind::Role),
            all::<Permission>(self.directory, EntityKind::Permission),
        )?;
        if !owners.are_current(&claims.lives) {
            return Err(Error::Unauthorized);
        }
        let user = owners.user()?.ok_or(Error::Unauthorized)?;
        let role_ids = user
            .roles_in(&tenant_id)
            .ok_or(Error::Unauthorized)?
            .to_vec();
        let roles: HashMap<_, _> = roles.into_iter().map(|r| (r.id.clone(), r)).collect();
        let keys: HashMap<_, _> = permissions.into_iter().map(|p| (p.id, p.key)).collect();
        let mut permission_ids: Vec<_> = role_ids
            .iter()
            .filter_map(|id| roles.get(id))
            .flat_map(|role| role.permission_ids.iter().cloned())
            .filter(|id| keys.contains_key(id))
            .collect();
        permission_ids.sort();
        permission_ids.dedup();
        let permission_keys = permission_ids
            .iter()
            .filter_map(|id| keys.get(id).map(ToString::to_string))
            .collect();
        Ok(PortalUser {
            tenant_id,
            user_id,
            role_ids: role_ids
                .into_iter()
                .filter(|id| roles.contains_key(id))
                .collect(),
            permission_ids,
            permission_keys,
        })
    }
}
