//! The use cases, grouped by what they touch. Each group is a small struct that [`App`] builds
//! from the ports that group uses and nothing else, so a signature says what an operation can
//! reach: `app.api_tokens().create(..)` cannot sign, `app.credentials().exchange(..)` cannot
//! write the directory.
//!
//! [`App`]: crate::App

mod credentials;
mod directory;
mod portal;
mod rate_limit;
mod tokens;
mod vendors;
mod verified;

pub use credentials::{Credentials, Granted, Issued};
pub use directory::Directory;
pub use portal::{Portal, Session};
pub use tokens::{ApiTokens, NewToken, Owner, TokenPatch};
pub use vendors::Vendors;

pub(crate) use rate_limit::TokenRateLimit;

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OnceCell, Semaphore};

use crate::domain::configuration::{TOKEN_SETTINGS_ID, TokenSettings};
use crate::domain::directory::{EntityKind, User};
use crate::domain::jwt;
use crate::domain::lives::{Absent, DirectoryRecord, TokenLives};
use crate::domain::portal::TokenKind;
use crate::domain::secret::QuickCheck;
use crate::domain::{ClientId, GrantId, Secret, SecretHash, SecretKind, TenantId, UserId};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, Signer};

/// A freshly created credential: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct Created<T> {
    pub record: T,
    pub secret: Secret,
}

/// bcrypt at the configured cost: hashing new secrets, and checking presented ones with a decoy
/// so that an unknown clientId costs the same work as a wrong secret.
///
/// The work is bounded: at most one bcrypt per core runs at a time, a short queue waits, and
/// beyond it a request is refused at once with `Error::Busy` (429 and `Retry-After`), the same
/// answer for everyone, instead of piling up behind a flood.
pub(crate) struct Bcrypt {
    cost: u32,
    /// A hash of no one's secret; made on first need, or up front by [`Bcrypt::prepare`].
    decoy: OnceCell<SecretHash>,
    workers: Semaphore,
    /// bcrypt runs admitted, running or waiting; at most `capacity`.
    admitted: AtomicUsize,
    capacity: usize,
    verified: verified::Verified,
}

/// Counts one admitted run until dropped.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waiting bcrypt runs allowed per core, beyond the one running.
const QUEUE_PER_CORE: usize = 2;

impl Bcrypt {
    pub(crate) fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            cost,
            decoy: OnceCell::new(),
            workers: Semaphore::new(cores),
            admitted: AtomicUsize::new(0),
            capacity: cores * (1 + QUEUE_PER_CORE),
            verified: verified::Verified::new(),
        }
    }

    /// Makes the decoy now, so the first unknown clientId is not faster.
    pub(crate) async fn prepare(&self) -> Result<()> {
        self.decoy().await.map(|_| ())
    }

    /// Runs `work` (one bcrypt) when a core is free, or refuses it when the queue is full.
    async fn bounded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        // Counted from here until this returns, refused or not.
        let _admission = Admission(&self.admitted);
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            return Err(Error::Busy);
        }
        let _permit = self.workers.acquire().await.map_err(Error::internal)?;
        work.await
    }

    async fn hash(&self, secret: &Secret) -> Result<SecretHash> {
        self.bounded(async { Ok(secret.hash(self.cost).await?) })
            .await
    }

    /// A hash of no one's secret at the configured cost, made without paying that cost: the
    /// cost is a field of a bcrypt hash, so a hash made at the lowest cost, with that field set
    /// to the configured cost, takes exactly as long to check as any stored hash (and matches
    /// nothing). So start-up spends about a millisecond on it, not one full bcrypt.
    async fn decoy(&self) -> Result<&SecretHash> {
        self.decoy
            .get_or_try_init(|| async {
                let cheap = Secret::generate(SecretKind::TenantToken).hash(4).await?;
                Ok(SecretHash::from_stored(
                    with_cost(cheap.as_stored(), self.cost),
                    None,
                ))
            })
            .await
    }

    /// Whether `secret` is the one `stored` was made from, and nothing else. A secret whose quick
    /// check differs is refused without bcrypt; so is one for no record, except that one in
    /// 65,536 is checked against the decoy, as a wrong secret for a real record would be, so the
    /// two look alike from outside.
    ///
    /// A secret verified against the same stored hash within the last few minutes is not
    /// checked again (see [`verified`]).
    async fn matches(&self, secret: &Secret, stored: Option<&SecretHash>) -> Result<bool> {
        let hash = match stored {
            Some(hash) if !hash.may_match(secret) => return Ok(false),
            Some(hash) if self.verified.recalls(secret, hash) => return Ok(true),
            Some(hash) => hash,
            None if QuickCheck::random() != secret.quick_check() => return Ok(false),
            None => self.decoy().await?,
        };
        let matched = self
            .bounded(async { Ok(secret.matches(hash).await?) })
            .await?;
        if matched && let Some(hash) = stored {
            self.verified.remember(secret, hash);
        }
        Ok(matched && stored.is_some())
    }
}

