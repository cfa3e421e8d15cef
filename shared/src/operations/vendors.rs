//! Vendor credentials and vendor tokens: what `POST /auth/vendor`, every vendor-only route, the
//! vendor's management of its own credentials and the local server's bootstrap use.
//!
//! A vendor holds several named credentials, each with the secret lifecycle of an API token
//! ([`SecretState`]): rotated with a grace, revoked. A vendor token carries the generation of the
//! secret that issued it and ends with that secret, so every vendor-only route reads the
//! credential (one strongly consistent read) and refuses a token whose secret no longer works.

use crate::config::Settings;
use crate::domain::audit::{Actor, Attribution, AuditEvent, Severity, Target};
use crate::domain::jwt::{self, TokenType, VendorClaims};
use crate::domain::revocation::Revocation;
use crate::domain::token::{DEFAULT_GRACE_MINUTES, DEFAULT_VENDOR_NAME};
use crate::domain::{ClientId, Secret, SecretKind, SecretState, VendorCredential};
use crate::error::{Error, Result};
use crate::ports::{AuditStore, Clock, RevocationStore, Signer, VendorStore};

use super::{Auditor, Bcrypt, Created, issue_time, parse_credentials, sign};
use crate::machinery::{Party, Refusals};

pub struct Vendors<'a> {
    pub(crate) store: &'a dyn VendorStore,
    pub(crate) revocations: &'a dyn RevocationStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) bcrypt: &'a Bcrypt,
    pub(crate) settings: &'a Settings,
    pub(crate) audits: &'a dyn AuditStore,
    pub(crate) refusals: &'a Refusals,
    pub(crate) audit: Auditor<'a>,
}

/// How often a revocation retries when the credentials change under it.
const REVOKE_ATTEMPTS: usize = 3;

