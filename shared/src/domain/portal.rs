//! The self-service portal's rules: hand-offs, what a session's user may do with tokens, and
//! that they never grant more than they hold.
//!
//! A vendor's backend opens the portal for a user it has signed in: it gets a hand-off, a
//! random single-use ticket that lives two minutes, and the page swaps it for a session JWT of
//! its own type and audience. Every request of a session resolves the user's permissions in
//! the tenant again, with Frontegg's keys.

use sha2::{Digest, Sha256};

use super::ids::{GrantId, TenantId, UserId};
use super::lives::TokenLives;
use super::secret::random_base62;
use super::time::Timestamp;
use super::token::TokenOwner;

/// How long a hand-off can be swapped for a session.
pub const HANDOFF_TTL_SECONDS: i64 = 120;
/// How long a session lasts.
pub const SESSION_TTL_SECONDS: i64 = 3600;
/// A session JWT's `aud`: no vendor API accepts it (theirs is `M2M_AUDIENCE`).
pub const PORTAL_AUDIENCE: &str = "m2m-portal";

const HANDOFF_PREFIX: &str = "m2mh_";
const HANDOFF_RANDOM_LEN: usize = 43;

/// The ticket a portal URL carries in its fragment: 256 random bits, stored only as a digest.
pub struct HandoffToken(String);

impl HandoffToken {
    pub fn generate() -> Self {
        Self(format!(
            "{HANDOFF_PREFIX}{}",
            random_base62(HANDOFF_RANDOM_LEN)
        ))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let random = text.strip_prefix(HANDOFF_PREFIX)?;
        (random.len() == HANDOFF_RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form: hex SHA-256.
    pub fn digest(&self) -> HandoffDigest {
        HandoffDigest(
            Sha256::digest(self.0.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl std::fmt::Debug for HandoffToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandoffToken([REDACTED])")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffDigest(pub String);

/// A hand-off as stored: whose session it opens, in which lives of its tenant and membership
/// (the session works only while they are the current ones), and until when.
#[derive(Clone, Debug)]
pub struct Handoff {
    pub digest: HandoffDigest,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub lives: TokenLives,
    pub expires_at: Timestamp,
}

/// Which tokens a session acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Personal,
    Tenant,
}

impl From<&TokenOwner> for TokenKind {
    fn from(owner: &TokenOwner) -> Self {
        match owner {
            TokenOwner::Tenant => Self::Tenant,
            TokenOwner::User(_) => Self::Personal,
        }
    }
}

/// What a session does to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAction {
    Read,
    Write,
    Delete,
}

/// Frontegg's permission key for `action` on `kind` tokens.
pub fn permission_key(kind: TokenKind, action: TokenAction) -> String {
    let action = match action {
        TokenAction::Read => "read",
        TokenAction::Write => "write",
        TokenAction::Delete => "delete",
    };
    let kind = match kind {
        TokenKind::Personal => "userApiTokens",
        TokenKind::Tenant => "tenantApiTokens",
    };
    format!("fe.secure.{action}.{kind}")
}

/// Frontegg's permission key for reading the tenant's audit trail (the portal's "Activity").
pub const READ_AUDITS: &str = "fe.secure.read.audits";

/// Whether `held` grants `required`: the same key, or a key ending in `.*` that covers it, as
/// in Frontegg (`fe.secure.*`, `fe.secure.read.*`).
pub fn key_grants(held: &str, required: &str) -> bool {
    match held.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('.') => required.starts_with(prefix),
        _ => held == required,
    }
}

/// A session's user as the directory has them now, in the session's tenant.
#[derive(Clone, Debug)]
pub struct PortalUser {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The user's roles in the tenant.
    pub role_ids: Vec<GrantId>,
    /// The permissions those roles hold: ids and keys.
    pub permission_ids: Vec<GrantId>,
    pub permission_keys: Vec<String>,
}

impl PortalUser {
    /// Whether the user may do `action` to `kind` tokens.
    pub fn may(&self, kind: TokenKind, action: TokenAction) -> bool {
        self.holds(&permission_key(kind, action))
    }

    /// Whether one of the user's permissions grants `required`.
    pub fn holds(&self, required: &str) -> bool {
        self.permission_keys
            .iter()
            .any(|held| key_grants(held, required))
    }

    /// Whether a tenant token with these roles and permissions grants nothing the user lacks.
    pub fn may_grant(&self, role_ids: &[GrantId], permission_ids: &[GrantId]) -> bool {
        role_ids.iter().all(|id| self.role_ids.contains(id))
            && permission_ids
                .iter()
                .all(|id| self.permission_ids.contains(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_grant_what_they_cover_and_nothing_else() {
        let read = permission_key(TokenKind::Tenant, TokenAction::Read);
        assert_eq!(read, "fe.secure.read.tenantApiTokens");
        assert!(key_grants("fe.secure.read.tenantApiTokens", &read));
        assert!(key_grants("fe.secure.*", &read));
        assert!(key_grants("fe.secure.read.*", &read));
        assert!(key_grants("fe.*", &read));
        assert!(!key_grants("fe.secure.write.*", &read));
        assert!(!key_grants("fe.secure.read.userApiTokens", &read));
        assert!(!key_grants("fe.secure.read", &read));
        assert!(
            !key_grants("fe.secure.re*", &read),
            "a wildcard covers whole segments"
        );
        assert!(!key_grants("*", &read));
    }

    #[test]
    fn handoffs_parse_back_and_hide_in_debug() {
        let handoff = HandoffToken::generate();
        let parsed = HandoffToken::parse(handoff.expose()).unwrap();
        assert_eq!(parsed.digest(), handoff.digest());
        assert!(!format!("{handoff:?}").contains(handoff.expose()));
        assert!(HandoffToken::parse("m2mh_short").is_none());
        assert!(HandoffToken::parse(&handoff.expose().replace("m2mh_", "m2mr_")).is_none());
    }
}