/// `hash` (`$2b$04$` and 53 characters of salt and digest) with its cost field set to `cost`.
fn with_cost(hash: &str, cost: u32) -> String {
    let salt_and_digest = hash.rsplit('$').next().unwrap_or_default();
    format!("$2b${cost:02}${salt_and_digest}")
}

/// Signs `claims` as an RS256 JWT with the signer's key; the header names its `kid`.
async fn sign(signer: &dyn Signer, claims: &impl serde::Serialize) -> Result<String> {
    let input = jwt::signing_input(signer.public_key().kid(), claims).map_err(Error::internal)?;
    let signature = signer.sign(input.as_bytes()).await?;
    Ok(jwt::compact(&input, &signature))
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
        .filter(|s| kinds.iter().any(|kind| s.may_be(*kind)))
        .ok_or(Error::Unauthorized)?;
    Ok((client_id, secret))
}

/// A tenant's record and, when a user is concerned, that user's: what a token's lives are
/// checked against; and the vendor's token settings, read in the same round trip.
struct Owners {
    tenant_id: TenantId,
    tenant: Option<DirectoryRecord>,
    /// `None` for a tenant token; `Some(None)` when the user does not exist.
    user: Option<Option<DirectoryRecord>>,
    settings: Option<DirectoryRecord>,
}

impl Owners {
    /// The records in one round trip.
    async fn read(
        directory: &dyn DirectoryStore,
        tenant_id: &TenantId,
        user: Option<&UserId>,
    ) -> Result<Self> {
        let nothing_more: (EntityKind, &[GrantId]) = (EntityKind::Role, &[]);
        let (owners, _): (Self, Vec<serde_json::Value>) =
            Self::read_with(directory, tenant_id, user, nothing_more).await?;
        Ok(owners)
    }

    /// The records and, in the same round trip, the live documents of the `kind` records
    /// `ids`, in their order (the deleted and the missing left out).
    async fn read_with<T: serde::de::DeserializeOwned>(
        directory: &dyn DirectoryStore,
        tenant_id: &TenantId,
        user: Option<&UserId>,
        (kind, ids): (EntityKind, &[GrantId]),
    ) -> Result<(Self, Vec<T>)> {
        let mut keys = vec![
            (EntityKind::Configuration, TOKEN_SETTINGS_ID.to_owned()),
            (EntityKind::Tenant, tenant_id.as_str().to_owned()),
        ];
        keys.extend(user.map(|u| (EntityKind::User, u.as_str().to_owned())));
        keys.extend(directory::keys_of(kind, ids));
        let mut records = directory.records(&keys).await?.into_iter();
        let settings = records.next().flatten();
        let tenant = records.next().flatten();
        let owners = Self {
            tenant_id: tenant_id.clone(),
            tenant,
            user: user.map(|_| records.next().flatten()),
            settings,
        };
        Ok((owners, directory::live_docs(records)?))
    }

    /// The vendor's API-token settings (the defaults until the vendor changes them).
    fn settings(&self) -> Result<TokenSettings> {
        let doc = self.settings.as_ref().and_then(|r| r.doc.clone());
        doc.map_or_else(|| Ok(TokenSettings::default()), directory::from_doc)
    }

    /// 403 unless the settings let tokens of `kind` be created and exchanged.
    fn allow(&self, kind: TokenKind) -> Result<TokenSettings> {
        let settings = self.settings()?;
        settings
            .allows(kind)
            .map_err(|why| Error::Forbidden(why.to_owned()))?;
        Ok(settings)
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

    fn user_record(&self) -> Option<Option<&DirectoryRecord>> {
        self.user.as_ref().map(Option::as_ref)
    }

    /// The user's document, if the user exists.
    fn user(&self) -> Result<Option<User>> {
        let doc = self.user.clone().flatten().and_then(|r| r.doc);
        doc.map(directory::from_doc).transpose()
    }
}

/// Refuses ids that name no permission (or role): `400` with the unknown ones.
async fn check_ids_exist(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
    ids: &[GrantId],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = directory
        .entities(kind)
        .await?
        .into_iter()
        .filter_map(|doc| doc["id"].as_str().map(str::to_owned))
        .collect();
    let unknown: Vec<&str> = ids
        .iter()
        .map(GrantId::as_str)
        .filter(|id| !known.iter().any(|k| k == id))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let what = if kind == EntityKind::Role {
        "roleIds"
    } else {
        "permissionIds"
    };
    Err(Error::bad_request(format!(
        "Unknown {what}: {}",
        unknown.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_decoy_is_checked_at_the_configured_cost_and_matches_nothing() {
        let bcrypt = Bcrypt::new(6);
        let decoy = bcrypt.decoy().await.unwrap().as_stored().to_owned();
        assert!(decoy.starts_with("$2b$06$"), "{decoy}");
        assert_eq!(decoy.len(), 60);
        let secret = Secret::generate(SecretKind::TenantToken);
        assert!(
            !bcrypt::verify(secret.expose(), &decoy).unwrap(),
            "a valid hash that matches nothing"
        );
        assert!(!bcrypt.matches(&secret, None).await.unwrap());
    }
}