impl Vendors<'_> {
    /// Who acts, as the audit trail records it.
    #[must_use]
    pub fn by(mut self, by: Attribution) -> Self {
        self.audit.by = by;
        self
    }

    /// The event of `name` done to credential `client_id`.
    fn event(&self, name: &str, client_id: &ClientId) -> AuditEvent {
        let target = Target::new("vendorCredential", client_id);
        self.audit.event(name, Severity::High, target, None)
    }

    /// `POST /auth/vendor`: vendor credentials for a vendor token from `issuer` and its
    /// lifetime in seconds. The secret is the credential's current one or, after a rotation,
    /// the previous one during its grace, whose tokens end with the grace.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        issuer: &str,
    ) -> Result<(String, i64)> {
        let (client_id, secret) = parse_credentials(client_id, secret, &[SecretKind::Vendor])?;
        let vendor = self.store.vendor(&client_id).await?;
        let now = self.clock.now();
        let state = vendor.as_ref().map(|v| &v.secret);
        let party = Party::Client(client_id);
        let used = self
            .bcrypt
            .live_secret((&secret, &party), state, now)
            .await?;
        let known = vendor.is_some();
        let (Some(vendor), Some(used)) = (vendor, used) else {
            let why = "a login with a wrong or ended secret";
            crate::metrics::refused(crate::metrics::Refused::Credentials);
            self.refused(client_id, known, why).await;
            return Err(Error::Unauthorized);
        };
        let now = issue_time(self.clock, &vendor.secret, used).await;
        if used.until.is_none() {
            let from = &vendor.secret.hash;
            let swap = async |to: &SecretState| {
                (self.store)
                    .swap_vendor_secret(&client_id, from, to, None)
                    .await
            };
            self.bcrypt
                .upgrade_state((&secret, &Party::Vendor), &vendor.secret, swap)
                .await;
        }
        let ttl_end = now.plus_seconds(self.settings.vendor_token_ttl_seconds);
        let expires_at = used.until.map_or(ttl_end, |until| until.min(ttl_end));
        let claims = VendorClaims {
            token_type: TokenType::Vendor,
            vendor_id: client_id.to_string(),
            sub: client_id.to_string(),
            secret_generation: used.generation,
            iss: issuer.to_owned(),
            iat: now.seconds(),
            exp: expires_at.seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        // Recorded beside the signature, at most once a minute.
        let touch = async {
            if vendor.records_use_at(now) {
                self.store.touch_vendor(&client_id, now).await?;
            }
            Ok(())
        };
        // The login is the credential's own act, recorded beside the signature.
        let mut login = self.audit.clone();
        login.by.actor = Actor::Credential { id: client_id };
        let target = Target::new("vendorCredential", client_id);
        let event = login.event("vendorCredential.login", Severity::Info, target, None);
        let (token, (), ()) = tokio::try_join!(
            sign(self.signer, &claims),
            touch,
            self.audits.record_event(&event)
        )?;
        crate::metrics::jwt_issued(TokenType::Vendor, "vendorAuth");
        Ok((token, expires_at.seconds() - now.seconds()))
    }

    /// Records a refused use of credential `client_id` (`why`), if it exists (`known`) or was
    /// revoked recently enough for its revocation to be kept (a leaked credential tried after
    /// its revocation is what the trail must show): at most a few of one credential's a minute
    /// in each process, so that a flood never turns into writes at the rate it comes. A
    /// failure to record it is logged.
    async fn refused(&self, client_id: ClientId, known: bool, why: &str) {
        let now = self.clock.now();
        if !self.refusals.admit(&client_id.to_string(), now) {
            return;
        }
        let revoked = match known {
            true => false,
            false => match self.revocations.revocation(&client_id, now).await {
                Ok(revoked) => revoked.is_some(),
                Err(e) => {
                    tracing::warn!(error = %e, "a refused vendor login could not be checked");
                    return;
                }
            },
        };
        if !known && !revoked {
            return; // no credential of ours: nothing to name
        }
        let gone = if revoked {
            ", of a revoked credential"
        } else {
            ""
        };
        let mut event = self.event("vendorCredential.refused", &client_id).refused();
        event.description = format!("{}: {why}{gone}", event.description);
        if let Err(e) = self.audits.record_event(&event).await {
            tracing::warn!(error = %e, "a refused vendor login could not be recorded");
        }
    }

    /// Checks a vendor token from `issuer`: ours, unexpired, and issued by a secret of a
    /// credential that still works (a revoked credential's tokens, and those of a secret rotated
    /// out, are refused at once). API-token JWTs and anything else are refused alike.
    pub async fn verify_token(&self, token: &str, issuer: &str) -> Result<VendorClaims> {
        let keys = self.signer.published();
        let now = self.clock.now();
        let claims: VendorClaims = jwt::verify(token, &keys, issuer, None, now)?;
        let client_id = ClientId::parse(&claims.vendor_id).map_err(|_| Error::Unauthorized)?;
        let vendor = self.store.vendor(&client_id).await?;
        let generation = claims.secret_generation;
        match vendor {
            Some(vendor) if vendor.secret.live(generation, now).is_some() => Ok(claims),
            // A token we signed, of a credential revoked or a secret rotated out: a leaked
            // token still in use, which the trail shows.
            vendor => {
                let why = "a vendor token of an ended secret";
                self.refused(client_id, vendor.is_some(), why).await;
                Err(Error::Unauthorized)
            }
        }
    }

    /// Whether any vendor credential exists (decides the local server's first-start bootstrap).
    pub async fn any(&self) -> Result<bool> {
        self.store.has_vendor().await
    }

    /// Every credential, oldest first.
    pub async fn list(&self) -> Result<Vec<VendorCredential>> {
        let mut all = self.store.vendors().await?;
        all.sort_by_key(|v| v.created_at);
        Ok(all)
    }

    /// Creates a credential named `name` (already checked by
    /// [`crate::domain::rules::credential_name`]) and returns its secret, which is not kept.
    pub async fn create(&self, name: String) -> Result<Created<VendorCredential>> {
        let secret = Secret::generate(SecretKind::Vendor);
        let record = VendorCredential {
            client_id: ClientId::generate(),
            name,
            created_at: self.clock.now(),
            last_used_at: None,
            secret: SecretState::new(self.bcrypt.hash(&secret, &Party::Vendor).await?),
        };
        let event = self.event("vendorCredential.created", &record.client_id);
        self.store.put_vendor(&record, &event).await?;
        Ok(Created { record, secret })
    }

    /// Makes `client_id` + `secret` a valid vendor credential, keeping an existing record whose
    /// hash already matches (so a restart does not rehash). A secret replaced this way ends at
    /// once, with what it issued, as a rotation without grace.
    pub async fn ensure(&self, client_id: ClientId, secret: &Secret) -> Result<VendorCredential> {
        let existing = self.store.vendor(&client_id).await?;
        if let Some(existing) = &existing
            && secret.matches(&existing.secret.hash).await?
        {
            return Ok(existing.clone());
        }
        let (hash, now) = (
            self.bcrypt.hash(secret, &Party::Vendor).await?,
            self.clock.now(),
        );
        let action = match existing {
            Some(_) => "vendorCredential.rotated",
            None => "vendorCredential.created",
        };
        let record = match existing {
            Some(existing) => VendorCredential {
                secret: existing.secret.rotated(hash, now, 0),
                ..existing
            },
            None => VendorCredential {
                client_id,
                name: DEFAULT_VENDOR_NAME.to_owned(),
                created_at: now,
                last_used_at: None,
                secret: SecretState::new(hash),
            },
        };
        let event = self.event(action, &record.client_id);
        self.store.put_vendor(&record, &event).await?;
        Ok(record)
    }

    /// Gives credential `client_id` a new secret, returned once. The current one keeps working
    /// for `grace_minutes` ([`DEFAULT_GRACE_MINUTES`] when not given); with 0 it stops now and
    /// the vendor tokens it issued are revoked. As an API token's rotation: a previous secret
    /// still in its grace stops; of two rotations at once, one wins and the other answers 409;
    /// a credential revoked meanwhile stays revoked (404).
    pub async fn rotate(
        &self,
        client_id: &ClientId,
        grace_minutes: Option<u32>,
    ) -> Result<Created<VendorCredential>> {
        let grace = grace_minutes.unwrap_or(DEFAULT_GRACE_MINUTES);
        let mut vendor = self.existing(client_id).await?;
        let secret = Secret::generate(SecretKind::Vendor);
        let hash = self.bcrypt.hash(&secret, &Party::Vendor).await?;
        let rotated = vendor.secret.rotated(hash, self.clock.now(), grace);
        let from = &vendor.secret.hash;
        let event = self.event("vendorCredential.rotated", &vendor.client_id);
        if !self
            .store
            .swap_vendor_secret(&vendor.client_id, from, &rotated, Some(&event))
            .await?
        {
            self.existing(client_id).await?; // 404 if it is gone
            return Err(Error::Conflict(
                "The credential's secret was rotated meanwhile; list them and try again".into(),
            ));
        }
        if grace == 0 {
            self.revoke_tokens(vendor.client_id).await?;
        }
        vendor.secret = rotated;
        Ok(Created {
            record: vendor,
            secret,
        })
    }

    /// Revokes credential `client_id`: its secret stops at once, and so do the vendor tokens it
    /// issued (refused by every vendor-only route, and named on the revocation list). The last
    /// credential is kept (409), even against a concurrent revocation of another: a vendor
    /// without one could not manage anything, its own credentials included.
    pub async fn revoke(&self, id: &ClientId) -> Result<()> {
        for _ in 0..REVOKE_ATTEMPTS {
            let all = self.list().await?;
            let target = all
                .iter()
                .find(|v| &v.client_id == id)
                .ok_or_else(|| not_found(id))?;
            let survivor = all
                .iter()
                .find(|v| v.client_id != target.client_id)
                .ok_or_else(|| {
                    Error::Conflict(
                        "The last vendor credential cannot be revoked; create another first".into(),
                    )
                })?;
            // First, so that a failure in between leaves a credential that still works, never
            // one gone whose tokens other verifiers still accept.
            self.revoke_tokens(target.client_id).await?;
            let (target, survivor) = (&target.client_id, &survivor.client_id);
            let event = self.event("vendorCredential.revoked", target);
            if self.store.delete_vendor(target, survivor, &event).await? {
                return Ok(());
            }
        }
        Err(Error::Conflict(
            "The vendor credentials changed meanwhile; list them and try again".into(),
        ))
    }

    /// Voids the vendor tokens `client_id` issued so far, for every verifier of the revocation
    /// list; kept while one of them could still be unexpired.
    async fn revoke_tokens(&self, client_id: ClientId) -> Result<()> {
        let ttl = self.settings.vendor_token_ttl_seconds;
        let revocation = Revocation::at(client_id, self.clock.now(), ttl);
        self.revocations.revoke(&[revocation]).await
    }

    /// The credential `client_id`, or 404.
    async fn existing(&self, client_id: &ClientId) -> Result<VendorCredential> {
        self.store
            .vendor(client_id)
            .await?
            .ok_or_else(|| not_found(client_id))
    }
}

fn not_found(client_id: &ClientId) -> Error {
    Error::not_found(CREDENTIAL, &client_id.to_string())
}

/// What a vendor credential's clientId names, in a 404.
pub const CREDENTIAL: &str = "Vendor credential";
