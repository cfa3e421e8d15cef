//! Vendor credentials and vendor tokens: what `POST /auth/vendor`, every vendor-only route and
//! the local server's bootstrap use.

use crate::config::Settings;
use crate::domain::jwt::{self, TokenType, VendorClaims};
use crate::domain::{ClientId, Secret, SecretKind, VendorCredential};
use crate::error::{Error, Result};
use crate::ports::{Clock, Signer, VendorStore};

use super::bcrypt::Party;
use super::{Bcrypt, Created, parse_credentials, sign};

pub struct Vendors<'a> {
    pub(crate) store: &'a dyn VendorStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) bcrypt: &'a Bcrypt,
    pub(crate) settings: &'a Settings,
}

impl Vendors<'_> {
    /// `POST /auth/vendor`: vendor credentials for a vendor token from `issuer` and its
    /// lifetime in seconds.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        issuer: &str,
    ) -> Result<(String, i64)> {
        let (client_id, secret) = parse_credentials(client_id, secret, &[SecretKind::Vendor])?;
        let vendor = self.store.vendor(&client_id).await?;
        let stored = vendor.as_ref().map(|v| &v.secret_hash);
        let matched = self
            .bcrypt
            .matches(&secret, stored, &Party::Client(client_id))
            .await?;
        let (true, Some(stored)) = (matched, stored) else {
            return Err(Error::Unauthorized);
        };
        let save = async |new: &_| self.store.rehash_vendor(&client_id, stored, new).await;
        let vendor = (&secret, &Party::Vendor);
        self.bcrypt.upgrade(vendor, stored, save).await;
        let now = self.clock.now();
        let ttl = self.settings.vendor_token_ttl_seconds;
        let claims = VendorClaims {
            token_type: TokenType::Vendor,
            vendor_id: client_id.to_string(),
            iss: issuer.to_owned(),
            iat: now.seconds(),
            exp: now.plus_seconds(ttl).seconds(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        Ok((sign(self.signer, &claims).await?, ttl))
    }

    /// Checks a vendor token from `issuer`; API-token JWTs and anything else are refused alike.
    pub fn verify_token(&self, token: &str, issuer: &str) -> Result<VendorClaims> {
        let keys = self.signer.published();
        jwt::verify(token, &keys, issuer, None, self.clock.now()).map_err(Error::from)
    }

    /// Whether any vendor credential exists (decides the local server's first-start bootstrap).
    pub async fn any(&self) -> Result<bool> {
        self.store.has_vendor().await
    }

    /// Creates a vendor credential and returns its secret, which is not kept.
    pub async fn create(&self) -> Result<Created<VendorCredential>> {
        let client_id = ClientId::generate();
        let secret = Secret::generate(SecretKind::Vendor);
        let record = self.ensure(client_id, &secret).await?;
        Ok(Created { record, secret })
    }

    /// Makes `client_id` + `secret` a valid vendor credential, keeping an existing record whose
    /// hash already matches (so a restart does not rehash).
    pub async fn ensure(&self, client_id: ClientId, secret: &Secret) -> Result<VendorCredential> {
        if let Some(existing) = self.store.vendor(&client_id).await?
            && secret.matches(&existing.secret_hash).await?
        {
            return Ok(existing);
        }
        let record = VendorCredential {
            client_id,
            secret_hash: self.bcrypt.hash(secret, &Party::Vendor).await?,
            created_at: self.clock.now(),
        };
        self.store.put_vendor(&record).await?;
        Ok(record)
    }
}
